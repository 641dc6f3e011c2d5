"""What every CLI command needs: the database (same one the server uses) and
who is acting, for the audit log."""

from __future__ import annotations

import getpass
from functools import lru_cache

from sqlalchemy.orm import Session, sessionmaker

from patchwarden.config import get_settings
from patchwarden.errors import PermissionDenied
from patchwarden.storage.db import make_engine, make_session_factory, upgrade


@lru_cache(maxsize=1)
def session_factory() -> sessionmaker[Session]:
    """Open (creating and migrating if needed) the configured database."""
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.effective_database_url)
    upgrade(engine)
    return make_session_factory(engine)


def acting_user(session: Session, username: str) -> tuple[str, str]:
    """`--as USERNAME`: the audit name ("user:NAME") and role of an existing, active user."""
    from patchwarden.services import users

    user = users.get_user(session, username)
    if not user.is_active:
        raise PermissionDenied(f"user {user.username!r} is deactivated and cannot act")
    return f"user:{user.username}", user.role


def cli_actor() -> str:
    """CLI commands run with local database access, so they act as the OS user."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}"
