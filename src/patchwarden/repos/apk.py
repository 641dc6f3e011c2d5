"""Alpine apk repositories: the APKINDEX of one repository and architecture.

``APKINDEX.tar.gz`` is a tar of ``DESCRIPTION`` (the repository's version,
"v3.19.1-123-g…") and ``APKINDEX``, blank-line separated records of
one-letter fields::

    C:Q1…=          checksum of the package's control part (SHA-1, base64)
    P:busybox       name            V:1.36.1-r15    version
    A:x86_64        arch            S:512345        size of the .apk
    o:busybox       origin (source) t:1700000000    build time (Unix)

A signed index starts with one more gzip member holding only the
``.SIGN.RSA.*`` entry; gzip members are read one after another, so the tar
reads through it. The signature is not verified here.
"""

from __future__ import annotations

import io
import tarfile
from datetime import UTC, datetime
from typing import NamedTuple

from patchwarden.repos._compression import decompress
from patchwarden.repos.errors import RepositoryFormatError
from patchwarden.repos.model import RepoPackage


class ApkIndex(NamedTuple):
    description: str
    packages: tuple[RepoPackage, ...]


def parse_apkindex(data: bytes, name: str = "APKINDEX.tar.gz") -> ApkIndex:
    """An ``APKINDEX.tar.gz`` (signed or not)."""
    tar_bytes = decompress(data, name)
    texts: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as archive:
            for member in archive:
                if member.isfile() and member.name in ("APKINDEX", "DESCRIPTION"):
                    stream = archive.extractfile(member)
                    if stream is not None:
                        texts[member.name] = stream.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise RepositoryFormatError(f"{name}: not a readable tar archive ({exc})") from exc
    if "APKINDEX" not in texts:
        raise RepositoryFormatError(f"{name}: the archive holds no APKINDEX")
    description = texts.get("DESCRIPTION", b"").decode("utf-8", "replace").strip()
    return ApkIndex(description, parse_apkindex_text(texts["APKINDEX"], f"{name}:APKINDEX"))


def parse_apkindex_text(data: bytes, name: str = "APKINDEX") -> tuple[RepoPackage, ...]:
    """The records of a decompressed APKINDEX file. P and V are required."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RepositoryFormatError(f"{name}: not UTF-8 text ({exc})") from exc
    packages: list[RepoPackage] = []
    fields: dict[str, str] = {}
    line_number = 0
    for line_number, line in enumerate([*text.split("\n"), ""], 1):  # "" ends the last record
        if line.strip():
            key, colon, value = line.partition(":")
            if colon and len(key) == 1:
                fields.setdefault(key, value.strip())
            continue
        if not fields:
            continue
        packages.append(_package(fields, name, line_number))
        fields = {}
    return tuple(packages)


def _package(fields: dict[str, str], name: str, line: int) -> RepoPackage:
    package, version = fields.get("P", ""), fields.get("V", "")
    if not package or not version:
        raise RepositoryFormatError(f"{name}: the record ending at line {line} has no P: or V:")
    try:
        size = int(fields.get("S") or 0)
        built = fields.get("t")
        build_time = datetime.fromtimestamp(int(built), UTC) if built else None
    except (ValueError, OverflowError, OSError) as exc:
        raise RepositoryFormatError(
            f"{name}: {package} {version} has a size or build time that is not a number"
        ) from exc
    return RepoPackage(
        package,
        version,
        fields.get("A", ""),
        fields.get("o") or package,
        f"{package}-{version}.apk",
        size,
        "",
        build_time,
    )
