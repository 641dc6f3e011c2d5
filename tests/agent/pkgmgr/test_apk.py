"""The apk back-end: commands built and input refused, only.

There is no apk tool on the machines these tests run on (and no Alpine
package to build one from), so no real package is installed here. A
recording stand-in named `apk` (conftest.Stubs) shows the exact argv the
back-end runs and answers with canned apk output; the database, cache and
lock are real files in a sandbox root.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from patchwarden.agent.pkgmgr import ApkManager, InvalidPackageSpec, Target
from patchwarden.agent.pkgmgr.apk import parse_simulation
from patchwarden.agent.pkgmgr.base import Change
from tests.agent.pkgmgr.conftest import Stubs, holding_lock

INSTALLED = """C:Q1abc=
P:busybox
V:1.36.1-r15
A:x86_64
o:busybox

C:Q1def=
P:musl
V:1.2.4-r2
A:x86_64
"""

SIMULATE = """(1/3) Upgrading musl (1.2.4-r1 -> 1.2.4-r2)
(2/3) Downgrading busybox (1.36.1-r15 -> 1.36.1-r14)
(3/3) Installing ssl_client (1.36.1-r14)
OK: 7 MiB in 16 packages
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    database = tmp_path / "root/lib/apk/db"
    database.mkdir(parents=True)
    (database / "installed").write_text(INSTALLED)
    return tmp_path / "root"


def manager(root: Path, stubs: Stubs, **stub_env: str) -> ApkManager:
    return ApkManager(str(root), env={**stubs.env, **stub_env})


def test_commands(root: Path, stubs: Stubs, tmp_path: Path) -> None:
    apk = manager(root, stubs)
    assert apk.install([Target("busybox", "1.36.1-r14", "x86_64")]).ok
    assert apk.remove(["ssl_client"]).ok
    assert apk.refresh().ok
    local = tmp_path / "busybox-1.36.1-r14.apk"
    local.write_bytes(b"not really an apk")
    assert apk.install_files([str(local)]).ok
    prefix = ["apk", "--no-progress", "--root", str(root)]
    assert stubs.calls() == [
        [*prefix, "add", "busybox=1.36.1-r14"],
        [*prefix, "del", "ssl_client"],
        [*prefix, "update"],
        [*prefix, "add", "--allow-untrusted", str(local)],  # only for local files
    ]


def test_live_root_has_no_root_option(stubs: Stubs) -> None:
    assert ApkManager("/", env=stubs.env).install([Target("busybox", "1.36.1-r15")]).argv == (
        "apk",
        "--no-progress",
        "add",
        "busybox=1.36.1-r15",
    )


def test_check_reads_the_simulation(root: Path, stubs: Stubs) -> None:
    apk = manager(root, stubs, STUB_STDOUT=SIMULATE)
    plan = apk.check([Target("musl", "1.2.4-r2"), Target("busybox", "1.36.1-r14")])
    assert plan.ok
    assert plan.result.argv[-3:] == ("--simulate", "musl=1.2.4-r2", "busybox=1.36.1-r14")
    assert plan.changes == (
        Change("upgrade", "musl", "1.2.4-r2", "1.2.4-r1"),
        Change("downgrade", "busybox", "1.36.1-r14", "1.36.1-r15"),
        Change("install", "ssl_client", "1.36.1-r14"),
    )


def test_simulation_parsing_of_removals() -> None:
    assert parse_simulation("(1/1) Purging foo (2.0-r0)\n(1/1) Reinstalling bar (1-r0)\n") == [
        Change("remove", "foo", None, "2.0-r0"),
        Change("reinstall", "bar", "1-r0", "1-r0"),
    ]


def test_lock_failure_is_transient(root: Path, stubs: Stubs) -> None:
    apk = manager(
        root,
        stubs,
        STUB_STDERR="ERROR: Unable to lock database: Resource temporarily unavailable\n",
        STUB_EXIT="99",
    )
    result = apk.install([Target("busybox", "1.36.1-r15")])
    assert not result.ok and result.transient


def test_installed_cache_lock_and_reboot_from_the_root(root: Path, stubs: Stubs) -> None:
    apk = manager(root, stubs)
    assert apk.installed() == {"busybox": "1.36.1-r15", "musl": "1.2.4-r2"}
    assert apk.installed(["musl", "absent"]) == {"musl": "1.2.4-r2"}

    cache = root / "var/cache/apk"
    cache.mkdir(parents=True)
    (cache / "busybox-1.36.1-r14.0a1b2c3d.apk").write_bytes(b"x")
    (cache / "busybox-extras-1.36.1-r14.0a1b2c3d.apk").write_bytes(b"x")
    found = apk.cached_package_file("busybox", "1.36.1-r14")
    assert found == str(cache / "busybox-1.36.1-r14.0a1b2c3d.apk")
    assert apk.cached_package_file("busybox", "1.36.1-r15") is None
    assert apk.repack("busybox", str(root / "out")) is None

    assert not apk.lock_held()
    with holding_lock(root / "lib/apk/db/lock", "flock"):
        assert apk.lock_held()
    assert not apk.lock_held()

    assert not apk.reboot_required()
    (root / "run").mkdir()
    (root / "run/reboot-required").touch()
    assert apk.reboot_required()
    assert stubs.calls() == []  # all of that read files, nothing ran


def test_refusals(root: Path, stubs: Stubs, tmp_path: Path) -> None:
    apk = manager(root, stubs)
    with pytest.raises(InvalidPackageSpec, match="-rN"):
        apk.install([Target("busybox", "1.36.1")])  # would match any -rN
    with pytest.raises(InvalidPackageSpec):
        apk.remove(["busybox;reboot"])
    with pytest.raises(InvalidPackageSpec):
        apk.install_files([str(tmp_path / "missing.apk")])
    deb = tmp_path / "x.deb"
    deb.write_bytes(b"x")
    with pytest.raises(InvalidPackageSpec):
        apk.install_files([str(deb)])
    assert stubs.calls() == []
