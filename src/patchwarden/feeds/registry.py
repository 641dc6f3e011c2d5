"""The explicit registry of feeds, format detection, and reading paths.

``read_path`` takes one file, a directory (every file inside, recursively, in
sorted order; names starting with "." are skipped, which includes the sync
sidecars), or a zip archive (every member, e.g. OSV's ``all.zip``), and
decompresses gzip transparently (recognised by its magic bytes, not its name).
It yields one :class:`ParsedFeed` per file or archive member, whose ``file``
is the path (``archive.zip:member`` for members).

A file no feed recognises, or one that cannot be read, becomes a ParsedFeed
with no records and one rejection saying why (its ``source`` is
``"unknown"`` when no format was detected) — the same whether or not the
format was forced, so one bad file in a directory never stops the others and
the import summary always shows it. Only requests that cannot be served at all
raise :class:`InvalidInput`: an unknown format name, a path that does not exist.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import IO, Final

from patchwarden.domain.advisories import ParsedFeed, RejectedRecord
from patchwarden.errors import InvalidInput
from patchwarden.feeds import (
    alpine_secdb,
    debian_tracker,
    debian_tracker_json,
    epss,
    kev,
    nvd,
    osv,
)
from patchwarden.feeds.base import (
    GZIP_MAGIC,
    MAX_DOCUMENT_BYTES,
    READ_ERRORS,
    ByteStream,
    Feed,
    FeedSource,
    Opener,
    SourceUnreadable,
    describe_read_error,
)
from patchwarden.feeds.errors import UnknownFeed

UNKNOWN: Final = "unknown"
_ZIP_MAGIC: Final = (b"PK\x03\x04", b"PK\x05\x06")

# Detection tries the most specific formats first; OSV, the loosest, last.
FEEDS: Final[Mapping[str, Feed]] = MappingProxyType(
    {
        feed.name: feed
        for feed in (
            kev.FEED,
            nvd.FEED,
            epss.FEED,
            debian_tracker.FEED,
            debian_tracker_json.FEED,
            alpine_secdb.FEED,
            osv.FEED,
        )
    }
)


def get_feed(name: str) -> Feed:
    """The feed called ``name``; raises :class:`UnknownFeed` listing the valid ones."""
    feed = FEEDS.get(name)
    if feed is None:
        raise UnknownFeed(name, tuple(sorted(FEEDS)))
    return feed


def detect(head: bytes, filename: str) -> str | None:
    """The name of the first feed that recognises ``head``, or None."""
    for name, feed in FEEDS.items():
        if feed.detect(head, filename):
            return name
    return None


def detect_format(path: Path) -> str:
    """The format of a file (for an archive: its first member; for a directory:
    its first file); raises :class:`InvalidInput` when no feed recognises it."""
    if not path.exists():
        raise InvalidInput(f"{path} does not exist")
    for item in _sources(path, MAX_DOCUMENT_BYTES):
        if isinstance(item, ParsedFeed):
            raise InvalidInput(f"{item.file}: {item.rejected[0].reason}")
        try:
            head = item.head()
        except SourceUnreadable as exc:
            raise InvalidInput(f"{item.name}: {exc.reason}") from exc
        name = detect(head, item.name)
        if name is None:
            raise InvalidInput(
                f"{item.name}: {_undetected(head)}; name the format with --format "
                f"(one of: {', '.join(sorted(FEEDS))})"
            )
        return name
    raise InvalidInput(f"{path} holds no file to import")


def read_path(
    path: Path, fmt: str | None = None, *, max_document_bytes: int = MAX_DOCUMENT_BYTES
) -> Iterator[ParsedFeed]:
    """Parse every file at ``path`` (see the module docstring), lazily.

    ``fmt`` forces one format for every file; None detects each file's.
    Raises :class:`UnknownFeed` or :class:`InvalidInput` at once (not when
    iterated) for an unknown ``fmt`` or a missing ``path``.
    """
    if fmt is not None:
        get_feed(fmt)
    if not path.exists():
        raise InvalidInput(f"{path} does not exist")
    return _read(path, fmt, max_document_bytes)


def _read(path: Path, fmt: str | None, max_document_bytes: int) -> Iterator[ParsedFeed]:
    for item in _sources(path, max_document_bytes):
        yield item if isinstance(item, ParsedFeed) else parse_source(item, fmt)


def parse_source(source: FeedSource, fmt: str | None = None) -> ParsedFeed:
    """Parse one source with the named feed, or the one that recognises it."""
    try:
        head = source.head()
    except SourceUnreadable as exc:
        return _rejected(source.name, fmt or UNKNOWN, exc.reason)
    if fmt is None:
        detected = detect(head, source.name)
        if detected is None:
            return _rejected(
                source.name,
                UNKNOWN,
                f"{_undetected(head)} (known formats: {', '.join(sorted(FEEDS))})",
            )
        return FEEDS[detected].parse(source)
    parsed = get_feed(fmt).parse(source)
    if not parsed.records and len(parsed.rejected) == 1 and parsed.rejected[0].where == source.name:
        other = detect(head, source.name)
        if other is not None and other != fmt:
            hint = f"; it looks like a {other!r} file: use --format {other} or leave --format out"
            rejection = RejectedRecord(source.name, parsed.rejected[0].reason + hint)
            return ParsedFeed(
                source=parsed.source, rejected=(rejection,), notes=parsed.notes, file=parsed.file
            )
    return parsed


def _undetected(head: bytes) -> str:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text:
        return "the file is empty"
    sample = text[:4096]
    if b"\x00" in sample or sum(b < 9 or 13 < b < 32 for b in sample) > len(sample) // 20:
        return "binary data, not a feed file"
    if text[:1] in (b"{", b"["):
        return "JSON, but not in a known feed format"
    return "not in a known feed format"


def _rejected(name: str, source: str, reason: str) -> ParsedFeed:
    return ParsedFeed(source=source, rejected=(RejectedRecord(name, reason),), file=name)


# -- files, directories, archives ------------------------------------------------------


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _sources(path: Path, limit: int) -> Iterator[FeedSource | ParsedFeed]:
    if path.is_dir():
        files = sorted(
            (p for p in path.rglob("*") if p.is_file() and not _hidden(p.relative_to(path).parts)),
            key=lambda p: p.relative_to(path).parts,
        )
        for file in files:
            yield from _file_sources(file, limit)
    else:
        yield from _file_sources(path, limit)


def _file_sources(path: Path, limit: int) -> Iterator[FeedSource | ParsedFeed]:
    name = str(path)
    try:
        with path.open("rb") as stream:
            magic = stream.read(4)
        size = path.stat().st_size
    except OSError as exc:
        yield _rejected(name, UNKNOWN, describe_read_error(exc))
        return
    if magic.startswith(_ZIP_MAGIC):
        yield from _zip_sources(path, limit)
    elif magic.startswith(GZIP_MAGIC):
        yield FeedSource(name, lambda: _buffered_gzip(path.open("rb")), None, limit)
    else:
        yield FeedSource(name, lambda: path.open("rb"), size, limit)


def _zip_sources(path: Path, limit: int) -> Iterator[FeedSource | ParsedFeed]:
    try:
        archive = zipfile.ZipFile(path)
    except READ_ERRORS as exc:
        yield _rejected(str(path), UNKNOWN, describe_read_error(exc))
        return
    with archive:
        members = sorted(
            (m for m in archive.infolist() if not m.is_dir()), key=lambda m: m.filename
        )
        for member in members:
            if _hidden(tuple(member.filename.split("/"))):
                continue
            name = f"{path}:{member.filename}"
            if member.filename.lower().endswith(".zip"):
                yield _rejected(name, UNKNOWN, "an archive inside an archive: unpack it first")
            elif member.filename.lower().endswith(".gz"):
                yield FeedSource(name, _gunzip_member(archive, member), None, limit)
            else:
                yield FeedSource(name, _member(archive, member), member.file_size, limit)


def _member(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> Opener:
    def opener() -> ByteStream:
        return archive.open(member)

    return opener


def _gunzip_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> Opener:
    def opener() -> ByteStream:
        return _buffered_gzip(archive.open(member))

    return opener


def _buffered_gzip(stream: IO[bytes]) -> ByteStream:
    """A gzip reader whose ``readline`` runs in C (GzipFile's own is slow per line).
    Closing it closes ``stream`` too."""
    return io.BufferedReader(_ClosingGzip(stream), buffer_size=1 << 16)


class _ClosingGzip(gzip.GzipFile):
    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(fileobj=stream, mode="rb")
        self._stream = stream

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._stream.close()
