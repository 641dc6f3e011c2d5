"""Reading a CMDB export (CSV or JSON) into validated records. Pure: no I/O.

CSV: a header row, then one asset per row, comma-separated, UTF-8 (a BOM is
allowed). Header names ignore case, spaces and hyphens (``Serial Number`` is
``serial_number``). Tags are separated by ``;``; booleans are
true/false/yes/no/1/0.

JSON: a list of objects, or an object ``{"assets": [...]}``. Tags may be a list
of strings or one ``;``-separated string.

Every row needs at least one identity field: hostname, serial or ip. An empty
cell, a JSON null and a missing column all mean "not given": the import leaves
that attribute of an existing asset as it is (it never clears a value).

Row numbers: the CSV line where the row starts (the header is line 1); the
1-based position of the object in the JSON list.

Problems in one row reject that row only (`RejectedRow`, with the reason);
unknown columns are reported once for the whole file (`CmdbFile.warnings`) and
ignored; a file that is not UTF-8 CSV or JSON at all raises `InvalidInput`.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Final, Literal, TypeAlias, TypeVar

from pydantic import ValidationError

from patchwarden.domain.attributes import DEVICE_TYPES, AssetAttributes
from patchwarden.errors import InvalidInput

CmdbFormat = Literal["csv", "json"]
FORMATS: Final[tuple[CmdbFormat, ...]] = ("csv", "json")

IDENTITY_FIELDS: Final = ("hostname", "serial", "ip")
DESCRIPTIVE_FIELDS: Final = (
    "fqdn",
    "device_type",
    "vendor",
    "model",
    "firmware_version",
    "os",
    "os_version",
)
BUSINESS_FIELDS: Final = (
    "criticality",
    "environment",
    "owner",
    "business_service",
    "region",
    "timezone",
    "tags",
    "internet_facing",
    "data_sensitivity",
)
KNOWN_FIELDS: Final = (*IDENTITY_FIELDS, *DESCRIPTIVE_FIELDS, *BUSINESS_FIELDS)
# Other common spellings of the same columns.
ALIASES: Final[Mapping[str, str]] = {
    "host_name": "hostname",
    "serial_number": "serial",
    "ip_address": "ip",
    "os_id": "os",
    "os_version_id": "os_version",
    "tag": "tags",
}
# Longest accepted text per field (the asset table's column sizes).
MAX_LENGTH: Final[Mapping[str, int]] = {
    "hostname": 255,
    "fqdn": 255,
    "serial": 128,
    "vendor": 128,
    "model": 128,
    "firmware_version": 128,
    "os": 64,
    "os_version": 64,
}
HOSTNAME_RE: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?")
MAX_ROWS: Final = 100_000
_TRUE: Final = frozenset({"true", "yes", "1"})
_FALSE: Final = frozenset({"false", "no", "0"})

_V = TypeVar("_V")
RawValue: TypeAlias = str | int | float | bool | list[object] | dict[str, object] | None


@dataclass(frozen=True)
class CmdbRecord:
    """One validated CMDB row. None means "not given" (leave as is)."""

    row: int
    hostname: str | None = None
    serial: str | None = None
    ip: str | None = None  # normalised by `ipaddress`
    fqdn: str | None = None
    device_type: str | None = None  # an asset created without one is a "server"
    vendor: str | None = None
    model: str | None = None
    firmware_version: str | None = None
    os: str | None = None
    os_version: str | None = None
    criticality: int | None = None
    environment: str | None = None
    owner: str | None = None
    business_service: str | None = None
    region: str | None = None
    timezone: str | None = None
    tags: tuple[str, ...] | None = None  # normalised, sorted
    internet_facing: bool | None = None
    data_sensitivity: str | None = None

    @property
    def identity(self) -> str:
        """How the row names its asset, for reports: "hostname=web-1, serial=X"."""
        return identity_text(
            {"hostname": self.hostname, "serial": self.serial, "ip": self.ip}.items()
        )


@dataclass(frozen=True)
class RejectedRow:
    """A row that cannot be imported, and why."""

    row: int
    identity: str
    reason: str


@dataclass(frozen=True)
class CmdbFile:
    format: CmdbFormat
    rows: tuple[CmdbRecord | RejectedRow, ...]
    warnings: tuple[str, ...] = ()


def identity_text(pairs: Iterable[tuple[str, object]]) -> str:
    return ", ".join(f"{key}={value}" for key, value in pairs if value not in (None, ""))


def detect_format(content: bytes) -> CmdbFormat:
    """JSON when the first non-blank character opens a list or object, else CSV."""
    start = content.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return "json" if start in (b"[", b"{") else "csv"


def read_cmdb(content: bytes, fmt: CmdbFormat | None = None) -> CmdbFile:
    """Parse and validate a whole CMDB file."""
    if fmt is None:
        fmt = detect_format(content)
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown CMDB format {fmt!r}; use one of {', '.join(FORMATS)}")
    text = _decode(content)
    return _read_json(text) if fmt == "json" else _read_csv(text)


def _decode(content: bytes) -> str:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"the file is not UTF-8 text (bad byte at offset {exc.start}); "
            "export the CMDB as UTF-8 CSV or JSON"
        ) from exc
    if "\x00" in text:
        raise InvalidInput("the file contains NUL bytes: it is not a CSV or JSON text file")
    return text


# ---------------------------------------------------------------------------
# CSV


def _read_csv(text: str) -> CmdbFile:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)  # leading blank lines
        if header is None:
            raise InvalidInput("the CSV file is empty: expected a header row")
        columns = [_column_name(cell) for cell in header]
        _check_header(columns, header)
        known = set(KNOWN_FIELDS)
        warnings = _unknown_columns_warning([c for c in columns if c not in known])
        rows: list[CmdbRecord | RejectedRow] = []
        line = reader.line_num
        for cells in reader:
            start, line = line + 1, reader.line_num
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue  # blank line
            if len(rows) >= MAX_ROWS:
                raise InvalidInput(f"the file has more than {MAX_ROWS} rows; split it up")
            if len(cells) != len(columns):
                rows.append(
                    RejectedRow(
                        start,
                        _identity_of_cells(columns, cells),
                        f"line {start}: expected {len(columns)} fields (as in the header), "
                        f"found {len(cells)}",
                    )
                )
                continue
            values = {
                name: cell for name, cell in zip(columns, cells, strict=True) if name in known
            }
            rows.append(validate_row(start, values))
    except csv.Error as exc:
        raise InvalidInput(f"not a valid CSV file: line {reader.line_num}: {exc}") from exc
    return CmdbFile("csv", tuple(rows), warnings)


def _column_name(cell: str) -> str:
    name = re.sub(r"[\s-]+", "_", cell.strip().lower())
    return ALIASES.get(name, name)


def _check_header(columns: Sequence[str], header: Sequence[str]) -> None:
    if any(not name for name in columns):
        position = next(i for i, name in enumerate(columns) if not name) + 1
        raise InvalidInput(f"the CSV header has an empty column name (column {position})")
    seen: set[str] = set()
    for name, original in zip(columns, header, strict=True):
        if name in seen:
            raise InvalidInput(f"the CSV header names column {name!r} twice ({original.strip()!r})")
        seen.add(name)
    if not seen & set(IDENTITY_FIELDS):
        raise InvalidInput(
            "the CSV header has no identity column: give at least one of "
            f"{', '.join(IDENTITY_FIELDS)} (found: {', '.join(h.strip() for h in header)})"
        )


def _identity_of_cells(columns: Sequence[str], cells: Sequence[str]) -> str:
    pairs = [
        (name, cell.strip())
        for name, cell in zip(columns, cells, strict=False)
        if name in IDENTITY_FIELDS
    ]
    return identity_text(pairs)


# ---------------------------------------------------------------------------
# JSON


def _read_json(text: str) -> CmdbFile:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"not a valid JSON file: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from exc
    except RecursionError as exc:
        raise InvalidInput("not a valid JSON file: nested too deeply") from exc
    if isinstance(data, dict):
        if "assets" not in data:
            raise InvalidInput(
                'a JSON CMDB file is a list of asset objects or {"assets": [...]}; '
                f"found an object with keys {', '.join(sorted(map(str, data))[:10]) or '(none)'}"
            )
        data = data["assets"]
    if not isinstance(data, list):
        raise InvalidInput(
            'a JSON CMDB file is a list of asset objects or {"assets": [...]}; '
            f"found {_json_type(data)}"
        )
    if len(data) > MAX_ROWS:
        raise InvalidInput(f"the file has more than {MAX_ROWS} rows; split it up")
    known = set(KNOWN_FIELDS)
    unknown: dict[str, None] = {}
    rows: list[CmdbRecord | RejectedRow] = []
    for number, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            rows.append(RejectedRow(number, "", f"expected an object, found {_json_type(item)}"))
            continue
        values: dict[str, RawValue] = {}
        for key, value in item.items():
            name = _column_name(str(key))
            if name not in known:
                unknown.setdefault(str(key), None)
            elif name in values:
                rows.append(RejectedRow(number, "", f"field {name!r} is given twice (as {key!r})"))
                break
            else:
                values[name] = value
        else:
            rows.append(validate_row(number, values))
    return CmdbFile("json", tuple(rows), _unknown_columns_warning(list(unknown)))


def _json_type(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"


def _unknown_columns_warning(unknown: Sequence[str]) -> tuple[str, ...]:
    if not unknown:
        return ()
    return (
        f"ignored unknown columns: {', '.join(unknown)} (known columns: {', '.join(KNOWN_FIELDS)})",
    )


# ---------------------------------------------------------------------------
# Validating one row


class _RowError(ValueError):
    """One problem with one field of a row."""


def validate_row(row: int, values: Mapping[str, RawValue]) -> CmdbRecord | RejectedRow:
    """Turn one row's {field: raw value} into a record, or say why it cannot be
    (every problem found, separated by "; ").

    `values` has canonical field names (see `KNOWN_FIELDS`); others are ignored."""
    problems: list[str] = []

    def check(convert: Callable[[], _V]) -> _V | None:
        try:
            return convert()
        except _RowError as exc:
            problems.append(str(exc))
            return None

    texts = {
        name: check(partial(_text, name, values.get(name)))
        for name in (*IDENTITY_FIELDS, *DESCRIPTIVE_FIELDS)
        if name != "device_type"
    }
    hostname, serial = texts["hostname"], texts["serial"]
    if hostname is not None:
        check(partial(_hostname, "hostname", hostname))
    if texts["fqdn"] is not None:
        check(partial(_hostname, "fqdn", texts["fqdn"]))
    ip = check(partial(_ip, texts["ip"]))
    attributes = _attributes(values, problems)
    if not problems and hostname is None and serial is None and ip is None:
        problems.append(f"no identity: give at least one of {', '.join(IDENTITY_FIELDS)}")
    if problems or attributes is None:
        identity = identity_text((name, _display(values.get(name))) for name in IDENTITY_FIELDS)
        return RejectedRow(row, identity, "; ".join(problems))
    os_id = texts["os"]
    return CmdbRecord(
        row=row,
        hostname=hostname,
        serial=serial,
        ip=ip,
        fqdn=texts["fqdn"],
        device_type=attributes.device_type,
        vendor=texts["vendor"],
        model=texts["model"],
        firmware_version=texts["firmware_version"],
        os=os_id.lower() if os_id is not None else None,
        os_version=texts["os_version"],
        criticality=attributes.criticality,
        environment=attributes.environment,
        owner=attributes.owner,
        business_service=attributes.business_service,
        region=attributes.region,
        timezone=attributes.timezone,
        tags=tuple(attributes.tags) if attributes.tags is not None else None,
        internet_facing=attributes.internet_facing,
        data_sensitivity=attributes.data_sensitivity,
    )


def _display(value: RawValue) -> str | None:
    if value is None:
        return None
    return (value if isinstance(value, str) else json.dumps(value)).strip()[:100]


def _text(name: str, value: RawValue) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _RowError(f"{name}: expected text, found {_json_type(value)}")
    text = str(value).strip()
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise _RowError(f"{name}: contains control characters")
    limit = MAX_LENGTH.get(name)
    if limit is not None and len(text) > limit:
        raise _RowError(f"{name}: longer than {limit} characters")
    return text or None


def _hostname(name: str, value: str) -> str:
    if not HOSTNAME_RE.fullmatch(value):
        raise _RowError(f"{name}: {value!r} is not a host name (letters, digits, '-', '_' and '.')")
    return value


def _ip(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError as exc:
        raise _RowError(f"ip: {value!r} is not an IPv4 or IPv6 address") from exc


def _attributes(values: Mapping[str, RawValue], problems: list[str]) -> AssetAttributes | None:
    """The business attributes and device type, through the shared
    `AssetAttributes` rules; None (and `problems` extended) when invalid."""
    given: dict[str, object] = {}
    for name in (*BUSINESS_FIELDS, "device_type"):
        raw = values.get(name)
        if isinstance(raw, str):
            raw = raw.strip() or None
        if raw is None:
            continue
        try:
            given[name] = _convert(name, raw)
        except _RowError as exc:
            problems.append(str(exc))
    try:
        return AssetAttributes.model_validate(given)
    except ValidationError as exc:
        problems.extend(_explain(exc))
        return None


def _convert(name: str, raw: RawValue) -> object:
    """A raw cell as the type `AssetAttributes` expects for `name`."""
    if name == "tags":
        return _tags(raw)
    if name == "internet_facing":
        return _boolean(name, raw)
    if name == "criticality":
        return _integer(name, raw)
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise _RowError(f"{name}: expected text, found {_json_type(raw)}")
    if name in ("data_sensitivity", "device_type"):
        return str(raw).lower()
    return str(raw)


def _explain(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "row"
        message = str(error["msg"]).removeprefix("Value error, ")
        if field == "device_type":
            message = f"must be one of {', '.join(DEVICE_TYPES)}"
        elif field.startswith("tags."):
            field = "tags"
        problems.append(f"{field}: {message}")
    return problems


def _tags(raw: RawValue) -> list[str]:
    if isinstance(raw, str):
        return [tag.strip() for tag in raw.split(";") if tag.strip()]
    if isinstance(raw, list) and all(isinstance(tag, str) for tag in raw):
        return [str(tag).strip() for tag in raw if str(tag).strip()]
    raise _RowError("tags: expected ';'-separated text or a list of strings")


def _boolean(name: str, raw: RawValue) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower() if isinstance(raw, str | int) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _RowError(f"{name}: expected true/false/yes/no/1/0, found {_display(raw)!r}")


def _integer(name: str, raw: RawValue) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and re.fullmatch(r"[+-]?[0-9]{1,9}", raw.strip()):
        return int(raw)
    raise _RowError(
        f"{name}: expected a whole number (1 highest .. 4 lowest), found {_display(raw)!r}"
    )
