"""Users, passwords (argon2id), API tokens and web sessions."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from patchwarden.domain.roles import Role
from patchwarden.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound
from patchwarden.services import audit
from patchwarden.storage.tables import ApiToken, User, utcnow

USERNAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{1,63}$")
MIN_PASSWORD_LENGTH = 12
TOKEN_PREFIX = "pw_"  # noqa: S105 - a prefix, not a secret

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified against when the user does not exist, so timing does not reveal that.
_DUMMY_HASH = _hasher.hash("patchwarden-dummy-password")


@dataclass(frozen=True)
class UserView:
    id: int
    username: str
    role: str
    is_active: bool
    created_at: datetime


@dataclass(frozen=True)
class TokenView:
    id: int
    user_id: int
    name: str
    kind: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user authenticated by an API token or a session."""

    user_id: int
    username: str
    role: str
    token_id: int

    @property
    def actor(self) -> str:
        return f"user:{self.username}"


def hash_secret(secret: str) -> str:
    """Tokens are random 256-bit values, so a fast hash is enough to store them."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str = TOKEN_PREFIX) -> str:
    return prefix + secrets.token_urlsafe(32)


def _view(user: User) -> UserView:
    return UserView(user.id, user.username, user.role, user.is_active, user.created_at)


def _token_view(token: ApiToken) -> TokenView:
    return TokenView(
        token.id,
        token.user_id,
        token.name,
        token.kind,
        token.prefix,
        token.created_at,
        token.expires_at,
        token.last_used_at,
        token.revoked_at,
    )


def _check_role(role: str) -> str:
    try:
        return Role(role).value
    except ValueError:
        valid = ", ".join(r.value for r in Role)
        raise InvalidInput(f"unknown role {role!r}; valid roles: {valid}") from None


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 1024:
        raise InvalidInput("password must have at most 1024 characters")


def create_user(session: Session, actor: str, username: str, password: str, role: str) -> UserView:
    if not USERNAME_RE.fullmatch(username):
        raise InvalidInput(
            "username must be 2-64 characters of a-z, 0-9, '_', '.', '-', starting with a letter"
        )
    role = _check_role(role)
    _check_password(password)
    if session.execute(select(User.id).where(User.username == username)).first():
        raise Conflict(f"user {username!r} already exists")
    user = User(username=username, password_hash=_hasher.hash(password), role=role)
    session.add(user)
    session.flush()
    audit.record(
        session, actor, "user.create", "user", user.id, {"username": username, "role": role}
    )
    return _view(user)


def count_users(session: Session) -> int:
    return session.execute(select(func.count(User.id))).scalar_one()


def list_users(session: Session) -> list[UserView]:
    return [_view(u) for u in session.execute(select(User).order_by(User.id)).scalars()]


def get_user(session: Session, user_ref: int | str) -> User:
    column = User.id if isinstance(user_ref, int) else User.username
    user = session.execute(select(User).where(column == user_ref)).scalar_one_or_none()
    if user is None:
        raise NotFound(f"user {user_ref!r} not found")
    return user


def update_user(
    session: Session,
    actor: str,
    user_ref: int | str,
    *,
    role: str | None = None,
    is_active: bool | None = None,
    password: str | None = None,
) -> UserView:
    user = get_user(session, user_ref)
    changes: dict[str, object] = {}
    if role is not None and role != user.role:
        user.role = _check_role(role)
        changes["role"] = user.role
    if is_active is not None and is_active != user.is_active:
        user.is_active = is_active
        changes["is_active"] = is_active
    if password is not None:
        _check_password(password)
        user.password_hash = _hasher.hash(password)
        user.password_changed_at = utcnow()
        changes["password"] = "changed"  # noqa: S105 - audit text, not the secret
    if changes.get("role") not in (None, Role.ADMIN) or changes.get("is_active") is False:
        _keep_one_admin(session, user.id)
    if is_active is False or password is not None:
        # Disabling a user or changing a password ends the user's sessions.
        session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.kind == "session")
            .where(ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    if changes:
        audit.record(session, actor, "user.update", "user", user.id, changes)
    session.flush()
    return _view(user)


def _keep_one_admin(session: Session, changed_user_id: int) -> None:
    remaining = session.execute(
        select(func.count(User.id)).where(
            User.role == Role.ADMIN, User.is_active.is_(True), User.id != changed_user_id
        )
    ).scalar_one()
    if remaining == 0:
        raise Conflict("this would leave no active admin; promote another user first")


def authenticate_password(session: Session, username: str, password: str) -> User:
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        user = None
    if user is None or not user.is_active:
        raise AuthenticationFailed("wrong username or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def create_token(
    session: Session,
    actor: str,
    user_id: int,
    name: str,
    *,
    kind: str = "api",
    ttl: timedelta | None = None,
) -> tuple[str, TokenView]:
    """Create a token and return (secret, view). The secret is shown only once."""
    if not 1 <= len(name) <= 100:
        raise InvalidInput("token name must have 1-100 characters")
    secret = new_secret()
    token = ApiToken(
        user_id=user_id,
        name=name,
        kind=kind,
        token_hash=hash_secret(secret),
        prefix=secret[:10],
        expires_at=utcnow() + ttl if ttl else None,
    )
    session.add(token)
    session.flush()
    if kind == "api":
        audit.record(
            session,
            actor,
            "token.create",
            "api_token",
            token.id,
            {"user_id": user_id, "name": name},
        )
    return secret, _token_view(token)


def list_tokens(session: Session, user_id: int | None = None) -> list[TokenView]:
    query = select(ApiToken).where(ApiToken.kind == "api").order_by(ApiToken.id)
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    return [_token_view(t) for t in session.execute(query).scalars()]


def revoke_token(session: Session, actor: str, token_id: int, owner_id: int | None = None) -> None:
    token = session.get(ApiToken, token_id)
    if token is None or (owner_id is not None and token.user_id != owner_id):
        raise NotFound(f"token {token_id} not found")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        if token.kind == "api":
            audit.record(session, actor, "token.revoke", "api_token", token.id)


def resolve_token(session: Session, secret: str, now: datetime | None = None) -> Principal:
    """The principal behind a bearer token or session cookie."""
    now = now or utcnow()
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == hash_secret(secret))
    ).first()
    if row is None:
        raise AuthenticationFailed("invalid token")
    token, user = row
    if token.revoked_at is not None:
        raise AuthenticationFailed("token has been revoked")
    if token.expires_at is not None and token.expires_at <= now:
        raise AuthenticationFailed("token has expired")
    if not user.is_active:
        raise AuthenticationFailed("user is disabled")
    # Coarse last-used stamp: at most one write a minute per token.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now
    return Principal(user.id, user.username, user.role, token.id)


def ensure_first_admin(session: Session, password: str | None) -> str | None:
    """Create the first admin on first start. Returns the generated password when
    one had to be generated (shown once), None when none was created or it came
    from the environment."""
    if count_users(session) > 0:
        return None
    generated = password is None
    secret = password or secrets.token_urlsafe(18)
    create_user(session, "system", "admin", secret, Role.ADMIN)
    return secret if generated else None
