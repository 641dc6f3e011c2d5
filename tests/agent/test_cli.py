from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from patchwarden.agent.cli import main
from tests.agent.fake_server import FakeServer
from tests.agent.fakes import make_sandbox_root

AGENT_SCRIPT = Path(sys.executable).parent / "patchwarden-agent"
needs_script = pytest.mark.skipif(
    not AGENT_SCRIPT.exists(), reason="console script not installed (pip install -e .)"
)


def _agent(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AGENT_SCRIPT), *argv], capture_output=True, text=True, timeout=timeout
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# -- in process: argument handling and exit codes ----------------------------


def test_root_before_and_after_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(make_sandbox_root(tmp_path))
    for argv in (["--root", root, "collect"], ["collect", "--root", root]):
        assert main(argv) == 0
        inventory = json.loads(capsys.readouterr().out)
        assert inventory["facts"]["hostname"] == "sandbox-host"
        assert len(inventory["packages"]) == 6


def test_collect_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["collect", "--root", str(make_sandbox_root(tmp_path)), "--format", "summary"]) == 0
    out = capsys.readouterr().out
    assert "hostname: sandbox-host" in out
    assert "packages: 6" in out


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["collect", "--root", str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert main(["run", "--once", "--state-dir", str(tmp_path / "empty")]) == 2
    assert "not enrolled" in capsys.readouterr().err
    assert main(["enroll", "--server", "http://pw.example.com", "--token", "t"]) == 2
    assert "refusing plain http" in capsys.readouterr().err
    assert main(["run", "--interval", "0", "--state-dir", str(tmp_path)]) == 2


def test_bad_token_exits_3(
    server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(make_sandbox_root(tmp_path / "root"))
    argv = ["--root", root, "enroll", "--server", server.url, "--state-dir", str(tmp_path / "s")]
    assert main([*argv, "--token", "wrong"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "invalid_token" in err
    assert not (tmp_path / "s" / "credentials.json").exists()


def test_unreachable_server_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = ["enroll", "--server", f"http://127.0.0.1:{port}", "--token", "t"]
    assert main([*argv, "--state-dir", str(tmp_path)]) == 1
    assert "cannot reach" in capsys.readouterr().err


def test_revoked_agent_exits_3(
    server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(make_sandbox_root(tmp_path / "root"))
    state = str(tmp_path / "state")
    assert (
        main(
            [
                "enroll",
                "--server",
                server.url,
                "--token",
                "good-token",
                "--state-dir",
                state,
                "--root",
                root,
            ]
        )
        == 0
    )
    assert main(["run", "--once", "--state-dir", state, "--root", root]) == 0
    server.only_agent().revoked = True
    assert main(["run", "--once", "--state-dir", state, "--root", root]) == 3
    assert "HTTP 401 (invalid_credential): credential revoked" in capsys.readouterr().err
    # The endless loop stops too instead of retrying forever.
    assert main(["run", "--interval", "0.01", "--state-dir", state, "--root", root]) == 3


def test_transient_report_failure_exits_1_with_once(
    server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(make_sandbox_root(tmp_path / "root"))
    state = str(tmp_path / "state")
    main(
        [
            "enroll",
            "--server",
            server.url,
            "--token",
            "good-token",
            "--state-dir",
            state,
            "--root",
            root,
        ]
    )
    server.fail_next_with = 503
    assert main(["run", "--once", "--state-dir", state, "--root", root]) == 1
    assert "HTTP 503" in capsys.readouterr().err


# -- the installed console script, as an operator would run it ----------------


@needs_script
def test_script_collect_on_a_sandbox_root(tmp_path: Path) -> None:
    root = make_sandbox_root(tmp_path)
    completed = _agent("collect", "--root", str(root))
    assert completed.returncode == 0, completed.stderr
    inventory = json.loads(completed.stdout)
    assert set(inventory) == {"facts", "packages", "collector_notes"}
    assert inventory["facts"]["os"]["id"] == "debian"
    assert inventory["facts"]["kernel"] == "6.1.0-18-amd64"
    assert {(p["name"], p["arch"]) for p in inventory["packages"]} >= {
        ("libc6", "amd64"),
        ("libc6", "i386"),
    }


@needs_script
def test_script_enroll_and_run_once(server: FakeServer, tmp_path: Path) -> None:
    root = str(make_sandbox_root(tmp_path / "root"))
    state = tmp_path / "state"
    completed = _agent(
        "--root", root, "enroll", "--server", server.url, "--token", "good-token",
        "--state-dir", str(state),
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert "enrolled sandbox-host as agent 1 (asset 100)" in completed.stdout
    assert server.enrolments[0]["hostname"] == "sandbox-host"
    assert server.enrolments[0]["machine_id"] == "0123456789abcdef0123456789abcdef"
    assert _mode(state) == 0o700
    assert _mode(state / "credentials.json") == 0o600
    credentials = json.loads((state / "credentials.json").read_text())
    assert credentials["server"] == server.url
    assert (credentials["agent_id"], credentials["asset_id"]) == (1, 100)
    assert credentials["credential"] in server.agents

    for expected_kind in ("full", "delta"):
        completed = _agent("run", "--once", "--state-dir", str(state), "--root", root)
        assert completed.returncode == 0, completed.stderr
        assert server.reports[-1]["kind"] == expected_kind
    assert "report 2 (delta +0 -0) acknowledged as 2" in completed.stdout
    assert (state / "seq").read_text() == "2\n"
    inventory = json.loads((state / "inventory.json").read_text())
    assert inventory["ack_seq"] == 2
    assert len(inventory["packages"]) == 6
    for name in ("seq", "inventory.json", "credentials.json"):
        assert _mode(state / name) == 0o600
    assert sorted(p.name for p in state.iterdir()) == [
        "credentials.json",
        "inventory.json",
        "lock",
        "seq",
    ]


@needs_script
def test_script_loop_stops_cleanly_on_sigterm(server: FakeServer, tmp_path: Path) -> None:
    root = str(make_sandbox_root(tmp_path / "root"))
    state = str(tmp_path / "state")
    enrolled = _agent(
        "enroll", "--server", server.url, "--token", "good-token", "--state-dir", state
    )
    assert enrolled.returncode == 0, enrolled.stderr
    process = subprocess.Popen(
        [str(AGENT_SCRIPT), "run", "--interval", "0.2", "--state-dir", state, "--root", root],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while len(server.reports) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(server.reports) >= 2
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "stopping after the current cycle" in err
    assert [r["kind"] for r in server.reports[:2]] == ["full", "delta"]


def test_enroll_and_run_over_https_with_ca_file(
    tls_server: FakeServer, tls_cert: Path, tmp_path: Path
) -> None:
    root = str(make_sandbox_root(tmp_path / "root"))
    state = tmp_path / "state"
    argv = ["--root", root, "enroll", "--server", tls_server.url, "--token", "good-token"]
    assert main([*argv, "--state-dir", str(state), "--ca-file", str(tls_cert)]) == 0
    assert json.loads((state / "credentials.json").read_text())["ca_file"] == str(tls_cert)
    # `run` finds the CA file through the stored credentials.
    assert main(["run", "--once", "--state-dir", str(state), "--root", root]) == 0
    assert tls_server.reports[-1]["kind"] == "full"


def test_missing_ca_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["enroll", "--server", "https://pw.example.com", "--token", "t"]
    assert main([*argv, "--ca-file", str(tmp_path / "nope.pem"), "--state-dir", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
