from __future__ import annotations

import gzip
import hashlib
import lzma
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from patchwarden.repos._compression import decompress
from patchwarden.repos.apt import (
    classify_pocket,
    parse_packages,
    parse_release,
    split_clearsigned,
)
from patchwarden.repos.errors import RepositoryFormatError
from patchwarden.repos.model import RepoPackage
from tests.repos.builders import FAKE_SIGNATURE, clearsign, release_text, stanza

APT_LISTS = Path("/var/lib/apt/lists")
BOOKWORM_MAIN = APT_LISTS / "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4"
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")

PACKAGES = (
    stanza("hello", "2.10-3", Source="hello-src (2.10-2)")
    + "\n"
    + stanza("libfoo1", "1:2.0~rc1-1+deb12u1", "all", Multi_Arch="foreign")
    + "\n\n\n"  # extra blank lines are no stanza
    + stanza("zlib1g", "1:1.2.13.dfsg-1", Source="zlib")
)


# -- Release / InRelease ---------------------------------------------------------------


def _release(**kwargs: str) -> bytes:
    return release_text({"main/binary-amd64/Packages": b"abc"}, **kwargs).encode()


def test_release_fields() -> None:
    release = parse_release(_release(suite="bookworm-security", label="Debian-Security"))
    assert (release.origin, release.label, release.suite, release.codename) == (
        "Debian",
        "Debian-Security",
        "bookworm-security",
        "bookworm-security",
    )
    assert release.date == datetime(2025, 5, 10, 9, 3, 18, tzinfo=UTC)
    assert release.valid_until is None
    assert release.architectures == ("amd64",)
    assert release.components == ("main",)
    entry = release.files["main/binary-amd64/Packages"]
    assert entry.sha256 == hashlib.sha256(b"abc").hexdigest()
    assert entry.size == 3
    assert not release.signed
    assert release.signature == ""


def test_inrelease_armour_is_stripped_and_exposed() -> None:
    text = release_text({"main/binary-amd64/Packages": b"abc"})
    release = parse_release(clearsign(text).encode(), "InRelease")
    assert release.signed
    assert release.signature == FAKE_SIGNATURE
    assert release.signed_text == text.removesuffix("\n")
    assert release.files == parse_release(text.encode()).files


def test_dash_escaped_lines_are_unescaped() -> None:
    text, signature = split_clearsigned(clearsign("A: b\n-----not armour\n"))
    assert text == "A: b\n-----not armour"
    assert signature.startswith("-----BEGIN PGP SIGNATURE-----")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("Injected: yes\n" + clearsign("A: b\n"), "text before the clear-signed message"),
        (clearsign("A: b\n") + "Injected: yes\n", "text after the signature"),
        (clearsign("A: b\n").replace("-----END PGP SIGNATURE-----\n", ""), "not terminated"),
        (clearsign("A: b\n").split("-----BEGIN PGP SIGNATURE")[0], "has no signature"),
        (
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n-not escaped\n" + FAKE_SIGNATURE,
            "not dash-escaped",
        ),
        ("-----BEGIN PGP SIGNED MESSAGE-----\nbad header\n\nA: b\n" + FAKE_SIGNATURE, "armour"),
    ],
)
def test_bad_clearsigned_messages_are_refused(content: str, message: str) -> None:
    with pytest.raises(RepositoryFormatError, match=message):
        parse_release(content.encode(), "InRelease")


def test_a_release_without_sha256_is_refused() -> None:
    text = release_text({"main/binary-amd64/Packages": b"abc"})
    without = text.split("SHA256:")[0]
    with pytest.raises(RepositoryFormatError, match="no SHA256 file list"):
        parse_release(without.encode(), "http://mirror/dists/x/Release")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("Origin: x\nSHA256:\n", "file list is empty"),
        ("Origin: x\nSHA256:\n abc 3 main/Packages\n", "malformed SHA256 line"),
        ("Origin: x\nSHA256:\n " + "0" * 64 + " many main/Packages\n", "malformed SHA256"),
        ("Origin: x\nDate: yesterday\nSHA256:\n " + "0" * 64 + " 1 p\n", "Date 'yesterday'"),
        (" continuation first\n", "continues no field"),
        ("no colon here\n", "not a 'Field: value' line"),
        ("\xff\xfe", "not UTF-8"),
    ],
)
def test_malformed_release_files(text: str, message: str) -> None:
    data = text.encode("latin-1") if text == "\xff\xfe" else text.encode()
    with pytest.raises(RepositoryFormatError, match=message):
        parse_release(data)


def test_valid_until_by_hash_and_pinning() -> None:
    extra = "Valid-Until: Fri, 27 Nov 2026 00:12:41 +0100\nAcquire-By-Hash: yes"
    release = parse_release(_release(extra=extra))
    assert release.valid_until == datetime(2026, 11, 26, 23, 12, 41, tzinfo=UTC)
    assert release.acquire_by_hash
    assert not release.not_automatic and not release.but_automatic_upgrades
    backports = parse_release(_release(extra="NotAutomatic: yes\nButAutomaticUpgrades: yes"))
    assert backports.not_automatic and backports.but_automatic_upgrades


def _pocket(suite: str, label: str = "Debian", codename: str | None = None) -> str:
    release = parse_release(_release(suite=suite, label=label))
    if codename is not None:
        release = replace(release, codename=codename)
    return classify_pocket(release)


def test_pocket_classification() -> None:
    assert _pocket("bookworm-security", "Debian-Security") == "security"
    assert _pocket("stable-security", "Debian-Security", "bookworm-security") == "security"
    assert _pocket("jammy-security", "Ubuntu") == "security"
    assert _pocket("whatever", "Debian-Security") == "security"
    assert _pocket("bookworm-updates") == "bugfix"
    assert _pocket("jammy-updates", "Ubuntu") == "bugfix"
    assert _pocket("bookworm-proposed-updates") == "bugfix"
    assert _pocket("bookworm") == "bugfix"  # point releases
    assert _pocket("bookworm-backports", "Debian Backports") == "enhancement"
    assert _pocket("bullseye-backports-sloppy") == "enhancement"
    assert _pocket("jammy-backports", "Ubuntu") == "enhancement"


# -- Packages --------------------------------------------------------------------------


def test_packages_fields() -> None:
    packages = parse_packages(PACKAGES.encode())
    assert [(p.name, p.version, p.arch, p.source) for p in packages] == [
        ("hello", "2.10-3", "amd64", "hello-src"),
        ("libfoo1", "1:2.0~rc1-1+deb12u1", "all", "libfoo1"),  # no Source: its own name
        ("zlib1g", "1:1.2.13.dfsg-1", "amd64", "zlib"),
    ]
    hello = packages[0]
    assert hello.location == "pool/main/h/hello/hello_2.10-3_amd64.deb"
    assert hello.size == 1234
    assert hello.sha256 == hashlib.sha256(b"hello 2.10-3 amd64").hexdigest()
    assert hello.build_time is None


@pytest.mark.parametrize(
    ("name", "compress"),
    [
        ("Packages", lambda d: d),
        ("Packages.gz", gzip.compress),
        ("Packages.xz", lzma.compress),
        ("by-hash/SHA256/0123", gzip.compress),  # recognised by its magic bytes
    ],
)
def test_compressed_packages(name: str, compress: Callable[[bytes], bytes]) -> None:
    data = compress(PACKAGES.encode())
    assert [p.name for p in parse_packages(data, name)] == ["hello", "libfoo1", "zlib1g"]


def test_empty_index() -> None:
    assert parse_packages(b"") == ()
    assert parse_packages(gzip.compress(b"\n\n")) == ()


def test_truncated_compressed_index() -> None:
    data = gzip.compress(PACKAGES.encode())
    with pytest.raises(RepositoryFormatError, match=r"Packages.gz: the gzip data ends early"):
        parse_packages(data[:-10], "Packages.gz")
    data = lzma.compress(PACKAGES.encode())
    with pytest.raises(RepositoryFormatError, match=r"Packages.xz: the xz data ends early"):
        parse_packages(data[: len(data) // 2], "Packages.xz")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Package: a\nArchitecture: all\n", "stanza 1 .* has no Version field"),
        ("Package: a\nVersion: 1\nArchitecture: all\n\nVersion: 2\n", "stanza 2 .* no Package"),
        ("Package: a\nVersion: 1\n", "no Architecture field"),
        ("Package: a\nVersion:\nArchitecture: all\n", "empty Package, Version or Architecture"),
        ("Package: a\nVersion: 1\nArchitecture: all\nSize: big\n", "Size that is not a number"),
    ],
)
def test_missing_or_bad_fields(text: str, message: str) -> None:
    with pytest.raises(RepositoryFormatError, match=message):
        parse_packages(text.encode(), "Packages")


def test_field_names_only_match_at_line_start() -> None:
    text = "Package: a\nX-Version: 9\nVersion: 1\nArchitecture: all\nDescription: d\n Size: 5\n"
    (package,) = parse_packages(text.encode())
    assert (package.version, package.size) == ("1", 0)


# -- the real Debian indexes apt keeps on this machine ----------------------------------


def _real_lists() -> list[Path]:
    lists = sorted(APT_LISTS.glob("*_Packages.lz4"))
    if not lists:
        pytest.skip(f"no apt lists (*_Packages.lz4) in {APT_LISTS}: run apt-get update")
    return lists


def _inrelease_of(packages_list: Path) -> Path:
    stem = packages_list.name.split("_main_binary-")[0]
    return packages_list.with_name(f"{stem}_InRelease")


def test_real_apt_lists_parse_and_match_their_release() -> None:
    """apt stores each index decompressed and re-compressed with lz4, so the
    decompressed bytes must have the SHA-256 the suite's InRelease lists."""
    for path in _real_lists():
        packages = parse_packages(path.read_bytes(), path.name)
        assert packages, path
        assert all(isinstance(p, RepoPackage) and p.name and p.version for p in packages)
        inrelease = _inrelease_of(path)
        if inrelease.is_file():
            release = parse_release(inrelease.read_bytes(), inrelease.name)
            arch = path.name.split("_binary-")[1].split("_")[0]
            entry = release.files[f"main/binary-{arch}/Packages"]
            plain = decompress(path.read_bytes(), path.name)
            assert (len(plain), hashlib.sha256(plain).hexdigest()) == (entry.size, entry.sha256)


def test_the_real_bookworm_main_index_parses() -> None:
    if not BOOKWORM_MAIN.is_file():
        pytest.skip(f"{BOOKWORM_MAIN} not present (a Debian 12 host after apt-get update)")
    data = BOOKWORM_MAIN.read_bytes()
    packages = parse_packages(data, BOOKWORM_MAIN.name)  # its speed: bench/patches.py
    assert len(packages) > 60_000
    names = {p.name for p in packages}
    assert {"bash", "coreutils", "libc6", "openssl"} <= names
    arches = {p.arch for p in packages}
    assert arches == {"amd64", "all"}
    assert sum(1 for p in packages if p.source != p.name) > 10_000


def test_real_inrelease_files() -> None:
    found = sorted(APT_LISTS.glob("*_InRelease"))
    if not found:
        pytest.skip(f"no InRelease files in {APT_LISTS}")
    for path in found:
        release = parse_release(path.read_bytes(), path.name)
        assert release.signed
        assert release.date is not None and release.date.tzinfo is UTC
        expected = "security" if "security" in path.name else "bugfix"
        assert classify_pocket(release) == expected, path.name


def test_signed_text_verifies_with_gpgv(tmp_path: Path) -> None:
    """The exposed text and signature are what gpgv verifies (as apt does)."""
    if shutil.which("gpgv") is None or not DEBIAN_KEYRING.is_file():
        pytest.skip("gpgv or the Debian archive keyring is not installed")
    found = sorted(APT_LISTS.glob("deb.debian.org_*_InRelease"))
    if not found:
        pytest.skip(f"no Debian InRelease files in {APT_LISTS}")
    release = parse_release(found[0].read_bytes(), found[0].name)
    (tmp_path / "Release").write_text(release.signed_text)
    (tmp_path / "Release.gpg").write_text(release.signature)

    def gpgv() -> int:
        argv = ["gpgv", "--keyring", str(DEBIAN_KEYRING), "Release.gpg", "Release"]
        return subprocess.run(argv, cwd=tmp_path, capture_output=True, check=False).returncode

    assert gpgv() == 0
    (tmp_path / "Release").write_text(release.signed_text.replace("Origin:", "Origin: x"))
    assert gpgv() != 0
