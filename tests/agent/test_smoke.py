"""Smoke tests and hook commands: argument lists, timeouts, never raising."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from patchwarden.agent.smoke import run_argv, run_smoke_test
from tests.agent.pkgmgr.conftest import closed_port


@pytest.fixture
def web() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/ok" else 503)
            self.send_header("Content-Length", "0")
            self.end_headers()

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_command_argv_is_not_a_shell(tmp_path: Path) -> None:
    outcome = run_argv(["echo", "a; touch " + str(tmp_path / "x"), "$HOME"], timeout=5)
    assert outcome.ok and outcome.output == f"a; touch {tmp_path / 'x'} $HOME\n"
    assert not (tmp_path / "x").exists()
    missing = run_argv(["no-such-program-pw"], timeout=5)
    assert not missing.ok and missing.exit_code is None and "not found" in missing.output


def test_command_timeout_kills_the_group() -> None:
    outcome = run_argv(["sh", "-c", "sleep 30 & sleep 30"], timeout=0.5)
    assert outcome.timed_out and outcome.exit_code is None
    assert "timed out" in outcome.describe()


def test_http_status(web: str) -> None:
    ok = run_smoke_test({"kind": "http", "name": "w", "timeout": 5, "url": web + "/ok"})
    assert ok.ok and "HTTP 200" in ok.detail
    down = {"kind": "http", "name": "w", "timeout": 5, "url": web + "/down"}
    assert not run_smoke_test(down).ok
    assert run_smoke_test({**down, "expect_status": 503}).ok
    gone = {"kind": "http", "name": "w", "timeout": 2, "url": f"http://127.0.0.1:{closed_port()}/"}
    assert not run_smoke_test(gone).ok


def test_tcp_script_and_systemd(tmp_path: Path) -> None:
    closed = {"kind": "tcp", "name": "t", "timeout": 2, "host": "127.0.0.1", "port": closed_port()}
    assert not run_smoke_test(closed).ok
    script = tmp_path / "check"
    script.write_text("#!/bin/sh\nexit 3\n")
    test = {"kind": "script", "name": "s", "timeout": 5, "path": str(script)}
    assert "not an executable" in run_smoke_test(test).detail
    script.chmod(0o755)
    failed = run_smoke_test(test)
    assert not failed.ok and "exit 3" in failed.detail
    unit = run_smoke_test({"kind": "systemd", "name": "u", "timeout": 5, "unit": "pw-none.service"})
    assert not unit.ok  # no such unit (or no systemd at all in a container)
    assert not run_smoke_test({"kind": "bogus", "name": "b", "timeout": 1}).ok
