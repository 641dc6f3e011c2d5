"""Fast bulk writes for inventory rows: PostgreSQL COPY, SQLite executemany."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from patchwarden.domain.inventory import InstalledPackage

PACKAGE_COLUMNS = (
    "asset_id",
    "ecosystem",
    "name",
    "version",
    "arch",
    "source_name",
    "source_version",
    "status",
    "installed_at",
)
# The text form SQLAlchemy's DateTime type writes to SQLite (naive UTC).
SQLITE_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def insert_packages(
    session: Session, asset_id: int, packages: Sequence[InstalledPackage], at: datetime
) -> None:
    if not packages:
        return
    connection = session.connection()
    columns = ", ".join(PACKAGE_COLUMNS)
    if connection.dialect.name == "postgresql":
        raw: Any = connection.connection.driver_connection
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY installed_packages ({columns}) FROM STDIN") as copy,
        ):
            for p in packages:
                copy.write_row(
                    (
                        asset_id,
                        p.ecosystem,
                        p.name,
                        p.version,
                        p.arch,
                        p.source_name,
                        p.source_version,
                        p.status,
                        at,
                    )
                )
        return
    stamp = at.astimezone(UTC).replace(tzinfo=None).strftime(SQLITE_DATETIME_FORMAT)
    placeholders = ", ".join("?" * len(PACKAGE_COLUMNS))
    connection.exec_driver_sql(
        # Column names and placeholders are constants of this module.
        f"INSERT INTO installed_packages ({columns}) VALUES ({placeholders})",  # noqa: S608
        [
            (
                asset_id,
                p.ecosystem,
                p.name,
                p.version,
                p.arch,
                p.source_name,
                p.source_version,
                p.status,
                stamp,
            )
            for p in packages
        ],
    )


FINDING_COLUMNS = (
    "asset_id",
    "ecosystem",
    "package_name",
    "package_arch",
    "vulnerability_id",
    "status",
    "first_seen_at",
    "fixed_at",
    "installed_version",
    "source_name",
    "advisory_ids",
    "fixed_version",
    "platform",
    "risk_score",
    "due_at",
)


def insert_findings(session: Session, rows: Sequence[tuple[Any, ...]]) -> None:
    """New findings, as tuples in FINDING_COLUMNS order (advisory ids as a tuple):
    PostgreSQL COPY, SQLite executemany (a fleet's first match writes millions)."""
    if not rows:
        return
    connection = session.connection()
    columns = ", ".join(FINDING_COLUMNS)
    advisories_at = FINDING_COLUMNS.index("advisory_ids")
    as_json: dict[tuple[str, ...], str] = {}  # a handful of distinct advisory lists per asset

    def advisory_json(ids: tuple[str, ...]) -> str:
        text = as_json.get(ids)
        if text is None:
            text = as_json[ids] = json.dumps(list(ids))
        return text

    if connection.dialect.name == "postgresql":
        raw: Any = connection.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY findings ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(
                    (
                        *row[:advisories_at],
                        advisory_json(row[advisories_at]),
                        *row[advisories_at + 1 :],
                    )
                )
        return

    stamps: dict[datetime, str] = {}  # findings of one batch share a few distinct instants

    def stamp(value: datetime | None) -> str | None:
        if value is None:
            return None
        text = stamps.get(value)
        if text is None:
            text = stamps[value] = (
                value.astimezone(UTC).replace(tzinfo=None).strftime(SQLITE_DATETIME_FORMAT)
            )
        return text

    values = [
        (
            asset_id,
            ecosystem,
            name,
            arch,
            vulnerability_id,
            status,
            stamp(first_seen_at),
            stamp(fixed_at),
            installed_version,
            source_name,
            advisory_json(advisory_ids),
            fixed_version,
            platform,
            risk_score,
            stamp(due_at),
        )
        for (
            asset_id,
            ecosystem,
            name,
            arch,
            vulnerability_id,
            status,
            first_seen_at,
            fixed_at,
            installed_version,
            source_name,
            advisory_ids,
            fixed_version,
            platform,
            risk_score,
            due_at,
        ) in rows
    ]
    placeholders = ", ".join("?" * len(FINDING_COLUMNS))
    connection.exec_driver_sql(
        f"INSERT INTO findings ({columns}) VALUES ({placeholders})",  # noqa: S608 - constants
        values,
    )
