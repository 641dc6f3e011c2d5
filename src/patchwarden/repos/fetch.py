"""Fetching a repository's metadata over http(s) or from file:// URLs, verified,
all or nothing.

* ``fetch_apt``: ``dists/<suite>/InRelease`` (``Release`` when there is none),
  then one Packages index per component and architecture (the best
  compression the Release lists, by-hash when the Release says so), each
  checked against the size and SHA-256 the Release gives;
* ``fetch_rpm``: ``repodata/repomd.xml``, then primary (and updateinfo when
  listed), each checked against repomd's checksum and size;
* ``fetch_apk``: ``APKINDEX.tar.gz`` (its signature is not verified).

Conditional: pass the :class:`Validators` of the last good fetch. The top file
is requested with If-None-Match / If-Modified-Since; a 304, or a top file
whose SHA-256 equals the previous one, gives :class:`Unchanged` and nothing
else is downloaded.

All or nothing: every failure raises a :class:`~patchwarden.errors.RepositoryError`
(unreachable, HTTP status, checksum mismatch, corrupt data, bad XML) and no
partial snapshot exists, so the caller keeps its last good one.

httpx cannot route ``file:///path`` URLs (an empty host makes them
"relative"), so file URLs are read from disk here, without the client.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Final, NamedTuple
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import httpx

from patchwarden.errors import InvalidInput, RepositoryError
from patchwarden.repos._compression import MAX_DECOMPRESSED_BYTES, decompress
from patchwarden.repos.apk import parse_apkindex
from patchwarden.repos.apt import IndexFile, Release, classify_pocket, parse_packages, parse_release
from patchwarden.repos.errors import (
    RepositoryChecksumMismatch,
    RepositoryFormatError,
    RepositoryHTTPError,
    RepositoryUnreachable,
)
from patchwarden.repos.model import Classification, RepoPackage, RepoSnapshot, UpdateNotice
from patchwarden.repos.rpmmd import RepomdData, parse_primary, parse_repomd, parse_updateinfo

MAX_TOP_BYTES: Final = 64 << 20  # InRelease, repomd.xml
MAX_FILE_BYTES: Final = 1 << 30  # a downloaded index without an announced size
# Preferred first: the smallest download the Release lists.
PACKAGES_SUFFIXES: Final = (".xz", ".zst", ".gz", ".bz2", ".lz4", "")


@dataclass(frozen=True)
class Validators:
    """What identifies the last good fetch: the top file's HTTP validators and
    the ``sha256:<hex>`` of its content (= ``RepoSnapshot.checksum``)."""

    etag: str | None = None
    last_modified: str | None = None
    checksum: str = ""


@dataclass(frozen=True)
class Fetched:
    snapshot: RepoSnapshot
    validators: Validators


@dataclass(frozen=True)
class Unchanged:
    """The repository is as it was at the last good fetch."""

    validators: Validators


FetchResult = Fetched | Unchanged


class _Download(NamedTuple):
    content: bytes
    etag: str | None
    last_modified: str | None


# -- apt -------------------------------------------------------------------------


def fetch_apt(
    url: str,
    suite: str,
    components: Sequence[str],
    architectures: Sequence[str],
    client: httpx.Client,
    *,
    previous: Validators | None = None,
    name: str | None = None,
) -> FetchResult:
    """One apt suite: ``<url>/dists/<suite>/…``. The snapshot is named
    ``name`` or ``"<url> <suite>"``; its class is the suite's pocket."""
    if isinstance(components, str) or isinstance(architectures, str):
        raise InvalidInput("components and architectures are lists of names, not one string")
    base = f"{url.rstrip('/')}/dists/{suite.strip('/')}/"
    top_name = "InRelease"
    try:
        top = _download(client, base + top_name, MAX_TOP_BYTES, previous)
    except RepositoryHTTPError as exc:
        if exc.status_code not in (404, 410):
            raise
        top_name = "Release"
        top = _download(client, base + top_name, MAX_TOP_BYTES, previous)
    if top is None:
        return Unchanged(previous or Validators())
    validators = _validators(top)
    if previous is not None and previous.checksum == validators.checksum:
        return Unchanged(validators)
    release = parse_release(top.content, base + top_name)
    packages: list[RepoPackage] = []
    for component in components:
        for arch in architectures:
            directory = f"{component}/binary-{arch}/"
            entry, content = _fetch_packages(client, base, release, directory, base + top_name)
            plain = decompress(content, base + entry.path)
            # Like apt, check the decompressed index too when the Release lists it.
            listed = release.files.get(directory + "Packages")
            if listed is not None and entry.path != listed.path:
                _verify(plain, listed, base + listed.path + " (decompressed)")
            packages.extend(parse_packages(plain, base + directory + "Packages"))
    snapshot = RepoSnapshot(
        kind="apt",
        name=name or f"{url.rstrip('/')} {suite}",
        packages=tuple(packages),
        classification_default=classify_pocket(release),
        released=release.date,
        checksum=validators.checksum,
    )
    return Fetched(snapshot, validators)


def _fetch_packages(
    client: httpx.Client, base: str, release: Release, directory: str, where: str
) -> tuple[IndexFile, bytes]:
    """The first listed Packages variant the mirror serves (like apt, a mirror may
    lack some compressions the Release lists), verified against the Release."""
    entries = [
        entry
        for suffix in PACKAGES_SUFFIXES
        if (entry := release.files.get(f"{directory}Packages{suffix}")) is not None
    ]
    for position, entry in enumerate(entries):
        try:
            return entry, _fetch_index(client, base, entry, release.acquire_by_hash)
        except RepositoryHTTPError as exc:
            if exc.status_code not in (404, 410) or position == len(entries) - 1:
                raise
    raise RepositoryFormatError(
        f"{where} lists no Packages index in {directory} (components: "
        f"{' '.join(release.components) or '-'}; architectures: "
        f"{' '.join(release.architectures) or '-'})"
    )


def _fetch_index(client: httpx.Client, base: str, entry: IndexFile, by_hash: bool) -> bytes:
    """An index file, by its hash when the Release offers that (so a mirror
    updated between our two requests cannot hand us a newer file), verified."""
    url = base + entry.path
    download = None
    if by_hash:
        directory = entry.path.rpartition("/")[0]
        hashed = f"{base}{directory}/by-hash/SHA256/{entry.sha256}"
        try:
            download = _download(client, hashed, entry.size)
            url = hashed
        except RepositoryHTTPError as exc:
            if exc.status_code not in (404, 410):
                raise
    if download is None:
        download = _download(client, url, entry.size)
    assert download is not None  # only a conditional request gives None
    _verify(download.content, entry, url)
    return download.content


def _verify(content: bytes, entry: IndexFile, url: str) -> None:
    if len(content) != entry.size:
        raise RepositoryChecksumMismatch(
            f"{url}: {len(content)} bytes, but the Release file says {entry.size} "
            "(truncated, or a mirror mid-sync: retry later)"
        )
    digest = hashlib.sha256(content).hexdigest()
    if digest != entry.sha256:
        raise RepositoryChecksumMismatch(
            f"{url}: SHA256 {digest} differs from {entry.sha256} in the Release file "
            "(a mirror mid-sync? retry later)"
        )


# -- rpm-md ----------------------------------------------------------------------


def fetch_rpm(
    url: str,
    client: httpx.Client,
    *,
    previous: Validators | None = None,
    name: str | None = None,
    classification: Classification = "unclassified",
) -> FetchResult:
    """One rpm-md repository (the directory holding ``repodata/``): packages
    from primary, notices from updateinfo when the repository has one."""
    base = url.rstrip("/") + "/"
    top = _download(client, base + "repodata/repomd.xml", MAX_TOP_BYTES, previous)
    if top is None:
        return Unchanged(previous or Validators())
    validators = _validators(top)
    if previous is not None and previous.checksum == validators.checksum:
        return Unchanged(validators)
    repomd = parse_repomd(top.content, base + "repodata/repomd.xml")
    primary = repomd.data.get("primary")
    if primary is None:
        raise RepositoryFormatError(f"{base}repodata/repomd.xml lists no primary metadata")
    packages = parse_primary(_fetch_metadata(client, base, primary), base + primary.location)
    notices: tuple[UpdateNotice, ...] = ()
    updateinfo = repomd.data.get("updateinfo")
    if updateinfo is not None:
        content = _fetch_metadata(client, base, updateinfo)
        notices = parse_updateinfo(content, base + updateinfo.location)
    snapshot = RepoSnapshot(
        kind="rpm",
        name=name or url.rstrip("/"),
        packages=packages,
        notices=notices,
        classification_default=classification,
        released=repomd.released,
        checksum=validators.checksum,
    )
    return Fetched(snapshot, validators)


def _fetch_metadata(client: httpx.Client, base: str, entry: RepomdData) -> bytes:
    location = entry.location
    parts = location.split("/")
    if "://" in location or location.startswith("/") or ".." in parts:
        raise RepositoryFormatError(
            f"{base}repodata/repomd.xml: {entry.type} location {location!r} leaves the repository"
        )
    try:
        digest = hashlib.new(entry.checksum_type)
    except ValueError as exc:
        raise RepositoryFormatError(
            f"{base}repodata/repomd.xml: unknown checksum type {entry.checksum_type!r}"
        ) from exc
    url = base + location
    download = _download(client, url, entry.size if entry.size is not None else MAX_FILE_BYTES)
    assert download is not None  # only a conditional request gives None
    content = download.content
    if entry.size is not None and len(content) != entry.size:
        raise RepositoryChecksumMismatch(
            f"{url}: {len(content)} bytes, but repomd.xml says {entry.size} "
            "(truncated, or a mirror mid-sync: retry later)"
        )
    digest.update(content)
    if digest.hexdigest() != entry.checksum:
        raise RepositoryChecksumMismatch(
            f"{url}: {entry.checksum_type} {digest.hexdigest()} differs from "
            f"{entry.checksum} in repomd.xml (a mirror mid-sync? retry later)"
        )
    return content


# -- apk -------------------------------------------------------------------------


def fetch_apk(
    url: str,
    client: httpx.Client,
    *,
    previous: Validators | None = None,
    name: str | None = None,
) -> FetchResult:
    """One apk repository and arch (``…/v3.19/main/x86_64``). The index has
    no date of its own; ``released`` is the server's Last-Modified."""
    base = url.rstrip("/") + "/"
    top = _download(client, base + "APKINDEX.tar.gz", MAX_DECOMPRESSED_BYTES, previous)
    if top is None:
        return Unchanged(previous or Validators())
    validators = _validators(top)
    if previous is not None and previous.checksum == validators.checksum:
        return Unchanged(validators)
    index = parse_apkindex(top.content, base + "APKINDEX.tar.gz")
    snapshot = RepoSnapshot(
        kind="apk",
        name=name or url.rstrip("/"),
        packages=index.packages,
        released=_http_date(top.last_modified),
        checksum=validators.checksum,
    )
    return Fetched(snapshot, validators)


# -- transfer --------------------------------------------------------------------


def _validators(top: _Download) -> Validators:
    checksum = "sha256:" + hashlib.sha256(top.content).hexdigest()
    return Validators(top.etag, top.last_modified, checksum)


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).astimezone(UTC)
    except (TypeError, ValueError):
        return None


def _download(
    client: httpx.Client, url: str, limit: int, previous: Validators | None = None
) -> _Download | None:
    """The body of ``url`` (at most ``limit`` bytes); None when ``previous``
    is given and the server answers 304 Not Modified."""
    if url.startswith("file:"):
        return _read_file(url, limit)
    headers: dict[str, str] = {}
    if previous is not None:
        if previous.etag:
            headers["If-None-Match"] = previous.etag
        if previous.last_modified:
            headers["If-Modified-Since"] = previous.last_modified
    try:
        with client.stream("GET", url, headers=headers, follow_redirects=True) as response:
            if response.status_code == 304 and headers:
                return None
            if response.status_code != 200:
                raise RepositoryHTTPError(
                    f"{url}: HTTP {response.status_code} {response.reason_phrase}",
                    response.status_code,
                )
            parts: list[bytes] = []
            size = 0
            for part in response.iter_bytes():
                size += len(part)
                if size > limit:
                    raise RepositoryChecksumMismatch(
                        f"{url}: more than the {limit} bytes expected; refused"
                    )
                parts.append(part)
            return _Download(
                b"".join(parts),
                response.headers.get("etag"),
                response.headers.get("last-modified"),
            )
    except httpx.UnsupportedProtocol as exc:
        raise RepositoryError(f"{url}: only http, https and file URLs are supported") from exc
    except httpx.TimeoutException as exc:
        raise RepositoryUnreachable(f"{url}: timed out ({type(exc).__name__})") from exc
    except httpx.RemoteProtocolError as exc:
        raise RepositoryUnreachable(
            f"{url}: the connection broke during the download ({exc})"
        ) from exc
    except httpx.TransportError as exc:
        raise RepositoryUnreachable(f"{url}: cannot reach the repository ({exc})") from exc
    except httpx.InvalidURL as exc:
        raise RepositoryError(f"{url}: not a valid URL ({exc})") from exc


def _read_file(url: str, limit: int) -> _Download:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise RepositoryError(f"{url}: file URLs must name a local path (file:///path)")
    path = Path(url2pathname(unquote(parts.path)))
    try:
        size = path.stat().st_size
        if size > limit:
            raise RepositoryChecksumMismatch(f"{url}: more than the {limit} bytes expected")
        return _Download(path.read_bytes(), None, None)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise RepositoryHTTPError(f"{url}: no such file", 404) from exc
    except OSError as exc:
        raise RepositoryError(f"{url}: cannot read ({exc.strerror or exc})") from exc
