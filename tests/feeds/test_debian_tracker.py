"""The Debian tracker's DSA/DLA lists, cross-checked against the reference parse,
and its JSON export."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from patchwarden.domain.advisories import (
    DEBIAN_CODENAMES,
    Advisory,
    AffectedPackage,
    AffectedRange,
    ParsedFeed,
    RangeEvent,
)
from tests.feeds.conftest import Parse


def fixed(version: str) -> tuple[AffectedRange, ...]:
    return (
        AffectedRange("ECOSYSTEM", (RangeEvent("introduced", "0"), RangeEvent("fixed", version))),
    )


@pytest.mark.parametrize("name", ["DSA", "DLA"])
def test_shared_lists_agree_with_the_reference_parse(
    shared_dir: Path, shared_feeds: dict[str, list[ParsedFeed]], name: str
) -> None:
    (parsed,) = shared_feeds[f"debian/{name}_list.txt"]
    assert parsed.rejected == ()
    advisories = [r for r in parsed.records if isinstance(r, Advisory)]
    reference = [
        json.loads(line)
        for line in (shared_dir / "debian" / f"{name}_list.parsed.jsonl").read_text().splitlines()
    ]
    assert len(advisories) == len(reference) == {"DSA": 5406, "DLA": 3534}[name]

    ours, theirs = set(), set()
    for advisory in advisories:
        for entry in advisory.affected:
            if entry.ranges:
                ours.add(
                    (advisory.id, entry.platform, entry.name, entry.ranges[0].events[1].version)
                )
            else:
                ours.add((advisory.id, entry.platform, entry.name, f"<{entry.note}>"))
    for item in reference:
        for line in item["fixed"]:
            platform = f"debian:{DEBIAN_CODENAMES[line['release']]}"
            if "fixed_version" in line:
                theirs.add((item["id"], platform, line["package"], line["fixed_version"]))
            elif line["status"] != "not-affected":
                # Our note holds the status for end-of-life, the (note) for unfixed.
                note = "end-of-life" if line["status"] == "end-of-life" else line.get("note")
                theirs.add((item["id"], platform, line["package"], f"<{note}>"))
    assert ours == theirs

    by_id = {a.id: a for a in advisories}
    for item in reference:
        advisory = by_id[item["id"]]
        assert list(advisory.aliases) == item["cves"]
        assert advisory.published is not None
        assert advisory.published.date().isoformat() == item["date"]
        assert (advisory.details or None) == ("\n".join(item.get("notes", [])) or None)


def test_shared_dsa_details(shared_feeds: dict[str, list[ParsedFeed]]) -> None:
    (parsed,) = shared_feeds["debian/DSA_list.txt"]
    by_id = {r.id: r for r in parsed.records if isinstance(r, Advisory)}
    assert by_id["DSA-5380-1"] == Advisory(
        id="DSA-5380-1",
        source="debian-tracker",
        aliases=("CVE-2023-1393",),
        title="xorg-server - security update",
        published=datetime(2023, 3, 29, tzinfo=UTC),
        affected=(
            AffectedPackage("debian:11", "xorg-server", ranges=fixed("2:1.20.11-1+deb11u6")),
        ),
    )
    assert by_id["DSA-746-1"].affected[0] == AffectedPackage(
        "debian:3.0", "phpgroupware", all_versions=True, note="high"
    )
    assert parsed.notes == ("55 release lines say <not-affected> (no affected entry)",)


def test_statuses_and_bad_lines(parse_text: Parse) -> None:
    text = (
        "\t[bookworm] - orphan 1.0-1\n"
        "[01 Feb 2024] DSA-5600-1 demo - security update\n"
        "\t{CVE-2024-0001 CVE-2024-0002}\n"
        "\t[bookworm] - demo 1.0-1+deb12u1\n"
        "\t[bullseye] - demo <not-affected> (Vulnerable code not present)\n"
        "\t[buster] - demo <end-of-life> (Not supported)\n"
        "\t[stretch] - demo <unfixed>\n"
        "\t[hamm] - demo 0.1-1\n"
        "\t[jessie] - demo <postponed>\n"
        "\t[wheezy] - demo :bad\n"
        "\tgarbage here\n"
        "\tNOTE: fixed in testing\n"
        "[31 Feb 2024] DSA-5601-1 other - security update\n"
        "\t[bookworm] - other 2.0-1\n"
        "[02 Feb 2024] DLA-3700-1 demo\n"
        "[03 Feb 2024] DLA-3700-1 demo - again\n"
        "junk header\n"
    )
    parsed = parse_text("debian-tracker", text, name="list")
    assert parsed.records == (
        Advisory(
            id="DSA-5600-1",
            source="debian-tracker",
            aliases=("CVE-2024-0001", "CVE-2024-0002"),
            title="demo - security update",
            details="fixed in testing",
            published=datetime(2024, 2, 1, tzinfo=UTC),
            affected=(
                AffectedPackage("debian:12", "demo", ranges=fixed("1.0-1+deb12u1")),
                AffectedPackage(
                    "debian:10", "demo", all_versions=True, note="end-of-life; Not supported"
                ),
                AffectedPackage("debian:9", "demo", all_versions=True),
            ),
        ),
        Advisory(
            id="DLA-3700-1",
            source="debian-tracker",
            title="demo",
            published=datetime(2024, 2, 2, tzinfo=UTC),
        ),
    )
    assert [(r.where, r.reason.split(" (")[0]) for r in parsed.rejected] == [
        ("list:1", "an indented line before the first advisory header"),
        ("list:8 DSA-5600-1", "unknown Debian release 'hamm'"),
        ("list:9 DSA-5600-1", "unknown status <postponed>"),
        (
            "list:10 DSA-5600-1",
            "fixed version ':bad' is not a valid deb version: epoch before ':' is empty",
        ),
        ("list:11 DSA-5600-1", "line not understood: 'garbage here'"),
        ("list:13 DSA-5601-1", "invalid date: day is out of range for month"),
        ("list:16 DLA-3700-1", "DLA-3700-1 is listed again"),
        ("list:17", "not an advisory header: 'junk header'"),
    ]


def test_not_a_list(parse_text: Parse) -> None:
    parsed = parse_text("debian-tracker", "hello\nworld\n", name="x")
    assert parsed.records == ()
    assert parsed.rejected == (
        parsed.rejected[0].__class__(
            "x", "not a Debian DSA/DLA list: no '[DD Mon YYYY] DSA-NNNN-N package - title' line"
        ),
    )


TRACKER_JSON = {
    "openssl": {
        "CVE-2023-0001": {
            "description": "openssl: a flaw",
            "scope": "remote",
            "debianbug": 1030000,
            "releases": {
                "bookworm": {
                    "status": "resolved",
                    "repositories": {"bookworm": "3.0.11-1~deb12u2"},
                    "fixed_version": "3.0.8-1",
                    "urgency": "not yet assigned",
                },
                "bullseye": {
                    "status": "open",
                    "repositories": {"bullseye": "1.1.1w-0+deb11u1"},
                    "urgency": "unimportant",
                    "nodsa": "Minor issue",
                },
                "buster": {"status": "open", "repositories": {}, "urgency": "end-of-life"},
                "trixie": {"status": "resolved", "fixed_version": "0", "urgency": "unimportant"},
                "sid": {"status": "resolved", "fixed_version": "3.0.8-1", "urgency": "unimportant"},
                "hamm": {"status": "open", "urgency": "low"},
            },
        },
        "TEMP-0000000-ABCDEF": {
            "description": "no CVE yet",
            "releases": {"bookworm": {"status": "undetermined", "urgency": "not yet assigned"}},
        },
    },
    "zlib": {
        "CVE-2022-37434": {
            "releases": {
                "bookworm": {"status": "resolved", "fixed_version": "0"},
                "bullseye": {"status": "resolved"},
            }
        },
        "bad id": {"releases": {}},
    },
}


def test_tracker_json(parse_text: Parse) -> None:
    parsed = parse_text("debian-tracker-json", TRACKER_JSON, name="json")
    assert parsed.records == (
        Advisory(
            id="DEBIAN-CVE-2023-0001-openssl",
            source="debian-tracker-json",
            aliases=("CVE-2023-0001",),
            title="openssl: a flaw",
            affected=(
                AffectedPackage("debian:10", "openssl", all_versions=True, note="end-of-life"),
                AffectedPackage(
                    "debian:11", "openssl", all_versions=True, note="urgency unimportant"
                ),
                AffectedPackage("debian:12", "openssl", ranges=fixed("3.0.8-1")),
            ),
            rating="low",  # "unimportant", the most severe urgency of a release read
        ),
        Advisory(
            id="DEBIAN-TEMP-0000000-ABCDEF-openssl",
            source="debian-tracker-json",
            aliases=("TEMP-0000000-ABCDEF",),
            title="no CVE yet",
            affected=(
                AffectedPackage("debian:12", "openssl", all_versions=True, note="undetermined"),
            ),
        ),
        Advisory(
            id="DEBIAN-CVE-2022-37434-zlib",
            source="debian-tracker-json",
            aliases=("CVE-2022-37434",),
        ),
    )
    assert [(r.where, r.reason) for r in parsed.rejected] == [
        ("json openssl CVE-2023-0001 releases.hamm", "unknown Debian release 'hamm'"),
        ("json zlib CVE-2022-37434 releases.bullseye", "status 'resolved' without a fixed_version"),
        ("json zlib bad id", "'bad id' is not a vulnerability id"),
    ]
    assert parsed.notes == (
        "Debian tracker JSON: 2 source packages",
        "2 release entries are resolved with version 0 (not affected)",
        "1 release entries for sid/experimental skipped (no release number)",
        "1 (package, vulnerability) pairs affect no numbered release (imported empty)",
    )


def test_tracker_json_is_detected(tmp_path: Path) -> None:
    from patchwarden.feeds import detect_format

    path = tmp_path / "json"
    path.write_text(json.dumps(TRACKER_JSON))
    assert detect_format(path) == "debian-tracker-json"
