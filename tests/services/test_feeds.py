"""Feed imports into a real database: the shared real feed files (SQLite, they
are big), then small written files on SQLite and PostgreSQL: idempotence,
provenance, updates by `modified`, withdrawals, and bad input refused whole."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

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
    Vulnerability,
)

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


def kev_catalogue(*entries: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": "CISA Catalog of Known Exploited Vulnerabilities",
        "catalogVersion": "2025.08.25",
        "dateReleased": "2025-08-25T17:04:19.9796Z",
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
        # 2,661 records: 10 withdrawn (stored with their date), 2 refused whole (a
        # fixed version that is not PEP 440), 28 stored without a few listed versions
        # that are not PEP 440 (each such part counts as one rejection).
        pytest.param(
            "osv-pypi/pypa_advisory_database.jsonl",
            2649,
            10,
            30,
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
    assert [(h.created, h.unchanged, h.rejected) for h in history] == [
        (0, rows, rejected),
        (created, 0, rejected),
    ]
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
