"""The rollout state machine (pure): given what is stored and the time, what
happens next.

`advance(rollout, now)` returns a :class:`Step`: the jobs to dispatch, the
jobs that ran out of time, the rings' new states and the rollout's. The
service applies it in one transaction with guarded updates, so a crash at
any point leaves either the whole step or none of it, and running it again
decides the same thing again (it is a function of the stored state).

A running rollout works on its first ring that has not passed:

* pending -> running (the ring starts);
* running: errors (failed, rolled back, refused, timed-out jobs) above the
  ring's max errors fail the ring and halt the rollout; otherwise pending
  jobs are dispatched while the ring is under its max concurrency, inside a
  maintenance window (the ring's schedule and the asset's own), lowest order
  key first (a later key starts only when every job of the earlier keys has
  finished: "database before application"), at most `site_limit` at once per
  site; when every job has finished the ring soaks;
* soaking: after `soak` from its last job, the promotion gate: success rate
  at least `min_success_percent`, no failed smoke test, and the sign-off of an
  approver when required (awaiting_signoff until then). Passed rings hand
  over to the next ring at once; a failed gate halts the rollout.

When the last ring passes the rollout is completed. An emergency rollout
(approved by an approver) skips windows and soak time. Rolling back
dispatches the rollback jobs of the rings being rolled back, ignoring windows
and order, under each ring's concurrency. Jobs in flight time out after the
rollout's job timeout whatever the rollout's state.

Limits are counts ("5") or percentages of the ring's jobs ("10%"): a
concurrency of 10 % of 15 jobs is 2 (rounded up, at least 1); max errors of 10 %
of 15 is 1 (rounded down). The ring halts when its errors *exceed* max errors,
so max errors 0 halts at the first failure.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from patchwarden.errors import InvalidInput
from patchwarden.rollouts.windows import Schedule, may_start

ACTIVE_JOB_STATES: Final = frozenset({"dispatched", "running"})
ERROR_JOB_STATES: Final = frozenset(
    {"failed", "rolled_back", "rollback_failed", "refused", "timed_out"}
)
FINISHED_JOB_STATES: Final = ERROR_JOB_STATES | {"succeeded", "cancelled"}
# Rollouts the engine looks at: anything with work left or jobs in flight.
LIVE_ROLLOUT_STATES: Final = frozenset({"running", "paused", "halted", "rolling_back"})
FINISHED_ROLLOUT_STATES: Final = frozenset({"completed", "aborted", "rolled_back"})
RING_STATES: Final = (
    "pending",
    "running",
    "soaking",
    "awaiting_signoff",
    "passed",
    "failed",
    "cancelled",
    "rolling_back",
    "rolled_back",
)
_LIMIT_RE = re.compile(r"([0-9]{1,6})(%?)")
# How many waiting jobs per ring are told to poll sooner: enough to refill a
# wave quickly, few enough that their polls stay a small share of the load.
NEXT_IN_LINE: Final = 100


@dataclass(frozen=True)
class Limit:
    """A count ("5") or a percentage of a ring's jobs ("10%")."""

    value: int
    percent: bool = False

    @classmethod
    def parse(cls, text: str, what: str) -> Limit:
        match = _LIMIT_RE.fullmatch(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise InvalidInput(
                f"{what} must be a count like 5 or a percentage like 10%, not {text!r}"
            )
        value, percent = int(match.group(1)), bool(match.group(2))
        if percent and value > 100:
            raise InvalidInput(f"{what} must be at most 100%, not {text!r}")
        return cls(value, percent)

    def __str__(self) -> str:
        return f"{self.value}%" if self.percent else str(self.value)

    def concurrency(self, total: int) -> int:
        if not self.percent:
            return max(1, self.value)
        return max(1, math.ceil(total * self.value / 100))

    def errors(self, total: int) -> int:
        return math.floor(total * self.value / 100) if self.percent else self.value


@dataclass(frozen=True)
class RingPolicy:
    max_concurrency: Limit = Limit(10, percent=True)
    max_errors: Limit = Limit(0)
    soak: timedelta = timedelta(0)
    min_success_percent: float = 100.0
    require_signoff: bool = False
    schedule: Schedule = field(default_factory=Schedule)
    site_limit: int | None = None


@dataclass(frozen=True)
class JobView:
    id: int
    action: str  # install | rollback
    state: str
    order_key: int = 0
    site: str | None = None
    dispatched_at: datetime | None = None
    finished_at: datetime | None = None
    smoke_failed: bool = False
    # The asset's own maintenance windows, when it has any.
    schedule: Schedule | None = None


@dataclass(frozen=True)
class RingView:
    id: int
    position: int
    name: str
    state: str
    policy: RingPolicy
    jobs: tuple[JobView, ...] = ()
    completed_at: datetime | None = None
    signed_off: bool = False


@dataclass(frozen=True)
class RolloutView:
    id: int
    state: str
    rings: tuple[RingView, ...]
    job_timeout: timedelta = timedelta(hours=1)
    emergency: bool = False  # an approved emergency: no windows, no soak


@dataclass(frozen=True)
class RingChange:
    ring_id: int
    state: str
    reason: str = ""
    completed_at: datetime | None = None


@dataclass(frozen=True)
class Step:
    dispatch: tuple[int, ...] = ()
    time_out: tuple[int, ...] = ()
    rings: tuple[RingChange, ...] = ()
    rollout_state: str | None = None
    reason: str = ""
    # Pending jobs next in line (at most NEXT_IN_LINE): their agents are asked
    # to poll sooner, so a freed slot is taken quickly without the whole
    # fleet polling fast.
    soon: tuple[int, ...] = ()

    @property
    def changes_anything(self) -> bool:
        """Whether the stored state moves (`soon` is advice, not state)."""
        return bool(self.dispatch or self.time_out or self.rings or self.rollout_state)


@dataclass
class _Plan:
    """The step being built."""

    rollout: RolloutView
    now: datetime
    dispatch: list[int] = field(default_factory=list)
    time_out: list[int] = field(default_factory=list)
    rings: dict[int, RingChange] = field(default_factory=dict)
    rollout_state: str | None = None
    reason: str = ""
    soon: list[int] = field(default_factory=list)

    def state_of(self, job: JobView) -> str:
        return "timed_out" if job.id in self.time_out else job.state

    def ring_to(self, ring: RingView, state: str, reason: str = "", **extra: datetime) -> None:
        self.rings[ring.id] = RingChange(ring.id, state, reason, extra.get("completed_at"))

    def halt(self, reason: str) -> None:
        self.rollout_state, self.reason = "halted", reason

    def step(self) -> Step:
        return Step(
            tuple(self.dispatch),
            tuple(self.time_out),
            tuple(self.rings.values()),
            self.rollout_state,
            self.reason,
            tuple(self.soon),
        )


def advance(rollout: RolloutView, now: datetime) -> Step:
    """What happens next (see the module docstring)."""
    plan = _Plan(rollout, now)
    for ring in rollout.rings:
        for job in ring.jobs:
            if (
                job.state in ACTIVE_JOB_STATES
                and job.dispatched_at is not None
                and now >= job.dispatched_at + rollout.job_timeout
            ):
                plan.time_out.append(job.id)
    if rollout.state == "running":
        _advance_rings(plan)
    elif rollout.state == "rolling_back":
        _advance_rollback(plan)
    return plan.step()


def _install_jobs(ring: RingView) -> list[JobView]:
    return [job for job in ring.jobs if job.action == "install"]


def _advance_rings(plan: _Plan) -> None:
    for ring in sorted(plan.rollout.rings, key=lambda r: r.position):
        state = ring.state
        if state == "passed":
            continue
        if state == "pending":
            state = "running"
            plan.ring_to(ring, state)
        if state == "running":
            completed_at = _run_ring(plan, ring)
            if completed_at is None:
                return  # still working, or halted
            state = "soaking"
            plan.ring_to(ring, state, completed_at=completed_at)
        else:
            completed_at = ring.completed_at or plan.now
        if state == "soaking":
            soak = timedelta(0) if plan.rollout.emergency else ring.policy.soak
            if plan.now < completed_at + soak:
                return
        if state in ("soaking", "awaiting_signoff"):
            failure = gate_failure(ring)
            if failure:
                plan.ring_to(ring, "failed", failure)
                plan.halt(f"ring {ring.name}: promotion gate: {failure}")
                return
            if ring.policy.require_signoff and not ring.signed_off:
                if state != "awaiting_signoff":
                    plan.ring_to(ring, "awaiting_signoff", "waiting for an approver's sign-off")
                return
            plan.ring_to(ring, "passed", completed_at=completed_at)
            continue
        return  # failed, cancelled or rolled-back rings stop the rollout here
    plan.rollout_state = "completed"


def _run_ring(plan: _Plan, ring: RingView) -> datetime | None:
    """Dispatch what may start; the time the last job finished once all have."""
    jobs = _install_jobs(ring)
    states = {job.id: plan.state_of(job) for job in jobs}
    errors = sum(1 for state in states.values() if state in ERROR_JOB_STATES)
    allowed = ring.policy.max_errors.errors(len(jobs))
    if errors > allowed:
        reason = f"{errors} failed job(s), more than max errors {ring.policy.max_errors}"
        plan.ring_to(ring, "failed", reason)
        plan.halt(f"ring {ring.name}: {reason}")
        return None
    pending = [job for job in jobs if states[job.id] == "pending"]
    active = [job for job in jobs if states[job.id] in ACTIVE_JOB_STATES]
    if pending:
        _dispatch(plan, ring, pending, active, jobs, states)
        return None
    if active:
        return None
    # A job timed out in this step finishes now (the service stores that as its finished_at).
    finished = [plan.now if job.id in plan.time_out else job.finished_at for job in jobs]
    return max((at for at in finished if at is not None), default=plan.now)


def _dispatch(
    plan: _Plan,
    ring: RingView,
    pending: list[JobView],
    active: list[JobView],
    jobs: list[JobView],
    states: dict[int, str],
    *,
    use_windows: bool = True,
    use_order: bool = True,
) -> None:
    emergency = plan.rollout.emergency
    if use_windows and not emergency and not may_start(ring.policy.schedule, plan.now):
        return
    capacity = ring.policy.max_concurrency.concurrency(len(jobs)) - len(active)
    first_key = min(
        (job.order_key for job in jobs if states[job.id] not in FINISHED_JOB_STATES), default=0
    )
    per_site = Counter(job.site for job in active if job.site)
    queue = sorted(pending, key=lambda j: (j.order_key, j.id))
    for position, job in enumerate(queue):
        if use_order and job.order_key != first_key:
            break
        if capacity <= 0:
            plan.soon.extend(
                j.id
                for j in queue[position : position + NEXT_IN_LINE]
                if not use_order or j.order_key == first_key
            )
            break
        limit = ring.policy.site_limit
        if limit is not None and job.site and per_site[job.site] >= limit:
            continue
        if (
            use_windows
            and not emergency
            and job.schedule is not None
            and not may_start(job.schedule, plan.now)
        ):
            continue
        plan.dispatch.append(job.id)
        capacity -= 1
        if job.site:
            per_site[job.site] += 1


def gate_failure(ring: RingView) -> str:
    """Why the ring may not be promoted ("" when it may)."""
    jobs = [job for job in _install_jobs(ring) if job.state != "cancelled"]
    if not jobs:
        return ""
    smoke = sum(1 for job in jobs if job.smoke_failed)
    if smoke:
        return f"{smoke} job(s) failed a smoke test"
    succeeded = sum(1 for job in jobs if job.state == "succeeded")
    rate = 100.0 * succeeded / len(jobs)
    if rate < ring.policy.min_success_percent:
        return (
            f"success rate {rate:.1f}% ({succeeded} of {len(jobs)}) is below "
            f"{ring.policy.min_success_percent:g}%"
        )
    return ""


def _advance_rollback(plan: _Plan) -> None:
    """Dispatch rollback jobs; when all have finished, the rings are rolled back."""
    still_working = False
    failures: list[str] = []
    for ring in sorted(plan.rollout.rings, key=lambda r: r.position):
        if ring.state != "rolling_back":
            continue
        jobs = [job for job in ring.jobs if job.action == "rollback"]
        states = {job.id: plan.state_of(job) for job in jobs}
        pending = [job for job in jobs if states[job.id] == "pending"]
        active = [job for job in jobs if states[job.id] in ACTIVE_JOB_STATES]
        if pending or active:
            still_working = True
            _dispatch(plan, ring, pending, active, jobs, states, use_windows=False, use_order=False)
            continue
        failed = sum(1 for state in states.values() if state in ERROR_JOB_STATES)
        reason = f"{failed} rollback job(s) failed" if failed else ""
        if failed:
            failures.append(f"ring {ring.name}: {reason}")
        plan.ring_to(ring, "rolled_back", reason)
    if still_working:
        return
    after = {
        ring.id: plan.rings[ring.id].state if ring.id in plan.rings else ring.state
        for ring in plan.rollout.rings
    }
    if all(state in ("rolled_back", "cancelled") for state in after.values()):
        plan.rollout_state, plan.reason = "rolled_back", "; ".join(failures)
    else:
        rolled = [r.name for r in plan.rollout.rings if after[r.id] == "rolled_back"]
        plan.halt(
            "rolled back ring(s) "
            + ", ".join(rolled)
            + ("; " + "; ".join(failures) if failures else "")
        )
