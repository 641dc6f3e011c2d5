"""Alembic environment: runs against the engine Patchwarden hands it."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from patchwarden.storage.tables import Base

engine: Engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
