from __future__ import annotations

from datetime import UTC, datetime

import pytest

from patchwarden.domain.inventory import InstalledPackage
from patchwarden.errors import InvalidInput
from patchwarden.repos.model import (
    Classification,
    NoticePackage,
    RepoKind,
    RepoPackage,
    RepoSnapshot,
    UpdateNotice,
)
from patchwarden.repos.updates import AvailableUpdate, UpdateIndex, available_updates
from patchwarden.versions import UnknownVersionScheme

T1 = datetime(2024, 1, 1, tzinfo=UTC)
T2 = datetime(2024, 2, 1, tzinfo=UTC)
T3 = datetime(2024, 3, 1, tzinfo=UTC)


def deb(name: str, version: str, arch: str = "amd64") -> InstalledPackage:
    return InstalledPackage("deb", name, version, arch)


def rpm(name: str, version: str, arch: str = "x86_64") -> InstalledPackage:
    return InstalledPackage("rpm", name, version, arch)


def offer(name: str, version: str, arch: str, build_time: datetime | None = None) -> RepoPackage:
    return RepoPackage(name, version, arch, build_time=build_time)


def snapshot(
    kind: RepoKind,
    name: str,
    packages: list[RepoPackage],
    notices: tuple[UpdateNotice, ...] = (),
    classification: Classification = "unclassified",
    released: datetime | None = None,
) -> RepoSnapshot:
    return RepoSnapshot(kind, name, tuple(packages), notices, classification, released)


def notice(
    notice_id: str,
    kind: str,
    *packages: tuple[str, str, str],
    severity: str = "",
    issued: datetime | None = None,
    cves: tuple[str, ...] = (),
) -> UpdateNotice:
    return UpdateNotice(
        notice_id,
        kind,  # type: ignore[arg-type]
        severity,
        issued,
        notice_id,
        cves,
        tuple(NoticePackage(*p) for p in packages),
    )


def targets(updates: list[AvailableUpdate]) -> dict[str, str]:
    return {u.name: u.target_version for u in updates}


# -- deb -------------------------------------------------------------------------------


BOOKWORM = snapshot(
    "apt",
    "bookworm",
    [
        offer("hello", "2.10-3", "amd64"),
        offer("hello", "2.10-1", "amd64"),
        offer("libc6", "2.36-9+deb12u4", "amd64"),
        offer("tzdata", "2024a-0+deb12u1", "all"),
        offer("openssl", "3.0.11-1~deb12u2", "amd64"),
    ],
    classification="bugfix",
    released=T1,
)
SECURITY = snapshot(
    "apt",
    "bookworm-security",
    [
        offer("libc6", "2.36-9+deb12u4", "amd64"),  # the same version in both suites
        offer("openssl", "3.0.13-1~deb12u1", "amd64"),
    ],
    classification="security",
    released=T2,
)


def test_deb_like_apt_list_upgradable() -> None:
    index = UpdateIndex.build([BOOKWORM, SECURITY])
    installed = [
        deb("dpkg", "1.21.22"),
        deb("hello", "2.10-2"),
        deb("libc6", "2.36-9+deb12u3"),
        deb("tzdata", "2024a-0+deb12u1", "all"),  # up to date
        deb("openssl", "3.0.11-1~deb12u2"),
        deb("local-only", "1.0"),
    ]
    updates = {u.name: u for u in index.updates_for(installed)}
    assert sorted(updates) == ["hello", "libc6", "openssl"]
    hello = updates["hello"]
    assert (hello.installed_version, hello.target_version, hello.classification) == (
        "2.10-2",
        "2.10-3",
        "bugfix",
    )
    assert (hello.repositories, hello.release_date, hello.notice_ids) == (("bookworm",), T1, ())
    # the same version in two suites: security wins, both listed, the earliest date
    libc = updates["libc6"]
    assert libc.classification == "security"
    assert libc.repositories == ("bookworm", "bookworm-security")
    assert libc.release_date == T1
    # the highest version wins, wherever it is
    assert (updates["openssl"].target_version, updates["openssl"].classification) == (
        "3.0.13-1~deb12u1",
        "security",
    )


def test_deb_only_strictly_newer_by_dpkg_rules() -> None:
    repo = snapshot(
        "apt",
        "r",
        [
            offer("epoch", "2.0-1", "amd64"),  # installed 1:1.0 is newer (epoch)
            offer("tilde", "1.0~rc1-1", "amd64"),  # ~ sorts before the release
            offer("same", "1.0-1", "amd64"),
            offer("revision", "1.0-1+b1", "amd64"),
        ],
    )
    installed = [
        deb("epoch", "1:1.0-1"),
        deb("tilde", "1.0-1"),
        deb("same", "1.0-1"),
        deb("revision", "1.0-1"),
    ]
    assert targets(available_updates("deb", installed, repo.packages)) == {"revision": "1.0-1+b1"}


def test_deb_arches() -> None:
    repo = snapshot(
        "apt",
        "r",
        [
            offer("tool", "2.0", "i386"),  # another arch: never
            offer("tool", "1.5", "amd64"),
            offer("moved", "2.0", "all"),  # amd64 -> all
            offer("data", "2.0", "amd64"),  # all -> amd64
            offer("lib32", "2.0", "all"),  # i386 is not the native arch: not for lib32:i386
            offer("lib32", "1.5", "i386"),
        ],
    )
    installed = [
        deb("dpkg", "1.21", "amd64"),
        deb("tool", "1.0"),
        deb("moved", "1.0", "amd64"),
        deb("data", "1.0", "all"),
        deb("lib32", "1.0", "i386"),
    ]
    updates = UpdateIndex.build([repo]).updates_for(installed)
    assert {(u.name, u.arch, u.target_version, u.target_arch) for u in updates} == {
        ("tool", "amd64", "1.5", "amd64"),
        ("moved", "amd64", "2.0", "all"),
        ("data", "all", "2.0", "amd64"),
        ("lib32", "i386", "1.5", "i386"),
    }


def test_deb_native_arch_sources() -> None:
    repo = snapshot("apt", "r", [offer("data", "2.0", "amd64"), offer("data", "2.0", "arm64")])
    index = UpdateIndex.build([repo])
    installed = [deb("data", "1.0", "all")]
    # nothing says which arch is native: every arch goes with "all"; the tie is broken by name
    assert index.updates_for(installed)[0].target_arch in ("amd64", "arm64")
    assert index.updates_for(installed, native_arch="arm64")[0].target_arch == "arm64"
    assert index.updates_for(installed, native_arch="amd64")[0].target_arch == "amd64"
    with_dpkg = [*installed, deb("dpkg", "1.21", "arm64")]
    assert index.updates_for(with_dpkg)[0].target_arch == "arm64"
    mostly = [*installed, deb("a", "1", "amd64"), deb("b", "1", "amd64"), deb("c", "1", "arm64")]
    assert index.updates_for(mostly)[0].target_arch == "amd64"
    # the memo keeps the answers apart
    assert index.updates_for(installed, native_arch="arm64")[0].target_arch == "arm64"


def test_other_ecosystems_and_bad_versions_are_ignored() -> None:
    repo = snapshot("apt", "r", [offer("hello", "2.0", "amd64"), offer("bad", "1.0 beta", "all")])
    index = UpdateIndex.build([repo])
    assert [(s.repository, s.name, s.version) for s in index.skipped] == [("r", "bad", "1.0 beta")]
    assert "whitespace" in index.skipped[0].reason
    installed = [
        InstalledPackage("pypi", "hello", "1.0"),
        InstalledPackage("deb", "hello", ""),  # unorderable
        deb("bad", "0.1", "all"),
    ]
    assert index.updates_for(installed) == []
    assert len(index) == 1


# -- rpm -------------------------------------------------------------------------------


def test_rpm_classification_from_notices() -> None:
    repo = snapshot(
        "rpm",
        "baseos",
        [
            offer("openssl", "1:3.0.7-25.el9", "x86_64", T1),
            offer("openssl", "1:3.0.7-27.el9", "x86_64", T2),
            offer("openssl", "1:3.0.7-28.el9", "x86_64", T3),
            offer("curl", "7.76.1-29.el9", "x86_64", T3),
        ],
        notices=(
            notice("RHSA-1", "security", ("openssl", "1:3.0.7-25.el9", "x86_64"), severity="low"),
            notice(
                "RHSA-2",
                "security",
                ("openssl", "1:3.0.7-27.el9", "x86_64"),
                ("openssl", "1:3.0.7-27.el9", "src"),
                severity="important",
                issued=T2,
                cves=("CVE-2024-2", "CVE-2024-1"),
            ),
            notice("RHBA-3", "bugfix", ("openssl", "1:3.0.7-28.el9", "x86_64"), issued=T3),
            notice("RHEA-4", "enhancement", ("openssl", "1:3.0.7-29.el9", "x86_64")),
            notice("RHSA-5", "security", ("openssl", "1:3.0.7-28.el9", "i686")),
        ),
    )
    installed = [rpm("openssl", "1:3.0.7-25.el9"), rpm("curl", "7.76.1-26.el9")]
    updates = {u.name: u for u in UpdateIndex.build([repo]).updates_for(installed)}
    openssl = updates["openssl"]
    assert openssl.target_version == "1:3.0.7-28.el9"
    # notices in (installed, target]: not RHSA-1 (installed), RHEA-4 (beyond), RHSA-5 (i686)
    assert openssl.notice_ids == ("RHBA-3", "RHSA-2")
    assert (openssl.classification, openssl.severity) == ("security", "important")
    assert openssl.cve_ids == ("CVE-2024-1", "CVE-2024-2")
    assert openssl.release_date == T3  # the newest notice
    curl = updates["curl"]
    assert (curl.classification, curl.notice_ids, curl.release_date) == ("unclassified", (), T3)


def test_rpm_pocket_classification_without_notices() -> None:
    repo = snapshot("rpm", "updates", [offer("a", "2-1", "x86_64")], classification="bugfix")
    (update,) = UpdateIndex.build([repo]).updates_for([rpm("a", "1-1")])
    assert update.classification == "bugfix"


def test_rpm_arches() -> None:
    repo = snapshot(
        "rpm",
        "r",
        [
            offer("multilib", "2-1", "i686"),  # never for x86_64
            offer("tonoarch", "2-1", "noarch"),
            offer("fromnoarch", "2-1", "x86_64"),
            offer("fromnoarch", "2-1", "aarch64"),
        ],
    )
    installed = [
        rpm("multilib", "1-1"),
        rpm("tonoarch", "1-1"),
        rpm("fromnoarch", "1-1", "noarch"),
        rpm("rpm", "4.16", "x86_64"),
    ]
    updates = UpdateIndex.build([repo]).updates_for(installed)
    assert {(u.name, u.target_arch) for u in updates} == {
        ("tonoarch", "noarch"),
        ("fromnoarch", "x86_64"),  # the native arch among equal versions
    }


def test_rpm_several_installed_versions() -> None:
    """Installonly kernels: only the newest installed version counts, as for dnf."""
    repo = snapshot("rpm", "r", [offer("kernel", "5.14.0-2", "x86_64")])
    index = UpdateIndex.build([repo])
    newest_installed = [rpm("kernel", "5.14.0-1"), rpm("kernel", "5.14.0-3")]
    assert index.updates_for(newest_installed) == []
    older = (p for p in [rpm("kernel", "5.14.0-0"), rpm("kernel", "5.14.0-1")])  # an iterator
    (update,) = index.updates_for(older)
    assert (update.installed_version, update.target_version) == ("5.14.0-1", "5.14.0-2")


def test_rpm_explicit_zero_epoch_is_no_epoch() -> None:
    repo = snapshot("rpm", "r", [offer("a", "1.0-1", "x86_64"), offer("b", "1.0-2", "x86_64")])
    installed = [rpm("a", "0:1.0-1"), rpm("b", "0:1.0-1")]
    (update,) = available_updates("rpm", installed, repo.packages)
    assert (update.name, update.installed_version, update.target_version) == (
        "b",
        "0:1.0-1",
        "1.0-2",
    )


# -- the API -----------------------------------------------------------------------------


def test_available_updates_one_repository() -> None:
    updates = available_updates(
        "deb",
        [deb("hello", "2.10-2")],
        BOOKWORM.packages,
        pocket_classification="bugfix",
        repository="bookworm",
    )
    assert [(u.name, u.classification, u.repositories) for u in updates] == [
        ("hello", "bugfix", ("bookworm",))
    ]
    with pytest.raises(UnknownVersionScheme, match="valid schemes"):
        available_updates("nope", [], [])
    with pytest.raises(InvalidInput, match="no package repositories use pep440 versions"):
        available_updates("pep440", [], [])


def test_index_kinds() -> None:
    with pytest.raises(InvalidInput, match="cannot index apt and rpm repositories together"):
        UpdateIndex.build([BOOKWORM, snapshot("rpm", "r", [])])
    with pytest.raises(InvalidInput, match="apt repositories use deb versions"):
        UpdateIndex.build([BOOKWORM], scheme="rpm")
    with pytest.raises(InvalidInput, match="no repositories"):
        UpdateIndex.build([])
    assert UpdateIndex.build([], scheme="apk").updates_for([deb("a", "1")]) == []
