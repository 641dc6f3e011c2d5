"""OSV: ecosystems, ranges, versions, aliases, severities, and the shared PyPI and
Ubuntu data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from patchwarden.domain.advisories import (
    Advisory,
    AffectedPackage,
    AffectedRange,
    CvssMetric,
    ParsedFeed,
    RangeEvent,
)
from patchwarden.feeds.osv import Unusable, platform_of_ecosystem
from tests.feeds.conftest import Parse


def record(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "GHSA-xxxx-0001",
        "modified": "2024-05-01T10:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "Demo_Pkg"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2.0"}]}
                ],
            }
        ],
    }
    return base | fields


def advisories(parsed: ParsedFeed) -> list[Advisory]:
    return [r for r in parsed.records if isinstance(r, Advisory)]


@pytest.mark.parametrize(
    ("ecosystem", "platform", "note"),
    [
        ("Debian:12", "debian:12", None),
        ("Debian:11", "debian:11", None),
        ("Debian:3.0", "debian:3.0", None),
        ("Ubuntu:22.04:LTS", "ubuntu:22.04", None),
        ("Ubuntu:24.04:LTS", "ubuntu:24.04", None),
        ("Ubuntu:14.04:LTS", "ubuntu:14.04", None),
        ("Ubuntu:23.10", "ubuntu:23.10", None),
        ("Ubuntu:Pro:16.04:LTS", "ubuntu:16.04", "Ubuntu Pro"),
        ("Ubuntu:Pro:FIPS-updates:22.04:LTS", "ubuntu:22.04", "Ubuntu Pro FIPS-updates"),
        ("Alpine:v3.18", "alpine:3.18", None),
        ("PyPI", "pypi", None),
        ("npm", "npm", None),
        ("Red Hat:enterprise_linux:9::appstream", "rhel:9", None),
        ("Red Hat:rhel_aus:8.4::appstream", "rhel:8", None),
        ("Rocky Linux:9", "rhel:9", None),
        ("AlmaLinux:8", "rhel:8", None),
    ],
)
def test_platform_of_ecosystem(ecosystem: str, platform: str, note: str | None) -> None:
    assert platform_of_ecosystem(ecosystem) == (platform, note)


@pytest.mark.parametrize(
    ("ecosystem", "reason"),
    [
        ("Maven", "unsupported ecosystem 'Maven'"),
        ("crates.io", "unsupported ecosystem 'crates.io'"),
        ("Go", "unsupported ecosystem 'Go'"),
        ("Debian", "names no Debian release"),
        ("Ubuntu:Pro", "names no Ubuntu release"),
        ("Alpine", "names no Alpine branch"),
        ("Red Hat", "is not Red Hat Enterprise Linux"),
        ("Red Hat:openshift:4.14::el9", "is not Red Hat Enterprise Linux"),
        ("Red Hat:enterprise_linux", "names no major version"),
        ("AlmaLinux", "names no major version"),
    ],
)
def test_unusable_ecosystems(ecosystem: str, reason: str) -> None:
    with pytest.raises(Unusable, match=reason):
        platform_of_ecosystem(ecosystem)


def test_one_record_all_fields(parse_text: Parse) -> None:
    raw = record(
        summary=" Demo flaw ",
        details="Details.",
        published="2024-04-01T00:00:00+02:00",
        withdrawn=None,
        aliases=["CVE-2024-1111", "GHSA-xxxx-0001"],
        upstream=["UBUNTU-CVE-2024-2222", "CVE-2024-1111"],
        references=[{"type": "WEB", "url": "https://example.org/a"}, {"type": "X"}],
        severity=[
            {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
            {"type": "CVSS_V2", "score": "AV:N/AC:L/Au:N/C:P/I:P/A:P"},
            {"type": "Ubuntu", "score": "high"},
        ],
    )
    parsed = parse_text("osv", raw, name="GHSA-xxxx-0001.json")
    assert parsed.rejected == ()
    assert parsed.notes == ()  # the Ubuntu rating is kept as the record's rating
    assert parsed.file == "GHSA-xxxx-0001.json"
    assert parsed.records == (
        Advisory(
            id="GHSA-xxxx-0001",
            source="osv",
            aliases=("CVE-2024-1111", "CVE-2024-2222"),
            title="Demo flaw",
            details="Details.",
            published=datetime(2024, 3, 31, 22, tzinfo=UTC),
            modified=datetime(2024, 5, 1, 10, tzinfo=UTC),
            severity=(
                CvssMetric("3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
                CvssMetric("2.0", "AV:N/AC:L/Au:N/C:P/I:P/A:P", 7.5),
            ),
            affected=(
                AffectedPackage(
                    "pypi",
                    "demo-pkg",
                    ranges=(
                        AffectedRange(
                            "ECOSYSTEM",
                            (RangeEvent("introduced", "0"), RangeEvent("fixed", "1.2.0")),
                        ),
                    ),
                ),
            ),
            references=("https://example.org/a",),
            rating="high",
        ),
    )


def test_ubuntu_ratings_the_most_severe_of_record_and_entries(parse_text: Parse) -> None:
    entry = {
        "package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "demo"},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1-1"}]}],
    }
    rated = record(
        id="UBUNTU-CVE-2024-3333",
        affected=[entry | {"severity": [{"type": "Ubuntu", "score": "medium"}]}],
        severity=[{"type": "Ubuntu", "score": "negligible"}, {"type": "Ubuntu", "score": "?"}],
    )
    (parsed,) = advisories(parse_text("osv", rated, name="u.json"))
    assert parsed.rating == "medium"
    unrated = record(id="UBUNTU-CVE-2024-4444", affected=[entry])
    assert advisories(parse_text("osv", unrated, name="v.json"))[0].rating is None


def test_unknown_ecosystem_entry_is_rejected_alone(parse_text: Parse) -> None:
    raw = record()
    raw["affected"] = [
        {"package": {"ecosystem": "Maven", "name": "org.demo:demo"}, "versions": ["1.0"]},
        *raw["affected"],
    ]
    parsed = parse_text("osv", raw, name="x.json")
    (advisory,) = advisories(parsed)
    assert [a.platform for a in advisory.affected] == ["pypi"]
    assert [(r.where, r.reason) for r in parsed.rejected] == [
        ("x.json GHSA-xxxx-0001 affected[0]", "unsupported ecosystem 'Maven'")
    ]


def test_record_without_usable_entry_is_rejected_listing_ecosystems(parse_text: Parse) -> None:
    raw = record(
        affected=[
            {"package": {"ecosystem": "Maven", "name": "a:b"}, "versions": ["1.0"]},
            {"package": {"ecosystem": "crates.io", "name": "c"}, "versions": ["1.0.0"]},
        ]
    )
    parsed = parse_text("osv", raw, name="x.json")
    assert parsed.records == ()
    assert [(r.where, r.reason) for r in parsed.rejected] == [
        (
            "x.json GHSA-xxxx-0001",
            "no usable affected entry (ecosystems: Maven, crates.io): affected[0]: "
            "unsupported ecosystem 'Maven'; affected[1]: unsupported ecosystem 'crates.io'",
        )
    ]


@pytest.mark.parametrize(
    ("ranges", "reason"),
    [
        (
            [{"type": "ECOSYSTEM", "events": [{"fixed": "1.0"}]}],
            "a range must start with 'introduced', not 'fixed'",
        ),
        (
            [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"patched": "1.0"}]}],
            "events[1]: unknown event 'patched' (expected introduced, fixed, last_affected "
            "or limit)",
        ),
        (
            [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": 1.0}]}],
            "events[1]: the fixed version must be a non-empty string",
        ),
        (
            [{"type": "ECOSYSTEM", "events": [{"introduced": "0", "fixed": "1.0"}]}],
            "events[0] must be an object with exactly one key",
        ),
        ([{"type": "ECOSYSTEM", "events": []}], "a range has no events"),
        (
            [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "not a version"}]}],
            "events[1]: fixed 'not a version' is not a valid pep440 version",
        ),
        ([{"type": "BISECT", "events": [{"introduced": "0"}]}], "unsupported range type 'BISECT'"),
        (
            [{"type": "GIT", "repo": "r", "events": [{"introduced": "0"}, {"fixed": "abc"}]}],
            "only GIT ranges, which cannot be compared with package versions",
        ),
    ],
)
def test_invalid_ranges_reject_the_entry(parse_text: Parse, ranges: Any, reason: str) -> None:
    raw = record()
    raw["affected"] = [
        {"package": {"ecosystem": "PyPI", "name": "bad"}, "ranges": ranges},
        {"package": {"ecosystem": "PyPI", "name": "good"}, "versions": ["1.0"]},
    ]
    parsed = parse_text("osv", raw, name="x.json")
    (advisory,) = advisories(parsed)
    assert [a.name for a in advisory.affected] == ["good"]
    ((where, got),) = [(r.where, r.reason) for r in parsed.rejected]
    assert where == "x.json GHSA-xxxx-0001 affected[0]"
    assert got.startswith(reason) or reason in got


def test_semver_last_affected_and_limit(parse_text: Parse) -> None:
    raw = record(
        affected=[
            {
                "package": {"ecosystem": "npm", "name": "left-pad"},
                "ranges": [
                    {
                        "type": "SEMVER",
                        "events": [
                            {"introduced": "0"},
                            {"fixed": "1.0.1"},
                            {"introduced": "2.0.0-rc.1"},
                            {"last_affected": "2.1.0"},
                        ],
                    },
                    {"type": "ECOSYSTEM", "events": [{"introduced": "3.0.0"}, {"limit": "*"}]},
                    {"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "v1.0"}]},
                ],
            }
        ]
    )
    parsed = parse_text("osv", raw, name="x.json")
    assert parsed.records == ()  # the third range is invalid SemVer: the only entry goes
    assert "fixed 'v1.0' is not a valid semver version" in parsed.rejected[0].reason
    raw["affected"][0]["ranges"].pop()
    (advisory,) = advisories(parse_text("osv", raw))
    assert [r.type for r in advisory.affected[0].ranges] == ["SEMVER", "ECOSYSTEM"]
    assert advisory.affected[0].ranges[0].events[-1] == RangeEvent("last_affected", "2.1.0")


def test_unorderable_versions_are_left_out_and_reported(parse_text: Parse) -> None:
    raw = record()
    raw["affected"][0]["versions"] = ["1.0", "1.0-bulbasaur", "1.1"]
    parsed = parse_text("osv", raw, name="x.json")
    (advisory,) = advisories(parsed)
    assert advisory.affected[0].versions == ("1.0", "1.1")
    assert [(r.where, r.reason) for r in parsed.rejected] == [
        (
            "x.json GHSA-xxxx-0001 affected[0] versions",
            "1 of 3 listed versions are not valid pep440 versions and were left out: "
            "'1.0-bulbasaur'",
        )
    ]


def test_withdrawn_record_is_kept_even_without_usable_entries(parse_text: Parse) -> None:
    raw = record(withdrawn="2024-06-01T00:00:00Z")
    raw["affected"] = [{"package": {"ecosystem": "PyPI", "name": "loguru"}}]
    parsed = parse_text("osv", raw)
    (advisory,) = advisories(parsed)
    assert advisory.withdrawn == datetime(2024, 6, 1, tzinfo=UTC)
    assert advisory.affected == ()
    assert parsed.rejected == ()
    assert parsed.notes == (
        "1 withdrawn records (imported with their withdrawal date)",
        "1 unusable parts of withdrawn records ignored",
    )


def test_record_level_problems(parse_text: Parse) -> None:
    lines = [
        json.dumps(record(id="A-1", modified="yesterday")),
        "{not json",
        json.dumps(["a list"]),
        json.dumps(record(id="A-2", affected=[])),
        json.dumps({"modified": "2024-01-01T00:00:00Z"}),
        json.dumps(record(id="A-3", aliases="CVE-2024-1")),
        "",
        json.dumps(record(id="A-4")),
    ]
    parsed = parse_text("osv", "\n".join(lines), name="f.jsonl")
    assert [a.id for a in advisories(parsed)] == ["A-4"]
    assert [(r.where, r.reason) for r in parsed.rejected] == [
        ("f.jsonl:1 A-1", "modified 'yesterday' is not an ISO 8601 date-time"),
        (
            "f.jsonl:2",
            "not valid JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
        ),
        ("f.jsonl:3", "an OSV record is a JSON object, not list"),
        ("f.jsonl:4 A-2", "the record lists no affected package"),
        ("f.jsonl:5", "the record has no 'id'"),
        ("f.jsonl:6 A-3", "'aliases' must be a list of strings"),
    ]


def test_json_array_and_pretty_printed_object(parse_text: Parse) -> None:
    array = [record(id="A-1"), {"id": "A-2"}, record(id="A-3")]
    parsed = parse_text("osv", json.dumps(array, indent=2), name="a.json")
    assert [a.id for a in advisories(parsed)] == ["A-1", "A-3"]
    assert [r.where for r in parsed.rejected] == ["a.json [1] A-2"]
    single = parse_text("osv", json.dumps(record(), indent=2), name="b.json")
    assert [a.id for a in advisories(single)] == ["GHSA-xxxx-0001"]


def test_a_file_of_other_json_is_rejected_whole(parse_text: Parse) -> None:
    parsed = parse_text("osv", "\n".join(json.dumps({"cve": i}) for i in range(3)), name="x")
    assert parsed.records == ()
    assert [(r.where, r.reason) for r in parsed.rejected] == [
        ("x", "no item in the file is an OSV record (none has an 'id')")
    ]


def test_invalid_cvss_vector_is_dropped_and_reported(parse_text: Parse) -> None:
    raw = record(severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:Q"}])
    parsed = parse_text("osv", raw, name="x.json")
    (advisory,) = advisories(parsed)
    assert advisory.severity == ()
    assert parsed.rejected[0].where == "x.json GHSA-xxxx-0001 severity[0]"
    assert parsed.rejected[0].reason.startswith("invalid CVSS_V3 vector: ")


def test_shared_pypi(shared_feeds: dict[str, list[ParsedFeed]]) -> None:
    (parsed,) = shared_feeds["osv-pypi/pypa_advisory_database.jsonl"]
    records = advisories(parsed)
    assert len(records) == 2659
    assert sum(a.withdrawn is not None for a in records) == 10
    assert sum(bool(a.severity) for a in records) == 202
    assert all(a.source == "osv" for a in records)
    assert all(p.platform == "pypi" for a in records for p in a.affected)
    assert all(p.name == p.name.lower() and "_" not in p.name for a in records for p in a.affected)
    # Two records are refused: their only range has a fixed version that is not
    # PEP 440 (upstream data errors). 28 entries lose 108 legacy, non-PEP 440
    # versions from their `versions` list ("0.1-bulbasaur") and are kept.
    whole = [(r.where.split()[-1], r.reason) for r in parsed.rejected if "versions" not in r.where]
    assert whole == [
        (
            "PYSEC-2019-125",
            "no usable affected entry (ecosystems: PyPI): affected[0]: events[1]: fixed "
            "'2019-09-12' is not a valid pep440 version: not a valid PEP 440 version",
        ),
        (
            "PYSEC-2021-371",
            "no usable affected entry (ecosystems: PyPI): affected[0]: events[1]: fixed "
            "'0.2.0-n653' is not a valid pep440 version: not a valid PEP 440 version",
        ),
    ]
    partial = [r for r in parsed.rejected if r.where.endswith("affected[0] versions")]
    assert len(partial) == 28
    assert sum(int(r.reason.split()[0]) for r in partial) == 108
    assert parsed.notes == (
        "1390 GIT ranges skipped (commit ranges cannot be compared with package versions)",
        "10 withdrawn records (imported with their withdrawal date)",
        "1 unusable parts of withdrawn records ignored",
    )
    first = records[0]
    assert (first.id, first.aliases, first.published) == (
        "PYSEC-2005-1",
        ("CVE-2005-4644",),
        datetime(2005, 12, 31, 5, tzinfo=UTC),
    )
    assert first.affected[0].versions == ("0.8.4", "0.9")


def test_shared_ubuntu(shared_feeds: dict[str, list[ParsedFeed]]) -> None:
    (parsed,) = shared_feeds["ubuntu-osv/usn_sample.jsonl"]
    by_id = {a.id: a for a in advisories(parsed)}
    assert sorted(by_id) == ["USN-2171-1", "USN-2182-1", "USN-2210-1", "USN-2216-1", "USN-6859-1"]
    usn = by_id["USN-6859-1"]
    assert usn.aliases == ("CVE-2024-6387",)
    assert usn.title == "openssh vulnerability"
    assert [(p.platform, p.name) for p in usn.affected] == [
        ("ubuntu:22.04", "openssh"),
        ("ubuntu:24.04", "openssh"),
    ]
    jammy = usn.affected[0]
    assert jammy.ranges[0].events == (
        RangeEvent("introduced", "0"),
        RangeEvent("fixed", "1:8.9p1-3ubuntu0.10"),
    )
    assert "openssh-server" in jammy.binaries and len(jammy.binaries) == 11
    assert len(jammy.versions) == 12
    assert by_id["USN-2182-1"].aliases == ("CVE-2013-4544", "CVE-2014-0150", "CVE-2014-2894")


def test_json_lines_with_a_broken_first_line(parse_text: Parse) -> None:
    text = "{broken\n" + json.dumps(record(id="A-1")) + "\n" + json.dumps(record(id="A-2"))
    parsed = parse_text("osv", text, name="export.json")
    assert [a.id for a in advisories(parsed)] == ["A-1", "A-2"]
    assert [r.where for r in parsed.rejected] == ["export.json:1"]


def test_distribution_records_use_their_version_scheme(parse_text: Parse) -> None:
    def entry(ecosystem: str, fixed: str) -> dict[str, Any]:
        events = [{"introduced": "0"}, {"fixed": fixed}]
        return {
            "package": {"ecosystem": ecosystem, "name": "openssl"},
            "ranges": [{"type": "ECOSYSTEM", "events": events}],
        }

    raw = record(
        id="DEBIAN-CVE-2024-0001",
        affected=[
            entry("Debian:12", "3.0.11-1~deb12u2"),
            entry("Alpine:v3.18", "3.1.4-r1"),
            entry("AlmaLinux:9", "1:3.0.7-25.el9_3"),
            entry("Debian:11", "3.0 11"),  # whitespace: not a dpkg version
        ],
    )
    parsed = parse_text("osv", raw, name="x.json")
    (advisory,) = advisories(parsed)
    assert [(a.platform, a.ranges[0].events[1].version) for a in advisory.affected] == [
        ("debian:12", "3.0.11-1~deb12u2"),
        ("alpine:3.18", "3.1.4-r1"),
        ("rhel:9", "1:3.0.7-25.el9_3"),
    ]
    assert [(r.where, r.reason) for r in parsed.rejected] == [
        (
            "x.json DEBIAN-CVE-2024-0001 affected[3]",
            "events[1]: fixed '3.0 11' is not a valid deb version: "
            "version must not contain whitespace",
        )
    ]
