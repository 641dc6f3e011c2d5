"""The dnf back-end against real rpms in sandbox roots.

Real rpms (rpmbuild, tests.repos.builders) of pwt-hello 1:1.0-1 and
1:2.0-1 (an epoch: dnf's spec and the cache lookup must carry it),
indexed by createrepo_c into repository "both" and repository "next" (2.0
only, as after a mirror dropped the old version), served on loopback HTTP
(conftest.rpm_repo). Each test gets a fresh root whose rpm database (in
/var/lib/rpm, which the ~/.rpmmacros of tests.repos.builders.rpm_env makes
every tool use) holds only pwt-base, and a .repo file in
ROOT/etc/yum.repos.d.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from patchwarden.agent.pkgmgr import DnfManager, Target
from patchwarden.agent.pkgmgr.base import Change
from tests.agent.pkgmgr.conftest import RPM_NAME as NAME
from tests.agent.pkgmgr.conftest import RPM_V1 as V1
from tests.agent.pkgmgr.conftest import RPM_V2 as V2
from tests.agent.pkgmgr.conftest import RpmRepo, closed_port, holding_lock, rpm_root
from tests.repos.builders import require


def write_repo(root: Path, url: str) -> None:
    repos = root / "etc/yum.repos.d"
    repos.mkdir(parents=True, exist_ok=True)
    (repos / "pw.repo").write_text(f"[pw]\nname=pw\nbaseurl={url}\ngpgcheck=0\n")


def sandbox(root: Path, repo: RpmRepo, url: str) -> DnfManager:
    write_repo(rpm_root(root, repo), url)
    return DnfManager(str(root), env=repo.env, releasever="1")


@pytest.fixture
def dnf(tmp_path: Path, rpm_repo: RpmRepo) -> DnfManager:
    require("dnf")
    return sandbox(tmp_path / "root", rpm_repo, f"{rpm_repo.base_url}/both")


def test_install_exact_versions_up_and_down(dnf: DnfManager, rpm_repo: RpmRepo) -> None:
    assert dnf.installed([NAME]) == {}
    first = dnf.install([Target(NAME, V1)])
    assert first.ok, first.output
    assert first.argv[:3] == ("dnf", "--installroot", dnf.root)
    assert f"{NAME}-1:1.0-1" in first.argv and "--setopt=keepcache=True" in first.argv
    assert dnf.installed([NAME]) == {NAME: V1}

    upgraded = dnf.install([Target(NAME, V2, rpm_repo.arch)])
    assert upgraded.ok, upgraded.output
    assert f"{NAME}-1:2.0-1.{rpm_repo.arch}" in upgraded.argv
    assert dnf.installed() == {NAME: V2, "pwt-base": "1.0-1"}

    downgraded = dnf.install([Target(NAME, V1)])
    assert downgraded.ok, downgraded.output
    assert "Downgrading" in downgraded.stdout
    assert dnf.installed([NAME]) == {NAME: V1}

    removed = dnf.remove([NAME])
    assert removed.ok, removed.output
    assert dnf.installed([NAME]) == {}


def test_check_says_what_would_change_and_changes_nothing(
    dnf: DnfManager, rpm_repo: RpmRepo
) -> None:
    assert dnf.install([Target(NAME, V1)]).ok
    plan = dnf.check([Target(NAME, V2)])
    assert plan.ok, plan.result.output
    assert "--assumeno" in plan.result.argv
    assert plan.changes == (Change("upgrade", NAME, V2, V1, rpm_repo.arch),)
    assert dnf.installed([NAME]) == {NAME: V1}

    fresh = dnf.check([Target(NAME, V2)])  # twice: still nothing installed
    assert fresh.changes == plan.changes and dnf.installed([NAME]) == {NAME: V1}
    assert dnf.check([Target(NAME, V1)]).changes == ()  # already there
    missing = dnf.check([Target(NAME, "9.9-1")])
    assert not missing.ok and not missing.transient and missing.changes == ()


def test_rollback_from_kept_file_after_the_repository_dropped_the_version(
    dnf: DnfManager, rpm_repo: RpmRepo, tmp_path: Path
) -> None:
    assert dnf.install([Target(NAME, V1)]).ok
    cached = dnf.cached_package_file(NAME, V1, rpm_repo.arch)
    assert cached is not None, "keepcache should have kept the downloaded rpm"
    assert cached.startswith(dnf.path("/var/cache/dnf/"))
    assert cached.endswith(f"/{NAME}-1.0-1.{rpm_repo.arch}.rpm")
    assert dnf.cached_package_file(NAME, V1) == cached
    # Same file name, other epoch: the header decides.
    assert dnf.cached_package_file(NAME, "1.0-1", rpm_repo.arch) is None
    kept = tmp_path / "kept" / Path(cached).name
    kept.parent.mkdir()
    shutil.copy(cached, kept)

    write_repo(Path(dnf.root), f"{rpm_repo.base_url}/next")
    assert dnf.refresh().ok
    shutil.rmtree(dnf.path("/var/cache/dnf"))
    assert dnf.install([Target(NAME, V2)]).ok
    gone = dnf.install([Target(NAME, V1)])
    assert not gone.ok and not gone.transient

    restored = dnf.install_files([str(kept)])
    assert restored.ok, restored.output
    assert dnf.installed([NAME]) == {NAME: V1}


def test_repack_is_not_possible_with_rpm(tmp_path: Path, rpm_repo: RpmRepo) -> None:
    manager = DnfManager(str(rpm_root(tmp_path / "root", rpm_repo)), env=rpm_repo.env)
    assert manager.repack(NAME, str(tmp_path / "out")) is None
    assert not (tmp_path / "out").exists()


def test_locks(dnf: DnfManager, rpm_repo: RpmRepo) -> None:
    assert not dnf.lock_held()
    with holding_lock(Path(dnf.path("/var/lib/rpm/.rpm.lock"))):
        assert dnf.lock_held()
        busy = dnf.install([Target(NAME, V1)])
        assert not busy.ok and busy.transient, busy.output
    assert not dnf.lock_held()
    # dnf's own lock: a pid file naming a live process.
    with holding_lock(Path(dnf.path("/var/tmp/unrelated"))) as pid:
        pid_file = Path(dnf.path("/var/lib/dnf/rpmdb_lock.pid"))
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(str(pid))
        assert dnf.lock_held()
        waiting = dnf.install([Target(NAME, V1)])  # exit_on_lock: no waiting
        assert not waiting.ok and waiting.transient, waiting.output
    assert not dnf.lock_held()


def test_unreachable_repository_is_transient(tmp_path: Path, rpm_repo: RpmRepo) -> None:
    require("dnf")
    manager = sandbox(tmp_path / "root", rpm_repo, f"http://127.0.0.1:{closed_port()}/both")
    result = manager.install([Target(NAME, V1)])
    assert not result.ok and result.transient, result.output
    refreshed = manager.refresh()
    assert not refreshed.ok and refreshed.transient, refreshed.output


def test_reboot_required_in_a_sandbox_is_its_flag_file(tmp_path: Path, rpm_repo: RpmRepo) -> None:
    manager = DnfManager(str(rpm_root(tmp_path / "root", rpm_repo)), env=rpm_repo.env)
    assert not manager.reboot_required()
    flag = Path(manager.path("/run/reboot-needed"))
    flag.parent.mkdir(parents=True)
    flag.touch()
    assert manager.reboot_required()
