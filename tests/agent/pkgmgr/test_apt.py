"""The apt back-end against real packages in sandbox roots.

Real .debs (dpkg-deb, tests.repos.builders) of pwt-hello 1:1.0-1 and
1:2.0-1 (an epoch, so the cache file name needs apt's %3a quoting), indexed
by apt-ftparchive into suite "stable" (both) and "next" (2.0 only, as after
a mirror dropped the old version), served on loopback HTTP. Each test gets
a fresh sandbox root holding only an empty dpkg status file and a
sources.list; the back-end points apt and dpkg at it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from patchwarden.agent.pkgmgr import AptManager, PackageManagerError, Target
from patchwarden.agent.pkgmgr.base import Change
from tests.agent.pkgmgr.conftest import (
    build_deb_with_files,
    closed_port,
    dpkg_sandbox,
    holding_lock,
)
from tests.repos.builders import Deb, apt_ftparchive_suite, build_deb, require, run
from tests.repos.repo_server import serve

NAME = "pwt-hello"
V1, V2 = "1:1.0-1", "1:2.0-1"


@dataclass(frozen=True)
class AptRepo:
    url: str
    mirror: Path


@pytest.fixture(scope="module")
def apt_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AptRepo]:
    require("dpkg", "dpkg-deb", "dpkg-query", "apt-get", "apt-ftparchive")
    work = tmp_path_factory.mktemp("apt-pkgmgr")
    v1 = build_deb(work, Deb(NAME, V1, "amd64"))
    v2 = build_deb(work, Deb(NAME, V2, "amd64"))
    mirror = work / "mirror"
    apt_ftparchive_suite(mirror, "stable", [v1, v2])
    apt_ftparchive_suite(mirror, "next", [v2])
    with serve(mirror) as server:
        yield AptRepo(server.base_url, mirror)


def sandbox(root: Path, url: str, suite: str = "stable") -> AptManager:
    dpkg_sandbox(root)
    (root / "etc/apt").mkdir(parents=True)
    (root / "etc/apt/sources.list").write_text(f"deb [trusted=yes] {url} {suite} main\n")
    return AptManager(str(root))


@pytest.fixture
def apt(tmp_path: Path, apt_repo: AptRepo) -> AptManager:
    manager = sandbox(tmp_path / "root", apt_repo.url)
    refreshed = manager.refresh()
    assert refreshed.ok, refreshed.output
    return manager


def status_bytes(manager: AptManager) -> bytes:
    return Path(manager.path("/var/lib/dpkg/status")).read_bytes()


def test_install_exact_versions_up_and_down(apt: AptManager) -> None:
    assert apt.installed([NAME]) == {}
    first = apt.install([Target(NAME, V1)])
    assert first.ok, first.output
    assert first.argv[:2] == ("apt-get", "-q")
    assert "--allow-downgrades" in first.argv and f"{NAME}={V1}" in first.argv
    assert f"DPkg::Options::=--root={apt.root}" in first.argv
    assert apt.installed([NAME]) == {NAME: V1}

    upgraded = apt.install([Target(NAME, V2, "amd64")])
    assert upgraded.ok, upgraded.output
    assert f"{NAME}:amd64={V2}" in upgraded.argv
    assert apt.installed() == {NAME: V2}

    downgraded = apt.install([Target(NAME, V1)])
    assert downgraded.ok, downgraded.output
    assert apt.installed([NAME]) == {NAME: V1}
    # dpkg logged into the sandbox, not into the host's /var/log/dpkg.log.
    assert f"upgrade {NAME}:amd64 {V2} {V1}" in Path(apt.path("/var/log/dpkg.log")).read_text()

    removed = apt.remove([NAME])
    assert removed.ok, removed.output
    assert apt.installed([NAME]) == {}


def test_check_says_what_would_change_and_changes_nothing(apt: AptManager) -> None:
    assert apt.install([Target(NAME, V1)]).ok
    before = status_bytes(apt)

    plan = apt.check([Target(NAME, V2)])
    assert plan.ok, plan.result.output
    assert "-s" in plan.result.argv
    assert plan.changes == (Change("upgrade", NAME, V2, V1, "amd64"),)
    assert status_bytes(apt) == before and apt.installed([NAME]) == {NAME: V1}

    assert apt.install([Target(NAME, V2)]).ok
    plan = apt.check([Target(NAME, V1)])
    assert plan.changes == (Change("downgrade", NAME, V1, V2, "amd64"),)
    assert apt.installed([NAME]) == {NAME: V2}

    assert apt.check([Target(NAME, V2)]).changes == ()  # already there
    missing = apt.check([Target(NAME, "9.9-1")])
    assert not missing.ok and not missing.transient and missing.changes == ()
    assert "was not found" in missing.result.stderr


def test_rollback_from_kept_file_after_the_repository_dropped_the_version(
    apt: AptManager, apt_repo: AptRepo, tmp_path: Path
) -> None:
    """The exact-version rollback: the .deb apt downloaded for v1 is kept;
    once the mirror only has v2, v1 comes back from that file alone."""
    assert apt.install([Target(NAME, V1)]).ok
    cached = apt.cached_package_file(NAME, V1, "amd64")
    assert cached is not None and cached.endswith(f"/{NAME}_1%3a1.0-1_amd64.deb"), cached
    assert apt.cached_package_file(NAME, V1) == cached  # any arch
    assert apt.cached_package_file(NAME, V2, "amd64") is None  # never downloaded
    kept = tmp_path / "kept" / os.path.basename(cached)
    kept.parent.mkdir()
    shutil.copy(cached, kept)

    Path(apt.path("/etc/apt/sources.list")).write_text(
        f"deb [trusted=yes] {apt_repo.url} next main\n"
    )
    assert apt.refresh().ok
    shutil.rmtree(apt.path("/var/cache/apt/archives"))  # the cache is gone too
    assert apt.install([Target(NAME, V2)]).ok
    assert apt.installed([NAME]) == {NAME: V2}
    gone = apt.install([Target(NAME, V1)])
    assert not gone.ok and not gone.transient  # the repository cannot bring v1 back

    restored = apt.install_files([str(kept)])
    assert restored.ok, restored.output
    assert restored.argv[:2] == ("dpkg", f"--root={apt.root}")
    assert apt.installed([NAME]) == {NAME: V1}


def test_repack_rebuilds_the_installed_package(apt: AptManager, tmp_path: Path) -> None:
    deb = build_deb_with_files(
        tmp_path,
        "pwt-files",
        "2:3.1-4",
        {
            "/usr/bin/pwt-tool": (b"#!/bin/sh\necho tool\n", 0o755),
            "/usr/share/pwt-files/data.txt": (b"data v3.1\n", 0o644),
            "/usr/share/pwt-files/secret": (b"s3cret\n", 0o600),
            "/etc/pwt-files.conf": (b"setting = default\n", 0o644),
        },
        conffiles=("/etc/pwt-files.conf",),
        postinst="#!/bin/sh\nexit 0\n",
    )
    assert apt.install_files([str(deb)]).ok
    conf = Path(apt.path("/etc/pwt-files.conf"))
    conf.write_text("setting = local\n")  # the admin's change goes into the repack

    repacked = apt.repack("pwt-files", str(tmp_path / "repacked"))
    assert repacked is not None and repacked.endswith("/pwt-files_2%3a3.1-4_amd64.deb")
    fields = run(["dpkg-deb", "--field", repacked, "Package", "Version", "Architecture"])
    assert fields.splitlines() == ["Package: pwt-files", "Version: 2:3.1-4", "Architecture: amd64"]
    info = run(["dpkg-deb", "--info", repacked])
    assert "and a second paragraph." in info and "Status:" not in info
    assert "postinst" in info and "conffiles" in info
    assert run(["dpkg-deb", "--ctrl-tarfile", repacked]) is not None
    contents = run(["dpkg-deb", "--contents", repacked])
    assert "./usr/share/pwt-files/secret" in contents and "-rw-------" in contents

    assert apt.remove(["pwt-files"]).ok
    assert apt.installed(["pwt-files"]) == {}
    assert not Path(apt.path("/usr/bin/pwt-tool")).exists()
    reinstalled = apt.install_files([repacked])
    assert reinstalled.ok, reinstalled.output
    assert apt.installed(["pwt-files"]) == {"pwt-files": "2:3.1-4"}
    tool = Path(apt.path("/usr/bin/pwt-tool"))
    assert tool.read_bytes() == b"#!/bin/sh\necho tool\n" and os.access(tool, os.X_OK)
    assert (Path(apt.path("/usr/share/pwt-files/secret")).stat().st_mode & 0o777) == 0o600
    assert conf.read_text() == "setting = local\n"  # kept (remove leaves conffiles anyway)

    # A packaged file gone from disk: the package cannot be rebuilt whole.
    Path(apt.path("/usr/share/pwt-files/data.txt")).unlink()
    with pytest.raises(PackageManagerError, match="missing"):
        apt.repack("pwt-files", str(tmp_path / "again"))
    # A deleted conffile is a local choice dpkg keeps: left out, no error.
    Path(apt.path("/usr/share/pwt-files/data.txt")).write_text("data v3.1\n")
    conf.unlink()
    again = apt.repack("pwt-files", str(tmp_path / "again"))
    assert again is not None
    assert "pwt-files.conf" not in run(["dpkg-deb", "--contents", again])
    with pytest.raises(PackageManagerError, match="not installed"):
        apt.repack("pwt-absent", str(tmp_path / "none"))


def test_lock_held_while_another_process_has_the_frontend_lock(apt: AptManager) -> None:
    assert apt.install([Target(NAME, V1)]).ok
    cached = apt.cached_package_file(NAME, V1)
    assert cached is not None
    assert not apt.lock_held()
    with holding_lock(Path(apt.path("/var/lib/dpkg/lock-frontend"))):
        assert apt.lock_held()
        busy = apt.install([Target(NAME, V2)])
        assert not busy.ok and busy.transient, busy.output
        assert "Could not get lock" in busy.stderr
        direct = apt.install_files([cached])  # dpkg alone honours the lock too
        assert not direct.ok and direct.transient, direct.output
    assert not apt.lock_held()
    assert apt.install([Target(NAME, V2)]).ok


@pytest.mark.slow  # apt retries a refused connection with backoff: ~7 s per command
def test_unreachable_mirror_is_transient(apt_repo: AptRepo, tmp_path: Path) -> None:
    with serve(apt_repo.mirror) as server:
        manager = sandbox(tmp_path / "root", server.base_url)
        assert manager.refresh().ok
    # The server is gone: its port is closed now.
    fetch = manager.install([Target(NAME, V2)])
    assert not fetch.ok and fetch.transient, fetch.output
    Path(manager.path("/etc/apt/sources.list")).write_text(
        f"deb [trusted=yes] http://127.0.0.1:{closed_port()} stable main\n"
    )
    refreshed = manager.refresh()  # apt-get update itself exits 0 here
    assert not refreshed.ok and refreshed.transient, refreshed.output


def test_reboot_required_flag(apt: AptManager) -> None:
    assert not apt.reboot_required()
    flag = Path(apt.path("/var/run/reboot-required"))
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.write_text("*** System restart required ***\n")
    assert apt.reboot_required()


def test_nothing_written_to_the_host(apt: AptManager) -> None:
    """The sandbox's apt config file is temporary, and dpkg's log is the root's."""
    host_log = Path("/var/log/dpkg.log")
    size = host_log.stat().st_size if host_log.exists() else 0
    assert apt.install([Target(NAME, V1)]).ok
    assert (host_log.stat().st_size if host_log.exists() else 0) == size
    assert list(Path(tempfile.gettempdir()).glob("patchwarden-apt-*")) == []
