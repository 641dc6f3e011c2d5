"""Real processes: a `patchwarden serve` server and `patchwarden-agent` agents,
talking HTTP on loopback, with the CLI on the same database."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(BIN / "patchwarden"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"patchwarden {' '.join(args)} failed: {result.stderr}")
        return result

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--format", "json").stdout)

    def agent(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "patchwarden-agent"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a server (and CLI) on SQLite in `data_dir`."""
    env = {
        **os.environ,
        "PATCHWARDEN_DATA_DIR": str(data_dir),
        "PATCHWARDEN_ADMIN_PASSWORD": "e2e-admin-password-123",
        **extra,
    }
    env.pop("PATCHWARDEN_DATABASE_URL", None)
    return env


def spawn_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """`patchwarden serve` on loopback, its output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(BIN / "patchwarden"), "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("server did not start: " + log.read_text())


@contextmanager
def running_server(tmp_path: Path, **extra_env: str) -> Iterator[LiveServer]:
    port = _free_port()
    env = server_env(tmp_path / "data", **extra_env)
    log = tmp_path / "server.log"
    process = spawn_server(env, port, log)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process, log)
    try:
        yield LiveServer(url, env, process)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    with running_server(tmp_path) as server:
        yield server
