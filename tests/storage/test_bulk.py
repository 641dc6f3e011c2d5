"""Bulk finding writes: what COPY text lines and SQLite tuples store must read back
exactly as written, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.storage.bulk import FindingWriter
from patchwarden.storage.db import transaction
from patchwarden.storage.tables import Asset, Finding

SEEN = datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=UTC)
# A zone other than UTC: stored as the same instant.
DUE = datetime(2026, 4, 28, 9, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))


def new_asset(session: Session) -> int:
    asset = Asset(hostname="bulk-1", source="ssh")
    session.add(asset)
    session.flush()
    return asset.id


def test_findings_read_back_exactly_with_characters_copy_escapes(
    session_factory: sessionmaker[Session],
) -> None:
    awkward = "back\\slash\ttab\nnew\rreturn é"
    with transaction(session_factory) as session:
        asset_id = new_asset(session)
        writer = FindingWriter(session)
        written = [
            (asset_id, "deb", awkward, "amd64", "CVE-2026-0001", "open", SEEN, None,
             "1:2.0-1~deb11u1", None, ("DSA-1-1", 'GHSA-"q"\\x'), None, "debian:11",
             87.25, DUE),
            (asset_id, "pypi", "Django", "", "PYSEC-2026-7", "fixed", SEEN, SEEN,
             "4.2", "django", (), "4.2.1", "pypi", 0.1, None),
        ]  # fmt: skip
        writer.write([writer.encode(row) for row in written])
    with transaction(session_factory) as session:
        rows = {f.vulnerability_id: f for f in session.execute(select(Finding)).scalars()}
    first, second = rows["CVE-2026-0001"], rows["PYSEC-2026-7"]
    assert first.package_name == awkward
    assert first.advisory_ids == ["DSA-1-1", 'GHSA-"q"\\x']
    assert first.source_name is None and first.fixed_version is None
    assert first.installed_version == "1:2.0-1~deb11u1"
    assert first.risk_score == 87.25
    assert first.first_seen_at.replace(tzinfo=UTC) == SEEN
    assert first.due_at is not None and first.due_at.replace(tzinfo=UTC) == DUE
    assert (second.status, second.fixed_version, second.advisory_ids) == ("fixed", "4.2.1", [])
    assert second.fixed_at is not None and second.fixed_at.replace(tzinfo=UTC) == SEEN
    assert second.due_at is None


def test_shared_suffixes_make_one_row_per_asset(session_factory: sessionmaker[Session]) -> None:
    with transaction(session_factory) as session:
        assets = [new_asset(session) for _ in range(3)]
        writer = FindingWriter(session)
        suffix = writer.encode_suffix(
            ("deb", "openssl", "amd64", "CVE-2026-0002", "open", SEEN, None, "3.0.1-1",
             "openssl", ("DSA-2-1",), "3.0.2-1", "debian:12", 50.0, DUE)
        )  # fmt: skip
        writer.write([writer.row(a, suffix) for a in assets])
    with transaction(session_factory) as session:
        stored = session.execute(
            select(Finding.asset_id, Finding.package_name, Finding.fixed_version)
        ).all()
    assert sorted(stored) == [(a, "openssl", "3.0.2-1") for a in assets]
