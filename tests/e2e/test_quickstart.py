"""`patchwarden quickstart` (what `make run` starts): the server comes up, this
machine is enrolled through a real agent process, and its inventory is visible."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import BIN, _free_port


def agent_processes(data_dir: Path) -> list[str]:
    """Command lines of running `patchwarden.agent run` processes for this data dir."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        line = " ".join(a.decode(errors="replace") for a in argv)
        if "patchwarden.agent run" in line and str(data_dir) in line:
            found.append(line)
    return found


def test_quickstart_enrols_this_machine(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "PATCHWARDEN_DATA_DIR": str(tmp_path / "data")}
    env.pop("PATCHWARDEN_ADMIN_PASSWORD", None)
    env.pop("PATCHWARDEN_DATABASE_URL", None)
    log = tmp_path / "quickstart.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "patchwarden"), "quickstart", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "Patchwarden is running" not in log.read_text():
            assert process.poll() is None, log.read_text()
            time.sleep(0.5)
        text = log.read_text()
        assert "Patchwarden is running" in text, text
        password = text.split("with password", 1)[1].split()[0]
        url = f"http://127.0.0.1:{port}"
        assert (
            httpx.get(f"{url}/").headers.get("location", "").endswith("/login")
            or httpx.get(url).status_code == 200
        )
        token = httpx.post(
            f"{url}/api/v1/auth/login", json={"username": "admin", "password": password}
        ).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        listing = httpx.get(f"{url}/api/v1/assets", headers=headers).json()
        assert listing["total"] == 1
        asset = listing["items"][0]
        assert asset["source"] == "agent" and asset["package_count"] > 0
        packages = httpx.get(f"{url}/api/v1/assets/{asset['id']}/packages", headers=headers).json()
        assert len(packages) == asset["package_count"]
        # The agent keeps running as its own process.
        assert agent_processes(tmp_path), "the local agent process is not running"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    time.sleep(0.5)
    assert not agent_processes(tmp_path), "quickstart left its agent running"
