"""The audit log: append-only and tamper-evident through a hash chain.

Each event's hash covers its content and the previous event's hash, so editing
or deleting any stored event breaks `verify_chain` from that point on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from patchwarden.storage.tables import AuditEvent, utcnow

GENESIS_HASH = "0" * 64
# Arbitrary constant: the PostgreSQL advisory lock that serialises chain appends
# across server processes (SQLite serialises writers by itself).
AUDIT_LOCK_KEY = 0x5057_4155


def _event_hash(
    prev_hash: str,
    at: datetime,
    actor: str,
    action: str,
    target_type: str,
    target_id: str | None,
    details: dict[str, Any],
) -> str:
    body = json.dumps(
        [prev_hash, at.isoformat(), actor, action, target_type, target_id, details],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def record(
    session: Session,
    actor: str,
    action: str,
    target_type: str,
    target_id: str | int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an audit event inside the caller's transaction."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})
    last = session.execute(
        select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).scalar_one_or_none()
    prev_hash = last or GENESIS_HASH
    at = utcnow()
    # Round-trip through JSON so the hash is computed over exactly what is stored.
    clean_details: dict[str, Any] = json.loads(json.dumps(details or {}, default=str))
    target = None if target_id is None else str(target_id)
    event = AuditEvent(
        at=at,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target,
        details=clean_details,
        prev_hash=prev_hash,
        hash=_event_hash(prev_hash, at, actor, action, target_type, target, clean_details),
    )
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    events_checked: int
    first_bad_id: int | None = None
    reason: str | None = None


def verify_chain(session: Session) -> ChainCheck:
    prev_hash = GENESIS_HASH
    count = 0
    for event in _events_in_order(session):
        expected = _event_hash(
            prev_hash,
            event.at,
            event.actor,
            event.action,
            event.target_type,
            event.target_id,
            event.details,
        )
        if event.prev_hash != prev_hash:
            return ChainCheck(False, count, event.id, "previous-hash link broken (event removed?)")
        if event.hash != expected:
            return ChainCheck(False, count, event.id, "content does not match its hash (edited?)")
        prev_hash = event.hash
        count += 1
    return ChainCheck(True, count)


def _events_in_order(session: Session) -> Iterator[AuditEvent]:
    yield from session.execute(
        select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=1000)
    ).scalars()


def list_events(
    session: Session,
    *,
    action: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    limit: int = 500,
) -> list[AuditEvent]:
    """Newest first."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    for column, value in (
        (AuditEvent.action, action),
        (AuditEvent.target_type, target_type),
        (AuditEvent.target_id, target_id),
    ):
        if value is not None:
            query = query.where(column == value)
    return list(session.execute(query).scalars())
