"""End to end with real processes: enrol agents, report this machine's real
dpkg database and sandbox roots, read it back through the CLI and the API."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import LiveServer


def dpkg_installed() -> set[tuple[str, str, str]]:
    out = subprocess.run(
        [
            "dpkg-query",
            "-W",
            "-f",
            "${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = set()
    for line in out.splitlines():
        abbrev, name, version, arch = line.split("\t")
        if abbrev.startswith("ii"):
            rows.add((name, version, arch))
    return rows


def enroll(server: LiveServer, state: Path, *extra: str) -> None:
    token = server.cli("enroll-token", "create").stdout.strip()
    assert token.startswith("pwe_") and "\n" not in token
    result = server.agent(
        "enroll", "--server", server.url, "--token", token, "--state-dir", str(state), *extra
    )
    assert result.returncode == 0, result.stderr
    assert (state / "credentials.json").stat().st_mode & 0o777 == 0o600


def test_local_machine_inventory_matches_dpkg(live_server: LiveServer, tmp_path: Path) -> None:
    if shutil.which("dpkg-query") is None:
        pytest.skip("dpkg-query not installed")
    state = tmp_path / "agent"
    enroll(live_server, state)
    run = live_server.agent("run", "--once", "--state-dir", str(state))
    assert run.returncode == 0, run.stderr

    assets = live_server.cli_json("assets", "list")
    assert len(assets) == 1
    asset = assets[0]
    assert {"id", "hostname", "os", "package_count", "last_seen_at"} <= asset.keys()
    assert asset["last_seen_at"] is not None and asset["os"]
    packages = live_server.cli_json("assets", "packages", str(asset["id"]))
    reported = {
        (p["name"], p["version"], p["arch"]) for p in packages if p["status"] == "installed"
    }
    assert reported == dpkg_installed()

    # A second run is a delta with no change: nothing new is stored.
    again = live_server.agent("run", "--once", "--state-dir", str(state))
    assert again.returncode == 0, again.stderr
    assert live_server.cli_json("assets", "packages", str(asset["id"])) == packages

    # The same inventory through the API, with a token from the CLI.
    token = live_server.cli("tokens", "create", "--user", "admin").stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    listing = httpx.get(f"{live_server.url}/api/v1/assets", headers=headers).json()
    assert listing["items"][0]["hostname"] == asset["hostname"]
    api_packages = httpx.get(
        f"{live_server.url}/api/v1/assets/{asset['id']}/packages", headers=headers
    ).json()
    assert {
        (p["name"], p["version"], p["arch"]) for p in api_packages if p["status"] == "installed"
    } == reported


def _sandbox_root(root: Path, hostname: str, packages: list[tuple[str, str]]) -> None:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_text(hostname + "\n")
    (root / "etc" / "os-release").write_text(
        'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
    )
    (root / "var" / "lib" / "dpkg").mkdir(parents=True)
    stanzas = [
        f"Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {version}\n"
        for name, version in packages
    ]
    (root / "var" / "lib" / "dpkg" / "status").write_text("\n".join(stanzas))


def test_several_agents_and_revocation(live_server: LiveServer, tmp_path: Path) -> None:
    roots = {}
    for i in range(3):
        root = tmp_path / f"root{i}"
        _sandbox_root(root, f"sandbox-{i}", [("openssl", f"3.0.{i}-1"), (f"tool{i}", "1.0-1")])
        roots[i] = root
        state = tmp_path / f"state{i}"
        enroll(live_server, state, "--root", str(root))
        result = live_server.agent("run", "--once", "--state-dir", str(state), "--root", str(root))
        assert result.returncode == 0, result.stderr
    assets = {a["hostname"]: a for a in live_server.cli_json("assets", "list")}
    assert set(assets) == {"sandbox-0", "sandbox-1", "sandbox-2"}
    for i in range(3):
        packages = live_server.cli_json("assets", "packages", str(assets[f"sandbox-{i}"]["id"]))
        assert {(p["name"], p["version"]) for p in packages} == {
            ("openssl", f"3.0.{i}-1"),
            (f"tool{i}", "1.0-1"),
        }
        assert assets[f"sandbox-{i}"]["os"] == "Debian GNU/Linux 12 (bookworm)"

    # An upgrade inside sandbox 0 arrives as a delta and is kept as history.
    _rewrite = roots[0] / "var" / "lib" / "dpkg" / "status"
    _rewrite.write_text(_rewrite.read_text().replace("3.0.0-1", "3.0.13-1"))
    assert (
        live_server.agent(
            "run", "--once", "--state-dir", str(tmp_path / "state0"), "--root", str(roots[0])
        ).returncode
        == 0
    )
    history = live_server.cli_json("assets", "history", str(assets["sandbox-0"]["id"]))
    assert [(h["action"], h["name"], h["old_version"], h["new_version"]) for h in history] == [
        ("changed", "openssl", "3.0.0-1", "3.0.13-1")
    ]

    agents = live_server.cli_json("agents", "list")
    victim = next(a for a in agents if a["hostname"] == "sandbox-1")
    live_server.cli("agents", "revoke", str(victim["id"]))
    refused = live_server.agent(
        "run", "--once", "--state-dir", str(tmp_path / "state1"), "--root", str(roots[1])
    )
    assert refused.returncode == 3
    assert "revoked" in refused.stderr


def test_used_enrolment_token_is_refused(live_server: LiveServer, tmp_path: Path) -> None:
    token = live_server.cli("enroll-token", "create").stdout.strip()
    first = live_server.agent(
        "enroll", "--server", live_server.url, "--token", token, "--state-dir", str(tmp_path / "a")
    )
    assert first.returncode == 0, first.stderr
    second = live_server.agent(
        "enroll", "--server", live_server.url, "--token", token, "--state-dir", str(tmp_path / "b")
    )
    assert second.returncode == 3
    assert "already been used" in second.stderr
    assert not (tmp_path / "b" / "credentials.json").exists()
