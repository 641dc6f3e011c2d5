"""CISA KEV: the real catalogue, and broken entries."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from patchwarden.domain.advisories import KevEntry, ParsedFeed
from patchwarden.feeds.kev import KevCatalogue
from tests.feeds.conftest import Parse


def entry(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "cveID": "CVE-2024-0001",
        "vendorProject": "Acme",
        "product": "Widget",
        "vulnerabilityName": "Acme Widget RCE",
        "dateAdded": "2025-01-01",
        "shortDescription": "A flaw.",
        "requiredAction": "Apply updates.",
        "dueDate": "2025-01-22",
        "knownRansomwareCampaignUse": "Known",
        "notes": "https://example.org",
        "cwes": ["CWE-78"],
    }
    return base | fields


def catalogue(*entries: object, count: int | None = None) -> dict[str, Any]:
    return {
        "title": "CISA Catalog of Known Exploited Vulnerabilities",
        "catalogVersion": "2025.01.02",
        "dateReleased": "2025-01-02T10:00:00.000Z",
        "count": len(entries) if count is None else count,
        "vulnerabilities": list(entries),
    }


def test_shared_catalogue(shared_feeds: dict[str, list[ParsedFeed]]) -> None:
    (parsed,) = shared_feeds["kev/known_exploited_vulnerabilities.json"]
    entries = [r for r in parsed.records if isinstance(r, KevEntry)]
    assert len(entries) == 1404
    assert len({e.cve_id for e in entries}) == 1404
    assert parsed.rejected == ()
    assert parsed.notes == (
        "CISA KEV catalogue 2025.08.25, released 2025-08-25T17:04:19.9796Z: 1404 entries",
    )
    # Whole and self-consistent: what it leaves out is no longer listed.
    assert isinstance(parsed, KevCatalogue)
    assert parsed.listed == frozenset(e.cve_id for e in entries)
    ransomware = sum(e.known_ransomware for e in entries)
    assert 0 < ransomware < 1404
    assert all(e.date_added <= date(2025, 8, 25) for e in entries)
    assert all(e.due_date is not None for e in entries)
    # Kept as published: 15 entries carried over from earlier emergency directives
    # (added 2021-11-03) have due dates before their dateAdded.
    early = [e for e in entries if e.due_date is not None and e.due_date < e.date_added]
    assert len(early) == 15
    assert {e.date_added for e in early} == {date(2021, 11, 3)}


def test_entry_fields(parse_text: Parse) -> None:
    parsed = parse_text("kev", catalogue(entry()))
    assert parsed.records == (
        KevEntry(
            cve_id="CVE-2024-0001",
            vendor="Acme",
            product="Widget",
            name="Acme Widget RCE",
            date_added=date(2025, 1, 1),
            due_date=date(2025, 1, 22),
            known_ransomware=True,
            required_action="Apply updates.",
            notes="https://example.org",
            catalogue_released=datetime(2025, 1, 2, 10, tzinfo=UTC),
        ),
    )
    assert isinstance(parsed, KevCatalogue)
    assert parsed.released == datetime(2025, 1, 2, 10, tzinfo=UTC)


def test_broken_entries_are_rejected_alone(parse_text: Parse) -> None:
    parsed = parse_text(
        "kev",
        catalogue(
            entry(cveID="CVE-2024-1"),
            entry(cveID="CVE-2024-0002", dateAdded="01/02/2025"),
            entry(cveID="CVE-2024-0003", knownRansomwareCampaignUse="Maybe"),
            entry(cveID="CVE-2024-0004", product=""),
            "not an object",
            entry(cveID="CVE-2024-0005", dueDate=None, knownRansomwareCampaignUse="Unknown"),
            count=7,
        ),
        name="kev.json",
    )
    assert [(r.where, r.reason) for r in parsed.rejected] == [
        (
            "kev.json vulnerabilities[0] CVE-2024-1",
            "cveID 'CVE-2024-1' is not a CVE id (CVE-YYYY-NNNN)",
        ),
        (
            "kev.json vulnerabilities[1] CVE-2024-0002",
            "dateAdded '01/02/2025' is not a YYYY-MM-DD date",
        ),
        (
            "kev.json vulnerabilities[2] CVE-2024-0003",
            "knownRansomwareCampaignUse 'Maybe' is neither 'Known' nor 'Unknown'",
        ),
        ("kev.json vulnerabilities[3] CVE-2024-0004", "'product' is missing or empty"),
        ("kev.json vulnerabilities[4]", "an entry must be a JSON object"),
    ]
    (last,) = parsed.records
    assert isinstance(last, KevEntry)
    assert (last.cve_id, last.due_date, last.known_ransomware) == ("CVE-2024-0005", None, False)
    assert parsed.notes[-1] == "the catalogue says it has 7 entries but lists 6"


def test_other_json_is_not_a_catalogue(parse_text: Parse) -> None:
    parsed = parse_text("kev", {"vulnerabilities": [{"cve": {"id": "CVE-2024-0001"}}]}, name="n")
    assert [(r.where, r.reason) for r in parsed.rejected] == [
        ("n", "not a KEV catalogue: no entry has a 'cveID'")
    ]
    parsed = parse_text("kev", json.dumps([1, 2]), name="n")
    assert parsed.rejected[0].reason == "not a KEV catalogue: expected a JSON object"


def test_a_complete_catalogue_says_every_cve_it_lists(parse_text: Parse) -> None:
    """Entries rejected alone are listed too: the importer must not un-list them."""
    parsed = parse_text(
        "kev",
        catalogue(entry(), entry(cveID=" CVE-2024-0002 ", dateAdded="01/02/2025")),
        name="kev.json",
    )
    assert isinstance(parsed, KevCatalogue)
    assert parsed.listed == frozenset({"CVE-2024-0001", "CVE-2024-0002"})
    assert len(parsed.records) == len(parsed.rejected) == 1


@pytest.mark.parametrize(
    ("content", "note"),
    [
        pytest.param(
            catalogue(entry(), count=2),
            "its count (2) disagrees with its 1 entries",
            id="count-disagrees",
        ),
        pytest.param(
            {k: v for k, v in catalogue(entry()).items() if k != "count"},
            "it gives no 'count' to check its entries against",
            id="no-count",
        ),
        pytest.param(
            catalogue(entry(), {"vendorProject": "Acme"}),
            "1 of its entries have no 'cveID' to tell which CVE they list",
            id="entry-without-cve",
        ),
        pytest.param(catalogue(), "it lists no entry", id="empty"),
    ],
)
def test_a_catalogue_not_known_to_be_whole_lists_nothing(
    parse_text: Parse, content: dict[str, Any], note: str
) -> None:
    parsed = parse_text("kev", content, name="kev.json")
    assert isinstance(parsed, KevCatalogue)
    assert parsed.listed is None
    assert f"entries missing from this catalogue stay listed: {note}" in parsed.notes


def test_a_truncated_catalogue_lists_nothing(parse_text: Parse) -> None:
    text = json.dumps(catalogue(entry(), entry(cveID="CVE-2024-0002")))
    parsed = parse_text("kev", text[: len(text) * 2 // 3], name="kev.json")
    assert isinstance(parsed, KevCatalogue)
    assert (parsed.records, parsed.listed) == ((), None)
    assert parsed.rejected[0].reason.startswith("not valid JSON (truncated or damaged?)")
