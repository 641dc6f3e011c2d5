"""Matching scenarios built from real advisories, with the expected findings written by hand.

Each test names the advisory data it relies on (see tests/matching/realdata.py for the
conversion) and spells out what must match, at which fixed version, and what must not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pytest

from patchwarden.domain.advisories import (
    Advisory,
    AffectedPackage,
    AffectedRange,
    RangeEvent,
    RangeEventKind,
)
from patchwarden.domain.inventory import InstalledPackage
from patchwarden.matching import (
    AdvisoryIndex,
    FleetMatcher,
    Match,
    MatchCache,
    PackageVulnerability,
    SkippedPackage,
    collapse,
    match_packages,
    naive_match,
    platform_of_package,
)
from tests.matching import realdata

# (advisory id, fixed version) per matched package, in match order.
Found = list[tuple[str, str | None]]


def deb(
    name: str, version: str, source: str | None = None, source_version: str | None = None
) -> InstalledPackage:
    return InstalledPackage("deb", name, version, "amd64", source, source_version)


def pypi(name: str, version: str) -> InstalledPackage:
    return InstalledPackage("pypi", name, version)


def found(advisories: Iterable[Advisory], platform: str | None, package: InstalledPackage) -> Found:
    """What one package matches, checked against the naive algorithm on the way."""
    advisories = list(advisories)
    matches = match_packages(AdvisoryIndex.build(advisories), platform, [package])
    assert matches == naive_match(advisories, platform, [package])
    assert all(m.package is package for m in matches)
    return [(m.advisory_id, m.fixed_version) for m in matches]


def r(*events: tuple[RangeEventKind, str]) -> AffectedRange:
    return AffectedRange("ECOSYSTEM", tuple(RangeEvent(kind, v) for kind, v in events))


def hand_made(*entries: AffectedPackage, id: str = "TEST-1") -> Advisory:
    """An advisory written for a rule no real record in the shared data exercises."""
    return Advisory(id, "test", aliases=("CVE-0000-0001",), affected=entries)


# -- introduced / fixed, equal-to-fixed, just below fixed ----------------------------


@pytest.fixture(scope="module")
def openssl_dsas() -> list[Advisory]:
    return realdata.dsa_for("openssl")  # every release; only bullseye's apply on debian:11


def test_binary_matched_through_its_source_package(openssl_dsas: list[Advisory]) -> None:
    # DSA-5343-1: bullseye openssl fixed in 1.1.1n-0+deb11u4 (deb11u3 came from DSA-5169-1).
    libssl = deb("libssl1.1", "1.1.1n-0+deb11u3", "openssl")
    assert found(openssl_dsas, "debian:11", libssl) == [("DSA-5343-1", "1.1.1n-0+deb11u4")]


def test_equal_to_fixed_is_not_affected(openssl_dsas: list[Advisory]) -> None:
    assert found(openssl_dsas, "debian:11", deb("openssl", "1.1.1n-0+deb11u4")) == []


def test_just_below_fixed_is_affected(openssl_dsas: list[Advisory]) -> None:
    # "~" sorts before the end: 1.1.1n-0+deb11u4~1 < 1.1.1n-0+deb11u4.
    package = deb("libssl1.1", "1.1.1n-0+deb11u4~1", "openssl")
    assert found(openssl_dsas, "debian:11", package) == [("DSA-5343-1", "1.1.1n-0+deb11u4")]


def test_old_version_matches_every_later_fix(openssl_dsas: list[Advisory]) -> None:
    # 1.1.1k-1+deb11u1 is exactly DSA-4963-1's fix, below the four later ones.
    package = deb("openssl", "1.1.1k-1+deb11u1")
    assert found(openssl_dsas, "debian:11", package) == [
        ("DSA-5103-1", "1.1.1k-1+deb11u2"),
        ("DSA-5139-1", "1.1.1n-0+deb11u2"),
        ("DSA-5169-1", "1.1.1n-0+deb11u3"),
        ("DSA-5343-1", "1.1.1n-0+deb11u4"),
    ]


def test_other_release_advisories_do_not_apply(openssl_dsas: list[Advisory]) -> None:
    # buster's fixes (1.1.1d-0+deb10uN) sort below bullseye's 1.1.1k; stretch's 1.1.0l too.
    assert found(openssl_dsas, "debian:10", deb("openssl", "1.1.1n-0+deb11u4")) == []
    assert found(openssl_dsas, "debian:9", deb("openssl", "1.1.0l-1~deb9u1")) == []
    assert found(openssl_dsas, "debian:9", deb("openssl", "1.1.0k-1~deb9u1")) == [
        ("DSA-4539-1", "1.1.0l-1~deb9u1")
    ]


def test_match_fields(openssl_dsas: list[Advisory]) -> None:
    libssl = deb("libssl1.1", "1.1.1n-0+deb11u3", "openssl")
    [match] = match_packages(AdvisoryIndex.build(openssl_dsas), "debian:11", [libssl])
    assert match == Match(
        package=libssl,
        platform="debian:11",
        advisory_id="DSA-5343-1",
        vulnerability_ids=(
            "CVE-2022-2097",
            "CVE-2022-4304",
            "CVE-2022-4450",
            "CVE-2023-0215",
            "CVE-2023-0286",
        ),
        fixed_version="1.1.1n-0+deb11u4",
        affected_name="openssl",
        note=None,
    )


# -- source versions, binNMUs and epochs ------------------------------------------------


def test_source_version_not_binary_version_is_compared() -> None:
    # DSA-5055-1: bullseye util-linux fixed in 2.36.1-8+deb11u1. The binary bsdutils
    # carries epoch 1 ("1:2.36.1-8") but its source is util-linux 2.36.1-8: comparing
    # the binary version would call it fixed.
    advisories = realdata.dsa("DSA-5055-1")
    bsdutils = deb("bsdutils", "1:2.36.1-8", "util-linux", "2.36.1-8")
    assert found(advisories, "debian:11", bsdutils) == [("DSA-5055-1", "2.36.1-8+deb11u1")]
    patched = deb("bsdutils", "1:2.36.1-8+deb11u1", "util-linux", "2.36.1-8+deb11u1")
    assert found(advisories, "debian:11", patched) == []
    assert found(advisories, "debian:11", deb("util-linux", "2.36.1-8")) == [
        ("DSA-5055-1", "2.36.1-8+deb11u1")
    ]


def test_binnmu_compares_the_source_version(openssl_dsas: list[Advisory]) -> None:
    # A binNMU of openssl 1.1.1n-0+deb11u3: "Source: openssl (1.1.1n-0+deb11u3)".
    binnmu = deb("libssl1.1", "1.1.1n-0+deb11u3+b1", "openssl", "1.1.1n-0+deb11u3")
    assert found(openssl_dsas, "debian:11", binnmu) == [("DSA-5343-1", "1.1.1n-0+deb11u4")]
    # Where it decides the answer: an inclusive bound at the source version.
    last = hand_made(
        AffectedPackage(
            "debian:12", "bash", ranges=(r(("introduced", "0"), ("last_affected", "5.2.15-2")),)
        )
    )
    bash = deb("bash", "5.2.15-2+b8", "bash", "5.2.15-2")  # this machine's bash
    assert found([last], "debian:12", bash) == [("TEST-1", None)]


def test_epochs_order_before_everything() -> None:
    # DSA-5380-1: bullseye xorg-server fixed in 2:1.20.11-1+deb11u6.
    advisories = realdata.dsa("DSA-5380-1")
    xorg = "xserver-xorg-core"
    fixed = [("DSA-5380-1", "2:1.20.11-1+deb11u6")]
    assert found(advisories, "debian:11", deb(xorg, "2:1.20.11-1+deb11u5", "xorg-server")) == fixed
    # Epoch 0 < epoch 2 whatever follows: "1.20.11-1+deb11u7" < "2:1.20.11-1+deb11u6".
    assert found(advisories, "debian:11", deb(xorg, "1.20.11-1+deb11u7", "xorg-server")) == fixed
    assert found(advisories, "debian:11", deb(xorg, "2:1.20.11-1+deb11u6", "xorg-server")) == []
    assert found(advisories, "debian:11", deb(xorg, "3:0.1-1", "xorg-server")) == []


def test_several_installed_kernels_each_matched() -> None:
    # bullseye linux: DSA-5324-1 fixed 5.10.162-1, the DSAs before it 5.10.149-2 and lower.
    advisories = realdata.dsa_for("linux")
    old = deb("linux-image-5.10.0-20-amd64", "5.10.158-2", "linux")
    new = deb("linux-image-5.10.0-21-amd64", "5.10.162-1", "linux")
    index = AdvisoryIndex.build(advisories)
    matches = match_packages(index, "debian:11", [old, new])
    assert [(m.package.name, m.advisory_id, m.fixed_version) for m in matches] == [
        ("linux-image-5.10.0-20-amd64", "DSA-5324-1", "5.10.162-1")
    ]
    assert matches == naive_match(advisories, "debian:11", [old, new])


def test_signed_kernel_images_match_the_kernel_source() -> None:
    # What dpkg reports for Debian's amd64 kernels: Source linux-signed-amd64, whose
    # version (5.10.158+2) is not linux's; the binary carries linux's version.
    advisories = realdata.dsa_for("linux")
    signed = deb("linux-image-5.10.0-20-amd64", "5.10.158-2", "linux-signed-amd64", "5.10.158+2")
    patched = deb("linux-image-5.10.0-21-amd64", "5.10.162-1", "linux-signed-amd64", "5.10.162+1")
    index = AdvisoryIndex.build(advisories)
    matches = match_packages(index, "debian:11", [signed, patched])
    assert [(m.package.name, m.advisory_id, m.fixed_version) for m in matches] == [
        ("linux-image-5.10.0-20-amd64", "DSA-5324-1", "5.10.162-1")
    ]
    assert matches == naive_match(advisories, "debian:11", [signed, patched])
    # Ubuntu's flavours: linux-signed-hwe-5.15 copies linux-hwe-5.15.
    hwe = hand_made(
        AffectedPackage(
            "ubuntu:20.04",
            "linux-hwe-5.15",
            (r(("introduced", "0"), ("fixed", "5.15.0-91.101~20.04.1")),),
        )
    )
    image = deb(
        "linux-image-5.15.0-88-generic",
        "5.15.0-88.98~20.04.1",
        "linux-signed-hwe-5.15",
        "5.15.0-88.98~20.04.1",
    )
    assert found([hwe], "ubuntu:20.04", image) == [("TEST-1", "5.15.0-91.101~20.04.1")]


def test_an_advisory_of_the_signed_source_itself_is_taken_as_it_is() -> None:
    own = hand_made(
        AffectedPackage(
            "debian:11", "linux-signed-amd64", (r(("introduced", "0"), ("fixed", "5.10.162+1")),)
        )
    )
    kernel = hand_made(
        AffectedPackage("debian:11", "linux", (r(("introduced", "0"), ("fixed", "5.10.170-1")),)),
        id="TEST-2",
    )
    signed = deb("linux-image-5.10.0-20-amd64", "5.10.158-2", "linux-signed-amd64", "5.10.158+2")
    assert found([own, kernel], "debian:11", signed) == [("TEST-1", "5.10.162+1")]


def test_same_name_several_versions_rpm_kernels() -> None:
    # rpm keeps several "kernel" packages of one name; each version is matched alone.
    advisory = hand_made(
        AffectedPackage(
            "rhel:9", "kernel", ranges=(r(("introduced", "0"), ("fixed", "5.14.0-362.8.1.el9_3")),)
        )
    )
    old = InstalledPackage("rpm", "kernel", "5.14.0-284.11.1.el9_2", "x86_64", "kernel")
    new = InstalledPackage("rpm", "kernel", "5.14.0-362.8.1.el9_3", "x86_64", "kernel")
    matches = match_packages(AdvisoryIndex.build([advisory]), "rhel:9", [old, new])
    assert [(m.package, m.fixed_version) for m in matches] == [(old, "5.14.0-362.8.1.el9_3")]


# -- no fix: <unfixed>, <end-of-life>, last_affected, limit -----------------------------


def test_unfixed_and_end_of_life_have_no_fixed_version() -> None:
    # DSA-880-1 phpmyadmin: woody <unfixed>, sarge fixed in 4:2.6.2-3sarge1.
    # DSA-3699-1 virtualbox: jessie <end-of-life>.
    advisories = realdata.dsa("DSA-880-1", "DSA-3699-1")
    index = AdvisoryIndex.build(advisories)
    woody = match_packages(index, "debian:3.0", [deb("phpmyadmin", "2.2.6-1")])
    assert [(m.advisory_id, m.fixed_version, m.note) for m in woody] == [
        ("DSA-880-1", None, "unfixed")
    ]
    sarge = match_packages(index, "debian:3.1", [deb("phpmyadmin", "4:2.6.2-3")])
    assert [(m.advisory_id, m.fixed_version, m.note) for m in sarge] == [
        ("DSA-880-1", "4:2.6.2-3sarge1", None)
    ]
    assert match_packages(index, "debian:3.1", [deb("phpmyadmin", "4:2.6.2-3sarge1")]) == []
    jessie = match_packages(index, "debian:8", [deb("virtualbox", "4.3.36-dfsg-1+deb8u1")])
    assert [(m.advisory_id, m.fixed_version, m.note) for m in jessie] == [
        ("DSA-3699-1", None, "end-of-life")
    ]
    # ... and any version at all, even one the scheme cannot read:
    skipped: list[SkippedPackage] = []
    odd = deb("virtualbox", "not a version")
    assert len(match_packages(index, "debian:8", [odd], skipped=skipped)) == 1
    assert [s.package for s in skipped] == [odd]


def test_last_affected_is_inclusive() -> None:
    # PYSEC-2022-42969: py, introduced 0, last_affected 1.11.0 (no fix published).
    advisories = realdata.pysec("PYSEC-2022-42969")
    assert found(advisories, "pypi", pypi("py", "1.11.0")) == [("PYSEC-2022-42969", None)]
    assert found(advisories, "pypi", pypi("py", "1.4.7.dev3")) == [("PYSEC-2022-42969", None)]
    assert found(advisories, "pypi", pypi("py", "1.11.1")) == []
    assert found(advisories, "pypi", pypi("py", "1.11.0.post1")) == []


def test_limit_bounds_a_range_from_above() -> None:
    # No record in the shared data uses "limit"; these follow the OSV evaluation text.
    limited = hand_made(
        AffectedPackage("pypi", "demo", ranges=(r(("introduced", "1.0"), ("limit", "2.0")),))
    )
    assert found([limited], "pypi", pypi("demo", "1.5")) == [("TEST-1", None)]
    assert found([limited], "pypi", pypi("demo", "2.0")) == []
    assert found([limited], "pypi", pypi("demo", "0.9")) == []
    several = hand_made(
        AffectedPackage(
            "pypi",
            "demo",
            ranges=(r(("introduced", "0"), ("limit", "1.0"), ("limit", "3.0")),),
        )
    )
    assert found([several], "pypi", pypi("demo", "2.5")) == [("TEST-1", None)]
    assert found([several], "pypi", pypi("demo", "3.0")) == []
    star = hand_made(
        AffectedPackage("pypi", "demo", ranges=(r(("introduced", "1.0"), ("limit", "*")),))
    )
    assert found([star], "pypi", pypi("demo", "99")) == [("TEST-1", None)]
    fixed_and_limit = hand_made(
        AffectedPackage(
            "pypi",
            "demo",
            ranges=(r(("introduced", "1.0"), ("fixed", "1.5"), ("limit", "3.0")),),
        )
    )
    assert found([fixed_and_limit], "pypi", pypi("demo", "1.2")) == [("TEST-1", "1.5")]
    assert found([fixed_and_limit], "pypi", pypi("demo", "2.0")) == []


def test_introduced_zero_is_below_every_version() -> None:
    # "0" sorts before everything, even versions that sort below a literal dpkg "0".
    advisory = hand_made(
        AffectedPackage("debian:12", "demo", ranges=(r(("introduced", "0"), ("fixed", "1.0-1")),))
    )
    assert found([advisory], "debian:12", deb("demo", "~~0")) == [("TEST-1", "1.0-1")]
    semver = hand_made(
        AffectedPackage("npm", "demo", ranges=(r(("introduced", "0"), ("fixed", "1.0.0")),))
    )
    npm = InstalledPackage("npm", "demo", "0.0.1-alpha")
    assert found([semver], None, npm) == [("TEST-1", "1.0.0")]


def test_equal_events_apply_introduced_first() -> None:
    empty = hand_made(
        AffectedPackage("pypi", "demo", ranges=(r(("introduced", "1.0"), ("fixed", "1.0")),))
    )
    assert found([empty], "pypi", pypi("demo", "1.0")) == []


# -- several ranges, unsorted events, explicit versions lists --------------------------


def test_several_ranges_are_a_union() -> None:
    # PYSEC-2014-1 (Django): [0, 1.4.11), [1.5, 1.5.6), [1.6, 1.6.3) in one range.
    advisories = realdata.pysec("PYSEC-2014-1")
    assert found(advisories, "pypi", pypi("Django", "1.4.10")) == [("PYSEC-2014-1", "1.4.11")]
    assert found(advisories, "pypi", pypi("Django", "1.4.11")) == []
    assert found(advisories, "pypi", pypi("Django", "1.5")) == [("PYSEC-2014-1", "1.5.6")]
    assert found(advisories, "pypi", pypi("Django", "1.5.5")) == [("PYSEC-2014-1", "1.5.6")]
    assert found(advisories, "pypi", pypi("Django", "1.5.6")) == []
    assert found(advisories, "pypi", pypi("Django", "1.6.2")) == [("PYSEC-2014-1", "1.6.3")]
    assert found(advisories, "pypi", pypi("Django", "1.7")) == []


def test_events_are_evaluated_in_version_order() -> None:
    # PYSEC-2021-114 (wagtail) lists its events unsorted: introduced 2.11, fixed 2.11.7,
    # introduced 0, fixed 2.11.6, introduced 2.12, fixed 2.12.4. Sorted, 2.11.6 closes
    # the range and 2.11.7 changes nothing; but the versions list names 2.11.6 as
    # affected, so 2.11.6 is affected and the first fixed version that is not is 2.11.7.
    advisories = realdata.pysec("PYSEC-2021-114")
    assert found(advisories, "pypi", pypi("wagtail", "2.10")) == [("PYSEC-2021-114", "2.11.7")]
    assert found(advisories, "pypi", pypi("wagtail", "2.11.5")) == [("PYSEC-2021-114", "2.11.7")]
    assert found(advisories, "pypi", pypi("wagtail", "2.11.6")) == [("PYSEC-2021-114", "2.11.7")]
    assert found(advisories, "pypi", pypi("wagtail", "2.11.7")) == []
    assert found(advisories, "pypi", pypi("wagtail", "2.12.3")) == [("PYSEC-2021-114", "2.12.4")]
    assert found(advisories, "pypi", pypi("wagtail", "2.12.4")) == []


def test_explicit_versions_list_adds_to_the_ranges() -> None:
    # PYSEC-2023-61 (Django): ranges start at 3.2, 4.0 and 4.2, but the versions list
    # also names the pre-releases 3.2a1, 3.2b1, 3.2rc1, 4.1a1 ... 4.2rc1.
    advisories = realdata.pysec("PYSEC-2023-61")
    assert found(advisories, "pypi", pypi("django", "3.2a1")) == [("PYSEC-2023-61", "3.2.19")]
    assert found(advisories, "pypi", pypi("django", "4.2rc1")) == [("PYSEC-2023-61", "4.2.1")]
    assert found(advisories, "pypi", pypi("django", "4.1.8")) == [("PYSEC-2023-61", "4.1.9")]
    assert found(advisories, "pypi", pypi("django", "3.1")) == []
    assert found(advisories, "pypi", pypi("django", "4.1.9")) == []


def test_versions_list_compared_after_pep440_normalisation() -> None:
    # PYSEC-2023-177 (gevent): range [0, 23.9.0), but the list names 23.9.0 and
    # 23.9.0.post1 too. The record contradicts itself: below 23.9.0 its own fixed
    # version is given; at 23.9.0 and after, no fixed version above is published.
    advisories = realdata.pysec("PYSEC-2023-177")
    assert found(advisories, "pypi", pypi("gevent", "23.7.0")) == [("PYSEC-2023-177", "23.9.0")]
    assert found(advisories, "pypi", pypi("gevent", "23.9.0")) == [("PYSEC-2023-177", None)]
    assert found(advisories, "pypi", pypi("gevent", "23.9.0-post1")) == [("PYSEC-2023-177", None)]
    assert found(advisories, "pypi", pypi("gevent", "23.9.0.0")) == [("PYSEC-2023-177", None)]
    assert found(advisories, "pypi", pypi("gevent", "23.9.1")) == []


# -- names --------------------------------------------------------------------------------


def test_pypi_names_are_pep503_normalised() -> None:
    # PYSEC-2020-341 names "jw.util", fixed in 2.3.
    advisories = realdata.pysec("PYSEC-2020-341")
    for spelling in ("jw.util", "JW_Util", "jw-util", "Jw__Util"):
        assert found(advisories, "pypi", pypi(spelling, "2.2")) == [("PYSEC-2020-341", "2.3")]
    assert found(advisories, "pypi", pypi("jwutil", "2.2")) == []
    zope = hand_made(
        AffectedPackage(
            "pypi", "zope.interface", ranges=(r(("introduced", "0"), ("fixed", "5.0")),)
        )
    )
    assert found([zope], "pypi", pypi("zope-interface", "4.7.1")) == [("TEST-1", "5.0")]
    assert found([zope], "pypi", pypi("Zope.Interface", "4.7.1")) == [("TEST-1", "5.0")]
    [match] = match_packages(AdvisoryIndex.build([zope]), None, [pypi("Zope.Interface", "4")])
    assert match.affected_name == "zope.interface"
    assert match.package.name == "Zope.Interface"


def test_ubuntu_releases_do_not_mix() -> None:
    # USN-6859-1 (openssh): 22.04 fixed in 1:8.9p1-3ubuntu0.10, 24.04 in 1:9.6p1-3ubuntu13.3.
    advisories = realdata.usn("USN-6859-1")
    noble = deb("openssh-client", "1:9.6p1-3ubuntu13", "openssh")
    assert found(advisories, "ubuntu:24.04", noble) == [("USN-6859-1", "1:9.6p1-3ubuntu13.3")]
    assert found(advisories, "ubuntu:22.04", noble) == []  # above jammy's fix
    jammy = deb("openssh-client", "1:8.9p1-3ubuntu0.7", "openssh")
    assert found(advisories, "ubuntu:22.04", jammy) == [("USN-6859-1", "1:8.9p1-3ubuntu0.10")]
    assert found(advisories, "ubuntu:24.04", jammy) == [("USN-6859-1", "1:9.6p1-3ubuntu13.3")]
    assert found(advisories, "ubuntu:20.04", jammy) == []
    [match] = match_packages(AdvisoryIndex.build(advisories), "ubuntu:22.04", [jammy])
    assert match.vulnerability_ids == ("CVE-2024-6387",)


def test_ubuntu_binary_name_matches_without_source() -> None:
    # A collector that did not report the source: the USN's binaries list still names it.
    advisories = realdata.usn("USN-6859-1")
    bare = deb("openssh-server", "1:8.9p1-3ubuntu0.7")
    assert found(advisories, "ubuntu:22.04", bare) == [("USN-6859-1", "1:8.9p1-3ubuntu0.10")]
    assert found(advisories, "ubuntu:22.04", deb("openssh-server", "1:8.9p1-3ubuntu0.10")) == []
    assert found(advisories, "ubuntu:22.04", deb("libssh-4", "0.9.6-2")) == []


# -- what is not matched ----------------------------------------------------------------


def test_withdrawn_advisory_is_ignored() -> None:
    # PYSEC-2019-144 (arrayfire, [0, 3.6.0)) was withdrawn on 2022-09-09.
    advisories = realdata.pysec("PYSEC-2019-144")
    assert advisories[0].withdrawn is not None
    assert found(advisories, "pypi", pypi("arrayfire", "3.5.0")) == []


def test_unparsable_advisory_versions_are_reported_not_fatal() -> None:
    # PYSEC-2019-125 (steam) is "fixed" in "2019-09-12", not a PEP 440 version;
    # PYSEC-2020-341 (jw.util) lists "-class.-jw.util.version.Version-".
    advisories = realdata.pysec("PYSEC-2019-125", "PYSEC-2020-341")
    index = AdvisoryIndex.build(advisories)
    reasons = {(p.advisory_id, p.version): p.reason for p in index.problems}
    assert "does not parse" in reasons[("PYSEC-2019-125", "2019-09-12")]
    assert "exact text" in reasons[("PYSEC-2020-341", "-class.-jw.util.version.Version-")]
    assert match_packages(index, None, [pypi("steam", "1.0")]) == []
    # The odd listed text still matches a package reporting exactly that text.
    odd = pypi("jw.util", "-class.-jw.util.version.Version-")
    skipped: list[SkippedPackage] = []
    matches = match_packages(index, None, [odd], skipped=skipped)
    assert [(m.advisory_id, m.fixed_version) for m in matches] == [("PYSEC-2020-341", None)]
    assert "not a pep440 version" in skipped[0].reason
    assert matches == naive_match(advisories, None, [odd])


def test_packages_without_a_platform_are_skipped_with_a_reason() -> None:
    advisories = realdata.dsa("DSA-5055-1")
    index = AdvisoryIndex.build(advisories)
    rpm = InstalledPackage("rpm", "util-linux", "2.36.1-8", "x86_64")
    msi = InstalledPackage("windows", "7-Zip", "19.00")
    skipped: list[SkippedPackage] = []
    assert match_packages(index, "debian:11", [rpm, msi], skipped=skipped) == []
    assert [s.package for s in skipped] == [rpm, msi]
    assert "debian:11" in skipped[0].reason
    skipped.clear()
    util = deb("util-linux", "2.36.1-8")
    assert match_packages(index, None, [util], skipped=skipped) == []
    assert "not known" in skipped[0].reason
    skipped.clear()
    assert match_packages(index, "gentoo:2.14", [util], skipped=skipped) == []
    assert len(skipped) == 1


def test_platform_of_package() -> None:
    assert platform_of_package("deb", "debian:12") == "debian:12"
    assert platform_of_package("deb", "ubuntu:22.04") == "ubuntu:22.04"
    assert platform_of_package("rpm", "debian:12") is None
    assert platform_of_package("rpm", "rhel:9") == "rhel:9"
    assert platform_of_package("apk", "alpine:3.11") == "alpine:3.11"
    assert platform_of_package("pypi", None) == "pypi"
    assert platform_of_package("npm", "debian:12") == "npm"
    assert platform_of_package("deb", None) is None
    assert platform_of_package("windows", "debian:12") is None
    assert platform_of_package("deb", "plan9:4") is None


# -- collapse ------------------------------------------------------------------------------


def test_collapse_keeps_the_lowest_fixed_version_per_vulnerability() -> None:
    # DSA-4509-1 (5 CVEs) fixed buster apache2 in 2.4.38-3+deb10u1; DSA-4509-3 fixed
    # CVE-2019-10092 again in 2.4.38-3+deb10u3.
    advisories = realdata.dsa("DSA-4509-1", "DSA-4509-3")
    apache = deb("apache2", "2.4.38-3")
    merged = collapse(match_packages(AdvisoryIndex.build(advisories), "debian:10", [apache]))
    assert [(v.vulnerability_id, v.advisory_ids, v.fixed_version) for v in merged] == [
        ("CVE-2019-9517", ("DSA-4509-1",), "2.4.38-3+deb10u1"),
        ("CVE-2019-10081", ("DSA-4509-1",), "2.4.38-3+deb10u1"),
        ("CVE-2019-10082", ("DSA-4509-1",), "2.4.38-3+deb10u1"),
        ("CVE-2019-10092", ("DSA-4509-1", "DSA-4509-3"), "2.4.38-3+deb10u1"),
        ("CVE-2019-10098", ("DSA-4509-1",), "2.4.38-3+deb10u1"),
    ]
    # Between the two fixes only the regression update still applies.
    between = deb("apache2", "2.4.38-3+deb10u2")
    merged = collapse(match_packages(AdvisoryIndex.build(advisories), "debian:10", [between]))
    assert merged == [
        PackageVulnerability(
            between, "debian:10", "CVE-2019-10092", ("DSA-4509-3",), "2.4.38-3+deb10u3", ()
        )
    ]


def test_collapse_any_fix_makes_it_fixable() -> None:
    package = deb("demo", "1.0-1")

    def match(advisory: str, fixed: str | None, note: str | None = None) -> Match:
        return Match(package, "debian:12", advisory, ("CVE-1",), fixed, "demo", note)

    matches = [match("A", None, "unfixed"), match("B", "1.0-10"), match("C", "1.0-9")]
    [merged] = collapse(matches)
    assert merged.advisory_ids == ("A", "B", "C")
    assert merged.fixed_version == "1.0-9"  # dpkg order, not text order ("1.0-10" < "1.0-9")
    assert merged.notes == ("unfixed",)
    [only_unfixed] = collapse(matches[:1])
    assert only_unfixed.fixed_version is None


# -- caching across a fleet -------------------------------------------------------------


def _fleet(n: int) -> list[Sequence[InstalledPackage]]:
    shared = [deb("libssl1.1", "1.1.1n-0+deb11u3", "openssl"), deb("openssl", "1.1.1k-1+deb11u1")]
    return [[*shared, deb("bsdutils", "1:2.36.1-8", "util-linux", "2.36.1-8")] for _ in range(n)]


def test_fleet_matcher_agrees_with_fresh_matching(openssl_dsas: list[Advisory]) -> None:
    advisories = [*openssl_dsas, *realdata.dsa("DSA-5055-1")]
    index = AdvisoryIndex.build(advisories)
    fleet = FleetMatcher(index)
    for packages in _fleet(5):
        assert fleet.match("debian:11", packages) == match_packages(index, "debian:11", packages)
    assert len(fleet.cache) == 3  # three distinct package rows across five assets
    assert len(fleet.cache.hits) == 3  # (openssl, deb11u3), (openssl, deb11u1), (util-linux, ...)


def test_cache_forgets_after_the_index_changes(openssl_dsas: list[Advisory]) -> None:
    index = AdvisoryIndex.build(openssl_dsas)
    cache = MatchCache()
    libssl = deb("libssl1.1", "1.1.1n-0+deb11u3", "openssl")
    assert len(match_packages(index, "debian:11", [libssl], cache=cache)) == 1
    assert index.remove("DSA-5343-1")
    assert match_packages(index, "debian:11", [libssl], cache=cache) == []
    other = AdvisoryIndex.build(openssl_dsas)
    assert len(match_packages(other, "debian:11", [libssl], cache=cache)) == 1


def test_identical_rows_share_match_objects(openssl_dsas: list[Advisory]) -> None:
    index = AdvisoryIndex.build(openssl_dsas)
    cache = MatchCache()
    first = match_packages(index, "debian:11", _fleet(1)[0], cache=cache)
    second = match_packages(index, "debian:11", _fleet(1)[0], cache=cache)
    assert first == second
    assert all(a is b for a, b in zip(first, second, strict=True))


def test_a_plain_dict_can_hold_the_cache(openssl_dsas: list[Advisory]) -> None:
    index = AdvisoryIndex.build(openssl_dsas)
    kept: dict[object, object] = {}
    libssl = deb("libssl1.1", "1.1.1n-0+deb11u3", "openssl")
    first = match_packages(index, "debian:11", [libssl], cache=kept)
    assert len(kept) == 1
    assert match_packages(index, "debian:11", [libssl], cache=kept)[0] is first[0]
