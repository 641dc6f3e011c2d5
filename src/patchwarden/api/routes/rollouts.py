"""Rollouts (create, start, pause, resume, abort, roll back, sign off,
emergency approval, show) and the maintenance windows of groups and assets."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, Field, StringConstraints

from patchwarden.api.deps import ApprovalsDecider, DbDep, InventoryReader, RolloutsManager
from patchwarden.domain.report_schema import Strict
from patchwarden.domain.roles import Permission, role_has
from patchwarden.services import rollouts, windows
from patchwarden.services.approvals import Actor

router = APIRouter(tags=["rollouts"])

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
RingName = Annotated[str, Path(max_length=64, description="The ring's name")]
GroupRef = Annotated[str, Path(max_length=100, description="The group's name or id")]
LimitText = Annotated[str, StringConstraints(max_length=8)]


class RingIn(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    group: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    max_concurrency: LimitText = "10%"
    max_errors: LimitText = "0"
    soak_seconds: int = Field(default=0, ge=0)
    min_success_percent: float = Field(default=100.0, ge=0, le=100)
    require_signoff: bool = False
    schedule: dict[str, Any] | None = Field(
        default=None, description="Own windows and blackouts; null takes the group's"
    )
    order_groups: list[Name] = Field(default_factory=list, max_length=20)
    site_limit: int | None = Field(default=None, ge=1)


class RolloutIn(Strict):
    name: Name
    patch_ids: list[int] = Field(min_length=1, max_length=500)
    rings: list[RingIn] = Field(min_length=1, max_length=20)
    job_options: dict[str, Any] = Field(
        default_factory=dict,
        description="reboot, pre_checks, fs_snapshot, pre_hook, post_hook, smoke_tests, "
        "retry, timeout (see the agent protocol)",
    )
    job_timeout_seconds: int = 3600
    emergency: bool = False
    emergency_reason: Annotated[str, StringConstraints(max_length=2000)] = ""


class RolloutCreatedOut(BaseModel):
    id: int


class RolloutSummaryOut(BaseModel):
    id: int
    name: str
    state: str
    emergency: bool
    emergency_approved_by: str | None
    halt_reason: str
    patch_ids: list[int]
    skipped_assets: list[dict[str, Any]]
    created_by: str
    created_at: str | None
    started_at: str | None
    finished_at: str | None


class JobOut(BaseModel):
    job_id: int
    asset_id: int
    hostname: str
    action: str
    state: str
    attempt: int
    targets: list[dict[str, Any]]
    remove: list[str]
    order_key: int
    site: str | None
    dispatched_at: str | None
    started_at: str | None
    finished_at: str | None
    phase: str | None
    error: str
    smoke_failed: bool
    before: dict[str, str | None] | None
    after: dict[str, str | None] | None


class RingOut(BaseModel):
    name: str
    position: int
    group: str
    state: str
    max_concurrency: str
    max_errors: str
    soak_seconds: int
    min_success_percent: float
    require_signoff: bool
    signed_off_by: str | None
    order_groups: list[str]
    site_limit: int | None
    schedule: dict[str, Any] | None
    started_at: str | None
    completed_at: str | None
    passed_at: str | None
    reason: str
    counts: dict[str, int]
    jobs: list[JobOut]


class RolloutOut(RolloutSummaryOut):
    patches: list[dict[str, Any]]
    job_options: dict[str, Any]
    job_timeout_seconds: int
    emergency_reason: str
    rings: list[RingOut]


class RollbackIn(Strict):
    ring: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, description="Only this ring; the whole rollout when left out"
    )


class RollbackOut(BaseModel):
    rollback_jobs: int


class CommentIn(Strict):
    comment: Annotated[str, StringConstraints(max_length=4000)] = ""


@router.post("/rollouts", response_model=RolloutCreatedOut, status_code=status.HTTP_201_CREATED)
def create_rollout(
    body: RolloutIn, principal: RolloutsManager, database: DbDep
) -> RolloutCreatedOut:
    """Plan a rollout (state draft). A patch that may not go to a ring's group
    (declined, or not approved) is refused with 409."""
    spec = rollouts.RolloutSpec(
        name=body.name,
        patch_ids=tuple(body.patch_ids),
        rings=tuple(
            rollouts.RingSpec(
                name=ring.name,
                group=ring.group,
                max_concurrency=ring.max_concurrency,
                max_errors=ring.max_errors,
                soak_seconds=ring.soak_seconds,
                min_success_percent=ring.min_success_percent,
                require_signoff=ring.require_signoff,
                schedule=ring.schedule,
                order_groups=tuple(ring.order_groups),
                site_limit=ring.site_limit,
            )
            for ring in body.rings
        ),
        job_options=body.job_options,
        job_timeout_seconds=body.job_timeout_seconds,
        emergency=body.emergency,
        emergency_reason=body.emergency_reason,
    )
    with database.transaction() as session:
        return RolloutCreatedOut(id=rollouts.create(session, principal.actor, spec))


@router.get("/rollouts", response_model=list[RolloutSummaryOut])
def list_rollouts(
    _: InventoryReader, database: DbDep, state: Annotated[str | None, Query(max_length=16)] = None
) -> list[RolloutSummaryOut]:
    with database.reading() as session:
        return [RolloutSummaryOut(**row) for row in rollouts.list_rollouts(session, state)]


@router.get("/rollouts/{rollout_id}", response_model=RolloutOut)
def show_rollout(rollout_id: int, _: InventoryReader, database: DbDep) -> RolloutOut:
    """State, and per ring and asset the job state."""
    with database.reading() as session:
        return RolloutOut(**rollouts.show(session, rollout_id))


@router.post("/rollouts/{rollout_id}/rollback", response_model=RollbackOut)
def rollback_rollout(
    rollout_id: int, body: RollbackIn, principal: RolloutsManager, database: DbDep
) -> RollbackOut:
    """Put back the versions from before on every asset the rollout (or one ring) changed."""
    with database.transaction() as session:
        return RollbackOut(
            rollback_jobs=rollouts.rollback(session, principal.actor, rollout_id, body.ring)
        )


@router.post("/rollouts/{rollout_id}/rings/{ring}/sign-off", response_model=RolloutSummaryOut)
def sign_off_ring(
    rollout_id: int, ring: RingName, principal: ApprovalsDecider, database: DbDep
) -> RolloutSummaryOut:
    actor = Actor(principal.actor, role_has(principal.role, Permission.APPROVALS_DECIDE))
    with database.transaction() as session:
        rollouts.sign_off(session, actor, rollout_id, ring)
        return RolloutSummaryOut(**rollouts.list_one(session, rollout_id))


@router.post("/rollouts/{rollout_id}/emergency-approval", response_model=RolloutSummaryOut)
def approve_emergency(
    rollout_id: int, body: CommentIn, principal: ApprovalsDecider, database: DbDep
) -> RolloutSummaryOut:
    """An approver lets an emergency rollout skip maintenance windows and soak time."""
    actor = Actor(principal.actor, role_has(principal.role, Permission.APPROVALS_DECIDE))
    with database.transaction() as session:
        rollouts.approve_emergency(session, actor, rollout_id, body.comment)
        return RolloutSummaryOut(**rollouts.list_one(session, rollout_id))


# Declared after the fixed paths above: a path parameter would shadow them.
@router.post("/rollouts/{rollout_id}/{action}", response_model=RolloutSummaryOut)
def move_rollout(
    rollout_id: int,
    action: Literal["start", "pause", "resume", "abort"],
    principal: RolloutsManager,
    database: DbDep,
) -> RolloutSummaryOut:
    """start (draft), pause (running), resume (paused), abort (not finished)."""
    with database.transaction() as session:
        rollouts.MOVES[action](session, principal.actor, rollout_id)
        return RolloutSummaryOut(**rollouts.list_one(session, rollout_id))


# -- maintenance windows ---------------------------------------------------------------


class ScheduleOut(BaseModel):
    scope: str
    target_id: int
    windows: list[dict[str, Any]]
    blackouts: list[dict[str, Any]]


class OpeningOut(BaseModel):
    start: str | None
    end: str | None
    local_start: str | None
    local_end: str | None
    timezone: str


Scope = Literal["groups", "assets"]


def _scope(scope: Scope) -> windows.Scope:
    return "group" if scope == "groups" else "asset"


@router.get("/{scope}/{ref}/maintenance", response_model=ScheduleOut)
def get_schedule(scope: Scope, ref: GroupRef, _: InventoryReader, database: DbDep) -> ScheduleOut:
    with database.reading() as session:
        return ScheduleOut(**windows.show(session, _scope(scope), ref))


@router.post("/{scope}/{ref}/maintenance/windows", response_model=ScheduleOut)
def add_window(
    scope: Scope, ref: GroupRef, body: dict[str, Any], principal: RolloutsManager, database: DbDep
) -> ScheduleOut:
    """Add {"rrule" | "cron": text, "duration_minutes": n, "timezone": zone}."""
    with database.transaction() as session:
        return ScheduleOut(**windows.add_window(session, principal.actor, _scope(scope), ref, body))


@router.post("/{scope}/{ref}/maintenance/blackouts", response_model=ScheduleOut)
def add_blackout(
    scope: Scope, ref: GroupRef, body: dict[str, Any], principal: RolloutsManager, database: DbDep
) -> ScheduleOut:
    """Add {"start", "end", "reason"} or a recurring blackout shaped like a window."""
    with database.transaction() as session:
        return ScheduleOut(
            **windows.add_blackout(session, principal.actor, _scope(scope), ref, body)
        )


@router.delete("/{scope}/{ref}/maintenance", response_model=ScheduleOut)
def clear_schedule(
    scope: Scope, ref: GroupRef, principal: RolloutsManager, database: DbDep
) -> ScheduleOut:
    with database.transaction() as session:
        return ScheduleOut(**windows.clear(session, principal.actor, _scope(scope), ref))


@router.get("/{scope}/{ref}/maintenance/next", response_model=list[OpeningOut])
def next_openings(
    scope: Scope,
    ref: GroupRef,
    _: InventoryReader,
    database: DbDep,
    count: Annotated[int, Query(ge=1, le=100)] = 5,
) -> list[OpeningOut]:
    """The next openings in UTC and in each window's local time."""
    with database.reading() as session:
        return [OpeningOut(**o) for o in windows.upcoming(session, _scope(scope), ref, count)]
