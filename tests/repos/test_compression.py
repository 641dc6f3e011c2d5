from __future__ import annotations

import bz2
import gzip
import lzma
from collections.abc import Callable

import lz4.frame  # type: ignore[import-untyped]
import pytest
import zstandard

from patchwarden.repos._compression import compression_of, decompress, iter_decompressed
from patchwarden.repos.errors import RepositoryFormatError

DATA = b"Package: hello\nVersion: 1.0-1\n\n" * 5000

FORMATS: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "gzip": ("Packages.gz", gzip.compress),
    "xz": ("Packages.xz", lzma.compress),
    "bzip2": ("Packages.bz2", bz2.compress),
    "zstd": ("primary.xml.zst", zstandard.ZstdCompressor().compress),
    "lz4": ("Packages.lz4", lz4.frame.compress),
}


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_round_trip_by_name_and_by_magic(kind: str) -> None:
    name, compress = FORMATS[kind]
    data = compress(DATA)
    assert compression_of(data, name) == kind
    assert compression_of(data, "no-suffix") == kind  # the magic decides
    assert decompress(data, name) == DATA
    assert b"".join(iter_decompressed(data, "no-suffix")) == DATA


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_truncated_data_is_an_error(kind: str) -> None:
    name, compress = FORMATS[kind]
    data = compress(DATA)
    for cut in (len(data) // 2, len(data) - 1):
        with pytest.raises(RepositoryFormatError, match=r"ends early|corrupt"):
            decompress(data[:cut], name)


@pytest.mark.parametrize("kind", ["gzip", "xz", "bzip2"])
def test_corrupt_data_is_an_error(kind: str) -> None:
    name, compress = FORMATS[kind]
    data = bytearray(compress(DATA))
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(RepositoryFormatError, match=f"{name}: .*(corrupt|ends early)"):
        decompress(bytes(data), name)


def test_plain_data_is_returned_as_is() -> None:
    assert decompress(DATA, "Packages") is DATA
    assert b"".join(iter_decompressed(DATA, "Packages")) == DATA
    assert decompress(b"", "Packages") == b""


def test_a_name_promising_compression_over_plain_data_is_an_error() -> None:
    with pytest.raises(RepositoryFormatError, match="not gzip data although the name says so"):
        decompress(DATA, "Packages.gz")


def test_concatenated_members_are_read_whole() -> None:
    assert decompress(gzip.compress(b"one ") + gzip.compress(b"two"), "x.gz") == b"one two"
    frames = zstandard.ZstdCompressor().compress(b"a") + zstandard.ZstdCompressor().compress(b"b")
    assert decompress(frames, "x.zst") == b"ab"
    assert decompress(lzma.compress(b"a") + b"\x00" * 4, "x.xz") == b"a"  # stream padding


def test_garbage_after_the_last_member_is_an_error() -> None:
    with pytest.raises(RepositoryFormatError, match="corrupt gzip"):
        decompress(gzip.compress(b"one") + b"garbage!", "x.gz")


def test_decompression_bombs_are_refused() -> None:
    bomb = gzip.compress(b"\x00" * (4 << 20))
    with pytest.raises(RepositoryFormatError, match="decompresses to more than 1 MiB"):
        decompress(bomb, "x.gz", limit=1 << 20)
    with pytest.raises(RepositoryFormatError, match="more than 1 MiB"):
        decompress(b"x" * (2 << 20), "plain", limit=1 << 20)
