from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import zstandard

from patchwarden.repos.errors import RepositoryFormatError
from patchwarden.repos.model import NoticePackage
from patchwarden.repos.rpmmd import (
    evr,
    parse_issued,
    parse_primary,
    parse_repomd,
    parse_updateinfo,
    source_name,
)
from tests.repos.builders import UPDATEINFO, primary_package, primary_xml, write_rpm_repo

PRIMARY = primary_xml(
    primary_package("pwt-tool", "0", "1.1", "1", "x86_64"),
    primary_package("pwt-sec", "2", "1.0", "2", "x86_64", build=1704164645),
    primary_package("pwt-data", "0", "1.0", "2", "noarch"),
)

COMPRESSIONS: dict[str, Callable[[bytes], bytes]] = {
    "primary.xml": lambda data: data,
    "primary.xml.gz": gzip.compress,
    "primary.xml.xz": lzma.compress,
    "primary.xml.bz2": bz2.compress,
    "primary.xml.zst": zstandard.ZstdCompressor().compress,
}


# -- repomd.xml -----------------------------------------------------------------------


def test_repomd(tmp_path: Path) -> None:
    compressed = gzip.compress(PRIMARY)
    repomd = parse_repomd(write_rpm_repo(tmp_path, {"primary": compressed}))
    assert repomd.revision == "1700000100"
    primary = repomd.data["primary"]
    assert primary.location == f"repodata/{hashlib.sha256(compressed).hexdigest()}-primary.xml.gz"
    assert primary.checksum_type == "sha256"
    assert primary.checksum == hashlib.sha256(compressed).hexdigest()
    assert primary.size == len(compressed)
    assert primary.timestamp == datetime.fromtimestamp(1700000100, UTC)
    assert repomd.released == primary.timestamp


def test_repomd_sha1_and_open_checksum() -> None:
    text = b"""<repomd xmlns="http://linux.duke.edu/metadata/repo">
      <data type="primary">
        <checksum type="sha">aa</checksum><open-checksum type="SHA256">BB</open-checksum>
        <location href="repodata/primary.xml.gz"/><open-size>10</open-size>
      </data></repomd>"""
    primary = parse_repomd(text).data["primary"]
    assert (primary.checksum_type, primary.open_checksum_type) == ("sha1", "sha256")
    assert (primary.open_checksum, primary.open_size, primary.size) == ("bb", 10, None)
    assert primary.timestamp is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"<repomd/>", "lists no metadata files"),
        (b'<repomd><data type="primary"><location href="x"/></data></repomd>', "lacks"),
        (b"<metadata/>", "root element is <metadata>, not <repomd>"),
        (
            b'<repomd><data type="p"><checksum type="sha256">a</checksum>'
            b'<location href="x" xml:base="http://elsewhere/"/></data></repomd>',
            "xml:base",
        ),
        (
            b'<repomd><data type="p"><checksum type="sha256">a</checksum>'
            b'<location href="x"/><size>big</size></data></repomd>',
            "size 'big' is not a number",
        ),
    ],
)
def test_bad_repomd(text: bytes, message: str) -> None:
    with pytest.raises(RepositoryFormatError, match=message):
        parse_repomd(text)


# -- primary.xml ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(COMPRESSIONS))
def test_primary(name: str) -> None:
    packages = parse_primary(COMPRESSIONS[name](PRIMARY), name)
    assert [(p.name, p.version, p.arch, p.source) for p in packages] == [
        ("pwt-tool", "1.1-1", "x86_64", "pwt-tool"),
        ("pwt-sec", "2:1.0-2", "x86_64", "pwt-sec"),  # epoch shown when not 0
        ("pwt-data", "1.0-2", "noarch", "pwt-data"),
    ]
    sec = packages[1]
    assert sec.location == "Packages/pwt-sec-1.0-2.x86_64.rpm"
    assert sec.size == 5525
    assert len(sec.sha256) == 64
    assert sec.build_time == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_truncated_primary() -> None:
    data = gzip.compress(PRIMARY)
    with pytest.raises(RepositoryFormatError, match="gzip data ends early"):
        parse_primary(data[:-20], "primary.xml.gz")
    with pytest.raises(RepositoryFormatError, match="not well-formed XML"):
        parse_primary(PRIMARY[: len(PRIMARY) // 2], "primary.xml")


@pytest.mark.parametrize(
    ("package", "message"),
    [
        (primary_package("", "0", "1", "1", "noarch"), "package 1 .*lacks"),
        (primary_package("a", "0", "", "1", "noarch"), "lacks its name, arch or version"),
        (primary_package("a", "0", "1", "1", ""), "lacks"),
        (
            primary_package("a", "0", "1", "1", "noarch").replace('build="', 'build="x'),
            "build time",
        ),
    ],
)
def test_primary_missing_fields(package: str, message: str) -> None:
    with pytest.raises(RepositoryFormatError, match=message):
        parse_primary(primary_xml(package))


def test_streaming_primary_reads_many_packages() -> None:
    many = [primary_package(f"pkg{i}", "0", f"1.{i}", "1.el9", "x86_64") for i in range(5_000)]
    data = gzip.compress(primary_xml(*many))
    packages = parse_primary(data, "primary.xml.gz")
    assert len(packages) == 5_000
    assert packages[-1].version == "1.4999-1.el9"


# -- hardening ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [
        b'<?xml version="1.0"?>\n<!DOCTYPE updates [<!ENTITY a "aaaaaaaaaa">]>\n<updates/>',
        b'<?xml version="1.0"?><!DOCTYPE updates SYSTEM "file:///etc/passwd"><updates/>',
        # a billion laughs
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        b"<updates>&lol2;</updates>",
    ],
)
def test_doctype_and_entities_are_refused(document: str) -> None:
    for data in (document, gzip.compress(document)):  # type: ignore[arg-type]
        with pytest.raises(RepositoryFormatError, match="DOCTYPE declaration refused"):
            parse_updateinfo(data, "updateinfo.xml")  # type: ignore[arg-type]


def test_doctype_split_across_chunks_is_refused() -> None:
    padding = b"<!-- " + b"x" * ((1 << 16) - 9) + b" -->"
    document = b"<updates>" + padding + b"<!DOCTYPE x></updates>"
    with pytest.raises(RepositoryFormatError, match="DOCTYPE"):
        parse_updateinfo(gzip.compress(document), "updateinfo.xml.gz")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('<?xml version="1.0" encoding="UTF-16"?><updates/>'.encode("utf-16"), "NUL bytes"),
        (b'<?xml version="1.0" encoding="cp037"?><updates/>', "encoding 'cp037' refused"),
    ],
)
def test_non_ascii_compatible_encodings_are_refused(document: bytes, message: str) -> None:
    with pytest.raises(RepositoryFormatError, match=message):
        parse_updateinfo(document)


def test_declared_utf8_and_latin1_are_fine() -> None:
    for encoding in ("UTF-8", "utf8", "ISO-8859-1"):
        document = f'<?xml version="1.0" encoding="{encoding}"?><updates/>'.encode()
        assert parse_updateinfo(document) == ()


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"", "empty document|not well-formed"),
        (b"not xml at all", "not well-formed XML"),
        (b"<updates><update></updates>", "not well-formed XML"),
        (b"<repomd/>", "root element is <repomd>, not <updates>"),
        (b"<updates><update><title>t</title></update></updates>", "update 1 has no <id>"),
        (
            b'<updates><update><id>X</id><pkglist><collection><package name="a"/>'
            b"</collection></pkglist></update></updates>",
            "X lists a package without name or version",
        ),
    ],
)
def test_bad_updateinfo(document: bytes, message: str) -> None:
    with pytest.raises(RepositoryFormatError, match=message):
        parse_updateinfo(document, "updateinfo.xml")


# -- updateinfo.xml ---------------------------------------------------------------------


def test_updateinfo() -> None:
    notices = {n.id: n for n in parse_updateinfo(gzip.compress(UPDATEINFO), "u.xml.gz")}
    assert list(notices) == ["PWSA-2024:0001", "PWBA-2024:0002", "SUSE-2024-3", "NEW-1"]
    sec = notices["PWSA-2024:0001"]
    assert (sec.type, sec.severity, sec.title) == (
        "security",
        "important",
        "Important: pwt-sec security update",
    )
    assert sec.issued == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    # cve references only: the id, else found in the href; bugzilla titles do not count
    assert sec.cve_ids == ("CVE-2024-0001", "CVE-2024-0002")
    assert sec.packages == (
        NoticePackage("pwt-sec", "2:1.0-2", "x86_64"),
        NoticePackage("pwt-sec", "2:1.0-2", "src"),
    )
    bugfix = notices["PWBA-2024:0002"]
    assert (bugfix.type, bugfix.severity, bugfix.cve_ids) == ("bugfix", "", ())
    assert bugfix.issued == datetime(2024, 2, 3, tzinfo=UTC)
    assert bugfix.packages == (NoticePackage("pwt-data", "1.0-2", "noarch"),)
    suse = notices["SUSE-2024-3"]
    assert (suse.type, suse.severity) == ("bugfix", "moderate")  # "recommended"
    assert suse.issued == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)  # Unix seconds
    new = notices["NEW-1"]
    assert (new.type, new.severity, new.issued, new.packages) == ("enhancement", "", None, ())


def test_namespaced_updateinfo() -> None:
    document = (
        b'<updates xmlns="http://example.com/updateinfo"><update type="security">'
        b"<id>A-1</id><severity>Critical</severity></update></updates>"
    )
    (notice,) = parse_updateinfo(document)
    assert (notice.id, notice.type, notice.severity) == ("A-1", "security", "critical")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-02 03:04:05", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02", datetime(2024, 1, 2, tzinfo=UTC)),
        ("1704164645", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02 04:04:05+01:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02 03:04:05 UTC", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("", None),
        ("soon", None),
        (None, None),
    ],
)
def test_issued_dates(value: str | None, expected: datetime | None) -> None:
    assert parse_issued(value) == expected


def test_evr_and_source_names() -> None:
    assert evr("0", "1.0", "1") == "1.0-1"
    assert evr(None, "1.0", "1") == "1.0-1"
    assert evr("", "1.0", None) == "1.0"
    assert evr("02", "1.0", "1.el9") == "2:1.0-1.el9"
    assert source_name("kernel-5.14.0-362.8.1.el9_3.src.rpm") == "kernel"
    assert source_name("foo-bar-1.0-1.nosrc.rpm") == "foo-bar"
    assert source_name("") == ""
    assert source_name("garbage") == ""
