"""Migrations: they build exactly the schema the tables declare, on both
databases, and upgrade a database that already holds data."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text

from patchwarden.storage.db import alembic_config, upgrade
from patchwarden.storage.tables import Base


def test_migrations_match_the_tables(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_upgrade_keeps_existing_data(engine: Engine) -> None:
    command.downgrade(alembic_config(engine), "0001")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO assets (hostname, source, device_type, status, ip_addresses, firmware,"
                " criticality, tags, internet_facing, data_sensitivity, collector_notes, package_count,"
                " last_report_seq, inventory_seq, created_at, updated_at) VALUES ('kept', 'agent', 'server',"
                " 'active', '[]', '{}', 2, '[]', false, 'internal', '[]', 0, 0, 0, '2026-01-01', '2026-01-01')"
            )
        )
        # A row that refers to the asset: SQLite alters a table by copying it, which
        # must not cascade to the rows that refer to the original.
        connection.execute(
            text(
                "INSERT INTO installed_packages (asset_id, ecosystem, name, version, arch, status,"
                " installed_at) SELECT id, 'deb', 'openssl', '3.0.11-1', 'amd64', 'installed',"
                " '2026-01-01' FROM assets"
            )
        )
    upgrade(engine)
    upgrade(engine)  # idempotent
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT hostname, criticality, findings_dirty FROM assets")
        ).all()
        packages = connection.execute(text("SELECT name, version FROM installed_packages")).all()
    assert [(r[0], r[1], bool(r[2])) for r in rows] == [("kept", 2, False)]
    assert [tuple(p) for p in packages] == [("openssl", "3.0.11-1")]
