"""Alembic environment: runs against the engine Patchwarden hands it."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection, Engine

from patchwarden.storage.tables import Base

engine: Engine = context.config.attributes["engine"]


def _pragma(connection: Connection, setting: str) -> None:
    driver: Any = connection.connection.driver_connection
    driver.execute(f"PRAGMA {setting}")


with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # SQLite alters a table by copying it and dropping the original (batch
        # mode), and with foreign keys on, dropping `assets` would cascade to every
        # row that refers to it. The pragma only takes effect outside a transaction,
        # so it goes to the driver's connection before SQLAlchemy begins one.
        _pragma(connection, "foreign_keys=OFF")
    try:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=sqlite,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(f"migration left rows that refer to nothing: {broken[:5]}")
        connection.commit()
    finally:
        if sqlite:
            connection.rollback()  # nothing is left to roll back after the commit
            _pragma(connection, "foreign_keys=ON")
