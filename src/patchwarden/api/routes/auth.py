"""Logging in, the caller's own profile, and the caller's own API tokens."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, status

from patchwarden.api.deps import DbDep, Public, Self, SettingsDep
from patchwarden.api.schemas import (
    LoginIn,
    LoginOut,
    MeOut,
    TokenCreatedOut,
    TokenCreateIn,
    TokenOut,
)
from patchwarden.domain.roles import ROLE_PERMISSIONS, Role
from patchwarden.services import users

router = APIRouter(tags=["auth"])


@router.post("/auth/login", response_model=LoginOut)
def login(body: LoginIn, database: DbDep, settings: SettingsDep, _: Public) -> LoginOut:
    """Exchange a username and password for a session token (expires)."""
    with database.transaction() as session:
        user = users.authenticate_password(session, body.username, body.password)
        secret, token = users.create_token(
            session,
            f"user:{user.username}",
            user.id,
            "login",
            kind="session",
            ttl=timedelta(seconds=settings.session_ttl_seconds),
        )
    return LoginOut(
        token=secret, expires_at=token.expires_at, username=user.username, role=user.role
    )


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(principal: Self, database: DbDep) -> None:
    """Revoke the token used for this request."""
    with database.transaction() as session:
        users.revoke_token(session, principal.actor, principal.token_id)


@router.get("/me", response_model=MeOut)
def me(principal: Self) -> MeOut:
    permissions = sorted(p.value for p in ROLE_PERMISSIONS[Role(principal.role)])
    return MeOut(
        id=principal.user_id,
        username=principal.username,
        role=principal.role,
        permissions=permissions,
    )


def _token_out(view: users.TokenView) -> TokenOut:
    return TokenOut(
        id=view.id,
        name=view.name,
        prefix=view.prefix,
        created_at=view.created_at,
        expires_at=view.expires_at,
        last_used_at=view.last_used_at,
        revoked_at=view.revoked_at,
    )


@router.get("/tokens", response_model=list[TokenOut])
def list_my_tokens(principal: Self, database: DbDep) -> list[TokenOut]:
    with database.transaction() as session:
        return [_token_out(t) for t in users.list_tokens(session, principal.user_id)]


@router.post("/tokens", response_model=TokenCreatedOut, status_code=status.HTTP_201_CREATED)
def create_my_token(body: TokenCreateIn, principal: Self, database: DbDep) -> TokenCreatedOut:
    ttl = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    with database.transaction() as session:
        secret, view = users.create_token(
            session, principal.actor, principal.user_id, body.name, ttl=ttl
        )
    return TokenCreatedOut(token=secret, **_token_out(view).model_dump())


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_my_token(token_id: int, principal: Self, database: DbDep) -> None:
    with database.transaction() as session:
        users.revoke_token(session, principal.actor, token_id, owner_id=principal.user_id)
