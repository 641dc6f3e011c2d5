from __future__ import annotations

import gzip
from datetime import UTC, datetime

import pytest

from patchwarden.repos.apk import parse_apkindex, parse_apkindex_text
from patchwarden.repos.errors import RepositoryFormatError
from tests.repos.builders import apkindex_tar_gz, tar_bytes


@pytest.mark.parametrize("signed", [True, False])
def test_apkindex(signed: bool) -> None:
    index = parse_apkindex(apkindex_tar_gz(signed=signed))
    assert index.description == "v3.19.1-100-gdeadbeef"
    assert [(p.name, p.version, p.arch, p.source) for p in index.packages] == [
        ("busybox", "1.36.1-r15", "x86_64", "busybox"),
        ("ssl_client", "1.36.1-r15", "x86_64", "busybox"),  # o: origin
        ("alpine-baselayout-data", "3.4.3-r2", "noarch", "alpine-baselayout"),
    ]
    busybox = index.packages[0]
    assert busybox.location == "busybox-1.36.1-r15.apk"
    assert busybox.size == 512345
    assert busybox.sha256 == ""  # APKINDEX has SHA-1 control checksums only
    assert busybox.build_time == datetime.fromtimestamp(1700000000, UTC)


def test_record_without_origin_or_arch() -> None:
    (package,) = parse_apkindex_text(b"P:musl\nV:1.2.4-r2\n")
    assert (package.source, package.arch, package.build_time) == ("musl", "", None)


def test_truncated_index() -> None:
    data = apkindex_tar_gz()
    with pytest.raises(RepositoryFormatError, match="gzip data ends early"):
        parse_apkindex(data[:-30], "APKINDEX.tar.gz")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("P:busybox\nA:x86_64\n", "the record ending at line 3 has no P: or V:"),
        ("V:1.0-r0\n", "no P: or V:"),
        ("P:a\nV:1.0-r0\nS:big\n", "a 1.0-r0 has a size or build time that is not a number"),
        ("P:a\nV:1.0-r0\nt:yesterday\n", "not a number"),
    ],
)
def test_bad_records(text: str, message: str) -> None:
    with pytest.raises(RepositoryFormatError, match=message):
        parse_apkindex_text(text.encode())


def test_not_a_tar_or_without_apkindex() -> None:
    with pytest.raises(RepositoryFormatError, match="not a readable tar archive"):
        parse_apkindex(gzip.compress(b"x" * 600))
    with pytest.raises(RepositoryFormatError, match="holds no APKINDEX"):
        parse_apkindex(gzip.compress(tar_bytes({"DESCRIPTION": b"v3.19"})))
