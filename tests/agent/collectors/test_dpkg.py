from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from patchwarden.agent.collectors import dpkg
from patchwarden.agent.host import LocalHost
from patchwarden.protocol.v1 import validate_package
from tests.agent.fakes import DPKG_STATUS, FakeHost, write_file

needs_dpkg_query = pytest.mark.skipif(
    shutil.which("dpkg-query") is None, reason="dpkg-query is not installed"
)

QUERY_FORMAT = (
    "${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\t"
    "${source:Package}\t${source:Version}\t${db:Status-Status}\n"
)


def dpkg_query(admindir: str | None = None) -> list[list[str]]:
    argv = ["dpkg-query", "-W", "-f", QUERY_FORMAT]
    if admindir:
        argv.insert(1, "--admindir=" + admindir)
    output = subprocess.run(
        argv, check=True, capture_output=True, text=True, env={"LC_ALL": "C"}
    ).stdout
    return [line.split("\t") for line in output.splitlines()]


@needs_dpkg_query
def test_live_root_matches_dpkg_query() -> None:
    if not Path("/var/lib/dpkg/status").exists():
        pytest.skip("this machine has no dpkg database")
    output = dpkg.collect(LocalHost("/"))
    assert output.status == "ok"
    assert output.packages is not None
    ours = {
        (p["name"], p["version"], p["arch"]) for p in output.packages if p["status"] == "installed"
    }
    rows = dpkg_query()
    # Second letter of the abbreviation is the state: "ii" and held "hi" both
    # mean installed (on a machine with nothing held this is exactly the "ii" rows).
    expected = {(r[1], r[2], r[3]) for r in rows if r[0][1] == "i"}
    assert ours == expected
    # Source names and versions agree with dpkg's own idea of them.
    sources = {(r[1], r[3]): (r[4], r[5]) for r in rows}
    for package in output.packages:
        assert sources[(str(package["name"]), str(package["arch"]))] == (
            package["source_name"],
            package["source_version"],
        )
        assert validate_package(package) is None


def test_sandbox_status_file(tmp_path: Path) -> None:
    write_file(tmp_path, "/var/lib/dpkg/status", DPKG_STATUS)
    output = dpkg.collect(LocalHost(str(tmp_path)))
    assert output.status == "ok"
    by_key = {(p["name"], p["arch"]): p for p in output.packages or []}
    assert set(by_key) == {
        ("libc6", "amd64"),
        ("libc6", "i386"),  # multi-arch: one entry per architecture
        ("libsqlite3-0", "amd64"),
        ("tzdata", "all"),
        ("brokenpkg", "amd64"),
        ("pendingpkg", "amd64"),
    }  # oldpkg (config-files) and wantedpkg (not-installed) are not on disk
    assert by_key[("libc6", "i386")] == {
        "ecosystem": "deb",
        "name": "libc6",
        "version": "2.36-9+deb12u4",
        "arch": "i386",
        "source_name": "glibc",
        "source_version": "2.36-9+deb12u4",
        "status": "installed",
    }
    # binNMU: the source version in parentheses differs from the binary's.
    sqlite = by_key[("libsqlite3-0", "amd64")]
    assert (sqlite["version"], sqlite["source_name"], sqlite["source_version"]) == (
        "3.40.1-2+b1",
        "sqlite3",
        "3.40.1-2",
    )
    broken = by_key[("brokenpkg", "amd64")]
    assert (broken["status"], broken["version"], broken["source_name"]) == (
        "half-installed",
        "1:2.0-3",
        "brokenpkg",
    )
    assert by_key[("pendingpkg", "amd64")]["status"] == "triggers-pending"
    assert by_key[("tzdata", "all")]["status"] == "installed"  # held is still installed
    for package in output.packages or []:
        assert validate_package(package) is None


@needs_dpkg_query
def test_sandbox_status_file_agrees_with_dpkg_query(tmp_path: Path) -> None:
    write_file(tmp_path, "/var/lib/dpkg/status", DPKG_STATUS)
    output = dpkg.collect(LocalHost(str(tmp_path)))
    ours = {
        (p["name"], p["version"], p["arch"], p["source_name"], p["source_version"], p["status"])
        for p in output.packages or []
    }
    rows = dpkg_query(str(tmp_path / "var/lib/dpkg"))
    expected = {tuple(r[1:]) for r in rows if r[6] != "config-files"}
    assert ours == expected


def test_skipped_without_status_file(tmp_path: Path) -> None:
    output = dpkg.collect(LocalHost(str(tmp_path)))
    assert output.status == "skipped"
    assert "/var/lib/dpkg/status" in output.message
    assert output.packages is None


def test_empty_status_file_is_ok_with_no_packages() -> None:
    output = dpkg.collect(FakeHost(files={"/var/lib/dpkg/status": ""}))
    assert (output.status, output.packages) == ("ok", [])


# dpkg's journal: records of packages changed since the status file was last
# rewritten, as an interrupted upgrade leaves them.
JOURNAL = {
    "0000": """\
Package: tzdata
Status: hold ok installed
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: all
Version: 2024b-0+deb12u1
Description: time zone and daylight-saving time data
""",
    "0001": """\
Package: curl
Status: install ok unpacked
Maintainer: Alessandro Ghedini <ghedo@debian.org>
Architecture: amd64
Version: 7.88.1-10+deb12u5
Description: command line tool for transferring data with URL syntax
""",
    "0002": """\
Package: pendingpkg
Status: purge ok not-installed
""",
}


def _with_journal(root: Path) -> Path:
    write_file(root, "/var/lib/dpkg/status", DPKG_STATUS)
    for name, text in JOURNAL.items():
        write_file(root, "/var/lib/dpkg/updates/" + name, text)
    write_file(root, "/var/lib/dpkg/updates/tmp.i", "Package: ignored\n")  # dpkg's scratch file
    return root


def test_journal_entries_override_the_status_file(tmp_path: Path) -> None:
    output = dpkg.collect(LocalHost(str(_with_journal(tmp_path))))
    assert output.status == "ok"
    assert output.message == "applied 3 pending dpkg journal entries"
    found = {(p["name"], p["version"], p["status"]) for p in output.packages or []}
    assert ("tzdata", "2024b-0+deb12u1", "installed") in found
    assert ("tzdata", "2024a-0+deb12u1", "installed") not in found
    assert ("curl", "7.88.1-10+deb12u5", "unpacked") in found
    assert "pendingpkg" not in {name for name, _, _ in found}  # purged since
    assert len(output.packages or []) == 6  # libc6 twice (amd64, i386)


@needs_dpkg_query
def test_journal_handling_agrees_with_dpkg_query(tmp_path: Path) -> None:
    root = _with_journal(tmp_path)
    output = dpkg.collect(LocalHost(str(root)))
    ours = {
        (p["name"], p["version"], p["arch"], p["source_name"], p["source_version"], p["status"])
        for p in output.packages or []
    }
    rows = dpkg_query(str(root / "var/lib/dpkg"))
    assert ours == {tuple(r[1:]) for r in rows if r[6] != "config-files"}
