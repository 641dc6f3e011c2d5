"""Downloading feed files: conditional, resumable, verified, atomic.

``sync(source, dest_dir, client)`` keeps ``dest_dir/<source.filename>`` up to
date with ``source.url``:

* **conditional**: the ETag and Last-Modified of the last download are kept in
  a sidecar (``.<filename>.sync.json``) and sent back as If-None-Match /
  If-Modified-Since; 304 means "unchanged". A server that ignores them and
  sends the same bytes again also gives "unchanged" (compared by SHA-256).
* **resumable**: the body goes to ``.<filename>.part``; if the connection
  breaks, the part stays (with the validators of its response in
  ``.<filename>.part.json``) and the next sync asks for the rest with
  ``Range`` and ``If-Range``. A server that answers 200 instead of 206 (Range
  not supported, or the file changed) restarts the part from zero.
* **verified**: a pluggable :class:`ChecksumProvider` gives the digest the
  publisher announces (NVD's ``.meta``, a ``.sha256`` file, Google Cloud
  Storage's ``x-goog-hash``); a mismatch deletes the part, leaves the current
  file untouched and raises :class:`ChecksumMismatch`.
* **atomic**: the verified part is fsynced and renamed over the file, so a
  reader sees the old file or the new one, never half of one.
* **recorded once used**: with ``save_state=False`` a new file is not recorded
  as current until :func:`record_synced` is called (after its import
  succeeded); until then the next sync downloads it again rather than getting
  304, so a failed import is retried instead of reported "unchanged".

Names starting with "." are skipped by ``read_path``, so ``feeds import
dest_dir`` reads the feed files and not the sidecars. A host that cannot be
reached raises :class:`FeedUnreachable` saying how to import offline.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal, Protocol

import httpx

from patchwarden.errors import InvalidInput
from patchwarden.feeds.errors import (
    ChecksumMismatch,
    DownloadInterrupted,
    FeedDownloadError,
    FeedUnreachable,
)

OFFLINE_HINT: Final = "download the file elsewhere and use `patchwarden feeds import PATH`"
_CONTENT_RANGE: Final = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


@dataclass(frozen=True)
class ExpectedChecksum:
    """A digest a publisher announces for a file."""

    algorithm: str  # a hashlib name: "sha256", "md5" …
    hexdigest: str
    decompressed: bool = False  # the digest is of the gunzipped content (NVD .meta)
    origin: str = ""  # where it came from, for messages


class ChecksumProvider(Protocol):
    """Where a source publishes the checksum of its file, if anywhere."""

    def expected(
        self, client: httpx.Client, source: SyncSource, headers: httpx.Headers
    ) -> ExpectedChecksum | None:
        """The announced digest; ``headers`` are those of the download response."""
        ...


@dataclass(frozen=True)
class SyncSource:
    """A feed file to download: ``format`` is the feed that imports it."""

    name: str
    url: str
    filename: str
    format: str
    checksum: ChecksumProvider | None = None


@dataclass(frozen=True)
class SyncResult:
    source: str
    status: Literal["downloaded", "unchanged"]
    path: Path
    size: int
    sha256: str
    resumed: bool = False  # the download continued a part left by an earlier one
    verified: bool = False  # it matched the publisher's checksum
    etag: str | None = None
    last_modified: str | None = None


# -- checksum providers ------------------------------------------------------------


def _fetch_text(client: httpx.Client, url: str) -> str:
    request = client.build_request("GET", url)
    try:
        response = client.send(request, follow_redirects=True)
    except httpx.TransportError as exc:
        raise FeedUnreachable(_unreachable(request.url.host, exc)) from exc
    if response.status_code != 200:
        raise FeedDownloadError(
            f"cannot get the checksum at {request.url}: HTTP {response.status_code} "
            f"{response.reason_phrase}"
        )
    return response.text


@dataclass(frozen=True)
class NvdMetaChecksum:
    """NVD data feeds: ``<feed>.meta`` beside ``<feed>.json.gz`` holds
    ``sha256:<HEX>`` of the uncompressed JSON."""

    def expected(
        self, client: httpx.Client, source: SyncSource, headers: httpx.Headers
    ) -> ExpectedChecksum | None:
        meta_url = re.sub(r"\.json(\.gz|\.zip)?$", ".meta", source.url)
        for line in _fetch_text(client, meta_url).splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "sha256" and value.strip():
                return ExpectedChecksum("sha256", value.strip().lower(), True, meta_url)
        raise FeedDownloadError(f"{meta_url} has no 'sha256:' line")


@dataclass(frozen=True)
class ChecksumFile:
    """A ``<url><suffix>`` file whose first word is the hex digest (``sha256sum`` output)."""

    suffix: str = ".sha256"
    algorithm: str = "sha256"

    def expected(
        self, client: httpx.Client, source: SyncSource, headers: httpx.Headers
    ) -> ExpectedChecksum | None:
        url = source.url + self.suffix
        words = _fetch_text(client, url).split()
        if not words:
            raise FeedDownloadError(f"{url} is empty")
        return ExpectedChecksum(self.algorithm, words[0].lower(), False, url)


@dataclass(frozen=True)
class GoogleStorageHash:
    """Google Cloud Storage (OSV's bucket) sends ``x-goog-hash: md5=<base64>``."""

    def expected(
        self, client: httpx.Client, source: SyncSource, headers: httpx.Headers
    ) -> ExpectedChecksum | None:
        for value in headers.get_list("x-goog-hash", split_commas=True):
            kind, _, digest = value.strip().partition("=")
            if kind == "md5":
                try:
                    raw = base64.b64decode(digest, validate=True)
                except (binascii.Error, ValueError):
                    return None
                return ExpectedChecksum("md5", raw.hex(), False, "x-goog-hash")
        return None


# -- the public sources --------------------------------------------------------------

_OSV: Final = "https://osv-vulnerabilities.storage.googleapis.com"
_NVD: Final = "https://nvd.nist.gov/feeds/json/cve/2.0"


def _osv(ecosystem: str) -> SyncSource:
    return SyncSource(
        f"osv-{ecosystem.lower()}",
        f"{_OSV}/{ecosystem}/all.zip",
        f"osv-{ecosystem}-all.zip",
        "osv",
        GoogleStorageHash(),
    )


def nvd_feed(name: str) -> SyncSource:
    """An NVD 2.0 data feed: "modified", "recent" or a year ("2024")."""
    return SyncSource(
        f"nvd-{name}",
        f"{_NVD}/nvdcve-2.0-{name}.json.gz",
        f"nvdcve-2.0-{name}.json.gz",
        "nvd",
        NvdMetaChecksum(),
    )


DEFAULT_SOURCES: Final[Mapping[str, SyncSource]] = MappingProxyType(
    {
        source.name: source
        for source in (
            SyncSource(
                "kev",
                "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json",
                "known_exploited_vulnerabilities.json",
                "kev",
            ),
            # FIRST's official EPSS host; "current" redirects to the dated file.
            SyncSource(
                "epss",
                "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz",
                "epss_scores-current.csv.gz",
                "epss",
            ),
            _osv("Debian"),
            _osv("Ubuntu"),
            _osv("Alpine"),
            _osv("PyPI"),
            _osv("npm"),
            SyncSource(
                "debian-tracker-json",
                "https://security-tracker.debian.org/tracker/data/json",
                "debian-security-tracker.json",
                "debian-tracker-json",
            ),
            nvd_feed("modified"),
        )
    }
)


# NVD's yearly 2.0 feeds: every CVE of its year, for a first load (the daily
# sync takes "modified", eight days of changes). CVE-1999-* are in 2002's.
NVD_FIRST_YEAR: Final = 2002
_NVD_YEAR = re.compile(r"nvd-(\d{4})")


def get_source(name: str) -> SyncSource:
    """The source called ``name``: a default one, or an NVD year ("nvd-2024");
    raises :class:`InvalidInput` listing them."""
    source = DEFAULT_SOURCES.get(name)
    if source is not None:
        return source
    year = _NVD_YEAR.fullmatch(name)
    if year and NVD_FIRST_YEAR <= int(year[1]) <= datetime.now(UTC).year:
        return nvd_feed(year[1])
    raise InvalidInput(
        f"unknown feed source {name!r}; valid sources: {', '.join(sorted(DEFAULT_SOURCES))}, "
        f"nvd-{NVD_FIRST_YEAR} to nvd-{datetime.now(UTC).year} (NVD by year), or nvd-all"
    )


def get_sources(names: Sequence[str]) -> list[SyncSource]:
    """The sources called ``names`` (see :func:`get_source`); "nvd-all" stands
    for every NVD year, the first load of NVD's scores."""
    sources: list[SyncSource] = []
    for name in names:
        if name == "nvd-all":
            years = range(NVD_FIRST_YEAR, datetime.now(UTC).year + 1)
            sources.extend(nvd_feed(str(year)) for year in years)
        else:
            sources.append(get_source(name))
    return list({source.name: source for source in sources}.values())


# -- sync ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Paths:
    target: Path
    state: Path  # validators of the file in place
    part: Path
    part_state: Path  # validators of the response the part came from

    @classmethod
    def of(cls, dest_dir: Path, filename: str) -> _Paths:
        if not filename or "/" in filename or "\\" in filename or filename.startswith("."):
            raise InvalidInput(f"invalid feed file name {filename!r}")
        return cls(
            dest_dir / filename,
            dest_dir / f".{filename}.sync.json",
            dest_dir / f".{filename}.part",
            dest_dir / f".{filename}.part.json",
        )


def sync(
    source: SyncSource, dest_dir: Path, client: httpx.Client, *, save_state: bool = True
) -> SyncResult:
    """Bring ``dest_dir/source.filename`` up to date (see the module docstring).

    With ``save_state=False`` a downloaded file is left unrecorded: call
    :func:`record_synced` once it has been imported.

    Raises :class:`FeedUnreachable` (offline), :class:`DownloadInterrupted`
    (the part is kept: sync again to resume), :class:`ChecksumMismatch` or
    :class:`FeedDownloadError` (an HTTP error); the file in place is never
    touched by a failed sync.
    """
    paths = _Paths.of(dest_dir, source.filename)
    dest_dir.mkdir(parents=True, exist_ok=True)
    return _Download(source, paths, client, save_state).run()


def record_synced(source: SyncSource, dest_dir: Path, result: SyncResult) -> None:
    """Record the file of ``result`` as current: the next sync sends its validators."""
    _save(_Paths.of(dest_dir, source.filename).state, _state_of(source, result))


def _state_of(source: SyncSource, result: SyncResult) -> dict[str, object]:
    return {
        "url": source.url,
        "etag": result.etag,
        "last_modified": result.last_modified,
        "sha256": result.sha256,
        "size": result.size,
    }


class _Download:
    def __init__(
        self, source: SyncSource, paths: _Paths, client: httpx.Client, save_state: bool
    ) -> None:
        self.source = source
        self.paths = paths
        self.client = client
        self.save_state = save_state

    def run(self, *, allow_resume: bool = True) -> SyncResult:
        state = _load(self.paths.state) if self.paths.target.exists() else {}
        if state.get("url") != self.source.url:
            state = {}
        part_state = _load(self.paths.part_state) if self.paths.part.exists() else {}
        offset = self.paths.part.stat().st_size if part_state else 0
        validator = part_state.get("etag") or part_state.get("last_modified")
        resuming = bool(
            allow_resume and offset and validator and part_state.get("url") == self.source.url
        )
        if not resuming:
            self._discard_part()
            offset = 0

        headers = {"Accept-Encoding": "identity"}
        if resuming:
            headers["Range"] = f"bytes={offset}-"
            headers["If-Range"] = str(validator)
        else:
            if state.get("etag"):
                headers["If-None-Match"] = str(state["etag"])
            if state.get("last_modified"):
                headers["If-Modified-Since"] = str(state["last_modified"])

        request = self.client.build_request("GET", self.source.url, headers=headers)
        try:
            response = self.client.send(request, stream=True, follow_redirects=True)
        except httpx.TransportError as exc:
            raise FeedUnreachable(_unreachable(request.url.host, exc)) from exc
        try:
            if response.status_code == 304 and state:
                return self._unchanged(state)
            if response.status_code == 206 and resuming and _range_start(response) == offset:
                self._receive(response, append=True)
            elif response.status_code in (206, 416):  # a range we did not ask for, or a bad one
                response.close()
                self._discard_part()
                if not resuming:
                    raise FeedDownloadError(
                        f"{response.url} answered HTTP {response.status_code} to a plain GET"
                    )
                return self.run(allow_resume=False)
            elif response.status_code == 200:
                resuming = False
                self._receive(response, append=False)
            else:
                raise FeedDownloadError(
                    f"{response.url} answered HTTP {response.status_code} "
                    f"{response.reason_phrase}; the file in place is unchanged"
                )
            response_headers = response.headers
        finally:
            response.close()
        return self._finish(state, response_headers, resuming)

    # -- steps -----------------------------------------------------------------------

    def _receive(self, response: httpx.Response, *, append: bool) -> None:
        """Stream the body into the part; the part's validators are saved first."""
        validators = {
            "url": self.source.url,
            "etag": response.headers.get("etag"),
            "last_modified": response.headers.get("last-modified"),
        }
        _save(self.paths.part_state, validators)
        expected_end = _expected_end(response)
        with self.paths.part.open("ab" if append else "wb") as out:
            try:
                for chunk in response.iter_raw():  # as received: a cut loses nothing
                    out.write(chunk)
            except httpx.TransportError as exc:
                out.flush()
                raise self._interrupted(out.tell(), exc) from exc
            out.flush()
            os.fsync(out.fileno())
            received = out.tell()
        if expected_end is not None and received != expected_end:
            raise self._interrupted(received, f"expected {expected_end} bytes")

    def _interrupted(self, received: int, cause: object) -> DownloadInterrupted:
        validators = _load(self.paths.part_state)
        if validators.get("etag") or validators.get("last_modified"):
            kept = f"; {received} bytes kept in {self.paths.part.name}: sync again to resume"
        else:
            self._discard_part()
            kept = "; the server sends no ETag or Last-Modified, so the next sync starts over"
        return DownloadInterrupted(f"the download of {self.source.url} broke off ({cause}){kept}")

    def _finish(
        self, state: dict[str, object], headers: httpx.Headers, resumed: bool
    ) -> SyncResult:
        part = self.paths.part
        verified = False
        if self.source.checksum is not None:
            expected = self.source.checksum.expected(self.client, self.source, headers)
            if expected is not None:
                actual = _digest(part, expected)
                if actual != expected.hexdigest:
                    self._discard_part()
                    raise ChecksumMismatch(
                        f"{self.source.url}: the download's {expected.algorithm} is {actual}, "
                        f"but {expected.origin or 'the publisher'} says {expected.hexdigest}; "
                        "the file was not replaced (sync again later)"
                    )
                verified = True
        sha256 = _digest(part, ExpectedChecksum("sha256", ""))
        size = part.stat().st_size
        validators = _load(self.paths.part_state)
        unchanged = state.get("sha256") == sha256 and self.paths.target.exists()
        if unchanged:
            self._discard_part()
        else:
            if not self.save_state:
                # The state describes the file about to be replaced: without it the
                # next sync downloads again until record_synced says the new one is in.
                self.paths.state.unlink(missing_ok=True)
            os.replace(part, self.paths.target)
            _fsync_dir(self.paths.target.parent)
            self.paths.part_state.unlink(missing_ok=True)
        result = SyncResult(
            source=self.source.name,
            status="unchanged" if unchanged else "downloaded",
            path=self.paths.target,
            size=size,
            sha256=sha256,
            resumed=resumed,
            verified=verified,
            etag=_text(validators.get("etag")),
            last_modified=_text(validators.get("last_modified")),
        )
        # An unchanged file is the recorded one: only its validators are refreshed.
        # A new one, with save_state=False, waits for record_synced.
        if unchanged or self.save_state:
            _save(self.paths.state, _state_of(self.source, result))
        return result

    def _unchanged(self, state: dict[str, object]) -> SyncResult:
        return SyncResult(
            source=self.source.name,
            status="unchanged",
            path=self.paths.target,
            size=self.paths.target.stat().st_size,
            sha256=str(state.get("sha256", "")),
            etag=_text(state.get("etag")),
            last_modified=_text(state.get("last_modified")),
        )

    def _discard_part(self) -> None:
        self.paths.part.unlink(missing_ok=True)
        self.paths.part_state.unlink(missing_ok=True)


# -- helpers -------------------------------------------------------------------------


def _unreachable(host: str, exc: BaseException) -> str:
    detail = str(exc) or ("timed out" if isinstance(exc, httpx.TimeoutException) else "")
    detail = detail or type(exc).__name__
    return f"cannot reach {host or 'the feed host'}: {detail}; {OFFLINE_HINT}"


def _range_start(response: httpx.Response) -> int | None:
    match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", "").strip())
    return int(match[1]) if match else None


def _expected_end(response: httpx.Response) -> int | None:
    """The part's size once this response is complete, when the server says."""
    if response.status_code == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", "").strip())
        return int(match[2]) + 1 if match else None
    length = response.headers.get("content-length")
    return int(length) if length and length.isdigit() else None


def _digest(path: Path, expected: ExpectedChecksum) -> str:
    try:
        digest = hashlib.new(expected.algorithm, usedforsecurity=False)
    except ValueError as exc:
        raise FeedDownloadError(f"unsupported checksum algorithm {expected.algorithm!r}") from exc
    try:
        with gzip.open(path, "rb") if expected.decompressed else path.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    except (OSError, EOFError) as exc:
        return f"(unreadable: {exc})"
    return digest.hexdigest()


def _load(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(path: Path, data: Mapping[str, object]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(dict(data), sort_keys=True, indent=1), encoding="utf-8")
    os.replace(temporary, path)


def _fsync_dir(path: Path) -> None:
    if not hasattr(os, "O_DIRECTORY"):
        return  # Windows: directories cannot be opened for fsync
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
