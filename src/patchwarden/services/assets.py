"""Reading assets and their inventory (now or at any moment), and editing the
business attributes people own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from patchwarden.domain.attributes import REQUIRED_ATTRIBUTES, AssetAttributes
from patchwarden.errors import InvalidInput, NotFound
from patchwarden.services import audit
from patchwarden.storage.tables import (
    Agent,
    Asset,
    InventoryReport,
    PackageEvent,
    SshTarget,
    utcnow,
)
from patchwarden.storage.tables import InstalledPackage as PackageRow

# Attributes that feed findings' risk scores.
# Attributes that feed findings' scores, directly or through dynamic groups' SLA policies.
RISK_ATTRIBUTES = frozenset(
    {
        "criticality",
        "internet_facing",
        "data_sensitivity",
        "tags",
        "environment",
        "owner",
        "business_service",
        "region",
        "device_type",
    }
)

SUMMARY_FIELDS = (
    "id",
    "hostname",
    "source",
    "device_type",
    "status",
    "os_id",
    "os_version_id",
    "os_pretty_name",
    "kernel",
    "arch",
    "criticality",
    "environment",
    "owner",
    "tags",
    "internet_facing",
    "package_count",
    "last_seen_at",
)
DETAIL_FIELDS = (
    *SUMMARY_FIELDS,
    "fqdn",
    "machine_id",
    "os_name",
    "os_codename",
    "os_release",
    "boot_time",
    "reboot_required",
    "ip_addresses",
    "virtualization",
    "cloud_provider",
    "firmware",
    "vendor",
    "model",
    "serial",
    "firmware_version",
    "business_service",
    "region",
    "timezone",
    "data_sensitivity",
    "collector_notes",
    "inventory_seq",
    "created_at",
    "updated_at",
)


def _os_label(asset: Asset) -> str | None:
    if asset.os_pretty_name:
        return asset.os_pretty_name
    if asset.os_id:
        return f"{asset.os_id} {asset.os_version_id or ''}".strip()
    return None


def asset_summary(asset: Asset) -> dict[str, Any]:
    data = {name: getattr(asset, name) for name in SUMMARY_FIELDS}
    data["os"] = _os_label(asset)
    return data


def asset_detail(session: Session, asset: Asset) -> dict[str, Any]:
    data = {name: getattr(asset, name) for name in DETAIL_FIELDS}
    data["os"] = _os_label(asset)
    agent = session.execute(
        select(Agent).where(Agent.asset_id == asset.id).order_by(Agent.id.desc()).limit(1)
    ).scalar_one_or_none()
    data["agent"] = (
        None
        if agent is None
        else {
            "id": agent.id,
            "version": agent.agent_version,
            "revoked": agent.revoked_at is not None,
            "last_seen_at": agent.last_seen_at,
        }
    )
    target = session.execute(
        select(SshTarget).where(SshTarget.asset_id == asset.id)
    ).scalar_one_or_none()
    data["ssh"] = (
        None
        if target is None
        else {
            "host": target.host,
            "port": target.port,
            "username": target.username,
            "host_key_fingerprint": target.host_key_fingerprint,
            "last_collected_at": target.last_collected_at,
            "last_error": target.last_error,
        }
    )
    return data


def get_asset(session: Session, asset_id: int) -> Asset:
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise NotFound(f"asset {asset_id} not found")
    return asset


@dataclass(frozen=True)
class AssetFilter:
    search: str | None = None  # substring of hostname
    status: str | None = None
    os_id: str | None = None
    environment: str | None = None
    tag: str | None = None
    source: str | None = None
    ids: tuple[int, ...] | None = None


def list_assets(
    session: Session, flt: AssetFilter | None = None, limit: int = 1000, offset: int = 0
) -> tuple[list[Asset], int]:
    flt = flt or AssetFilter()
    query = select(Asset)
    conditions = []
    if flt.search:
        conditions.append(func.lower(Asset.hostname).contains(flt.search.lower(), autoescape=True))
    for column, value in (
        (Asset.status, flt.status),
        (Asset.os_id, flt.os_id),
        (Asset.environment, flt.environment),
        (Asset.source, flt.source),
    ):
        if value is not None:
            conditions.append(column == value)
    if flt.ids is not None:
        conditions.append(Asset.id.in_(flt.ids))
    if conditions:
        query = query.where(and_(*conditions))
    assets = list(session.execute(query.order_by(Asset.id)).scalars())
    if flt.tag:  # tags are a JSON list: filtered here, portable across databases
        assets = [a for a in assets if flt.tag in (a.tags or [])]
    return assets[offset : offset + limit], len(assets)


def packages_of(
    session: Session, asset_id: int, at: datetime | None = None, name: str | None = None
) -> list[PackageRow]:
    """The asset's packages now, or as they were at `at`."""
    get_asset(session, asset_id)
    query = select(PackageRow).where(PackageRow.asset_id == asset_id)
    if at is None:
        query = query.where(PackageRow.removed_at.is_(None))
    else:
        query = query.where(
            PackageRow.installed_at <= at,
            or_(PackageRow.removed_at.is_(None), PackageRow.removed_at > at),
        )
    if name:
        query = query.where(PackageRow.name == name)
    return list(session.execute(query.order_by(PackageRow.name, PackageRow.arch)).scalars())


def package_events(
    session: Session,
    asset_id: int,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 1000,
) -> list[PackageEvent]:
    get_asset(session, asset_id)
    query = select(PackageEvent).where(PackageEvent.asset_id == asset_id)
    if since is not None:
        query = query.where(PackageEvent.at >= since)
    if until is not None:
        query = query.where(PackageEvent.at < until)
    query = query.order_by(PackageEvent.at.desc(), PackageEvent.id.desc()).limit(limit)
    return list(session.execute(query).scalars())


def reports_of(session: Session, asset_id: int, limit: int = 100) -> list[InventoryReport]:
    get_asset(session, asset_id)
    query = (
        select(InventoryReport)
        .where(InventoryReport.asset_id == asset_id)
        .order_by(InventoryReport.id.desc())
        .limit(limit)
    )
    return list(session.execute(query).scalars())


def update_attributes(
    session: Session, actor: str, asset_id: int, attributes: AssetAttributes
) -> Asset:
    asset = get_asset(session, asset_id)
    changes = attributes.changes()
    cleared = [
        name for name, value in changes.items() if value is None and name in REQUIRED_ATTRIBUTES
    ]
    if cleared:
        raise InvalidInput(f"these attributes cannot be cleared: {', '.join(sorted(cleared))}")
    before = {name: getattr(asset, name) for name in changes}
    real = {name: value for name, value in changes.items() if before[name] != value}
    for name, value in real.items():
        setattr(asset, name, value)
    if real.keys() & RISK_ATTRIBUTES:
        asset.scores_dirty = True  # risk scores depend on these
    if real:
        asset.updated_at = utcnow()
        audit.record(
            session,
            actor,
            "asset.update",
            "asset",
            asset.id,
            {name: {"from": before[name], "to": value} for name, value in real.items()},
        )
    session.flush()
    return asset


def delete_asset(session: Session, actor: str, asset_id: int) -> None:
    """Forget an asset and its history (decommissioned machine)."""
    asset = get_asset(session, asset_id)
    hostname = asset.hostname
    for table in (PackageEvent, InventoryReport, PackageRow):
        session.execute(delete(table).where(table.asset_id == asset_id))
    session.delete(asset)
    audit.record(session, actor, "asset.delete", "asset", asset_id, {"hostname": hostname})
