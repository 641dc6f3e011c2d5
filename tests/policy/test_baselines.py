"""Baselines: drift of deb and rpm assets (epochs, ``~``, several installed
versions), entry selection by platform, validation, and version sprawl."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from patchwarden.policy import (
    AssetPackages,
    BaselineEntry,
    DriftRow,
    InvalidPolicy,
    PackageSprawl,
    VersionAssets,
    drift,
    version_sprawl,
)
from tests.policy.conftest import RealData


def _asset(
    asset_id: int, platform: str | None, installed: Mapping[str, Sequence[str]]
) -> AssetPackages:
    return AssetPackages(asset_id, f"host{asset_id:02d}", platform, installed)


def _one(entry: BaselineEntry, platform: str | None, versions: Sequence[str]) -> DriftRow:
    rows = drift([_asset(1, platform, {entry.package: versions})], [entry], include_ok=True)
    assert len(rows) == 1
    return rows[0]


# -- one package on one asset ---------------------------------------------------------

DEB = "debian:11"
RPM = "rhel:9"


@pytest.mark.parametrize(
    ("entry", "platform", "installed", "status", "newest", "detail"),
    [
        # deb: epochs beat everything after them; '~' sorts before anything.
        (
            BaselineEntry("xorg-server", "2:1.20.11-1+deb11u6", "minimum"),
            DEB, ["2:1.20.11-1+deb11u5"], "below_minimum", "2:1.20.11-1+deb11u5",
            "2:1.20.11-1+deb11u5 < minimum 2:1.20.11-1+deb11u6",
        ),
        (
            BaselineEntry("xorg-server", "2:1.20.11-1+deb11u6", "minimum"),
            DEB, ["1.21.0-1"], "below_minimum", "1.21.0-1", "1.21.0-1 < minimum",
        ),
        (
            BaselineEntry("xorg-server", "2:1.20.11-1+deb11u6", "minimum"),
            DEB, ["2:1.20.11-1+deb11u6"], "ok", "2:1.20.11-1+deb11u6", "≥ minimum",
        ),
        (
            BaselineEntry("chromium", "107.0.5304.87-1~deb11u1", "minimum"),
            DEB, ["107.0.5304.87-1"], "ok", "107.0.5304.87-1",
            "107.0.5304.87-1 ≥ minimum 107.0.5304.87-1~deb11u1",
        ),
        (
            BaselineEntry("chromium", "107.0.5304.87-1", "minimum"),
            DEB, ["107.0.5304.87-1~deb11u1"], "below_minimum", "107.0.5304.87-1~deb11u1",
            "< minimum",
        ),
        (
            BaselineEntry("redis", "5:6.0.16-1+deb11u2", "desired"),
            DEB, ["5:6.0.16-1+deb11u2"], "ok", "5:6.0.16-1+deb11u2", "is the desired version",
        ),
        (
            BaselineEntry("redis", "5:6.0.16-1+deb11u2", "desired"),
            DEB, ["5:6.0.16-1+deb11u3"], "differs", "5:6.0.16-1+deb11u3",
            "5:6.0.16-1+deb11u3 is newer than desired 5:6.0.16-1+deb11u2",
        ),
        (
            BaselineEntry("redis", "5:6.0.16-1+deb11u2", "desired"),
            DEB, ["6.0.16-1+deb11u2"], "differs", "6.0.16-1+deb11u2", "is older than desired",
        ),
        # "0:" is the default epoch: the same version in dpkg's eyes.
        (
            BaselineEntry("bash", "5.1-2+deb11u1", "desired"),
            DEB, ["0:5.1-2+deb11u1"], "ok", "0:5.1-2+deb11u1", "is the desired version",
        ),
        (
            BaselineEntry("bash", "5.1-2+deb11u1", "desired"),
            DEB, [], "missing", None, "not installed (baseline: desired 5.1-2+deb11u1)",
        ),
        # rpm
        (
            BaselineEntry("openssl", "1:3.0.7-24.el9", "minimum"),
            RPM, ["1:3.0.7-25.el9"], "ok", "1:3.0.7-25.el9", "≥ minimum",
        ),
        (
            BaselineEntry("openssl", "1:3.0.7-24.el9", "minimum"),
            RPM, ["3.0.8-1.el9"], "below_minimum", "3.0.8-1.el9", "< minimum 1:3.0.7-24.el9",
        ),
        (
            BaselineEntry("podman", "2.0~rc1-1.el9", "desired"),
            RPM, ["2.0-1.el9"], "differs", "2.0-1.el9", "newer than desired 2.0~rc1-1.el9",
        ),
        # several kernels installed at once: the newest counts
        (
            BaselineEntry("kernel", "5.14.0-362.8.1.el9_3", "minimum"),
            RPM, ["5.14.0-284.30.1.el9_2", "5.14.0-362.13.1.el9_3"], "ok",
            "5.14.0-362.13.1.el9_3", "5.14.0-362.13.1.el9_3 (newest of 2 installed) ≥ minimum",
        ),
        (
            BaselineEntry("kernel", "5.14.0-362.8.1.el9_3", "desired"),
            RPM, ["5.14.0-362.8.1.el9_3", "5.14.0-284.30.1.el9_2"], "ok",
            "5.14.0-362.8.1.el9_3", "(newest of 2 installed) is the desired version",
        ),
        # no verdict possible: said, not dropped
        (
            BaselineEntry("bash", "5.1-2", "minimum"),
            None, ["5.1-2"], "not_comparable", "5.1-2",
            "platform unknown has no known version scheme",
        ),
        (
            BaselineEntry("bash", "5.1-2", "minimum"),
            "gentoo:2.14", ["5.1-r2"], "not_comparable", "5.1-r2",
            "platform gentoo:2.14 has no known version scheme",
        ),
        (
            BaselineEntry("bash", "5.1-2", "minimum"),
            DEB, ["5.1_2"], "not_comparable", "5.1_2", "installed version '5.1_2' is not a deb version",
        ),
        (
            BaselineEntry("bash", "5.1_2", "minimum"),
            DEB, ["5.1-2"], "not_comparable", "5.1-2", "baseline version '5.1_2' is not a deb version",
        ),
    ],
)  # fmt: skip
def test_verdicts(
    entry: BaselineEntry,
    platform: str | None,
    installed: list[str],
    status: str,
    newest: str | None,
    detail: str,
) -> None:
    row = _one(entry, platform, installed)
    assert (row.status, row.installed, row.expected, row.mode) == (
        status,
        newest,
        entry.version,
        entry.mode,
    )
    assert detail in row.detail, row.detail


def test_minimums_from_real_debian_advisories(real_data: RealData) -> None:
    """Each DSA's fixed version for bullseye as a minimum: one host below, one at it."""
    entries = []
    for advisory_id in ("DSA-5380-1", "DSA-5263-1", "DSA-5081-1"):
        fixed = next(p for p in real_data.advisories[advisory_id].affected if p.platform == DEB)
        version = fixed.ranges[0].events[-1].version
        entries.append(BaselineEntry(fixed.name, version, "minimum", DEB))
    assert [e.version for e in entries] == [
        "2:1.20.11-1+deb11u6",
        "107.0.5304.87-1~deb11u1",
        "5:6.0.16-1+deb11u2",
    ]
    patched = _asset(1, DEB, {e.package: [e.version] for e in entries})
    behind = _asset(
        2,
        DEB,
        {"xorg-server": ["2:1.20.11-1+deb11u5"], "chromium": ["106.0.5249.119-1~deb11u1"]},
    )
    rows = drift([behind, patched], entries)
    assert [(r.asset_id, r.package, r.status) for r in rows] == [
        (2, "chromium", "below_minimum"),
        (2, "redis", "missing"),
        (2, "xorg-server", "below_minimum"),
    ]


# -- which entry applies --------------------------------------------------------------

ENTRIES = (
    BaselineEntry("openssl", "3.0.11-1~deb12u2", "minimum", "debian:12"),
    BaselineEntry("openssl", "1.1.1w-0+deb11u1", "minimum", "debian"),
    BaselineEntry("openssl", "1:3.0.7-24.el9", "minimum", "rhel:9"),
    BaselineEntry("curl", "7.88.1-10+deb12u5", "desired", "debian:12"),
    BaselineEntry("tzdata", "2024a-0+deb12u1", "desired"),
)


def test_most_specific_entry_applies() -> None:
    assets = [
        _asset(12, "debian:12", {"openssl": ["3.0.11-1~deb12u1"], "curl": ["7.88.1-10+deb12u5"]}),
        _asset(11, "debian:11", {"openssl": ["1.1.1w-0+deb11u1"], "tzdata": ["2024a-0+deb11u1"]}),
        _asset(9, "rhel:9", {"openssl": ["1:3.0.7-27.el9"], "tzdata": ["2024a-1.el9"]}),
        _asset(3, None, {"openssl": ["3.0.2"]}),
    ]
    rows = drift(assets, ENTRIES, include_ok=True)
    got = [(r.asset_id, r.package, r.expected, r.status) for r in rows]
    assert got == [
        (3, "tzdata", "2024a-0+deb12u1", "missing"),  # the only entry for every platform
        (9, "openssl", "1:3.0.7-24.el9", "ok"),
        (9, "tzdata", "2024a-0+deb12u1", "differs"),
        (11, "openssl", "1.1.1w-0+deb11u1", "ok"),  # the family entry
        (11, "tzdata", "2024a-0+deb12u1", "differs"),
        (12, "curl", "7.88.1-10+deb12u5", "ok"),
        (12, "openssl", "3.0.11-1~deb12u2", "below_minimum"),  # the release entry wins
        (12, "tzdata", "2024a-0+deb12u1", "missing"),
    ]
    deviations = drift(assets, ENTRIES)
    assert [r for r in rows if r.status != "ok"] == list(deviations)


def test_custom_scheme_lookup() -> None:
    """The caller may map platforms itself; a KeyError means "no scheme"."""
    schemes = {"debian:12": "deb"}
    assets = [
        _asset(1, "debian:12", {"tzdata": ["2024a-0+deb12u1"]}),
        _asset(2, "ubuntu:22.04", {"tzdata": ["2024a-0ubuntu0.22.04"]}),
    ]
    rows = drift(assets, [ENTRIES[-1]], schemes.__getitem__, include_ok=True)
    assert [(r.asset_id, r.status) for r in rows] == [(1, "ok"), (2, "not_comparable")]


def test_duplicate_entries_are_refused() -> None:
    with pytest.raises(InvalidPolicy, match="names openssl on debian:12 twice"):
        drift(
            [], [ENTRIES[0], BaselineEntry("openssl", "3.0.13-1~deb12u1", "desired", "debian:12")]
        )
    with pytest.raises(InvalidPolicy, match="names tzdata twice"):
        drift([], [ENTRIES[-1], ENTRIES[-1]])


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"package": ""}, "package name must be non-empty"),
        ({"package": "open ssl"}, "no spaces"),
        ({"version": ""}, "version must be non-empty"),
        ({"version": "1.0 1"}, "no spaces"),
        ({"mode": "exact"}, "mode 'exact' is not one of desired, minimum"),
        ({"os_release": "gentoo:2.14"}, "unknown platform 'gentoo:2.14'; use a family"),
        ({"os_release": ""}, "os_release must be non-empty"),
        ({"os_release": "debian:12", "version": "abc"}, "upstream version must start with a digit"),
        ({"os_release": "rhel:9", "version": "x:1.0"}, "epoch must be a number"),
    ],
)
def test_entry_validation(fields: dict[str, Any], error: str) -> None:
    values: dict[str, Any] = {"package": "openssl", "version": "3.0.11-1", "mode": "minimum"}
    with pytest.raises(InvalidPolicy, match=error):
        BaselineEntry(**{**values, **fields})


# -- sprawl -----------------------------------------------------------------------------


def test_version_sprawl() -> None:
    entries = [
        BaselineEntry("openssl", "3.0.11-1~deb12u2", "minimum", "debian:12"),
        BaselineEntry("bash", "5.2.15-2+b2", "desired", "debian:12"),
        BaselineEntry("kernel", "5.14.0-362.8.1.el9_3", "minimum", "rhel:9"),
    ]
    assets = [
        _asset(1, "debian:12", {"openssl": ["3.0.11-1~deb12u2"], "bash": ["5.2.15-2+b2"]}),
        _asset(2, "debian:12", {"openssl": ["3.0.11-1~deb12u1"], "bash": ["5.2.15-2+b2"]}),
        _asset(3, "debian:12", {"openssl": ["3.0.9-1"], "bash": ["5.2.15-2+b2"]}),
        _asset(4, "debian:12", {"openssl": ["3.0.11-1~deb12u2"]}),
        _asset(5, "rhel:9", {"kernel": ["5.14.0-362.8.1.el9_3", "5.14.0-284.30.1.el9_2"]}),
        _asset(6, "rhel:9", {"kernel": ["5.14.0-362.13.1.el9_3"]}),
    ]
    sprawl = version_sprawl(drift(assets, entries, include_ok=True))
    assert sprawl == (
        PackageSprawl(
            "openssl",
            (
                VersionAssets("3.0.11-1~deb12u2", (1, 4)),
                VersionAssets("3.0.11-1~deb12u1", (2,)),
                VersionAssets("3.0.9-1", (3,)),
            ),
        ),
        PackageSprawl(
            "kernel",
            (
                VersionAssets("5.14.0-362.13.1.el9_3", (6,)),
                VersionAssets("5.14.0-362.8.1.el9_3", (5,)),
            ),
        ),
        PackageSprawl("bash", (VersionAssets("5.2.15-2+b2", (1, 2, 3)),), missing=(4,)),
    )
    assert [s.distinct for s in sprawl] == [3, 2, 1]
    assert version_sprawl([]) == ()


def test_sprawl_of_a_package_that_is_only_missing() -> None:
    rows = drift([_asset(1, "debian:12", {})], [ENTRIES[-1]])
    assert version_sprawl(rows) == (PackageSprawl("tzdata", (), missing=(1,)),)
