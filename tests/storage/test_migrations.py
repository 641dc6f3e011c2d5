"""Migrations: they build exactly the schema the tables declare, on both
databases, and upgrade a database that already holds data."""

from __future__ import annotations

import json
from datetime import datetime

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


def test_upgrade_counts_and_names_the_findings_assets_already_have(engine: Engine) -> None:
    command.downgrade(alembic_config(engine), "0006")
    with engine.begin() as connection:
        asset_id = connection.execute(
            text(
                "INSERT INTO assets (hostname, source, device_type, status, ip_addresses, firmware,"
                " criticality, tags, internet_facing, data_sensitivity, collector_notes, package_count,"
                " last_report_seq, inventory_seq, findings_dirty, scores_dirty, patches_dirty,"
                " finding_risk_bound, created_at, updated_at) VALUES ('counted', 'agent', 'server',"
                " 'active', '[]', '{}', 2, '[]', false, 'internal', '[]', 0, 0, 0, false, false,"
                " false, 0, '2026-01-01', '2026-01-01') RETURNING id"
            )
        ).scalar_one()
        for vulnerability, status, due in [
            ("CVE-1", "open", "2027-01-02 03:04:05"),
            ("CVE-2", "open", "2027-01-02 03:04:05"),
            ("CVE-3", "open", "2026-12-01 00:00:00"),
            ("CVE-4", "open", None),
            ("CVE-5", "excepted", "2026-12-01 00:00:00"),
            ("CVE-6", "fixed", None),
        ]:
            connection.execute(
                text(
                    "INSERT INTO findings (asset_id, ecosystem, package_name, package_arch,"
                    " installed_version, vulnerability_id, advisory_ids, platform, status,"
                    " first_seen_at, risk_score, due_at) VALUES (:asset, 'deb', 'openssl', 'amd64',"
                    " '1.0', :vulnerability, '[]', 'debian:11', :status, '2026-11-01', 1.0, :due)"
                ),
                {"asset": asset_id, "vulnerability": vulnerability, "status": status, "due": due},
            )
    upgrade(engine)
    with engine.connect() as connection:
        names = connection.execute(text("SELECT * FROM finding_package_names")).all()
        counted = connection.execute(
            text(
                "SELECT open_findings, excepted_findings, fixed_findings,"
                " CAST(open_due_counts AS TEXT), earliest_open_due FROM assets"
            )
        ).one()
    assert [tuple(n) for n in names] == [("deb", "openssl", "")]
    assert counted[:3] == (4, 1, 1)
    assert json.loads(counted[3]) == {
        "2026-12-01T00:00:00.000000Z": 1,
        "2027-01-02T03:04:05.000000Z": 2,
    }
    earliest = (
        counted[4] if isinstance(counted[4], datetime) else datetime.fromisoformat(counted[4])
    )
    assert earliest.replace(tzinfo=None) == datetime(2026, 12, 1)
