"""Rollout jobs for agents (protocol.jobs): poll, start, result, signing key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from patchwarden.api.deps import DbDep, SettingsDep
from patchwarden.api.routes.agent_protocol import AgentCredential
from patchwarden.api.schemas import ErrorOut
from patchwarden.domain.report_schema import Strict
from patchwarden.errors import PermissionDenied
from patchwarden.services import agent_jobs, agents
from patchwarden.services.job_signing import JobSigner

router = APIRouter(prefix="/agent", tags=["agent protocol"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut},
    403: {"model": ErrorOut},
    404: {"model": ErrorOut},
    409: {"model": ErrorOut},
    422: {"model": ErrorOut},
}


def _signer(request: Request) -> JobSigner:
    signer: JobSigner = request.app.state.job_signer
    return signer


class PollIn(Strict):
    protocol: int = Field(ge=1, le=1)
    asset_id: int
    running: list[int] = Field(default_factory=list, max_length=1000)
    kept: list[int] = Field(default_factory=list, max_length=agent_jobs.MAX_KEPT)


class PollOut(BaseModel):
    jobs: list[dict[str, Any]]
    release: list[int]
    poll_interval: int


class StartIn(Strict):
    protocol: int = Field(ge=1, le=1)
    attempt: int = Field(ge=1)


class StartOut(BaseModel):
    status: str


class ResultOut(BaseModel):
    status: str = "recorded"
    duplicate: bool


class SigningKeyOut(BaseModel):
    key_id: str
    public_key: Annotated[str, Field(description="Raw Ed25519 public key, base64")]


@router.post("/jobs/poll", response_model=PollOut, responses=ERRORS)
def poll(
    body: PollIn,
    request: Request,
    database: DbDep,
    settings: SettingsDep,
    credential: AgentCredential,
) -> PollOut:
    """The jobs this agent should run now, signed; a job comes again until its
    result is recorded. `release` lists finished rollouts among `kept`."""
    with database.reading() as session:
        agent = agents.authenticate_agent(session, credential)
        if body.asset_id != agent.asset_id:
            raise PermissionDenied("this credential belongs to another asset")
        jobs = agent_jobs.pending_jobs(session, agent.asset_id)
        release = agent_jobs.released(session, body.kept)
    envelopes: list[dict[str, Any]] = []
    if jobs:
        with database.transaction() as session:
            agent = agents.authenticate_agent(session, credential)
            jobs = agent_jobs.pending_jobs(session, agent.asset_id)
            envelopes = agent_jobs.envelopes(session, _signer(request), jobs)
    return PollOut(jobs=envelopes, release=release, poll_interval=settings.job_poll_seconds)


@router.post("/jobs/{job_id}/start", response_model=StartOut, responses=ERRORS)
def start_job(job_id: int, body: StartIn, database: DbDep, credential: AgentCredential) -> StartOut:
    """The agent begins the job; 409 when it was cancelled (then it must not run)."""
    with database.transaction() as session:
        agent = agents.authenticate_agent(session, credential)
        return StartOut(status=agent_jobs.start(session, agent, job_id, body.attempt))


@router.post("/jobs/{job_id}/result", response_model=ResultOut, responses=ERRORS)
def job_result(
    job_id: int, body: dict[str, Any], database: DbDep, credential: AgentCredential
) -> ResultOut:
    """The outcome of an attempt; recorded once, repeats acknowledged."""
    with database.transaction() as session:
        agent = agents.authenticate_agent(session, credential)
        duplicate = agent_jobs.record_result(session, agent, job_id, body)
    return ResultOut(duplicate=duplicate)


@router.get("/signing-key", response_model=SigningKeyOut, responses=ERRORS)
def signing_key(request: Request, database: DbDep, credential: AgentCredential) -> SigningKeyOut:
    """The public key that signs this server's jobs (agents pin it)."""
    with database.reading() as session:
        agents.authenticate_agent(session, credential)
    signer = _signer(request)
    return SigningKeyOut(key_id=signer.key_id, public_key=signer.public_key_b64)
