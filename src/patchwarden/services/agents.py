"""Enrolment tokens, agent enrolment, agent credentials and revocation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from patchwarden.errors import AuthenticationFailed, InvalidInput, NotFound, PermissionDenied
from patchwarden.services import audit
from patchwarden.services.users import hash_secret, new_secret
from patchwarden.storage.tables import Agent, Asset, EnrollmentToken, utcnow

ENROLLMENT_PREFIX = "pwe_"
AGENT_CREDENTIAL_PREFIX = "pwa_"


@dataclass(frozen=True)
class EnrollmentTokenView:
    id: int
    prefix: str
    note: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    used_by_agent_id: int | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class Enrolment:
    agent_id: int
    asset_id: int
    credential: str


@dataclass(frozen=True)
class AgentView:
    id: int
    asset_id: int
    hostname: str
    agent_version: str
    created_at: datetime
    last_seen_at: datetime | None
    revoked_at: datetime | None


def create_enrollment_token(
    session: Session, actor: str, ttl: timedelta, note: str = ""
) -> tuple[str, EnrollmentTokenView]:
    if ttl <= timedelta(0) or ttl > timedelta(days=30):
        raise InvalidInput("enrolment token lifetime must be between 1 second and 30 days")
    if len(note) > 200:
        raise InvalidInput("note must have at most 200 characters")
    secret = new_secret(ENROLLMENT_PREFIX)
    token = EnrollmentToken(
        token_hash=hash_secret(secret),
        prefix=secret[:12],
        note=note,
        created_by=actor,
        expires_at=utcnow() + ttl,
    )
    session.add(token)
    session.flush()
    audit.record(
        session,
        actor,
        "enrollment_token.create",
        "enrollment_token",
        token.id,
        {"expires_at": token.expires_at.isoformat(), "note": note},
    )
    return secret, _token_view(token)


def _token_view(token: EnrollmentToken) -> EnrollmentTokenView:
    return EnrollmentTokenView(
        token.id,
        token.prefix,
        token.note,
        token.created_by,
        token.created_at,
        token.expires_at,
        token.used_at,
        token.used_by_agent_id,
        token.revoked_at,
    )


def list_enrollment_tokens(session: Session) -> list[EnrollmentTokenView]:
    rows = session.execute(select(EnrollmentToken).order_by(EnrollmentToken.id)).scalars()
    return [_token_view(t) for t in rows]


def revoke_enrollment_token(session: Session, actor: str, token_id: int) -> None:
    token = session.get(EnrollmentToken, token_id)
    if token is None:
        raise NotFound(f"enrolment token {token_id} not found")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(session, actor, "enrollment_token.revoke", "enrollment_token", token_id)


def enroll(
    session: Session,
    token_secret: str,
    hostname: str,
    machine_id: str | None,
    agent_version: str,
) -> Enrolment:
    """Exchange a one-time enrolment token for an agent credential and a new asset."""
    now = utcnow()
    token_hash = hash_secret(token_secret)
    # Claim the token atomically: of two simultaneous enrolments only one wins.
    claimed = session.execute(
        update(EnrollmentToken)
        .where(
            EnrollmentToken.token_hash == token_hash,
            EnrollmentToken.used_at.is_(None),
            EnrollmentToken.revoked_at.is_(None),
            EnrollmentToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(EnrollmentToken.id)
    ).scalar_one_or_none()
    if claimed is None:
        raise AuthenticationFailed(_why_token_refused(session, token_hash, now))
    asset = Asset(hostname=hostname, machine_id=machine_id, source="agent", last_seen_at=now)
    session.add(asset)
    session.flush()
    credential = new_secret(AGENT_CREDENTIAL_PREFIX)
    agent = Agent(
        asset_id=asset.id,
        credential_hash=hash_secret(credential),
        agent_version=agent_version,
        enrollment_token_id=claimed,
        last_seen_at=now,
    )
    session.add(agent)
    session.flush()
    session.execute(
        update(EnrollmentToken)
        .where(EnrollmentToken.id == claimed)
        .values(used_by_agent_id=agent.id)
    )
    audit.record(
        session,
        f"agent:{agent.id}",
        "agent.enroll",
        "agent",
        agent.id,
        {"asset_id": asset.id, "hostname": hostname, "enrollment_token_id": claimed},
    )
    return Enrolment(agent.id, asset.id, credential)


def _why_token_refused(session: Session, token_hash: str, now: datetime) -> str:
    token = session.execute(
        select(EnrollmentToken).where(EnrollmentToken.token_hash == token_hash)
    ).scalar_one_or_none()
    if token is None:
        return "unknown enrolment token"
    if token.revoked_at is not None:
        return "enrolment token has been revoked"
    if token.used_at is not None:
        return "enrolment token has already been used; create a new one"
    return "enrolment token has expired; create a new one"


@dataclass(frozen=True)
class AgentIdentity:
    """Who an agent credential belongs to: enough for the job endpoints."""

    id: int
    asset_id: int


# Built once: every agent poll runs it.
_IDENTITY = select(Agent.id, Agent.asset_id, Agent.revoked_at).where(
    Agent.credential_hash == bindparam("credential_hash")
)


def identify_agent(session: Session, credential: str) -> AgentIdentity:
    row = session.execute(_IDENTITY, {"credential_hash": hash_secret(credential)}).first()
    if row is None:
        raise AuthenticationFailed("unknown agent credential")
    if row.revoked_at is not None:
        raise PermissionDenied("this agent has been revoked; re-enrol it with a new token")
    return AgentIdentity(row.id, row.asset_id)


def authenticate_agent(session: Session, credential: str) -> Agent:
    agent = session.get(Agent, identify_agent(session, credential).id)
    assert agent is not None  # found a moment ago in the same transaction
    return agent


def revoke_agent(session: Session, actor: str, agent_id: int) -> None:
    agent = session.get(Agent, agent_id)
    if agent is None:
        raise NotFound(f"agent {agent_id} not found")
    if agent.revoked_at is None:
        agent.revoked_at = utcnow()
        audit.record(
            session, actor, "agent.revoke", "agent", agent_id, {"asset_id": agent.asset_id}
        )


def list_agents(session: Session) -> list[AgentView]:
    rows = session.execute(
        select(Agent, Asset.hostname).join(Asset, Asset.id == Agent.asset_id).order_by(Agent.id)
    ).all()
    return [
        AgentView(
            a.id, a.asset_id, hostname, a.agent_version, a.created_at, a.last_seen_at, a.revoked_at
        )
        for a, hostname in rows
    ]
