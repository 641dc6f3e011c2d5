"""Rollout jobs for agents (protocol.jobs): poll, start, result, signing key."""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from patchwarden.api.body import read_limited
from patchwarden.api.deps import Database, DbDep, SettingsDep
from patchwarden.api.routes.agent_protocol import AgentCredential
from patchwarden.api.schemas import ErrorOut
from patchwarden.domain.report_schema import Strict
from patchwarden.errors import InvalidInput, PermissionDenied
from patchwarden.services import agent_jobs, agents
from patchwarden.services.job_signing import JobSigner

router = APIRouter(prefix="/agent", tags=["agent protocol"])
MAX_BODY = 1024 * 1024  # a result carries at most 64 KiB of log
FAST_POLL_SECONDS = 5  # for agents whose job waits for its wave
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


_Body = TypeVar("_Body", bound=BaseModel)


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


def _parse(model: type[_Body], raw: bytes) -> _Body:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"invalid body: {where}: {first['msg']}") from None


def _poll(
    database: Database, signer: JobSigner, credential: str, raw: bytes, interval: int
) -> PollOut:
    # Strangers are refused before their body is parsed.
    with database.reading() as session:
        agent = agents.identify_agent(session, credential)
        body = _parse(PollIn, raw)
        if body.asset_id != agent.asset_id:
            raise PermissionDenied("this credential belongs to another asset")
        outlook = agent_jobs.outlook(session, agent.asset_id)
        release = agent_jobs.released(session, body.kept)
    if outlook.waiting:
        interval = min(interval, FAST_POLL_SECONDS)
    envelopes: list[dict[str, Any]] = []
    if outlook.deliverable:  # only then a write: counting the delivery
        with database.transaction() as session:
            agent = agents.identify_agent(session, credential)
            jobs = agent_jobs.pending_jobs(session, agent.asset_id)
            envelopes = agent_jobs.envelopes(session, signer, jobs)
    return PollOut(jobs=envelopes, release=release, poll_interval=interval)


@router.post("/jobs/poll", response_model=PollOut, responses=ERRORS)
async def poll(
    request: Request, database: DbDep, settings: SettingsDep, credential: AgentCredential
) -> PollOut:
    """The jobs this agent should run now, signed; a job comes again until its
    result is recorded. `release` lists finished rollouts among `kept`.
    Body: {"protocol": 1, "asset_id", "running": [...], "kept": [...]}."""
    raw = await read_limited(request, MAX_BODY)
    return await run_in_threadpool(
        _poll, database, _signer(request), credential, raw, settings.job_poll_seconds
    )


def _start(database: Database, credential: str, job_id: int, raw: bytes) -> StartOut:
    with database.transaction() as session:
        agent = agents.identify_agent(session, credential)
        body = _parse(StartIn, raw)
        return StartOut(status=agent_jobs.start(session, agent, job_id, body.attempt))


@router.post("/jobs/{job_id}/start", response_model=StartOut, responses=ERRORS)
async def start_job(
    job_id: int, request: Request, database: DbDep, credential: AgentCredential
) -> StartOut:
    """The agent begins the job; 409 when it was cancelled (then it must not run).
    Body: {"protocol": 1, "attempt": n}."""
    raw = await read_limited(request, MAX_BODY)
    return await run_in_threadpool(_start, database, credential, job_id, raw)


def _result(database: Database, credential: str, job_id: int, raw: bytes) -> ResultOut:
    with database.transaction() as session:
        agent = agents.identify_agent(session, credential)
        try:
            body = json.loads(raw)
        except ValueError:
            raise InvalidInput("the result is not JSON") from None
        if not isinstance(body, dict):
            raise InvalidInput("the result must be a JSON object")
        duplicate = agent_jobs.record_result(session, agent, job_id, body)
    return ResultOut(duplicate=duplicate)


@router.post("/jobs/{job_id}/result", response_model=ResultOut, responses=ERRORS)
async def job_result(
    job_id: int, request: Request, database: DbDep, credential: AgentCredential
) -> ResultOut:
    """The outcome of an attempt (protocol.jobs RESULT); recorded once, repeats
    acknowledged."""
    raw = await read_limited(request, MAX_BODY)
    return await run_in_threadpool(_result, database, credential, job_id, raw)


@router.get("/signing-key", response_model=SigningKeyOut, responses=ERRORS)
def signing_key(request: Request, database: DbDep, credential: AgentCredential) -> SigningKeyOut:
    """The public key that signs this server's jobs (agents pin it)."""
    with database.reading() as session:
        agents.identify_agent(session, credential)
    signer = _signer(request)
    return SigningKeyOut(key_id=signer.key_id, public_key=signer.public_key_b64)
