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
import gc
import json
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from patchwarden import versions
from patchwarden.domain.advisories import (
    Advisory,
    AffectedPackage,
    AffectedRange,
    RangeEvent,
    canonical_vulnerability_id,
    platform_of_os,
    scheme_of_platform,
)
from patchwarden.domain.inventory import InstalledPackage
from patchwarden.errors import NotFound
from patchwarden.matching.engine import Match, match_packages
from patchwarden.matching.index import AdvisoryIndex
from patchwarden.matching.kernels import signed_kernel_sources
from patchwarden.prioritize.risk import RiskScore, RiskWeights
from patchwarden.prioritize.sla import sla_status
from patchwarden.services import exceptions
from patchwarden.services.finding_counts import Tally, due_counts
from patchwarden.services.priorities import AssetContext, ScoringContext
from patchwarden.storage.bulk import FindingWriter
from patchwarden.storage.db import transaction
from patchwarden.storage.tables import Advisory as AdvisoryRow
from patchwarden.storage.tables import (
    AdvisoryVulnerability,
    AffectedPackageRow,
    Asset,
    AssetDirtyName,
    EpssScoreRow,
    FeedState,
    Finding,
    FindingPackageName,
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


# feed_state rows: advisories (what matching reads) and scores (CVSS, KEV, EPSS:
# what findings are scored from). A day's EPSS moves only the second, so server
# processes keep their advisory index and drop only their score memos.
ADVISORIES_STATE_ID = 1
SCORES_STATE_ID = 3  # 2 is the repositories' (services.repositories)


def feed_generation(session: Session, state_id: int = ADVISORIES_STATE_ID) -> int:
    state = session.get(FeedState, state_id)
    return state.generation if state else 0


def scores_generation(session: Session) -> int:
    return feed_generation(session, SCORES_STATE_ID)


def bump_feed_generation(session: Session, state_id: int = ADVISORIES_STATE_ID) -> None:
    """Tell every server process that advisories changed (or, with
    SCORES_STATE_ID, what findings are scored from)."""
    state = session.get(FeedState, state_id)
    if state is None:
        session.add(FeedState(id=state_id, generation=1, changed_at=utcnow()))
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


# Per-package results kept between recomputations: a fleet repeats its packages.
# Past this many, the memo starts over (about 1 KB each).
MAX_MEMOISED_PACKAGES = 500_000


def _settle_long_lived() -> None:
    """Move what exists now (the index: millions of objects) out of the garbage
    collector's sight: otherwise every full collection walks it, which made a
    50 ms pause in one asset's recomputation."""
    gc.collect()
    gc.freeze()


class IndexCache:
    """The matching index of this process, rebuilt when the advisories' generation
    moves, with what recomputation memoises against it: per-package matches, and
    the vulnerability details, risks and due dates, which are dropped when either
    generation moves (scores change with advisories, NVD, KEV and EPSS)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation: tuple[str, int] = ("", -1)
        self._scores_generation = -1
        self._index: AdvisoryIndex | None = None
        self.matches: dict[Any, Any] = {}
        self.vulnerabilities: dict[str, VulnerabilityInfo] = {}
        self.dues: dict[tuple[Any, ...], Any] = {}  # due dates (they change with the feeds)
        self._risks: dict[RiskWeights, dict[tuple[Any, ...], RiskScore]] = {}

    def risks(self, weights: RiskWeights) -> dict[tuple[Any, ...], RiskScore]:
        """The risk memo for these weights (scores depend on weights, the
        vulnerability and the asset context only)."""
        with self._lock:
            if weights not in self._risks:
                self._risks = {weights: {}}  # weights changed: older memos are moot
            return self._risks[weights]

    def get(self, session: Session) -> AdvisoryIndex:
        # The database is part of the key: a process (tests, tools) may open several.
        generation = (str(session.get_bind().engine.url), feed_generation(session))
        scores = scores_generation(session)
        with self._lock:
            if self._index is None or generation != self._generation:
                self._index = AdvisoryIndex.build(load_advisories(session))
                self._generation = generation
                self.matches = {}
                self._drop_scores(scores)
                _settle_long_lived()
            elif scores != self._scores_generation:
                self._drop_scores(scores)
            elif len(self.matches.get(_TEMPLATES_SLOT, (None, ()))[1]) > MAX_MEMOISED_PACKAGES:
                self.matches = {}
            return self._index

    def _drop_scores(self, generation: int) -> None:
        self.vulnerabilities, self._risks, self.dues = {}, {}, {}
        self._scores_generation = generation


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
PackageName = tuple[str, str, str]  # ecosystem, package name, source name ("" when none)


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


@lru_cache(maxsize=200_000)
def _sort_key(platform: str, version: str) -> Any:
    """A version's sort key on a platform (memoised: fleets repeat versions)."""
    return versions.get_scheme(scheme_of_platform(platform)).parse(version)


def lowest_fix(platform: str, fixes: Sequence[str | None]) -> str | None:
    """The lowest version any advisory says fixes it; None when no advisory has a fix."""
    known = {f for f in fixes if f}
    if len(known) <= 1:
        return next(iter(known), None)
    return min(known, key=lambda v: _sort_key(platform, v))


def lowest_version(platform: str, installed: set[str]) -> str:
    if len(installed) == 1:
        return next(iter(installed))
    try:
        return min(installed, key=lambda v: _sort_key(platform, v))
    except versions.InvalidVersion:
        return min(installed)


# Why a finding was fixed: the host changed the package (a new or an older version,
# or removed it), or its advisories stopped naming the version it still has
# (withdrawn or corrected): that last one fixed nothing on the host.
FIXED_REASONS = ("upgraded", "downgraded", "removed", "advisory")


def fixed_reason(platform: str, was: str, installed: set[str]) -> str:
    """Why a finding of a package at version `was` went away, given the versions of
    that package (same name and arch) the asset has now."""
    if not installed:
        return "removed"
    if was in installed:
        return "advisory"
    try:
        before = _sort_key(platform, was)
    except versions.InvalidVersion:
        return "upgraded"
    for version in installed:
        try:
            if before < _sort_key(platform, version):
                return "upgraded"
        except versions.InvalidVersion:
            continue  # a version that cannot be ordered says nothing either way
    return "downgraded"


# The driver's own cursor, not SQLAlchemy's rows: an asset has thousands of
# packages and a fleet's first match reads millions (SQLAlchemy's row objects
# cost as much as the query). The text is a constant; only the id is a parameter.
_CURRENT_PACKAGES = (
    "SELECT ecosystem, name, version, arch, source_name, source_version, status"
    " FROM installed_packages WHERE asset_id = {mark} AND removed_at IS NULL"
)


def _current_rows(session: Session, asset_id: int) -> list[tuple[Any, ...]]:
    """An asset's current packages as plain tuples in InstalledPackage's order
    (equal to, and hashing like, the InstalledPackage of the same values)."""
    return _driver_rows(session, _CURRENT_PACKAGES, asset_id)


def _driver_rows(session: Session, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of a constant query (`{mark}` for each parameter; the first is an asset
    id), by the driver's cursor."""
    connection = session.connection()
    mark = "%s" if connection.dialect.name == "postgresql" else "?"
    raw: Any = connection.connection.driver_connection
    cursor = raw.cursor()
    try:
        cursor.execute(query.format(mark=mark), params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def current_packages(session: Session, asset_id: int) -> list[InstalledPackage]:
    return list(map(InstalledPackage._make, _current_rows(session, asset_id)))


@dataclass(frozen=True, slots=True)
class PackageFinding:
    """What matching says of one installed package for one vulnerability."""

    vulnerability_id: str
    installed_version: str
    advisory_ids: tuple[str, ...]  # sorted
    fixed_version: str | None  # the lowest fix any of those advisories names
    platform: str
    # As findings store it: written once per package, compared on every re-match.
    advisory_json: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "advisory_json", json.dumps(list(self.advisory_ids)))


_TEMPLATES_SLOT = ("patchwarden.findings", "templates")


def package_findings(
    index: AdvisoryIndex,
    platform: str | None,
    packages: Sequence[InstalledPackage],
    cache: dict[Any, Any],
) -> dict[FindingKey, PackageFinding]:
    """An asset's findings by key. Each (platform, package) is matched and grouped
    once per process and feed generation: fleets repeat the same packages, so an
    asset costs one dictionary lookup per package."""
    templates = _templates(index, cache)
    grouped: dict[FindingKey, PackageFinding] = {}
    for package in packages:
        for template in _template(templates, index, platform, package, cache):
            key = (package.ecosystem, package.name, package.arch, template.vulnerability_id)
            prior = grouped.get(key)
            grouped[key] = template if prior is None else _merge(prior, template)
    return grouped


def _templates(
    index: AdvisoryIndex, cache: dict[Any, Any]
) -> dict[tuple[str | None, InstalledPackage], tuple[PackageFinding, ...]]:
    """The per-package findings memo for this index (a new index starts it over)."""
    generation, templates = cache.get(_TEMPLATES_SLOT, (None, None))
    if templates is None or generation != (id(index), index.generation):
        templates = {}
        cache[_TEMPLATES_SLOT] = ((id(index), index.generation), templates)
    return templates  # type: ignore[no-any-return]


def _template(
    templates: dict[tuple[str | None, InstalledPackage], tuple[PackageFinding, ...]],
    index: AdvisoryIndex,
    platform: str | None,
    package: tuple[Any, ...],
    cache: dict[Any, Any],
) -> tuple[PackageFinding, ...]:
    """A package's findings from the memo, matched on a miss. `package` may be a
    plain row in InstalledPackage's order: it looks up the same entry."""
    found = templates.get((platform, package))  # type: ignore[arg-type]
    if found is None:
        installed = InstalledPackage._make(package)
        found = templates[(platform, installed)] = _package_templates(
            index, platform, installed, cache
        )
    return found


def _package_templates(
    index: AdvisoryIndex, platform: str | None, package: InstalledPackage, cache: dict[Any, Any]
) -> tuple[PackageFinding, ...]:
    by_vulnerability: dict[str, tuple[set[str], list[str | None], str]] = {}
    for match in match_packages(index, platform, [package], cache=cache):
        for vulnerability_id in match.vulnerability_ids:
            advisories, fixes, _ = by_vulnerability.setdefault(
                vulnerability_id, (set(), [], match.platform)
            )
            advisories.add(match.advisory_id)
            fixes.append(match.fixed_version)
    return tuple(
        PackageFinding(
            vulnerability_id,
            package.version,
            tuple(sorted(advisories)),
            lowest_fix(match_platform, fixes),
            match_platform,
        )
        for vulnerability_id, (advisories, fixes, match_platform) in by_vulnerability.items()
    )


def _merge(a: PackageFinding, b: PackageFinding) -> PackageFinding:
    """Several installed versions of one package (multi-arch, kernels): the finding
    names the lowest installed version and the lowest fix."""
    return PackageFinding(
        a.vulnerability_id,
        lowest_version(a.platform, {a.installed_version, b.installed_version}),
        tuple(sorted(set(a.advisory_ids) | set(b.advisory_ids))),
        lowest_fix(a.platform, [a.fixed_version, b.fixed_version]),
        a.platform,
    )


# An asset's stored findings, read by the driver's own cursor (a re-match reads
# about 1,000 per asset, and SQLAlchemy's rows and type processing cost more than
# the comparison). The advisory list is compared as the JSON text we would write.
_STORED_FINDINGS = (
    "SELECT id, ecosystem, package_name, package_arch, vulnerability_id, status,"
    " first_seen_at, installed_version, source_name, CAST(advisory_ids AS TEXT),"
    " fixed_version, platform, risk_score, due_at FROM findings WHERE asset_id = {mark}"
)
_ID, _STATUS, _FIRST_SEEN, _INSTALLED, _PLATFORM = 0, 5, 6, 7, 11
# The columns recomputation owns, in the order they end a stored row (people own
# status changes to excepted / false positive).
_COMPUTED = (
    "installed_version",
    "source_name",
    "advisory_json",
    "fixed_version",
    "platform",
    "risk_score",
    "due_at",
)
_COMPUTED_FROM = 7


def recompute_asset(
    session: Session,
    asset_id: int,
    index: AdvisoryIndex,
    now: datetime | None = None,
    cache: dict[Any, Any] | None = None,
    scoring: ScoringContext | None = None,
    run_memo: dict[Any, Any] | None = None,
    names: set[PackageName] | None = None,
) -> RecomputeResult:
    """Match the asset's current packages and bring its findings up to date with
    bulk writes: new findings opened, vanished ones fixed, returning ones reopened.

    `run_memo` (one per run, all of whose assets share `now`) keeps, per asset
    context, the encoded rows of each package's new findings and the scores of
    stored ones: fleets repeat packages and contexts, so an asset's first match
    costs a dictionary lookup per package and a tuple per finding.

    The package names of the asset's findings are added to `names`, for the
    caller to record once per transaction; without it they are recorded here."""
    asset, one = _asset_pass(session, asset_id, index, now, cache, scoring, run_memo)
    packages = _current_rows(session, asset_id)
    existing = {row[1:5]: row for row in _driver_rows(session, _STORED_FINDINGS, asset_id)}
    first = None if existing else one.first_match_rows(packages)
    if first is not None:
        rows, bound, tally, found_names = first
        one.writer.write(rows)
        result = RecomputeResult(assets=1, opened=len(rows), open_total=len(rows))
    else:
        result, bound, tally, found_names = one.rematch(
            list(map(InstalledPackage._make, packages)), existing
        )
    _hand_over(session, found_names, names)
    asset.finding_risk_bound = bound
    tally.store(asset)
    if asset.names_dirty:  # every package was matched again
        session.execute(delete(AssetDirtyName).where(AssetDirtyName.asset_id == asset_id))
    asset.findings_dirty = asset.names_dirty = asset.scores_dirty = False
    asset.patches_dirty = True  # the findings each patch closes may have changed
    session.flush()
    return result


def rematch_names(
    session: Session,
    asset_id: int,
    index: AdvisoryIndex,
    now: datetime | None = None,
    cache: dict[Any, Any] | None = None,
    scoring: ScoringContext | None = None,
    run_memo: dict[Any, Any] | None = None,
    names: set[PackageName] | None = None,
) -> RecomputeResult:
    """Match again only the asset's packages whose advisories changed (the names
    a feed import recorded for it) and bring their findings up to date; the
    asset's other findings, and its counts of them, stay as they are."""
    asset, one = _asset_pass(session, asset_id, index, now, cache, scoring, run_memo)
    dirty = sorted(
        session.execute(
            select(AssetDirtyName.name).where(AssetDirtyName.asset_id == asset_id)
        ).scalars()
    )
    by_either = ("name", "source_name")
    packages = [
        InstalledPackage._make(row)
        for row in _rows_by_name(session, _CURRENT_PACKAGES, asset_id, by_either, dirty)
    ]
    package_names = sorted({p.name for p in packages})
    matched = {(p.ecosystem, p.name) for p in packages}  # a name may recur in another ecosystem
    existing = {
        row[1:5]: row
        for row in _rows_by_name(
            session, _STORED_FINDINGS, asset_id, ("package_name",), package_names
        )
        if row[1:3] in matched
    }
    result, bound, after, found_names = one.rematch(packages, existing)
    before = Tally()
    for row in existing.values():
        before.add(row[_STATUS], None if row[-1] is None else one.writer.instant(row[-1]))
    Tally.of(asset).replacing(before, after).store(asset)
    result.open_total = asset.open_findings
    _hand_over(session, found_names, names)
    # An upper bound is all the top-risks order needs: the other findings keep theirs.
    asset.finding_risk_bound = max(asset.finding_risk_bound, bound)
    session.execute(delete(AssetDirtyName).where(AssetDirtyName.asset_id == asset_id))
    asset.names_dirty = False
    asset.patches_dirty = True
    session.flush()
    return result


def _hand_over(session: Session, found: set[PackageName], names: set[PackageName] | None) -> None:
    """Add an asset's package names to the caller's batch, or record them now."""
    if names is None:
        record_package_names(session, found)
    else:
        names |= found


def _rows_by_name(
    session: Session, query: str, asset_id: int, columns: tuple[str, ...], names: Sequence[str]
) -> list[tuple[Any, ...]]:
    """Rows of one of the constant per-asset queries above, narrowed to those where
    any of `columns` (constants of this module) is one of `names`, each row once,
    by the driver's cursor."""
    rows: dict[tuple[Any, ...], None] = {}
    for start in range(0, len(names), CHUNK):
        chunk = list(names[start : start + CHUNK])
        listed = ", ".join(["{mark}"] * len(chunk))
        wanted = " OR ".join(f"{column} IN ({listed})" for column in columns)
        found = _driver_rows(session, f"{query} AND ({wanted})", asset_id, *chunk * len(columns))
        rows.update(dict.fromkeys(found))
    return list(rows)


# An asset's unfixed findings with what their scores are compared by, for a re-score.
_STORED_SCORES = (
    "SELECT id, vulnerability_id, status, first_seen_at, risk_score, due_at FROM findings"
    " WHERE asset_id = {mark} AND status <> 'fixed'"
)


def rescore_asset(
    session: Session,
    asset_id: int,
    index: AdvisoryIndex,
    now: datetime | None = None,
    cache: dict[Any, Any] | None = None,
    scoring: ScoringContext | None = None,
    run_memo: dict[Any, Any] | None = None,
) -> RecomputeResult:
    """Bring the risk scores and due dates of an asset's unfixed findings up to
    date without matching again, as a re-match would write them: what changed is
    only what they are scored from (CVSS, EPSS, KEV, risk weights, SLA policy, the
    asset's attributes), not its packages or the advisories."""
    asset, one = _asset_pass(session, asset_id, index, now, cache, scoring, run_memo)
    stored = _driver_rows(session, _STORED_SCORES, asset_id)
    one._vulnerabilities(row[1] for row in stored)
    updates: list[dict[str, Any]] = []
    bound = 0.0
    tally = Tally()
    tally.counts["fixed"] = asset.fixed_findings  # a re-score fixes nothing
    for id_, vulnerability_id, status, first_seen, stored_risk, stored_due in stored:
        risk, due_as_stored, due = one._scores(vulnerability_id, first_seen)
        bound = max(bound, risk)
        tally.add(status, due)
        change: dict[str, Any] = {}
        if risk != stored_risk:
            change["risk_score"] = risk
        if due_as_stored != stored_due:
            change["due_at"] = due
        if change:
            updates.append({"id": id_, **change})
    if updates:
        session.execute(update(Finding), updates)
        asset.patches_dirty = True  # a patch's risk is its findings'
    asset.finding_risk_bound = bound
    tally.store(asset)
    asset.scores_dirty = False
    session.flush()
    return RecomputeResult(
        assets=1, updated=len(updates), open_total=sum(1 for row in stored if row[2] == "open")
    )


def _asset_pass(
    session: Session,
    asset_id: int,
    index: AdvisoryIndex,
    now: datetime | None,
    cache: dict[Any, Any] | None,
    scoring: ScoringContext | None,
    run_memo: dict[Any, Any] | None,
) -> tuple[Asset, _AssetPass]:
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise NotFound(f"asset {asset_id} not found")
    scoring = scoring or ScoringContext.load(session)
    context = AssetContext(
        asset.id, asset.criticality, asset.internet_facing, asset.data_sensitivity
    )
    return asset, _AssetPass(
        session=session,
        index=index,
        platform=platform_of_os(asset.os_id, asset.os_version_id),
        cache={} if cache is None else cache,
        scoring=scoring,
        context=context,
        # What of the asset its scores depend on (risk: the context; due: the policy).
        context_key=(
            context.criticality,
            context.internet_facing,
            context.data_sensitivity,
            id(scoring.sla_for(asset_id)),
        ),
        now=now or utcnow(),
        writer=FindingWriter(session),
        memo={} if run_memo is None else run_memo,
    )


@dataclass(frozen=True)
class _AssetPass:
    """One asset's recomputation, with what it shares with the rest of the run."""

    session: Session
    index: AdvisoryIndex
    platform: str | None
    cache: dict[Any, Any]
    scoring: ScoringContext
    context: AssetContext
    context_key: tuple[Any, ...]
    now: datetime
    writer: FindingWriter
    memo: dict[Any, Any]

    def first_match_rows(
        self, packages: Sequence[tuple[Any, ...]]
    ) -> tuple[list[Any], float, Tally, set[PackageName]] | None:
        """The encoded rows of an asset that has no findings yet, their highest
        risk, their count and their package names, or None when two installed
        versions share a finding's identity (they merge: the general path)."""
        templates = _templates(self.index, self.cache)
        vulnerable: list[tuple[InstalledPackage, tuple[PackageFinding, ...]]] = []
        for row in packages:
            found = _template(templates, self.index, self.platform, row, self.cache)
            if found:
                vulnerable.append((InstalledPackage._make(row), found))
        if len({(p.ecosystem, p.name, p.arch) for p, _ in vulnerable}) < len(vulnerable):
            return None
        rows: list[Any] = []
        bound = 0.0
        tally = Tally()
        asset_id, row_of = self.context.asset_id, self.writer.row
        for package, found in vulnerable:
            entry = self.memo.get((id(found), self.context_key))
            if entry is None or entry[0] is not found:
                entry = self.memo[(id(found), self.context_key)] = (
                    found,
                    *self._encoded_suffixes(package, found),
                )
            rows.extend([row_of(asset_id, suffix) for suffix in entry[1]])
            bound = max(bound, entry[2])
            tally.add_open(len(entry[1]), entry[3])
        names = {(p.ecosystem, p.name, p.source_name or "") for p, _ in vulnerable}
        return rows, bound, tally, names

    def _encoded_suffixes(
        self, package: InstalledPackage, found: tuple[PackageFinding, ...]
    ) -> tuple[tuple[Any, ...], float, tuple[tuple[str, int], ...]]:
        """A package's new findings, encoded without their asset id, their highest
        risk, and their due dates counted."""
        vulnerabilities = self._vulnerabilities(f.vulnerability_id for f in found)
        scoring, context, now = self.scoring, self.context, self.now
        risks = [scoring.risk(vulnerabilities[f.vulnerability_id], context).score for f in found]
        dues = [scoring.due(vulnerabilities[f.vulnerability_id], context, now).due for f in found]
        suffixes = tuple(
            self.writer.encode_suffix(
                (
                    package.ecosystem,
                    package.name,
                    package.arch,
                    f.vulnerability_id,
                    "open",
                    now,
                    None,
                    f.installed_version,
                    package.source_name,
                    f.advisory_ids,
                    f.fixed_version,
                    f.platform,
                    risk,
                    due,
                )
            )
            for f, risk, due in zip(found, risks, dues, strict=True)
        )
        return suffixes, max(risks, default=0.0), due_counts(dues)

    def _vulnerabilities(self, ids: Iterable[str]) -> dict[str, VulnerabilityInfo]:
        """Scoring's vulnerability memo, filled from the database where it lacks ids."""
        vulnerabilities = self.scoring.vulnerabilities
        missing = {v for v in ids if v not in vulnerabilities}
        if missing:
            vulnerabilities.update(vulnerability_info(self.session, missing))
        return vulnerabilities

    def _scores(self, vulnerability_id: str, first_seen: Any) -> tuple[float, Any, datetime | None]:
        """(risk, due date as stored, due date) of a stored finding, memoised per
        context, vulnerability and first-seen time (as the driver returned it)."""
        key = ("scores", self.context_key, vulnerability_id, first_seen)
        scores = self.memo.get(key)
        if scores is None:
            vuln = self._vulnerabilities((vulnerability_id,))[vulnerability_id]
            due = self.scoring.due(vuln, self.context, self.writer.instant(first_seen)).due
            risk = self.scoring.risk(vuln, self.context).score
            scores = self.memo[key] = (risk, self.writer.stored(due), due)
        return scores

    def rematch(
        self, packages: Sequence[InstalledPackage], existing: dict[FindingKey, Any]
    ) -> tuple[RecomputeResult, float, Tally, set[PackageName]]:
        """Compare what matching says now with the asset's stored findings and
        write only the differences; also the highest risk of its unfixed findings,
        its findings as they now stand, counted, and their package names."""
        grouped = package_findings(self.index, self.platform, packages, self.cache)
        source_names = {(p.ecosystem, p.name, p.arch): p.source_name for p in packages}
        self._vulnerabilities(k[3] for k in grouped)
        asset_id, writer, now = self.context.asset_id, self.writer, self.now
        result = RecomputeResult(assets=1)
        bound = 0.0
        tally = Tally()
        inserts: list[Any] = []
        updates: list[dict[str, Any]] = []
        for key, found in grouped.items():
            source_name = source_names[key[:3]]
            old = existing.get(key)
            if old is None:
                risk, _, due = self._scores(key[3], writer.stored(now))
                bound = max(bound, risk)
                tally.add("open", due)
                inserts.append(
                    writer.encode(
                        (
                            asset_id,
                            *key,
                            "open",
                            now,
                            None,
                            found.installed_version,
                            source_name,
                            found.advisory_ids,
                            found.fixed_version,
                            found.platform,
                            risk,
                            due,
                        )
                    )
                )
                continue
            risk, stored_due, due = self._scores(key[3], old[_FIRST_SEEN])
            bound = max(bound, risk)
            status = old[_STATUS]
            tally.add("open" if status == "fixed" else status, due)  # fixed ones reopen
            computed = (
                found.installed_version,
                source_name,
                found.advisory_json,
                found.fixed_version,
                found.platform,
                risk,
                stored_due,
            )
            stored = old[_COMPUTED_FROM:]
            if status != "fixed" and stored == computed:
                continue  # the common case on a re-match: nothing to write
            change: dict[str, Any] = {
                name: value
                for name, was, value in zip(_COMPUTED, stored, computed, strict=True)
                if was != value
            }
            if "advisory_json" in change:
                del change["advisory_json"]
                change["advisory_ids"] = list(found.advisory_ids)
            if "due_at" in change:
                change["due_at"] = due
            if status == "fixed":
                change |= {"status": "open", "fixed_at": None, "fixed_reason": None}
                result.reopened += 1
            if change:
                updates.append({"id": old[_ID], **change})
                result.updated += 1
        installed: dict[tuple[str, str, str], set[str]] | None = None
        for key, old in existing.items():
            if key in grouped:
                continue
            tally.add("fixed", None)
            if old[_STATUS] in OPEN_STATES:
                if installed is None:  # only when something went away
                    installed = {}
                    for p in packages:
                        installed.setdefault((p.ecosystem, p.name, p.arch), set()).add(p.version)
                reason = fixed_reason(
                    old[_PLATFORM], old[_INSTALLED], installed.get(key[:3], set())
                )
                updates.append(
                    {"id": old[_ID], "status": "fixed", "fixed_at": now, "fixed_reason": reason}
                )
                result.fixed += 1
        result.opened = len(inserts)
        writer.write(inserts)
        if updates:
            self.session.execute(update(Finding), updates)
        result.open_total = sum(
            1 for k in grouped if k not in existing or existing[k][_STATUS] in ("open", "fixed")
        )
        names = {(k[0], k[1], source_names[k[:3]] or "") for k in grouped}
        return result, bound, tally, names


def record_package_names(session: Session, names: Iterable[PackageName]) -> None:
    """Record package names that findings carry (see FindingPackageName). In
    sorted order, one statement per chunk: transactions recording overlapping
    names wait for each other instead of deadlocking."""
    rows = [{"ecosystem": e, "package_name": n, "source_name": s} for e, n, s in sorted(set(names))]
    _insert_missing(session, FindingPackageName, rows)


def _insert_missing(session: Session, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Insert the rows whose primary key the table lacks, in their order. One
    statement for all chunks, executed with each chunk's rows: compiled once
    (a VALUES list of its own for every call cost an asset's recomputation
    tens of milliseconds)."""
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
    statement = insert(table).on_conflict_do_nothing()
    for start in range(0, len(rows), CHUNK):
        session.execute(statement, list(rows[start : start + CHUNK]))


def _spellings(platform: str, name: str) -> set[str]:
    """Names an installed package may carry for an advisory's name: PyPI names
    are compared PEP 503-normalised, but agents report them as installed; a
    kernel's signed images name their wrapper source."""
    if platform.startswith(("debian:", "ubuntu:")):
        return {name} | signed_kernel_sources(name)
    if platform != "pypi":
        return {name}
    variants = {name, name.replace("-", "_"), name.replace("-", ".")}
    return variants | {v.title() for v in variants} | {v.capitalize() for v in variants}


# Names per query of mark_assets_for_names: each query reads every current package
# (no index serves a name or source name), so a feed import touching thousands of
# names does so once. Twice this many parameters stays under SQLite's 32,766 and
# PostgreSQL's 65,535; both look IN lists this long up in a hash or a b-tree.
NAMES_PER_SCAN = 10_000


def mark_assets_for_names(session: Session, names: Iterable[tuple[str, str]]) -> int:
    """Mark every asset holding a package that a changed advisory names, with the
    names it holds: only its packages of those names are matched again."""
    by_name = sorted(
        {spelling for platform, name in names for spelling in _spellings(platform, name)}
    )
    dirty: set[tuple[int, str]] = set()
    for start in range(0, len(by_name), NAMES_PER_SCAN):
        chunk = by_name[start : start + NAMES_PER_SCAN]
        wanted = set(chunk)
        for asset_id, name, source_name in session.execute(
            select(PackageRow.asset_id, PackageRow.name, PackageRow.source_name)
            .distinct()
            .where(
                PackageRow.removed_at.is_(None),
                or_(PackageRow.source_name.in_(chunk), PackageRow.name.in_(chunk)),
            )
        ):
            dirty.update((asset_id, n) for n in (name, source_name) if n in wanted)
    _insert_missing(session, AssetDirtyName, [{"asset_id": a, "name": n} for a, n in sorted(dirty)])
    ids = sorted({a for a, _ in dirty})
    for start in range(0, len(ids), CHUNK):
        session.execute(
            update(Asset)
            .where(Asset.id.in_(ids[start : start + CHUNK]))
            .values(names_dirty=True)
            .execution_options(synchronize_session=False)
        )
    return len(ids)


def mark_assets_for_vulnerabilities(session: Session, ids: Iterable[str]) -> None:
    """Re-score the assets with findings of these vulnerabilities (KEV, EPSS, NVD changed)."""
    wanted = sorted(set(ids))
    if len(wanted) > 5000:  # an EPSS day touches every CVE: cheaper to re-score all
        mark_all_for_rescore(session)
        return
    for start in range(0, len(wanted), CHUNK):
        session.execute(
            update(Asset)
            .where(
                Asset.id.in_(
                    select(Finding.asset_id).where(
                        Finding.vulnerability_id.in_(wanted[start : start + CHUNK])
                    )
                )
            )
            .values(scores_dirty=True)
            .execution_options(synchronize_session=False)
        )


def mark_all_assets(session: Session) -> None:
    """Match every asset again (e.g. on request, after a matching fix)."""
    session.execute(
        update(Asset).values(findings_dirty=True).execution_options(synchronize_session=False)
    )


def mark_all_for_new_weights(session: Session) -> None:
    """Re-score every asset's findings and patches: the risk weights changed (a
    patch's own weights among them, which change no finding's score)."""
    session.execute(
        update(Asset)
        .values(scores_dirty=True, patches_dirty=True)
        .execution_options(synchronize_session=False)
    )


def mark_all_for_rescore(session: Session) -> None:
    """Re-score every asset's findings (an SLA policy changed, or a feed touched
    most vulnerabilities' scores; risk weights: mark_all_for_new_weights)."""
    session.execute(
        update(Asset).values(scores_dirty=True).execution_options(synchronize_session=False)
    )


def findings_waiting() -> Any:
    """Assets whose findings wait for recomputation: any of their three marks."""
    return or_(
        Asset.findings_dirty.is_(True), Asset.names_dirty.is_(True), Asset.scores_dirty.is_(True)
    )


def claim_assets(session: Session, size: int, condition: Any, *columns: Any) -> list[Any]:
    """Up to `size` assets that meet `condition`, in id order, locked until the
    transaction ends; those another worker or server process holds are skipped,
    so that they share the work without colliding."""
    query = select(*columns).where(condition).order_by(Asset.id).limit(size)
    return list(session.execute(query.with_for_update(skip_locked=True)).all())


def recompute_dirty(
    factory: sessionmaker[Session], limit: int | None = None, batch: int = 50, workers: int = 1
) -> RecomputeResult:
    """Recompute every dirty asset (or `limit` of them), `batch` per transaction.

    On PostgreSQL `workers` threads share the run, each with its own connection:
    while one waits for the server to take its rows, another matches. SQLite has
    one writer at a time, so there the run keeps to one."""
    run = _RecomputeRun(limit, batch)
    with factory() as session:
        sqlite = session.get_bind().dialect.name == "sqlite"
    if workers <= 1 or sqlite:
        run.work(factory)
        return run.total
    with ThreadPoolExecutor(workers, thread_name_prefix="recompute") as pool:
        for done in [pool.submit(run.work, factory) for _ in range(workers)]:
            done.result()
    return run.total


MAX_RUN_MEMO = 300_000  # entries (a few hundred bytes each) before a run's memo starts over


@dataclass
class _RecomputeRun:
    """What the workers of one recomputation run share."""

    limit: int | None
    batch: int
    # One instant for the run (the server's upkeep runs 2,000 assets at most, well
    # under a minute): due dates and encoded rows memoise across all of its assets.
    now: datetime = field(default_factory=utcnow)
    run_memo: dict[Any, Any] = field(default_factory=dict)
    total: RecomputeResult = field(default_factory=RecomputeResult)
    scoring: ScoringContext | None = None  # loaded once: its memos serve the whole run
    claimed: int = 0
    recorded_names: set[PackageName] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _next_batch_size(self) -> int:
        with self.lock:
            size = self.batch if self.limit is None else min(self.batch, self.limit - self.claimed)
            self.claimed += max(size, 0)
            return size

    def _scoring(self, session: Session) -> ScoringContext:
        with self.lock:
            if self.scoring is None:
                self.scoring = ScoringContext.load(session)
                self.scoring.vulnerabilities = INDEX_CACHE.vulnerabilities
                self.scoring.risks = INDEX_CACHE.risks(self.scoring.weights)
                self.scoring.dues = INDEX_CACHE.dues
            return self.scoring

    def work(self, factory: sessionmaker[Session]) -> None:
        while (size := self._next_batch_size()) > 0:
            with transaction(factory) as session:
                index = INDEX_CACHE.get(session)
                cache = INDEX_CACHE.matches
                scoring = self._scoring(session)
                claimed = claim_assets(
                    session,
                    size,
                    findings_waiting(),
                    Asset.id,
                    Asset.findings_dirty,
                    Asset.names_dirty,
                    Asset.scores_dirty,
                )
                if not claimed:
                    return
                # Fewer than asked for: no other asset was dirty and unclaimed, so
                # this is the last batch (later changes wait for the next run).
                last = len(claimed) < size
                names: set[PackageName] = set()
                for asset_id, full, by_name, rescore in claimed:
                    one = _recompute_one(
                        session,
                        asset_id,
                        (full, by_name, rescore),
                        names,
                        index,
                        now=self.now,
                        cache=cache,
                        scoring=scoring,
                        run_memo=self.run_memo,
                    )
                    with self.lock:
                        # Bounded: a mature fleet's findings carry many first-seen
                        # times, and scores memoise per time.
                        if len(self.run_memo) > MAX_RUN_MEMO:
                            self.run_memo.clear()
                        if len(scoring.dues) > MAX_RUN_MEMO:
                            scoring.dues.clear()
                        for name in dataclasses.fields(RecomputeResult):
                            setattr(
                                self.total,
                                name.name,
                                getattr(self.total, name.name) + getattr(one, name.name),
                            )
                with self.lock:
                    names -= self.recorded_names
                    self.recorded_names |= names
                record_package_names(session, names)
                exceptions.cover_recomputed(session, [asset_id for asset_id, *_ in claimed])
            if last:
                return


def _recompute_one(
    session: Session,
    asset_id: int,
    marks: tuple[bool, bool, bool],
    names: set[PackageName] | None,
    index: AdvisoryIndex,
    **shared: Any,
) -> RecomputeResult:
    """What the asset's marks (findings, names, scores dirty) ask for: a full
    match (its inventory changed, or new scores are due as well), its packages of
    some names matched again, or new scores only."""
    full, by_name, rescore = marks
    if full or (by_name and rescore):
        return recompute_asset(session, asset_id, index, names=names, **shared)
    if by_name:
        return rematch_names(session, asset_id, index, names=names, **shared)
    return rescore_asset(session, asset_id, index, **shared)


def ensure_fresh(factory: sessionmaker[Session], asset_id: int) -> None:
    """Recompute an asset's findings first if its inventory, the feeds or what
    findings are scored from changed."""
    with transaction(factory) as session:
        # Locked, as a recomputation run's claim locks it: a run at work on this
        # asset finishes first, and its marks are then read as it left them.
        asset = session.get(Asset, asset_id, with_for_update=True)
        if asset is None:
            raise NotFound(f"asset {asset_id} not found")
        if asset.findings_dirty or asset.names_dirty or asset.scores_dirty:
            marks = (asset.findings_dirty, asset.names_dirty, asset.scores_dirty)
            _recompute_one(session, asset_id, marks, None, INDEX_CACHE.get(session))
            exceptions.cover_recomputed(session, [asset_id])


# --- queries -----------------------------------------------------------------------


@dataclass(frozen=True)
class FindingFilter:
    asset_id: int | None = None
    vulnerability_id: str | None = None
    package: str | None = None
    status: str | None = "open"
    min_risk: float | None = None

    def __post_init__(self) -> None:
        if self.vulnerability_id is not None:  # cve-2021-4034 finds CVE-2021-4034
            canonical = canonical_vulnerability_id(self.vulnerability_id)
            object.__setattr__(self, "vulnerability_id", canonical)


def list_findings(
    session: Session, flt: FindingFilter, limit: int = 1000, offset: int = 0
) -> list[tuple[Finding, AssetContext, str]]:
    """Findings with their asset's scoring context and hostname, highest risk
    first (ties: by asset, then by finding)."""
    fleet_wide = flt.asset_id is None and flt.vulnerability_id is None
    if fleet_wide and flt.package is not None:
        ids = _package_ids(session, flt, limit + offset)[offset:]
        query = _finding_query(Finding.id.in_(ids)) if ids else None
    elif fleet_wide and flt.status == "open" and limit + offset <= TOP_OPEN_DEPTH:
        ids = _top_open_ids(session, flt, limit + offset)[offset:]
        query = _finding_query(Finding.id.in_(ids)) if ids else None
    else:
        query = _finding_query(*_conditions(flt)).limit(limit).offset(offset)
    if query is None:
        return []
    return [
        (f, AssetContext(f.asset_id, criticality, exposed, sensitivity), hostname)
        for f, criticality, exposed, sensitivity, hostname in session.execute(
            query.order_by(Finding.risk_score.desc(), Finding.asset_id, Finding.id)
        )
    ]


def _finding_query(*conditions: Any) -> Any:
    return (
        select(
            Finding,
            Asset.criticality,
            Asset.internet_facing,
            Asset.data_sensitivity,
            Asset.hostname,
        )
        .join(Asset, Asset.id == Finding.asset_id)
        .where(*conditions)
    )


def _conditions(flt: FindingFilter) -> list[Any]:
    conditions: list[Any] = []
    if flt.asset_id is not None:
        conditions.append(Finding.asset_id == flt.asset_id)
    if flt.vulnerability_id is not None:
        conditions.append(Finding.vulnerability_id == flt.vulnerability_id)
    if flt.package is not None:
        conditions.append(
            or_(
                Finding.package_name == flt.package,
                Finding.source_name.in_(_package_sources(flt.package)),
            )
        )
    if flt.status is not None:
        conditions.append(Finding.status == flt.status)
    if flt.min_risk is not None:
        conditions.append(Finding.risk_score >= flt.min_risk)
    return conditions


def _package_sources(name: str) -> list[str]:
    """The source names whose findings a by-package question for `name` lists: a
    kernel's include those of its signed images (their wrapper source)."""
    return sorted({name} | signed_kernel_sources(name))


def _package_ids(session: Session, flt: FindingFilter, wanted: int) -> list[int]:
    """The ids of the first `wanted` findings of a package across the fleet, in
    list order. The name is resolved to the package names that carry it (itself,
    or the binaries of a source), and assets' findings of those names are read by
    the findings' identity index (asset, ecosystem, name): no finding of another
    package is read."""
    assert flt.package is not None
    carriers = session.execute(
        select(FindingPackageName.ecosystem, FindingPackageName.package_name).where(
            or_(
                FindingPackageName.package_name == flt.package,
                FindingPackageName.source_name.in_(_package_sources(flt.package)),
            )
        )
    ).all()
    if not carriers:
        return []
    narrowing = (
        Finding.ecosystem.in_(sorted({e for e, _ in carriers})),
        Finding.package_name.in_(sorted({n for _, n in carriers})),
    )
    # A risk bound covers an asset's unfixed findings only: with fixed ones in the
    # list, every asset is read.
    bounded = flt.status in OPEN_STATES
    return _ranked_ids(session, flt, wanted, narrowing, PACKAGE_FIRST_READ, bounded)


# How deep the fleet's open findings are read asset by asset; a page beyond it
# (an export walking every finding) is sorted by the database instead.
TOP_OPEN_DEPTH = 20_000
TOP_OPEN_FIRST_READ = 8  # assets in the first query: usually enough, later ones grow
PACKAGE_FIRST_READ = CHUNK  # a package's findings are sparser: read more assets at once


def _top_open_ids(session: Session, flt: FindingFilter, wanted: int) -> list[int]:
    """The ids of the fleet's `wanted` highest open risks that pass `flt`, in order."""
    return _ranked_ids(session, flt, wanted, (), TOP_OPEN_FIRST_READ, bounded=True)


def _ranked_ids(
    session: Session,
    flt: FindingFilter,
    wanted: int,
    narrowing: Sequence[Any],
    first_read: int,
    bounded: bool,
) -> list[int]:
    """The ids of the first `wanted` findings (by risk, asset, id) that pass `flt`
    and `narrowing`, read a few assets at a time (`first_read`, then doubling).
    When `bounded`, assets are read in the order of their risk bound until no
    asset left can hold a finding that would make the list; otherwise all are."""
    assets = select(Asset.id, Asset.finding_risk_bound)
    if bounded:
        assets = assets.order_by(Asset.finding_risk_bound.desc(), Asset.id)
        if flt.min_risk is not None:
            assets = assets.where(Asset.finding_risk_bound >= flt.min_risk)
    else:
        assets = assets.order_by(Asset.id)
    best: list[tuple[float, int, int]] = []  # (-risk, asset id, finding id), sorted
    chunk: list[int] = []
    size = first_read

    def take(asset_ids: list[int]) -> list[tuple[float, int, int]]:
        conditions = [*_conditions(flt), *narrowing, Finding.asset_id.in_(asset_ids)]
        if len(best) == wanted:
            conditions.append(Finding.risk_score >= -best[-1][0])
        rows = session.execute(
            select(Finding.risk_score, Finding.asset_id, Finding.id)
            .where(*conditions)
            .order_by(Finding.risk_score.desc(), Finding.asset_id, Finding.id)
            .limit(wanted)
        )
        return sorted(best + [(-risk, asset_id, id_) for risk, asset_id, id_ in rows])[:wanted]

    for asset_id, bound in session.execute(assets).all():
        # Assets come in (bound descending, id) order: once the next one's bound
        # sorts after the last finding kept, so do all of its findings and the rest.
        if bounded and len(best) == wanted and (-bound, asset_id) > best[-1][:2]:
            break
        chunk.append(asset_id)
        if len(chunk) >= size:
            best, chunk, size = take(chunk), [], min(size * 2, CHUNK)
    if chunk:
        best = take(chunk)
    return [id_ for _, _, id_ in best]


def finding_view(
    finding: Finding,
    context: AssetContext,
    hostname: str,
    info: VulnerabilityInfo | None,
    scoring: ScoringContext,
    now: datetime,
) -> dict[str, Any]:
    """A finding as people see it, with the risk components and SLA rule
    recomputed from today's inputs (they match the stored score and due date
    whenever the finding is up to date)."""
    vuln = info or VulnerabilityInfo(finding.vulnerability_id)
    risk = scoring.risk(vuln, context)
    due = scoring.due(vuln, context, finding.first_seen_at)
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
        "fixed_reason": finding.fixed_reason,
        "risk": finding.risk_score,
        "risk_components": [c.as_dict() for c in risk.components],
        "due_at": finding.due_at,
        "sla_rule": due.rule,
        "sla_status": sla_status(due, now, finding.fixed_at) if finding.due_at else None,
        "severity": vuln.severity,
        "cvss": vuln.cvss_score,
        "epss": vuln.epss,
        "kev": vuln.kev,
    }


def finding_views(
    session: Session, rows: list[tuple[Finding, AssetContext, str]]
) -> list[dict[str, Any]]:
    scoring = ScoringContext.load(session)
    info = vulnerability_info(session, [f.vulnerability_id for f, _, _ in rows])
    now = utcnow()
    return [finding_view(f, c, h, info.get(f.vulnerability_id), scoring, now) for f, c, h in rows]


def vulnerability_detail(session: Session, vulnerability_id: str) -> dict[str, Any]:
    """A vulnerability with its scores, the advisories that name it, and how many
    assets have it open."""
    vulnerability_id = canonical_vulnerability_id(vulnerability_id)
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
    stored = session.get(Vulnerability, vulnerability_id)
    if not advisories and stored is None and not info.kev and info.epss is None:
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
        # Every CVSS metric NVD lists; cvss_score/cvss_vector are the one preferred.
        "cvss_metrics": stored.cvss_metrics if stored is not None else [],
    }
