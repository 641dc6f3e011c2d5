"""Decompressing repository metadata: gzip, xz, bzip2, zstd, lz4 or plain.

The format is recognised by its magic bytes, falling back to the file name; a
name that promises compression over data without its magic is an error (a
damaged file, or a server that decompressed it on the way).

Every decompressor is driven through the same ``decompress`` / ``eof`` /
``unused_data`` interface, one member (gzip) / stream (xz, bzip2) / frame
(zstd, lz4) after another, so that

* truncation is always detected: the data must end exactly where a member
  ends (zstandard's and lz4's file readers just stop early on a cut frame);
* concatenated members are read whole (APKINDEX.tar.gz is two gzip members).
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable, Iterator
from typing import Final, Protocol

import lz4.frame  # type: ignore[import-untyped]  # lz4 ships no type information
import zstandard

from patchwarden.repos.errors import RepositoryFormatError

CHUNK: Final = 1 << 16
# Far above any real index (Debian main amd64 is ~50 MB decompressed), far
# below what would exhaust memory: a bound for decompression bombs.
MAX_DECOMPRESSED_BYTES: Final = 1 << 30

GZIP: Final = "gzip"
XZ: Final = "xz"
BZIP2: Final = "bzip2"
ZSTD: Final = "zstd"
LZ4: Final = "lz4"

_MAGIC: Final = (
    (b"\x1f\x8b", GZIP),
    (b"\xfd7zXZ\x00", XZ),
    (b"BZh", BZIP2),
    (b"\x28\xb5\x2f\xfd", ZSTD),
    (b"\x04\x22\x4d\x18", LZ4),
)
_SUFFIX: Final = {
    ".gz": GZIP,
    ".xz": XZ,
    ".bz2": BZIP2,
    ".zst": ZSTD,
    ".zstd": ZSTD,
    ".lz4": LZ4,
}

# What a decompressor raises for bad data (lz4 raises RuntimeError).
_ERRORS: Final = (
    zlib.error,
    lzma.LZMAError,
    OSError,
    ValueError,
    EOFError,
    RuntimeError,
    zstandard.ZstdError,
)


class _Decompressor(Protocol):
    def decompress(self, data: bytes, /) -> bytes: ...

    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes | None: ...  # lz4: None for none


def _gzip() -> _Decompressor:
    return zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)


def _zstd() -> _Decompressor:
    return zstandard.ZstdDecompressor().decompressobj()


def _lz4() -> _Decompressor:
    decompressor: _Decompressor = lz4.frame.LZ4FrameDecompressor()
    return decompressor


_FACTORIES: Final[dict[str, Callable[[], _Decompressor]]] = {
    GZIP: _gzip,
    XZ: lambda: lzma.LZMADecompressor(format=lzma.FORMAT_XZ),
    BZIP2: bz2.BZ2Decompressor,
    ZSTD: _zstd,
    LZ4: _lz4,
}


def compression_of(data: bytes, name: str) -> str:
    """The compression of ``data`` ("gzip", "xz" …), or "" for plain data."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    for suffix, kind in _SUFFIX.items():
        if name.endswith(suffix):
            raise RepositoryFormatError(
                f"{name}: not {kind} data although the name says so "
                "(damaged, or decompressed on the way?)"
            )
    return ""


def iter_decompressed(
    data: bytes, name: str, *, limit: int = MAX_DECOMPRESSED_BYTES
) -> Iterator[bytes]:
    """The decompressed content of ``data`` in chunks; raises
    :class:`RepositoryFormatError` for corrupt, truncated or oversized data."""
    kind = compression_of(data, name)
    if not kind:
        if len(data) > limit:
            raise _too_large(name, limit)
        for start in range(0, len(data), CHUNK):
            yield data[start : start + CHUNK]
        return
    factory = _FACTORIES[kind]
    decompressor = factory()
    position = 0
    total = 0
    while True:
        if decompressor.eof:
            position -= len(decompressor.unused_data or b"")
            # Zero padding after the last member is allowed (xz stream padding).
            if not data[position:].strip(b"\x00"):
                return
            decompressor = factory()
        if position >= len(data):
            raise RepositoryFormatError(f"{name}: the {kind} data ends early (truncated download?)")
        piece = data[position : position + CHUNK]
        position += len(piece)
        try:
            out = decompressor.decompress(piece)
        except _ERRORS as exc:
            raise RepositoryFormatError(f"{name}: corrupt {kind} data ({exc})") from exc
        total += len(out)
        if total > limit:
            raise _too_large(name, limit)
        if out:
            yield out


def decompress(data: bytes, name: str, *, limit: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """The whole decompressed content of ``data`` (``data`` itself when plain)."""
    if not compression_of(data, name):
        if len(data) > limit:
            raise _too_large(name, limit)
        return data
    return b"".join(iter_decompressed(data, name, limit=limit))


def _too_large(name: str, limit: int) -> RepositoryFormatError:
    return RepositoryFormatError(f"{name}: decompresses to more than {limit >> 20} MiB")
