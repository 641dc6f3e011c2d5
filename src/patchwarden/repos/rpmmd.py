"""rpm-md repositories (dnf, yum, zypper): repomd.xml, primary.xml and
updateinfo.xml.

The XML is parsed as a stream (``XMLPullParser``, the engine of
``iterparse``) straight from the decompressed chunks, and each record is
cleared once read, so memory stays flat however large primary.xml is.

Hardening: ``defusedxml`` is not installed here (nor a dependency), so the
stream is guarded instead. Repository XML never has a DOCTYPE, and without
one there are no entity declarations (no "billion laughs") and no external
entities, so any ``<!DOCTYPE`` or ``<!ENTITY`` is refused before the parser
sees it. That byte scan is sound only for ASCII-compatible text, so NUL bytes
(UTF-16/32) and declared encodings other than UTF-8, US-ASCII and ISO-8859-1
are refused too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final, NamedTuple
from xml.etree.ElementTree import Element, ParseError, XMLPullParser

from patchwarden.repos._compression import iter_decompressed
from patchwarden.repos.errors import RepositoryFormatError
from patchwarden.repos.model import NoticePackage, NoticeType, RepoPackage, UpdateNotice

_RPM_NS: Final = "{http://linux.duke.edu/metadata/rpm}"
_XML_BASE: Final = "{http://www.w3.org/XML/1998/namespace}base"
_FORBIDDEN: Final = (b"<!DOCTYPE", b"<!ENTITY")
_OVERLAP: Final = max(len(marker) for marker in _FORBIDDEN) - 1
_HEAD: Final = 1024  # enough to hold the XML declaration
_DECLARED_ENCODING: Final = re.compile(rb"<\?xml[^>]*?encoding\s*=\s*[\"']([^\"']*)[\"']")
_SAFE_ENCODINGS: Final = frozenset({"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin1"})
_CVE: Final = re.compile(r"CVE-\d{4}-\d{4,}")

# updateinfo types -> ours. SUSE writes "recommended" for bug fixes and
# "optional"/"feature" for enhancements; an unknown type claims the least.
_NOTICE_TYPES: Final[dict[str, NoticeType]] = {
    "security": "security",
    "bugfix": "bugfix",
    "recommended": "bugfix",
    "enhancement": "enhancement",
    "newpackage": "enhancement",
    "feature": "enhancement",
    "optional": "enhancement",
}
# Red Hat / SUSE / Oracle write the four words; Amazon Linux "medium".
_SEVERITIES: Final = {
    "critical": "critical",
    "important": "important",
    "high": "important",
    "moderate": "moderate",
    "medium": "moderate",
    "low": "low",
}


class RepomdData(NamedTuple):
    """One ``<data>`` entry of repomd.xml: a metadata file of the repository."""

    type: str  # "primary", "updateinfo", "filelists" …
    location: str  # href relative to the repository base: "repodata/…-primary.xml.gz"
    checksum_type: str  # a hashlib name ("sha256"; rpm-md's "sha" is sha1)
    checksum: str  # of the file as stored (compressed)
    open_checksum_type: str
    open_checksum: str  # of the decompressed content, "" when not given
    timestamp: datetime | None
    size: int | None
    open_size: int | None


@dataclass(frozen=True)
class Repomd:
    revision: str
    data: Mapping[str, RepomdData]  # type -> entry

    @property
    def released(self) -> datetime | None:
        """When the newest metadata file was generated."""
        stamps = [d.timestamp for d in self.data.values() if d.timestamp is not None]
        return max(stamps, default=None)


# -- the guarded stream ------------------------------------------------------------


def _checked_chunks(data: bytes, name: str) -> Iterator[bytes]:
    """Decompressed chunks, refusing what the module docstring says."""
    head = b""
    tail = b""
    chunks = iter_decompressed(data, name)
    for chunk in chunks:
        if len(head) < _HEAD:
            head += chunk
            if len(head) < _HEAD:
                continue
            chunk, head = head, head[:_HEAD]
            _check_encoding(head, name)
        window = tail + chunk
        _check_markup(window, name)
        tail = window[-_OVERLAP:]
        yield chunk
    if len(head) < _HEAD:  # a short document, still held back
        _check_encoding(head, name)
        _check_markup(head, name)
        yield head


def _check_encoding(head: bytes, name: str) -> None:
    match = _DECLARED_ENCODING.search(head)
    if match and match[1].decode("ascii", "replace").lower() not in _SAFE_ENCODINGS:
        raise RepositoryFormatError(
            f"{name}: XML encoding {match[1].decode('ascii', 'replace')!r} refused "
            "(repository metadata is UTF-8)"
        )


def _check_markup(window: bytes, name: str) -> None:
    if b"\x00" in window:
        raise RepositoryFormatError(f"{name}: NUL bytes (UTF-16/32 XML?) refused")
    for marker in _FORBIDDEN:
        if marker in window:
            raise RepositoryFormatError(
                f"{name}: XML with a {marker[2:].decode()} declaration refused "
                "(repository metadata never has one; entity expansion is an attack vector)"
            )


def _children(
    data: bytes, name: str, root_name: str, *, fold_newlines: bool = False
) -> Iterator[Element]:
    """The root's children, each complete, cleared from the tree once the
    caller is done with it. Checks the root element's name.

    ``fold_newlines`` feeds line ends as spaces: expat reports every line end
    of the indentation as a separate text event, which doubles the time
    ElementTree takes over primary.xml. Attribute values are normalised that
    way by XML anyway; only multi-line text changes, and we read none.
    """
    parser: XMLPullParser[Element] = XMLPullParser(events=("start", "end"))
    root: Element | None = None
    depth = 0
    try:
        for chunk in _checked_chunks(data, name):
            parser.feed(chunk.replace(b"\n", b" ") if fold_newlines else chunk)
            for event in parser.read_events():
                element = event[-1]
                if not isinstance(element, Element):
                    continue
                if event[0] == "start":
                    depth += 1
                    if root is None:
                        root = element
                        if _local(root.tag) != root_name:
                            raise RepositoryFormatError(
                                f"{name}: root element is <{_local(root.tag)}>, not <{root_name}>"
                            )
                    continue
                depth -= 1
                if depth == 1 and root is not None:
                    yield element
                    root.clear()
        parser.close()
    except ParseError as exc:
        raise RepositoryFormatError(
            f"{name}: not well-formed XML (truncated or damaged?): {exc}"
        ) from exc
    if root is None:
        raise RepositoryFormatError(f"{name}: empty document")


def _records(
    data: bytes, name: str, root_name: str, record_name: str, *, fold_newlines: bool = False
) -> Iterator[Element]:
    """The root's children named ``record_name``."""
    for element in _children(data, name, root_name, fold_newlines=fold_newlines):
        if _local(element.tag) == record_name:
            yield element


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _namespace(element: Element) -> str:
    """The ``{uri}`` prefix of an element's tag, "" for none."""
    tag = element.tag
    return tag[: tag.index("}") + 1] if tag.startswith("{") else ""


# -- values shared by the files ------------------------------------------------------


def evr(epoch: str | None, version: str, release: str | None) -> str:
    """rpm's ``%{EVR}``: ``[epoch:]version[-release]``, no epoch when it is 0."""
    text = f"{version}-{release}" if release else version
    if epoch and epoch.strip("0"):
        return f"{int(epoch)}:{text}"
    return text


def _timestamp(value: str | None, what: str, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise RepositoryFormatError(f"{name}: {what} {value!r} is not a Unix time") from exc


def _int(value: str | None, what: str, name: str) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise RepositoryFormatError(f"{name}: {what} {value!r} is not a number") from exc


def source_name(source_rpm: str) -> str:
    """ "name" of "name-version-release.src.rpm"; "" when it is not one."""
    stem = source_rpm.removesuffix(".rpm").removesuffix(".src").removesuffix(".nosrc")
    parts = stem.rsplit("-", 2)
    return parts[0] if len(parts) == 3 and all(parts) else ""


# -- repomd.xml ------------------------------------------------------------------


def parse_repomd(data: bytes, name: str = "repomd.xml") -> Repomd:
    entries: dict[str, RepomdData] = {}
    revision = ""
    for element in _children(data, name, "repomd"):
        if _local(element.tag) == "revision":
            revision = (element.text or "").strip()
            continue
        if _local(element.tag) != "data":
            continue
        ns = _namespace(element)
        kind = element.get("type", "")
        location = element.find(ns + "location")
        checksum = element.find(ns + "checksum")
        href = location.get("href", "") if location is not None else ""
        digest = (checksum.text or "").strip() if checksum is not None else ""
        if not kind or not href or checksum is None or not digest:
            raise RepositoryFormatError(
                f"{name}: a <data> entry ({kind or 'no type'}) lacks its type, "
                "location href or checksum"
            )
        if location is not None and location.get(_XML_BASE):
            raise RepositoryFormatError(
                f"{name}: {kind} lives at another base URL (xml:base); not supported"
            )
        open_checksum = element.find(ns + "open-checksum")
        entries[kind] = RepomdData(
            type=kind,
            location=href,
            checksum_type=_hash_name(checksum.get("type", "")),
            checksum=digest.lower(),
            open_checksum_type=_hash_name(open_checksum.get("type", ""))
            if open_checksum is not None
            else "",
            open_checksum=(open_checksum.text or "").strip().lower()
            if open_checksum is not None
            else "",
            timestamp=_timestamp(element.findtext(ns + "timestamp"), "timestamp", name),
            size=_int(element.findtext(ns + "size"), "size", name),
            open_size=_int(element.findtext(ns + "open-size"), "open-size", name),
        )
    if not entries:
        raise RepositoryFormatError(f"{name}: lists no metadata files")
    return Repomd(revision, MappingProxyType(entries))


def _hash_name(kind: str) -> str:
    # rpm-md's old "sha" means SHA-1.
    kind = kind.lower()
    return "sha1" if kind == "sha" else kind


# -- primary.xml -----------------------------------------------------------------


def parse_primary(data: bytes, name: str = "primary.xml") -> tuple[RepoPackage, ...]:
    """Every package of a primary.xml (gzip, xz, zstd, bzip2 or plain)."""
    packages: list[RepoPackage] = []
    ns = ""
    for number, element in enumerate(
        _records(data, name, "metadata", "package", fold_newlines=True), 1
    ):
        if number == 1:
            ns = _namespace(element)
        package_name = (element.findtext(ns + "name") or "").strip()
        arch = (element.findtext(ns + "arch") or "").strip()
        version = element.find(ns + "version")
        ver = version.get("ver", "") if version is not None else ""
        if not package_name or not arch or version is None or not ver:
            raise RepositoryFormatError(
                f"{name}: package {number} ({package_name or 'no name'}) lacks its "
                "name, arch or version"
            )
        checksum = element.find(ns + "checksum")
        sha256 = ""
        if checksum is not None and checksum.get("type", "").lower() == "sha256":
            sha256 = (checksum.text or "").strip().lower()
        times = element.find(ns + "time")
        sizes = element.find(ns + "size")
        location = element.find(ns + "location")
        source_rpm = element.findtext(f"{ns}format/{_RPM_NS}sourcerpm") or ""
        packages.append(
            RepoPackage(
                package_name,
                evr(version.get("epoch"), ver, version.get("rel")),
                arch,
                source_name(source_rpm.strip()),
                location.get("href", "") if location is not None else "",
                _int(sizes.get("package") if sizes is not None else None, "size", name) or 0,
                sha256,
                _timestamp(times.get("build") if times is not None else None, "build time", name),
            )
        )
    return tuple(packages)


# -- updateinfo.xml --------------------------------------------------------------


def parse_issued(value: str | None) -> datetime | None:
    """An updateinfo date as aware UTC: "2024-01-02 03:04:05", "2024-01-02",
    ISO 8601, or Unix seconds (SUSE). Naive times are UTC, as dnf and zypper
    read them. None when absent or unreadable: a bad date must not hide a fix."""
    if not value or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        try:
            return datetime.fromtimestamp(int(text), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    text = text.removesuffix("UTC").strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_updateinfo(data: bytes, name: str = "updateinfo.xml") -> tuple[UpdateNotice, ...]:
    """Every ``<update>`` of an updateinfo.xml.

    Types map to security / bugfix / enhancement (newpackage, SUSE's optional
    and feature, and unknown types are enhancements; SUSE's recommended is a
    bug fix); severities to critical / important / moderate / low or "".
    """
    notices: list[UpdateNotice] = []
    for number, element in enumerate(_records(data, name, "updates", "update"), 1):
        ns = _namespace(element)
        notice_id = (element.findtext(ns + "id") or "").strip()
        if not notice_id:
            raise RepositoryFormatError(f"{name}: update {number} has no <id>")
        issued = element.find(ns + "issued")
        severity = element.findtext(ns + "severity") or ""
        cves: list[str] = []
        for reference in element.iter(ns + "reference"):
            if reference.get("type", "").lower() != "cve":
                continue
            for text in (reference.get("id"), reference.get("title"), reference.get("href")):
                found = _CVE.findall(text or "")
                if found:
                    cves.extend(found)
                    break
        packages: list[NoticePackage] = []
        for package in element.iter(ns + "package"):
            package_name = package.get("name", "")
            version = package.get("version", "")
            if not package_name or not version:
                raise RepositoryFormatError(
                    f"{name}: update {notice_id} lists a package without name or version"
                )
            packages.append(
                NoticePackage(
                    package_name,
                    evr(package.get("epoch"), version, package.get("release")),
                    package.get("arch", ""),
                )
            )
        notices.append(
            UpdateNotice(
                id=notice_id,
                type=_NOTICE_TYPES.get(element.get("type", "").lower(), "enhancement"),
                severity=_SEVERITIES.get(severity.strip().lower(), ""),
                issued=parse_issued(issued.get("date") if issued is not None else None),
                title=(element.findtext(ns + "title") or "").strip(),
                cve_ids=tuple(dict.fromkeys(cves)),
                packages=tuple(packages),
            )
        )
    return tuple(notices)
