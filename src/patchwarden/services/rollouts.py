"""Rollouts: approved patches x rings of groups, driven by the engine.

`create` plans a rollout (a job per asset that needs one of its patches, in
the first ring whose group holds the asset) and refuses patches that may not
go to a ring's group. `start`, `pause`, `resume`, `abort`, `rollback`,
`sign_off` and `approve_emergency` are the people's moves, each audited.
`tick` is the engine's round: it reads every live rollout, asks the pure
`rollouts.engine.advance` what happens next, and applies each answer in one
short transaction with guarded updates (dropped when the rollout moved in
between), so a server killed at any moment resumes where the database says
it was, with no job dispatched twice.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.errors import Conflict, InvalidInput, NotFound
from patchwarden.policy.errors import ApproverRequired, FourEyesViolation
from patchwarden.protocol.jobs import job_problems
from patchwarden.rollouts import engine
from patchwarden.rollouts.windows import Schedule, parse_schedule
from patchwarden.services import approvals, audit, groups
from patchwarden.services import windows as schedules
from patchwarden.services.approvals import Actor
from patchwarden.services.patches import get_patch
from patchwarden.storage.db import make_session_factory, transaction
from patchwarden.storage.tables import (
    Agent,
    Asset,
    AssetPatch,
    Patch,
    Rollout,
    RolloutJob,
    RolloutRing,
    utcnow,
)

log = logging.getLogger(__name__)

ENGINE_LOCK_KEY: Final = 0x50570002  # pg advisory lock: one process reads a round at a time
RING_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_RINGS: Final = 20
MAX_PATCHES: Final = 500
MAX_SOAK_SECONDS: Final = 30 * 24 * 3600
MIN_EMERGENCY_REASON: Final = 10
PACKAGE_MANAGER_OF: Final = {"deb": "apt", "apk": "apk"}  # rpm: the agent detects dnf or zypper
DEFAULT_JOB_OPTIONS: Final[dict[str, Any]] = {
    "reboot": "if_required",
    "pre_checks": {"min_free_mb": 200, "check_lock": True, "refuse_pending_reboot": False},
    "fs_snapshot": None,
    "pre_hook": None,
    "post_hook": None,
    "smoke_tests": [],
    "retry": {"max_attempts": 3, "initial_backoff": 5, "max_backoff": 300},
    "timeout": 1800,
}
JOB_OPTION_KEYS: Final = frozenset(DEFAULT_JOB_OPTIONS)
# Install jobs whose host may have changed, so a rollback has something to undo.
UNDOABLE_STATES: Final = frozenset({"succeeded", "rollback_failed", "failed", "timed_out"})


@dataclass(frozen=True)
class RingSpec:
    """One ring as asked for: its group, rate control, windows, soak and gate.
    `schedule` None takes the group's maintenance windows."""

    name: str
    group: int | str
    max_concurrency: str = "10%"
    max_errors: str = "0"
    soak_seconds: int = 0
    min_success_percent: float = 100.0
    require_signoff: bool = False
    schedule: dict[str, Any] | None = None
    order_groups: tuple[str, ...] = ()
    site_limit: int | None = None


@dataclass(frozen=True)
class RolloutSpec:
    name: str
    patch_ids: tuple[int, ...]
    rings: tuple[RingSpec, ...]
    job_options: dict[str, Any] = field(default_factory=dict)
    job_timeout_seconds: int = 3600
    emergency: bool = False
    emergency_reason: str = ""


# -- planning ----------------------------------------------------------------------


def job_options(options: dict[str, Any]) -> dict[str, Any]:
    """The defaults overlaid with `options`, checked as a job would be."""
    unknown = set(options) - JOB_OPTION_KEYS
    if unknown:
        raise InvalidInput(
            f"unknown job option(s) {', '.join(sorted(unknown))}; "
            f"valid: {', '.join(sorted(JOB_OPTION_KEYS))}"
        )
    merged = {**DEFAULT_JOB_OPTIONS, **options}
    for nested in ("pre_checks", "retry"):  # a partial setting keeps the other defaults
        if isinstance(options.get(nested), dict):
            merged[nested] = {**DEFAULT_JOB_OPTIONS[nested], **options[nested]}
    sample = {
        "protocol": 1,
        "job_id": 1,
        "attempt": 1,
        "rollout_id": 1,
        "asset_id": 1,
        "action": "install",
        "issued_at": "",
        "expires_at": "",
        "package_manager": None,
        "targets": [{"name": "sample", "version": "1.0", "arch": None}],
        "remove": [],
        **merged,
    }
    problems = job_problems(sample)
    if problems:
        raise InvalidInput("invalid job options: " + "; ".join(problems[:5]))
    return merged


def _check_ring(spec: RingSpec) -> None:
    if not RING_NAME_RE.fullmatch(spec.name):
        raise InvalidInput(f"ring name {spec.name!r} must be 1-64 letters, digits, '.', '_' or '-'")
    engine.Limit.parse(spec.max_concurrency, f"ring {spec.name}: max concurrency")
    engine.Limit.parse(spec.max_errors, f"ring {spec.name}: max errors")
    if not 0 <= spec.soak_seconds <= MAX_SOAK_SECONDS:
        raise InvalidInput(f"ring {spec.name}: soak must be 0 to {MAX_SOAK_SECONDS} seconds")
    if not 0 <= spec.min_success_percent <= 100:
        raise InvalidInput(f"ring {spec.name}: minimum success must be 0 to 100 %")
    if spec.site_limit is not None and spec.site_limit < 1:
        raise InvalidInput(f"ring {spec.name}: site limit must be at least 1")
    if spec.schedule is not None:
        parse_schedule(spec.schedule)


def _check_spec(spec: RolloutSpec) -> None:
    if not spec.name.strip() or len(spec.name) > 200:
        raise InvalidInput("a rollout needs a name of 1 to 200 characters")
    if not spec.patch_ids or len(spec.patch_ids) > MAX_PATCHES:
        raise InvalidInput(f"a rollout needs 1 to {MAX_PATCHES} patches")
    if len(set(spec.patch_ids)) != len(spec.patch_ids):
        raise InvalidInput("a patch is named more than once")
    if not spec.rings or len(spec.rings) > MAX_RINGS:
        raise InvalidInput(f"a rollout needs 1 to {MAX_RINGS} rings, e.g. --ring test=lab")
    names = [ring.name for ring in spec.rings]
    if len(set(names)) != len(names):
        raise InvalidInput("ring names must be unique within a rollout")
    for ring in spec.rings:
        _check_ring(ring)
    if not 60 <= spec.job_timeout_seconds <= 7 * 24 * 3600:
        raise InvalidInput("job timeout must be 60 seconds to 7 days")
    if spec.emergency and len(spec.emergency_reason.strip()) < MIN_EMERGENCY_REASON:
        raise InvalidInput(
            f"an emergency rollout needs a reason of at least {MIN_EMERGENCY_REASON} characters"
        )


def _patches(session: Session, patch_ids: Sequence[int]) -> list[Patch]:
    patches = [get_patch(session, patch_id) for patch_id in patch_ids]
    seen: dict[tuple[str, str, str], int] = {}
    for patch in patches:
        key = (patch.ecosystem, patch.package_name, patch.arch)
        if key in seen:
            raise InvalidInput(
                f"patches {seen[key]} and {patch.id} both update {patch.package_name} "
                f"({patch.arch}); a rollout takes one target version per package"
            )
        seen[key] = patch.id
    return patches


def _targets_by_asset(
    session: Session, patches: Sequence[Patch], asset_ids: Iterable[int]
) -> dict[int, list[Patch]]:
    """The rollout's patches each asset still needs (available there now)."""
    by_id = {patch.id: patch for patch in patches}
    wanted = list(asset_ids)
    found: dict[int, list[Patch]] = {}
    for start in range(0, len(wanted), 500):
        rows = session.execute(
            select(AssetPatch.asset_id, AssetPatch.patch_id).where(
                AssetPatch.asset_id.in_(wanted[start : start + 500]),
                AssetPatch.patch_id.in_(list(by_id)),
                AssetPatch.status == "available",
            )
        )
        for asset_id, patch_id in rows:
            found.setdefault(asset_id, []).append(by_id[patch_id])
    return found


def _with_agents(
    session: Session, asset_ids: list[int], skipped: list[dict[str, Any]]
) -> list[int]:
    """The assets (needing a patch) an agent can patch; the others are noted
    in `skipped`, since no job for them would ever be picked up."""
    if not asset_ids:
        return []
    covered: set[int] = set()
    for start in range(0, len(asset_ids), 500):
        chunk = asset_ids[start : start + 500]
        covered.update(
            session.execute(
                select(Agent.asset_id).where(Agent.asset_id.in_(chunk), Agent.revoked_at.is_(None))
            ).scalars()
        )
    for start in range(0, len(asset_ids), 500):
        chunk = [a for a in asset_ids[start : start + 500] if a not in covered]
        if chunk:
            rows = session.execute(select(Asset.id, Asset.hostname).where(Asset.id.in_(chunk)))
            skipped.extend(
                {"asset_id": asset_id, "hostname": hostname, "reason": "no active agent"}
                for asset_id, hostname in rows
            )
    return [a for a in asset_ids if a in covered]


def create(session: Session, actor: str, spec: RolloutSpec) -> int:
    """Plan a rollout in state draft; returns its id."""
    _check_spec(spec)
    options = job_options(spec.job_options)
    patches = _patches(session, spec.patch_ids)
    ring_groups = [groups.get(session, ring.group) for ring in spec.rings]
    for group in ring_groups:
        for patch in patches:
            approvals.ensure_deployable(session, patch.id, group.id)
    rollout = Rollout(
        name=spec.name.strip(),
        state="draft",
        patch_ids=list(spec.patch_ids),
        job_options=options,
        job_timeout_seconds=spec.job_timeout_seconds,
        emergency=spec.emergency,
        emergency_reason=spec.emergency_reason.strip(),
        created_by=actor,
    )
    session.add(rollout)
    session.flush()
    assigned: set[int] = set()
    skipped: list[dict[str, Any]] = []
    jobs = 0
    for position, (ring_spec, group) in enumerate(zip(spec.rings, ring_groups, strict=True)):
        order = [groups.get(session, name) for name in ring_spec.order_groups]
        ring = RolloutRing(
            rollout_id=rollout.id,
            position=position,
            name=ring_spec.name,
            group_id=group.id,
            group_name=group.name,
            max_concurrency=ring_spec.max_concurrency.strip(),
            max_errors=ring_spec.max_errors.strip(),
            soak_seconds=ring_spec.soak_seconds,
            min_success_percent=ring_spec.min_success_percent,
            require_signoff=ring_spec.require_signoff,
            schedule=parse_schedule(ring_spec.schedule).as_dict()
            if ring_spec.schedule is not None
            else {},
            order_groups=[g.name for g in order],
            site_limit=ring_spec.site_limit,
        )
        session.add(ring)
        session.flush()
        members = [a for a in groups.members(session, group) if a not in assigned]
        assigned.update(members)
        order_sets = [set(groups.members(session, g)) for g in order]
        needs = _targets_by_asset(session, patches, members)
        reachable = set(_with_agents(session, sorted(needs), skipped))
        needs = {asset_id: found for asset_id, found in needs.items() if asset_id in reachable}
        regions: dict[int, str | None] = {}
        if needs:
            rows = session.execute(select(Asset.id, Asset.region).where(Asset.id.in_(list(needs))))
            regions = {asset_id: region for asset_id, region in rows}
        for asset_id in sorted(needs):
            asset_patches = needs[asset_id]
            order_key = next(
                (i for i, ids in enumerate(order_sets) if asset_id in ids), len(order_sets)
            )
            session.add(
                RolloutJob(
                    rollout_id=rollout.id,
                    ring_id=ring.id,
                    asset_id=asset_id,
                    action="install",
                    state="pending",
                    targets=[
                        {"name": p.package_name, "version": p.target_version, "arch": p.arch}
                        for p in sorted(asset_patches, key=lambda p: p.package_name)
                    ],
                    package_manager=PACKAGE_MANAGER_OF.get(asset_patches[0].ecosystem),
                    order_key=order_key,
                    site=regions.get(asset_id),
                )
            )
            jobs += 1
    if not jobs:
        raise InvalidInput(
            "no asset in the rings' groups needs these patches (nothing to roll out)"
            + (f"; {len(skipped)} asset(s) have no active agent" if skipped else "")
        )
    rollout.skipped_assets = skipped
    session.flush()
    audit.record(
        session,
        actor,
        "rollout.create",
        "rollout",
        rollout.id,
        {
            "name": rollout.name,
            "patches": list(spec.patch_ids),
            "rings": [f"{r.name}={g.name}" for r, g in zip(spec.rings, ring_groups, strict=True)],
            "jobs": jobs,
            "skipped_assets": len(skipped),
            "emergency": spec.emergency,
        },
    )
    return rollout.id


# -- people's moves ------------------------------------------------------------------


def _load(session: Session, rollout_id: int, *, lock: bool = False) -> Rollout:
    query = select(Rollout).where(Rollout.id == rollout_id)
    if lock:
        query = query.with_for_update()
    rollout = session.execute(query).scalar_one_or_none()
    if rollout is None:
        raise NotFound(f"rollout {rollout_id} not found")
    return rollout


def _require_state(rollout: Rollout, allowed: Iterable[str], verb: str) -> None:
    allowed = tuple(allowed)
    if rollout.state not in allowed:
        raise Conflict(
            f"rollout {rollout.id} is {rollout.state}; it can be {verb} only when "
            + " or ".join(allowed)
        )


def _set_state(
    session: Session,
    actor: str,
    rollout: Rollout,
    state: str,
    action: str,
    details: dict[str, Any] | None = None,
) -> None:
    before = rollout.state
    rollout.state = state
    rollout.updated_at = utcnow()
    if state in engine.FINISHED_ROLLOUT_STATES:
        rollout.finished_at = rollout.updated_at
    session.flush()
    audit.record(
        session,
        actor,
        action,
        "rollout",
        rollout.id,
        {"from": before, "to": state, **(details or {})},
    )


def start(session: Session, actor: str, rollout_id: int) -> None:
    rollout = _load(session, rollout_id, lock=True)
    _require_state(rollout, ("draft",), "started")
    if rollout.emergency and rollout.emergency_approved_by is None:
        raise ApproverRequired(
            f"emergency rollout {rollout.id} skips windows and soak time and needs an "
            "approver's sign-off first: patchwarden rollouts approve-emergency "
            f"{rollout.id} --as APPROVER"
        )
    # Decisions may have changed since the plan was made: a decline now stops it.
    for ring in _rings(session, rollout.id):
        for patch_id in rollout.patch_ids:
            approvals.ensure_deployable(session, int(patch_id), ring.group_id)
    rollout.started_at = utcnow()
    _set_state(session, actor, rollout, "running", "rollout.start")


def pause(session: Session, actor: str, rollout_id: int) -> None:
    """No new job starts; jobs in flight finish and are recorded."""
    rollout = _load(session, rollout_id, lock=True)
    _require_state(rollout, ("running",), "paused")
    _set_state(session, actor, rollout, "paused", "rollout.pause")


def resume(session: Session, actor: str, rollout_id: int) -> None:
    rollout = _load(session, rollout_id, lock=True)
    _require_state(rollout, ("paused",), "resumed")
    _set_state(session, actor, rollout, "running", "rollout.resume")


def _cancel_waiting(
    session: Session, rollout_id: int, ring_ids: Iterable[int] | None = None
) -> int:
    """Cancel jobs no agent has started (pending, or dispatched but not begun:
    the agent's start call is then refused)."""
    query = update(RolloutJob).where(
        RolloutJob.rollout_id == rollout_id,
        RolloutJob.state.in_(("pending", "dispatched")),
    )
    if ring_ids is not None:
        query = query.where(RolloutJob.ring_id.in_(list(ring_ids)))
    result = session.execute(
        query.values(state="cancelled", finished_at=utcnow()).execution_options(
            synchronize_session=False
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def abort(session: Session, actor: str, rollout_id: int) -> None:
    """Stop for good: every job not yet started is cancelled."""
    rollout = _load(session, rollout_id, lock=True)
    _require_state(rollout, ("draft", "running", "paused", "halted"), "aborted")
    cancelled = _cancel_waiting(session, rollout.id)
    for ring in _rings(session, rollout.id):
        if ring.state in ("pending", "running", "soaking", "awaiting_signoff"):
            ring.state = "cancelled"
    _set_state(session, actor, rollout, "aborted", "rollout.abort", {"cancelled_jobs": cancelled})


# The moves that only change a rollout's state, by the name the API and CLI use.
MOVES: Final = {"start": start, "pause": pause, "resume": resume, "abort": abort}


def _rollback_job(job: RolloutJob) -> tuple[list[dict[str, Any]], list[str]]:
    """What undoes an install job: the versions from before, and packages it added."""
    result = job.result or {}
    before: dict[str, str | None] = result.get("before") or {}
    after: dict[str, str | None] = result.get("after") or {}
    arch_of = {t["name"]: t.get("arch") for t in job.targets}
    targets = [
        {"name": name, "version": version, "arch": arch_of.get(name)}
        for name, version in sorted(before.items())
        if version is not None and after.get(name) != version
    ]
    remove = sorted(
        name for name, version in before.items() if version is None and after.get(name) is not None
    )
    return targets, remove


def rollback(session: Session, actor: str, rollout_id: int, ring_name: str | None = None) -> int:
    """Put back the versions from before on every asset a ring (or the whole
    rollout) changed; returns the number of rollback jobs."""
    rollout = _load(session, rollout_id, lock=True)
    _require_state(rollout, ("running", "paused", "halted", "completed"), "rolled back")
    rings = _rings(session, rollout.id)
    if ring_name is not None:
        scope = [ring for ring in rings if ring.name == ring_name]
        if not scope:
            raise NotFound(f"rollout {rollout.id} has no ring {ring_name!r}")
    else:
        scope = [ring for ring in rings if ring.state != "pending"]
    scope_ids = [ring.id for ring in scope]
    already = session.execute(
        select(func.count()).where(
            RolloutJob.ring_id.in_(scope_ids), RolloutJob.action == "rollback"
        )
    ).scalar_one()
    if already:
        raise Conflict(f"rollout {rollout.id}: these rings were rolled back already")
    running = session.execute(
        select(func.count()).where(RolloutJob.ring_id.in_(scope_ids), RolloutJob.state == "running")
    ).scalar_one()
    if running:
        # Their outcome is not known yet, so neither is what to undo.
        raise Conflict(
            f"rollout {rollout.id}: {running} job(s) are still running; pause the rollout "
            "and roll back once they have finished"
        )
    _cancel_waiting(session, rollout.id, None if ring_name is None else scope_ids)
    created = 0
    for ring in scope:
        jobs = session.execute(
            select(RolloutJob).where(
                RolloutJob.ring_id == ring.id,
                RolloutJob.action == "install",
                RolloutJob.state.in_(UNDOABLE_STATES),
            )
        ).scalars()
        for job in jobs:
            targets, remove = _rollback_job(job)
            if not targets and not remove:
                continue
            session.add(
                RolloutJob(
                    rollout_id=rollout.id,
                    ring_id=ring.id,
                    asset_id=job.asset_id,
                    action="rollback",
                    state="pending",
                    targets=targets,
                    remove=remove,
                    package_manager=job.package_manager,
                    site=job.site,
                )
            )
            created += 1
        ring.state = "rolling_back"
    if ring_name is None:
        for ring in rings:
            if ring.state == "pending":
                ring.state = "cancelled"
    session.flush()
    _set_state(
        session,
        actor,
        rollout,
        "rolling_back",
        "rollout.rollback",
        {"ring": ring_name, "rollback_jobs": created},
    )
    return created


def _decider(session: Session, rollout: Rollout, actor: Actor, what: str) -> None:
    if not actor.can_approve:
        raise ApproverRequired(f"only an approver may {what}")
    if approvals.four_eyes(session) and actor.name == rollout.created_by:
        raise FourEyesViolation(
            f"four-eyes is on: {actor.name} created rollout {rollout.id} and cannot also {what}"
        )


def approve_emergency(session: Session, actor: Actor, rollout_id: int, comment: str = "") -> None:
    """An approver's sign-off that lets an emergency rollout skip windows and soak."""
    rollout = _load(session, rollout_id, lock=True)
    if not rollout.emergency:
        raise Conflict(f"rollout {rollout.id} is not an emergency rollout")
    _require_state(rollout, ("draft",), "approved as an emergency")
    _decider(session, rollout, actor, "approve an emergency rollout")
    rollout.emergency_approved_by = actor.name
    rollout.emergency_approved_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor.name,
        "rollout.emergency_approve",
        "rollout",
        rollout.id,
        {"reason": rollout.emergency_reason, "comment": comment},
    )


def sign_off(session: Session, actor: Actor, rollout_id: int, ring_name: str) -> None:
    """An approver's sign-off for a ring's promotion gate."""
    rollout = _load(session, rollout_id, lock=True)
    ring = next((r for r in _rings(session, rollout.id) if r.name == ring_name), None)
    if ring is None:
        raise NotFound(f"rollout {rollout.id} has no ring {ring_name!r}")
    if not ring.require_signoff:
        raise Conflict(f"ring {ring.name} does not need a sign-off")
    if ring.signed_off_by is not None:
        raise Conflict(f"ring {ring.name} was signed off by {ring.signed_off_by} already")
    _decider(session, rollout, actor, "sign off a ring")
    ring.signed_off_by, ring.signed_off_at = actor.name, utcnow()
    session.flush()
    audit.record(
        session, actor.name, "rollout.sign_off", "rollout", rollout.id, {"ring": ring.name}
    )


# -- the engine ----------------------------------------------------------------------


def _rings(session: Session, rollout_id: int) -> list[RolloutRing]:
    return list(
        session.execute(
            select(RolloutRing)
            .where(RolloutRing.rollout_id == rollout_id)
            .order_by(RolloutRing.position)
        ).scalars()
    )


def _policy(ring: RolloutRing, group_schedules: dict[int, Schedule]) -> engine.RingPolicy:
    if ring.schedule:
        schedule = parse_schedule(ring.schedule)
    else:
        schedule = group_schedules.get(ring.group_id or 0, Schedule())
    return engine.RingPolicy(
        max_concurrency=engine.Limit.parse(ring.max_concurrency, "max concurrency"),
        max_errors=engine.Limit.parse(ring.max_errors, "max errors"),
        soak=timedelta(seconds=ring.soak_seconds),
        min_success_percent=ring.min_success_percent,
        require_signoff=ring.require_signoff,
        schedule=schedule,
        site_limit=ring.site_limit,
    )


# Rings whose jobs the engine no longer needs to see.
_SETTLED_RINGS: Final = frozenset({"passed", "cancelled", "rolled_back"})


def _view(session: Session, rollout: Rollout) -> tuple[engine.RolloutView, set[int]]:
    """The rollout as the engine sees it, and which of its jobs are already hot."""
    rings = _rings(session, rollout.id)
    group_schedules = schedules.schedules(session, "group")
    asset_schedules = schedules.schedules(session, "asset")
    live = [ring.id for ring in rings if ring.state not in _SETTLED_RINGS]
    jobs: dict[int, list[engine.JobView]] = {ring.id: [] for ring in rings}
    hot: set[int] = set()
    if live:
        rows = session.execute(
            select(
                RolloutJob.id,
                RolloutJob.ring_id,
                RolloutJob.asset_id,
                RolloutJob.action,
                RolloutJob.state,
                RolloutJob.order_key,
                RolloutJob.site,
                RolloutJob.dispatched_at,
                RolloutJob.finished_at,
                RolloutJob.smoke_failed,
                RolloutJob.hot,
            ).where(RolloutJob.rollout_id == rollout.id, RolloutJob.ring_id.in_(live))
        )
        for row in rows:
            if row.hot:
                hot.add(row.id)
            jobs[row.ring_id].append(
                engine.JobView(
                    id=row.id,
                    action=row.action,
                    state=row.state,
                    order_key=row.order_key,
                    site=row.site,
                    dispatched_at=row.dispatched_at,
                    finished_at=row.finished_at,
                    smoke_failed=row.smoke_failed,
                    schedule=asset_schedules.get(row.asset_id),
                )
            )
    view = engine.RolloutView(
        id=rollout.id,
        state=rollout.state,
        rings=tuple(
            engine.RingView(
                id=ring.id,
                position=ring.position,
                name=ring.name,
                state=ring.state,
                policy=_policy(ring, group_schedules),
                jobs=tuple(jobs[ring.id]),
                completed_at=ring.completed_at,
                signed_off=ring.signed_off_by is not None,
            )
            for ring in rings
        ),
        job_timeout=timedelta(seconds=rollout.job_timeout_seconds),
        emergency=rollout.emergency and rollout.emergency_approved_by is not None,
    )
    return view, hot


ENGINE_ACTOR: Final = "system:rollout-engine"


class _Stale(Exception):
    """The rollout moved between reading it and applying the step: drop the
    step, the next round decides again from what is stored then."""


@dataclass(frozen=True)
class _Planned:
    rollout_id: int
    state: str
    updated_at: datetime
    step: engine.Step
    new_hot: tuple[int, ...]


def _plan(session: Session, rollout_id: int, now: datetime) -> _Planned | None:
    """Read the rollout and ask the engine (no locks, no writes)."""
    rollout = session.get(Rollout, rollout_id)
    if rollout is None or rollout.state not in engine.LIVE_ROLLOUT_STATES:
        return None
    view, hot = _view(session, rollout)
    step = engine.advance(view, now)
    new_hot = tuple(job_id for job_id in step.soon if job_id not in hot)
    return _Planned(rollout.id, rollout.state, rollout.updated_at, step, new_hot)


def _guarded(session: Session, ids: tuple[int, ...], states: Iterable[str], **values: Any) -> None:
    """Move exactly these jobs out of `states`, or none (_Stale)."""
    result = session.execute(
        update(RolloutJob)
        .where(RolloutJob.id.in_(ids), RolloutJob.state.in_(tuple(states)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != len(ids):  # type: ignore[attr-defined]
        raise _Stale


def _apply(session: Session, planned: _Planned, now: datetime) -> None:
    """Apply a planned step in the caller's write transaction, if the rollout
    is still as it was read: a person's move or another process's round in
    between bumps `updated_at`, and a job that changed under a guarded
    update makes the counts differ; either way nothing is applied."""
    rollout = _load(session, planned.rollout_id, lock=True)
    if rollout.state != planned.state or rollout.updated_at != planned.updated_at:
        raise _Stale
    step = planned.step
    if planned.new_hot:
        session.execute(
            update(RolloutJob)
            .where(RolloutJob.id.in_(planned.new_hot))
            .values(hot=True)
            .execution_options(synchronize_session=False)
        )
    if not step.changes_anything:
        return
    if step.time_out:
        _guarded(
            session,
            step.time_out,
            engine.ACTIVE_JOB_STATES,
            state="timed_out",
            finished_at=now,
            error=f"no result within the job timeout ({rollout.job_timeout_seconds} s)",
        )
    if step.dispatch:
        _guarded(session, step.dispatch, ("pending",), state="dispatched", dispatched_at=now)
    by_id = {ring.id: ring for ring in _rings(session, rollout.id)}
    for change in step.rings:
        ring = by_id[change.ring_id]
        before = ring.state
        ring.state = change.state
        if change.state == "running" and ring.started_at is None:
            ring.started_at = now
        if change.completed_at is not None:
            ring.completed_at = change.completed_at
        if change.state == "passed":
            ring.passed_at = now
        if change.reason:
            ring.halt_reason = change.reason
        if change.state in ("failed", "passed", "awaiting_signoff", "rolled_back"):
            audit.record(
                session,
                ENGINE_ACTOR,
                f"rollout.ring_{change.state}",
                "rollout",
                rollout.id,
                {"ring": ring.name, "from": before, "reason": change.reason},
            )
    if step.rollout_state is not None:
        rollout.halt_reason = step.reason
        if step.rollout_state == "halted":
            # The alert: operators watch for this in the log and the audit trail.
            log.warning("rollout %d (%s) halted: %s", rollout.id, rollout.name, step.reason)
        _set_state(
            session,
            ENGINE_ACTOR,
            rollout,
            step.rollout_state,
            f"rollout.{step.rollout_state}",
            {"reason": step.reason},
        )
    rollout.updated_at = now
    session.flush()


def tick(
    factory: sessionmaker[Session],
    now: datetime | None = None,
    read_factory: sessionmaker[Session] | None = None,
) -> int:
    """One engine round over every live rollout; returns how many changed.

    Each rollout is read and decided in a read-only unit of work, then applied
    in a short write transaction (on SQLite the write lock is not held while
    thousands of jobs are read). On PostgreSQL a try-lock lets one server
    process at a time do the reading; the others skip the round."""
    now = now or utcnow()
    read_factory = read_factory or make_session_factory(factory.kw["bind"], read_only=True)
    with transaction(read_factory) as session:
        if session.get_bind().dialect.name == "postgresql":
            locked = session.execute(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": ENGINE_LOCK_KEY}
            ).scalar()
            if not locked:
                return 0
        planned = [
            plan
            for rollout_id in session.execute(
                select(Rollout.id)
                .where(Rollout.state.in_(engine.LIVE_ROLLOUT_STATES))
                .order_by(Rollout.id)
            ).scalars()
            if (plan := _plan(session, rollout_id, now)) is not None
        ]
    changed = 0
    for plan in planned:
        if not (plan.step.changes_anything or plan.new_hot):
            continue
        try:
            with transaction(factory) as session:
                _apply(session, plan, now)
        except _Stale:
            log.debug("rollout %d changed while its step was decided; next round", plan.rollout_id)
            continue
        changed += plan.step.changes_anything
    return changed


# -- reading -------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


JOB_COUNT_STATES: Final = (
    "pending",
    "dispatched",
    "running",
    "succeeded",
    "failed",
    "rolled_back",
    "rollback_failed",
    "refused",
    "timed_out",
    "cancelled",
)


def _summary(rollout: Rollout) -> dict[str, Any]:
    return {
        "id": rollout.id,
        "name": rollout.name,
        "state": rollout.state,
        "emergency": rollout.emergency,
        "emergency_approved_by": rollout.emergency_approved_by,
        "halt_reason": rollout.halt_reason,
        "patch_ids": list(rollout.patch_ids),
        "skipped_assets": list(rollout.skipped_assets),
        "created_by": rollout.created_by,
        "created_at": _iso(rollout.created_at),
        "started_at": _iso(rollout.started_at),
        "finished_at": _iso(rollout.finished_at),
    }


def list_one(session: Session, rollout_id: int) -> dict[str, Any]:
    return _summary(_load(session, rollout_id))


def list_rollouts(session: Session, state: str | None = None) -> list[dict[str, Any]]:
    query = select(Rollout).order_by(Rollout.id.desc())
    if state is not None:
        query = query.where(Rollout.state == state)
    return [_summary(rollout) for rollout in session.execute(query).scalars()]


def _job_row(job: RolloutJob, hostname: str) -> dict[str, Any]:
    result = job.result or {}
    return {
        "job_id": job.id,
        "asset_id": job.asset_id,
        "hostname": hostname,
        "action": job.action,
        "state": job.state,
        "attempt": job.attempt,
        "targets": job.targets,
        "remove": job.remove,
        "order_key": job.order_key,
        "site": job.site,
        "dispatched_at": _iso(job.dispatched_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "phase": result.get("phase"),
        "error": job.error or result.get("error") or "",
        "smoke_failed": job.smoke_failed,
        "before": result.get("before"),
        "after": result.get("after"),
    }


def show(session: Session, rollout_id: int) -> dict[str, Any]:
    """The rollout, each ring with its policy and counts, and every job."""
    rollout = _load(session, rollout_id)
    rings = _rings(session, rollout.id)
    rows = session.execute(
        select(RolloutJob, Asset.hostname)
        .join(Asset, Asset.id == RolloutJob.asset_id)
        .where(RolloutJob.rollout_id == rollout.id)
        .order_by(RolloutJob.ring_id, RolloutJob.action.desc(), RolloutJob.order_key, RolloutJob.id)
    ).all()
    jobs_by_ring: dict[int, list[dict[str, Any]]] = {ring.id: [] for ring in rings}
    for job, hostname in rows:
        jobs_by_ring[job.ring_id].append(_job_row(job, hostname))
    patches = [
        {"id": p.id, "package": p.package_name, "target_version": p.target_version, "arch": p.arch}
        for p in session.execute(
            select(Patch)
            .where(Patch.id.in_([int(i) for i in rollout.patch_ids]))
            .order_by(Patch.id)
        ).scalars()
    ]
    view = _summary(rollout)
    view.update(
        {
            "patches": patches,
            "job_options": rollout.job_options,
            "job_timeout_seconds": rollout.job_timeout_seconds,
            "emergency_reason": rollout.emergency_reason,
            "rings": [
                {
                    "name": ring.name,
                    "position": ring.position,
                    "group": ring.group_name,
                    "state": ring.state,
                    "max_concurrency": ring.max_concurrency,
                    "max_errors": ring.max_errors,
                    "soak_seconds": ring.soak_seconds,
                    "min_success_percent": ring.min_success_percent,
                    "require_signoff": ring.require_signoff,
                    "signed_off_by": ring.signed_off_by,
                    "order_groups": ring.order_groups,
                    "site_limit": ring.site_limit,
                    "schedule": ring.schedule or None,
                    "started_at": _iso(ring.started_at),
                    "completed_at": _iso(ring.completed_at),
                    "passed_at": _iso(ring.passed_at),
                    "reason": ring.halt_reason,
                    "counts": {
                        state: sum(1 for j in jobs_by_ring[ring.id] if j["state"] == state)
                        for state in JOB_COUNT_STATES
                    },
                    "jobs": jobs_by_ring[ring.id],
                }
                for ring in rings
            ],
        }
    )
    return view
