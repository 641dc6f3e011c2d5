"""Fast bulk writes for inventory rows: PostgreSQL COPY, SQLite executemany."""

from __future__ import annotations

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
