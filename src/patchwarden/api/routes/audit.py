"""The audit log (read-only) and its integrity check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from patchwarden.api.deps import AuditReader, DbDep
from patchwarden.api.schemas import AuditEventOut, AuditVerifyOut
from patchwarden.services import audit

router = APIRouter(prefix="/audit-events", tags=["audit"])


@router.get("", response_model=list[AuditEventOut])
def list_events(
    _: AuditReader,
    database: DbDep,
    action: Annotated[str | None, Query(max_length=64)] = None,
    target_type: Annotated[str | None, Query(max_length=32)] = None,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> list[AuditEventOut]:
    with database.transaction() as session:
        events = audit.list_events(
            session, action=action, target_type=target_type, target_id=target_id, limit=limit
        )
        return [AuditEventOut.model_validate(e) for e in events]


@router.get("/verify", response_model=AuditVerifyOut)
def verify(_: AuditReader, database: DbDep) -> AuditVerifyOut:
    """Recompute the hash chain: any edited or deleted event is found."""
    with database.transaction() as session:
        check = audit.verify_chain(session)
    return AuditVerifyOut(
        ok=check.ok,
        events_checked=check.events_checked,
        first_bad_id=check.first_bad_id,
        reason=check.reason,
    )
