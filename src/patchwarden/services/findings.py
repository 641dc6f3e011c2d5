"""Findings: every installed package matched against every advisory of its
platform, kept as (asset, package, vulnerability) rows with a status, a risk
score and an SLA due date.

Recomputation is incremental: an inventory change marks only that asset dirty;
a feed change marks only the assets that hold a package the changed advisories
name. Dirty assets are recomputed by the server's upkeep loop, by
`patchwarden findings recompute`, and before findings of an asset are read.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from patchwarden import versions
from patchwarden.domain.advisories import (
    Advisory,
    AffectedPackage,
    AffectedRange,
    RangeEvent,
    platform_of_os,
    scheme_of_platform,
)
from patchwarden.domain.inventory import InstalledPackage
from patchwarden.errors import NotFound
from patchwarden.matching.engine import Match, match_packages
from patchwarden.matching.index import AdvisoryIndex
from patchwarden.prioritize.risk import RiskInputs, risk_score
from patchwarden.prioritize.sla import SlaDue, due_date, sla_status
from patchwarden.services.priorities import ScoringContext
from patchwarden.storage.db import transaction
from patchwarden.storage.tables import Advisory as AdvisoryRow
from patchwarden.storage.tables import (
    AdvisoryVulnerability,
    AffectedPackageRow,
    Asset,
    EpssScoreRow,
    FeedState,
    Finding,
    KevEntryRow,
    Vulnerability,
    utcnow,
)
from patchwarden.storage.tables import InstalledPackage as PackageRow

CHUNK = 500
OPEN_STATES = ("open", "excepted", "false_positive")


@dataclass(frozen=True)
class VulnerabilityInfo:
    id: str
    description: str | None = None
    cvss_score: float | None = None
    cvss_vector: str | None = None
    severity: str | None = None
    epss: float | None = None
    epss_percentile: float | None = None
    kev: bool = False
    kev_ransomware: bool = False
    kev_due_date: date | None = None


@dataclass
class RecomputeResult:
    assets: int = 0
    opened: int = 0
    fixed: int = 0
    reopened: int = 0
    updated: int = 0
    open_total: int = 0


# --- the advisory index, cached per process ------------------------------------


def feed_generation(session: Session) -> int:
    state = session.get(FeedState, 1)
    return state.generation if state else 0


def bump_feed_generation(session: Session) -> None:
    """Tell every server process that advisories changed."""
    state = session.get(FeedState, 1)
    if state is None:
        session.add(FeedState(id=1, generation=1, changed_at=utcnow()))
    else:
        state.generation += 1
        state.changed_at = utcnow()


def load_advisories(session: Session) -> list[Advisory]:
    """Every advisory that is not withdrawn, as matching needs it."""
    aliases: dict[str, list[str]] = {}
    for advisory_id, vulnerability_id in session.execute(
        select(AdvisoryVulnerability.advisory_id, AdvisoryVulnerability.vulnerability_id)
    ):
        aliases.setdefault(advisory_id, []).append(vulnerability_id)
    affected: dict[str, list[AffectedPackage]] = {}
    rows = session.execute(
        select(AffectedPackageRow)
        .join(AdvisoryRow, AdvisoryRow.id == AffectedPackageRow.advisory_id)
        .where(AdvisoryRow.withdrawn_at.is_(None))
    ).scalars()
    for row in rows:
        affected.setdefault(row.advisory_id, []).append(
            AffectedPackage(
                platform=row.platform,
                name=row.name,
                ranges=tuple(
                    AffectedRange(
                        type=r["type"],
                        events=tuple(
                            RangeEvent(kind, version)
                            for event in r["events"]
                            for kind, version in event.items()
                        ),
                    )
                    for r in row.ranges
                ),
                versions=tuple(row.versions),
                all_versions=row.all_versions,
                binaries=tuple(row.binaries),
                note=row.note,
            )
        )
    return [
        Advisory(
            id=advisory_id,
            source="db",
            aliases=tuple(aliases.get(advisory_id, ())),
            affected=tuple(entries),
        )
        for advisory_id, entries in affected.items()
    ]


class IndexCache:
    """The matching index of this process, rebuilt when the feed generation moves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = -1
        self._index: AdvisoryIndex | None = None

    def get(self, session: Session) -> AdvisoryIndex:
        generation = feed_generation(session)
        with self._lock:
            if self._index is None or generation != self._generation:
                self._index = AdvisoryIndex.build(load_advisories(session))
                self._generation = generation
            return self._index


INDEX_CACHE = IndexCache()


# --- enrichment ------------------------------------------------------------------


def vulnerability_info(session: Session, ids: Iterable[str]) -> dict[str, VulnerabilityInfo]:
    wanted = sorted(set(ids))
    info: dict[str, dict[str, Any]] = {v: {"id": v} for v in wanted}
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        for vuln in session.execute(
            select(Vulnerability).where(Vulnerability.id.in_(chunk))
        ).scalars():
            info[vuln.id] |= {
                "description": vuln.description,
                "cvss_score": vuln.cvss_score,
                "cvss_vector": vuln.cvss_vector,
                "severity": vuln.severity,
            }
        for kev in session.execute(
            select(KevEntryRow).where(KevEntryRow.cve_id.in_(chunk))
        ).scalars():
            info[kev.cve_id] |= {
                "kev": True,
                "kev_ransomware": kev.known_ransomware,
                "kev_due_date": kev.due_date,
            }
        for epss in session.execute(
            select(EpssScoreRow).where(EpssScoreRow.cve_id.in_(chunk))
        ).scalars():
            info[epss.cve_id] |= {"epss": epss.epss, "epss_percentile": epss.percentile}
    return {v: VulnerabilityInfo(**values) for v, values in info.items()}


# --- recomputation ---------------------------------------------------------------


@dataclass
class _Grouped:
    versions: set[str] = field(default_factory=set)
    advisories: set[str] = field(default_factory=set)
    fixed: list[str | None] = field(default_factory=list)
    source_name: str | None = None
    platform: str = ""


FindingKey = tuple[str, str, str, str]  # ecosystem, package name, arch, vulnerability


def group_matches(matches: Sequence[Match]) -> dict[FindingKey, _Grouped]:
    grouped: dict[FindingKey, _Grouped] = {}
    for match in matches:
        package = match.package
        for vulnerability_id in match.vulnerability_ids:
            key = (package.ecosystem, package.name, package.arch, vulnerability_id)
            entry = grouped.setdefault(key, _Grouped())
            entry.versions.add(package.version)
            entry.advisories.add(match.advisory_id)
            entry.fixed.append(match.fixed_version)
            entry.source_name = package.source_name
            entry.platform = match.platform
    return grouped


def lowest_fix(platform: str, fixes: Sequence[str | None]) -> str | None:
    """The lowest version any advisory says fixes it; None when no advisory has a fix."""
    known = [f for f in fixes if f]
    if not known:
        return None
    scheme = versions.get_scheme(scheme_of_platform(platform))
    return min(known, key=scheme.parse)


def lowest_version(platform: str, installed: set[str]) -> str:
    scheme = versions.get_scheme(scheme_of_platform(platform))
    try:
        return min(installed, key=scheme.parse)
    except versions.InvalidVersion:
        return min(installed)


def current_packages(session: Session, asset_id: int) -> list[InstalledPackage]:
    rows = session.execute(
        select(
            PackageRow.ecosystem,
            PackageRow.name,
            PackageRow.version,
            PackageRow.arch,
            PackageRow.source_name,
            PackageRow.source_version,
            PackageRow.status,
        ).where(PackageRow.asset_id == asset_id, PackageRow.removed_at.is_(None))
    )
    return [InstalledPackage(*row) for row in rows]


def recompute_asset(
    session: Session,
    asset_id: int,
    index: AdvisoryIndex,
    now: datetime | None = None,
    cache: dict[Any, Any] | None = None,
    scoring: ScoringContext | None = None,
) -> RecomputeResult:
    now = now or utcnow()
    scoring = scoring or ScoringContext.load(session)
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise NotFound(f"asset {asset_id} not found")
    platform = platform_of_os(asset.os_id, asset.os_version_id)
    matches = match_packages(index, platform, current_packages(session, asset_id), cache=cache)
    grouped = group_matches(matches)
    existing = {
        (f.ecosystem, f.package_name, f.package_arch, f.vulnerability_id): f
        for f in session.execute(select(Finding).where(Finding.asset_id == asset_id)).scalars()
    }
    info = vulnerability_info(session, [k[3] for k in grouped])
    result = RecomputeResult(assets=1)
    for key, entry in grouped.items():
        row = existing.get(key)
        if row is None:
            row = Finding(
                asset_id=asset_id,
                ecosystem=key[0],
                package_name=key[1],
                package_arch=key[2],
                vulnerability_id=key[3],
                status="open",
                first_seen_at=now,
            )
            session.add(row)
            result.opened += 1
        elif row.status == "fixed":
            row.status, row.fixed_at = "open", None
            result.reopened += 1
        else:
            result.updated += 1
        row.installed_version = lowest_version(entry.platform, entry.versions)
        row.source_name = entry.source_name
        row.advisory_ids = sorted(entry.advisories)
        row.fixed_version = lowest_fix(entry.platform, entry.fixed)
        row.platform = entry.platform
        _score(row, info[key[3]], asset, scoring)
    for key, row in existing.items():
        if key not in grouped and row.status in OPEN_STATES:
            row.status, row.fixed_at = "fixed", now
            result.fixed += 1
    result.open_total = sum(
        1 for k in grouped if (existing.get(k) is None or existing[k].status == "open")
    )
    asset.findings_dirty = False
    session.flush()
    return result


def _score(row: Finding, vuln: VulnerabilityInfo, asset: Asset, scoring: ScoringContext) -> None:
    risk = risk_score(
        RiskInputs(
            cvss_base=vuln.cvss_score,
            severity=vuln.severity,
            epss=vuln.epss,
            kev=vuln.kev,
            kev_ransomware=vuln.kev_ransomware,
            criticality=asset.criticality,
            internet_facing=asset.internet_facing,
            data_sensitivity=asset.data_sensitivity,
        ),
        scoring.weights,
    )
    row.risk_score = risk.score
    row.risk_components = [component.as_dict() for component in risk.components]
    due = due_date(
        row.first_seen_at, vuln.severity, vuln.kev, vuln.kev_due_date, scoring.sla_for(asset.id)
    )
    row.due_at, row.sla_rule = due.due, due.rule


def mark_assets_for_names(session: Session, names: Iterable[tuple[str, str]]) -> int:
    """Mark dirty every asset holding a package that a changed advisory names."""
    by_name = sorted({name for _, name in names})
    marked: set[int] = set()
    for start in range(0, len(by_name), CHUNK):
        chunk = by_name[start : start + CHUNK]
        holders = session.execute(
            select(PackageRow.asset_id)
            .distinct()
            .where(
                PackageRow.removed_at.is_(None),
                or_(PackageRow.source_name.in_(chunk), PackageRow.name.in_(chunk)),
            )
        ).scalars()
        marked.update(holders)
    # Findings already open for those names may need closing too (advisory withdrawn).
    for start in range(0, len(by_name), CHUNK):
        chunk = by_name[start : start + CHUNK]
        marked.update(
            session.execute(
                select(Finding.asset_id)
                .distinct()
                .where(or_(Finding.package_name.in_(chunk), Finding.source_name.in_(chunk)))
            ).scalars()
        )
    ids = sorted(marked)
    for start in range(0, len(ids), CHUNK):
        session.execute(
            update(Asset)
            .where(Asset.id.in_(ids[start : start + CHUNK]))
            .values(findings_dirty=True)
            .execution_options(synchronize_session=False)
        )
    return len(ids)


def mark_all_assets(session: Session) -> None:
    session.execute(
        update(Asset).values(findings_dirty=True).execution_options(synchronize_session=False)
    )


def recompute_dirty(
    factory: sessionmaker[Session], limit: int | None = None, batch: int = 50
) -> RecomputeResult:
    """Recompute every dirty asset (or `limit` of them), `batch` per transaction."""
    total = RecomputeResult()
    cache: dict[Any, Any] = {}
    while limit is None or total.assets < limit:
        with transaction(factory) as session:
            index = INDEX_CACHE.get(session)
            scoring = ScoringContext.load(session)
            ids = list(
                session.execute(
                    select(Asset.id)
                    .where(Asset.findings_dirty.is_(True))
                    .order_by(Asset.id)
                    .limit(batch)
                    # Several server processes share the work without colliding.
                    .with_for_update(skip_locked=True)
                ).scalars()
            )
            if not ids:
                break
            for asset_id in ids:
                one = recompute_asset(session, asset_id, index, cache=cache, scoring=scoring)
                for name in ("assets", "opened", "fixed", "reopened", "updated", "open_total"):
                    setattr(total, name, getattr(total, name) + getattr(one, name))
    return total


def ensure_fresh(factory: sessionmaker[Session], asset_id: int) -> None:
    """Recompute an asset's findings first if its inventory or the feeds changed."""
    with transaction(factory) as session:
        asset = session.get(Asset, asset_id)
        if asset is None:
            raise NotFound(f"asset {asset_id} not found")
        if asset.findings_dirty:
            recompute_asset(session, asset_id, INDEX_CACHE.get(session))


# --- queries -----------------------------------------------------------------------


@dataclass(frozen=True)
class FindingFilter:
    asset_id: int | None = None
    vulnerability_id: str | None = None
    package: str | None = None
    status: str | None = "open"
    min_risk: float | None = None


def list_findings(
    session: Session, flt: FindingFilter, limit: int = 1000, offset: int = 0
) -> list[tuple[Finding, str]]:
    """Findings with their asset's hostname, highest risk first."""
    query = select(Finding, Asset.hostname).join(Asset, Asset.id == Finding.asset_id)
    if flt.asset_id is not None:
        query = query.where(Finding.asset_id == flt.asset_id)
    if flt.vulnerability_id is not None:
        query = query.where(Finding.vulnerability_id == flt.vulnerability_id)
    if flt.package is not None:
        query = query.where(
            or_(Finding.package_name == flt.package, Finding.source_name == flt.package)
        )
    if flt.status is not None:
        query = query.where(Finding.status == flt.status)
    if flt.min_risk is not None:
        query = query.where(Finding.risk_score >= flt.min_risk)
    query = query.order_by(Finding.risk_score.desc(), Finding.id).limit(limit).offset(offset)
    return [(f, hostname) for f, hostname in session.execute(query)]


def finding_view(
    finding: Finding, hostname: str, info: VulnerabilityInfo | None, now: datetime
) -> dict[str, Any]:
    overdue_state = None
    if finding.due_at is not None:
        overdue_state = sla_status(
            SlaDue(finding.due_at, finding.sla_rule or "", first_seen=finding.first_seen_at),
            now,
            finding.fixed_at,
        )
    return {
        "id": finding.id,
        "asset_id": finding.asset_id,
        "hostname": hostname,
        "package": finding.package_name,
        "arch": finding.package_arch,
        "ecosystem": finding.ecosystem,
        "source_name": finding.source_name,
        "installed_version": finding.installed_version,
        "fixed_version": finding.fixed_version,
        "vulnerability_id": finding.vulnerability_id,
        "advisory_ids": finding.advisory_ids,
        "platform": finding.platform,
        "status": finding.status,
        "first_seen_at": finding.first_seen_at,
        "fixed_at": finding.fixed_at,
        "risk": finding.risk_score,
        "risk_components": finding.risk_components,
        "due_at": finding.due_at,
        "sla_rule": finding.sla_rule,
        "sla_status": overdue_state,
        "severity": info.severity if info else None,
        "cvss": info.cvss_score if info else None,
        "epss": info.epss if info else None,
        "kev": info.kev if info else False,
    }


def vulnerability_detail(session: Session, vulnerability_id: str) -> dict[str, Any]:
    """A vulnerability with its scores, the advisories that name it, and how many
    assets have it open."""
    info = vulnerability_info(session, [vulnerability_id])[vulnerability_id]
    advisories = (
        session.execute(
            select(AdvisoryRow)
            .join(AdvisoryVulnerability, AdvisoryVulnerability.advisory_id == AdvisoryRow.id)
            .where(AdvisoryVulnerability.vulnerability_id == vulnerability_id)
            .order_by(AdvisoryRow.id)
        )
        .scalars()
        .all()
    )
    known = session.get(Vulnerability, vulnerability_id) is not None
    if not advisories and not known and not info.kev and info.epss is None:
        raise NotFound(f"vulnerability {vulnerability_id} is not in the advisory database")
    affected = session.execute(
        select(func.count(func.distinct(Finding.asset_id))).where(
            Finding.vulnerability_id == vulnerability_id, Finding.status == "open"
        )
    ).scalar_one()
    return {
        **dataclasses.asdict(info),
        "advisories": [
            {
                "id": a.id,
                "source": a.source,
                "title": a.title,
                "published": a.published,
                "withdrawn_at": a.withdrawn_at,
                "source_file": a.source_file,
                "imported_at": a.imported_at,
            }
            for a in advisories
        ],
        "affected_assets": affected,
    }
