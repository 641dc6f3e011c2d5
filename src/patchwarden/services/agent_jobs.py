"""The agent's side of rollout jobs on the server: deliver signed jobs,
acknowledge starts, record results exactly once (protocol.jobs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from patchwarden.errors import Conflict, InvalidInput, NotFound
from patchwarden.protocol.jobs import MAX_LOG, result_problems
from patchwarden.protocol.v1 import PROTOCOL_VERSION
from patchwarden.rollouts.engine import FINISHED_ROLLOUT_STATES
from patchwarden.services import audit
from patchwarden.services.agents import AgentIdentity
from patchwarden.services.job_signing import JobSigner
from patchwarden.storage.tables import Agent, Rollout, RolloutJob, utcnow

DELIVERABLE_STATES: Final = ("dispatched", "running")
# Results may still arrive for jobs the server gave up on or cancelled after
# the agent began: the true state of the host is always worth recording.
RESULT_STATES: Final = ("dispatched", "running", "timed_out", "cancelled")
MAX_KEPT: Final = 1000
# The stored row or just its ids (the poll path never loads the row).
AgentLike = Agent | AgentIdentity
STATUS_TO_STATE: Final = {
    "succeeded": "succeeded",
    "failed": "failed",
    "rolled_back": "rolled_back",
    "rollback_failed": "rollback_failed",
    "refused": "refused",
}


def _iso(value: Any) -> str:
    return str(value.isoformat())


def pending_jobs(session: Session, asset_id: int) -> list[tuple[RolloutJob, Rollout]]:
    """Jobs the asset's agent should run now (read-only)."""
    rows = session.execute(
        select(RolloutJob, Rollout)
        .join(Rollout, Rollout.id == RolloutJob.rollout_id)
        .where(RolloutJob.asset_id == asset_id, RolloutJob.state.in_(DELIVERABLE_STATES))
        .order_by(RolloutJob.id)
    ).all()
    return [(job, rollout) for job, rollout in rows]


@dataclass(frozen=True)
class Outlook:
    """What an agent's poll finds: jobs to deliver, or a job waiting for its wave."""

    deliverable: bool
    waiting: bool


_OUTLOOK = (
    select(RolloutJob.state, RolloutJob.hot, Rollout.state)
    .join(Rollout, Rollout.id == RolloutJob.rollout_id)
    .where(
        RolloutJob.asset_id == bindparam("asset_id"),
        RolloutJob.state.in_(("pending", *DELIVERABLE_STATES)),
    )
)


def outlook(session: Session, asset_id: int) -> Outlook:
    """One indexed query (built once: polls are the hottest path of the server).
    Agents whose job is next in line for its wave are asked to poll sooner, so
    a freed slot is taken quickly while the rest of the fleet keeps the normal
    interval."""
    rows = session.execute(_OUTLOOK, {"asset_id": asset_id}).all()
    return Outlook(
        deliverable=any(job in DELIVERABLE_STATES for job, _, _ in rows),
        waiting=any(
            job == "pending" and hot and rollout in ("running", "rolling_back")
            for job, hot, rollout in rows
        ),
    )


def job_document(job: RolloutJob, rollout: Rollout) -> dict[str, Any]:
    """The document the agent runs; the same bytes at every delivery."""
    dispatched = job.dispatched_at or utcnow()
    return {
        "protocol": PROTOCOL_VERSION,
        "job_id": job.id,
        "attempt": job.attempt,
        "rollout_id": rollout.id,
        "asset_id": job.asset_id,
        "action": job.action,
        "issued_at": _iso(dispatched),
        "expires_at": _iso(dispatched + timedelta(seconds=rollout.job_timeout_seconds)),
        "package_manager": job.package_manager,
        "targets": list(job.targets),
        "remove": list(job.remove),
        **rollout.job_options,
    }


def released(session: Session, kept: Sequence[int]) -> list[int]:
    """Which of the rollouts whose package files the agent keeps are finished."""
    if not kept:
        return []
    return sorted(
        session.execute(
            select(Rollout.id).where(
                Rollout.id.in_(list(kept)), Rollout.state.in_(FINISHED_ROLLOUT_STATES)
            )
        ).scalars()
    )


def check_kept(value: object) -> list[int]:
    if value is None:
        return []
    if (
        not isinstance(value, list)
        or len(value) > MAX_KEPT
        or not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in value)
    ):
        raise InvalidInput(f"kept must be a list of at most {MAX_KEPT} rollout ids")
    return value


def envelopes(
    session: Session, signer: JobSigner, jobs: list[tuple[RolloutJob, Rollout]]
) -> list[dict[str, Any]]:
    """Sign the jobs and count the delivery (a write: call in a transaction)."""
    now = utcnow()
    ids = [job.id for job, _ in jobs]
    session.execute(
        update(RolloutJob)
        .where(RolloutJob.id.in_(ids), RolloutJob.delivered_at.is_(None))
        .values(delivered_at=now)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(RolloutJob)
        .where(RolloutJob.id.in_(ids))
        .values(deliveries=RolloutJob.deliveries + 1)
        .execution_options(synchronize_session=False)
    )
    return [signer.envelope(job_document(job, rollout)) for job, rollout in jobs]


def _own_job(session: Session, agent: AgentLike, job_id: int) -> RolloutJob:
    job = session.execute(
        select(RolloutJob).where(RolloutJob.id == job_id).with_for_update()
    ).scalar_one_or_none()
    # Another asset's job is answered like a missing one: ids reveal nothing.
    if job is None or job.asset_id != agent.asset_id:
        raise NotFound(f"job {job_id} not found for this agent")
    return job


def start(session: Session, agent: AgentLike, job_id: int, attempt: int) -> str:
    """The agent begins the job: dispatched -> running. A cancelled job is refused."""
    job = _own_job(session, agent, job_id)
    if attempt != job.attempt:
        raise Conflict(f"job {job_id} is at attempt {job.attempt}, not {attempt}")
    if job.state == "cancelled":
        raise Conflict(f"job {job_id} was cancelled; do not run it")
    if job.state == "dispatched":
        session.execute(
            update(RolloutJob)
            .where(RolloutJob.id == job.id, RolloutJob.state == "dispatched")
            .values(state="running", started_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return "running"
    if job.state == "pending":
        raise Conflict(f"job {job_id} has not been dispatched")
    return job.state


def record_result(session: Session, agent: AgentLike, job_id: int, result: dict[str, Any]) -> bool:
    """Store the first result of the job's attempt; True when it was a repeat."""
    problems = result_problems(result)
    if problems:
        raise InvalidInput("invalid job result: " + "; ".join(problems[:5]))
    if result["job_id"] != job_id:
        raise InvalidInput(f"result names job {result['job_id']}, posted for job {job_id}")
    job = _own_job(session, agent, job_id)
    if result["attempt"] != job.attempt:
        raise Conflict(f"job {job_id} is at attempt {job.attempt}, not {result['attempt']}")
    if job.result_recorded_at is not None:
        return True
    if job.state not in RESULT_STATES:
        raise Conflict(f"job {job_id} is {job.state}; it takes no result")
    stored = dict(result)
    log = stored.get("log") or ""
    stored["log"] = log[-MAX_LOG:]
    smoke_failed = any(not test["ok"] for test in stored.get("smoke_tests") or [])
    now = utcnow()
    changed = session.execute(
        update(RolloutJob)
        .where(RolloutJob.id == job.id, RolloutJob.result_recorded_at.is_(None))
        .values(
            state=STATUS_TO_STATE[result["status"]],
            result=stored,
            result_recorded_at=now,
            finished_at=now,
            smoke_failed=smoke_failed,
            error=str(result.get("error") or "")[:2000],
        )
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if not changed:
        return True
    audit.record(
        session,
        f"agent:{agent.id}",
        "rollout.job_result",
        "rollout_job",
        job.id,
        {
            "rollout": job.rollout_id,
            "asset": job.asset_id,
            "action": job.action,
            "status": result["status"],
            "phase": result["phase"],
            "error": result.get("error"),
        },
    )
    return False
