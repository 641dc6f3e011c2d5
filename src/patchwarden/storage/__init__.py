"""Persistence: SQLAlchemy tables, the engine, and Alembic migrations."""
