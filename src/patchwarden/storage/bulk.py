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


class FindingWriter:
    """Writes new findings in bulk: PostgreSQL COPY, SQLite executemany (a fleet's
    first match writes millions). Values are encoded once, as the database keeps
    them, so that callers can memoise encoded rows: findings of one instant share
    a few distinct time stamps and advisory lists."""

    def __init__(self, session: Session) -> None:
        self._connection = session.connection()
        self.postgres = self._connection.dialect.name == "postgresql"
        self._stamps: dict[datetime, str] = {}
        self._json: dict[tuple[str, ...], str] = {}

    def stamp(self, value: datetime | None) -> Any:
        if value is None or self.postgres:
            return value
        text = self._stamps.get(value)
        if text is None:
            # The text form SQLAlchemy's DateTime type writes to SQLite (naive UTC).
            text = self._stamps[value] = (
                value.astimezone(UTC).replace(tzinfo=None).strftime(SQLITE_DATETIME_FORMAT)
            )
        return text

    def advisories(self, ids: tuple[str, ...]) -> str:
        text = self._json.get(ids)
        if text is None:
            text = self._json[ids] = json.dumps(list(ids))
        return text

    def encode(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """A row in FINDING_COLUMNS order, with datetimes and advisory ids (a tuple)."""
        (asset_id, ecosystem, name, arch, vulnerability_id, status, first_seen_at, fixed_at,
         installed_version, source_name, advisory_ids, fixed_version, platform, risk_score,
         due_at) = row  # fmt: skip
        return (
            asset_id,
            ecosystem,
            name,
            arch,
            vulnerability_id,
            status,
            self.stamp(first_seen_at),
            self.stamp(fixed_at),
            installed_version,
            source_name,
            self.advisories(advisory_ids),
            fixed_version,
            platform,
            risk_score,
            self.stamp(due_at),
        )

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Rows already encoded (see encode), in FINDING_COLUMNS order."""
        if not rows:
            return
        columns = ", ".join(FINDING_COLUMNS)
        if self.postgres:
            raw: Any = self._connection.connection.driver_connection
            with (
                raw.cursor() as cursor,
                cursor.copy(f"COPY findings ({columns}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            return
        placeholders = ", ".join("?" * len(FINDING_COLUMNS))
        self._connection.exec_driver_sql(
            f"INSERT INTO findings ({columns}) VALUES ({placeholders})",  # noqa: S608 - constants
            rows,
        )


def insert_findings(session: Session, rows: Sequence[tuple[Any, ...]]) -> None:
    """New findings, as tuples in FINDING_COLUMNS order (advisory ids as a tuple)."""
    writer = FindingWriter(session)
    writer.write([writer.encode(row) for row in rows])
