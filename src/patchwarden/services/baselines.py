"""Baselines: per group, the desired or minimum version of chosen packages
(optionally per OS release), the drift report of assets that deviate, and the
fleet's version sprawl."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patchwarden.domain.advisories import platform_of_os
from patchwarden.errors import Conflict, InvalidInput, NotFound
from patchwarden.policy.baselines import AssetPackages, BaselineEntry, drift
from patchwarden.policy.errors import InvalidPolicy
from patchwarden.services import audit, groups
from patchwarden.storage.tables import Asset, Baseline
from patchwarden.storage.tables import InstalledPackage as PackageRow

CHUNK = 500


def set_entry(
    session: Session,
    actor: str,
    group: groups.GroupRef,
    package: str,
    version: str,
    mode: str,
    os_release: str | None = None,
) -> dict[str, Any]:
    view = groups.get(session, group)
    entry = BaselineEntry(package, version, mode, os_release)  # type: ignore[arg-type]
    if entry.os_release is not None and len(entry.os_release) > 64:  # the column's width
        raise InvalidPolicy(f"baseline {entry.package}: os_release must be at most 64 characters")
    row = session.execute(
        select(Baseline).where(
            Baseline.group_id == view.id,
            Baseline.package == entry.package,
            Baseline.os_release.is_(None)
            if entry.os_release is None
            else Baseline.os_release == entry.os_release,
        )
    ).scalar_one_or_none()
    before = None if row is None else _view(session, row)
    if row is None:
        row = Baseline(
            group_id=view.id, package=entry.package, os_release=entry.os_release, created_by=actor
        )
        session.add(row)
    row.version, row.mode = entry.version, entry.mode
    session.flush()
    after = _view(session, row)
    audit.record(
        session, actor, "baseline.set", "baseline", str(row.id), {"from": before, "to": after}
    )
    return after


def remove_entry(session: Session, actor: str, baseline_id: int) -> None:
    row = session.get(Baseline, baseline_id)
    if row is None:
        raise NotFound(f"baseline entry {baseline_id} not found")
    gone = _view(session, row)
    session.delete(row)
    audit.record(session, actor, "baseline.remove", "baseline", str(baseline_id), gone)


def list_entries(session: Session, group: groups.GroupRef | None = None) -> list[dict[str, Any]]:
    query = select(Baseline).order_by(Baseline.group_id, Baseline.package, Baseline.os_release)
    if group is not None:
        query = query.where(Baseline.group_id == groups.get(session, group).id)
    return [_view(session, r) for r in session.execute(query).scalars()]


def _view(session: Session, row: Baseline) -> dict[str, Any]:
    return {
        "id": row.id,
        "group": groups.get(session, row.group_id).name,
        "package": row.package,
        "version": row.version,
        "mode": row.mode,
        "os_release": row.os_release,
    }


def _entries(session: Session, group_id: int) -> list[BaselineEntry]:
    return [
        BaselineEntry(r.package, r.version, r.mode, r.os_release)  # type: ignore[arg-type]
        for r in session.execute(select(Baseline).where(Baseline.group_id == group_id)).scalars()
    ]


def drift_report(
    session: Session, group: groups.GroupRef, include_ok: bool = False
) -> list[dict[str, Any]]:
    """Every member asset that deviates from the group's baseline."""
    view = groups.get(session, group)
    entries = _entries(session, view.id)
    if not entries:
        raise Conflict(f"group {view.name} has no baseline entries")
    names = sorted({e.package for e in entries})
    member_ids = groups.members(session, view)
    assets: list[AssetPackages] = []
    for start in range(0, len(member_ids), CHUNK):
        chunk = member_ids[start : start + CHUNK]
        installed: dict[int, dict[str, list[str]]] = {i: {} for i in chunk}
        for asset_id, name, version in session.execute(
            select(PackageRow.asset_id, PackageRow.name, PackageRow.version).where(
                PackageRow.asset_id.in_(chunk),
                PackageRow.removed_at.is_(None),
                PackageRow.name.in_(names),
            )
        ):
            installed[asset_id].setdefault(name, []).append(version)
        for asset in session.execute(select(Asset).where(Asset.id.in_(chunk))).scalars():
            assets.append(
                AssetPackages(
                    asset.id,
                    asset.hostname,
                    platform_of_os(asset.os_id, asset.os_version_id),
                    installed[asset.id],
                )
            )
    return [dict(row.__dict__) for row in drift(assets, entries, include_ok=include_ok)]


def version_sprawl(
    session: Session,
    group: groups.GroupRef | None = None,
    limit: int = 50,
    package: str | None = None,
) -> list[dict[str, Any]]:
    """How many versions of each package run in the fleet (or a group), and on
    how many assets each: the packages with most versions first."""
    if not 1 <= limit <= 10_000:
        raise InvalidInput("limit must be between 1 and 10000")
    current = PackageRow.removed_at.is_(None)
    scope: list[Any] = [current]
    if group is not None:
        scope.append(PackageRow.asset_id.in_(groups.members(session, groups.get(session, group))))
    if package is not None:
        scope.append(PackageRow.name == package)
    top = session.execute(
        select(PackageRow.name, func.count(func.distinct(PackageRow.version)).label("versions"))
        .where(*scope)
        .group_by(PackageRow.name)
        .order_by(func.count(func.distinct(PackageRow.version)).desc(), PackageRow.name)
        .limit(limit)
    ).all()
    names = [name for name, _ in top]
    per_version: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    if names:
        for name, version, assets in session.execute(
            select(
                PackageRow.name, PackageRow.version, func.count(func.distinct(PackageRow.asset_id))
            )
            .where(*scope, PackageRow.name.in_(names))
            .group_by(PackageRow.name, PackageRow.version)
            .order_by(PackageRow.name, func.count(func.distinct(PackageRow.asset_id)).desc())
        ):
            per_version[name].append({"version": version, "assets": assets})
    return [
        {
            "package": name,
            "versions": count,
            "assets": sum(v["assets"] for v in per_version[name]),
            "by_version": per_version[name],
        }
        for name, count in top
    ]
