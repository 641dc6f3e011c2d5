"""kill -9 of a real agent (and apt, dpkg and the maintainer script under
it, as if the host died) in the middle of a rollout's install.

pwt-slow 2.0's preinst blocks; the agent is killed there. The next
`patchwarden-agent run --once` reads its journal and the package database,
rolls the half-done upgrade back to 1.0 from the package file it kept, and
reports that truthfully: the server records exactly one result for the job,
and the rollout halts before its next ring.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.jobkit import kill_tree, make_deb, wait_for
from tests.e2e.conftest import BIN, running_server
from tests.e2e.test_rollout_rings import V1, V2, sandbox_root
from tests.repos.builders import apt_ftparchive_suite, require
from tests.repos.repo_server import RepoServer, serve


@pytest.fixture(scope="module")
def slow_mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RepoServer, Path]]:
    require("dpkg", "dpkg-deb", "dpkg-query", "apt-get", "apt-ftparchive")
    work = tmp_path_factory.mktemp("slow-debs")
    blocker = work / "blocker.pid"
    debs = [
        make_deb(work, "pwt-slow", V1, {"/usr/share/pwt-slow/v": "1\n"}),
        make_deb(
            work,
            "pwt-slow",
            V2,
            {"/usr/share/pwt-slow/v": "2\n"},
            preinst=f'#!/bin/sh\necho $$ > "{blocker}"\nexec sleep 300\n',
        ),
    ]
    apt_ftparchive_suite(work / "mirror", "stable", debs)
    with serve(work / "mirror") as server:
        yield server, blocker


def test_agent_killed_mid_install_recovers_and_reports_once(
    tmp_path: Path, slow_mirror: tuple[RepoServer, Path]
) -> None:
    mirror, blocker = slow_mirror
    with running_server(tmp_path, PATCHWARDEN_ROLLOUT_TICK_SECONDS="0.2") as server:
        server.cli("users", "create", "alice", "--role", "approver", "--password", "alice-pw-12345")
        hosts = {"lab": "lab-1", "prod": "prod-1"}
        roots, states = {}, {}
        for ring, host in hosts.items():
            roots[ring] = sandbox_root(tmp_path / host / "root", host, mirror.url(), ("pwt-slow",))
            states[ring] = tmp_path / host / "state"
            token = server.cli("enroll-token", "create").stdout.strip()
            enrolled = server.agent(
                "--root", roots[ring].root, "enroll", "--server", server.url,
                "--token", token, "--state-dir", str(states[ring]),
            )  # fmt: skip
            assert enrolled.returncode == 0, enrolled.stderr
            assert server.agent("--root", roots[ring].root, "run", "--once",
                                "--state-dir", str(states[ring])).returncode == 0  # fmt: skip
        assets = {a["hostname"]: a["id"] for a in server.cli_json("assets", "list")}
        for ring, host in hosts.items():
            server.cli("groups", "create", ring, "--assets", str(assets[host]))
        server.cli(
            "repos", "add", "local", "--type", "apt", "--url", mirror.url(), "--suite", "stable"
        )
        server.cli("repos", "sync")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            rows = server.cli_json("patches", "list", "--package", "pwt-slow")
            if len(rows) == 2:
                break
            time.sleep(1)
        patch_id = str(rows[0]["id"])
        server.cli("approvals", "request", patch_id)
        server.cli("approvals", "approve", patch_id, "--as", "alice")
        rollout = server.cli(
            "rollouts", "create", "--name", "slow", "--patches", patch_id,
            "--ring", "lab=lab", "--ring", "prod=prod", "--reboot", "never",
        ).stdout.strip()  # fmt: skip
        server.cli("rollouts", "start", rollout)
        time.sleep(1)  # an engine round dispatches the lab job

        # Its own TMPDIR: a killed apt-get leaves its temporary config file behind.
        env = {**server.env, "TMPDIR": str(tmp_path / "tmp")}
        (tmp_path / "tmp").mkdir()
        argv = [
            str(BIN / "patchwarden-agent"), "--root", roots["lab"].root, "run", "--once",
            "--state-dir", str(states["lab"]),
        ]  # fmt: skip
        agent = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for(blocker, timeout=120)  # dpkg is running pwt-slow 2.0's preinst
        kill_tree(agent.pid)
        agent.communicate(timeout=30)
        blocker.unlink()
        view = json.loads(server.cli("rollouts", "show", rollout, "--format", "json").stdout)
        assert view["rings"][0]["jobs"][0]["state"] == "running"  # started, no result yet

        again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        assert roots["lab"].installed(["pwt-slow"]) == {"pwt-slow": V1}
        time.sleep(1)
        view = json.loads(server.cli("rollouts", "show", rollout, "--format", "json").stdout)
        [job] = view["rings"][0]["jobs"]
        assert job["state"] in ("rolled_back", "failed"), json.dumps(job)
        assert job["after"] == {"pwt-slow": V1}
        assert view["state"] == "halted"
        assert [j["state"] for j in view["rings"][1]["jobs"]] == ["pending"]
        # A third run changes nothing and sends nothing twice.
        assert subprocess.run(argv, env=env, capture_output=True, timeout=300).returncode == 0
        events = server.cli_json("audit", "list", "--action", "rollout.job_result")
        assert [e["target"] for e in events] == [f"rollout_job:{job['job_id']}"]
        assert roots["prod"].installed(["pwt-slow"]) == {"pwt-slow": V1}
        assert not os.path.exists(blocker)
