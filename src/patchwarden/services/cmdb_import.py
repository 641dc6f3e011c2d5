"""Importing a CMDB export: create or update assets from its rows.

Each row is matched to an existing asset by hostname (ignoring case), else by
serial (ignoring case), else by IP address (an asset whose `ip_addresses`
contains it). A row whose keys point at different assets is rejected as
ambiguous, as is a key that matches several assets.

What an import may change on an existing asset:

- always (the CMDB owns them): device_type and the business attributes
  (criticality, environment, owner, business_service, region, timezone, tags,
  internet_facing, data_sensitivity). Tags given replace the asset's tags.
- fields agents and SSH collection also report (fqdn, os_id, os_version_id,
  serial, ip_addresses, vendor, model, firmware_version): set on assets the
  CMDB created (source "cmdb"); on agent/SSH assets only filled in when empty,
  so the CMDB never overwrites what the machine itself reports.
- never: the hostname, and the rest of the inventory (packages, kernel, ...).

A value the row does not give is left as it is; an import never clears one.

Each row is applied in its own transaction, with its audit event
(`asset.cmdb_create` / `asset.cmdb_update`), so a rejected row changes nothing
and the other rows still apply; one `import.cmdb` event summarises the run.
A dry run applies the rows inside one transaction that is rolled back, so it
reports exactly what a real run would do and writes nothing.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.imports.cmdb import CmdbFormat, CmdbRecord, RejectedRow, read_cmdb
from patchwarden.services import audit
from patchwarden.storage.db import transaction
from patchwarden.storage.tables import Asset, utcnow

RowAction = Literal["created", "updated", "unchanged", "rejected"]
ACTIONS: Final[tuple[RowAction, ...]] = ("created", "updated", "unchanged", "rejected")

# Asset columns the CMDB owns on every asset: record attribute -> column.
OWNED_COLUMNS: Final = {
    "device_type": "device_type",
    "criticality": "criticality",
    "environment": "environment",
    "owner": "owner",
    "business_service": "business_service",
    "region": "region",
    "timezone": "timezone",
    "tags": "tags",
    "internet_facing": "internet_facing",
    "data_sensitivity": "data_sensitivity",
}
# Asset columns agents/SSH also report: owned on CMDB assets, else only filled in.
REPORTED_COLUMNS: Final = {
    "fqdn": "fqdn",
    "os": "os_id",
    "os_version": "os_version_id",
    "serial": "serial",
    "vendor": "vendor",
    "model": "model",
    "firmware_version": "firmware_version",
}
_REJECTED_IN_SUMMARY: Final = 100


@dataclass(frozen=True)
class RowResult:
    row: int
    action: RowAction
    identity: str
    asset_id: int | None = None  # None when rejected, or created in a dry run
    reason: str | None = None  # why the row was rejected
    # Asset columns taken from the row (created) or changed by it (updated).
    changed_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportTotals:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged + self.rejected


@dataclass(frozen=True)
class ImportReport:
    format: CmdbFormat
    dry_run: bool
    rows: tuple[RowResult, ...]
    warnings: tuple[str, ...] = ()
    totals: ImportTotals = field(default_factory=ImportTotals)

    @property
    def has_rejections(self) -> bool:
        return self.totals.rejected > 0


def import_cmdb(
    factory: sessionmaker[Session],
    content: bytes,
    fmt: CmdbFormat | None,
    actor: str,
    dry_run: bool = False,
) -> ImportReport:
    """Import a CMDB file (format detected when `fmt` is None).

    Raises `InvalidInput` when the file as a whole cannot be read; problems in
    single rows are reported as rejected rows instead."""
    parsed = read_cmdb(content, fmt)
    if dry_run:
        with factory() as session:
            outer = session.begin()
            try:
                index = _AssetIndex.load(session)
                results = _apply_rows(
                    parsed.rows, index, lambda: _savepoint(session), actor, dry_run=True
                )
            finally:
                outer.rollback()
    else:
        with transaction(factory) as session:
            index = _AssetIndex.load(session)
        results = _apply_rows(
            parsed.rows, index, lambda: transaction(factory), actor, dry_run=False
        )
    totals = ImportTotals(
        **{action: sum(r.action == action for r in results) for action in ACTIONS}
    )
    report = ImportReport(parsed.format, dry_run, tuple(results), parsed.warnings, totals)
    if not dry_run:
        with transaction(factory) as session:
            audit.record(session, actor, "import.cmdb", "import", None, _summary(report, content))
    return report


# ---------------------------------------------------------------------------
# Applying rows


class _RowRejectedError(Exception):
    """A row cannot be applied; the message is the reason shown in the report."""


@dataclass(frozen=True)
class _Outcome:
    result: RowResult
    asset: _IndexEntry | None  # the asset's identity after the row, to update the index


def _apply_rows(
    rows: tuple[CmdbRecord | RejectedRow, ...],
    index: _AssetIndex,
    unit_of_work: Callable[[], AbstractContextManager[Session]],
    actor: str,
    *,
    dry_run: bool,
) -> list[RowResult]:
    results: list[RowResult] = []
    for item in rows:
        if isinstance(item, RejectedRow):
            results.append(RowResult(item.row, "rejected", item.identity, reason=item.reason))
            continue
        try:
            with unit_of_work() as session:
                outcome = _apply_row(session, item, index, actor, dry_run=dry_run)
        except _RowRejectedError as exc:
            results.append(RowResult(item.row, "rejected", item.identity, reason=str(exc)))
            continue
        except SQLAlchemyError as exc:
            reason = f"the database refused the row: {type(exc).__name__}: {exc}".splitlines()[0]
            results.append(RowResult(item.row, "rejected", item.identity, reason=reason))
            continue
        if outcome.asset is not None:
            index.put(outcome.asset)  # only once the row's changes are committed
        results.append(outcome.result)
    return results


@contextmanager
def _savepoint(session: Session) -> Iterator[Session]:
    with session.begin_nested():
        yield session


def _apply_row(
    session: Session, record: CmdbRecord, index: _AssetIndex, actor: str, *, dry_run: bool
) -> _Outcome:
    asset_id = index.match(record)
    if asset_id is None:
        return _create(session, record, actor, dry_run=dry_run)
    asset = session.get(Asset, asset_id)
    if asset is None or not _still_matches(record, _IndexEntry.of(asset)):
        raise _RowRejectedError(
            f"asset {asset_id} changed during the import; import the file again"
        )
    return _update(session, record, asset, actor, dry_run=dry_run)


def _create(session: Session, record: CmdbRecord, actor: str, *, dry_run: bool) -> _Outcome:
    now = utcnow()
    hostname = record.hostname or record.ip or record.serial or ""
    values: dict[str, Any] = {
        "hostname": hostname,
        "source": "cmdb",
        "status": "active",
        "device_type": record.device_type or "server",
        "ip_addresses": [record.ip] if record.ip else [],
    }
    from_row = ["hostname", "ip_addresses"] if record.ip else ["hostname"]
    for attr, column in (*OWNED_COLUMNS.items(), *REPORTED_COLUMNS.items()):
        value = getattr(record, attr)
        if value is not None:
            values[column] = list(value) if attr == "tags" else value
            from_row.append(column)
    asset = Asset(**values, created_at=now, updated_at=now)
    session.add(asset)
    session.flush()
    if not dry_run:
        audit.record(
            session,
            actor,
            "asset.cmdb_create",
            "asset",
            asset.id,
            {"row": record.row, "fields": values},
        )
    result = RowResult(
        record.row,
        "created",
        record.identity,
        asset_id=None if dry_run else asset.id,
        changed_fields=tuple(sorted(from_row)),
    )
    return _Outcome(result, _IndexEntry.of(asset))


def _update(
    session: Session, record: CmdbRecord, asset: Asset, actor: str, *, dry_run: bool
) -> _Outcome:
    owns_reported = asset.source == "cmdb"
    changes: dict[str, dict[str, Any]] = {}

    def change(column: str, new: Any) -> None:
        old = getattr(asset, column)
        if old != new:
            changes[column] = {"from": old, "to": new}

    for attr, column in OWNED_COLUMNS.items():
        value = getattr(record, attr)
        if value is not None:
            change(column, list(value) if attr == "tags" else value)
    for attr, column in REPORTED_COLUMNS.items():
        value = getattr(record, attr)
        if value is not None and (owns_reported or getattr(asset, column) in (None, "")):
            change(column, value)
    current_ips = asset.ip_addresses or []
    if (
        record.ip is not None
        and record.ip not in current_ips
        and (owns_reported or not current_ips)
    ):
        change("ip_addresses", [record.ip])
    if not changes:
        result = RowResult(record.row, "unchanged", record.identity, asset.id)
        return _Outcome(result, None)
    for column, change_ in changes.items():
        setattr(asset, column, change_["to"])
    asset.updated_at = utcnow()
    session.flush()
    if not dry_run:
        audit.record(
            session,
            actor,
            "asset.cmdb_update",
            "asset",
            asset.id,
            {"row": record.row, "changes": changes},
        )
    result = RowResult(
        record.row, "updated", record.identity, asset.id, changed_fields=tuple(sorted(changes))
    )
    return _Outcome(result, _IndexEntry.of(asset))


def _summary(report: ImportReport, content: bytes) -> dict[str, Any]:
    rejected = [
        {"row": r.row, "identity": r.identity, "reason": r.reason}
        for r in report.rows
        if r.action == "rejected"
    ]
    return {
        "format": report.format,
        "sha256": hashlib.sha256(content).hexdigest(),
        "bytes": len(content),
        "rows": report.totals.total,
        "created": report.totals.created,
        "updated": report.totals.updated,
        "unchanged": report.totals.unchanged,
        "rejected": report.totals.rejected,
        "warnings": list(report.warnings),
        "rejected_rows": rejected[:_REJECTED_IN_SUMMARY],
    }


# ---------------------------------------------------------------------------
# Matching rows to assets


@dataclass(frozen=True)
class _IndexEntry:
    """The identity keys of one asset, normalised for matching."""

    asset_id: int
    hostname: str | None
    serial: str | None
    ips: frozenset[str]

    @classmethod
    def of(cls, asset: Asset) -> _IndexEntry:
        return cls.from_columns(asset.id, asset.hostname, asset.serial, asset.ip_addresses)

    @classmethod
    def from_columns(
        cls, asset_id: int, hostname: str | None, serial: str | None, ips: object
    ) -> _IndexEntry:
        return cls(
            asset_id,
            _key(hostname),
            _key(serial),
            frozenset(filter(None, map(_ip_key, ips if isinstance(ips, list) else []))),
        )


def _key(value: str | None) -> str | None:
    return value.strip().lower() or None if value else None


def _ip_key(value: object) -> str | None:
    try:
        return str(ipaddress.ip_interface(str(value)).ip)
    except ValueError:
        return None


class _AssetIndex:
    """Identity keys of all assets, read once at the start of an import (so rows
    are not each a scan of the assets table) and kept up to date as rows apply.
    A match is checked again against the stored asset before it is changed."""

    def __init__(self) -> None:
        self._entries: dict[int, _IndexEntry] = {}
        self._by: dict[str, dict[str, set[int]]] = {"hostname": {}, "serial": {}, "ip": {}}

    @classmethod
    def load(cls, session: Session) -> _AssetIndex:
        index = cls()
        statement = select(Asset.id, Asset.hostname, Asset.serial, Asset.ip_addresses)
        for row in session.execute(statement):
            index.put(_IndexEntry.from_columns(row[0], row[1], row[2], row[3]))
        return index

    def put(self, entry: _IndexEntry) -> None:
        old = self._entries.get(entry.asset_id)
        if old is not None:
            for kind, value in _keys_of(old):
                self._by[kind].get(value, set()).discard(old.asset_id)
        self._entries[entry.asset_id] = entry
        for kind, value in _keys_of(entry):
            self._by[kind].setdefault(value, set()).add(entry.asset_id)

    def _candidates(self, record: CmdbRecord) -> list[tuple[str, set[int]]]:
        """(key kind, matching asset ids) for each key the record gives, by precedence."""
        wanted = (("hostname", _key(record.hostname)), ("serial", _key(record.serial)))
        found = [(kind, set(self._by[kind].get(value, ()))) for kind, value in wanted if value]
        if record.ip:
            found.append(("ip", set(self._by["ip"].get(record.ip, ()))))
        return [(kind, ids) for kind, ids in found if ids]

    def match(self, record: CmdbRecord) -> int | None:
        """The one asset the record names, None for a new asset; `_RowRejectedError` when
        its keys point at several assets."""
        candidates = self._candidates(record)
        if not candidates:
            return None
        _, ids = candidates[0]
        if len(ids) > 1:
            raise _RowRejectedError(f"ambiguous: {_describe(candidates)}")
        (chosen,) = ids
        if any(chosen not in other for _, other in candidates[1:]):
            raise _RowRejectedError(f"ambiguous: {_describe(candidates)}")
        return chosen


def _still_matches(record: CmdbRecord, entry: _IndexEntry) -> bool:
    """Whether the stored asset still has one of the record's keys (it may have
    changed since the index was read)."""
    keys = {("hostname", _key(record.hostname)), ("serial", _key(record.serial)), ("ip", record.ip)}
    return bool(keys & set(_keys_of(entry)))


def _keys_of(entry: _IndexEntry) -> list[tuple[str, str]]:
    keys = [("ip", ip) for ip in entry.ips]
    if entry.hostname:
        keys.append(("hostname", entry.hostname))
    if entry.serial:
        keys.append(("serial", entry.serial))
    return keys


def _describe(candidates: list[tuple[str, set[int]]]) -> str:
    parts = []
    for kind, ids in candidates:
        noun = "asset" if len(ids) == 1 else "assets"
        parts.append(f"{kind} matches {noun} {', '.join(map(str, sorted(ids)))}")
    return ", ".join(parts)
