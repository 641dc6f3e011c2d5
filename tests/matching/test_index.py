"""The advisory index: what it keeps, what it reports, incremental updates."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime

from patchwarden.domain.advisories import Advisory, AffectedPackage, AffectedRange, RangeEvent
from patchwarden.domain.inventory import InstalledPackage
from patchwarden.matching import AdvisoryIndex, canonical_name, match_packages
from tests.matching import realdata

INTRO_0 = RangeEvent("introduced", "0")


def fixed_in(platform: str, name: str, version: str) -> AffectedPackage:
    ranges = (AffectedRange("ECOSYSTEM", (INTRO_0, RangeEvent("fixed", version))),)
    return AffectedPackage(platform, name, ranges=ranges)


def test_canonical_name() -> None:
    assert canonical_name("pypi", "Zope.Interface") == "zope-interface"
    assert canonical_name("pypi", "jw__util") == "jw-util"
    assert canonical_name("pypi", "A-_.b") == "a-b"
    assert canonical_name("debian:12", "Foo.Bar") == "Foo.Bar"  # distributions: as is


def test_whole_corpus_builds_and_reports_its_problems() -> None:
    advisories = [*realdata.all_debian(), *realdata.all_pypi(), *realdata.all_usn()]
    index = AdvisoryIndex.build(advisories)
    withdrawn = sum(1 for a in advisories if a.withdrawn is not None)
    assert withdrawn == 10  # as the data README says
    assert len(index) == len(advisories) - withdrawn
    kinds = Counter(p.reason.split(" (")[0].split(":")[0] for p in index.problems)
    # 108 listed PyPI versions are not PEP 440; two records are "fixed" in non-versions
    # ("2019-09-12", "0.2.0-n653"), which leaves those two entries nothing usable.
    assert kinds == Counter(
        {
            "listed version does not parse": 108,
            "range 1 dropped": 2,
            "no usable range or version": 2,
        }
    )
    assert {"openssl", "linux", "util-linux"} <= index.names("debian:11")
    assert "django" in index.names("pypi") and "jw-util" in index.names("pypi")
    assert index.names("ubuntu:22.04") == {"openssh"}
    assert index.has_binary("ubuntu:22.04", "openssh-client")
    assert not index.has_binary("debian:11", "libssl1.1")
    assert "debian:3.0" in index.platforms()  # woody, from the codename table


def test_withdrawn_not_indexed_and_withdrawal_removes() -> None:
    [advisory] = realdata.pysec("PYSEC-2019-144")  # arrayfire, withdrawn
    index = AdvisoryIndex.build([advisory])
    assert len(index) == 0 and "PYSEC-2019-144" not in index
    live = replace(advisory, withdrawn=None)
    index.add(live)
    arrayfire = InstalledPackage("pypi", "arrayfire", "3.5.0")
    assert len(match_packages(index, None, [arrayfire])) == 1
    index.add(advisory)  # the feed now says: withdrawn
    assert "PYSEC-2019-144" not in index
    assert match_packages(index, None, [arrayfire]) == []


def test_add_replaces_an_advisory_with_the_same_id() -> None:
    first = Advisory("DSA-1", "debian-tracker", affected=(fixed_in("debian:12", "demo", "1.0-2"),))
    index = AdvisoryIndex.build([first])
    demo = InstalledPackage("deb", "demo", "1.0-2")
    assert match_packages(index, "debian:12", [demo]) == []
    generation = index.generation
    index.add(replace(first, affected=(fixed_in("debian:12", "demo", "1.0-3"),)))
    assert index.generation != generation
    assert len(index) == 1
    [match] = match_packages(index, "debian:12", [demo])
    assert match.fixed_version == "1.0-3"
    assert index.remove("DSA-1")
    assert not index.remove("DSA-1")
    assert len(index) == 0 and index.names("debian:12") == set()


def test_remove_keeps_other_advisories_of_the_same_package() -> None:
    advisories = realdata.dsa_for("openssl")
    index = AdvisoryIndex.build(advisories)
    libssl = InstalledPackage("deb", "libssl1.1", "1.1.1k-1+deb11u1", "amd64", "openssl")
    before = [m.advisory_id for m in match_packages(index, "debian:11", [libssl])]
    assert before == ["DSA-5103-1", "DSA-5139-1", "DSA-5169-1", "DSA-5343-1"]
    index.remove("DSA-5139-1")
    after = [m.advisory_id for m in match_packages(index, "debian:11", [libssl])]
    assert after == ["DSA-5103-1", "DSA-5169-1", "DSA-5343-1"]


def test_problems_for_unusable_entries_and_ranges() -> None:
    when = datetime(2024, 1, 1, tzinfo=UTC)
    advisory = Advisory(
        "TEST-1",
        "test",
        modified=when,
        affected=(
            fixed_in("plan9:4", "demo", "1.0"),  # unknown platform
            AffectedPackage(  # SEMVER range on a PEP 440 platform
                "pypi",
                "demo",
                ranges=(AffectedRange("SEMVER", (INTRO_0, RangeEvent("fixed", "1.0.0"))),),
            ),
            AffectedPackage(  # no introduced event
                "pypi", "other", ranges=(AffectedRange("ECOSYSTEM", (RangeEvent("fixed", "1.0"),)),)
            ),
            AffectedPackage(  # one bad range, one good one
                "debian:12",
                "demo",
                ranges=(
                    AffectedRange("ECOSYSTEM", (INTRO_0, RangeEvent("fixed", "1.0 beta"))),
                    AffectedRange("ECOSYSTEM", (INTRO_0, RangeEvent("last_affected", "0.9-1"))),
                ),
            ),
            AffectedPackage(  # a bad limit
                "debian:12",
                "limited",
                ranges=(AffectedRange("ECOSYSTEM", (INTRO_0, RangeEvent("limit", "::"))),),
            ),
        ),
    )
    index = AdvisoryIndex.build([advisory])
    reasons = [(p.platform, p.name, p.version, p.reason) for p in index.problems]
    assert reasons == [
        ("plan9:4", "demo", None, "unknown platform 'plan9:4': entry not indexed"),
        ("pypi", "demo", None, "range 1: SEMVER range on a pep440 platform dropped"),
        ("pypi", "demo", None, "no usable range or version: entry not indexed"),
        ("pypi", "other", None, "range 1 has no 'introduced' event: it affects nothing"),
        ("pypi", "other", None, "no usable range or version: entry not indexed"),
        (
            "debian:12",
            "demo",
            "1.0 beta",
            "range 1 dropped: fixed '1.0 beta' does not parse (version must not contain whitespace)",
        ),
        ("debian:12", "limited", "::", reasons[-2][3]),
        ("debian:12", "limited", None, "no usable range or version: entry not indexed"),
    ]
    assert reasons[-2][3].startswith("range 1 dropped: limit '::' does not parse")
    demo = InstalledPackage("deb", "demo", "0.9-1")
    [match] = match_packages(index, "debian:12", [demo])  # the good range still counts
    assert match.fixed_version is None
    index.remove("TEST-1")
    assert index.problems == []


def test_package_docstring_example() -> None:
    import doctest

    import patchwarden.matching

    assert doctest.testmod(patchwarden.matching).failed == 0
