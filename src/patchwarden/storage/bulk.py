"""Fast bulk writes for inventory rows: PostgreSQL COPY, SQLite executemany."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from patchwarden.domain.inventory import InstalledPackage
from patchwarden.storage.tables import InstalledPackage as InstalledPackageRow

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


def insert_packages(
    session: Session, asset_id: int, packages: Sequence[InstalledPackage], at: datetime
) -> None:
    if not packages:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        raw: Any = connection.connection.driver_connection
        with (
            raw.cursor() as cursor,
            cursor.copy(
                f"COPY installed_packages ({', '.join(PACKAGE_COLUMNS)}) FROM STDIN"
            ) as copy,
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
    session.execute(
        insert(InstalledPackageRow),
        [
            {
                "asset_id": asset_id,
                "ecosystem": p.ecosystem,
                "name": p.name,
                "version": p.version,
                "arch": p.arch,
                "source_name": p.source_name,
                "source_version": p.source_version,
                "status": p.status,
                "installed_at": at,
            }
            for p in packages
        ],
    )
