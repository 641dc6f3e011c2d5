"""The job executor on the dnf back-end: real rpms in a sandbox root, one
upgrade that passes and one whose smoke test fails and is rolled back from
the kept rpm after the repository dropped the old version."""

from __future__ import annotations

from pathlib import Path

from patchwarden.agent.jobs import JobExecutor
from patchwarden.agent.pkgmgr import DnfManager, PackageManager, Target
from patchwarden.protocol.jobs import result_problems
from tests.agent.jobkit import NOW, job
from tests.agent.pkgmgr.conftest import RPM_NAME as NAME
from tests.agent.pkgmgr.conftest import RPM_V1 as V1
from tests.agent.pkgmgr.conftest import RPM_V2 as V2
from tests.agent.pkgmgr.conftest import RpmRepo
from tests.agent.pkgmgr.test_dnf import sandbox, write_repo
from tests.repos.builders import require


def dnf_executor(tmp_path: Path, dnf: DnfManager) -> JobExecutor:
    def factory(name: str | None) -> PackageManager:
        assert name == "dnf"
        return dnf

    return JobExecutor(
        str(tmp_path / "state"),
        dnf.root,
        manager_factory=factory,
        clock=lambda: NOW,
        sleep=lambda seconds: None,
        reboot_command=["false"],
    )


def dnf_job(job_id: int, smoke: list[str]) -> dict[str, object]:
    return job(
        job_id=job_id,
        package_manager="dnf",
        targets=[{"name": NAME, "version": V2, "arch": None}],
        smoke_tests=[{"kind": "command", "name": "smoke", "timeout": 10, "argv": smoke}],
    )


def test_dnf_upgrade_and_rollback_from_the_kept_rpm(tmp_path: Path, rpm_repo: RpmRepo) -> None:
    require("dnf")
    dnf = sandbox(tmp_path / "root", rpm_repo, f"{rpm_repo.base_url}/both")
    assert dnf.install([Target(NAME, V1)]).ok
    # The mirror now only has 2.0: 1.0 can only come back from the kept file.
    write_repo(tmp_path / "root", f"{rpm_repo.base_url}/next")
    runner = dnf_executor(tmp_path, dnf)

    failed = runner.run(dnf_job(1, ["false"]))
    assert result_problems(failed) == []
    assert failed["status"] == "rolled_back", failed["log"]
    assert failed["before"] == {NAME: V1}
    assert failed["rollback"] == {"method": "packages", "verified": True, "versions": {NAME: V1}}
    assert "kept pwt-hello 1:1.0-1 from the package cache" in failed["log"]
    assert dnf.installed([NAME]) == {NAME: V1}

    passed = runner.run(dnf_job(2, ["true"]))
    assert passed["status"] == "succeeded", passed["log"]
    assert (passed["before"], passed["after"]) == ({NAME: V1}, {NAME: V2})
    assert dnf.installed([NAME]) == {NAME: V2}
