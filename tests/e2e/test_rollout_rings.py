"""A rollout end to end with real processes and real packages.

A real server; three real `patchwarden-agent` processes, each with its own
sandbox root (apt with its own Dir options, dpkg --root) holding pwt-hello
and pwt-web 1.0; a loopback apt mirror with their 2.0 versions; an advisory
that makes pwt-hello 1.0 vulnerable. Through the CLI: the finding is open,
the repository is synced, the patch approved, and a rollout goes through the
lab, pilot and prod rings; the smoke tests pass and every root ends on 2.0.
Then pwt-web 2.0, whose smoke test fails: the lab ring fails, the agent rolls
back to 1.0 by itself, and the rollout halts before the pilot ring.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patchwarden.agent.pkgmgr import AptManager, Target
from tests.agent.jobkit import make_deb
from tests.agent.pkgmgr.conftest import dpkg_sandbox
from tests.e2e.conftest import LiveServer, running_server
from tests.repos.builders import apt_ftparchive_suite, require
from tests.repos.repo_server import RepoServer, serve

HOSTS = {"lab": "lab-1", "pilot": "pilot-1", "prod": "prod-1"}
V1, V2 = "1.0-1", "2.0-1"
HEALTH = "/usr/share/{name}/health"
# A smoke test that reads the package's health file inside the agent's root
# (the agent gives hooks and smoke tests PATCHWARDEN_ROOT): argv, no shell.
SMOKE = (
    "{python} -c \"import os,sys; root=os.environ['PATCHWARDEN_ROOT'].rstrip('/'); "
    "sys.exit(0 if open(root+'{path}').read().strip()=='ok' else 1)\""
)
ADVISORY = {
    "id": "DSA-9901-1",
    "modified": "2026-11-30T00:00:00Z",
    "published": "2026-11-30T00:00:00Z",
    "aliases": ["CVE-2026-99001"],
    "summary": "pwt-hello: remote code execution",
    "affected": [
        {
            "package": {"ecosystem": "Debian:12", "name": "pwt-hello"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": V2}]}],
        }
    ],
}


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RepoServer]:
    require("dpkg", "dpkg-deb", "dpkg-query", "apt-get", "apt-ftparchive")
    work = tmp_path_factory.mktemp("rollout-debs")
    debs = [
        make_deb(work, "pwt-hello", V1, {HEALTH.format(name="pwt-hello"): "ok\n"}),
        make_deb(work, "pwt-hello", V2, {HEALTH.format(name="pwt-hello"): "ok\n"}),
        make_deb(work, "pwt-web", V1, {HEALTH.format(name="pwt-web"): "ok\n"}),
        make_deb(work, "pwt-web", V2, {HEALTH.format(name="pwt-web"): "broken\n"}),
    ]
    apt_ftparchive_suite(work / "mirror", "stable", debs)
    with serve(work / "mirror") as server:
        yield server


def sandbox_root(
    root: Path, hostname: str, url: str, packages: tuple[str, ...] = ("pwt-hello", "pwt-web")
) -> AptManager:
    dpkg_sandbox(root)
    (root / "etc/apt").mkdir(parents=True)
    (root / "etc/apt/sources.list").write_text(f"deb [trusted=yes] {url} stable main\n")
    (root / "etc/hostname").write_text(hostname + "\n")
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian 12"\n')
    manager = AptManager(str(root))
    assert manager.refresh().ok
    installed = manager.install([Target(name, V1) for name in packages])
    assert installed.ok, installed.output
    return manager


class Fleet:
    def __init__(self, server: LiveServer, tmp_path: Path, url: str) -> None:
        self.server = server
        self.roots: dict[str, AptManager] = {}
        self.states: dict[str, Path] = {}
        for ring, host in HOSTS.items():
            self.roots[ring] = sandbox_root(tmp_path / host / "root", host, url)
            self.states[ring] = tmp_path / host / "state"
            token = server.cli("enroll-token", "create").stdout.strip()
            enrolled = server.agent(
                "--root", str(tmp_path / host / "root"), "enroll",
                "--server", server.url, "--token", token, "--state-dir", str(self.states[ring]),
            )  # fmt: skip
            assert enrolled.returncode == 0, enrolled.stderr
        self.run_agents()
        assets = {a["hostname"]: a["id"] for a in server.cli_json("assets", "list")}
        self.assets = {ring: assets[host] for ring, host in HOSTS.items()}
        for ring, asset_id in self.assets.items():
            server.cli("groups", "create", ring, "--assets", str(asset_id))

    def run_agents(self) -> None:
        """Each agent once: recover, report, run its jobs, report again."""
        for ring in HOSTS:
            done = self.server.agent(
                "--root", str(self.roots[ring].root), "run", "--once",
                "--state-dir", str(self.states[ring]),
            )  # fmt: skip
            assert done.returncode == 0, done.stderr

    def installed(self, name: str) -> dict[str, str | None]:
        return {ring: root.installed([name]).get(name) for ring, root in self.roots.items()}

    def patch_id(self, name: str, version: str) -> int:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            rows = self.server.cli_json("patches", "list", "--package", name)
            found = {r["id"] for r in rows if r["target_version"] == version}
            if len(rows) == len(HOSTS) and len(found) == 1:
                return int(found.pop())
            time.sleep(1)
        raise AssertionError(f"no patch {name} {version} for every asset: {rows}")

    def approve(self, patch_id: int) -> None:
        self.server.cli("approvals", "request", str(patch_id))
        self.server.cli("approvals", "approve", str(patch_id), "--as", "alice")

    def roll(self, rollout_id: int, until: set[str], rounds: int = 12) -> dict[str, Any]:
        self.server.cli("rollouts", "start", str(rollout_id))
        for _ in range(rounds):
            time.sleep(0.5)  # an engine round (0.2 s) dispatches the next wave
            self.run_agents()
            view = self.show(rollout_id)
            if view["state"] in until:
                return view
        raise AssertionError(f"rollout {rollout_id} still {view['state']}: {json.dumps(view)}")

    def show(self, rollout_id: int) -> dict[str, Any]:
        view: dict[str, Any] = json.loads(
            self.server.cli("rollouts", "show", str(rollout_id), "--format", "json").stdout
        )
        return view


def smoke(name: str) -> str:
    return SMOKE.format(python=sys.executable, path=HEALTH.format(name=name))


def test_three_rings_then_a_broken_patch_rolls_back_and_halts(
    tmp_path: Path, mirror: RepoServer
) -> None:
    with running_server(tmp_path, PATCHWARDEN_ROLLOUT_TICK_SECONDS="0.2") as server:
        server.cli(
            "users", "create", "alice", "--role", "approver", "--password", "alice-password-123"
        )
        fleet = Fleet(server, tmp_path, mirror.url())
        advisory = tmp_path / "dsa.json"
        advisory.write_text(json.dumps(ADVISORY))
        server.cli("feeds", "import", str(advisory))
        server.cli("findings", "recompute")
        findings = server.cli_json("findings", "list", "--vulnerability", "CVE-2026-99001")
        assert {f["hostname"] for f in findings} == set(HOSTS.values())
        assert {f["status"] for f in findings} == {"open"}

        server.cli(
            "repos", "add", "local", "--type", "apt", "--url", mirror.url(), "--suite", "stable"
        )
        server.cli("repos", "sync")
        hello = fleet.patch_id("pwt-hello", V2)
        fleet.approve(hello)
        rollout = int(
            server.cli(
                "rollouts", "create", "--name", "pwt-hello 2.0", "--patches", str(hello),
                "--ring", "lab=lab", "--ring", "pilot=pilot", "--ring", "prod=prod",
                "--max-concurrency", "100%", "--reboot", "never",
                "--smoke-command", smoke("pwt-hello"),
            ).stdout.strip()
        )  # fmt: skip
        view = fleet.roll(rollout, until={"completed", "halted"})
        assert view["state"] == "completed", json.dumps(view)
        assert [r["state"] for r in view["rings"]] == ["passed", "passed", "passed"]
        jobs = [j for r in view["rings"] for j in r["jobs"]]
        assert [j["state"] for j in jobs] == ["succeeded"] * 3
        assert all(j["after"] == {"pwt-hello": V2} and j["before"]["pwt-hello"] == V1 for j in jobs)
        assert fleet.installed("pwt-hello") == {ring: V2 for ring in HOSTS}
        # The agents reported their new inventory: the finding is fixed.
        server.cli("findings", "recompute")
        fixed = server.cli_json(
            "findings", "list", "--vulnerability", "CVE-2026-99001", "--status", "fixed"
        )
        assert {f["hostname"] for f in fixed} == set(HOSTS.values())
        assert server.cli_json("findings", "list", "--vulnerability", "CVE-2026-99001") == []

        web = fleet.patch_id("pwt-web", V2)
        fleet.approve(web)
        broken = int(
            server.cli(
                "rollouts", "create", "--name", "pwt-web 2.0", "--patches", str(web),
                "--ring", "lab=lab", "--ring", "pilot=pilot", "--ring", "prod=prod",
                "--max-concurrency", "100%", "--reboot", "never",
                "--smoke-command", smoke("pwt-web"),
            ).stdout.strip()
        )  # fmt: skip
        view = fleet.roll(broken, until={"completed", "halted"})
        assert view["state"] == "halted", json.dumps(view)
        assert [r["state"] for r in view["rings"]] == ["failed", "pending", "pending"]
        [lab_job] = view["rings"][0]["jobs"]
        assert lab_job["state"] == "rolled_back" and lab_job["smoke_failed"]
        assert lab_job["phase"] in ("smoke_test", "rollback")
        assert {j["state"] for r in view["rings"][1:] for j in r["jobs"]} == {"pending"}
        # The lab host is back on 1.0 and nothing else was touched.
        assert fleet.installed("pwt-web") == {ring: V1 for ring in HOSTS}
        shown = server.cli("rollouts", "show", str(broken)).stdout
        assert "halted" in shown and "lab" in shown
