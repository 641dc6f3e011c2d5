"""The real `patchwarden` console script in a subprocess, on a fresh data
directory: import a feed file, scan package lists offline, read the exit codes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import BIN
from tests.services.test_feeds import DSA_TEXT, KEV_PWNKIT, kev_catalogue

VULNERABLE_STATUS = """\
Package: libssl1.1
Status: install ok installed
Architecture: amd64
Source: openssl
Version: 1.1.1n-0+deb11u1

Package: policykit-1
Status: install ok installed
Architecture: amd64
Version: 0.105-31
"""
CLEAN_STATUS = VULNERABLE_STATUS.replace("1.1.1n-0+deb11u1", "1.1.1n-0+deb11u4").replace(
    "0.105-31\n", "0.105-31+deb11u1\n"
)


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    (result,) = run_together(env, list(args))
    return result


def run_together(
    env: dict[str, str], *commands: list[str]
) -> list[subprocess.CompletedProcess[str]]:
    """Several `patchwarden` processes at once (SQLite serialises their writers)."""
    started = [
        (
            command,
            subprocess.Popen(
                [str(BIN / "patchwarden"), *command],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for command in commands
    ]
    results = []
    try:
        for command, process in started:
            stdout, stderr = process.communicate(timeout=120)
            results.append(subprocess.CompletedProcess(command, process.returncode, stdout, stderr))
    finally:
        for _, process in started:
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = {**os.environ, "PATCHWARDEN_DATA_DIR": str(tmp_path / "data")}
    environment.pop("PATCHWARDEN_DATABASE_URL", None)
    environment["COLUMNS"] = "200"  # rich wraps long lines at the terminal width
    return environment


def test_import_then_scan(env: dict[str, str], tmp_path: Path) -> None:
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "DSA_list.txt").write_text(DSA_TEXT)
    (feeds / "kev.json").write_text(json.dumps(kev_catalogue(KEV_PWNKIT)))
    vulnerable = tmp_path / "status"
    vulnerable.write_text(VULNERABLE_STATUS)
    clean = tmp_path / "status-clean"
    clean.write_text(CLEAN_STATUS)

    imported = run(env, "feeds", "import", str(feeds))
    assert imported.returncode == 0, imported.stderr
    assert "2 file(s)" in imported.stdout
    assert "created 4, updated 0, unchanged 0, withdrawn 0, rejected 0" in imported.stdout

    debian = ["--distro", "debian:11"]
    scanned, sarif, passed = run_together(
        env,
        ["scan", "--dpkg-status", str(vulnerable), *debian, "--format", "json"],
        ["scan", "--dpkg-status", str(vulnerable), *debian, "--format", "sarif"],
        ["scan", "--dpkg-status", str(clean), *debian, "--format", "json"],
    )
    assert scanned.returncode == 1, scanned.stderr
    rows = json.loads(scanned.stdout)
    assert [(r["package"], r["fixed_version"], r["vulnerability_ids"]) for r in rows] == [
        ("libssl1.1", "1.1.1n-0+deb11u3", ["CVE-2022-2068"]),
        *(
            ("libssl1.1", "1.1.1n-0+deb11u4", [cve])
            for cve in (
                "CVE-2022-2097",
                "CVE-2022-4304",
                "CVE-2022-4450",
                "CVE-2023-0215",
                "CVE-2023-0286",
            )
        ),
        ("policykit-1", "0.105-31+deb11u1", ["CVE-2021-4034"]),
    ]
    assert rows[-1]["kev"] is True and rows[-1]["advisory_ids"] == ["DSA-5059-1"]

    assert sarif.returncode == 1, sarif.stderr
    log = json.loads(sarif.stdout)
    assert log["version"] == "2.1.0"
    assert len(log["runs"][0]["results"]) == 7
    assert log["runs"][0]["tool"]["driver"]["name"] == "patchwarden"

    assert passed.returncode == 0, passed.stderr
    assert json.loads(passed.stdout) == []

    # The dossier of a KEV-listed CVE prints its KEV dates (plain dates, not datetimes).
    shown = run(env, "vulnerabilities", "show", "CVE-2021-4034")
    assert shown.returncode == 0, shown.stderr
    dossier = json.loads(shown.stdout)
    assert dossier["kev"] is True
    assert dossier["kev_due_date"] == "2022-07-18"


def test_bad_input_exits_2_with_a_message_and_tools_work(
    env: dict[str, str], tmp_path: Path
) -> None:
    status = tmp_path / "status"
    status.write_text(VULNERABLE_STATUS)
    bad_distro, unknown_option, compared, scored = run_together(
        env,
        ["scan", "--dpkg-status", str(status), "--distro", "plan9:4"],
        ["scan", "--dpkg-status", str(status), "--bogus"],
        ["versions", "compare", "--scheme", "deb", "1:1.0", "2.0"],
        ["cvss", "score", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"],
    )
    assert bad_distro.returncode == 2
    assert "error: unknown --distro 'plan9:4': use ID:RELEASE" in bad_distro.stderr
    assert bad_distro.stdout == ""
    assert unknown_option.returncode == 2
    assert "No such option: --bogus" in unknown_option.stderr
    assert unknown_option.stdout == ""
    # An epoch outranks any upstream version.
    assert (compared.returncode, compared.stdout) == (0, "1\n")
    assert scored.returncode == 0, scored.stderr
    assert "base score:          9.8 (Critical)" in scored.stdout

    # Nothing imported yet: the scanner says what to do.
    empty = run(env, "scan", "--dpkg-status", str(status), "--distro", "debian:11")
    assert empty.returncode == 2
    assert "patchwarden feeds import" in empty.stderr
