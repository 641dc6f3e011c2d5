"""Maintenance windows and blackouts of groups and assets: stored, audited,
and asked "when may work start next?". The arithmetic is rollouts.windows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from patchwarden.rollouts.windows import (
    Schedule,
    next_openings,
    parse_blackout,
    parse_schedule,
    parse_window,
)
from patchwarden.services import audit, groups
from patchwarden.services.assets import get_asset
from patchwarden.storage.tables import MaintenanceScheduleRow, utcnow

Scope = Literal["group", "asset"]
MAX_OPENINGS_SHOWN = 100


def _target_id(session: Session, scope: Scope, ref: int | str) -> int:
    if scope == "group":
        return groups.get(session, ref).id
    return get_asset(session, int(ref)).id


def _row(session: Session, scope: Scope, target_id: int) -> MaintenanceScheduleRow | None:
    return session.execute(
        select(MaintenanceScheduleRow).where(
            MaintenanceScheduleRow.scope == scope, MaintenanceScheduleRow.target_id == target_id
        )
    ).scalar_one_or_none()


def get_schedule(session: Session, scope: Scope, target_id: int) -> Schedule | None:
    row = _row(session, scope, target_id)
    return None if row is None else parse_schedule(row.schedule)


def schedules(session: Session, scope: Scope) -> dict[int, Schedule]:
    """Every stored schedule of one scope, by target id."""
    rows = session.execute(
        select(MaintenanceScheduleRow.target_id, MaintenanceScheduleRow.schedule).where(
            MaintenanceScheduleRow.scope == scope
        )
    )
    return {target_id: parse_schedule(data) for target_id, data in rows}


def show(session: Session, scope: Scope, ref: int | str) -> dict[str, Any]:
    target_id = _target_id(session, scope, ref)
    schedule = get_schedule(session, scope, target_id) or Schedule()
    return {"scope": scope, "target_id": target_id, **schedule.as_dict()}


def _store(
    session: Session, actor: str, scope: Scope, target_id: int, schedule: Schedule, action: str
) -> dict[str, Any]:
    row = _row(session, scope, target_id)
    data = schedule.as_dict()
    if row is None:
        row = MaintenanceScheduleRow(
            scope=scope, target_id=target_id, schedule=data, updated_by=actor
        )
        session.add(row)
    else:
        row.schedule, row.updated_by, row.updated_at = data, actor, utcnow()
    session.flush()
    audit.record(session, actor, action, f"{scope}_schedule", target_id, data)
    return {"scope": scope, "target_id": target_id, **data}


def add_window(
    session: Session, actor: str, scope: Scope, ref: int | str, window: dict[str, Any]
) -> dict[str, Any]:
    """Add a maintenance window ({"rrule" | "cron", "duration_minutes", "timezone"})."""
    target_id = _target_id(session, scope, ref)
    current = get_schedule(session, scope, target_id) or Schedule()
    updated = Schedule((*current.windows, parse_window(window)), current.blackouts)
    return _store(session, actor, scope, target_id, updated, "windows.add")


def add_blackout(
    session: Session, actor: str, scope: Scope, ref: int | str, blackout: dict[str, Any]
) -> dict[str, Any]:
    """Add a blackout (absolute start/end or recurring), which overrides windows."""
    target_id = _target_id(session, scope, ref)
    current = get_schedule(session, scope, target_id) or Schedule()
    updated = Schedule(current.windows, (*current.blackouts, parse_blackout(blackout)))
    return _store(session, actor, scope, target_id, updated, "windows.blackout")


def clear(session: Session, actor: str, scope: Scope, ref: int | str) -> dict[str, Any]:
    """Remove every window and blackout: work may then start at any time."""
    target_id = _target_id(session, scope, ref)
    return _store(session, actor, scope, target_id, Schedule(), "windows.clear")


def upcoming(
    session: Session, scope: Scope, ref: int | str, count: int = 5, after: datetime | None = None
) -> list[dict[str, str | None]]:
    """The next openings, each in UTC and in its window's local time."""
    count = max(1, min(count, MAX_OPENINGS_SHOWN))
    target_id = _target_id(session, scope, ref)
    schedule = get_schedule(session, scope, target_id) or Schedule()
    return [interval.as_dict() for interval in next_openings(schedule, after or utcnow(), count)]
