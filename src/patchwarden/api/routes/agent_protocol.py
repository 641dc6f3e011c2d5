"""Endpoints the agent talks to (protocol v1, see patchwarden.protocol.v1)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from patchwarden.api.body import read_limited
from patchwarden.api.deps import Database, DbDep, Public, SettingsDep, bearer_token
from patchwarden.api.schemas import EnrollIn, EnrollOut, ErrorOut, ReportAckOut
from patchwarden.domain.report_schema import AgentReportIn
from patchwarden.errors import AuthenticationFailed, InvalidInput
from patchwarden.services import agents, ingest

router = APIRouter(prefix="/agent", tags=["agent protocol"])


def agent_credential(request: Request) -> str:
    credential = bearer_token(request)
    if credential is None:
        raise AuthenticationFailed(
            "agent credential required: 'Authorization: Bearer <credential>'"
        )
    return credential


agent_credential.__agent__ = True  # type: ignore[attr-defined]
AgentCredential = Annotated[str, Depends(agent_credential)]


@router.post(
    "/enroll",
    status_code=status.HTTP_201_CREATED,
    response_model=EnrollOut,
    responses={401: {"model": ErrorOut}},
)
def enroll(
    body: EnrollIn, request: Request, database: DbDep, settings: SettingsDep, _: Public
) -> EnrollOut:
    """Exchange a one-time enrolment token for this agent's own credential."""
    with database.transaction() as session:
        result = agents.enroll(
            session, body.token, body.hostname, body.machine_id, body.agent_version
        )
    return EnrollOut(
        agent_id=result.agent_id,
        asset_id=result.asset_id,
        credential=result.credential,
        report_interval=settings.agent_interval_seconds,
        job_signing_key=request.app.state.job_signer.public_key_b64,
        job_signing_key_id=request.app.state.job_signer.key_id,
    )


def _ingest(database: Database, credential: str, raw: bytes, interval: int) -> ReportAckOut:
    # Refuse strangers before spending time on their body.
    with database.reading() as session:
        agents.authenticate_agent(session, credential)
    try:
        parsed = AgentReportIn.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(
            f"invalid report ({exc.error_count()} errors); first: {where}: {first['msg']}"
        ) from None
    report = parsed.domain()
    with database.transaction() as session:
        agent = agents.authenticate_agent(session, credential)
        result = ingest.ingest_agent_report(session, agent, report)
    return ReportAckOut(
        ack_seq=report.seq,
        asset_id=result.asset_id,
        report_interval=interval,
        added=result.added,
        removed=result.removed,
        changed=result.changed,
    )


@router.post(
    "/report",
    response_model=ReportAckOut,
    responses={
        401: {"model": ErrorOut},
        403: {"model": ErrorOut},
        409: {"model": ErrorOut},
        413: {"model": ErrorOut},
        422: {"model": ErrorOut},
    },
)
async def report(
    request: Request, database: DbDep, settings: SettingsDep, credential: AgentCredential
) -> ReportAckOut:
    """A full or delta inventory report. 409 `full_report_required` asks for a full one."""
    raw = await read_limited(request, settings.max_report_bytes)
    return await run_in_threadpool(
        _ingest, database, credential, raw, settings.agent_interval_seconds
    )
