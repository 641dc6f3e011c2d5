"""Importing advisory feeds into the database: idempotent upserts with
provenance, a per-record savepoint so a broken record is refused whole, and a
summary of created / updated / unchanged / withdrawn / rejected records.

Two feeds are snapshots rather than streams of records: an EPSS file scores
every CVE on one day (stored all or none, never over a later day's score), and
a complete KEV catalogue un-lists the entries it no longer holds (counted as
withdrawn).

Parsing is pure (patchwarden.feeds); this module only stores what it yields.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from patchwarden import cvss
from patchwarden.domain.advisories import (
    Advisory,
    CvssMetric,
    EpssScore,
    FeedRecord,
    KevEntry,
    RejectedRecord,
    VulnerabilityRecord,
)
from patchwarden.errors import InvalidInput, PatchwardenError
from patchwarden.prioritize.severity import most_severe, normalise_severity
from patchwarden.services import audit, findings
from patchwarden.storage.db import transaction
from patchwarden.storage.tables import Advisory as AdvisoryRow
from patchwarden.storage.tables import (
    AdvisoryVulnerability,
    AffectedPackageRow,
    EpssScoreRow,
    FeedImport,
    KevEntryRow,
    KevLatestCatalogue,
    KevLatestListed,
    KevUnlisted,
    Vulnerability,
    utcnow,
)

if TYPE_CHECKING:
    from patchwarden.feeds.kev import KevCatalogue

BATCH = 500
EPSS_CHUNK = 20_000  # rows per executemany statement
MAX_STORED_REJECTIONS = 1000
CVSS_PREFERENCE = ("3.1", "4.0", "3.0", "2.0")  # which vector a vulnerability shows first

Progress = Callable[[int], None]


@dataclass
class ImportSummary:
    import_id: int
    path: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    withdrawn: int = 0
    rejected: int = 0  # records refused whole: nothing of them is stored
    parts_rejected: int = 0  # parts refused of records stored without them
    rejections: list[RejectedRecord] = field(default_factory=list)  # both kinds
    notes: list[str] = field(default_factory=list)
    files: int = 0
    seconds: float = 0.0
    # (platform, package name) pairs whose advisories changed: their findings are stale.
    touched: set[tuple[str, str]] = field(default_factory=set)
    # Vulnerabilities whose scores changed (NVD, KEV, EPSS): their findings need re-scoring.
    rescored: set[str] = field(default_factory=set)
    advisories_changed: bool = False  # what matching reads: processes rebuild their index
    # KEV entries counted unchanged because a later catalogue stored them.
    kept_later: int = 0
    # The parts refused of each (file, record id), should that record fail to store.
    _parts: dict[tuple[str, str], list[RejectedRecord]] = field(default_factory=dict, repr=False)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.withdrawn)

    @property
    def rejected_whole(self) -> bool:
        """Something was refused and nothing is stored: no record was created,
        updated, withdrawn or found already stored."""
        return bool(self.rejected) and not (
            self.created or self.updated or self.unchanged or self.withdrawn
        )

    def count(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def refuse_stored(self, record_id: str, file: str, reason: str) -> None:
        """A record of `file` failed to store: it is rejected whole, and the parts
        refused of it at parse time are no longer parts of a stored record (a
        record of the same id from another file keeps its own)."""
        parts = self._parts.pop((file, record_id), [])
        if parts:
            refused = {id(r) for r in parts}
            self.rejections = [r for r in self.rejections if id(r) not in refused]
            self.parts_rejected -= len(parts)
        self.reject(RejectedRecord(record_id, reason))

    def reject(self, record: RejectedRecord, file: str = "") -> None:
        if record.part_of is not None:
            self.parts_rejected += 1
            self._parts.setdefault((file, record.part_of), []).append(record)
        else:
            self.rejected += 1
        self.rejections.append(record)


def import_feed(
    factory: sessionmaker[Session],
    path: Path,
    fmt: str | None,
    actor: str,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import one file, directory or zip. Records are stored in batches; each
    record is all-or-nothing; a bad record is counted and reported."""
    from patchwarden.feeds import get_feed, read_path  # the parsers' registry
    from patchwarden.feeds.kev import KevCatalogue

    if not path.exists():
        raise InvalidInput(f"{path} does not exist")
    if fmt is not None:
        get_feed(fmt)  # an unknown format is refused before anything is recorded
    started = time.perf_counter()
    with transaction(factory) as session:
        run = FeedImport(actor=actor, path=str(path), format=fmt, started_at=utcnow())
        session.add(run)
        session.flush()
        summary = ImportSummary(run.id, str(path))
    pending: list[tuple[FeedRecord, str]] = []
    for parsed in read_path(path, fmt):
        summary.files += 1
        summary.notes.extend(parsed.notes)
        file = parsed.file or summary.path
        for rejected in parsed.rejected:
            summary.reject(rejected, file)
        epss = [r for r in parsed.records if isinstance(r, EpssScore)]
        if epss:
            _store_epss(factory, epss, file, summary)
            if progress:
                progress(len(epss))
        # Records of many small files (an OSV zip) share batches and transactions.
        pending.extend((r, file) for r in parsed.records if not isinstance(r, EpssScore))
        while len(pending) >= BATCH:
            _store_batch(factory, pending[:BATCH], summary, progress)
            del pending[:BATCH]
        if isinstance(parsed, KevCatalogue) and parsed.listed is not None:
            # Store what is pending first: an entry of an earlier file stored
            # after the un-listing would list again what this catalogue dropped.
            if pending:
                _store_batch(factory, pending, summary, progress)
                pending.clear()
            _unlist_kev(factory, parsed, file, summary)
    if pending:
        _store_batch(factory, pending, summary, progress)
    if summary.kept_later:
        summary.notes.append(
            f"{summary.kept_later} KEV entries of this catalogue were not taken: a catalogue "
            "released later (or any dated one, when this one is undated) stored them "
            "otherwise, un-listed them or left them out"
        )
    summary.seconds = time.perf_counter() - started
    with transaction(factory) as session:
        if summary.advisories_changed:
            # Server processes rebuild their advisory index (and drop their score memos).
            findings.bump_feed_generation(session)
            findings.mark_assets_for_names(session, summary.touched)
        if summary.rescored:
            # Only what findings are scored from: processes keep their index.
            findings.bump_feed_generation(session, findings.SCORES_STATE_ID)
            findings.mark_assets_for_vulnerabilities(session, summary.rescored)
        session.execute(
            update(FeedImport)
            .where(FeedImport.id == summary.import_id)
            .values(
                finished_at=utcnow(),
                created=summary.created,
                updated=summary.updated,
                unchanged=summary.unchanged,
                withdrawn=summary.withdrawn,
                rejected=summary.rejected,
                parts_rejected=summary.parts_rejected,
                rejections=[
                    {"where": r.where, "reason": r.reason}
                    | ({"part": True, "part_of": r.part_of} if r.part_of else {})
                    for r in summary.rejections[:MAX_STORED_REJECTIONS]
                ],
                notes=summary.notes[:100],
            )
        )
        audit.record(
            session,
            actor,
            "feed.import",
            "feed_import",
            summary.import_id,
            {
                "path": str(path),
                "format": fmt,
                "created": summary.created,
                "updated": summary.updated,
                "unchanged": summary.unchanged,
                "withdrawn": summary.withdrawn,
                "rejected": summary.rejected,
                "parts_rejected": summary.parts_rejected,
            },
        )
    return summary


def _store_batch(
    factory: sessionmaker[Session],
    batch: Sequence[tuple[FeedRecord, str]],
    summary: ImportSummary,
    progress: Progress | None,
) -> None:
    """One transaction per batch, one savepoint per record."""
    now = utcnow()
    with transaction(factory) as session, session.no_autoflush:
        for record, file in batch:
            savepoint = session.begin_nested()
            try:
                outcome = _store_record(session, record, file, now, summary.touched)
                savepoint.commit()
                if outcome == "kept_later":
                    summary.kept_later += 1
                    outcome = "unchanged"
                if outcome != "unchanged":
                    if isinstance(record, KevEntry | VulnerabilityRecord):
                        summary.rescored.add(_record_id(record))
                    else:
                        summary.advisories_changed = True
            except (PatchwardenError, SQLAlchemyError, ValueError) as exc:
                savepoint.rollback()
                summary.refuse_stored(_record_id(record), file, f"not stored: {exc}")
                continue
            summary.count(outcome)
    if progress:
        progress(len(batch))


def _record_id(record: FeedRecord) -> str:
    return record.cve_id if isinstance(record, KevEntry | EpssScore) else record.id


def _store_record(
    session: Session,
    record: FeedRecord,
    file: str,
    now: datetime,
    touched: set[tuple[str, str]],
) -> str:
    if isinstance(record, Advisory):
        return _store_advisory(session, record, file, now, touched)
    if isinstance(record, VulnerabilityRecord):
        return _store_vulnerability(session, record, file, now)
    if isinstance(record, KevEntry):
        return _store_kev(session, record, file, now)
    raise InvalidInput(f"unsupported record type {type(record).__name__}")


def _content_hash(value: Any) -> str:
    fields = dataclasses.asdict(value)
    if fields.get("rating", "") is None:
        del fields["rating"]  # records without one hash as they did before it existed
    body = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _metric_view(metric: CvssMetric) -> dict[str, Any]:
    version, vector, score, severity = _scored(metric)
    return {
        "version": version,
        "vector": vector,
        "score": score,
        "severity": severity,
        "source": metric.source,
        "primary": metric.primary,
    }


def _best_metric(metrics: Sequence[CvssMetric]) -> CvssMetric | None:
    """The metric a vulnerability shows: primary before secondary, then by version preference."""
    return next(iter(_ranked_metrics(metrics)), None)


def _ranked_metrics(metrics: Sequence[CvssMetric]) -> list[CvssMetric]:
    """Primary before secondary, then by version preference (stable otherwise)."""
    return sorted(
        metrics,
        key=lambda m: (
            not m.primary,
            CVSS_PREFERENCE.index(m.version)
            if m.version in CVSS_PREFERENCE
            else len(CVSS_PREFERENCE),
        ),
    )


def _scored(metric: CvssMetric) -> tuple[str, str, float, str]:
    """(version, vector, base score, severity) — scored by our own calculator."""
    result = cvss.score(metric.vector)
    return (
        str(result.version.value),
        result.vector,
        result.base_score,
        result.severity.value.lower(),
    )


def _store_advisory(
    session: Session,
    advisory: Advisory,
    file: str,
    now: datetime,
    touched: set[tuple[str, str]],
) -> str:
    digest = _content_hash(advisory)
    row = session.get(AdvisoryRow, advisory.id)
    if row is not None:
        if row.content_hash == digest:
            return "unchanged"
        if advisory.modified and row.modified and advisory.modified < row.modified:
            return "unchanged"  # an older copy of a record we already hold
        if advisory.modified is None and row.modified and row.source != advisory.source:
            # The same advisory from a list that dates nothing (the DSA/DLA lists
            # beside OSV's Debian records): the dated record stays, or importing
            # both would overwrite each in turn.
            return "unchanged"
        touched.update(
            session.execute(
                select(AffectedPackageRow.platform, AffectedPackageRow.name).where(
                    AffectedPackageRow.advisory_id == advisory.id
                )
            )
        )
        session.execute(
            delete(AffectedPackageRow).where(AffectedPackageRow.advisory_id == advisory.id)
        )
        session.execute(
            delete(AdvisoryVulnerability).where(AdvisoryVulnerability.advisory_id == advisory.id)
        )
        outcome = "withdrawn" if advisory.withdrawn and row.withdrawn_at is None else "updated"
    else:
        row = AdvisoryRow(id=advisory.id, imported_at=now)
        session.add(row)
        outcome = "withdrawn" if advisory.withdrawn else "created"
    row.source = advisory.source
    row.title = advisory.title
    row.details = advisory.details
    row.published = advisory.published
    row.modified = advisory.modified
    row.withdrawn_at = advisory.withdrawn
    row.aliases = list(advisory.aliases)
    row.severity = [dataclasses.asdict(m) for m in advisory.severity]
    row.references = list(advisory.references)
    row.content_hash = digest
    row.source_file = file
    row.updated_at = now
    session.flush()
    if advisory.affected:
        session.execute(
            insert(AffectedPackageRow),
            [
                {
                    "advisory_id": advisory.id,
                    "platform": a.platform,
                    "name": a.name,
                    "ranges": [
                        {"type": r.type, "events": [{e.kind: e.version} for e in r.events]}
                        for r in a.ranges
                    ],
                    "versions": list(a.versions),
                    "all_versions": a.all_versions,
                    "binaries": list(a.binaries),
                    "note": a.note,
                }
                for a in advisory.affected
            ],
        )
    touched.update((a.platform, a.name) for a in advisory.affected)
    vulnerability_ids = sorted(set(advisory.vulnerability_ids))
    session.execute(
        insert(AdvisoryVulnerability),
        [{"advisory_id": advisory.id, "vulnerability_id": v} for v in vulnerability_ids],
    )
    metric = _best_metric(advisory.severity)
    for vulnerability_id in vulnerability_ids:
        vulnerability = session.get(Vulnerability, vulnerability_id)
        if vulnerability is None:
            vulnerability = Vulnerability(
                id=vulnerability_id, description=advisory.title, provenance={}
            )
            session.add(vulnerability)
        # An advisory's CVSS fills in only where NVD has not scored the flaw.
        if metric is not None and vulnerability.cvss_source in (None, advisory.id):
            version, vector, score, severity = _scored(metric)
            vulnerability.cvss_version, vulnerability.cvss_vector = version, vector
            vulnerability.cvss_score, vulnerability.severity = score, severity
            vulnerability.cvss_source = advisory.id
        elif vulnerability.cvss_score is None and advisory.rating is not None:
            # No CVSS score yet: the distributions' ratings stand in, the most
            # severe of them (a score, when one comes, replaces it).
            ratings = (normalise_severity(r) for r in (advisory.rating, vulnerability.severity))
            vulnerability.severity = most_severe(r for r in ratings if r is not None)
        vulnerability.provenance = {
            **vulnerability.provenance,
            advisory.source: {
                "file": file,
                "imported_at": now.isoformat(),
                "advisory": advisory.id,
            },
        }
    return outcome


def _store_vulnerability(
    session: Session, record: VulnerabilityRecord, file: str, now: datetime
) -> str:
    row = session.get(Vulnerability, record.id)
    metric = _best_metric(record.cvss)
    scored = _scored(metric) if metric else None
    values: dict[str, Any] = {
        "description": record.description,
        "published": record.published,
        "modified": record.modified,
        "status": record.status,
        "withdrawn_at": (record.modified or now) if record.status == "Rejected" else None,
        "cwes": list(record.cwes),
    }
    # A record none of whose metrics scores (none given, or each refused) keeps
    # the stored score and the metrics it came from: they stay consistent.
    if scored:
        values |= {
            "cvss_metrics": [_metric_view(m) for m in _ranked_metrics(record.cvss)],
            "cvss_version": scored[0],
            "cvss_vector": scored[1],
            "cvss_score": scored[2],
            "severity": scored[3],
            "cvss_source": metric.source if metric else "nvd",
        }
    if row is None:
        session.add(
            Vulnerability(
                id=record.id,
                provenance={"nvd": {"file": file, "imported_at": now.isoformat()}},
                **values,
            )
        )
        return "created"
    if all(getattr(row, k) == v for k, v in values.items()):
        return "unchanged"
    if record.modified and row.modified and record.modified < row.modified:
        return "unchanged"
    outcome = "withdrawn" if values["withdrawn_at"] and row.withdrawn_at is None else "updated"
    for key, value in values.items():
        setattr(row, key, value)
    row.provenance = {**row.provenance, "nvd": {"file": file, "imported_at": now.isoformat()}}
    return outcome


def _store_kev(session: Session, entry: KevEntry, file: str, now: datetime) -> str:
    values = {
        "vendor": entry.vendor,
        "product": entry.product,
        "name": entry.name,
        "date_added": entry.date_added,
        "due_date": entry.due_date,
        "known_ransomware": entry.known_ransomware,
        "required_action": entry.required_action,
        "notes": entry.notes,
    }
    row = session.get(KevEntryRow, entry.cve_id)
    if row is None:
        dropped = session.get(KevUnlisted, entry.cve_id)
        if dropped is not None:
            if not _kev_replaces(entry.catalogue_released, dropped.catalogue_released):
                return "kept_later"  # a later catalogue no longer lists it
            session.delete(dropped)
        latest = session.scalar(select(KevLatestCatalogue.released))
        if not _kev_replaces(entry.catalogue_released, latest) and (
            session.get(KevLatestListed, entry.cve_id) is None
        ):
            return "kept_later"  # a later complete catalogue leaves it out
        session.add(
            KevEntryRow(
                cve_id=entry.cve_id,
                catalogue_released=entry.catalogue_released,
                source_file=file,
                imported_at=now,
                **values,
            )
        )
        return "created"
    if not _kev_replaces(entry.catalogue_released, row.catalogue_released):
        return "kept_later"  # an older (or undated) catalogue: the stored entry stands
    row.catalogue_released = entry.catalogue_released  # confirmed by this catalogue
    if all(getattr(row, k) == v for k, v in values.items()):
        return "unchanged"
    for key, value in values.items():
        setattr(row, key, value)
    row.source_file, row.imported_at = file, now
    return "updated"


def _kev_replaces(released: datetime | None, stored: datetime | None) -> bool:
    """Whether a catalogue released at `released` speaks for an entry last stored
    from one released at `stored` (None: undated). An undated entry yields to
    any catalogue; a dated one only to a catalogue of the same time or later."""
    return stored is None or (released is not None and released >= stored)


def _unlist_kev(
    factory: sessionmaker[Session],
    catalogue: KevCatalogue,
    file: str,
    summary: ImportSummary,
) -> None:
    """Remove the KEV entries a complete catalogue no longer lists: the schema
    stores "listed" as the row itself. Each counts as withdrawn and its
    findings are re-scored (no longer KEV: lower risk, the usual due date).
    Entries stored from a later catalogue stay: this one cannot know them.
    A dated one is recorded as the latest: no older catalogue lists what it
    leaves out."""
    assert catalogue.listed is not None
    listed, released = catalogue.listed, catalogue.released
    with transaction(factory) as session:
        latest = session.scalar(select(KevLatestCatalogue.released))
        if released is not None and _kev_replaces(released, latest):
            session.execute(delete(KevLatestCatalogue))
            session.execute(delete(KevLatestListed))
            session.add(
                KevLatestCatalogue(
                    released=released,
                    catalog_version=catalogue.version[:64],
                    entries=len(listed),
                    source_file=file,
                    imported_at=utcnow(),
                )
            )
            ids = sorted(listed)
            for start in range(0, len(ids), BATCH):
                session.execute(
                    insert(KevLatestListed), [{"cve_id": cve} for cve in ids[start : start + BATCH]]
                )
        stored = session.execute(select(KevEntryRow.cve_id, KevEntryRow.catalogue_released)).all()
        missing = [(cve, at) for cve, at in stored if cve not in listed]
        dropped = sorted(cve for cve, at in missing if _kev_replaces(released, at))
        for start in range(0, len(dropped), BATCH):
            chunk = dropped[start : start + BATCH]
            session.execute(delete(KevEntryRow).where(KevEntryRow.cve_id.in_(chunk)))
            session.execute(delete(KevUnlisted).where(KevUnlisted.cve_id.in_(chunk)))
        now = utcnow()
        session.add_all(
            KevUnlisted(cve_id=cve, catalogue_released=released, unlisted_at=now) for cve in dropped
        )
    if dropped:
        summary.withdrawn += len(dropped)
        summary.rescored.update(dropped)
        summary.notes.append(
            f"{len(dropped)} KEV entries no longer in the catalogue were un-listed: "
            f"{_first_ten(dropped)}"
        )
    if kept := sorted({cve for cve, _ in missing} - set(dropped)):
        why = "a later catalogue lists them" if released else "this catalogue is undated"
        summary.notes.append(
            f"{len(kept)} KEV entries missing from this catalogue stay listed: {why} "
            f"({_first_ten(kept)})"
        )


def _first_ten(ids: Sequence[str]) -> str:
    return ", ".join(ids[:10]) + (" …" if len(ids) > 10 else "")


def _store_epss(
    factory: sessionmaker[Session], scores: Sequence[EpssScore], file: str, summary: ImportSummary
) -> None:
    """EPSS files hold a score for every CVE (~300k rows): compared in memory,
    written with executemany in one transaction, so a file's scores are stored
    all or none (never two days mixed). A stored score is replaced only by one
    of the same or a later day: an older or undated file never rolls it back."""
    now = utcnow()
    new: list[EpssScore] = []
    changed: list[EpssScore] = []
    kept_later = 0
    with transaction(factory) as session:
        stored = {
            cve: (epss, percentile, day)
            for cve, epss, percentile, day in session.execute(
                select(
                    EpssScoreRow.cve_id,
                    EpssScoreRow.epss,
                    EpssScoreRow.percentile,
                    EpssScoreRow.score_date,
                )
            )
        }
        for score in scores:
            current = stored.get(score.cve_id)
            if current is None:
                new.append(score)
            elif _older(score.score_date, current[2]):
                kept_later += 1
            elif current != (score.epss, score.percentile, score.score_date):
                changed.append(score)
        for start in range(0, len(new), EPSS_CHUNK):
            session.execute(
                insert(EpssScoreRow),
                [_epss_values(s, file, now) for s in new[start : start + EPSS_CHUNK]],
            )
        for start in range(0, len(changed), EPSS_CHUNK):
            # An ORM bulk UPDATE by primary key (cve_id): one executemany.
            session.execute(
                update(EpssScoreRow),
                [_epss_values(s, file, now) for s in changed[start : start + EPSS_CHUNK]],
            )
    summary.created += len(new)
    summary.updated += len(changed)
    summary.rescored.update(s.cve_id for s in new)
    summary.rescored.update(s.cve_id for s in changed)
    summary.unchanged += len(scores) - len(new) - len(changed)
    if kept_later:
        day = scores[0].score_date
        summary.notes.append(
            f"{kept_later} EPSS scores kept as stored: they are of a later day than this "
            f"file's ({day.isoformat() if day else 'undated'}), which does not replace them"
        )


def _older(day: date | None, stored_day: date | None) -> bool:
    """Whether a score of ``day`` is older than one stored of ``stored_day``
    (an undated score is older than any dated one)."""
    if stored_day is None:
        return False
    return day is None or day < stored_day


def _epss_values(score: EpssScore, file: str, now: datetime) -> dict[str, Any]:
    return {
        "cve_id": score.cve_id,
        "epss": score.epss,
        "percentile": score.percentile,
        "score_date": score.score_date,
        "model_version": score.model_version,
        "source_file": file,
        "imported_at": now,
    }


def list_imports(session: Session, limit: int = 50) -> list[FeedImport]:
    return list(
        session.execute(select(FeedImport).order_by(FeedImport.id.desc()).limit(limit)).scalars()
    )


@dataclass
class SourceSync:
    source: str
    status: str  # downloaded and imported | unchanged | failed: reason
    summary: ImportSummary | None = None


def sync_sources(
    factory: sessionmaker[Session],
    dest_dir: Path,
    names: Sequence[str] | None,
    actor: str,
    client: Any = None,
) -> list[SourceSync]:
    """Download the public feeds that changed and import them. A source that
    cannot be reached is reported; if none could be, the first error is raised.

    A download is recorded as current only once its import succeeded: if the
    import raises, or rejects the file whole, the next sync downloads and
    imports it again instead of being told "not modified"."""
    import httpx

    from patchwarden.feeds.errors import FeedDownloadError
    from patchwarden.feeds.sync import DEFAULT_SOURCES, get_sources, record_synced, sync

    sources = get_sources(names) if names else list(DEFAULT_SOURCES.values())
    dest_dir.mkdir(parents=True, exist_ok=True)
    own_client = client is None
    http = client or httpx.Client(timeout=60, follow_redirects=True)
    results: list[SourceSync] = []
    errors: list[FeedDownloadError] = []
    try:
        for source in sources:
            try:
                outcome = sync(source, dest_dir, http, save_state=False)
            except FeedDownloadError as exc:
                errors.append(exc)
                results.append(SourceSync(source.name, f"failed: {exc}"))
                continue
            if outcome.status == "unchanged":
                results.append(SourceSync(source.name, "unchanged"))
                continue
            summary = import_feed(factory, outcome.path, source.format, actor)
            if summary.rejected_whole:
                status = "failed: the downloaded file was rejected whole; the next sync tries again"
                results.append(SourceSync(source.name, status, summary))
                continue
            record_synced(source, dest_dir, outcome)
            results.append(SourceSync(source.name, "downloaded and imported", summary))
    finally:
        if own_client:
            http.close()
    if errors and len(errors) == len(sources):
        raise errors[0]
    return results
