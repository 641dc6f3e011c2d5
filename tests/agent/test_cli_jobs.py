"""`patchwarden-agent run --once --root` with rollout jobs, end to end against
the fake server: real packages in an apt sandbox root, signed jobs, results,
re-inventory, refusals, redelivery, the pinned key and reboot stand-ins."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from patchwarden.agent.cli import main
from patchwarden.agent.client import AgentClient
from patchwarden.agent.host import LocalHost
from patchwarden.agent.jobs import JobExecutor
from patchwarden.agent.journal import Journal
from patchwarden.agent.pkgmgr import AptManager, Target
from patchwarden.agent.runner import JobAgent, run_forever
from patchwarden.agent.state import StateDir
from tests.agent.fake_server import FakeServer
from tests.agent.jobkit import (
    DEP,
    DEP_V,
    HELLO,
    V1,
    V2,
    JobRepo,
    apt_root,
    dpkg_log,
    file_says,
    job,
    reboot_standin,
)


@dataclass
class Agent:
    server: FakeServer
    root: Path
    state: Path
    apt: AptManager
    asset_id: int

    def run(self, *extra: str) -> int:
        argv = ["run", "--once", "--root", str(self.root), "--state-dir", str(self.state)]
        # Never the real reboot: a job with reboot "always" would run it.
        if "--reboot-command" not in extra:
            extra = ("--reboot-command", '["false"]', *extra)
        return main([*argv, *extra])

    def job(self, **kwargs: Any) -> dict[str, Any]:
        return job(asset_id=self.asset_id, **kwargs)

    def server_versions(self) -> dict[str, str]:
        return {p["name"]: p["version"] for p in self.server.only_agent().inventory.values()}


def enrol(server: FakeServer, tmp_path: Path, job_repo: JobRepo) -> Agent:
    root = tmp_path / "root"
    apt = apt_root(root, job_repo)
    assert apt.install([Target(HELLO, V1)]).ok
    state = tmp_path / "state"
    argv = ["--root", str(root), "enroll", "--server", server.url, "--token", "good-token"]
    assert main([*argv, "--state-dir", str(state)]) == 0
    return Agent(server, root, state, apt, server.only_agent().asset_id)


@pytest.fixture
def agent(server: FakeServer, tmp_path: Path, job_repo: JobRepo) -> Agent:
    return enrol(server, tmp_path, job_repo)


def test_run_once_runs_the_job_reports_and_reinventories(
    agent: Agent, capsys: pytest.CaptureFixture[str]
) -> None:
    agent.server.add_job(agent.job(smoke_tests=[file_says(agent.root, "2.0")]))
    assert agent.run() == 0
    result = agent.server.result_of(1)
    assert result["status"] == "succeeded", result["log"]
    assert result["after"] == {HELLO: V2, DEP: DEP_V}
    assert agent.server.jobs[1].starts == [1]
    # The first report had v1; the report after the job has v2 and the dependency.
    assert len(agent.server.reports) == 2
    assert agent.server_versions()[HELLO] == V2 and agent.server_versions()[DEP] == DEP_V
    out = capsys.readouterr().out
    assert "1 run" in out and "results sent" in out
    entry = Journal(str(agent.state)).load(1)
    assert entry is not None and entry["reported"] is True

    # Nothing left to do: the next run polls, runs nothing, sends one delta.
    assert agent.run() == 0
    assert len(agent.server.result_posts) == 1 and len(agent.server.reports) == 3


def test_failing_smoke_test_is_rolled_back_and_reported(agent: Agent) -> None:
    agent.server.add_job(agent.job(smoke_tests=[file_says(agent.root, "1.0")]))
    assert agent.run() == 0
    result = agent.server.result_of(1)
    assert result["status"] == "rolled_back" and result["rollback"]["verified"] is True
    assert agent.server_versions()[HELLO] == V1 and DEP not in agent.server_versions()


@pytest.mark.parametrize(
    "how",
    ["tampered", "wrong key", "unsigned", "other asset", "shell metacharacters", "expired"],
)
def test_refused_jobs_run_nothing(agent: Agent, how: str) -> None:
    document = agent.job()
    options: dict[str, Any] = {}
    if how == "tampered":
        options["tamper"] = {"targets": [{"name": DEP, "version": DEP_V, "arch": None}]}
    elif how == "wrong key":
        options["key"] = Ed25519PrivateKey.generate()
    elif how == "unsigned":
        options["unsigned"] = True
    elif how == "other asset":
        document["asset_id"] = agent.asset_id + 1
    elif how == "shell metacharacters":
        document["targets"] = [{"name": "pwt-hello;reboot", "version": V2, "arch": None}]
    elif how == "expired":
        document["expires_at"] = "2020-01-01T00:00:00+00:00"
    agent.server.add_job(document, **options)
    log_before = dpkg_log(agent.root)

    assert agent.run() == 0
    result = agent.server.result_of(1)
    assert (result["status"], result["phase"]) == ("refused", "verify")
    assert agent.server.jobs[1].starts == []  # never even started
    assert dpkg_log(agent.root) == log_before
    assert agent.apt.installed([HELLO, DEP]) == {HELLO: V1}
    expected = {
        "tampered": "does not verify",
        "wrong key": "does not verify",
        "unsigned": "needs a 'job' object and a 'signature'",
        "other asset": "this agent is asset",
        "shell metacharacters": "not a valid package name",
        "expired": "expired",
    }[how]
    assert expected in result["error"]


def test_lost_result_is_resent_and_the_job_not_rerun(agent: Agent) -> None:
    agent.server.add_job(agent.job(), redeliver=True)
    agent.server.fail_results_with = 503
    assert agent.run() == 1  # the job ran; the server could not take the result
    entry = Journal(str(agent.state)).load(1)
    assert entry is not None and entry["state"] == "finished" and not entry["reported"]
    log_after_job = dpkg_log(agent.root)

    agent.server.fail_results_with = None
    assert agent.run() == 0
    assert agent.server.result_of(1)["status"] == "succeeded"
    # Resent from the journal, then the redelivered job only re-sent its result.
    assert [b["job_id"] for b in agent.server.result_posts] == [1, 1, 1]
    assert agent.server.jobs[1].starts == [1]
    assert dpkg_log(agent.root) == log_after_job
    entry = Journal(str(agent.state)).load(1)
    assert entry is not None and entry["reported"] is True


def test_key_is_fetched_once_and_pinned(
    server: FakeServer, tmp_path: Path, job_repo: JobRepo
) -> None:
    server.key_at_enrolment = False  # an agent enrolled before jobs existed
    agent = enrol(server, tmp_path, job_repo)
    assert StateDir(str(agent.state)).load_credentials().job_signing_key is None
    agent.server.add_job(agent.job())
    assert agent.run() == 0
    assert server.key_fetches == 1
    credentials = StateDir(str(agent.state)).load_credentials()
    assert credentials.job_signing_key == server.public_key_b64
    assert credentials.job_signing_key_id == server.key_id
    assert agent.server.result_of(1)["status"] == "succeeded"
    assert agent.run() == 0
    assert server.key_fetches == 1


def test_enrolment_pins_the_key(agent: Agent) -> None:
    credentials = StateDir(str(agent.state)).load_credentials()
    assert credentials.job_signing_key == agent.server.public_key_b64
    # A server whose key changed afterwards cannot get jobs run.
    agent.server.signing_key = Ed25519PrivateKey.generate()
    agent.server.add_job(agent.job())
    assert agent.run() == 0
    assert agent.server.result_of(1)["status"] == "refused"


def test_reboot_always_with_the_cli_stand_ins(agent: Agent, tmp_path: Path) -> None:
    command, boot_id = reboot_standin(tmp_path)
    before_id = boot_id.read_text().strip()
    options = ("--reboot-command", json.dumps(command), "--boot-id-file", str(boot_id))
    agent.server.add_job(agent.job(reboot="always", smoke_tests=[file_says(agent.root, "2.0")]))
    assert agent.run(*options) == 0
    assert agent.server.jobs[1].results == {}  # rebooting: the result comes after the boot
    assert boot_id.read_text().strip() != before_id

    assert agent.run(*options) == 0  # "after the reboot"
    result = agent.server.result_of(1)
    assert result["status"] == "succeeded", result["log"]
    assert result["reboot"]["performed"] is True
    assert result["reboot"]["boot_id_before"] == before_id
    assert result["reboot"]["boot_id_after"] == boot_id.read_text().strip()
    assert agent.server_versions()[HELLO] == V2


def test_release_drops_the_kept_files(agent: Agent) -> None:
    agent.server.add_job(agent.job())
    assert agent.run() == 0
    kept = agent.state / "kept" / "7"
    assert (kept / "manifest.json").exists()
    agent.server.release = [7]
    assert agent.run() == 0
    assert not kept.exists()


def test_bad_reboot_command_is_a_usage_error(
    agent: Agent, capsys: pytest.CaptureFixture[str]
) -> None:
    for bad in ("systemctl reboot", "[]", '["ok", 3]', "{}"):
        assert agent.run("--reboot-command", bad) == 2
        assert "--reboot-command must be a JSON list" in capsys.readouterr().err


def test_server_without_job_endpoints(agent: Agent) -> None:
    agent.server.jobs_supported = False
    assert agent.run() == 0
    assert len(agent.server.reports) == 1 and agent.server.result_posts == []


def test_run_forever_polls_runs_and_reinventories(agent: Agent) -> None:
    state = StateDir(str(agent.state))
    credentials = state.load_credentials()
    client = AgentClient(credentials.server, credential=credentials.credential)
    executor = JobExecutor(str(agent.state), str(agent.root), reboot_command=["false"])
    jobs = JobAgent(state, client, credentials, executor)
    agent.server.poll_interval = 1
    agent.server.add_job(agent.job())
    stop = threading.Event()

    def watch() -> None:
        while len(agent.server.reports) < 2:  # the report after the job
            stop.wait(0.05)
        stop.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    run_forever(LocalHost(str(agent.root)), state, client, credentials.asset_id, stop, jobs=jobs)
    watcher.join()
    assert agent.server.result_of(1)["status"] == "succeeded"
    assert agent.server_versions()[HELLO] == V2
