"""Inventory ingestion: full reports, deltas, and agentless (SSH) collections.

The current inventory of an asset is its open package intervals; a report
closes the intervals of packages that went and opens intervals for packages
that came, in one transaction with the asset's facts and sequence numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from patchwarden.domain.inventory import AgentReport, Facts, InstalledPackage, describe_changes
from patchwarden.errors import Conflict, FullReportRequired, PermissionDenied
from patchwarden.storage.bulk import insert_packages
from patchwarden.storage.tables import Agent, Asset, InventoryReport, PackageEvent, utcnow
from patchwarden.storage.tables import InstalledPackage as PackageRow

# SQL parameter lists are chunked to stay under SQLite's variable limit.
CHUNK = 500


@dataclass(frozen=True)
class IngestResult:
    asset_id: int
    report_id: int | None  # None for a delta that changed nothing (a plain check-in)
    kind: str
    package_count: int
    added: int
    removed: int
    changed: int


def ingest_agent_report(
    session: Session, agent: Agent, report: AgentReport, now: datetime | None = None
) -> IngestResult:
    now = now or utcnow()
    if report.asset_id != agent.asset_id:
        raise PermissionDenied(
            f"this agent reports for asset {agent.asset_id}, not asset {report.asset_id}"
        )
    asset = _lock_asset(session, agent.asset_id)
    if report.seq <= asset.last_report_seq:
        raise Conflict(
            f"report seq {report.seq} is not newer than the last one received "
            f"({asset.last_report_seq}): replayed or out-of-order report refused"
        )
    if report.kind == "delta" and report.base_seq != asset.inventory_seq:
        raise FullReportRequired(
            f"delta is based on report {report.base_seq} but the server holds "
            f"{asset.inventory_seq}; send a full report"
        )
    asset.last_report_seq = report.seq
    agent.last_seen_at = now
    if report.agent_version and agent.agent_version != report.agent_version:
        agent.agent_version = report.agent_version
    if report.kind == "full":
        result = _apply_full(session, asset, report.packages, now, "agent", agent.id, report.seq)
    else:
        result = _apply_delta(session, asset, report, now, agent.id)
    asset.inventory_seq = report.seq
    _apply_facts(asset, report.facts, report.collector_notes, now)
    return result


def ingest_collected_inventory(
    session: Session,
    asset_id: int,
    packages: Sequence[InstalledPackage],
    facts: Facts,
    collector_notes: list[dict[str, str]] | None,
    source: str,
    now: datetime | None = None,
) -> IngestResult:
    """Store an inventory collected without an agent (SSH): always a full one."""
    now = now or utcnow()
    asset = _lock_asset(session, asset_id)
    result = _apply_full(session, asset, packages, now, source, None, None)
    _apply_facts(asset, facts, collector_notes, now)
    return result


def _lock_asset(session: Session, asset_id: int) -> Asset:
    # Row lock on PostgreSQL so two reports for one asset apply one after the
    # other; SQLite's BEGIN IMMEDIATE already serialises writers.
    asset = session.execute(
        select(Asset).where(Asset.id == asset_id).with_for_update()
    ).scalar_one_or_none()
    if asset is None:
        raise PermissionDenied(f"asset {asset_id} no longer exists; re-enrol the agent")
    return asset


def _current_packages(
    session: Session, asset_id: int, names: Iterable[str] | None = None
) -> dict[tuple[str, str, str, str], tuple[int, InstalledPackage]]:
    columns = (
        PackageRow.id,
        PackageRow.ecosystem,
        PackageRow.name,
        PackageRow.version,
        PackageRow.arch,
        PackageRow.source_name,
        PackageRow.source_version,
        PackageRow.status,
    )
    base = select(*columns).where(PackageRow.asset_id == asset_id, PackageRow.removed_at.is_(None))
    if names is None:
        rows: list[Any] = list(session.execute(base))
    else:
        wanted = sorted(set(names))
        rows = []
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            rows.extend(session.execute(base.where(PackageRow.name.in_(chunk))))
    current = {}
    for row_id, eco, name, version, arch, source_name, source_version, status in rows:
        package = InstalledPackage(eco, name, version, arch, source_name, source_version, status)
        current[package.key] = (row_id, package)
    return current


def _apply_full(
    session: Session,
    asset: Asset,
    packages: Sequence[InstalledPackage],
    now: datetime,
    source: str,
    agent_id: int | None,
    seq: int | None,
) -> IngestResult:
    current = _current_packages(session, asset.id)
    reported = {p.key: p for p in packages}
    removed = [(row_id, old) for key, (row_id, old) in current.items() if reported.get(key) != old]
    added = [p for key, p in reported.items() if key not in current or current[key][1] != p]
    # The very first inventory is the asset's baseline, not a set of installs.
    baseline = asset.inventory_seq == 0 and not current and asset.package_count == 0
    return _write_changes(
        session,
        asset,
        removed,
        added,
        now,
        source,
        "full",
        agent_id,
        seq,
        package_count=len(reported),
        record_events=not baseline,
    )


def _apply_delta(
    session: Session, asset: Asset, report: AgentReport, now: datetime, agent_id: int
) -> IngestResult:
    if not report.added and not report.removed:
        # The common case: a check-in with nothing new. No rows are written
        # but the asset's sequence numbers and last-seen time.
        return IngestResult(asset.id, None, "delta", asset.package_count, 0, 0, 0)
    touched = {p.name for p in report.removed} | {p.name for p in report.added}
    current = _current_packages(session, asset.id, touched) if touched else {}
    removed: list[tuple[int, InstalledPackage]] = []
    for package in report.removed:
        held = current.pop(package.key, None)
        if held is None:
            raise FullReportRequired(
                f"delta removes {package.name} {package.version} which the server does not hold; "
                "send a full report"
            )
        removed.append(held)
    for package in report.added:
        if package.key in current:
            raise FullReportRequired(
                f"delta adds {package.name} {package.version} which the server already holds; "
                "send a full report"
            )
    count = asset.package_count - len(removed) + len(report.added)
    return _write_changes(
        session,
        asset,
        removed,
        list(report.added),
        now,
        "agent",
        "delta",
        agent_id,
        report.seq,
        package_count=count,
        record_events=True,
    )


def _write_changes(
    session: Session,
    asset: Asset,
    removed: list[tuple[int, InstalledPackage]],
    added: list[InstalledPackage],
    now: datetime,
    source: str,
    kind: str,
    agent_id: int | None,
    seq: int | None,
    *,
    package_count: int,
    record_events: bool,
) -> IngestResult:
    removed_ids = [row_id for row_id, _ in removed]
    for start in range(0, len(removed_ids), CHUNK):
        session.execute(
            update(PackageRow)
            .where(PackageRow.id.in_(removed_ids[start : start + CHUNK]))
            .values(removed_at=now)
            .execution_options(synchronize_session=False)
        )
    insert_packages(session, asset.id, added, now)
    if record_events:
        changes = describe_changes([p for _, p in removed], added) if (removed or added) else []
        tally = {
            action: sum(c.action == action for c in changes)
            for action in ("installed", "removed", "changed")
        }
    else:  # a baseline: everything is simply present, nothing happened
        changes = []
        tally = {"installed": len(added), "removed": len(removed), "changed": 0}
    report_id = session.execute(
        insert(InventoryReport)
        .values(
            asset_id=asset.id,
            agent_id=agent_id,
            source=source,
            kind=kind,
            seq=seq,
            received_at=now,
            package_count=package_count,
            added=tally["installed"],
            removed=tally["removed"],
            changed=tally["changed"],
        )
        .returning(InventoryReport.id)
    ).scalar_one()
    if changes:
        session.execute(
            insert(PackageEvent),
            [
                {
                    "asset_id": asset.id,
                    "report_id": report_id,
                    "at": now,
                    "action": c.action,
                    "ecosystem": c.ecosystem,
                    "name": c.name,
                    "arch": c.arch,
                    "old_version": c.old_version,
                    "new_version": c.new_version,
                }
                for c in changes
            ],
        )
    asset.package_count = package_count
    if removed or added:
        asset.findings_dirty = True
    return IngestResult(
        asset.id,
        report_id,
        kind,
        package_count,
        added=tally["installed"],
        removed=tally["removed"],
        changed=tally["changed"],
    )


_FACT_COLUMNS = {f.name for f in fields(Facts)} - {"ip_addresses", "firmware"}


def _apply_facts(
    asset: Asset, facts: Facts, notes: list[dict[str, str]] | None, now: datetime
) -> None:
    for name in _FACT_COLUMNS:
        value = getattr(facts, name)
        if value is not None and getattr(asset, name) != value:
            setattr(asset, name, value)
            if name in ("os_id", "os_version_id"):  # another platform's advisories apply
                asset.findings_dirty = True
    if facts.ip_addresses is not None and asset.ip_addresses != list(facts.ip_addresses):
        asset.ip_addresses = list(facts.ip_addresses)
    if facts.firmware is not None and asset.firmware != facts.firmware:
        asset.firmware = dict(facts.firmware)
        for key, column in (
            ("system_vendor", "vendor"),
            ("system_product", "model"),
            ("system_serial", "serial"),
            ("bios_version", "firmware_version"),
        ):
            value = facts.firmware.get(key)
            if isinstance(value, str) and value:
                setattr(asset, column, value[:128])
    if notes is not None and asset.collector_notes != notes:
        asset.collector_notes = notes
    asset.last_seen_at = now
    if asset.status != "active":
        asset.status = "active"


def mark_stale_assets(session: Session, stale_after: timedelta, now: datetime | None = None) -> int:
    """Mark assets whose agent or SSH collection missed its check-ins; returns how many."""
    now = now or utcnow()
    result = session.execute(
        update(Asset)
        .where(
            Asset.status == "active",
            Asset.source.in_(("agent", "ssh")),
            Asset.last_seen_at < now - stale_after,
        )
        .values(status="stale")
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
