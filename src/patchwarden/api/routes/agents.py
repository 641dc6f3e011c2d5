"""Enrolment tokens and enrolled agents (administration side)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, status

from patchwarden.api.deps import AgentManager, DbDep, InventoryReader
from patchwarden.api.schemas import (
    AgentOut,
    EnrollmentTokenCreatedOut,
    EnrollmentTokenCreateIn,
    EnrollmentTokenOut,
)
from patchwarden.services import agents

router = APIRouter(tags=["agents"])


def _token_out(view: agents.EnrollmentTokenView) -> EnrollmentTokenOut:
    return EnrollmentTokenOut(**view.__dict__)


@router.get("/enrollment-tokens", response_model=list[EnrollmentTokenOut])
def list_enrollment_tokens(_: AgentManager, database: DbDep) -> list[EnrollmentTokenOut]:
    with database.transaction() as session:
        return [_token_out(t) for t in agents.list_enrollment_tokens(session)]


@router.post(
    "/enrollment-tokens",
    response_model=EnrollmentTokenCreatedOut,
    status_code=status.HTTP_201_CREATED,
)
def create_enrollment_token(
    body: EnrollmentTokenCreateIn, principal: AgentManager, database: DbDep
) -> EnrollmentTokenCreatedOut:
    with database.transaction() as session:
        secret, view = agents.create_enrollment_token(
            session, principal.actor, timedelta(hours=body.ttl_hours), body.note
        )
    return EnrollmentTokenCreatedOut(token=secret, **view.__dict__)


@router.delete("/enrollment-tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_enrollment_token(token_id: int, principal: AgentManager, database: DbDep) -> None:
    with database.transaction() as session:
        agents.revoke_enrollment_token(session, principal.actor, token_id)


@router.get("/agents", response_model=list[AgentOut])
def list_agents(_: InventoryReader, database: DbDep) -> list[AgentOut]:
    with database.transaction() as session:
        return [AgentOut(**a.__dict__) for a in agents.list_agents(session)]


@router.post("/agents/{agent_id}/revoke", status_code=status.HTTP_204_NO_CONTENT)
def revoke_agent(agent_id: int, principal: AgentManager, database: DbDep) -> None:
    with database.transaction() as session:
        agents.revoke_agent(session, principal.actor, agent_id)
