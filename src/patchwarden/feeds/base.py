"""The interface every feed implements, the input it reads, and the helpers
parsers share.

A feed is a pure parser: :class:`FeedSource` in (a name for messages and a way
to open the content), :class:`~patchwarden.domain.advisories.ParsedFeed` out.
It never raises for bad content:

* a record it cannot use becomes a ``RejectedRecord`` with a precise ``where``
  (``"file:LINE ID affected[2]"`` for line formats, ``"file ID …"`` for whole
  documents) and a ``reason``; the other records are kept;
* a file that is not the format at all (not JSON, truncated, wrong shape, too
  large, corrupt compression) becomes one ``RejectedRecord`` whose ``where`` is
  the file name, and no records: whole-document formats are all or nothing.

Line formats (JSON lines, EPSS CSV, the Debian DSA/DLA lists) are streamed;
whole JSON documents are walked member by member (see ``_jsonstream``) and
limited to ``max_document_bytes`` (512 MiB by default).
"""

from __future__ import annotations

import gzip
import io
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Final, Protocol

from patchwarden import cvss
from patchwarden.domain.advisories import FeedRecord, ParsedFeed, RejectedRecord
from patchwarden.errors import InvalidInput
from patchwarden.feeds._jsonstream import DocumentTooLarge, JsonReader, JsonStreamError
from patchwarden.versions import InvalidVersion, get_scheme

MAX_DOCUMENT_BYTES: Final = 512 * 1024 * 1024
HEAD_BYTES: Final = 64 * 1024  # what `detect` sees
GZIP_MAGIC: Final = b"\x1f\x8b"
CVE_RE: Final = re.compile(r"CVE-\d{4}-\d{4,}")
MAX_ID_LENGTH: Final = 128  # advisories.id column

# What reading a (compressed) file may raise when its bytes are bad.
READ_ERRORS: Final = (OSError, EOFError, zlib.error, zipfile.BadZipFile)


class ByteStream(Protocol):
    """What parsers need of a binary stream (files, gzip, zip members, BytesIO)."""

    def read(self, size: int = -1, /) -> bytes: ...

    def readline(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


Opener = Callable[[], ByteStream]


class Feed(Protocol):
    """One advisory source: recognises its files and parses them."""

    @property
    def name(self) -> str:
        """The registry name, used by ``--format`` and stored as ``Advisory.source``."""
        ...

    def detect(self, head: bytes, filename: str) -> bool:
        """Whether a file that starts with ``head`` (decompressed) is in this format."""
        ...

    def parse(self, source: FeedSource) -> ParsedFeed:
        """Every record of the file; never raises for bad content."""
        ...


@dataclass(frozen=True)
class FeedSource:
    """A file to parse: its name (for messages and provenance) and its content.

    ``opener`` returns a fresh binary stream of the *decompressed* content each
    time it is called; ``size`` is its length when known without reading.
    """

    name: str
    opener: Opener
    size: int | None = None
    max_document_bytes: int = MAX_DOCUMENT_BYTES

    @classmethod
    def from_bytes(
        cls, name: str, data: bytes, *, max_document_bytes: int = MAX_DOCUMENT_BYTES
    ) -> FeedSource:
        """Content held in memory; gzip data is decompressed transparently."""
        if data.startswith(GZIP_MAGIC):
            return cls(
                name, lambda: gzip.GzipFile(fileobj=io.BytesIO(data)), None, max_document_bytes
            )
        return cls(name, lambda: io.BytesIO(data), len(data), max_document_bytes)

    @contextmanager
    def open(self) -> Iterator[ByteStream]:
        stream = self.opener()
        try:
            yield stream
        finally:
            stream.close()

    def head(self, size: int = HEAD_BYTES) -> bytes:
        """The first ``size`` bytes (fewer if the content is shorter, or damaged
        further on); raises :class:`SourceUnreadable` if not even the start reads."""
        parts: list[bytes] = []
        try:
            with self.open() as stream:
                # read1: one underlying read at a time, so the start of a damaged
                # stream is returned before the damage is reached.
                read = getattr(stream, "read1", stream.read)
                while size > 0 and (data := read(min(size, 1 << 14))):
                    parts.append(data)
                    size -= len(data)
        except READ_ERRORS as exc:
            if not parts:
                raise SourceUnreadable(self.name, exc) from exc
        return b"".join(parts)


class SourceUnreadable(InvalidInput):
    """The bytes of a file cannot be read (corrupt gzip or zip, I/O error)."""

    def __init__(self, name: str, exc: BaseException) -> None:
        self.reason = describe_read_error(exc)
        super().__init__(f"{name}: {self.reason}")


class FileRejected(Exception):
    """Raised inside a parser: the whole file is not usable, for ``reason``."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def describe_read_error(exc: BaseException) -> str:
    if isinstance(exc, gzip.BadGzipFile):
        return f"not a valid gzip stream ({exc})"
    if isinstance(exc, EOFError):
        return "the compressed data ends early (truncated download?)"
    if isinstance(exc, zlib.error):
        return f"corrupt compressed data ({exc})"
    if isinstance(exc, zipfile.BadZipFile):
        return f"corrupt zip archive ({exc})"
    return f"cannot read the file ({exc})"


def size_text(n: int) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):.0f} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.0f} KiB"
    return f"{n} bytes"


class Collector:
    """What a parser builds up while reading one file.

    ``tally`` aggregates repetitive observations into one note each ("1391 GIT
    ranges skipped ..."), so notes stay short on big files.
    """

    def __init__(self, feed: str, source: FeedSource) -> None:
        self.feed = feed
        self.source = source
        self.records: list[FeedRecord] = []
        self.rejected: list[RejectedRecord] = []
        self.notes: list[str] = []
        self._tallies: Counter[str] = Counter()
        self._failed = False

    # -- outcomes ----------------------------------------------------------------

    def add(self, record: FeedRecord) -> None:
        self.records.append(record)

    def reject(self, where: str, reason: str) -> None:
        """A record is refused whole: nothing of it is stored."""
        self.rejected.append(RejectedRecord(where, reason))

    def reject_part(self, record_id: str, where: str, reason: str) -> None:
        """A part of a record is refused; the record is stored without it."""
        self.rejected.append(RejectedRecord(where, reason, part_of=record_id))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def tally(self, template: str, count: int = 1) -> None:
        """Count one more of something; ``template`` has ``{n}`` for the total."""
        self._tallies[template] += count

    def fail_file(self, reason: str) -> None:
        """The whole file is unusable: drop what was read, keep one rejection."""
        self.records.clear()
        self.rejected = [RejectedRecord(self.source.name, reason)]
        self._tallies.clear()
        self._failed = True

    def result(self) -> ParsedFeed:
        notes = [*self.notes, *(t.format(n=n) for t, n in self._tallies.items())]
        return ParsedFeed(
            source=self.feed,
            records=tuple(self.records),
            rejected=tuple(self.rejected),
            notes=tuple(notes),
            file=self.source.name,
        )

    # -- locations ---------------------------------------------------------------

    def at(self, *parts: object) -> str:
        """``"file part part"`` for records of whole documents."""
        return " ".join([self.source.name, *(str(p) for p in parts if p not in (None, ""))])

    def at_line(self, line: int, *parts: object) -> str:
        """``"file:LINE part part"`` for records of line formats."""
        return " ".join(
            [f"{self.source.name}:{line}", *(str(p) for p in parts if p not in (None, ""))]
        )

    # -- reading -----------------------------------------------------------------

    @contextmanager
    def whole_file(self) -> Iterator[None]:
        """Run a parser body; errors that make the file unusable reject it whole."""
        try:
            yield
        except FileRejected as exc:
            self.fail_file(exc.reason)
        except JsonStreamError as exc:
            self.fail_file(f"not valid JSON (truncated or damaged?): {exc}")
        except DocumentTooLarge as exc:
            self.fail_file(
                f"the JSON document is {exc}; split the file or raise max_document_bytes"
            )
        except READ_ERRORS as exc:
            self.fail_file(describe_read_error(exc))

    @contextmanager
    def json_document(self) -> Iterator[JsonReader]:
        """A reader over the whole file as one JSON document (use inside ``whole_file``)."""
        limit = self.source.max_document_bytes
        if self.source.size is not None and self.source.size > limit:
            raise FileRejected(
                f"the file is {size_text(self.source.size)}, larger than the "
                f"{size_text(limit)} limit for one JSON document; split it or raise "
                "max_document_bytes"
            )
        with self.source.open() as stream:
            yield JsonReader(stream, limit)

    def lines(self, *, all_or_nothing: bool = False) -> Iterator[tuple[int, bytes]]:
        """``(line number, line without its end)``, streamed.

        A line longer than ``max_document_bytes`` is rejected and skipped; a
        read error ends the file with one rejection, keeping what came before,
        or with ``all_or_nothing`` (inside ``whole_file``) rejects the file whole.
        """
        limit = self.source.max_document_bytes
        number = 0
        try:
            with self.source.open() as stream:
                while True:
                    line = stream.readline(limit + 1)
                    if not line:
                        return
                    number += 1
                    if len(line) > limit and not line.endswith(b"\n"):
                        self.reject(
                            self.at_line(number), f"line longer than {size_text(limit)}; skipped"
                        )
                        while line and not line.endswith(b"\n"):
                            line = stream.readline(1 << 20)
                        continue
                    yield number, line.rstrip(b"\r\n")
        except READ_ERRORS as exc:
            if all_or_nothing:
                raise FileRejected(
                    f"{describe_read_error(exc)} after line {number}; "
                    "a file that cannot be read to its end is not imported"
                ) from exc
            self.reject(
                self.at_line(number + 1),
                f"{describe_read_error(exc)}; the rest of the file was not read "
                f"({number} lines before it were)",
            )


# -- values shared by several feeds ---------------------------------------------------


def parse_datetime(value: object, what: str) -> datetime | None:
    """An aware UTC datetime from ISO 8601 / RFC 3339 text (naive means UTC); None if absent."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a date-time string, not {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{what} {value!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_date(value: object, what: str) -> date:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a YYYY-MM-DD string, not {type(value).__name__}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{what} {value!r} is not a YYYY-MM-DD date") from None


def pep503(name: str) -> str:
    """The normalised PyPI project name: lowercase, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@lru_cache(maxsize=1 << 16)
def version_error(scheme: str, version: str) -> str | None:
    """Why ``version`` cannot be ordered under ``scheme``, or None.

    Only what the scheme's ``parse`` refuses counts: feeds carry versions that
    break a scheme's syntax rules yet are ordered by its package manager.
    """
    try:
        get_scheme(scheme).parse(version)
    except InvalidVersion as exc:
        return exc.rule
    return None


@lru_cache(maxsize=1 << 14)
def cvss_error(vector: str) -> str | None:
    """Why a CVSS vector cannot be scored, or None."""
    try:
        cvss.score(vector)  # parsing alone would pass a vector that cannot be scored
    except cvss.InvalidCvssVector as exc:
        return exc.reason
    return None


def cvss_base_score(vector: str) -> float | None:
    try:
        return cvss.score(vector).base_score
    except cvss.InvalidCvssVector:
        return None


def text_or_none(value: object) -> str | None:
    """A stripped, non-empty string, or None."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None
