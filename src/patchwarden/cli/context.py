"""What every CLI command needs: the database (same one the server uses) and
who is acting, for the audit log."""

from __future__ import annotations

import getpass
from functools import lru_cache

from sqlalchemy.orm import Session, sessionmaker

from patchwarden.config import get_settings
from patchwarden.storage.db import make_engine, make_session_factory, upgrade


@lru_cache(maxsize=1)
def session_factory() -> sessionmaker[Session]:
    """Open (creating and migrating if needed) the configured database."""
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.effective_database_url)
    upgrade(engine)
    return make_session_factory(engine)


def cli_actor() -> str:
    """CLI commands run with local database access, so they act as the OS user."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}"
