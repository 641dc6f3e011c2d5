"""Fetching over a real loopback HTTP server (and file:// URLs); no mocks."""

from __future__ import annotations

import gzip
import hashlib
import socket
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from patchwarden.errors import InvalidInput, RepositoryError
from patchwarden.repos.errors import (
    RepositoryChecksumMismatch,
    RepositoryFormatError,
    RepositoryHTTPError,
    RepositoryUnreachable,
)
from patchwarden.repos.fetch import (
    Fetched,
    FetchResult,
    Unchanged,
    Validators,
    fetch_apk,
    fetch_apt,
    fetch_rpm,
)
from tests.repos.builders import (
    UPDATEINFO,
    apkindex_tar_gz,
    primary_package,
    primary_xml,
    release_text,
    stanza,
    write_apt_suite,
    write_rpm_repo,
)
from tests.repos.repo_server import RepoServer

MAIN = stanza("hello", "2.10-3") + "\n" + stanza("libfoo1", "1.0-1", "all")
SECURITY = stanza("hello", "2.10-3+deb12u1")
PRIMARY = primary_xml(
    primary_package("pwt-tool", "0", "1.1", "1", "x86_64"),
    primary_package("pwt-sec", "2", "1.0", "2", "x86_64"),
)


def fetched(result: FetchResult) -> Fetched:
    assert isinstance(result, Fetched), result
    return result


def _apt(
    server: RepoServer,
    client: httpx.Client,
    suite: str = "bookworm",
    *,
    previous: Validators | None = None,
    name: str | None = None,
) -> FetchResult:
    return fetch_apt(
        server.base_url, suite, ["main"], ["amd64"], client, previous=previous, name=name
    )


# -- apt ---------------------------------------------------------------------------------


def test_apt_suite(server: RepoServer, client: httpx.Client) -> None:
    write_apt_suite(server.root, "bookworm", MAIN)
    write_apt_suite(server.root, "bookworm-security", SECURITY, label="Debian-Security")
    main = fetched(_apt(server, client)).snapshot
    assert main.kind == "apt"
    assert main.name == f"{server.base_url} bookworm"
    assert [(p.name, p.version, p.arch) for p in main.packages] == [
        ("hello", "2.10-3", "amd64"),
        ("libfoo1", "1.0-1", "all"),
    ]
    assert main.classification_default == "bugfix"
    assert main.released == datetime(2025, 5, 10, 9, 3, 18, tzinfo=UTC)
    inrelease = (server.root / "dists/bookworm/InRelease").read_bytes()
    assert main.checksum == "sha256:" + hashlib.sha256(inrelease).hexdigest()
    # InRelease, then the smallest index the Release lists
    assert server.paths() == [
        "/dists/bookworm/InRelease",
        "/dists/bookworm/main/binary-amd64/Packages.xz",
    ]
    security = fetched(_apt(server, client, "bookworm-security", name="security")).snapshot
    assert (security.name, security.classification_default) == ("security", "security")


def test_apt_falls_back_to_release(server: RepoServer, client: httpx.Client) -> None:
    write_apt_suite(server.root, "bookworm", MAIN, inrelease=False, suffixes=(".gz",))
    snapshot = fetched(_apt(server, client)).snapshot
    assert len(snapshot.packages) == 2
    assert server.paths() == [
        "/dists/bookworm/InRelease",
        "/dists/bookworm/Release",
        "/dists/bookworm/main/binary-amd64/Packages.gz",
    ]


def test_apt_conditional_requests(server: RepoServer, client: httpx.Client) -> None:
    write_apt_suite(server.root, "bookworm", MAIN)
    first = fetched(_apt(server, client))
    assert first.validators.etag and first.validators.last_modified
    server.requests.clear()
    # The server answers If-None-Match with 304: nothing else is fetched.
    again = _apt(server, client, previous=first.validators)
    assert again == Unchanged(first.validators)
    assert server.paths() == ["/dists/bookworm/InRelease"]
    assert server.requests[0][1]["if-none-match"] == first.validators.etag
    # Without HTTP validators the same checksum also means unchanged.
    server.requests.clear()
    by_checksum = _apt(server, client, previous=Validators(checksum=first.validators.checksum))
    assert isinstance(by_checksum, Unchanged)
    assert by_checksum.validators == first.validators
    assert server.paths() == ["/dists/bookworm/InRelease"]
    # A new Release is fetched whole.
    write_apt_suite(server.root, "bookworm", MAIN + "\n" + stanza("new", "1"))
    changed = fetched(_apt(server, client, previous=first.validators))
    assert [p.name for p in changed.snapshot.packages] == ["hello", "libfoo1", "new"]
    assert changed.validators.checksum != first.validators.checksum


def test_apt_if_modified_since(server: RepoServer, client: httpx.Client) -> None:
    write_apt_suite(server.root, "bookworm", MAIN)
    first = fetched(_apt(server, client))
    previous = Validators(last_modified=first.validators.last_modified)
    assert isinstance(_apt(server, client, previous=previous), Unchanged)


def test_apt_checksum_mismatch(server: RepoServer, client: httpx.Client) -> None:
    files = write_apt_suite(server.root, "bookworm", MAIN, suffixes=(".gz",))
    index = "/dists/bookworm/main/binary-amd64/Packages.gz"
    good = files["main/binary-amd64/Packages.gz"]
    server.replace[index] = good[:-1] + bytes([good[-1] ^ 1])
    with pytest.raises(RepositoryChecksumMismatch, match=r"SHA256 .* differs from .* Release"):
        _apt(server, client)
    server.replace[index] = gzip.compress(b"Package: x\nVersion: 1\nArchitecture: all\n")
    with pytest.raises(RepositoryChecksumMismatch, match="bytes, but the Release file says"):
        _apt(server, client)


def test_apt_truncated_download(server: RepoServer, client: httpx.Client) -> None:
    write_apt_suite(server.root, "bookworm", MAIN, suffixes=(".gz",))
    server.cut.add("/dists/bookworm/main/binary-amd64/Packages.gz")
    with pytest.raises(RepositoryUnreachable, match="connection broke during the download"):
        _apt(server, client)


def test_apt_corrupt_index_with_a_matching_checksum(
    server: RepoServer, client: httpx.Client
) -> None:
    """The Release lists a truncated .gz: verified, then refused when read."""
    directory = server.root / "dists/bookworm"
    cut = gzip.compress(MAIN.encode())[:-12]
    (directory / "main/binary-amd64").mkdir(parents=True)
    (directory / "main/binary-amd64/Packages.gz").write_bytes(cut)
    (directory / "Release").write_text(release_text({"main/binary-amd64/Packages.gz": cut}))
    with pytest.raises(RepositoryFormatError, match=r"Packages.gz: the gzip data ends early"):
        _apt(server, client)


def test_apt_decompressed_index_is_checked_too(server: RepoServer, client: httpx.Client) -> None:
    directory = server.root / "dists/bookworm"
    compressed = gzip.compress(MAIN.encode())
    (directory / "main/binary-amd64").mkdir(parents=True)
    (directory / "main/binary-amd64/Packages.gz").write_bytes(compressed)
    files = {
        "main/binary-amd64/Packages.gz": compressed,
        "main/binary-amd64/Packages": b"other content",
    }
    (directory / "Release").write_text(release_text(files))
    with pytest.raises(RepositoryChecksumMismatch, match=r"Packages \(decompressed\)"):
        _apt(server, client)


def test_apt_http_errors(server: RepoServer, client: httpx.Client) -> None:
    write_apt_suite(server.root, "bookworm", MAIN, suffixes=(".xz",))
    server.status["/dists/bookworm/main/binary-amd64/Packages.xz"] = 500
    with pytest.raises(RepositoryHTTPError, match="HTTP 500 Internal Server Error") as caught:
        _apt(server, client)
    assert caught.value.status_code == 500
    assert caught.value.http_status == 502  # what the API answers: a bad gateway
    with pytest.raises(RepositoryHTTPError, match="Release: HTTP 404"):
        _apt(server, client, "no-such-suite")


def test_apt_unreachable(client: httpx.Client) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nobody listens there
    with pytest.raises(RepositoryUnreachable, match="cannot reach the repository"):
        fetch_apt(f"http://127.0.0.1:{port}", "bookworm", ["main"], ["amd64"], client)


def test_apt_missing_component(server: RepoServer, client: httpx.Client) -> None:
    write_apt_suite(server.root, "bookworm", MAIN)
    with pytest.raises(
        RepositoryFormatError, match="lists no Packages index in contrib/binary-amd64/"
    ):
        fetch_apt(server.base_url, "bookworm", ["main", "contrib"], ["amd64"], client)


def test_apt_components_are_a_list(server: RepoServer, client: httpx.Client) -> None:
    with pytest.raises(InvalidInput, match="lists of names"):
        fetch_apt(server.base_url, "bookworm", "main", ["amd64"], client)


def test_apt_by_hash(server: RepoServer, client: httpx.Client) -> None:
    files = write_apt_suite(server.root, "bookworm", MAIN, suffixes=(".gz",), by_hash=True)
    digest = hashlib.sha256(files["main/binary-amd64/Packages.gz"]).hexdigest()
    # The plain path now holds a newer file (a mirror mid-update): by-hash still fits.
    (server.root / "dists/bookworm/main/binary-amd64/Packages.gz").write_bytes(b"newer")
    snapshot = fetched(_apt(server, client)).snapshot
    assert len(snapshot.packages) == 2
    assert server.paths()[-1] == f"/dists/bookworm/main/binary-amd64/by-hash/SHA256/{digest}"


def test_apt_by_hash_falls_back_to_the_path(server: RepoServer, client: httpx.Client) -> None:
    write_apt_suite(server.root, "bookworm", MAIN, suffixes=(".gz",), by_hash=True)
    for hashed in (server.root / "dists").rglob("by-hash/SHA256/*"):
        hashed.unlink()
    assert len(fetched(_apt(server, client)).snapshot.packages) == 2


def test_apt_over_file_urls(tmp_path: Path, client: httpx.Client) -> None:
    write_apt_suite(tmp_path / "mirror", "bookworm", MAIN, inrelease=False)
    result = fetch_apt((tmp_path / "mirror").as_uri(), "bookworm", ["main"], ["amd64"], client)
    assert len(fetched(result).snapshot.packages) == 2
    with pytest.raises(RepositoryHTTPError, match="no such file"):
        fetch_apt((tmp_path / "nowhere").as_uri(), "bookworm", ["main"], ["amd64"], client)


def test_unsupported_url_scheme(client: httpx.Client) -> None:
    with pytest.raises(RepositoryError, match="only http, https and file URLs"):
        fetch_rpm("ftp://example.org/repo", client)


# -- rpm-md ------------------------------------------------------------------------------


def test_rpm_repository(server: RepoServer, client: httpx.Client) -> None:
    repomd = write_rpm_repo(
        server.root,
        {"primary": gzip.compress(PRIMARY), "updateinfo": gzip.compress(UPDATEINFO)},
    )
    result = fetched(fetch_rpm(server.url("/"), client))
    snapshot = result.snapshot
    assert (snapshot.kind, snapshot.name) == ("rpm", server.base_url)
    assert [(p.name, p.version) for p in snapshot.packages] == [
        ("pwt-tool", "1.1-1"),
        ("pwt-sec", "2:1.0-2"),
    ]
    assert [n.id for n in snapshot.notices][:2] == ["PWSA-2024:0001", "PWBA-2024:0002"]
    assert snapshot.classification_default == "unclassified"
    assert snapshot.released == datetime.fromtimestamp(1700000100, UTC)
    assert snapshot.checksum == "sha256:" + hashlib.sha256(repomd).hexdigest()
    assert server.paths()[0] == "/repodata/repomd.xml"
    assert len(server.paths()) == 3
    assert isinstance(fetch_rpm(server.base_url, client, previous=result.validators), Unchanged)


def test_rpm_without_updateinfo_and_sizes(server: RepoServer, client: httpx.Client) -> None:
    write_rpm_repo(server.root, {"primary": PRIMARY}, sizes=False)
    snapshot = fetched(fetch_rpm(server.base_url, client, classification="bugfix")).snapshot
    assert (len(snapshot.packages), snapshot.notices) == (2, ())
    assert snapshot.classification_default == "bugfix"


def test_rpm_checksum_mismatch(server: RepoServer, client: httpx.Client) -> None:
    write_rpm_repo(server.root, {"primary": PRIMARY})
    (primary,) = (server.root / "repodata").glob("*-primary.xml")
    primary.write_bytes(PRIMARY.replace(b"pwt-tool", b"pwt-evil"))
    with pytest.raises(RepositoryChecksumMismatch, match=r"sha256 .* differs from .* repomd.xml"):
        fetch_rpm(server.base_url, client)
    primary.write_bytes(PRIMARY + b" ")  # longer than announced: not even read whole
    with pytest.raises(RepositoryChecksumMismatch, match=r"more than the \d+ bytes expected"):
        fetch_rpm(server.base_url, client)
    primary.write_bytes(PRIMARY[:-1])
    with pytest.raises(RepositoryChecksumMismatch, match=r"bytes, but repomd.xml says"):
        fetch_rpm(server.base_url, client)


def test_rpm_unparseable_updateinfo(server: RepoServer, client: httpx.Client) -> None:
    bad = b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY x "y">]><updates>&x;</updates>'
    write_rpm_repo(server.root, {"primary": PRIMARY, "updateinfo": bad})
    with pytest.raises(RepositoryFormatError, match="DOCTYPE declaration refused"):
        fetch_rpm(server.base_url, client)
    write_rpm_repo(server.root, {"primary": PRIMARY, "updateinfo": b"<updates><update>"})
    with pytest.raises(RepositoryFormatError, match="not well-formed XML"):
        fetch_rpm(server.base_url, client)


@pytest.mark.parametrize(
    "href", ["../../etc/passwd", "/etc/passwd", "http://elsewhere.example/primary.xml"]
)
def test_rpm_locations_outside_the_repository(
    server: RepoServer, client: httpx.Client, href: str
) -> None:
    repomd = write_rpm_repo(server.root, {"primary": PRIMARY}).decode()
    start = repomd.index('<location href="') + len('<location href="')
    end = repomd.index('"', start)
    (server.root / "repodata/repomd.xml").write_text(repomd[:start] + href + repomd[end:])
    with pytest.raises(RepositoryFormatError, match="leaves the repository"):
        fetch_rpm(server.base_url, client)


def test_rpm_without_primary(server: RepoServer, client: httpx.Client) -> None:
    write_rpm_repo(server.root, {"other": b"<otherdata/>"})
    with pytest.raises(RepositoryFormatError, match="lists no primary metadata"):
        fetch_rpm(server.base_url, client)


def test_rpm_over_file_urls(tmp_path: Path, client: httpx.Client) -> None:
    write_rpm_repo(tmp_path / "repo", {"primary": gzip.compress(PRIMARY)})
    assert len(fetched(fetch_rpm((tmp_path / "repo").as_uri(), client)).snapshot.packages) == 2


# -- apk ---------------------------------------------------------------------------------


def test_apk_repository(server: RepoServer, client: httpx.Client) -> None:
    index = server.root / "v3.19/main/x86_64/APKINDEX.tar.gz"
    index.parent.mkdir(parents=True)
    index.write_bytes(apkindex_tar_gz())
    result = fetched(fetch_apk(server.url("v3.19/main/x86_64"), client))
    snapshot = result.snapshot
    assert (snapshot.kind, len(snapshot.packages)) == ("apk", 3)
    assert snapshot.released is not None  # the server's Last-Modified
    again = fetch_apk(server.url("v3.19/main/x86_64"), client, previous=result.validators)
    assert isinstance(again, Unchanged)
    with pytest.raises(RepositoryHTTPError, match="HTTP 404"):
        fetch_apk(server.url("v3.19/community/x86_64"), client)
    server.cut.add("/v3.19/main/x86_64/APKINDEX.tar.gz")
    with pytest.raises(RepositoryUnreachable):
        fetch_apk(server.url("v3.19/main/x86_64"), client)
