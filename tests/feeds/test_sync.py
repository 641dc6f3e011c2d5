"""Sync against a real HTTP server on 127.0.0.1: conditional requests, resuming,
checksums, atomic replacement, and unreachable hosts. No test leaves loopback."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from patchwarden.errors import InvalidInput, RemoteError
from patchwarden.feeds import FEEDS, read_path
from patchwarden.feeds.errors import (
    ChecksumMismatch,
    DownloadInterrupted,
    FeedDownloadError,
    FeedUnreachable,
)
from patchwarden.feeds.sync import (
    DEFAULT_SOURCES,
    ChecksumFile,
    GoogleStorageHash,
    NvdMetaChecksum,
    SyncSource,
    get_source,
    get_sources,
    nvd_feed,
    record_synced,
    sync,
)
from tests.feeds.feed_server import FeedServer, serve

BODY = json.dumps(
    {
        "title": "CISA Catalog of Known Exploited Vulnerabilities",
        "catalogVersion": "2025.01.01",
        "dateReleased": "2025-01-01T00:00:00.000Z",
        "count": 300,
        "vulnerabilities": [
            {
                "cveID": f"CVE-2024-{i:05}",
                "vendorProject": "Acme",
                "product": "Widget",
                "vulnerabilityName": "Acme Widget flaw",
                "dateAdded": "2025-01-01",
                "dueDate": "2025-01-22",
                "knownRansomwareCampaignUse": "Unknown",
            }
            for i in range(1, 301)
        ],
    }
).encode()
KEV = SyncSource("kev", "/feeds/kev.json", "kev.json", "kev")


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with serve() as running:
        yield running


@pytest.fixture
def client(server: FeedServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=5) as http:
        yield http


def test_download_then_304_then_changed(
    server: FeedServer, client: httpx.Client, tmp_path: Path
) -> None:
    server.put("/feeds/kev.json", BODY)
    first = sync(KEV, tmp_path, client)
    assert first.status == "downloaded"
    assert first.path == tmp_path / "kev.json"
    assert first.path.read_bytes() == BODY
    assert (first.size, first.sha256) == (len(BODY), hashlib.sha256(BODY).hexdigest())
    assert first.etag == server.resources["/feeds/kev.json"].etag
    assert (first.resumed, first.verified) == (False, False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".kev.json.sync.json", "kev.json"]
    # The sidecar is hidden: importing the directory reads the feed only.
    (parsed,) = read_path(tmp_path)
    assert (parsed.source, len(parsed.records)) == ("kev", 300)

    second = sync(KEV, tmp_path, client)
    assert second.status == "unchanged"
    assert second.sha256 == first.sha256
    sent = server.headers_of("/feeds/kev.json")[-1]
    assert sent["if-none-match"] == first.etag
    assert sent["if-modified-since"] == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert sent["accept-encoding"] == "identity"

    server.put("/feeds/kev.json", BODY.replace(b"Widget", b"Gadget"), last_modified=1_800_000_000)
    third = sync(KEV, tmp_path, client)
    assert third.status == "downloaded"
    assert b"Gadget" in third.path.read_bytes()
    assert third.etag != first.etag


def test_a_download_not_recorded_is_downloaded_again(
    server: FeedServer, client: httpx.Client, tmp_path: Path
) -> None:
    """Until record_synced says the file is in use (imported), a sync sends no
    validators: the next one downloads it again instead of getting 304."""
    server.put("/feeds/kev.json", BODY)
    sync(KEV, tmp_path, client)  # recorded: the file before the change
    server.put("/feeds/kev.json", BODY.replace(b"Widget", b"Gadget"), last_modified=1_800_000_000)
    first = sync(KEV, tmp_path, client, save_state=False)
    assert first.status == "downloaded"
    assert b"Gadget" in first.path.read_bytes()
    # The old file's state went with it: it must not answer for the new one.
    assert not (tmp_path / ".kev.json.sync.json").exists()

    again = sync(KEV, tmp_path, client, save_state=False)
    assert again.status == "downloaded"
    sent = server.headers_of("/feeds/kev.json")[-1]
    assert "if-none-match" not in sent and "if-modified-since" not in sent

    record_synced(KEV, tmp_path, again)
    recorded = sync(KEV, tmp_path, client, save_state=False)
    assert recorded.status == "unchanged"
    assert server.headers_of("/feeds/kev.json")[-1]["if-none-match"] == again.etag
    assert recorded.sha256 == again.sha256


def test_if_modified_since_alone(server: FeedServer, client: httpx.Client, tmp_path: Path) -> None:
    server.put("/feeds/kev.json", BODY)
    sync(KEV, tmp_path, client)
    state = tmp_path / ".kev.json.sync.json"
    data = json.loads(state.read_text())
    data["etag"] = None
    state.write_text(json.dumps(data))
    assert sync(KEV, tmp_path, client).status == "unchanged"
    assert "if-none-match" not in server.headers_of("/feeds/kev.json")[-1]


def test_same_bytes_without_validators_is_unchanged(
    server: FeedServer, client: httpx.Client, tmp_path: Path
) -> None:
    server.put("/feeds/kev.json", BODY, validators=False)
    assert sync(KEV, tmp_path, client).status == "downloaded"
    again = sync(KEV, tmp_path, client)
    assert again.status == "unchanged"  # a 200 with the same SHA-256
    assert not (tmp_path / ".kev.json.part").exists()


def test_resume_after_a_cut(server: FeedServer, client: httpx.Client, tmp_path: Path) -> None:
    (tmp_path / "kev.json").write_bytes(b"the previous catalogue")
    server.put("/feeds/kev.json", BODY)
    server.cut.add("/feeds/kev.json")
    with pytest.raises(DownloadInterrupted) as caught:
        sync(KEV, tmp_path, client)
    message = str(caught.value)
    assert message.startswith("the download of /feeds/kev.json broke off (")
    assert message.endswith(f"{len(BODY) // 2} bytes kept in .kev.json.part: sync again to resume")
    assert isinstance(caught.value, FeedUnreachable)
    assert (tmp_path / "kev.json").read_bytes() == b"the previous catalogue"
    assert (tmp_path / ".kev.json.part").read_bytes() == BODY[: len(BODY) // 2]

    result = sync(KEV, tmp_path, client)
    assert (result.status, result.resumed) == ("downloaded", True)
    assert result.path.read_bytes() == BODY
    sent = server.headers_of("/feeds/kev.json")[-1]
    assert sent["range"] == f"bytes={len(BODY) // 2}-"
    assert sent["if-range"] == server.resources["/feeds/kev.json"].etag
    assert "if-none-match" not in sent
    assert not (tmp_path / ".kev.json.part").exists()
    assert not (tmp_path / ".kev.json.part.json").exists()


def test_server_ignoring_range_restarts(
    server: FeedServer, client: httpx.Client, tmp_path: Path
) -> None:
    server.put("/feeds/kev.json", BODY)
    server.cut.add("/feeds/kev.json")
    with pytest.raises(DownloadInterrupted):
        sync(KEV, tmp_path, client)
    server.ignore_range = True
    result = sync(KEV, tmp_path, client)
    assert (result.status, result.resumed) == ("downloaded", False)
    assert result.path.read_bytes() == BODY


def test_file_changed_between_cut_and_resume(
    server: FeedServer, client: httpx.Client, tmp_path: Path
) -> None:
    server.put("/feeds/kev.json", BODY)
    server.cut.add("/feeds/kev.json")
    with pytest.raises(DownloadInterrupted):
        sync(KEV, tmp_path, client)
    new = BODY.replace(b"Widget", b"Gadget")
    server.put("/feeds/kev.json", new)  # new ETag: If-Range fails, the server sends it whole
    result = sync(KEV, tmp_path, client)
    assert (result.resumed, result.path.read_bytes()) == (False, new)


def test_cut_without_validators_starts_over(
    server: FeedServer, client: httpx.Client, tmp_path: Path
) -> None:
    server.put("/feeds/kev.json", BODY, validators=False)
    server.cut.add("/feeds/kev.json")
    with pytest.raises(DownloadInterrupted, match="so the next sync starts over"):
        sync(KEV, tmp_path, client)
    assert not (tmp_path / ".kev.json.part").exists()
    assert sync(KEV, tmp_path, client).path.read_bytes() == BODY


def test_checksum_file(server: FeedServer, client: httpx.Client, tmp_path: Path) -> None:
    source = SyncSource("kev", "/feeds/kev.json", "kev.json", "kev", ChecksumFile())
    server.put("/feeds/kev.json", BODY)
    server.put("/feeds/kev.json.sha256", f"{hashlib.sha256(BODY).hexdigest()}  kev.json\n".encode())
    assert sync(source, tmp_path, client).verified

    corrupted = BODY.replace(b"Acme", b"Acne", 1)
    server.put("/feeds/kev.json", corrupted)
    with pytest.raises(ChecksumMismatch) as caught:
        sync(source, tmp_path, client)
    assert str(caught.value) == (
        f"/feeds/kev.json: the download's sha256 is {hashlib.sha256(corrupted).hexdigest()}, "
        f"but /feeds/kev.json.sha256 says {hashlib.sha256(BODY).hexdigest()}; "
        "the file was not replaced (sync again later)"
    )
    assert (tmp_path / "kev.json").read_bytes() == BODY  # nothing replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == [".kev.json.sync.json", "kev.json"]


def test_nvd_meta_checksum_of_the_gunzipped_file(
    server: FeedServer, client: httpx.Client, tmp_path: Path
) -> None:
    document = b'{"format": "NVD_CVE", "version": "2.0", "vulnerabilities": []}'
    source = SyncSource(
        "nvd-modified",
        "/nvd/nvdcve-2.0-modified.json.gz",
        "nvdcve-2.0-modified.json.gz",
        "nvd",
        NvdMetaChecksum(),
    )
    meta = (
        "lastModifiedDate:2024-08-01T12:00:00-04:00\r\nsize:64\r\n"
        f"sha256:{hashlib.sha256(document).hexdigest().upper()}\r\n"
    )
    server.put("/nvd/nvdcve-2.0-modified.json.gz", gzip.compress(document))
    server.put("/nvd/nvdcve-2.0-modified.meta", meta.encode())
    assert sync(source, tmp_path, client).verified
    server.put("/nvd/nvdcve-2.0-modified.json.gz", gzip.compress(document + b" "))
    with pytest.raises(ChecksumMismatch, match=r"nvdcve-2\.0-modified\.meta says"):
        sync(source, tmp_path, client)


def test_google_storage_md5_header(
    server: FeedServer, client: httpx.Client, tmp_path: Path
) -> None:
    md5 = base64.b64encode(hashlib.md5(BODY, usedforsecurity=False).digest()).decode()
    source = SyncSource("osv", "/Debian/all.zip", "all.zip", "osv", GoogleStorageHash())
    server.put("/Debian/all.zip", BODY, headers={"x-goog-hash": f"crc32c=AAAAAA==, md5={md5}"})
    assert sync(source, tmp_path, client).verified
    server.put("/Debian/all.zip", BODY + b"!", headers={"x-goog-hash": f"md5={md5}"})
    with pytest.raises(ChecksumMismatch, match="x-goog-hash says"):
        sync(source, tmp_path, client)


def test_http_error_is_not_unreachable(
    server: FeedServer, client: httpx.Client, tmp_path: Path
) -> None:
    with pytest.raises(FeedDownloadError) as caught:
        sync(KEV, tmp_path, client)
    assert not isinstance(caught.value, FeedUnreachable)
    assert str(caught.value).endswith(
        "/feeds/kev.json answered HTTP 404 Not Found; the file in place is unchanged"
    )


def test_connection_refused(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = SyncSource("kev", f"http://127.0.0.1:{port}/kev.json", "kev.json", "kev")
    with httpx.Client(timeout=2) as http, pytest.raises(FeedUnreachable) as caught:
        sync(source, tmp_path, http)
    message = str(caught.value)
    assert message.startswith("cannot reach 127.0.0.1: ")
    assert message.endswith("; download the file elsewhere and use `patchwarden feeds import PATH`")
    assert isinstance(caught.value, RemoteError)
    assert not (tmp_path / "kev.json").exists()


def test_timeout(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/kev.json"
    try:
        with httpx.Client(timeout=0.3) as http, pytest.raises(FeedUnreachable) as caught:
            sync(SyncSource("kev", url, "kev.json", "kev"), tmp_path, http)
        assert str(caught.value).startswith("cannot reach 127.0.0.1: timed out;")
    finally:
        thread.join(2)
        for connection in accepted:
            connection.close()
        listener.close()


def test_dns_failure(tmp_path: Path) -> None:
    def no_dns(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -2] Name or service not known", request=request)

    source = DEFAULT_SOURCES["kev"]
    with (
        httpx.Client(transport=httpx.MockTransport(no_dns)) as http,
        pytest.raises(FeedUnreachable) as caught,
    ):
        sync(source, tmp_path, http)
    assert str(caught.value) == (
        "cannot reach www.cisa.gov: [Errno -2] Name or service not known; "
        "download the file elsewhere and use `patchwarden feeds import PATH`"
    )


def test_default_sources(tmp_path: Path) -> None:
    assert sorted(DEFAULT_SOURCES) == [
        "debian-tracker-json",
        "epss",
        "kev",
        "nvd-modified",
        "osv-alpine",
        "osv-debian",
        "osv-npm",
        "osv-pypi",
        "osv-ubuntu",
    ]
    for name, source in DEFAULT_SOURCES.items():
        assert source.name == name
        assert source.url.startswith("https://")
        assert source.format in FEEDS
    assert len({s.filename for s in DEFAULT_SOURCES.values()}) == len(DEFAULT_SOURCES)
    assert DEFAULT_SOURCES["osv-pypi"].url == (
        "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip"
    )
    assert nvd_feed("2024").url == "https://nvd.nist.gov/feeds/json/cve/2.0/nvdcve-2.0-2024.json.gz"
    assert get_source("epss") is DEFAULT_SOURCES["epss"]
    with pytest.raises(InvalidInput, match="unknown feed source 'nope'; valid sources: "):
        get_source("nope")
    with httpx.Client() as http, pytest.raises(InvalidInput, match="invalid feed file name"):
        sync(SyncSource("x", "/x", "../x", "kev"), tmp_path, http)


def test_nvd_years_for_a_first_load() -> None:
    this_year = datetime.now(UTC).year
    assert get_source("nvd-2024") == nvd_feed("2024")
    for name in ("nvd-2001", f"nvd-{this_year + 1}", "nvd-24"):
        with pytest.raises(InvalidInput, match=f"unknown feed source '{name}'.*nvd-2002 to"):
            get_source(name)
    every_year = get_sources(["kev", "nvd-all", "nvd-2024"])
    assert [s.name for s in every_year] == [
        "kev",
        *(f"nvd-{year}" for year in range(2002, this_year + 1)),
    ]
    assert every_year[-1].url.endswith(f"/nvdcve-2.0-{this_year}.json.gz")


def test_unsatisfiable_range_restarts(
    server: FeedServer, client: httpx.Client, tmp_path: Path
) -> None:
    resource = server.put("/feeds/kev.json", BODY)
    # A part as long as the file (the connection broke just before the rename).
    (tmp_path / ".kev.json.part").write_bytes(BODY)
    (tmp_path / ".kev.json.part.json").write_text(
        json.dumps({"url": KEV.url, "etag": resource.etag, "last_modified": None})
    )
    result = sync(KEV, tmp_path, client)
    assert (result.status, result.resumed) == ("downloaded", False)
    assert result.path.read_bytes() == BODY
    ranges = [h.get("range") for h in server.headers_of("/feeds/kev.json")]
    assert ranges == [f"bytes={len(BODY)}-", None]
