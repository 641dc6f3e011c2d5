"""OSV records (https://ossf.github.io/osv-schema/): one JSON object, a JSON
array of them, JSON lines, or (through ``read_path``) a directory or the zip
OSV publishes per ecosystem (``all.zip``).

Ecosystems become platforms::

    Debian:12            -> debian:12
    Ubuntu:22.04:LTS     -> ubuntu:22.04   (":LTS" dropped)
    Ubuntu:Pro:16.04:LTS -> ubuntu:16.04   (the entry's note says "Ubuntu Pro")
    Alpine:v3.18         -> alpine:3.18
    Red Hat:enterprise_linux:9::appstream, Rocky Linux:9, AlmaLinux:9 -> rhel:9
    PyPI -> pypi (names PEP 503-normalised), npm -> npm

Any other ecosystem is unsupported: that affected entry is rejected. ECOSYSTEM
and SEMVER ranges are kept; GIT ranges are skipped (counted in the notes).
A range must start with ``introduced``, use only the four OSV event kinds and
string versions the platform's version scheme can order (``introduced: "0"``
means "from the start"); otherwise its affected entry is rejected. Explicit
``versions`` the scheme cannot order are left out of the entry (and reported).

A record is rejected when none of its affected entries is usable, with every
entry's reason; a withdrawn record is imported anyway, so the withdrawal
reaches the database. ``upstream`` ids are aliases too; Ubuntu's
``UBUNTU-CVE-…`` spelling becomes ``CVE-…``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any, Final, Literal

from patchwarden.domain.advisories import (
    Advisory,
    AffectedPackage,
    AffectedRange,
    CvssMetric,
    ParsedFeed,
    RangeEvent,
    RangeEventKind,
    scheme_of_platform,
)
from patchwarden.feeds.base import (
    MAX_ID_LENGTH,
    Collector,
    FeedSource,
    FileRejected,
    cvss_base_score,
    cvss_error,
    parse_datetime,
    pep503,
    text_or_none,
    version_error,
)
from patchwarden.prioritize.severity import SeverityLevel, most_severe, normalise_severity

NAME: Final = "osv"
EVENT_KINDS: Final[tuple[RangeEventKind, ...]] = ("introduced", "fixed", "last_affected", "limit")
_CVSS_TYPES: Final = {"CVSS_V2": "2.0", "CVSS_V3": None, "CVSS_V4": "4.0"}
_RELEASE: Final = re.compile(r"\d+(?:\.\d+)*")
_UBUNTU_RELEASE: Final = re.compile(r"\d+\.\d+")
_ALPINE_BRANCH: Final = re.compile(r"v?(\d+\.\d+)")
_RHEL_LIKE: Final = {"rocky linux": "Rocky Linux", "almalinux": "AlmaLinux"}
_JSON_LINES_SUFFIXES: Final = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")
_ID_KEY: Final = re.compile(rb'"id"\s*:\s*"')
_OSV_KEYS: Final = re.compile(rb'"(?:modified|affected|schema_version)"\s*:')
_OTHER_FORMATS: Final = (b'"catalogVersion"', b'"NVD_CVE"', b'"distroversion"', b'"secfixes"')

Where = Callable[..., str]


class Unusable(ValueError):
    """An affected entry (or range) cannot be used, for the message."""


def platform_of_ecosystem(ecosystem: str) -> tuple[str, str | None]:
    """``(platform, note)`` for an OSV ecosystem; raises :class:`Unusable`."""
    parts = ecosystem.split(":")
    family = parts[0].strip().lower()
    if family == "pypi" and len(parts) == 1:
        return "pypi", None
    if family == "npm" and len(parts) == 1:
        return "npm", None
    if family == "debian":
        if len(parts) == 2 and _RELEASE.fullmatch(parts[1]):
            return f"debian:{parts[1]}", None
        raise Unusable(f"ecosystem {ecosystem!r} names no Debian release (expected 'Debian:12')")
    if family == "ubuntu":
        rest = [p for p in parts[1:] if p and p != "LTS"]
        releases = [p for p in rest if _UBUNTU_RELEASE.fullmatch(p)]
        if len(releases) != 1:
            raise Unusable(
                f"ecosystem {ecosystem!r} names no Ubuntu release (expected 'Ubuntu:22.04:LTS')"
            )
        qualifiers = [p for p in rest if p != releases[0]]
        return f"ubuntu:{releases[0]}", ("Ubuntu " + " ".join(qualifiers)) if qualifiers else None
    if family == "alpine":
        match = _ALPINE_BRANCH.fullmatch(parts[1]) if len(parts) == 2 else None
        if match is None:
            raise Unusable(
                f"ecosystem {ecosystem!r} names no Alpine branch (expected 'Alpine:v3.18')"
            )
        return f"alpine:{match.group(1)}", None
    if family == "red hat":
        # "Red Hat:enterprise_linux:9::appstream", "Red Hat:rhel_aus:8.4::appstream"
        product = parts[1] if len(parts) > 1 else ""
        if product != "enterprise_linux" and not product.startswith("rhel"):
            raise Unusable(f"ecosystem {ecosystem!r} is not Red Hat Enterprise Linux")
        return _rhel(ecosystem, parts[2] if len(parts) > 2 else ""), None
    if family in _RHEL_LIKE:
        return _rhel(ecosystem, parts[1] if len(parts) > 1 else ""), None
    raise Unusable(f"unsupported ecosystem {parts[0]!r}")


def _rhel(ecosystem: str, release: str) -> str:
    if not _RELEASE.fullmatch(release):
        raise Unusable(f"ecosystem {ecosystem!r} names no major version (expected e.g. ':9')")
    return f"rhel:{release.split('.')[0]}"


class OsvFeed:
    name: Final = NAME

    def detect(self, head: bytes, filename: str) -> bool:
        text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        if not text.startswith((b"{", b"[")):
            return False
        if any(marker in head for marker in _OTHER_FORMATS):
            return False
        return bool(_ID_KEY.search(head) and _OSV_KEYS.search(head))

    def parse(self, source: FeedSource) -> ParsedFeed:
        collector = Collector(NAME, source)
        with collector.whole_file():
            _Parser(collector).run()
        return collector.result()


class _Parser:
    def __init__(self, collector: Collector) -> None:
        self.c = collector
        self.seen_osv = False  # did any item look like an OSV record?

    def run(self) -> None:
        if self._is_json_lines():
            self._lines()
        else:
            self._document()
        if not self.c.records and not self.seen_osv and self.c.rejected:
            raise FileRejected("no item in the file is an OSV record (none has an 'id')")

    def _is_json_lines(self) -> bool:
        """JSON lines when named so, or when the file has two or more non-blank
        lines that start with "{" and one of the first two is a whole JSON object
        (so a broken first record does not hide the others)."""
        source = self.c.source
        if source.name.lower().endswith(_JSON_LINES_SUFFIXES):
            return True
        limit = source.max_document_bytes
        lines: list[bytes] = []
        with source.open() as stream:
            while len(lines) < 2 and (line := stream.readline(limit + 1)):
                if line.strip():
                    lines.append(line.strip())
        if len(lines) < 2 or not all(line.startswith(b"{") for line in lines):
            return False
        return any(_is_object(line) for line in lines)

    def _lines(self) -> None:
        for number, line in self.c.lines():
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except ValueError as exc:
                self.c.reject(self.c.at_line(number), f"not valid JSON: {exc}")
                continue
            self.record(raw, lambda *parts, n=number: self.c.at_line(n, *parts))

    def _document(self) -> None:
        with self.c.json_document() as reader:
            first = reader.first_char()
            if first == "[":
                for index, raw in enumerate(reader.array_items()):
                    self.record(raw, lambda *parts, i=index: self.c.at(f"[{i}]", *parts))
                reader.end()
            elif first == "{":
                raw = reader.load()
                if not isinstance(raw, dict) or "id" not in raw:
                    keys = ", ".join(list(raw)[:6]) if isinstance(raw, dict) else ""
                    raise FileRejected(
                        f"not an OSV record: the object has no 'id' (its keys: {keys})"
                    )
                self.record(raw, self.c.at)
            elif first:
                raise FileRejected(f"not JSON: the file starts with {first!r}")
            else:
                raise FileRejected("the file is empty")

    # -- one record ----------------------------------------------------------------

    def record(self, raw: object, where: Where) -> None:
        c = self.c
        if not isinstance(raw, dict):
            c.reject(where(), f"an OSV record is a JSON object, not {type(raw).__name__}")
            return
        record_id = raw.get("id")
        if not isinstance(record_id, str) or not record_id.strip():
            c.reject(where(), "the record has no 'id'")
            return
        self.seen_osv = True
        record_id = record_id.strip()
        if len(record_id) > MAX_ID_LENGTH:
            c.reject(where(record_id[:40] + "…"), f"id longer than {MAX_ID_LENGTH} characters")
            return
        try:
            c.add(self._advisory(raw, record_id, lambda *parts: where(record_id, *parts)))
        except ValueError as exc:
            c.reject(where(record_id), str(exc))

    def _advisory(self, raw: dict[str, object], record_id: str, where: Where) -> Advisory:
        published = parse_datetime(raw.get("published"), "published")
        modified = parse_datetime(raw.get("modified"), "modified")
        withdrawn = parse_datetime(raw.get("withdrawn"), "withdrawn")
        aliases = _aliases(raw, record_id)
        references = _references(raw.get("references"))
        raw_affected = raw.get("affected")
        if raw_affected is None:
            raw_affected = []
        if not isinstance(raw_affected, list):
            raise ValueError("'affected' must be a list")

        affected: list[AffectedPackage] = []
        partial: list[tuple[str, str]] = []  # rejections of parts of a usable record
        refused: list[tuple[int, str, str]] = []  # (index, ecosystem, reason)
        severity = self._severity(raw.get("severity"), where, partial)
        for index, entry in enumerate(raw_affected):
            ecosystem = _ecosystem(entry)
            try:
                package = self._affected(entry, where(f"affected[{index}]"), partial)
            except Unusable as exc:
                refused.append((index, ecosystem, str(exc)))
                continue
            affected.append(package)
            if isinstance(entry, dict):
                severity += self._severity(entry.get("severity"), where, partial, severity)

        if not affected and withdrawn is None:
            if not refused:
                raise ValueError("the record lists no affected package")
            ecosystems = ", ".join(sorted({e for _, e, _ in refused}))
            reasons = "; ".join(f"affected[{i}]: {reason}" for i, _, reason in refused)
            raise ValueError(f"no usable affected entry (ecosystems: {ecosystems}): {reasons}")
        if withdrawn is not None:
            # Withdrawn records are never matched: flaws in their entries do not matter.
            self.c.tally("{n} withdrawn records (imported with their withdrawal date)")
            if refused or partial:
                self.c.tally(
                    "{n} unusable parts of withdrawn records ignored",
                    len(refused) + len(partial),
                )
        else:
            for index, _, reason in refused:
                self.c.reject_part(record_id, where(f"affected[{index}]"), reason)
            for place, reason in partial:
                self.c.reject_part(record_id, place, reason)
        return Advisory(
            id=record_id,
            source=NAME,
            aliases=aliases,
            title=text_or_none(raw.get("summary")),
            details=text_or_none(raw.get("details")),
            published=published,
            modified=modified,
            withdrawn=withdrawn,
            severity=tuple(severity),
            affected=tuple(affected),
            references=references,
            rating=_rating(raw, raw_affected),
        )

    def _affected(
        self, entry: object, where: str, partial: list[tuple[str, str]]
    ) -> AffectedPackage:
        if not isinstance(entry, dict):
            raise Unusable("an affected entry must be an object")
        package = entry.get("package")
        if not isinstance(package, dict):
            raise Unusable("no 'package'")
        ecosystem, name = package.get("ecosystem"), package.get("name")
        if not isinstance(ecosystem, str) or not ecosystem:
            raise Unusable("no package ecosystem")
        if not isinstance(name, str) or not name.strip():
            raise Unusable("no package name")
        platform, note = platform_of_ecosystem(ecosystem)
        if note:
            self.c.tally(
                f"{{n}} affected entries are for {_escape(note)} releases (see their note)"
            )
        name = pep503(name.strip()) if platform == "pypi" else name.strip()
        scheme = scheme_of_platform(platform)

        ranges: list[AffectedRange] = []
        raw_ranges = entry.get("ranges") or []
        if not isinstance(raw_ranges, list):
            raise Unusable("'ranges' must be a list")
        git = 0
        for index, raw_range in enumerate(raw_ranges):
            if not isinstance(raw_range, dict):
                raise Unusable(f"ranges[{index}] must be an object")
            kind = raw_range.get("type")
            if kind == "GIT":
                git += 1
                continue
            if kind not in ("ECOSYSTEM", "SEMVER"):
                raise Unusable(f"ranges[{index}]: unsupported range type {kind!r}")
            events = _events(raw_range.get("events"), scheme if kind == "ECOSYSTEM" else "semver")
            range_type: Literal["ECOSYSTEM", "SEMVER"] = (
                "ECOSYSTEM" if kind == "ECOSYSTEM" else "SEMVER"
            )
            ranges.append(AffectedRange(range_type, events))
        if git:
            self.c.tally(
                "{n} GIT ranges skipped (commit ranges cannot be compared with package versions)",
                git,
            )

        versions, bad = _versions(entry.get("versions"), scheme)
        if not ranges and not versions:
            if git:
                raise Unusable("only GIT ranges, which cannot be compared with package versions")
            if bad:
                raise Unusable(f"no range, and no valid {scheme} version among {_sample(bad)}")
            raise Unusable("no range and no versions")
        if bad:
            partial.append(
                (
                    f"{where} versions",
                    f"{len(bad)} of {len(bad) + len(versions)} listed versions are not valid "
                    f"{scheme} versions and were left out: {_sample(bad)}",
                )
            )
        return AffectedPackage(
            platform=platform,
            name=name,
            ranges=tuple(ranges),
            versions=tuple(versions),
            binaries=_binaries(entry.get("ecosystem_specific")),
            note=note,
        )

    def _severity(
        self,
        raw: object,
        where: Where,
        partial: list[tuple[str, str]],
        have: Iterable[CvssMetric] = (),
    ) -> list[CvssMetric]:
        if not isinstance(raw, list):
            return []
        known = {m.vector for m in have}
        metrics: list[CvssMetric] = []
        for index, item in enumerate(raw):
            kind = item.get("type") if isinstance(item, dict) else None
            vector = item.get("score") if isinstance(item, dict) else None
            if kind == "Ubuntu" and isinstance(vector, str):
                continue  # a rating, not a vector: see _rating
            if kind not in _CVSS_TYPES:
                self.c.tally(
                    f"{{n}} severity ratings of type {_escape(str(kind))} skipped "
                    "(only CVSS vectors are kept)"
                )
                continue
            if not isinstance(vector, str) or not vector.strip():
                partial.append((where(f"severity[{index}]"), f"{kind} without a vector"))
                continue
            vector = vector.strip()
            error = cvss_error(vector)
            if error:
                partial.append((where(f"severity[{index}]"), f"invalid {kind} vector: {error}"))
                continue
            if vector in known:
                continue
            known.add(vector)
            version = _CVSS_TYPES[str(kind)] or vector[5:8]  # "CVSS:3.1/..." -> "3.1"
            metrics.append(CvssMetric(version, vector, cvss_base_score(vector)))
        return metrics


def _rating(raw: dict[str, Any], affected: list[Any]) -> SeverityLevel | None:
    """The most severe distribution rating of a record: OSV's "Ubuntu" severity
    type (Ubuntu's priority), on the record or on an affected entry."""
    levels: list[SeverityLevel] = []
    for holder in (raw, *affected):
        ratings = holder.get("severity") if isinstance(holder, dict) else None
        for item in ratings if isinstance(ratings, list) else []:
            if isinstance(item, dict) and item.get("type") == "Ubuntu":
                level = normalise_severity(str(item.get("score")))
                if level is not None:
                    levels.append(level)
    return most_severe(levels)


def _is_object(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _ecosystem(entry: object) -> str:
    if isinstance(entry, dict):
        package = entry.get("package")
        if isinstance(package, dict) and isinstance(package.get("ecosystem"), str):
            return str(package["ecosystem"]).split(":")[0] or "?"
    return "?"


def _events(raw: object, scheme: str) -> tuple[RangeEvent, ...]:
    if not isinstance(raw, list) or not raw:
        raise Unusable("a range has no events")
    events: list[RangeEvent] = []
    for index, event in enumerate(raw):
        if not isinstance(event, dict) or len(event) != 1:
            raise Unusable(f"events[{index}] must be an object with exactly one key")
        ((kind, version),) = event.items()
        if kind not in EVENT_KINDS:
            raise Unusable(
                f"events[{index}]: unknown event {kind!r} (expected introduced, fixed, "
                "last_affected or limit)"
            )
        if not isinstance(version, str) or not version.strip():
            raise Unusable(f"events[{index}]: the {kind} version must be a non-empty string")
        if not (kind == "introduced" and version == "0") and not (
            kind == "limit" and version == "*"
        ):
            error = version_error(scheme, version)
            if error:
                raise Unusable(
                    f"events[{index}]: {kind} {version!r} is not a valid {scheme} version: {error}"
                )
        events.append(RangeEvent(kind, version))
    if events[0].kind != "introduced":
        raise Unusable(f"a range must start with 'introduced', not {events[0].kind!r}")
    return tuple(events)


def _versions(raw: object, scheme: str) -> tuple[list[str], list[str]]:
    """(valid versions, the ones the scheme cannot order)."""
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        raise Unusable("'versions' must be a list")
    good: list[str] = []
    bad: list[str] = []
    for version in raw:
        if isinstance(version, str) and version and version_error(scheme, version) is None:
            good.append(version)
        else:
            bad.append(str(version))
    return good, bad


def _binaries(raw: object) -> tuple[str, ...]:
    """Binary package names from ``ecosystem_specific.binaries`` (Ubuntu, Debian)."""
    if not isinstance(raw, dict):
        return ()
    binaries = raw.get("binaries")
    names: list[str] = []
    if isinstance(binaries, dict):
        names = [k for k in binaries if isinstance(k, str)]
    elif isinstance(binaries, list):
        for item in binaries:
            if isinstance(item, str):
                names.append(item)
            elif isinstance(item, dict) and isinstance(item.get("binary_name"), str):
                names.append(item["binary_name"])
    return tuple(dict.fromkeys(n.strip() for n in names if n.strip()))


def _aliases(raw: dict[str, object], record_id: str) -> tuple[str, ...]:
    ids: list[str] = []
    for key in ("aliases", "upstream"):
        values = raw.get(key)
        if values is None:
            continue
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValueError(f"'{key}' must be a list of strings")
        for value in values:
            value = value.strip()
            if value.startswith("UBUNTU-CVE-"):
                value = value.removeprefix("UBUNTU-")
            if value and value != record_id:
                ids.append(value)
    return tuple(dict.fromkeys(ids))


def _references(raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list):
        return ()
    urls = [r["url"].strip() for r in raw if isinstance(r, dict) and isinstance(r.get("url"), str)]
    return tuple(dict.fromkeys(u for u in urls if u))


def _sample(values: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


FEED: Final = OsvFeed()
