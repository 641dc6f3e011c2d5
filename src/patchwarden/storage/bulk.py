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


# COPY's text format: backslash, tab, newline and carriage return are escaped; \N is NULL.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class FindingWriter:
    """Writes new findings in bulk: PostgreSQL COPY, SQLite executemany (a fleet's
    first match writes millions).

    Rows are encoded once, as the database takes them (a COPY text line, or a
    tuple of SQLite values), so that callers can memoise the encoded part that
    assets share: everything but the asset id (`encode_suffix`, then `row`)."""

    def __init__(self, session: Session) -> None:
        self._connection = session.connection()
        self.postgres = self._connection.dialect.name == "postgresql"
        self._stamps: dict[datetime, str] = {}
        self._json: dict[tuple[str, ...], str] = {}
        self._instants: dict[Any, datetime] = {}

    def _stamp(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        text = self._stamps.get(value)
        if text is None:
            utc = value.astimezone(UTC)
            text = self._stamps[value] = (
                utc.isoformat(sep=" ")
                if self.postgres
                # The text form SQLAlchemy's DateTime type writes to SQLite (naive UTC).
                else utc.replace(tzinfo=None).strftime(SQLITE_DATETIME_FORMAT)
            )
        return text

    def stored(self, value: datetime | None) -> Any:
        """An instant as the driver returns it from a findings column, to compare
        with a row read by the driver's own cursor (SQLite: text; PostgreSQL: an
        aware datetime)."""
        return value if self.postgres else self._stamp(value)

    def instant(self, raw: Any) -> datetime:
        """The aware UTC datetime of a value read by the driver's own cursor (in UTC:
        PostgreSQL returns the session's time zone, in which adding days would
        follow its daylight-saving shifts)."""
        value = self._instants.get(raw)
        if value is None:
            value = self._instants[raw] = (
                raw.astimezone(UTC)
                if self.postgres
                else datetime.fromisoformat(raw).replace(tzinfo=UTC)
            )
        return value

    def advisories_json(self, ids: tuple[str, ...]) -> str:
        text = self._json.get(ids)
        if text is None:
            text = self._json[ids] = json.dumps(list(ids))
        return text

    def encode_suffix(self, values: tuple[Any, ...]) -> Any:
        """FINDING_COLUMNS after asset_id, with datetimes and advisory ids (a tuple)."""
        (ecosystem, name, arch, vulnerability_id, status, first_seen_at, fixed_at,
         installed_version, source_name, advisory_ids, fixed_version, platform, risk_score,
         due_at) = values  # fmt: skip
        encoded = (
            ecosystem,
            name,
            arch,
            vulnerability_id,
            status,
            self._stamp(first_seen_at),
            self._stamp(fixed_at),
            installed_version,
            source_name,
            self.advisories_json(advisory_ids),
            fixed_version,
            platform,
            risk_score,
            self._stamp(due_at),
        )
        if not self.postgres:
            return encoded
        return "\t".join(
            "\\N"
            if v is None
            else repr(v)
            if isinstance(v, float)
            else str(v).translate(_COPY_ESCAPES)
            for v in encoded
        )

    def row(self, asset_id: int, suffix: Any) -> Any:
        return f"{asset_id}\t{suffix}\n" if self.postgres else (asset_id, *suffix)

    def encode(self, row: tuple[Any, ...]) -> Any:
        """A whole row in FINDING_COLUMNS order."""
        return self.row(row[0], self.encode_suffix(row[1:]))

    def write(self, rows: Sequence[Any]) -> None:
        """Rows encoded by `encode` or `row`."""
        if not rows:
            return
        columns = ", ".join(FINDING_COLUMNS)
        if self.postgres:
            raw: Any = self._connection.connection.driver_connection
            with (
                raw.cursor() as cursor,
                cursor.copy(f"COPY findings ({columns}) FROM STDIN") as copy,
            ):
                for start in range(0, len(rows), 10_000):
                    copy.write("".join(rows[start : start + 10_000]))
            return
        placeholders = ", ".join("?" * len(FINDING_COLUMNS))
        self._connection.exec_driver_sql(
            f"INSERT INTO findings ({columns}) VALUES ({placeholders})",  # noqa: S608 - constants
            rows,
        )
