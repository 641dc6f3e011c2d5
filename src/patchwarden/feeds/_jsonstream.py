"""Reading one JSON document piece by piece, so big feeds never sit in memory as
one tree of dicts.

Feeds such as NVD's yearly files (hundreds of MB) or the Debian tracker's JSON
export are one object whose bulk is a single array or many members. The reader
walks the top level itself and hands each member (or each item of a chosen
array member) to ``json``'s C decoder, reading more text only when a value is
not complete yet. The buffer grows geometrically, so a value larger than a
chunk costs amortised linear time.

Errors carry the line and column of the problem in the whole document.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Collection, Iterator
from typing import Final, Protocol

CHUNK: Final = 1 << 20  # bytes read at a time
_WHITESPACE: Final = " \t\n\r"
_DECODER: Final = json.JSONDecoder()
_NUMBER_CHARS: Final = "0123456789.eE+-"
_SLACK: Final = 16  # a decode error this close to the end of the buffer may be a cut value


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class JsonStreamError(ValueError):
    """The document is not valid JSON (or not the shape the caller expects)."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        self.message = message
        self.line = line
        self.column = column
        where = f" at line {line} column {column}" if line is not None else ""
        super().__init__(f"{message}{where}")


class DocumentTooLarge(ValueError):
    """The document is longer than the caller allows."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"larger than the {_size(limit)} limit for one JSON document")


def _size(n: int) -> str:
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    return f"{n} bytes"


class JsonReader:
    """A cursor over a UTF-8 JSON document read from a binary stream.

    ``max_bytes`` bounds the bytes read from ``stream`` (after any
    decompression); going past it raises :class:`DocumentTooLarge`.
    """

    def __init__(self, stream: Readable, max_bytes: int, chunk: int = CHUNK) -> None:
        self._stream = stream
        self._max_bytes = max_bytes
        self._chunk = chunk
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")  # BOM tolerated
        self._buf = ""
        self._pos = 0
        self._eof = False
        self._bytes_read = 0
        self._line = 1  # line number of _buf[0]
        self._line_start = 0  # offset in _buf where that line starts (may be negative)

    # -- low level ---------------------------------------------------------------

    def _fill(self, at_least: int = 0) -> bool:
        """Append more text; False at the end of the input."""
        if self._eof:
            return False
        if self._pos:
            consumed = self._buf[: self._pos]
            newlines = consumed.count("\n")
            if newlines:
                self._line += newlines
                self._line_start = consumed.rfind("\n") + 1 - self._pos
            else:
                self._line_start -= self._pos
            self._buf = self._buf[self._pos :]
            self._pos = 0
        wanted = max(self._chunk, at_least)
        while True:
            data = self._stream.read(wanted)
            if not data:
                self._eof = True
                text = self._decode(b"", final=True)
                self._buf += text
                return bool(text)
            self._bytes_read += len(data)
            if self._bytes_read > self._max_bytes:
                raise DocumentTooLarge(self._max_bytes)
            text = self._decode(data, final=False)
            if text:
                self._buf += text
                return True

    def _decode(self, data: bytes, *, final: bool) -> str:
        try:
            return self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            raise self._error(f"not UTF-8 text (byte {exc.object[exc.start : exc.end]!r})") from exc

    def _error(self, message: str, pos: int | None = None) -> JsonStreamError:
        pos = self._pos if pos is None else pos
        before = self._buf[:pos]
        newlines = before.count("\n")
        line = self._line + newlines
        start = before.rfind("\n") + 1 if newlines else self._line_start
        return JsonStreamError(message, line, pos - start + 1)

    def _peek(self) -> str:
        """The next non-blank character ("" at the end), without consuming it."""
        while True:
            buf, pos, n = self._buf, self._pos, len(self._buf)
            while pos < n and buf[pos] in _WHITESPACE:
                pos += 1
            self._pos = pos
            if pos < n:
                return buf[pos]
            if not self._fill():
                return ""

    def _expect(self, chars: str) -> str:
        char = self._peek()
        if not char or char not in chars:
            found = repr(char) if char else "the end of the document"
            wanted = " or ".join(repr(c) for c in chars)
            raise self._error(f"expected {wanted}, found {found}")
        self._pos += 1
        return char

    # -- values ------------------------------------------------------------------

    def value(self) -> object:
        """Decode the next value whole."""
        if not self._peek():
            raise self._error("expected a value, found the end of the document")
        grow = 0
        while True:
            try:
                result, end = _DECODER.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                # Perhaps the value only goes on in the next chunk: read more (twice
                # as much each time) and retry. An error well before the end of the
                # buffer is a real one.
                incomplete = exc.pos >= len(self._buf) - _SLACK or exc.msg.startswith(
                    "Unterminated string"
                )
                grow = max(self._chunk, 2 * (len(self._buf) - self._pos))
                if incomplete and self._fill(grow):
                    continue
                raise self._error(exc.msg, exc.pos) from exc
            if (
                not self._eof
                and isinstance(result, int | float)
                and not self._buf[end:].strip(_NUMBER_CHARS)
                and self._fill(grow)
            ):
                continue  # the number may go on in the next chunk ("1" of "1.5e3")
            self._pos = end
            return result

    def load(self) -> object:
        """The whole document (still bounded by ``max_bytes``)."""
        result = self.value()
        self.end()
        return result

    def end(self) -> None:
        """Check that nothing but whitespace follows."""
        if self._peek():
            raise self._error("extra data after the JSON document")

    def first_char(self) -> str:
        """The first non-blank character of the document ("" if empty)."""
        return self._peek()

    def array_items(self) -> Iterator[object]:
        """The items of the array that starts here, one at a time."""
        self._expect("[")
        if self._peek() == "]":
            self._pos += 1
            return
        while True:
            yield self.value()
            if self._expect(",]") == "]":
                return

    def items_of(self, array: str, header: dict[str, object]) -> Iterator[tuple[int, object]]:
        """``(index, item)`` for each item of the member ``array`` of the object that
        starts here; every other member goes into ``header`` (``array`` too, as an
        empty list, when it is an array, even an empty one)."""
        for key, index, value in self.members(expand={array}):
            if index is None:
                header[key] = value
            else:
                yield index, value

    def members(self, expand: Collection[str] = ()) -> Iterator[tuple[str, int | None, object]]:
        """``(key, None, value)`` for each member of the object that starts here;
        for a key in ``expand`` whose value is an array, ``(key, None, [])`` and then
        ``(key, index, item)`` per item."""
        self._expect("{")
        if self._peek() == "}":
            self._pos += 1
            return
        while True:
            if self._peek() != '"':
                raise self._error("expected a member name in double quotes")
            key = self.value()
            assert isinstance(key, str)
            self._expect(":")
            if key in expand and self._peek() == "[":
                yield key, None, []  # the array is there, even when it is empty
                for index, item in enumerate(self.array_items()):
                    yield key, index, item
            else:
                yield key, None, self.value()
            if self._expect(",}") == "}":
                return
