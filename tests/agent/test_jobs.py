"""The job executor against real packages in apt sandbox roots."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from patchwarden.agent.jobs import JobExecutor, RebootStarted
from patchwarden.agent.journal import Journal
from patchwarden.agent.pkgmgr import AptManager, Target
from patchwarden.protocol.jobs import RESULT_STATUSES, result_problems
from tests.agent.jobkit import (
    DEP,
    DEP_V,
    HELLO,
    NOW,
    SLOW,
    SLOW_V1,
    SLOW_V2,
    V1,
    V2,
    JobRepo,
    apt_root,
    dpkg_log,
    executor_subprocess,
    file_says,
    job,
    kill_tree,
    reboot_standin,
    use_suite,
    wait_for,
)
from tests.agent.pkgmgr.conftest import holding_lock

RESULT_KEYS = {
    "protocol", "job_id", "attempt", "status", "phase", "transient", "error", "started_at",
    "finished_at", "before", "after", "smoke_tests", "reboot", "rollback", "log",
}  # fmt: skip


@pytest.fixture
def root(tmp_path: Path, job_repo: JobRepo) -> Path:
    return tmp_path / "root"


@pytest.fixture
def apt(root: Path, job_repo: JobRepo) -> AptManager:
    manager = apt_root(root, job_repo)
    assert manager.install([Target(HELLO, V1)]).ok
    return manager


def executor(tmp_path: Path, root: Path, **kwargs: Any) -> JobExecutor:
    kwargs.setdefault("clock", lambda: NOW)
    kwargs.setdefault("reboot_command", ["false"])  # never the real reboot
    kwargs.setdefault("sleep", lambda seconds: None)
    return JobExecutor(str(tmp_path / "state"), str(root), **kwargs)


def well_formed(result: dict[str, Any]) -> dict[str, Any]:
    assert set(result) == RESULT_KEYS
    assert result["status"] in RESULT_STATUSES
    assert result_problems(result) == []
    assert len(result["log"]) <= 16 * 1024
    return result


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_upgrade_with_passing_smoke_tests(
    tmp_path: Path, root: Path, apt: AptManager, job_repo: JobRepo, listener: int
) -> None:
    script = tmp_path / "check.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    smoke = [
        file_says(root, "2.0"),
        {"kind": "tcp", "name": "port", "timeout": 5, "host": "127.0.0.1", "port": listener},
        {"kind": "http", "name": "web", "timeout": 5, "url": job_repo.url + "/dists/stable/Release",
         "expect_status": 200},
        {"kind": "script", "name": "script", "timeout": 5, "path": str(script)},
    ]  # fmt: skip
    runner = executor(tmp_path, root)
    result = well_formed(runner.run(job(smoke_tests=smoke)))
    assert result["status"] == "succeeded", result["log"]
    assert result["phase"] == "done" and result["error"] is None
    assert result["before"] == {HELLO: V1, DEP: None}  # the new dependency is in the snapshot
    assert result["after"] == {HELLO: V2, DEP: DEP_V}
    assert [t["ok"] for t in result["smoke_tests"]] == [True, True, True, True]
    assert result["reboot"] == {"performed": False, "boot_id_before": None, "boot_id_after": None}
    assert result["rollback"] is None
    assert apt.installed([HELLO, DEP]) == {HELLO: V2, DEP: DEP_V}
    # The replaced version's package file is kept for this rollout.
    kept = tmp_path / "state/kept/7"
    manifest = json.loads((kept / "manifest.json").read_text())
    assert manifest[HELLO]["version"] == V1
    assert (kept / manifest[HELLO]["file"]).is_file()
    entry = Journal(str(tmp_path / "state")).load(1)
    assert entry is not None and entry["state"] == "finished" and entry["phase"] == "done"
    runner.release(7)
    assert not kept.exists()


def test_failed_smoke_test_rolls_back_and_removes_the_added_package(
    tmp_path: Path, root: Path, apt: AptManager
) -> None:
    result = well_formed(executor(tmp_path, root).run(job(smoke_tests=[file_says(root, "1.0")])))
    assert result["status"] == "rolled_back", result["log"]
    assert result["phase"] == "smoke_test"
    assert "version file says 1.0" in result["error"]
    assert result["smoke_tests"][0]["ok"] is False
    assert result["rollback"] == {
        "method": "packages",
        "verified": True,
        "versions": {HELLO: V1, DEP: None},
    }
    assert apt.installed([HELLO, DEP]) == {HELLO: V1}
    assert result["after"] == {HELLO: V1, DEP: None}
    assert (root / "usr/share/pwt-hello/version").read_text() == "1.0\n"


def test_rollback_from_kept_files_after_the_repository_dropped_v1(
    tmp_path: Path, root: Path, apt: AptManager, job_repo: JobRepo
) -> None:
    use_suite(root, job_repo, "next")
    assert apt.refresh().ok
    shutil.rmtree(apt.path("/var/cache/apt/archives"))  # no cached v1 either: it gets repacked

    result = well_formed(executor(tmp_path, root).run(job(smoke_tests=[file_says(root, "1.0")])))
    assert result["status"] == "rolled_back", result["log"]
    assert "repacked" in result["log"]
    assert apt.installed([HELLO, DEP]) == {HELLO: V1}
    assert (root / "usr/share/pwt-hello/version").read_text() == "1.0\n"


def test_rollback_job_after_a_finished_rollout(
    tmp_path: Path, root: Path, apt: AptManager, job_repo: JobRepo
) -> None:
    runner = executor(tmp_path, root)
    assert runner.run(job())["status"] == "succeeded"
    use_suite(root, job_repo, "next")  # v1 is gone from the mirror meanwhile
    assert apt.refresh().ok
    back = job(
        job_id=2,
        action="rollback",
        targets=[{"name": HELLO, "version": V1, "arch": None}, {"name": DEP, "version": None}],
    )
    result = well_formed(runner.run(back))
    assert result["status"] == "succeeded", result["log"]
    assert result["before"] == {HELLO: V2, DEP: DEP_V}
    assert result["after"] == {HELLO: V1, DEP: None}
    assert "installing kept files" in result["log"]
    assert apt.installed([HELLO, DEP]) == {HELLO: V1}


def test_failed_install_that_changed_nothing_is_failed(
    tmp_path: Path, root: Path, apt: AptManager
) -> None:
    result = well_formed(
        executor(tmp_path, root).run(job(targets=[{"name": HELLO, "version": "9.9-1"}]))
    )
    assert result["status"] == "failed" and result["phase"] == "snapshot"
    assert result["transient"] is False
    assert apt.installed([HELLO]) == {HELLO: V1}


def test_transient_lock_is_retried_with_backoff(
    tmp_path: Path, root: Path, apt: AptManager
) -> None:
    sleeps: list[float] = []
    with ExitStack() as lock:
        lock.enter_context(holding_lock(root / "var/lib/dpkg/lock-frontend"))

        def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            if len(sleeps) == 2:
                lock.close()  # the other process finishes

        document = job(pre_checks={"min_free_mb": 0, "check_lock": False})
        result = well_formed(executor(tmp_path, root, sleep=sleep).run(document))
    assert result["status"] == "succeeded", result["log"]
    assert sleeps == [1.0, 2.0]  # exponential
    assert result["log"].count("failed transiently") == 2
    assert apt.installed([HELLO]) == {HELLO: V2}


def test_lock_held_throughout_is_refused_as_transient(
    tmp_path: Path, root: Path, apt: AptManager
) -> None:
    sleeps: list[float] = []
    with holding_lock(root / "var/lib/dpkg/lock"):
        result = well_formed(executor(tmp_path, root, sleep=sleeps.append).run(job()))
    assert (result["status"], result["phase"], result["transient"]) == (
        "refused",
        "pre_check",
        True,
    )
    assert sleeps == [1.0, 2.0]
    assert apt.installed([HELLO]) == {HELLO: V1}


def test_pre_checks_refuse(tmp_path: Path, root: Path, apt: AptManager) -> None:
    runner = executor(tmp_path, root)
    flag = root / "run/reboot-required"
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.touch()
    pending = well_formed(runner.run(job(job_id=1)))
    assert (pending["status"], pending["phase"]) == ("refused", "pre_check")
    assert "reboot is pending" in pending["error"]
    flag.unlink()
    disk = well_formed(runner.run(job(job_id=2, pre_checks={"min_free_mb": 10**9})))
    assert (disk["status"], disk["phase"]) == ("refused", "pre_check")
    assert "MiB free" in disk["error"]
    assert apt.installed([HELLO]) == {HELLO: V1}


def test_expired_job_is_refused_and_nothing_runs(
    tmp_path: Path, root: Path, apt: AptManager
) -> None:
    marker = tmp_path / "hook-ran"
    document = job(
        expires_at=(NOW - timedelta(seconds=1)).isoformat(), pre_hook=["touch", str(marker)]
    )
    log_before = dpkg_log(root)
    result = well_formed(executor(tmp_path, root).run(document))
    assert (result["status"], result["phase"]) == ("refused", "verify")
    assert "expired" in result["error"]
    assert not marker.exists() and dpkg_log(root) == log_before


def test_hooks_run_in_order_without_a_shell(tmp_path: Path, root: Path, apt: AptManager) -> None:
    trace = tmp_path / "trace"
    document = job(
        pre_hook=["sh", "-c", f'echo "pre $PATCHWARDEN_PHASE" >> {trace}'],
        post_hook=["sh", "-c", f'echo "post $PATCHWARDEN_PHASE $0" >> {trace}', "a;b"],
    )
    result = executor(tmp_path, root).run(document)
    assert result["status"] == "succeeded", result["log"]
    assert trace.read_text() == "pre pre_hook\npost post_hook a;b\n"  # "a;b" stayed one argument
    failing = executor(tmp_path / "two", root).run(job(job_id=2, pre_hook=["false"]))
    assert (failing["status"], failing["phase"]) == ("failed", "pre_hook")


def test_fs_snapshot_restore_is_the_rollback(tmp_path: Path, root: Path, apt: AptManager) -> None:
    saved = tmp_path / "status.saved"
    status = root / "var/lib/dpkg/status"
    document = job(
        smoke_tests=[file_says(root, "1.0")],
        fs_snapshot={
            "create": ["cp", str(status), str(saved)],
            # A stand-in for a snapshot tool: put the package database back
            # and roll the files back the way a snapshot would.
            "restore": [
                "sh", "-c", f"cp {saved} {status} && printf '1.0\\n' > {root}/usr/share/pwt-hello/version",
            ],
            "delete": ["rm", "-f", str(saved)],
        },
    )  # fmt: skip
    runner = executor(tmp_path, root)
    result = well_formed(runner.run(document))
    assert result["status"] == "rolled_back", result["log"]
    assert result["rollback"]["method"] == "fs_snapshot"
    assert result["rollback"]["verified"] is True
    assert apt.installed([HELLO]) == {HELLO: V1}
    runner.release(7)
    assert not saved.exists()


def test_redelivered_finished_job_is_not_run_again(
    tmp_path: Path, root: Path, apt: AptManager
) -> None:
    runner = executor(tmp_path, root)
    first = runner.run(job())
    log_after_first = dpkg_log(root)
    assert apt.install([Target(HELLO, V1)]).ok  # someone moved it back meanwhile
    log_after_manual = dpkg_log(root)
    again = runner.run(job())
    assert again == first
    assert dpkg_log(root) == log_after_manual != log_after_first
    assert apt.installed([HELLO]) == {HELLO: V1}


def test_reboot_always_with_stand_ins(tmp_path: Path, root: Path, apt: AptManager) -> None:
    command, boot_id = reboot_standin(tmp_path)
    before_id = boot_id.read_text().strip()
    runner = executor(tmp_path, root, reboot_command=command, boot_id_file=str(boot_id))
    with pytest.raises(RebootStarted):
        runner.run(job(reboot="always", smoke_tests=[file_says(root, "2.0")]))
    entry = Journal(str(tmp_path / "state")).load(1)
    assert entry is not None and (entry["state"], entry["phase"]) == ("running", "reboot")
    assert entry["reboot"]["boot_id_before"] == before_id
    after_id = boot_id.read_text().strip()
    assert after_id != before_id

    # The next start of the agent (a new executor) continues the job.
    (result,) = executor(tmp_path, root, boot_id_file=str(boot_id)).recover()
    well_formed(result)
    assert result["status"] == "succeeded", result["log"]
    assert result["reboot"] == {
        "performed": True,
        "boot_id_before": before_id,
        "boot_id_after": after_id,
    }
    assert result["smoke_tests"][0]["ok"] is True


def test_reboot_that_does_not_happen(tmp_path: Path, root: Path, apt: AptManager) -> None:
    _, boot_id = reboot_standin(tmp_path)
    now = [NOW]
    runner = executor(
        tmp_path, root, reboot_command=["true"], boot_id_file=str(boot_id), clock=lambda: now[0]
    )
    with pytest.raises(RebootStarted):
        runner.run(job(reboot="always"))
    assert runner.recover() == []  # still waiting: the reboot may be under way
    now[0] = NOW + timedelta(hours=1)
    (result,) = runner.recover()
    assert result["status"] == "succeeded"
    assert result["reboot"]["performed"] is False
    assert result["reboot"]["boot_id_after"] == result["reboot"]["boot_id_before"]
    assert "did not reboot" in result["log"]


def test_reboot_if_required_only_when_flagged(tmp_path: Path, root: Path, apt: AptManager) -> None:
    command, boot_id = reboot_standin(tmp_path)
    runner = executor(tmp_path, root, reboot_command=command, boot_id_file=str(boot_id))
    result = runner.run(job(reboot="if_required"))
    assert result["status"] == "succeeded" and result["reboot"]["performed"] is False


def test_crash_mid_install_is_rolled_back_on_the_next_start(
    tmp_path: Path, root: Path, apt: AptManager, job_repo: JobRepo
) -> None:
    assert apt.install([Target(SLOW, SLOW_V1)]).ok
    state = tmp_path / "state"
    if job_repo.blocker.exists():
        job_repo.blocker.unlink()
    document = job(targets=[{"name": SLOW, "version": SLOW_V2}])
    child = executor_subprocess(state, root, document)
    try:
        wait_for(job_repo.blocker)
        entry = Journal(str(state)).load(1)
        assert entry is not None and entry["phase"] == "install"
        # The host dies: the agent, apt-get, dpkg and the script, all at once.
        kill_tree(child.pid)
    finally:
        child.kill()
        child.communicate(timeout=30)
        job_repo.blocker.unlink(missing_ok=True)
    assert apt.installed([SLOW]) == {}  # half-installed: dpkg does not call it installed

    (result,) = executor(tmp_path, root).recover()
    well_formed(result)
    assert result["status"] == "rolled_back", result["log"]
    assert result["phase"] == "install"
    assert "interrupted" in result["error"]
    assert result["after"] == {SLOW: SLOW_V1}
    assert apt.installed([SLOW]) == {SLOW: SLOW_V1}
    assert Journal(str(state)).unfinished() == []


def test_crash_after_the_install_completed_continues(
    tmp_path: Path, root: Path, apt: AptManager
) -> None:
    """The agent died after dpkg finished but before it journaled the next
    phase: the package database says the targets are in, so it goes on."""
    runner = executor(tmp_path, root, reboot_command=["true"])
    with pytest.raises(RebootStarted):
        runner.run(job(reboot="always"))
    journal = Journal(str(tmp_path / "state"))
    entry = journal.load(1)
    assert entry is not None
    entry["phase"], entry["reboot"] = "install", None
    journal.save(entry)
    (result,) = executor(tmp_path, root, boot_id_file=str(tmp_path / "none")).recover()
    assert result["status"] == "succeeded", result["log"]
    assert "the install had completed" in result["log"]


def test_crash_before_the_install_reports_failed(
    tmp_path: Path, root: Path, apt: AptManager
) -> None:
    journal = Journal(str(tmp_path / "state"))
    journal.save({"job": job(), "state": "running", "phase": "pre_hook", "log": ""})
    (result,) = executor(tmp_path, root).recover()
    assert (result["status"], result["phase"], result["transient"]) == ("failed", "pre_hook", True)
    assert apt.installed([HELLO]) == {HELLO: V1}


def test_log_is_truncated_to_its_end(tmp_path: Path, root: Path, apt: AptManager) -> None:
    noisy = ["sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done"]
    result = executor(tmp_path, root, hook_timeout=30).run(
        job(
            pre_hook=noisy, post_hook=noisy, smoke_tests=[{**file_says(root, "2.0"), "argv": noisy}]
        )
    )
    assert len(result["log"]) <= 16 * 1024
    assert result["log"].rstrip().endswith("succeeded")


def test_timeouts_end_smoke_tests(tmp_path: Path, root: Path, apt: AptManager) -> None:
    slow = {"kind": "command", "name": "slow", "timeout": 1, "argv": ["sleep", "30"]}
    result = executor(tmp_path, root).run(job(smoke_tests=[slow]))
    assert result["status"] == "rolled_back"
    assert "timed out" in result["smoke_tests"][0]["detail"]
