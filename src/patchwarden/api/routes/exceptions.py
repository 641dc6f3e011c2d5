"""Exceptions (risk acceptances) and the compliance figures they affect."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, Field, StringConstraints

from patchwarden.api.deps import ApprovalsDecider, DbDep, InventoryReader
from patchwarden.domain.report_schema import Strict
from patchwarden.services import exceptions

router = APIRouter(tags=["exceptions"])


class ExceptionIn(Strict):
    scope: Literal["finding", "patch", "asset"]
    target_id: int = Field(ge=1, description="The finding's, patch's or asset's id")
    justification: Annotated[str, StringConstraints(max_length=8000)] = Field(
        description="Why the risk is accepted: 10-4000 characters"
    )
    expires_at: datetime = Field(
        description="ISO 8601 with a UTC offset, in the future and at most 365 days ahead"
    )


class RevokeIn(Strict):
    reason: Annotated[str, StringConstraints(max_length=4000)] = ""


class ExceptionOut(BaseModel):
    id: int
    scope: str
    target_id: int
    justification: str
    approved_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    state: Literal["active", "expired", "revoked"]


class ComplianceOut(BaseModel):
    """Open and overdue findings leave excepted ones out; those are counted apart."""

    assets: int
    assets_compliant: int
    open_findings: int
    overdue_findings: int
    excepted_findings: int
    fixed_findings: int
    active_exceptions: int
    recently_expired_exceptions: list[ExceptionOut]
    scopes: list[str]


@router.get("/exceptions", response_model=list[ExceptionOut])
def list_exceptions(
    _: InventoryReader,
    database: DbDep,
    state: Literal["active", "expired", "revoked"] | None = None,
) -> list[ExceptionOut]:
    with database.reading() as session:
        return [ExceptionOut(**view) for view in exceptions.list_acceptances(session, state)]


@router.post("/exceptions", response_model=ExceptionOut, status_code=status.HTTP_201_CREATED)
def add_exception(body: ExceptionIn, principal: ApprovalsDecider, database: DbDep) -> ExceptionOut:
    """Accept a risk until `expires_at`: the findings it covers become "excepted"."""
    with database.transaction() as session:
        view = exceptions.add(
            session,
            principal.actor,
            body.scope,
            body.target_id,
            body.justification,
            body.expires_at,
        )
    return ExceptionOut(**view)


@router.post("/exceptions/{acceptance_id}/revoke", response_model=ExceptionOut)
def revoke_exception(
    acceptance_id: int, principal: ApprovalsDecider, database: DbDep, body: RevokeIn | None = None
) -> ExceptionOut:
    """End an exception now: the findings it covered reopen."""
    reason = "" if body is None else body.reason
    with database.transaction() as session:
        return ExceptionOut(**exceptions.revoke(session, principal.actor, acceptance_id, reason))


@router.get("/compliance", response_model=ComplianceOut)
def get_compliance(_: InventoryReader, database: DbDep) -> ComplianceOut:
    with database.reading() as session:
        return ComplianceOut(**exceptions.compliance(session))
