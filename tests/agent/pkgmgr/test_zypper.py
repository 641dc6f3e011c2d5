"""The zypper back-end against real rpms in sandbox roots.

The same packages and repositories as test_dnf.py (conftest.rpm_repo);
each test's root has an rpm database holding pwt-base and a .repo file in
ROOT/etc/zypp/repos.d (gpgcheck off: the test packages are unsigned;
keeppackages on, so downloaded rpms stay in the cache for a rollback).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from patchwarden.agent.pkgmgr import Target, ZypperManager
from patchwarden.agent.pkgmgr.base import Change
from patchwarden.agent.pkgmgr.zypper import parse_install_summary
from tests.agent.pkgmgr.conftest import RPM_NAME as NAME
from tests.agent.pkgmgr.conftest import RPM_V1 as V1
from tests.agent.pkgmgr.conftest import RPM_V2 as V2
from tests.agent.pkgmgr.conftest import RpmRepo, closed_port, holding_lock, rpm_root
from tests.repos.builders import require


def write_repo(root: Path, url: str) -> None:
    repos = root / "etc/zypp/repos.d"
    repos.mkdir(parents=True, exist_ok=True)
    (repos / "pw.repo").write_text(
        f"[pw]\nname=pw\nenabled=1\nautorefresh=1\nbaseurl={url}\ngpgcheck=0\nkeeppackages=1\n"
    )


def sandbox(root: Path, repo: RpmRepo, url: str) -> ZypperManager:
    write_repo(rpm_root(root, repo), url)
    return ZypperManager(str(root), env=repo.env)


@pytest.fixture
def zypper(tmp_path: Path, rpm_repo: RpmRepo) -> ZypperManager:
    require("zypper")
    return sandbox(tmp_path / "root", rpm_repo, f"{rpm_repo.base_url}/both")


def test_install_exact_versions_up_and_down(zypper: ZypperManager, rpm_repo: RpmRepo) -> None:
    first = zypper.install([Target(NAME, V1)])
    assert first.ok, first.output
    assert first.argv[:4] == ("zypper", "--non-interactive", "--root", zypper.root)
    assert ("--name", "--oldpackage", f"{NAME}={V1}") == first.argv[-3:]
    assert zypper.installed([NAME]) == {NAME: V1}

    upgraded = zypper.install([Target(NAME, V2, rpm_repo.arch)])
    assert upgraded.ok, upgraded.output
    assert f"{NAME}.{rpm_repo.arch}={V2}" in upgraded.argv
    assert zypper.installed([NAME]) == {NAME: V2}

    downgraded = zypper.install([Target(NAME, V1)])
    assert downgraded.ok, downgraded.output
    assert zypper.installed([NAME]) == {NAME: V1}

    assert zypper.remove([NAME]).ok
    assert zypper.installed([NAME]) == {}


def test_check_says_what_would_change_and_changes_nothing(
    zypper: ZypperManager, rpm_repo: RpmRepo
) -> None:
    assert zypper.install([Target(NAME, V2)]).ok
    plan = zypper.check([Target(NAME, V1)])
    assert plan.ok, plan.result.output
    assert "--dry-run" in plan.result.argv
    assert plan.changes == (Change("downgrade", NAME, V1, V2, rpm_repo.arch),)
    assert zypper.installed([NAME]) == {NAME: V2}
    missing = zypper.check([Target(NAME, "9.9-1")])
    assert not missing.ok and not missing.transient and missing.changes == ()


def test_rollback_from_the_kept_package(
    zypper: ZypperManager, rpm_repo: RpmRepo, tmp_path: Path
) -> None:
    assert zypper.install([Target(NAME, V1)]).ok
    cached = zypper.cached_package_file(NAME, V1, rpm_repo.arch)
    assert cached is not None and cached.startswith(zypper.path("/var/cache/zypp/packages/"))
    kept = tmp_path / Path(cached).name
    shutil.copy(cached, kept)

    write_repo(Path(zypper.root), f"{rpm_repo.base_url}/next")
    assert zypper.refresh().ok
    assert zypper.install([Target(NAME, V2)]).ok
    gone = zypper.install([Target(NAME, V1)])
    assert not gone.ok and not gone.transient

    restored = zypper.install_files([str(kept)])  # rpm -U --oldpackage
    assert restored.ok, restored.output
    assert restored.argv[:2] == ("rpm", "--root")
    assert zypper.installed([NAME]) == {NAME: V1}
    assert zypper.repack(NAME, str(tmp_path / "out")) is None


def test_locks(zypper: ZypperManager) -> None:
    assert not zypper.lock_held()
    with holding_lock(Path(zypper.path("/var/lib/rpm/.rpm.lock"))):
        assert zypper.lock_held()
        busy = zypper.install([Target(NAME, V1)])
        assert not busy.ok and busy.transient, busy.output
    # libzypp's lock is its pid file naming a live process (it holds a POSIX
    # lock on the file only while it checks; zypper would wait on that one).
    pid_file = Path(zypper.path("/run/zypp.pid"))
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with holding_lock(Path(zypper.path("/var/tmp/unrelated"))) as pid:
        pid_file.write_text(str(pid))
        assert zypper.lock_held()
        locked = zypper.install([Target(NAME, V1)])
        assert not locked.ok and locked.transient and locked.exit_code == 7, locked.output
        assert "System management is locked" in locked.output
    assert not zypper.lock_held()  # the process is gone


def test_unreachable_repository_is_transient(tmp_path: Path, rpm_repo: RpmRepo) -> None:
    require("zypper")
    manager = sandbox(tmp_path / "root", rpm_repo, f"http://127.0.0.1:{closed_port()}/both")
    result = manager.install([Target(NAME, V1)])
    assert not result.ok and result.transient, result.output
    refreshed = manager.refresh()
    assert not refreshed.ok and refreshed.transient, refreshed.output


def test_install_summary_parsing() -> None:
    xml = """<?xml version='1.0'?>
<stream>
<install-summary download-size="0" space-usage-diff="0" packages-to-change="4">
<to-upgrade><solvable type="package" name="a" edition="2-1" arch="x86_64" edition-old="1-1" arch-old="x86_64"/></to-upgrade>
<to-install><solvable type="package" name="b" edition="1:3-1" arch="noarch"/>
<solvable type="patch" name="SUSE-2024-1" edition="1" arch="noarch"/></to-install>
<to-remove><solvable type="package" name="c" edition="5-1" arch="x86_64"/></to-remove>
</install-summary>
</stream>"""
    assert parse_install_summary(xml) == [
        Change("upgrade", "a", "2-1", "1-1", "x86_64"),
        Change("install", "b", "1:3-1", None, "noarch"),
        Change("remove", "c", None, "5-1", "x86_64"),
    ]
    assert parse_install_summary("not xml") == []
