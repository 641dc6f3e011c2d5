"""The registry, format detection and read_path: files, directories, zips, gzip,
and what happens to input that is not a feed at all."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from patchwarden.domain.advisories import Advisory, KevEntry, ParsedFeed
from patchwarden.errors import InvalidInput
from patchwarden.feeds import (
    FEEDS,
    UNKNOWN,
    UnknownFeed,
    detect_format,
    get_feed,
    read_path,
)
from tests.feeds.conftest import SHARED_FILES

OSV_RECORD = {
    "id": "PYSEC-2099-1",
    "modified": "2024-01-01T00:00:00Z",
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "Demo_Pkg"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2"}]}],
        }
    ],
}
KEV: dict[str, Any] = {
    "title": "CISA Catalog of Known Exploited Vulnerabilities",
    "catalogVersion": "2025.01.01",
    "dateReleased": "2025-01-01T00:00:00.000Z",
    "count": 1,
    "vulnerabilities": [
        {
            "cveID": "CVE-2024-0001",
            "vendorProject": "Acme",
            "product": "Widget",
            "vulnerabilityName": "Acme Widget RCE",
            "dateAdded": "2025-01-01",
            "shortDescription": "…",
            "requiredAction": "Patch.",
            "dueDate": "2025-01-22",
            "knownRansomwareCampaignUse": "Unknown",
            "notes": "",
        }
    ],
}


def only(feeds: list[ParsedFeed]) -> ParsedFeed:
    assert len(feeds) == 1, feeds
    return feeds[0]


def test_registry_names_and_unknown_name() -> None:
    assert sorted(FEEDS) == [
        "alpine-secdb",
        "debian-tracker",
        "debian-tracker-json",
        "epss",
        "kev",
        "nvd",
        "osv",
    ]
    assert all(feed.name == name for name, feed in FEEDS.items())
    with pytest.raises(UnknownFeed, match=r"'nessus'.*valid formats: alpine-secdb, .*osv"):
        get_feed("nessus")
    assert issubclass(UnknownFeed, InvalidInput)


def test_read_path_refuses_bad_requests_at_once(tmp_path: Path) -> None:
    with pytest.raises(UnknownFeed):
        read_path(tmp_path, "nessus")  # raised before iterating
    with pytest.raises(InvalidInput, match="does not exist"):
        read_path(tmp_path / "missing.json")


@pytest.mark.parametrize(("relative", "fmt"), SHARED_FILES.items())
def test_detect_format_of_shared_files(shared_dir: Path, relative: str, fmt: str) -> None:
    assert detect_format(shared_dir / relative) == fmt


def test_shared_counts(shared_dir: Path, shared_feeds: dict[str, list[ParsedFeed]]) -> None:
    counts = {
        relative: (sum(len(f.records) for f in feeds), sum(len(f.rejected) for f in feeds))
        for relative, feeds in shared_feeds.items()
    }
    assert counts["kev/known_exploited_vulnerabilities.json"] == (1404, 0)
    assert counts["osv-pypi/pypa_advisory_database.jsonl"] == (2659, 30)  # see test_osv
    assert counts["ubuntu-osv/usn_sample.jsonl"] == (5, 0)
    assert counts["debian/DSA_list.txt"] == (5406, 0)
    assert counts["debian/DLA_list.txt"] == (3534, 0)
    assert len(shared_feeds["alpine-secdb"]) == 18
    assert counts["alpine-secdb"] == (4264, 0)
    for relative, feeds in shared_feeds.items():
        for feed in feeds:
            assert feed.source == SHARED_FILES[relative]
            assert feed.file.startswith(str(shared_dir / relative))


def test_parsing_is_deterministic(
    shared_dir: Path, shared_feeds: dict[str, list[ParsedFeed]]
) -> None:
    for relative, feeds in shared_feeds.items():
        assert list(read_path(shared_dir / relative)) == feeds, relative


def test_directory_is_read_recursively_sorted_and_skips_hidden_files(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.json").write_text(json.dumps(OSV_RECORD))
    (tmp_path / "a.json").write_text(json.dumps(KEV))
    (tmp_path / ".a.json.sync.json").write_text("{}")  # a sync sidecar
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.json").write_text("{}")
    feeds = list(read_path(tmp_path))
    assert [(f.file, f.source, len(f.records)) for f in feeds] == [
        (str(tmp_path / "a.json"), "kev", 1),
        (str(tmp_path / "b" / "z.json"), "osv", 1),
    ]


def test_zip_members_and_gzip(tmp_path: Path) -> None:
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("PYSEC-2099-2.json", json.dumps({**OSV_RECORD, "id": "PYSEC-2099-2"}))
        zf.writestr("PYSEC-2099-1.json", json.dumps(OSV_RECORD))
        zf.writestr("nested/kev.json.gz", gzip.compress(json.dumps(KEV).encode()))
        zf.writestr("__MACOSX/._PYSEC-2099-1.json", b"\x00\x05")
        zf.writestr("inner.zip", b"PK\x05\x06" + bytes(18))
    feeds = list(read_path(archive))
    assert [f.file for f in feeds] == [
        f"{archive}:PYSEC-2099-1.json",
        f"{archive}:PYSEC-2099-2.json",
        f"{archive}:inner.zip",
        f"{archive}:nested/kev.json.gz",
    ]
    assert [len(f.records) for f in feeds] == [1, 1, 0, 1]
    assert feeds[2].rejected[0].reason == "an archive inside an archive: unpack it first"
    assert isinstance(feeds[3].records[0], KevEntry)
    assert detect_format(archive) == "osv"

    gz = tmp_path / "osv.json.gz"
    gz.write_bytes(gzip.compress(json.dumps(OSV_RECORD).encode()))
    assert detect_format(gz) == "osv"
    record = only(list(read_path(gz))).records[0]
    assert isinstance(record, Advisory)
    assert record.affected[0].name == "demo-pkg"


def test_json_lines_gzip_named_anything(tmp_path: Path) -> None:
    lines = "\n".join(json.dumps({**OSV_RECORD, "id": f"PYSEC-2099-{i}"}) for i in range(3))
    path = tmp_path / "export.data"  # not named .gz: gzip is recognised by its magic bytes
    path.write_bytes(gzip.compress(lines.encode()))
    assert len(only(list(read_path(path, "osv"))).records) == 3


def test_not_a_feed_file_is_one_rejection(tmp_path: Path) -> None:
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    other = tmp_path / "other.json"
    other.write_text('{"hello": "world"}')
    text = tmp_path / "README.md"
    text.write_text("# notes\n")
    feeds = {Path(f.file).name: f for f in read_path(tmp_path)}
    assert {name: f.source for name, f in feeds.items()} == dict.fromkeys(feeds, UNKNOWN)
    assert all(not f.records and len(f.rejected) == 1 for f in feeds.values())
    reasons = {name: f.rejected[0].reason for name, f in feeds.items()}
    assert reasons["image.png"].startswith("binary data, not a feed file")
    assert reasons["empty.json"].startswith("the file is empty")
    assert reasons["other.json"].startswith("JSON, but not in a known feed format")
    assert reasons["README.md"].startswith("not in a known feed format (known formats: alpine")
    assert feeds["README.md"].rejected[0].where == str(text)
    with pytest.raises(InvalidInput, match=r"binary data.*name the format with --format"):
        detect_format(binary)


def test_wrong_format_forced_says_what_the_file_looks_like(shared_dir: Path) -> None:
    kev = shared_dir / "kev" / "known_exploited_vulnerabilities.json"
    parsed = only(list(read_path(kev, "osv")))
    assert parsed.source == "osv"
    assert parsed.records == ()
    (rejection,) = parsed.rejected
    assert rejection.where == str(kev)
    assert rejection.reason.startswith("not an OSV record: the object has no 'id' (its keys: title")
    assert rejection.reason.endswith(
        "it looks like a 'kev' file: use --format kev or leave --format out"
    )


def test_truncated_json_rejects_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "kev.json"
    path.write_text(json.dumps(KEV)[:-40])
    parsed = only(list(read_path(path)))
    assert parsed.source == "kev"
    assert parsed.records == ()
    (rejection,) = parsed.rejected
    assert rejection.where == str(path)
    assert rejection.reason.startswith("not valid JSON (truncated or damaged?): ")
    assert "at line 1 column" in rejection.reason


def test_corrupt_gzip(tmp_path: Path) -> None:
    entries = [{**KEV["vulnerabilities"][0], "cveID": f"CVE-2024-{i:05}"} for i in range(1, 500)]
    data = gzip.compress(json.dumps({**KEV, "vulnerabilities": entries}).encode())
    broken_header = tmp_path / "a.json.gz"
    broken_header.write_bytes(data[:2] + b"\x00" + data[3:])  # bad compression method
    truncated = tmp_path / "b.json.gz"
    truncated.write_bytes(data[: len(data) // 2])
    feeds = {Path(f.file).name: f for f in read_path(tmp_path)}
    header_reason = feeds["a.json.gz"].rejected[0].reason
    assert header_reason.startswith("not a valid gzip stream")
    # The start of the truncated stream decompresses, so it is detected, then fails whole.
    assert feeds["b.json.gz"].source == "kev"
    assert feeds["b.json.gz"].rejected[0].reason == (
        "the compressed data ends early (truncated download?)"
    )
    assert not feeds["b.json.gz"].records


def test_corrupt_gzip_json_lines_keeps_the_lines_before(tmp_path: Path) -> None:
    lines = "\n".join(
        json.dumps({**OSV_RECORD, "id": f"PYSEC-2099-{i}", "details": "x" * 2000})
        for i in range(400)
    )
    data = gzip.compress(lines.encode())
    path = tmp_path / "osv.jsonl.gz"
    path.write_bytes(data[: len(data) * 3 // 4])
    parsed = only(list(read_path(path)))
    assert 100 < len(parsed.records) < 400
    (rejection,) = parsed.rejected
    assert rejection.where == f"{path}:{len(parsed.records) + 1}"
    assert "the compressed data ends early" in rejection.reason
    assert f"({len(parsed.records)} lines before it were)" in rejection.reason


def test_corrupt_zip(tmp_path: Path) -> None:
    path = tmp_path / "all.zip"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    parsed = only(list(read_path(path)))
    assert parsed.source == UNKNOWN
    assert parsed.rejected[0].reason.startswith("corrupt zip archive")


def test_document_size_limit(tmp_path: Path) -> None:
    # A sparse file just over the default 512 MiB limit: refused from its size alone.
    huge = tmp_path / "huge.json"
    with huge.open("wb") as out:
        out.write(b'{"title": "x", "catalogVersion": "1", "vulnerabilities": [')
        out.seek(512 * 1024 * 1024 + 10)
        out.write(b"]}")
    parsed = only(list(read_path(huge)))
    assert parsed.source == "kev"
    assert parsed.records == ()
    assert parsed.rejected[0].reason == (
        "the file is 512 MiB, larger than the 512 MiB limit for one JSON document; "
        "split it or raise max_document_bytes"
    )
    # Compressed content is counted as it is decompressed.
    small = tmp_path / "kev.json.gz"
    small.write_bytes(gzip.compress(json.dumps(KEV).encode()))
    parsed = only(list(read_path(small, max_document_bytes=200)))
    assert parsed.rejected[0].reason == (
        "the JSON document is larger than the 200 bytes limit for one JSON document; "
        "split the file or raise max_document_bytes"
    )
    assert len(only(list(read_path(small))).records) == 1


def test_long_json_line_is_rejected_alone(tmp_path: Path) -> None:
    lines = [json.dumps({**OSV_RECORD, "id": f"PYSEC-2099-{i}"}) for i in range(3)]
    lines[1] = json.dumps({**OSV_RECORD, "details": "x" * 5000})
    path = tmp_path / "osv.jsonl"
    path.write_text("\n".join(lines) + "\n")
    parsed = only(list(read_path(path, max_document_bytes=1000)))
    assert [r.id for r in parsed.records if isinstance(r, Advisory)] == [
        "PYSEC-2099-0",
        "PYSEC-2099-2",
    ]
    assert parsed.rejected[0].where == f"{path}:2"
    assert parsed.rejected[0].reason == "line longer than 1000 bytes; skipped"


def test_detect_format_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        detect_format(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="holds no file to import"):
        detect_format(tmp_path / "empty")
    (tmp_path / "x.json").write_text(json.dumps(KEV))
    assert detect_format(tmp_path) == "kev"
