"""apt repositories: the Release / InRelease file of a suite and its Packages
indexes, and the pocket classification of a suite.

The parsers are pure: bytes in, values out, :class:`RepositoryFormatError`
for anything unusable. Signatures are not verified here: an InRelease file's
armour is stripped and the signed text and the signature are exposed (as apt
itself splits them before calling ``gpgv``), so a caller can verify with
``gpgv --keyring KEYRING SIGNATURE TEXT``. Like apt, text outside the signed
part of an InRelease is refused: it would be unsigned content.

A Packages index is read with one bounded ``bytes.find`` per field instead of
a general deb822 parser: Debian main (~64,000 stanzas, 50 MB) parses in about
half a second. It relies on what every archive tool (dak, apt-ftparchive,
reprepro, aptly) writes: field names in their canonical case, LF line ends.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import Final, NamedTuple

from patchwarden.repos._compression import decompress
from patchwarden.repos.errors import RepositoryFormatError
from patchwarden.repos.model import Classification, RepoPackage

_SIGNED_BEGIN: Final = "-----BEGIN PGP SIGNED MESSAGE-----"
_SIGNATURE_BEGIN: Final = "-----BEGIN PGP SIGNATURE-----"
_SIGNATURE_END: Final = "-----END PGP SIGNATURE-----"
_SHA256: Final = re.compile(r"[0-9a-f]{64}")

# Packages fields we read, each with the newline before it so it only matches
# at the start of a line (continuation lines start with a space).
_PACKAGE: Final = b"\nPackage:"
_VERSION: Final = b"\nVersion:"
_ARCHITECTURE: Final = b"\nArchitecture:"
_SOURCE: Final = b"\nSource:"
_FILENAME: Final = b"\nFilename:"
_SIZE: Final = b"\nSize:"
_SHA256_FIELD: Final = b"\nSHA256:"


class IndexFile(NamedTuple):
    """One file a Release lists in its SHA256 section."""

    path: str  # relative to the suite's directory: "main/binary-amd64/Packages.xz"
    sha256: str
    size: int


@dataclass(frozen=True)
class Release:
    """A suite's Release (or InRelease) file."""

    origin: str
    label: str
    suite: str
    codename: str
    version: str
    date: datetime | None
    valid_until: datetime | None
    architectures: tuple[str, ...]
    components: tuple[str, ...]
    acquire_by_hash: bool
    # apt pins a NotAutomatic suite (backports, experimental) at 1, or at 100 with
    # ButAutomaticUpgrades: its versions only replace versions installed from it.
    not_automatic: bool
    but_automatic_upgrades: bool
    files: Mapping[str, IndexFile]  # path -> file, from the SHA256 section
    signed_text: str  # the text the fields were read from (what the signature covers)
    signature: str  # the armoured signature of an InRelease; "" for a plain Release

    @property
    def signed(self) -> bool:
        return bool(self.signature)


def split_clearsigned(text: str, name: str = "InRelease") -> tuple[str, str]:
    """``(signed text, armoured signature)`` of an OpenPGP clear-signed message
    (RFC 4880 §7), or ``(text, "")`` when ``text`` is not clear-signed.

    The signed text is dash-unescaped and, as the RFC says, without the line
    end before the signature. Anything but blank lines outside the armour is
    refused, as apt refuses it.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the file's final line end
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None or lines[first].rstrip() != _SIGNED_BEGIN:
        if _SIGNED_BEGIN in text or _SIGNATURE_BEGIN in text:
            raise RepositoryFormatError(
                f"{name}: text before the clear-signed message would be unsigned; refused"
            )
        return text, ""
    index = first + 1
    # Armour headers ("Hash: SHA512") up to the blank line that ends them.
    while index < len(lines) and lines[index].strip():
        if ": " not in lines[index]:
            raise RepositoryFormatError(
                f"{name}: malformed armour header {lines[index]!r} in the clear-signed message"
            )
        index += 1
    index += 1
    body: list[str] = []
    while index < len(lines) and lines[index].rstrip() != _SIGNATURE_BEGIN:
        line = lines[index].removesuffix("\r")
        if line.startswith("- "):
            line = line[2:]
        elif line.startswith("-"):
            raise RepositoryFormatError(
                f"{name}: line {index + 1} starts with '-' but is not dash-escaped; "
                "not a valid clear-signed message"
            )
        body.append(line)
        index += 1
    if index >= len(lines):
        raise RepositoryFormatError(f"{name}: the clear-signed message has no signature")
    signature_start = index
    while index < len(lines) and lines[index].rstrip() != _SIGNATURE_END:
        index += 1
    if index >= len(lines):
        raise RepositoryFormatError(f"{name}: the signature is not terminated (truncated?)")
    if any(line.strip() for line in lines[index + 1 :]):
        raise RepositoryFormatError(f"{name}: text after the signature would be unsigned; refused")
    signature = "\n".join(lines[signature_start : index + 1]) + "\n"
    return "\n".join(body), signature


def parse_fields(text: str, name: str) -> dict[str, str]:
    """The first deb822 paragraph of ``text``: lower-case field name -> value
    (continuation lines joined with "\\n", each stripped)."""
    fields: dict[str, str] = {}
    current: str | None = None
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            if fields:
                break
            continue
        if line[0] in " \t":
            if current is None:
                raise RepositoryFormatError(f"{name}: line {number} continues no field")
            fields[current] += "\n" + line.strip()
            continue
        key, colon, value = line.partition(":")
        if not colon or not key or " " in key:
            raise RepositoryFormatError(f"{name}: line {number} is not a 'Field: value' line")
        current = key.lower()
        fields[current] = value.strip()
    return fields


def parse_release(data: bytes, name: str = "Release") -> Release:
    """A Release or InRelease file. Requires a SHA256 file list (apt refuses
    repositories without a strong hash, so do we)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RepositoryFormatError(f"{name}: not UTF-8 text ({exc})") from exc
    signed_text, signature = split_clearsigned(text, name)
    fields = parse_fields(signed_text, name)
    if not fields:
        raise RepositoryFormatError(f"{name}: empty; not a Release file")
    if "sha256" not in fields:
        raise RepositoryFormatError(
            f"{name}: no SHA256 file list; without a strong checksum the indexes cannot be verified"
        )
    files: dict[str, IndexFile] = {}
    for line in fields["sha256"].split("\n"):
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3 or not _SHA256.fullmatch(parts[0]) or not parts[1].isdigit():
            raise RepositoryFormatError(
                f"{name}: malformed SHA256 line {line!r} (want '<sha256> <size> <path>')"
            )
        files[parts[2]] = IndexFile(parts[2], parts[0], int(parts[1]))
    if not files:
        raise RepositoryFormatError(f"{name}: the SHA256 file list is empty")
    return Release(
        origin=fields.get("origin", ""),
        label=fields.get("label", ""),
        suite=fields.get("suite", ""),
        codename=fields.get("codename", ""),
        version=fields.get("version", ""),
        date=_release_date(fields.get("date"), "Date", name),
        valid_until=_release_date(fields.get("valid-until"), "Valid-Until", name),
        architectures=tuple(fields.get("architectures", "").split()),
        components=tuple(fields.get("components", "").split()),
        acquire_by_hash=fields.get("acquire-by-hash", "").lower() == "yes",
        not_automatic=fields.get("notautomatic", "").lower() == "yes",
        but_automatic_upgrades=fields.get("butautomaticupgrades", "").lower() == "yes",
        files=MappingProxyType(files),
        signed_text=signed_text,
        signature=signature,
    )


def _release_date(value: str | None, field: str, name: str) -> datetime | None:
    """An RFC 2822 date ("Sat, 10 May 2025 09:03:18 UTC") as aware UTC."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError) as exc:
        raise RepositoryFormatError(f"{name}: {field} {value!r} is not a date") from exc
    if parsed.tzinfo is None:  # "-0000": UTC by RFC 2822
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def classify_pocket(release: Release) -> Classification:
    """What an update from this suite is: ``-security`` suites (or a
    ``*-Security`` label, as Debian's) give security fixes, ``-backports`` new
    upstream versions, and everything else (``-updates``,
    ``-proposed-updates``, and the release suite itself, which changes only
    at point releases) bug fixes."""
    names = (release.suite.lower(), release.codename.lower())
    if any(n.endswith("-security") for n in names) or release.label.lower().endswith("-security"):
        return "security"
    if any(n.endswith(("-backports", "-backports-sloppy")) for n in names):
        return "enhancement"
    return "bugfix"


def parse_packages(data: bytes, name: str = "Packages") -> tuple[RepoPackage, ...]:
    """Every stanza of a Packages index (gzip, xz, bzip2, zstd, lz4 or plain).

    Package, Version and Architecture are required; Source defaults to the
    package name, as Debian policy says.
    """
    buf = b"\n" + decompress(data, name)
    size = len(buf)
    find = buf.find
    packages: list[RepoPackage] = []
    append = packages.append
    start = 0  # the newline before the current stanza's first line
    number = 0
    try:
        while start < size:
            end = find(b"\n\n", start)
            if end < 0:
                end = size
            if end == start or not buf[start:end].strip():
                start = end + 1
                continue
            number += 1
            values: list[str] = []
            for key in (_PACKAGE, _VERSION, _ARCHITECTURE):
                at = find(key, start, end)
                if at < 0:
                    field = key[1:-1].decode()
                    raise RepositoryFormatError(
                        f"{name}: stanza {number} (byte {start}) has no {field} field"
                    )
                at += len(key)
                stop = find(b"\n", at, end)
                values.append(buf[at : stop if stop >= 0 else end].strip().decode())
            package, version, arch = values
            if not package or not version or not arch:
                raise RepositoryFormatError(
                    f"{name}: stanza {number} (byte {start}) has an empty "
                    "Package, Version or Architecture"
                )
            optional: list[str] = []
            for key in (_SOURCE, _FILENAME, _SIZE, _SHA256_FIELD):
                at = find(key, start, end)
                if at < 0:
                    optional.append("")
                    continue
                at += len(key)
                stop = find(b"\n", at, end)
                optional.append(buf[at : stop if stop >= 0 else end].strip().decode())
            source, filename, size_text, sha256 = optional
            # "Source: name" or "Source: name (version)" when the versions differ.
            source = source.partition(" ")[0] or package
            append(
                RepoPackage(
                    package,
                    version,
                    arch,
                    source,
                    filename,
                    int(size_text) if size_text else 0,
                    sha256,
                    None,
                )
            )
            start = end + 1
    except UnicodeDecodeError as exc:
        raise RepositoryFormatError(
            f"{name}: stanza {number} (byte {start}) has a field that is not UTF-8"
        ) from exc
    except ValueError as exc:
        raise RepositoryFormatError(
            f"{name}: stanza {number} (byte {start}) has a Size that is not a number"
        ) from exc
    return tuple(packages)
