"""Typed dependencies for route handlers: the database and the caller.

Every API route declares exactly one access rule: `require(permission)` for
users, `agent_auth` for agents, or `public` (login, health, enrolment, which
authenticate through their body). tests/api/test_role_matrix.py enforces it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.config import Settings
from patchwarden.domain.roles import Permission, role_has
from patchwarden.errors import AuthenticationFailed, PermissionDenied
from patchwarden.services import users
from patchwarden.services.users import Principal
from patchwarden.storage.db import transaction

SESSION_COOKIE = "pw_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Database:
    """The session factory; handlers open one transaction per unit of work."""

    def __init__(self, factory: sessionmaker[Session], read_factory: sessionmaker[Session]) -> None:
        self.factory = factory
        self.read_factory = read_factory

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with transaction(self.factory) as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A unit of work that only reads: it never waits for writers."""
        with transaction(self.read_factory) as session:
            yield session


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


DbDep = Annotated[Database, Depends(get_database)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthenticationFailed("Authorization header must be 'Bearer <token>'")
        return value.strip()
    return None


def _caller(request: Request, database: Database) -> Principal:
    token = bearer_token(request)
    if token is None:
        cookie = request.cookies.get(SESSION_COOKIE)
        # Cookies ride along on cross-site requests, so they only authorise reads.
        if cookie and request.method in SAFE_METHODS:
            token = cookie
    if token is None:
        raise AuthenticationFailed("authentication required: send 'Authorization: Bearer <token>'")
    with database.transaction() as session:
        return users.resolve_token(session, token)


def require(permission: Permission) -> Callable[..., Principal]:
    def dependency(request: Request, database: DbDep) -> Principal:
        principal = _caller(request, database)
        if not role_has(principal.role, permission):
            raise PermissionDenied(
                f"role {principal.role!r} may not do this (needs permission {permission.value!r})"
            )
        return principal

    dependency.__permission__ = permission  # type: ignore[attr-defined]
    return dependency


def public() -> None:
    """Marks a route that authenticates through its body, or needs no authentication."""


public.__public__ = True  # type: ignore[attr-defined]


def access_rule(dependency: Any) -> str | None:
    """The access rule a dependency stands for, for the route-matrix test."""
    if hasattr(dependency, "__permission__"):
        return str(dependency.__permission__.value)
    if getattr(dependency, "__public__", False):
        return "public"
    if getattr(dependency, "__agent__", False):
        return "agent"
    return None


def _require_alias(permission: Permission) -> Any:
    return Annotated[Principal, Depends(require(permission))]


InventoryReader = _require_alias(Permission.INVENTORY_READ)
InventoryWriter = _require_alias(Permission.INVENTORY_WRITE)
AgentManager = _require_alias(Permission.AGENTS_MANAGE)
UsersReader = _require_alias(Permission.USERS_READ)
UsersManager = _require_alias(Permission.USERS_MANAGE)
AuditReader = _require_alias(Permission.AUDIT_READ)
FeedsManager = _require_alias(Permission.FEEDS_MANAGE)
PolicyManager = _require_alias(Permission.POLICY_MANAGE)
ReposManager = _require_alias(Permission.REPOS_MANAGE)
ApprovalsRequester = _require_alias(Permission.APPROVALS_REQUEST)
ApprovalsDecider = _require_alias(Permission.APPROVALS_DECIDE)
RolloutsManager = _require_alias(Permission.ROLLOUTS_MANAGE)
Self = _require_alias(Permission.SELF)
Public = Annotated[None, Depends(public)]
