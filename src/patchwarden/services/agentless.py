"""Agentless assets: inventory collected over SSH with the agent's own collectors.

The network work happens outside any database transaction; what comes back is
validated exactly like an agent's report before anything is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.agentless.ssh import KnownHostKey, SshTarget, collect_over_ssh, parse_destination
from patchwarden.domain.inventory import Facts, InstalledPackage
from patchwarden.domain.report_schema import CollectorNoteIn, FactsIn, PackageList, to_package
from patchwarden.errors import Conflict, HostKeyMismatch, InvalidInput, NotFound
from patchwarden.services import audit, ingest
from patchwarden.storage.db import transaction
from patchwarden.storage.tables import Asset, utcnow
from patchwarden.storage.tables import SshTarget as SshTargetRow


@dataclass(frozen=True)
class SshCollection:
    asset_id: int
    hostname: str
    host_key_fingerprint: str
    first_use: bool
    package_count: int
    added: int
    removed: int
    changed: int


def _validated(
    inventory: Mapping[str, Any],
) -> tuple[list[InstalledPackage], Facts, list[dict[str, str]]]:
    try:
        packages = [
            to_package(p) for p in PackageList.validate_python(inventory.get("packages", []))
        ]
        facts = FactsIn.model_validate(inventory.get("facts", {})).domain()
        notes = [
            CollectorNoteIn.model_validate(n).model_dump()
            for n in inventory.get("collector_notes", [])
        ]
    except ValidationError as exc:
        raise InvalidInput(
            f"the remote host returned invalid inventory data: {exc.errors()[0]}"
        ) from None
    return packages, facts, notes


def add_ssh_asset(
    factory: sessionmaker[Session], actor: str, destination: str, port: int, key_path: str | None
) -> SshCollection:
    target = parse_destination(destination, port, key_path)
    with transaction(factory) as session:
        existing = session.execute(
            select(SshTargetRow.asset_id).where(
                SshTargetRow.host == target.host,
                SshTargetRow.port == target.port,
                SshTargetRow.username == target.username,
            )
        ).scalar_one_or_none()
    if existing is not None:
        raise Conflict(
            f"{destination}:{port} is already asset {existing}; use 'assets collect {existing}'"
        )
    inventory, key = collect_over_ssh(target, None)
    packages, facts, notes = _validated(inventory)
    with transaction(factory) as session:
        asset = Asset(hostname=facts.hostname or target.host, source="ssh", last_seen_at=utcnow())
        session.add(asset)
        session.flush()
        session.add(
            SshTargetRow(
                asset_id=asset.id,
                host=target.host,
                port=target.port,
                username=target.username,
                key_path=str(target.key_path) if target.key_path else None,
                host_key_type=key.key_type,
                host_key=key.key_base64,
                host_key_fingerprint=key.fingerprint_sha256,
                last_collected_at=utcnow(),
            )
        )
        result = ingest.ingest_collected_inventory(session, asset.id, packages, facts, notes, "ssh")
        audit.record(
            session,
            actor,
            "asset.ssh_add",
            "asset",
            asset.id,
            {
                "destination": f"{target.username}@{target.host}:{target.port}",
                "host_key_fingerprint": key.fingerprint_sha256,
                "trusted_on_first_use": True,
            },
        )
        return SshCollection(
            asset.id,
            asset.hostname,
            key.fingerprint_sha256,
            True,
            result.package_count,
            result.added,
            result.removed,
            result.changed,
        )


def collect_asset(factory: sessionmaker[Session], actor: str, asset_id: int) -> SshCollection:
    with transaction(factory) as session:
        row = session.execute(
            select(SshTargetRow).where(SshTargetRow.asset_id == asset_id)
        ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"asset {asset_id} is not an agentless (SSH) asset")
        target = SshTarget(
            host=row.host,
            port=row.port,
            username=row.username,
            key_path=Path(row.key_path) if row.key_path else None,
        )
        known = KnownHostKey(row.host_key_type, row.host_key, row.host_key_fingerprint)
    try:
        inventory, _ = collect_over_ssh(target, known)
    except HostKeyMismatch as exc:
        with transaction(factory) as session:
            _record_failure(session, asset_id, str(exc))
            audit.record(
                session,
                actor,
                "asset.ssh_host_key_mismatch",
                "asset",
                asset_id,
                {"trusted_fingerprint": known.fingerprint_sha256, "error": str(exc)},
            )
        raise
    packages, facts, notes = _validated(inventory)
    with transaction(factory) as session:
        result = ingest.ingest_collected_inventory(session, asset_id, packages, facts, notes, "ssh")
        row = session.execute(
            select(SshTargetRow).where(SshTargetRow.asset_id == asset_id)
        ).scalar_one()
        row.last_collected_at = utcnow()
        row.last_error = None
        asset = session.get(Asset, asset_id)
        hostname = asset.hostname if asset else target.host
    return SshCollection(
        asset_id,
        hostname,
        known.fingerprint_sha256,
        False,
        result.package_count,
        result.added,
        result.removed,
        result.changed,
    )


def _record_failure(session: Session, asset_id: int, message: str) -> None:
    row = session.execute(
        select(SshTargetRow).where(SshTargetRow.asset_id == asset_id)
    ).scalar_one_or_none()
    if row is not None:
        row.last_error = message[:2000]
