"""Available patches: for each asset, the updates its repositories offer, with
the findings each closes and their risk.

A patch is one package at one target version and arch (approvals attach to
it, so one approval covers every asset it goes to); asset_patches says which
assets it applies to. Recomputed for assets marked `patches_dirty` (inventory,
findings or repositories changed) by the upkeep loop, `patchwarden patches
recompute`, and before an asset's patches are read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from patchwarden import versions
from patchwarden.domain.advisories import platform_of_os
from patchwarden.errors import InvalidInput, NotFound
from patchwarden.policy.reboot import needs_reboot
from patchwarden.prioritize.risk import RiskScore, RiskWeights, patch_risk
from patchwarden.repos.updates import AvailableUpdate
from patchwarden.services import findings, groups, priorities, repositories
from patchwarden.services.findings import current_packages
from patchwarden.services.repositories import ECOSYSTEM_OF_KIND, Scope
from patchwarden.storage.db import transaction
from patchwarden.storage.tables import Asset, AssetPatch, Finding, Patch, utcnow

CHUNK = 500
# Inventory ecosystems (deb, rpm, apk) are also the names of their version schemes.
CLASSIFICATIONS = ("security", "bugfix", "enhancement", "unclassified")


@dataclass
class PatchRecompute:
    assets: int = 0
    available: int = 0
    opened: int = 0
    resolved: int = 0


def _scopes_for(
    session: Session, asset: Asset, scopes: Sequence[Scope], memberships: dict[int, set[int]]
) -> dict[str, tuple[int, ...]]:
    """Repository ids serving the asset, by ecosystem."""
    platform = platform_of_os(asset.os_id, asset.os_version_id)
    serving: dict[str, list[int]] = {}
    for scope in scopes:
        # A platform filter names a release ("debian:12") or a family ("debian").
        if scope.platform is not None and not _platform_matches(scope.platform, platform):
            continue
        if scope.group_id is not None:
            members = memberships.get(scope.group_id)
            if members is None:
                members = memberships[scope.group_id] = set(groups.members(session, scope.group_id))
            if asset.id not in members:
                continue
        serving.setdefault(ECOSYSTEM_OF_KIND[scope.kind], []).append(scope.id)
    return {ecosystem: tuple(ids) for ecosystem, ids in serving.items()}


def _platform_matches(wanted: str, platform: str | None) -> bool:
    if platform is None:
        return False
    return platform == wanted or (":" not in wanted and platform.startswith(wanted + ":"))


def recompute_asset(
    session: Session,
    asset_id: int,
    now: datetime | None = None,
    memberships: dict[int, set[int]] | None = None,
    patch_ids: dict[tuple[str, str, str, str], int] | None = None,
    weights: RiskWeights | None = None,
) -> PatchRecompute:
    now = now or utcnow()
    weights = weights or priorities.risk_weights(session)
    memberships = {} if memberships is None else memberships
    patch_ids = {} if patch_ids is None else patch_ids
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise NotFound(f"asset {asset_id} not found")
    serving = _scopes_for(session, asset, repositories.INDEX_CACHE.scopes(session), memberships)
    packages = current_packages(session, asset_id) if serving else []
    updates: list[tuple[str, AvailableUpdate]] = []
    for ecosystem, repository_ids in serving.items():
        index = repositories.INDEX_CACHE.index(session, repository_ids)
        mine = [p for p in packages if p.ecosystem == ecosystem]
        updates.extend((ecosystem, u) for u in index.updates_for(mine))
    closes = _closed_findings(session, asset_id, updates)
    # Core reads and bulk writes: an asset has a couple of hundred patches.
    rows = session.connection().execute(
        select(
            AssetPatch.id,
            AssetPatch.patch_id,
            AssetPatch.status,
            AssetPatch.installed_version,
            AssetPatch.closes,
            AssetPatch.risk_score,
        ).where(AssetPatch.asset_id == asset_id)
    )
    existing = {
        patch_id: (row_id, status, installed_version, list(vulns), risk)
        for row_id, patch_id, status, installed_version, vulns, risk in rows
    }
    result = PatchRecompute(assets=1, available=len(updates))
    inserts: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    current: set[int] = set()
    for ecosystem, found in updates:
        patch_id = _patch_id(session, ecosystem, found, now, patch_ids)
        current.add(patch_id)
        vulns, scores = closes.get((found.name, found.arch, found.target_version), ([], []))
        risk = _patch_risk(scores, weights).score
        known = existing.get(patch_id)
        if known is None:
            inserts.append(
                {
                    "asset_id": asset_id,
                    "patch_id": patch_id,
                    "installed_version": found.installed_version,
                    "status": "available",
                    "closes": vulns,
                    "risk_score": risk,
                    "first_seen_at": now,
                    "resolved_at": None,
                }
            )
            continue
        row_id, status, installed_version, old_vulns, old_risk = known
        desired = ("available", found.installed_version, vulns, risk)
        if (status, installed_version, old_vulns, old_risk) != desired:
            changes.append(
                {
                    "id": row_id,
                    "status": "available",
                    "resolved_at": None,
                    "installed_version": found.installed_version,
                    "closes": vulns,
                    "risk_score": risk,
                }
            )
    installed = {(p.ecosystem, p.name, p.arch): p.version for p in packages}
    for patch_id, (row_id, status, *_) in existing.items():
        if patch_id in current or status != "available":
            continue
        patch = session.get(Patch, patch_id)
        assert patch is not None
        now_installed = installed.get((patch.ecosystem, patch.package_name, patch.arch))
        applied = _at_least(patch, now_installed)
        changes.append(
            {"id": row_id, "status": "applied" if applied else "superseded", "resolved_at": now}
        )
        result.resolved += 1
    if inserts:
        session.connection().execute(insert(AssetPatch), inserts)
    if changes:
        session.execute(update(AssetPatch), changes)
    result.opened = len(inserts)
    asset.patches_dirty = False
    session.flush()
    return result


def _at_least(patch: Patch, installed: str | None) -> bool:
    if installed is None:
        return False
    try:
        return versions.compare(patch.ecosystem, installed, patch.target_version) >= 0
    except versions.InvalidVersion:
        return False


def _patch_id(
    session: Session,
    ecosystem: str,
    found: AvailableUpdate,
    now: datetime,
    patch_ids: dict[tuple[str, str, str, str], int],
) -> int:
    key = (ecosystem, found.name, found.target_arch, found.target_version)
    known = patch_ids.get(key)
    if known is not None:
        return known
    patch = session.execute(
        select(Patch).where(
            Patch.ecosystem == ecosystem,
            Patch.package_name == found.name,
            Patch.arch == found.target_arch,
            Patch.target_version == found.target_version,
        )
    ).scalar_one_or_none()
    facts = {
        "classification": found.classification,
        "severity": found.severity,
        "released_at": found.release_date,
        "notice_ids": list(found.notice_ids),
        "cve_ids": list(found.cve_ids),
        "repositories": list(found.repositories),
        "reboot_required": needs_reboot(found.name, ecosystem),
    }
    if patch is None:
        patch = Patch(
            ecosystem=ecosystem,
            package_name=found.name,
            arch=found.target_arch,
            target_version=found.target_version,
            first_seen_at=now,
            updated_at=now,
            **facts,
        )
        session.add(patch)
        session.flush()
    elif any(getattr(patch, k) != v for k, v in facts.items()):
        for k, v in facts.items():
            setattr(patch, k, v)
        patch.updated_at = now
    patch_ids[key] = patch.id
    return patch.id


def _patch_risk(finding_scores: Sequence[float], weights: RiskWeights) -> RiskScore:
    """The risk a patch removes on one asset, from the risks of the findings it closes."""
    return patch_risk([RiskScore(score, ()) for score in finding_scores], weights)


def _closed_findings(
    session: Session, asset_id: int, updates: Sequence[tuple[str, AvailableUpdate]]
) -> dict[tuple[str, str, str], tuple[list[str], list[float]]]:
    """(package, arch, target) -> (vulnerabilities of open findings the target
    fixes, their risks)."""
    if not updates:
        return {}
    wanted = {(u.name, u.arch): (ecosystem, u) for ecosystem, u in updates}
    out: dict[tuple[str, str, str], tuple[list[str], list[float]]] = {}
    rows = session.connection().execute(
        select(
            Finding.package_name,
            Finding.package_arch,
            Finding.vulnerability_id,
            Finding.fixed_version,
            Finding.risk_score,
        ).where(
            Finding.asset_id == asset_id,
            Finding.status.in_(("open", "excepted")),
            Finding.fixed_version.is_not(None),
        )
    )
    for name, arch, vulnerability_id, fixed, risk in rows:
        assert fixed is not None  # the query keeps findings with a fix
        hit = wanted.get((name, arch))
        if hit is None:
            continue
        ecosystem, found = hit
        try:
            fixes = versions.compare(ecosystem, fixed, found.target_version) <= 0
        except versions.InvalidVersion:
            fixes = False
        if fixes:
            vulns, risks = out.setdefault((found.name, found.arch, found.target_version), ([], []))
            vulns.append(vulnerability_id)
            risks.append(risk)
    return {k: (sorted(v), r) for k, (v, r) in out.items()}


def recompute_dirty(
    factory: sessionmaker[Session], limit: int | None = None, batch: int = 50
) -> PatchRecompute:
    total = PatchRecompute()
    patch_ids: dict[tuple[str, str, str, str], int] = {}
    while limit is None or total.assets < limit:
        with transaction(factory) as session:
            # Findings first: a patch's facts are those of the findings it closes.
            waiting = and_(Asset.patches_dirty.is_(True), ~findings.findings_waiting())
            ids = [row.id for row in findings.claim_assets(session, batch, waiting, Asset.id)]
            if not ids:
                break
            now = utcnow()
            memberships: dict[int, set[int]] = {}
            weights = priorities.risk_weights(session)
            for asset_id in ids:
                one = recompute_asset(session, asset_id, now, memberships, patch_ids, weights)
                total.assets += 1
                total.available += one.available
                total.opened += one.opened
                total.resolved += one.resolved
    return total


def ensure_fresh(factory: sessionmaker[Session], asset_id: int) -> None:
    findings.ensure_fresh(factory, asset_id)  # findings first: patches read them
    with transaction(factory) as session:
        # Locked, as a run's claim locks it (see findings.ensure_fresh).
        asset = session.get(Asset, asset_id, with_for_update=True)
        if asset is None:
            raise NotFound(f"asset {asset_id} not found")
        if asset.patches_dirty:
            recompute_asset(session, asset_id)


# --- queries --------------------------------------------------------------------------


@dataclass(frozen=True)
class PatchFilter:
    asset_id: int | None = None
    group: groups.GroupRef | None = None
    classification: str | None = None
    package: str | None = None
    status: str | None = "available"


def list_patches(
    session: Session, flt: PatchFilter, limit: int = 1000, offset: int = 0
) -> list[dict[str, Any]]:
    """Patches per asset (asset, package, installed and target version …), highest risk first."""
    if flt.classification is not None and flt.classification not in CLASSIFICATIONS:
        raise InvalidInput(
            f"unknown classification {flt.classification!r}: expected one of "
            + ", ".join(CLASSIFICATIONS)
        )
    query = (
        select(AssetPatch, Patch, Asset.hostname)
        .join(Patch, Patch.id == AssetPatch.patch_id)
        .join(Asset, Asset.id == AssetPatch.asset_id)
    )
    if flt.asset_id is not None:
        if session.get(Asset, flt.asset_id) is None:
            raise NotFound(f"asset {flt.asset_id} not found")
        query = query.where(AssetPatch.asset_id == flt.asset_id)
    if flt.group is not None:
        members = groups.members(session, groups.get(session, flt.group))
        query = query.where(AssetPatch.asset_id.in_(members))
    if flt.classification is not None:
        query = query.where(Patch.classification == flt.classification)
    if flt.package is not None:
        query = query.where(Patch.package_name == flt.package)
    if flt.status is not None:
        query = query.where(AssetPatch.status == flt.status)
    query = (
        query.order_by(AssetPatch.risk_score.desc(), Patch.package_name, AssetPatch.asset_id)
        .limit(limit)
        .offset(offset)
    )
    rows = session.execute(query).all()
    risks = _explained_risks(session, [(ap, patch) for ap, patch, _ in rows])
    return [
        _row(asset_patch, patch, hostname, risks.get(asset_patch.id))
        for asset_patch, patch, hostname in rows
    ]


def _explained_risks(
    session: Session, asset_patches: Sequence[tuple[AssetPatch, Patch]]
) -> dict[int, RiskScore]:
    """The risk of each pending asset patch with its components, recomputed from
    the findings it closes as they stand (as a finding's explanation is)."""
    pending = [(ap, patch) for ap, patch in asset_patches if ap.status == "available"]
    if not pending:
        return {}
    asset_ids = sorted({ap.asset_id for ap, _ in pending})
    names = sorted({patch.package_name for _, patch in pending})
    risk_of: dict[tuple[int, str, str, str], float] = {}
    for start in range(0, len(asset_ids), CHUNK):
        risk_of.update(
            ((asset_id, name, arch, vulnerability_id), risk)
            for asset_id, name, arch, vulnerability_id, risk in session.execute(
                select(
                    Finding.asset_id,
                    Finding.package_name,
                    Finding.package_arch,
                    Finding.vulnerability_id,
                    Finding.risk_score,
                ).where(
                    Finding.asset_id.in_(asset_ids[start : start + CHUNK]),
                    Finding.package_name.in_(names),
                    Finding.status.in_(("open", "excepted")),
                )
            )
        )
    weights = priorities.risk_weights(session)
    explained = {}
    for ap, patch in pending:
        keys = ((ap.asset_id, patch.package_name, patch.arch, v) for v in ap.closes)
        scores = [risk_of[key] for key in keys if key in risk_of]
        explained[ap.id] = _patch_risk(scores, weights)
    return explained


def _row(
    asset_patch: AssetPatch, patch: Patch, hostname: str, risk: RiskScore | None
) -> dict[str, Any]:
    return {
        "id": patch.id,
        "asset_id": asset_patch.asset_id,
        "hostname": hostname,
        "package": patch.package_name,
        "arch": patch.arch,
        "installed_version": asset_patch.installed_version,
        "target_version": patch.target_version,
        "classification": patch.classification,
        "severity": patch.severity,
        "released_at": patch.released_at.isoformat() if patch.released_at else None,
        "reboot_required": patch.reboot_required,
        "closes": list(asset_patch.closes),
        "risk_score": asset_patch.risk_score,
        "risk": None if risk is None else risk.as_dict(),
        "notice_ids": list(patch.notice_ids),
        "cve_ids": list(patch.cve_ids),
        "repositories": list(patch.repositories),
        "status": asset_patch.status,
        "first_seen_at": asset_patch.first_seen_at.isoformat(),
        "resolved_at": asset_patch.resolved_at.isoformat() if asset_patch.resolved_at else None,
    }


def get_patch(session: Session, patch_id: int) -> Patch:
    patch = session.get(Patch, patch_id)
    if patch is None:
        raise NotFound(f"patch {patch_id} not found")
    return patch


def patch_summary(session: Session, patch: Patch) -> dict[str, Any]:
    """A patch with the assets it applies to and what it fixes there."""
    rows = session.execute(
        select(AssetPatch, Asset.hostname)
        .join(Asset, Asset.id == AssetPatch.asset_id)
        .where(AssetPatch.patch_id == patch.id)
        .order_by(AssetPatch.risk_score.desc(), Asset.hostname)
    ).all()
    pending = [(ap, h) for ap, h in rows if ap.status == "available"]
    closes = sorted({v for ap, _ in pending for v in ap.closes})
    risks = _explained_risks(session, [(ap, patch) for ap, _ in pending])
    return {
        "id": patch.id,
        "ecosystem": patch.ecosystem,
        "package": patch.package_name,
        "arch": patch.arch,
        "target_version": patch.target_version,
        "classification": patch.classification,
        "severity": patch.severity,
        "released_at": patch.released_at.isoformat() if patch.released_at else None,
        "reboot_required": patch.reboot_required,
        "notice_ids": list(patch.notice_ids),
        "cve_ids": list(patch.cve_ids),
        "repositories": list(patch.repositories),
        "risk_score": max((ap.risk_score for ap, _ in pending), default=0.0),
        "closes": closes,
        "assets": [
            {
                "asset_id": ap.asset_id,
                "hostname": h,
                "installed_version": ap.installed_version,
                "status": ap.status,
                "risk_score": ap.risk_score,
                "risk": risks[ap.id].as_dict() if ap.id in risks else None,
                "closes": list(ap.closes),
            }
            for ap, h in rows
        ],
    }


def mark_dirty(session: Session, asset_ids: Sequence[int]) -> None:
    for start in range(0, len(asset_ids), CHUNK):
        session.execute(
            update(Asset)
            .where(Asset.id.in_(asset_ids[start : start + CHUNK]))
            .values(patches_dirty=True)
            .execution_options(synchronize_session=False)
        )
