"""Approvals: manual decisions on patches, the four-eyes setting, and the
groups' auto-approval rules."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, Field, StringConstraints

from patchwarden.api.deps import (
    ApprovalsDecider,
    ApprovalsRequester,
    DbDep,
    InventoryReader,
    PolicyManager,
)
from patchwarden.api.routes.patches import ApprovalOut
from patchwarden.domain.report_schema import Strict
from patchwarden.domain.roles import Permission, role_has
from patchwarden.services import approvals

router = APIRouter(tags=["approvals"])

GroupRef = Annotated[str, Path(max_length=100, description="The group's name or id")]
Pattern = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Name = Annotated[str, StringConstraints(max_length=200)]


class ApprovalActionIn(Strict):
    action: Literal["request", "approve", "decline", "lift", "revoke"]
    comment: Annotated[str, StringConstraints(max_length=8000)] | None = Field(
        default=None, description="Required to decline or revoke; at most 4000 characters"
    )


class FourEyesIn(Strict):
    enabled: bool


class FourEyesOut(BaseModel):
    enabled: bool


class RuleIn(Strict):
    """An auto-approval rule; criteria left out are not checked."""

    name: Name
    classifications: list[Name] = Field(default_factory=list, max_length=10)
    min_severity: Name | None = None
    min_cvss: float | None = None
    kev_only: bool = False
    include: list[Pattern] = Field(default_factory=list, max_length=500)
    exclude: list[Pattern] = Field(default_factory=list, max_length=500)
    days_after_release: int | None = None
    timezone: Annotated[str, StringConstraints(max_length=64)] = "UTC"
    enabled: bool = True


class RuleOut(BaseModel):
    id: int
    group: str
    position: int
    name: str
    classifications: list[str]
    min_severity: str | None
    min_cvss: float | None
    kev_only: bool
    include: list[str]
    exclude: list[str]
    days_after_release: int | None
    timezone: str
    enabled: bool
    created_by: str


@router.get("/approvals", response_model=list[ApprovalOut])
def list_approvals(
    _: InventoryReader,
    database: DbDep,
    state: Literal["pending", "approved", "declined"] | None = None,
) -> list[ApprovalOut]:
    with database.reading() as session:
        return [ApprovalOut(**view) for view in approvals.list_approvals(session, state)]


@router.post("/patches/{patch_id}/approval", response_model=ApprovalOut)
def act_on_patch(
    patch_id: int, body: ApprovalActionIn, principal: ApprovalsRequester, database: DbDep
) -> ApprovalOut:
    """Request, approve, decline, lift or revoke. Anyone who may request does;
    the other actions take an approver (403 approver_required), and with
    four-eyes on nobody approves their own request (403 four_eyes_violation)."""
    actor = approvals.Actor(principal.actor, role_has(principal.role, Permission.APPROVALS_DECIDE))
    with database.transaction() as session:
        return ApprovalOut(**approvals.act(session, actor, patch_id, body.action, body.comment))


@router.get("/policy/four-eyes", response_model=FourEyesOut)
def get_four_eyes(_: InventoryReader, database: DbDep) -> FourEyesOut:
    with database.reading() as session:
        return FourEyesOut(enabled=approvals.four_eyes(session))


@router.put("/policy/four-eyes", response_model=FourEyesOut)
def put_four_eyes(body: FourEyesIn, principal: PolicyManager, database: DbDep) -> FourEyesOut:
    with database.transaction() as session:
        approvals.set_four_eyes(session, principal.actor, body.enabled)
        return FourEyesOut(enabled=approvals.four_eyes(session))


@router.get("/groups/{ref}/rules", response_model=list[RuleOut])
def list_rules(ref: GroupRef, _: InventoryReader, database: DbDep) -> list[RuleOut]:
    """The group's rules in the order they are evaluated."""
    with database.reading() as session:
        return [RuleOut(**rule) for rule in approvals.list_rules(session, ref)]


@router.post("/groups/{ref}/rules", response_model=RuleOut, status_code=status.HTTP_201_CREATED)
def add_rule(ref: GroupRef, body: RuleIn, principal: ApprovalsDecider, database: DbDep) -> RuleOut:
    """Add a rule after the group's others; its patches are decided again at once."""
    definition: dict[str, Any] = body.model_dump(exclude_unset=True)
    with database.transaction() as session:
        return RuleOut(**approvals.add_rule(session, principal.actor, ref, definition))


@router.delete("/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_rule(rule_id: int, principal: ApprovalsDecider, database: DbDep) -> None:
    with database.transaction() as session:
        approvals.remove_rule(session, principal.actor, rule_id)
