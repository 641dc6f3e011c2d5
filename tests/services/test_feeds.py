"""Feed imports into a real database: the shared real feed files (SQLite, they
are big), then small written files on SQLite and PostgreSQL: idempotence,
provenance, updates by `modified`, withdrawals, and bad input refused whole."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.domain.advisories import RejectedRecord
from patchwarden.errors import InvalidInput
from patchwarden.feeds import UnknownFeed
from patchwarden.services import feeds, findings
from patchwarden.storage.db import make_session_factory, transaction
from patchwarden.storage.tables import (
    Advisory,
    AdvisoryVulnerability,
    AffectedPackageRow,
    EpssScoreRow,
    FeedImport,
    KevEntryRow,
    KevLatestCatalogue,
    KevLatestListed,
    Vulnerability,
)
from tests.feeds.feed_server import FeedServer, ToFeedServer, serve

# Three real DSAs, verbatim from the Debian tracker's DSA list.
DSA_TEXT = """\
[07 Feb 2023] DSA-5343-1 openssl - security update
\t{CVE-2022-2097 CVE-2022-4304 CVE-2022-4450 CVE-2023-0215 CVE-2023-0286}
\t[bullseye] - openssl 1.1.1n-0+deb11u4
[26 Jun 2022] DSA-5169-1 openssl - security update
\t{CVE-2022-2068}
\t[buster] - openssl 1.1.1n-0+deb10u3
\t[bullseye] - openssl 1.1.1n-0+deb11u3
[25 Jan 2022] DSA-5059-1 policykit-1 - security update
\t{CVE-2021-4034}
\t[buster] - policykit-1 0.105-25+deb10u1
\t[bullseye] - policykit-1 0.105-31+deb11u1
"""

# The real CISA KEV entry of CVE-2021-4034 (pwnkit), in a one-entry catalogue.
KEV_PWNKIT: dict[str, Any] = {
    "cveID": "CVE-2021-4034",
    "vendorProject": "Red Hat",
    "product": "Polkit",
    "vulnerabilityName": "Red Hat Polkit Out-of-Bounds Read and Write Vulnerability",
    "dateAdded": "2022-06-27",
    "shortDescription": "The Red Hat polkit pkexec utility contains an out-of-bounds read "
    "and write vulnerability that allows for privilege escalation with administrative rights.",
    "requiredAction": "Apply updates per vendor instructions.",
    "dueDate": "2022-07-18",
    "knownRansomwareCampaignUse": "Unknown",
    "notes": "https://nvd.nist.gov/vuln/detail/CVE-2021-4034",
    "cwes": ["CWE-787"],
}


# The real CISA KEV entry of CVE-2021-44228 (log4shell).
KEV_LOG4SHELL: dict[str, Any] = {
    "cveID": "CVE-2021-44228",
    "vendorProject": "Apache",
    "product": "Log4j2",
    "vulnerabilityName": "Apache Log4j2 Remote Code Execution Vulnerability",
    "dateAdded": "2021-12-10",
    "shortDescription": "Apache Log4j2 contains a vulnerability where JNDI features do not "
    "protect against attacker-controlled JNDI-related endpoints, allowing for remote code "
    "execution.",
    "requiredAction": "Apply updates per vendor instructions.",
    "dueDate": "2021-12-24",
    "knownRansomwareCampaignUse": "Known",
    "notes": "https://nvd.nist.gov/vuln/detail/CVE-2021-44228",
    "cwes": ["CWE-20", "CWE-400", "CWE-502"],
}


def kev_catalogue(
    *entries: dict[str, Any], released: str = "2025-08-25T17:04:19.9796Z"
) -> dict[str, Any]:
    return {
        "title": "CISA Catalog of Known Exploited Vulnerabilities",
        "catalogVersion": released[:10].replace("-", "."),
        "dateReleased": released,
        "count": len(entries),
        "vulnerabilities": list(entries),
    }


def osv_record(
    record_id: str = "PYSEC-2099-1",
    *,
    modified: str = "2024-01-01T00:00:00Z",
    details: str = "first text",
    name: str = "demo-lib",
    ecosystem: str = "PyPI",
    events: list[dict[str, str]] | None = None,
    aliases: list[str] | None = None,
    withdrawn: str | None = None,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": record_id,
        "modified": modified,
        "published": "2023-12-01T00:00:00Z",
        "aliases": ["CVE-2099-0001"] if aliases is None else aliases,
        "summary": "demo flaw",
        "details": details,
        "affected": [
            {
                "package": {"ecosystem": ecosystem, "name": name},
                "ranges": [
                    {
                        "type": "ECOSYSTEM",
                        "events": events or [{"introduced": "0"}, {"fixed": "1.2.0"}],
                    }
                ],
            }
        ],
    }
    if withdrawn is not None:
        record["withdrawn"] = withdrawn
    return record


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value, indent=2))
    return path


def write_jsonl(path: Path, *records: Any) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def row_counts(factory: sessionmaker[Session]) -> dict[str, int]:
    tables = {
        "advisories": Advisory,
        "affected_packages": AffectedPackageRow,
        "advisory_vulnerabilities": AdvisoryVulnerability,
        "vulnerabilities": Vulnerability,
        "kev_entries": KevEntryRow,
        "epss_scores": EpssScoreRow,
    }
    with transaction(factory) as session:
        return {
            name: session.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in tables.items()
        }


def outcome(summary: feeds.ImportSummary) -> tuple[int, int, int, int, int]:
    return (
        summary.created,
        summary.updated,
        summary.unchanged,
        summary.withdrawn,
        summary.rejected,
    )


# --- the shared real feed files (SQLite: importing all of DSA on PostgreSQL is slow) ----


# Parts of stored records refused, by shared file (the rest have none).
PARTS_LEFT_OUT = {"osv-pypi/pypa_advisory_database.jsonl": 28}


@pytest.mark.parametrize(
    ("relative", "created", "withdrawn", "rejected", "files", "table", "rows", "refused"),
    [
        pytest.param(
            "debian/DSA_list.txt",
            5406,
            0,
            0,
            1,
            "advisories",
            5406,
            (),
            id="dsa",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            "debian/DLA_list.txt",
            3534,
            0,
            0,
            1,
            "advisories",
            3534,
            (),
            id="dla",
            marks=pytest.mark.slow,
        ),
        # 2,661 records: 2,649 created, 10 withdrawn (stored with their date), 2
        # refused whole (a fixed version that is not PEP 440); 28 parts left out of
        # stored records (listed versions that are not PEP 440; PARTS_LEFT_OUT).
        pytest.param(
            "osv-pypi/pypa_advisory_database.jsonl",
            2649,
            10,
            2,
            1,
            "advisories",
            2659,
            ("PYSEC-2019-125", "PYSEC-2021-371"),
            id="pypi",
            marks=pytest.mark.slow,
        ),
        pytest.param("ubuntu-osv/usn_sample.jsonl", 5, 0, 0, 1, "advisories", 5, (), id="usn"),
        pytest.param(
            "alpine-secdb",
            4264,
            0,
            0,
            18,
            "advisories",
            4264,
            (),
            id="alpine",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            "kev/known_exploited_vulnerabilities.json",
            1404,
            0,
            0,
            1,
            "kev_entries",
            1404,
            (),
            id="kev",
        ),
    ],
)
def test_real_feed_imported_twice_changes_nothing_the_second_time(
    sqlite_engine: Engine,
    shared_data: Path,
    relative: str,
    created: int,
    withdrawn: int,
    rejected: int,
    files: int,
    table: str,
    rows: int,
    refused: tuple[str, ...],
) -> None:
    factory = make_session_factory(sqlite_engine)
    path = shared_data / relative
    first = feeds.import_feed(factory, path, None, "test")
    assert outcome(first) == (created, 0, 0, withdrawn, rejected)
    parts = PARTS_LEFT_OUT.get(relative, 0)
    assert first.parts_rejected == parts
    assert sum(r.part for r in first.rejections) == parts
    assert len(first.rejections) == rejected + parts
    assert first.files == files
    assert all(r.reason for r in first.rejections)
    whole = [r for r in first.rejections if "no usable affected entry" in r.reason]
    assert sorted(r.where.rsplit(" ", 1)[-1] for r in whole) == list(refused)
    counts = row_counts(factory)
    assert counts[table] == rows
    with transaction(factory) as session:
        generation = (findings.feed_generation(session), findings.scores_generation(session))
        stamp = session.execute(select(func.max(Advisory.imported_at))).scalar_one()
        kev_stamp = session.execute(select(func.max(KevEntryRow.imported_at))).scalar_one()
        sources = set(session.execute(select(Advisory.source_file).distinct()).scalars())
        sources |= set(session.execute(select(KevEntryRow.source_file).distinct()).scalars())
        assert not any(session.get(Advisory, advisory_id) for advisory_id in refused)
        stored_withdrawn = {
            a.id
            for a in session.execute(
                select(Advisory).where(Advisory.withdrawn_at.is_not(None))
            ).scalars()
        }
        assert len(stored_withdrawn) == withdrawn
        matched = {a.id for a in findings.load_advisories(session)}
        assert not matched & stored_withdrawn
    # Advisories move what matching reads; KEV entries only what findings are scored from.
    assert generation == ((0, 1) if table == "kev_entries" else (1, 0))
    # Provenance: every row names the file it came from.
    if path.is_dir():  # v3.3-community.json lists no package at all
        assert sources == {str(p) for p in path.iterdir()} - {str(path / "v3.3-community.json")}
    else:
        assert sources == {str(path)}

    second = feeds.import_feed(factory, path, None, "test")
    # Parse-time rejections are reported again; nothing is stored or touched.
    assert outcome(second) == (0, 0, rows, 0, rejected)
    assert second.touched == set()
    assert row_counts(factory) == counts
    with transaction(factory) as session:
        assert (findings.feed_generation(session), findings.scores_generation(session)) == (
            generation
        )
        assert session.execute(select(func.max(Advisory.imported_at))).scalar_one() == stamp
        assert session.execute(select(func.max(KevEntryRow.imported_at))).scalar_one() == kev_stamp
        history = feeds.list_imports(session)
    assert [(h.created, h.unchanged, h.rejected, h.parts_rejected) for h in history] == [
        (0, rows, rejected, parts),
        (created, 0, rejected, parts),
    ]
    assert sum(bool(r.get("part")) for r in history[0].rejections) == parts
    assert all(h.finished_at is not None for h in history)


# --- small written files, on both databases ------------------------------------------


def test_small_files_twice_and_history(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    dsa = tmp_path / "DSA_list.txt"
    dsa.write_text(DSA_TEXT)
    osv = write_jsonl(tmp_path / "demo.jsonl", osv_record(), osv_record("PYSEC-2099-2"))
    kev = write_json(tmp_path / "kev.json", kev_catalogue(KEV_PWNKIT))

    assert outcome(feeds.import_feed(session_factory, dsa, None, "alice")) == (3, 0, 0, 0, 0)
    assert outcome(feeds.import_feed(session_factory, osv, None, "alice")) == (2, 0, 0, 0, 0)
    assert outcome(feeds.import_feed(session_factory, kev, None, "alice")) == (1, 0, 0, 0, 0)
    counts = row_counts(session_factory)
    assert counts == {
        "advisories": 5,
        "affected_packages": 7,  # DSA-5169-1 and DSA-5059-1 name buster and bullseye
        "advisory_vulnerabilities": 9,
        "vulnerabilities": 8,  # CVE-2099-0001 is named by both demo records
        "kev_entries": 1,
        "epss_scores": 0,
    }
    with transaction(session_factory) as session:
        # DSA and OSV records change advisories; the KEV entry only scores.
        assert findings.feed_generation(session) == 2
        assert findings.scores_generation(session) == 1

    for path in (dsa, osv, kev):
        again = feeds.import_feed(session_factory, path, None, "bob")
        assert (again.created, again.updated, again.withdrawn, again.rejected) == (0, 0, 0, 0)
        assert again.unchanged > 0 and not again.changed
    assert row_counts(session_factory) == counts
    with transaction(session_factory) as session:
        assert findings.feed_generation(session) == 2
        assert findings.scores_generation(session) == 1
        history = feeds.list_imports(session)
        assert [(h.actor, Path(h.path).name, h.created, h.unchanged) for h in history] == [
            ("bob", "kev.json", 0, 1),
            ("bob", "demo.jsonl", 0, 2),
            ("bob", "DSA_list.txt", 0, 3),
            ("alice", "kev.json", 1, 0),
            ("alice", "demo.jsonl", 2, 0),
            ("alice", "DSA_list.txt", 3, 0),
        ]
        assert [h.id for h in feeds.list_imports(session, limit=2)] == [h.id for h in history[:2]]


def test_provenance_is_stored(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    dsa = tmp_path / "DSA_list.txt"
    dsa.write_text(DSA_TEXT)
    kev = write_json(tmp_path / "kev.json", kev_catalogue(KEV_PWNKIT))
    before = datetime.now(UTC)
    feeds.import_feed(session_factory, dsa, None, "test")
    feeds.import_feed(session_factory, kev, None, "test")
    after = datetime.now(UTC)
    with transaction(session_factory) as session:
        advisory = session.get(Advisory, "DSA-5343-1")
        assert advisory is not None
        assert advisory.source == "debian-tracker"
        assert advisory.source_file == str(dsa)
        assert before <= advisory.imported_at <= after
        assert advisory.title == "openssl - security update"
        assert advisory.published == datetime(2023, 2, 7, tzinfo=UTC)
        assert advisory.aliases == [
            "CVE-2022-2097",
            "CVE-2022-4304",
            "CVE-2022-4450",
            "CVE-2023-0215",
            "CVE-2023-0286",
        ]
        affected = session.execute(
            select(AffectedPackageRow).where(AffectedPackageRow.advisory_id == "DSA-5169-1")
        ).scalars()
        assert sorted(
            (a.platform, a.name, a.ranges[0]["events"][1]["fixed"]) for a in affected
        ) == [
            ("debian:10", "openssl", "1.1.1n-0+deb10u3"),
            ("debian:11", "openssl", "1.1.1n-0+deb11u3"),
        ]
        vulnerability = session.get(Vulnerability, "CVE-2022-2068")
        assert vulnerability is not None
        assert vulnerability.provenance["debian-tracker"]["file"] == str(dsa)
        assert vulnerability.provenance["debian-tracker"]["advisory"] == "DSA-5169-1"
        entry = session.get(KevEntryRow, "CVE-2021-4034")
        assert entry is not None
        assert entry.source_file == str(kev)
        assert before <= entry.imported_at <= after
        assert (entry.vendor, entry.product) == ("Red Hat", "Polkit")
        assert str(entry.due_date) == "2022-07-18"
        assert entry.known_ransomware is False


def test_modified_record_updates_and_an_older_copy_is_ignored(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "PYSEC-2099-1.json"
    write_json(path, osv_record(modified="2024-01-01T00:00:00Z", details="first text"))
    assert outcome(feeds.import_feed(session_factory, path, None, "test")) == (1, 0, 0, 0, 0)

    write_json(
        path,
        osv_record(
            modified="2024-03-01T00:00:00Z",
            details="second text",
            events=[{"introduced": "0"}, {"fixed": "1.3.0"}],
        ),
    )
    updated = feeds.import_feed(session_factory, path, None, "test")
    assert outcome(updated) == (0, 1, 0, 0, 0)
    assert updated.touched == {("pypi", "demo-lib")}

    # A copy older than the one stored (a stale mirror) changes nothing.
    write_json(path, osv_record(modified="2024-02-01T00:00:00Z", details="stale text"))
    stale = feeds.import_feed(session_factory, path, None, "test")
    assert outcome(stale) == (0, 0, 1, 0, 0)
    assert stale.touched == set()

    with transaction(session_factory) as session:
        row = session.get(Advisory, "PYSEC-2099-1")
        assert row is not None
        assert row.details == "second text"
        assert row.modified == datetime(2024, 3, 1, tzinfo=UTC)
        (affected,) = session.execute(select(AffectedPackageRow)).scalars()
        assert affected.ranges == [
            {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.3.0"}]}
        ]
        assert findings.feed_generation(session) == 2  # created, updated; not the stale copy


def test_withdrawn_record_leaves_matching(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = write_jsonl(
        tmp_path / "demo.jsonl", osv_record("PYSEC-2099-1"), osv_record("PYSEC-2099-2")
    )
    feeds.import_feed(session_factory, path, None, "test")
    write_jsonl(
        path,
        osv_record(
            "PYSEC-2099-1", modified="2024-05-01T00:00:00Z", withdrawn="2024-05-01T00:00:00Z"
        ),
        osv_record("PYSEC-2099-2"),
    )
    summary = feeds.import_feed(session_factory, path, None, "test")
    assert outcome(summary) == (0, 0, 1, 1, 0)
    assert summary.touched == {("pypi", "demo-lib")}
    with transaction(session_factory) as session:
        row = session.get(Advisory, "PYSEC-2099-1")
        assert row is not None
        assert row.withdrawn_at == datetime(2024, 5, 1, tzinfo=UTC)
        assert [a.id for a in findings.load_advisories(session)] == ["PYSEC-2099-2"]
    # The same withdrawal again is nothing new.
    assert outcome(feeds.import_feed(session_factory, path, None, "test")) == (0, 0, 2, 0, 0)


def test_a_record_first_seen_withdrawn_is_stored_but_never_matched(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = write_jsonl(
        tmp_path / "demo.jsonl",
        osv_record("PYSEC-2099-3", withdrawn="2024-02-01T00:00:00Z"),
    )
    assert outcome(feeds.import_feed(session_factory, path, None, "test")) == (0, 0, 0, 1, 0)
    with transaction(session_factory) as session:
        assert session.get(Advisory, "PYSEC-2099-3") is not None
        assert findings.load_advisories(session) == []


TRUNCATED = json.dumps(osv_record("PYSEC-2099-9"), indent=2)[:200]


@pytest.mark.parametrize(
    ("name", "content", "where", "reason"),
    [
        pytest.param(
            "truncated.json",
            TRUNCATED,
            "truncated.json",
            "not valid JSON (truncated or damaged?)",
            id="truncated-json",
        ),
        pytest.param(
            "other.json",
            json.dumps({"packages": [{"name": "x"}], "version": 3}),
            "other.json",
            "JSON, but not in a known feed format",
            id="wrong-schema",
        ),
        pytest.param(
            "kev.json",
            json.dumps({"catalogVersion": "2025.08.25", "count": 0, "entries": []}),
            "kev.json",
            "not a KEV catalogue: no 'vulnerabilities' list",
            id="kev-without-list",
        ),
        pytest.param(
            "maven.json",
            json.dumps(osv_record("GHSA-2099-0001", ecosystem="Maven", name="org.demo:lib")),
            "maven.json GHSA-2099-0001",
            "no usable affected entry (ecosystems: Maven): affected[0]: "
            "unsupported ecosystem 'Maven'",
            id="unknown-ecosystem",
        ),
        pytest.param(
            "range.json",
            json.dumps(osv_record("PYSEC-2099-7", events=[{"fixed": "1.0"}])),
            "range.json PYSEC-2099-7",
            "a range must start with 'introduced', not 'fixed'",
            id="range-without-introduced",
        ),
        pytest.param(
            "version.json",
            json.dumps(
                osv_record(
                    "PYSEC-2099-8", events=[{"introduced": "0"}, {"fixed": "not.a.v3rsion!"}]
                )
            ),
            "version.json PYSEC-2099-8",
            "fixed 'not.a.v3rsion!' is not a valid pep440 version",
            id="range-with-bad-version",
        ),
    ],
)
def test_bad_input_is_rejected_whole_and_nothing_is_half_stored(
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    name: str,
    content: str,
    where: str,
    reason: str,
) -> None:
    good = tmp_path / "DSA_list.txt"
    good.write_text(DSA_TEXT)
    feeds.import_feed(session_factory, good, None, "test")
    before = row_counts(session_factory)

    path = tmp_path / name
    path.write_text(content)
    summary = feeds.import_feed(session_factory, path, None, "test")
    assert (summary.created, summary.updated, summary.unchanged, summary.withdrawn) == (0, 0, 0, 0)
    assert summary.rejected == 1
    (rejection,) = summary.rejections
    assert rejection.where == f"{tmp_path}/{where}"
    assert reason in rejection.reason
    assert row_counts(session_factory) == before
    with transaction(session_factory) as session:
        (run, *_) = feeds.list_imports(session)
        assert run.rejected == 1
        assert run.rejections == [{"where": rejection.where, "reason": rejection.reason}]
        assert findings.feed_generation(session) == 1


def test_bad_records_between_good_ones(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """One JSON-lines file: good records are stored, each bad one is refused whole."""
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        json.dumps(osv_record("PYSEC-2099-1"))
        + "\n"
        + json.dumps(osv_record("PYSEC-2099-2"))[:-40]  # cut off mid-record
        + "\n"
        + json.dumps(osv_record("GHSA-2099-0003", ecosystem="Hex", name="plug"))
        + "\n"
        + json.dumps(osv_record("PYSEC-2099-4", events=[{"introduced": "0"}, {"fixed": "1..2"}]))
        + "\n"
        + json.dumps(osv_record("PYSEC-2099-5", aliases=["CVE-2099-0005"]))
        + "\n"
    )
    summary = feeds.import_feed(session_factory, path, None, "test")
    assert outcome(summary) == (2, 0, 0, 0, 3)
    assert [r.where for r in summary.rejections] == [
        f"{path}:2",
        f"{path}:3 GHSA-2099-0003",
        f"{path}:4 PYSEC-2099-4",
    ]
    assert summary.rejections[0].reason.startswith("not valid JSON")
    assert row_counts(session_factory) | {"kev_entries": 0, "epss_scores": 0} == {
        "advisories": 2,
        "affected_packages": 2,
        "advisory_vulnerabilities": 2,
        "vulnerabilities": 2,
        "kev_entries": 0,
        "epss_scores": 0,
    }
    with transaction(session_factory) as session:
        stored = set(session.execute(select(Advisory.id)).scalars())
        linked = set(session.execute(select(AdvisoryVulnerability.advisory_id)).scalars())
        listed = set(session.execute(select(AffectedPackageRow.advisory_id)).scalars())
    assert stored == linked == listed == {"PYSEC-2099-1", "PYSEC-2099-5"}


def test_a_record_the_database_refuses_is_not_half_stored(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """An id without a CVE alias becomes the vulnerability id (64 characters in the
    schema). Whatever the database does with a longer one, the record is stored
    whole or not at all: the advisory row is flushed first, so only the per-record
    savepoint keeps it from staying behind alone."""
    long_id = "GHSA-" + "x" * 90  # within the parser's 128-character limit
    path = write_jsonl(
        tmp_path / "long.jsonl",
        osv_record(long_id, aliases=[]),
        osv_record("PYSEC-2099-1"),
    )
    summary = feeds.import_feed(session_factory, path, None, "test")
    assert summary.created + summary.rejected == 2
    with transaction(session_factory) as session:
        stored = set(session.execute(select(Advisory.id)).scalars())
        linked = set(session.execute(select(AdvisoryVulnerability.advisory_id)).scalars())
        listed = set(session.execute(select(AffectedPackageRow.advisory_id)).scalars())
    assert stored == linked == listed
    assert "PYSEC-2099-1" in stored
    assert (long_id in stored) == (summary.rejected == 0)


def test_an_overlong_advisory_id_is_stored_on_every_database(
    session_factory: sessionmaker[Session], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The OSV parser accepts ids up to 128 characters (the advisories.id column),
    so such a record must be stored the same on SQLite and PostgreSQL."""
    long_id = "GHSA-" + "x" * 90
    path = write_jsonl(tmp_path / "long.jsonl", osv_record(long_id, aliases=[]))
    summary = feeds.import_feed(session_factory, path, None, "test")
    assert outcome(summary) == (1, 0, 0, 0, 0), summary.rejections


def test_epss_broken_lines_then_changed_scores(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    first = tmp_path / "epss_scores-2025-08-01.csv"
    first.write_text(
        "#model_version:v2025.03.14,score_date:2025-08-01T00:00:00+0000\n"
        "cve,epss,percentile\n"
        "CVE-2021-4034,0.85911,0.99351\n"
        "CVE-2022-2068,0.01536,0.80412\n"
        "CVE-2023-0286,0.00312,0.70115\n"
        "CVE-2023-0215,0.0021\n"  # line 6: a column missing
        "CVE-2023-0216,abc,0.5\n"  # line 7: not a number
        "CVE-2023-0217,1.5,0.5\n"  # line 8: not a probability
        "GHSA-xxxx,0.1,0.1\n"  # line 9: not a CVE id
        "CVE-2021-4034,0.5,0.5\n"  # line 10: listed again
    )
    summary = feeds.import_feed(session_factory, first, None, "test")
    assert outcome(summary) == (3, 0, 0, 0, 5)
    assert [(r.where.removeprefix(f"{first}:"), r.reason) for r in summary.rejections] == [
        ("6", "expected 3 comma-separated values, found 2"),
        ("7 CVE-2023-0216", "epss 'abc' is not a number"),
        ("8 CVE-2023-0217", "epss '1.5' is not between 0 and 1"),
        ("9", "'GHSA-xxxx' is not a CVE id (CVE-YYYY-NNNN)"),
        ("10 CVE-2021-4034", "listed again; the first row is kept"),
    ]
    assert summary.notes == ["EPSS model v2025.03.14, scores of 2025-08-01"]
    assert row_counts(session_factory)["epss_scores"] == 3

    second = tmp_path / "epss_scores-2025-08-02.csv"
    second.write_text(
        "#model_version:v2025.03.14,score_date:2025-08-02T00:00:00+0000\n"
        "cve,epss,percentile\n"
        "CVE-2021-4034,0.86001,0.99360\n"
        "CVE-2023-0215,0.0021,0.6\n"
    )
    changed = feeds.import_feed(session_factory, second, None, "test")
    # Another score date makes every row of it new information.
    assert outcome(changed) == (1, 1, 0, 0, 0)
    again = feeds.import_feed(session_factory, second, None, "test")
    assert outcome(again) == (0, 0, 2, 0, 0)
    with transaction(session_factory) as session:
        pwnkit = session.get(EpssScoreRow, "CVE-2021-4034")
        kept = session.get(EpssScoreRow, "CVE-2022-2068")
        assert pwnkit is not None and kept is not None
        assert (pwnkit.epss, pwnkit.percentile, str(pwnkit.score_date)) == (
            0.86001,
            0.9936,
            "2025-08-02",
        )
        assert pwnkit.source_file == str(second)
        assert (kept.epss, str(kept.score_date), kept.source_file) == (
            0.01536,
            "2025-08-01",
            str(first),
        )
        info = findings.vulnerability_info(session, ["CVE-2021-4034"])["CVE-2021-4034"]
        assert (info.epss, info.epss_percentile) == (0.86001, 0.9936)


def test_epss_same_day_only_changed_values_count_as_updated(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    header = "#model_version:v2025.03.14,score_date:2025-08-01T00:00:00+0000\ncve,epss,percentile\n"
    path = tmp_path / "epss.csv"
    path.write_text(header + "CVE-2021-4034,0.85911,0.99351\nCVE-2022-2068,0.01536,0.80412\n")
    feeds.import_feed(session_factory, path, None, "test")
    path.write_text(header + "CVE-2021-4034,0.9,0.995\nCVE-2022-2068,0.01536,0.80412\n")
    assert outcome(feeds.import_feed(session_factory, path, None, "test")) == (0, 1, 1, 0, 0)


def test_missing_path_is_invalid_input(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        feeds.import_feed(session_factory, tmp_path / "nope.json", None, "test")
    with transaction(session_factory) as session:
        assert feeds.list_imports(session) == []


def test_unknown_format_leaves_no_unfinished_import(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "DSA_list.txt"
    path.write_text(DSA_TEXT)
    with pytest.raises(UnknownFeed, match="valid formats: alpine-secdb"):
        feeds.import_feed(session_factory, path, "debian", "test")
    with transaction(session_factory) as session:
        assert session.execute(select(func.count()).select_from(FeedImport)).scalar_one() == 0


def test_forced_wrong_format_hints_at_the_right_one(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = write_json(tmp_path / "kev.json", kev_catalogue(KEV_PWNKIT))
    summary = feeds.import_feed(session_factory, path, "osv", "test")
    assert outcome(summary) == (0, 0, 0, 0, 1)
    assert "use --format kev" in summary.rejections[0].reason
    assert row_counts(session_factory)["kev_entries"] == 0


def test_progress_is_reported(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    path = tmp_path / "DSA_list.txt"
    path.write_text(DSA_TEXT)
    seen: list[int] = []
    feeds.import_feed(session_factory, path, None, "test", progress=seen.append)
    assert sum(seen) == 3


@pytest.mark.parametrize("osv_first", [False, True])
def test_a_dsa_in_both_the_tracker_list_and_osv_keeps_the_dated_record(
    session_factory: sessionmaker[Session], tmp_path: Path, osv_first: bool
) -> None:
    """OSV's Debian records reuse the tracker's DSA ids. The list dates nothing,
    so the dated OSV record stays whichever comes first, and importing both again
    changes nothing (rather than each overwriting the other in turn)."""
    dsa = tmp_path / "DSA_list.txt"
    dsa.write_text(DSA_TEXT)
    record = osv_record(
        "DSA-5343-1",
        ecosystem="Debian:11",
        name="openssl",
        modified="2023-02-08T00:00:00Z",
        aliases=["CVE-2022-2097", "CVE-2022-4304", "CVE-2022-4450", "CVE-2023-0215"],
        events=[{"introduced": "0"}, {"fixed": "1.1.1n-0+deb11u4"}],
    )
    osv = write_json(tmp_path / "DSA-5343-1.json", record)
    first, second = (osv, dsa) if osv_first else (dsa, osv)
    feeds.import_feed(session_factory, first, None, "test")
    replaced = feeds.import_feed(session_factory, second, None, "test")
    # The OSV record replaces the listed one, or the list leaves it alone.
    assert outcome(replaced) == ((2, 0, 1, 0, 0) if osv_first else (0, 1, 0, 0, 0))
    for path in (dsa, osv):
        again = feeds.import_feed(session_factory, path, None, "test")
        assert not again.changed and again.touched == set()
    with transaction(session_factory) as session:
        advisory = session.get(Advisory, "DSA-5343-1")
        assert advisory is not None
        assert (advisory.source, advisory.source_file) == ("osv", str(osv))
        assert "CVE-2023-0286" not in advisory.aliases


# --- EPSS: one day's scores, all or nothing, never rolled back ----------------------------

EPSS_MODEL = "#model_version:v2025.03.14,score_date:{day}T12:55:00Z\n"


def epss_text(day: str | None, *rows: str) -> str:
    head = EPSS_MODEL.format(day=day) if day else ""
    return head + "cve,epss,percentile\n" + "".join(row + "\n" for row in rows)


def epss_stored(factory: sessionmaker[Session]) -> dict[str, tuple[float, str | None]]:
    with transaction(factory) as session:
        return {
            row.cve_id: (row.epss, row.score_date.isoformat() if row.score_date else None)
            for row in session.execute(select(EpssScoreRow)).scalars()
        }


def test_epss_an_older_or_undated_file_never_rolls_scores_back(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "epss.csv"
    path.write_text(epss_text("2025-08-26", "CVE-2021-4034,0.9,0.99"))
    feeds.import_feed(session_factory, path, None, "test")

    # The day before: its score of a CVE already scored is older news; a new CVE is stored.
    path.write_text(epss_text("2025-08-25", "CVE-2021-4034,0.8,0.98", "CVE-2022-2068,0.1,0.5"))
    older = feeds.import_feed(session_factory, path, None, "test")
    assert outcome(older) == (1, 0, 1, 0, 0)
    assert older.rescored == {"CVE-2022-2068"}
    assert (
        "1 EPSS scores kept as stored: they are of a later day than this file's "
        "(2025-08-25), which does not replace them"
    ) in older.notes
    assert epss_stored(session_factory) == {
        "CVE-2021-4034": (0.9, "2025-08-26"),
        "CVE-2022-2068": (0.1, "2025-08-25"),
    }

    # An undated file replaces no dated score.
    path.write_text(epss_text(None, "CVE-2021-4034,0.1,0.1", "CVE-2022-2068,0.2,0.6"))
    undated = feeds.import_feed(session_factory, path, None, "test")
    assert outcome(undated) == (0, 0, 2, 0, 0)
    assert not undated.rescored
    assert epss_stored(session_factory)["CVE-2021-4034"] == (0.9, "2025-08-26")

    # The same day again (a corrected file) and a later day do replace.
    path.write_text(epss_text("2025-08-26", "CVE-2021-4034,0.91,0.99"))
    assert outcome(feeds.import_feed(session_factory, path, None, "test")) == (0, 1, 0, 0, 0)
    path.write_text(epss_text("2025-08-27", "CVE-2022-2068,0.3,0.7"))
    assert outcome(feeds.import_feed(session_factory, path, None, "test")) == (0, 1, 0, 0, 0)
    assert epss_stored(session_factory) == {
        "CVE-2021-4034": (0.91, "2025-08-26"),
        "CVE-2022-2068": (0.3, "2025-08-27"),
    }


def test_epss_undated_scores_are_replaced_by_dated_ones(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "epss.csv"
    path.write_text(epss_text(None, "CVE-2021-4034,0.1,0.1"))
    feeds.import_feed(session_factory, path, None, "test")
    path.write_text(epss_text(None, "CVE-2021-4034,0.2,0.2"))
    assert outcome(feeds.import_feed(session_factory, path, None, "test")) == (0, 1, 0, 0, 0)
    path.write_text(epss_text("2025-08-25", "CVE-2021-4034,0.3,0.3"))
    assert outcome(feeds.import_feed(session_factory, path, None, "test")) == (0, 1, 0, 0, 0)
    assert epss_stored(session_factory) == {"CVE-2021-4034": (0.3, "2025-08-25")}


def test_epss_gzip_cut_mid_stream_stores_nothing(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    rows = [f"CVE-2024-{i:05},0.{i:05},0.5" for i in range(1, 30_000)]
    day_one = tmp_path / "epss_scores-2025-08-25.csv.gz"
    day_one.write_bytes(gzip.compress(epss_text("2025-08-25", *rows).encode()))
    assert feeds.import_feed(session_factory, day_one, None, "test").created == len(rows)
    stored = epss_stored(session_factory)

    later = [f"CVE-2024-{i:05},0.9,0.9" for i in range(1, 30_000)]
    data = gzip.compress(epss_text("2025-08-26", *later).encode())
    cut = tmp_path / "epss_scores-2025-08-26.csv.gz"
    cut.write_bytes(data[: len(data) // 2])
    summary = feeds.import_feed(session_factory, cut, None, "test")
    assert outcome(summary) == (0, 0, 0, 0, 1)
    assert summary.rejected_whole
    (rejection,) = summary.rejections
    assert rejection.where == str(cut)
    assert "truncated download?" in rejection.reason
    # Not one score of the later day: the day before is still whole.
    assert epss_stored(session_factory) == stored
    with transaction(session_factory) as session:
        assert findings.scores_generation(session) == 1


# --- KEV: a complete catalogue un-lists what it no longer holds ---------------------------


def kev_listed(factory: sessionmaker[Session]) -> set[str]:
    with transaction(factory) as session:
        return set(session.execute(select(KevEntryRow.cve_id)).scalars())


def test_a_cve_left_out_of_a_complete_catalogue_is_unlisted_and_rescored(
    session_factory: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Imported here: that module imports this one.
    from tests.services.test_findings import (
        DEBIAN_PACKAGES,
        KEV_RISK,
        PLAIN_RISK,
        all_findings,
        needs_rescore,
        new_asset,
    )

    # The index cache is process-wide: this database gets its own.
    monkeypatch.setattr(findings, "INDEX_CACHE", findings.IndexCache())
    dsa = tmp_path / "DSA_list.txt"
    dsa.write_text(DSA_TEXT)
    feeds.import_feed(session_factory, dsa, None, "test")
    kev = write_json(tmp_path / "kev.json", kev_catalogue(KEV_PWNKIT, KEV_LOG4SHELL))
    feeds.import_feed(session_factory, kev, None, "test")
    asset = new_asset(session_factory, "deb-web", DEBIAN_PACKAGES)
    findings.recompute_dirty(session_factory)
    pwnkit = ("policykit-1", "CVE-2021-4034")
    assert all_findings(session_factory, asset)[pwnkit].risk_score == KEV_RISK
    with transaction(session_factory) as session:
        generation = findings.scores_generation(session)

    write_json(kev, kev_catalogue(KEV_LOG4SHELL))
    summary = feeds.import_feed(session_factory, kev, None, "test")
    # Counted as withdrawn: the listing is withdrawn, as an advisory can be.
    assert outcome(summary) == (0, 0, 1, 1, 0)
    assert summary.rescored == {"CVE-2021-4034"}
    assert "1 KEV entries no longer in the catalogue were un-listed: CVE-2021-4034" in (
        summary.notes
    )
    assert kev_listed(session_factory) == {"CVE-2021-44228"}
    with transaction(session_factory) as session:
        assert findings.scores_generation(session) == generation + 1
        info = findings.vulnerability_info(session, ["CVE-2021-4034"])["CVE-2021-4034"]
        assert (info.kev, info.kev_due_date) == (False, None)
        (run, *_) = feeds.list_imports(session)
        assert run.withdrawn == 1
    # Only re-scored, as when a CVE is listed: the advisories did not change.
    assert needs_rescore(session_factory, asset)
    findings.recompute_dirty(session_factory)
    found = all_findings(session_factory, asset)[pwnkit]
    assert found.risk_score == PLAIN_RISK
    assert found.due_at == found.first_seen_at + timedelta(days=90)  # no KEV due date

    again = feeds.import_feed(session_factory, kev, None, "test")
    assert outcome(again) == (0, 0, 1, 0, 0)
    assert not needs_rescore(session_factory, asset)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(json.dumps(kev_catalogue(KEV_LOG4SHELL), indent=1)[:300], id="truncated"),
        pytest.param(json.dumps(kev_catalogue(KEV_LOG4SHELL) | {"count": 2}), id="count-disagrees"),
        pytest.param(
            json.dumps(kev_catalogue(KEV_LOG4SHELL, {"vendorProject": "Acme"}) | {"count": 2}),
            id="entry-without-cve",
        ),
        pytest.param(json.dumps(kev_catalogue()), id="empty"),
    ],
)
def test_a_catalogue_not_known_to_be_whole_unlists_nothing(
    session_factory: sessionmaker[Session], tmp_path: Path, content: str
) -> None:
    kev = write_json(tmp_path / "kev.json", kev_catalogue(KEV_PWNKIT, KEV_LOG4SHELL))
    feeds.import_feed(session_factory, kev, None, "test")
    kev.write_text(content)
    summary = feeds.import_feed(session_factory, kev, None, "test")
    assert summary.withdrawn == 0
    assert kev_listed(session_factory) == {"CVE-2021-4034", "CVE-2021-44228"}
    with transaction(session_factory) as session:
        assert findings.scores_generation(session) == 1


def test_an_entry_rejected_alone_stays_listed(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    kev = write_json(tmp_path / "kev.json", kev_catalogue(KEV_PWNKIT, KEV_LOG4SHELL))
    feeds.import_feed(session_factory, kev, None, "test")
    write_json(kev, kev_catalogue(KEV_PWNKIT | {"dueDate": "18/07/2022"}, KEV_LOG4SHELL))
    summary = feeds.import_feed(session_factory, kev, None, "test")
    assert outcome(summary) == (0, 0, 1, 0, 1)
    assert kev_listed(session_factory) == {"CVE-2021-4034", "CVE-2021-44228"}


def kev_row(factory: sessionmaker[Session], cve: str) -> tuple[Any, ...]:
    with transaction(factory) as session:
        row = session.get(KevEntryRow, cve)
        assert row is not None
        return (row.known_ransomware, row.due_date, row.catalogue_released)


EARLIER = "2025-08-01T12:00:00.000Z"
LATER = "2025-09-01T12:00:00.000Z"


def test_an_older_catalogue_imported_late_neither_unlists_nor_rolls_back(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    # The later catalogue added PwnKit and knows log4shell's ransomware use.
    earlier = kev_catalogue(
        KEV_LOG4SHELL | {"knownRansomwareCampaignUse": "Unknown"}, released=EARLIER
    )
    later = kev_catalogue(KEV_PWNKIT, KEV_LOG4SHELL, released=LATER)
    feeds.import_feed(session_factory, write_json(tmp_path / "later.json", later), None, "test")
    summary = feeds.import_feed(
        session_factory, write_json(tmp_path / "earlier.json", earlier), None, "test"
    )
    assert outcome(summary) == (0, 0, 1, 0, 0)
    assert (
        "1 KEV entries of this catalogue were not taken: a catalogue released later (or any "
        "dated one, when this one is undated) stored them otherwise, un-listed them or left them out"
        in summary.notes
    )
    assert (
        "1 KEV entries missing from this catalogue stay listed: a later catalogue lists them (CVE-2021-4034)"
        in summary.notes
    )
    assert kev_listed(session_factory) == {"CVE-2021-4034", "CVE-2021-44228"}
    assert kev_row(session_factory, "CVE-2021-44228")[0] is True
    assert kev_row(session_factory, "CVE-2021-44228")[2] == datetime(2025, 9, 1, 12, tzinfo=UTC)
    with transaction(session_factory) as session:
        assert findings.scores_generation(session) == 1  # nothing to re-score


def test_a_newer_catalogue_replaces_and_unlists_what_an_older_one_stored(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    earlier = kev_catalogue(
        KEV_PWNKIT, KEV_LOG4SHELL | {"knownRansomwareCampaignUse": "Unknown"}, released=EARLIER
    )
    later = kev_catalogue(KEV_LOG4SHELL, released=LATER)
    feeds.import_feed(session_factory, write_json(tmp_path / "earlier.json", earlier), None, "test")
    summary = feeds.import_feed(
        session_factory, write_json(tmp_path / "later.json", later), None, "test"
    )
    assert outcome(summary) == (0, 1, 0, 1, 0)
    assert kev_listed(session_factory) == {"CVE-2021-44228"}
    assert kev_row(session_factory, "CVE-2021-44228") == (
        True,
        date(2021, 12, 24),
        datetime(2025, 9, 1, 12, tzinfo=UTC),
    )
    # The same catalogue again, and the older one after it: nothing changes.
    path = write_json(tmp_path / "later.json", later)
    assert outcome(feeds.import_feed(session_factory, path, None, "test")) == (0, 0, 1, 0, 0)
    path = write_json(tmp_path / "earlier.json", earlier)
    assert outcome(feeds.import_feed(session_factory, path, None, "test")) == (0, 0, 2, 0, 0)
    assert kev_listed(session_factory) == {"CVE-2021-44228"}
    # A catalogue later still that lists PwnKit again does list it again.
    latest = kev_catalogue(KEV_PWNKIT, KEV_LOG4SHELL, released="2025-10-01T00:00:00Z")
    path = write_json(tmp_path / "latest.json", latest)
    assert outcome(feeds.import_feed(session_factory, path, None, "test")) == (1, 0, 1, 0, 0)
    assert kev_listed(session_factory) == {"CVE-2021-4034", "CVE-2021-44228"}


def test_an_older_catalogue_cannot_list_what_a_newer_complete_one_leaves_out(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    # PwnKit was never stored here: only the newer catalogue's omission speaks for it.
    later = kev_catalogue(KEV_LOG4SHELL, released=LATER)
    earlier = kev_catalogue(KEV_PWNKIT, KEV_LOG4SHELL, released=EARLIER)
    feeds.import_feed(session_factory, write_json(tmp_path / "later.json", later), None, "test")
    summary = feeds.import_feed(
        session_factory, write_json(tmp_path / "earlier.json", earlier), None, "test"
    )
    assert outcome(summary) == (0, 0, 2, 0, 0)
    assert summary.kept_later == 2  # PwnKit left out, log4shell stored from the later one
    assert kev_listed(session_factory) == {"CVE-2021-44228"}
    # An undated catalogue cannot either; a catalogue of the same time or later can.
    undated = kev_catalogue(KEV_PWNKIT)
    undated["dateReleased"] = None
    path = write_json(tmp_path / "undated.json", undated)
    assert outcome(feeds.import_feed(session_factory, path, None, "test")) == (0, 0, 1, 0, 0)
    assert kev_listed(session_factory) == {"CVE-2021-44228"}
    latest = kev_catalogue(KEV_PWNKIT, KEV_LOG4SHELL, released="2025-10-01T00:00:00Z")
    path = write_json(tmp_path / "latest.json", latest)
    assert outcome(feeds.import_feed(session_factory, path, None, "test")) == (1, 0, 1, 0, 0)
    assert kev_listed(session_factory) == {"CVE-2021-4034", "CVE-2021-44228"}
    # The latest catalogue is recorded with what it lists, once.
    with transaction(session_factory) as session:
        (row,) = session.execute(select(KevLatestCatalogue)).scalars()
        assert (row.released, row.entries) == (datetime(2025, 10, 1, tzinfo=UTC), 2)
        assert set(session.execute(select(KevLatestListed.cve_id)).scalars()) == {
            "CVE-2021-4034",
            "CVE-2021-44228",
        }


def test_an_entry_a_later_catalogue_could_not_store_is_taken_from_an_older_one(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    # The later catalogue lists PwnKit, but its entry is rejected: it un-listed
    # nothing, so the older catalogue's valid entry is stored.
    later = kev_catalogue(KEV_PWNKIT | {"dueDate": "18/07/2022"}, KEV_LOG4SHELL, released=LATER)
    earlier = kev_catalogue(KEV_PWNKIT, released=EARLIER)
    feeds.import_feed(session_factory, write_json(tmp_path / "later.json", later), None, "test")
    summary = feeds.import_feed(
        session_factory, write_json(tmp_path / "earlier.json", earlier), None, "test"
    )
    assert outcome(summary) == (1, 0, 0, 0, 0)
    assert kev_listed(session_factory) == {"CVE-2021-4034", "CVE-2021-44228"}


def test_a_catalogue_confirming_an_entry_moves_its_release_time(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    # Otherwise a catalogue released between the two could still roll it back.
    for name, released in (("a", EARLIER), ("c", LATER)):
        path = write_json(
            tmp_path / f"{name}.json", kev_catalogue(KEV_LOG4SHELL, released=released)
        )
        feeds.import_feed(session_factory, path, None, "test")
    middle = kev_catalogue(
        KEV_LOG4SHELL | {"dueDate": "2021-12-31"}, released="2025-08-15T00:00:00Z"
    )
    summary = feeds.import_feed(
        session_factory, write_json(tmp_path / "b.json", middle), None, "test"
    )
    assert outcome(summary) == (0, 0, 1, 0, 0)
    assert kev_row(session_factory, "CVE-2021-44228")[1] == date(2021, 12, 24)


@pytest.mark.parametrize("released", [None, "25 August 2025"], ids=["absent", "unreadable"])
def test_an_undated_catalogue_yields_to_a_dated_one(
    session_factory: sessionmaker[Session], tmp_path: Path, released: str | None
) -> None:
    dated = kev_catalogue(KEV_PWNKIT, KEV_LOG4SHELL, released=LATER)
    feeds.import_feed(session_factory, write_json(tmp_path / "dated.json", dated), None, "test")
    undated = kev_catalogue(KEV_LOG4SHELL | {"knownRansomwareCampaignUse": "Unknown"})
    undated["dateReleased"] = released
    summary = feeds.import_feed(
        session_factory, write_json(tmp_path / "undated.json", undated), None, "test"
    )
    assert outcome(summary) == (0, 0, 1, 0, 0)
    assert any("taken as undated" in note for note in summary.notes)
    assert any("stay listed: this catalogue is undated (CVE-2021-4034)" in n for n in summary.notes)
    assert kev_listed(session_factory) == {"CVE-2021-4034", "CVE-2021-44228"}
    assert kev_row(session_factory, "CVE-2021-44228")[0] is True


# --- sync: a download counts as current only once it is imported --------------------------

KEV_PATH = "/sites/default/files/feeds/known_exploited_vulnerabilities.json"


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with serve() as running:
        yield running


@pytest.fixture
def feed_client(feed_server: FeedServer) -> Iterator[httpx.Client]:
    """The default sources' real URLs, answered by the local feed server."""
    with httpx.Client(transport=ToFeedServer(feed_server), timeout=5) as http:
        yield http


def sync_kev(factory: sessionmaker[Session], dest: Path, client: httpx.Client) -> feeds.SourceSync:
    (result,) = feeds.sync_sources(factory, dest, ["kev"], "test", client=client)
    return result


def test_sync_imports_again_a_download_whose_import_failed(
    engine: Engine,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    feed_server: FeedServer,
    feed_client: httpx.Client,
) -> None:
    feed_server.put(KEV_PATH, json.dumps(kev_catalogue(KEV_PWNKIT)).encode())
    dest = tmp_path / "feeds"
    # The database refuses the import (the table of import runs is gone): it raises.
    runs = FeedImport.metadata.tables["feed_imports"]
    runs.drop(engine)
    with pytest.raises(SQLAlchemyError, match="feed_imports"):
        sync_kev(session_factory, dest, feed_client)
    assert (dest / "known_exploited_vulnerabilities.json").exists()  # downloaded, not imported
    assert kev_listed(session_factory) == set()

    runs.create(engine)
    retried = sync_kev(session_factory, dest, feed_client)
    assert retried.status == "downloaded and imported"  # not "unchanged": it was never used
    assert retried.summary is not None and outcome(retried.summary) == (1, 0, 0, 0, 0)
    assert kev_listed(session_factory) == {"CVE-2021-4034"}

    current = sync_kev(session_factory, dest, feed_client)
    assert current.status == "unchanged"
    assert feed_server.headers_of(KEV_PATH)[-1]["if-none-match"] == (
        feed_server.resources[KEV_PATH].etag
    )


def test_sync_of_a_broken_file_downloads_it_again(
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    feed_server: FeedServer,
    feed_client: httpx.Client,
) -> None:
    body = json.dumps(kev_catalogue(KEV_PWNKIT)).encode()
    feed_server.put(KEV_PATH, body[: len(body) // 2])  # published truncated
    dest = tmp_path / "feeds"
    first = sync_kev(session_factory, dest, feed_client)
    assert first.status.startswith("failed: ")
    assert first.summary is not None
    assert "not valid JSON" in first.summary.rejections[0].reason

    again = sync_kev(session_factory, dest, feed_client)
    assert again.status.startswith("failed: ")  # downloaded and tried again, not 304
    assert "if-none-match" not in feed_server.headers_of(KEV_PATH)[-1]
    assert kev_listed(session_factory) == set()

    feed_server.put(KEV_PATH, body)
    assert sync_kev(session_factory, dest, feed_client).status == "downloaded and imported"
    assert kev_listed(session_factory) == {"CVE-2021-4034"}


def test_a_distribution_rating_is_the_severity_until_a_cvss_score_comes(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """Ubuntu's priority and Debian's urgency rate a flaw no CVSS score has reached:
    the most severe of them is its severity, and NVD's score replaces it."""
    from tests.services.test_scanning import NVD_OPENSSL

    def severity() -> str | None:
        with transaction(session_factory) as session:
            row = session.get(Vulnerability, "CVE-2023-0286")
            assert row is not None
            return row.severity

    ubuntu = osv_record(
        "UBUNTU-CVE-2023-0286", ecosystem="Ubuntu:22.04:LTS", name="openssl",
        aliases=["CVE-2023-0286"], events=[{"introduced": "0"}, {"fixed": "3.0.2-0ubuntu1.8"}],
    ) | {"severity": [{"type": "Ubuntu", "score": "low"}]}  # fmt: skip
    path = write_json(tmp_path / "ubuntu.json", ubuntu)
    assert feeds.import_feed(session_factory, path, None, "test").created == 1
    assert severity() == "low"
    tracker = {
        "openssl": {
            "CVE-2023-0286": {
                "releases": {
                    "bookworm": {
                        "status": "resolved",
                        "fixed_version": "3.0.8-1",
                        "urgency": "medium",
                    }
                }
            }
        }
    }
    feeds.import_feed(session_factory, write_json(tmp_path / "tracker.json", tracker), None, "t")
    assert severity() == "medium"
    again = feeds.import_feed(session_factory, path, None, "test")  # lower, and unchanged
    assert (again.unchanged, severity()) == (1, "medium")
    feeds.import_feed(session_factory, write_json(tmp_path / "nvd.json", NVD_OPENSSL), None, "t")
    assert severity() == "high"  # NVD's CVSS 3.1 score 7.4, now the source of it
    with transaction(session_factory) as session:
        row = session.get(Vulnerability, "CVE-2023-0286")
        assert row is not None and row.cvss_score == 7.4


def test_every_nvd_metric_is_kept_and_shown_the_preferred_one_scores(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    from tests.feeds.test_nvd import V2, V31, V40, cve, response

    path = write_json(tmp_path / "nvd.json", response(cve()))
    assert outcome(feeds.import_feed(session_factory, path, None, "test")) == (1, 0, 0, 0, 0)
    with transaction(session_factory) as session:
        detail = findings.vulnerability_detail(session, "cve-2021-44228")
    # Primary before secondary, then by version preference; each scored by our
    # calculator, not by the baseScore the record gives (10.0 and 9.3 here).
    assert detail["cvss_metrics"] == [
        {"version": "3.1", "vector": V31, "score": 9.8, "severity": "critical",
         "source": "nvd@nist.gov", "primary": True},
        {"version": "2.0", "vector": V2, "score": 7.5, "severity": "high",
         "source": "nvd@nist.gov", "primary": True},
        {"version": "4.0", "vector": V40, "score": 9.3, "severity": "critical",
         "source": "cna@example.org", "primary": False},
    ]  # fmt: skip
    assert (detail["cvss_score"], detail["cvss_vector"]) == (9.8, V31)
    assert outcome(feeds.import_feed(session_factory, path, None, "test")) == (0, 0, 1, 0, 0)


@pytest.mark.parametrize("metrics", ["none", "all-refused"])
def test_an_nvd_update_with_no_metric_that_scores_keeps_the_stored_score_and_metrics(
    session_factory: sessionmaker[Session], tmp_path: Path, metrics: str
) -> None:
    from tests.feeds.test_nvd import V31, cve, response

    path = write_json(tmp_path / "nvd.json", response(cve()))
    feeds.import_feed(session_factory, path, None, "test")
    with transaction(session_factory) as session:
        before = findings.vulnerability_detail(session, "CVE-2021-44228")["cvss_metrics"]
    record = cve(lastModified="2024-09-01T00:00:00.000")
    if metrics == "none":
        record["metrics"] = {}
    else:
        for entries in record["metrics"].values():
            for entry in entries:
                entry["cvssData"]["vectorString"] = "CVSS:3.1/AV:X"
    summary = feeds.import_feed(session_factory, write_json(path, response(record)), None, "test")
    assert (summary.created, summary.updated) == (0, 1)  # its modified time moved
    with transaction(session_factory) as session:
        detail = findings.vulnerability_detail(session, "CVE-2021-44228")
    assert (detail["cvss_score"], detail["cvss_vector"]) == (9.8, V31)
    assert detail["cvss_metrics"] == before
    assert len(before) == 3


def test_parts_of_a_record_that_fails_to_store_are_not_parts_of_a_stored_record() -> None:
    summary = feeds.ImportSummary(1, "osv.json")
    summary.reject(
        RejectedRecord("osv.json PYSEC-1 affected[1]", "bad range", "PYSEC-1"), "osv.json"
    )
    summary.reject(
        RejectedRecord("osv.json PYSEC-2 affected[0]", "bad range", "PYSEC-2"), "osv.json"
    )
    summary.refuse_stored("PYSEC-1", "osv.json", "not stored: name too long")
    assert (summary.rejected, summary.parts_rejected) == (1, 1)
    assert [(r.where, r.part) for r in summary.rejections] == [
        ("osv.json PYSEC-2 affected[0]", True),
        ("PYSEC-1", False),
    ]


def test_a_record_failing_to_store_keeps_the_parts_of_its_namesake_from_another_file() -> None:
    # A directory holds two copies of one id: the copy of a.json is stored without a
    # bad part; the copy of b.json fails to store. a.json's refused part stays reported.
    summary = feeds.ImportSummary(1, "dir")
    summary.reject(RejectedRecord("a.json PYSEC-7 affected[1]", "bad range", "PYSEC-7"), "a.json")
    summary.refuse_stored("PYSEC-7", "b.json", "not stored: name too long")
    assert (summary.rejected, summary.parts_rejected) == (1, 1)
    assert [(r.where, r.part) for r in summary.rejections] == [
        ("a.json PYSEC-7 affected[1]", True),
        ("PYSEC-7", False),
    ]
