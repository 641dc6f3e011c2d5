"""The offline scanner over a real local advisory database: a written dpkg
status file against real DSAs (with real NVD, KEV and EPSS data for their
CVEs), a requirements file against real PyPA records, exit codes, SARIF."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.errors import InvalidInput
from patchwarden.scan.report import ScanRow
from patchwarden.services import feeds, scanning
from patchwarden.storage.db import make_session_factory
from tests.services.test_feeds import DSA_TEXT, KEV_PWNKIT, kev_catalogue, write_json

# NVD's record of CVE-2023-0286 (trimmed to what the importer reads).
NVD_OPENSSL = {
    "resultsPerPage": 1,
    "startIndex": 0,
    "totalResults": 1,
    "format": "NVD_CVE",
    "version": "2.0",
    "timestamp": "2024-08-01T12:00:00.000",
    "vulnerabilities": [
        {
            "cve": {
                "id": "CVE-2023-0286",
                "sourceIdentifier": "openssl-security@openssl.org",
                "published": "2023-02-08T20:15:24.267",
                "lastModified": "2024-02-04T09:15:09.113",
                "vulnStatus": "Modified",
                "descriptions": [
                    {
                        "lang": "en",
                        "value": "There is a type confusion vulnerability relating to X.400 "
                        "address processing inside an X.509 GeneralName.",
                    }
                ],
                "metrics": {
                    "cvssMetricV31": [
                        {
                            "source": "nvd@nist.gov",
                            "type": "Primary",
                            "cvssData": {
                                "version": "3.1",
                                "vectorString": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:H",
                                "baseScore": 7.4,
                                "baseSeverity": "HIGH",
                            },
                        }
                    ]
                },
                "weaknesses": [
                    {
                        "source": "nvd@nist.gov",
                        "type": "Primary",
                        "description": [{"lang": "en", "value": "CWE-843"}],
                    }
                ],
            }
        }
    ],
}
EPSS = (
    "#model_version:v2025.03.14,score_date:2025-08-01T00:00:00+0000\n"
    "cve,epss,percentile\n"
    "CVE-2023-0286,0.5,0.98\n"
)
DPKG_STATUS = """\
Package: libssl1.1
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 4124
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 1.1.1n-0+deb11u1
Depends: libc6 (>= 2.25)
Description: Secure Sockets Layer toolkit - shared libraries

Package: policykit-1
Status: install ok installed
Architecture: amd64
Version: 0.105-31
Description: framework for managing administrative policies and privileges

Package: bash
Essential: yes
Status: install ok installed
Architecture: amd64
Version: 5.1-2+deb11u1
Description: GNU Bourne Again SHell

Package: sudo
Status: deinstall ok config-files
Architecture: amd64
Version: 1.9.5p2-3
Description: Provide limited super user privileges to specific users
"""
CONTEXT = 0.8 * 0.8 * 0.8  # scans assume tier 3, internal network, internal data
OPENSSL_CVES = ("CVE-2022-2097", "CVE-2022-4304", "CVE-2022-4450", "CVE-2023-0215", "CVE-2023-0286")
PYPA_IDS = ("PYSEC-2021-66", "PYSEC-2023-192", "PYSEC-2023-212", "PYSEC-2023-74")


def load_debian(factory: sessionmaker[Session], tmp_path: Path) -> None:
    (tmp_path / "DSA_list.txt").write_text(DSA_TEXT)
    write_json(tmp_path / "kev.json", kev_catalogue(KEV_PWNKIT))
    write_json(tmp_path / "nvdcve.json", NVD_OPENSSL)
    (tmp_path / "epss.csv").write_text(EPSS)
    for name in ("DSA_list.txt", "kev.json", "nvdcve.json", "epss.csv"):
        summary = feeds.import_feed(factory, tmp_path / name, None, "test")
        assert summary.rejected == 0, summary.rejections


def load_pypa(factory: sessionmaker[Session], tmp_path: Path, shared_data: Path) -> None:
    """A few real records of the PyPA advisory database, copied line by line."""
    lines = (shared_data / "osv-pypi" / "pypa_advisory_database.jsonl").read_text().splitlines()
    picked = [line for line in lines if json.loads(line)["id"] in PYPA_IDS]
    assert len(picked) == len(PYPA_IDS)
    path = tmp_path / "pypa.jsonl"
    path.write_text("\n".join(picked) + "\n")
    assert feeds.import_feed(factory, path, None, "test").created == len(PYPA_IDS)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def scan(factory: sessionmaker[Session], **options: Any) -> scanning.ScanResult:
    return scanning.scan_files(factory, tool_version="0.1.0", **options)


@pytest.fixture
def debian_db(sqlite_engine: Engine, tmp_path: Path) -> sessionmaker[Session]:
    factory = make_session_factory(sqlite_engine)
    load_debian(factory, tmp_path)
    return factory


def test_dpkg_status_rows(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    load_debian(session_factory, tmp_path)
    status = write(tmp_path, "status", DPKG_STATUS)
    result = scan(session_factory, dpkg_status=status, distro="debian:11", fmt="json")
    assert result.exit_code == 1
    assert result.skipped == []
    # One row per package and vulnerability, each with its own scores.
    by_vuln = {row.vulnerability_ids[0]: row for row in result.rows}
    assert [(r.package, r.installed_version) for r in result.rows] == [
        ("libssl1.1", "1.1.1n-0+deb11u1")
    ] * (1 + len(OPENSSL_CVES)) + [("policykit-1", "0.105-31")]
    assert by_vuln["CVE-2022-2068"] == ScanRow(
        package="libssl1.1",
        installed_version="1.1.1n-0+deb11u1",
        fixed_version="1.1.1n-0+deb11u3",
        vulnerability_ids=("CVE-2022-2068",),
        advisory_ids=("DSA-5169-1",),
        severity=None,
        cvss=None,
        epss=None,
        kev=False,
        risk=round(5.5 * 6 * CONTEXT, 1),
    )
    # NVD scored CVE-2023-0286 7.4 (high) and EPSS gives it 0.5; the others are unscored.
    for cve in OPENSSL_CVES:
        assert by_vuln[cve].fixed_version == "1.1.1n-0+deb11u4"
        assert by_vuln[cve].advisory_ids == ("DSA-5343-1",)
        if cve != "CVE-2023-0286":
            assert (by_vuln[cve].severity, by_vuln[cve].cvss) == (None, None)
    assert by_vuln["CVE-2023-0286"] == ScanRow(
        package="libssl1.1",
        installed_version="1.1.1n-0+deb11u1",
        fixed_version="1.1.1n-0+deb11u4",
        vulnerability_ids=("CVE-2023-0286",),
        advisory_ids=("DSA-5343-1",),
        severity="high",
        cvss=7.4,
        epss=0.5,
        kev=False,
        risk=round((7.4 * 6 + 0.5 * 20) * CONTEXT, 1),
    )
    assert by_vuln["CVE-2021-4034"] == ScanRow(
        package="policykit-1",
        installed_version="0.105-31",
        fixed_version="0.105-31+deb11u1",
        vulnerability_ids=("CVE-2021-4034",),
        advisory_ids=("DSA-5059-1",),
        severity=None,
        cvss=None,
        epss=None,
        kev=True,
        risk=round((5.5 * 6 + 25) * CONTEXT, 1),
    )
    assert isinstance(result.rendered, str)
    assert json.loads(result.rendered)[-1] == {
        "package": "policykit-1",
        "installed_version": "0.105-31",
        "fixed_version": "0.105-31+deb11u1",
        "vulnerability_ids": ["CVE-2021-4034"],
        "advisory_ids": ["DSA-5059-1"],
        "severity": None,
        "cvss": None,
        "epss": None,
        "kev": True,
        "risk": 29.7,
    }


def test_clean_packages_exit_zero(debian_db: sessionmaker[Session], tmp_path: Path) -> None:
    status = write(
        tmp_path,
        "status",
        DPKG_STATUS.replace("1.1.1n-0+deb11u1", "1.1.1n-0+deb11u4").replace(
            "0.105-31\n", "0.105-31+deb11u1\n"
        ),
    )
    result = scan(debian_db, dpkg_status=status, distro="debian:11", fmt="json")
    assert (result.rows, result.exit_code) == ([], 0)
    assert result.rendered == "[]"
    # The same packages on a release none of the advisories covers: not clean,
    # refused (the scan could not have found anything).
    vulnerable = write(tmp_path, "status-old", DPKG_STATUS)
    with pytest.raises(InvalidInput, match="no advisories for debian:12"):
        scan(debian_db, dpkg_status=vulnerable, distro="debian:12")


def test_a_debian_codename_names_its_release(
    debian_db: sessionmaker[Session], tmp_path: Path
) -> None:
    status = write(tmp_path, "status", DPKG_STATUS)
    by_number = scan(debian_db, dpkg_status=status, distro="debian:11", fmt="json")
    by_name = scan(debian_db, dpkg_status=status, distro="debian:Bullseye", fmt="json")
    assert by_name.rows == by_number.rows and by_number.exit_code == 1


def test_skipped_records_are_reported(debian_db: sessionmaker[Session], tmp_path: Path) -> None:
    status = write(
        tmp_path,
        "status",
        DPKG_STATUS + "\nPackage: broken\nStatus: install ok installed\nArchitecture: amd64\n",
    )
    result = scan(debian_db, dpkg_status=status, distro="debian:11")
    assert len(result.rows) == 2 + len(OPENSSL_CVES)
    assert len(result.skipped) == 1
    line, reason = result.skipped[0]
    assert reason == "broken: installed but no Version (truncated?)"
    assert line == DPKG_STATUS.count("\n") + 2
    assert isinstance(result.rendered, Table)
    assert result.rendered.row_count == 2 + len(OPENSSL_CVES)
    assert [c.header for c in result.rendered.columns][:4] == [
        "Package",
        "Installed",
        "Fixed in",
        "Vulnerabilities",
    ]


@pytest.mark.parametrize(
    ("pins", "fail_on", "exit_code"),
    [
        # urllib3 1.26.15: CVE-2023-43804 (8.1, high) and CVE-2023-45803 (4.2, medium).
        ("urllib3==1.26.15\n", None, 1),
        ("urllib3==1.26.15\n", "critical", 0),
        ("urllib3==1.26.15\n", "high", 1),
        # 1.26.17: only CVE-2023-45803 is left.
        ("urllib3==1.26.17\n", "high", 0),
        ("urllib3==1.26.17\n", "medium", 1),
        ("urllib3==1.26.17\n", "low", 1),
        # requests 2.28.0: CVE-2023-32681, which nobody scored: fails at every level.
        ("requests==2.28.0\n", "critical", 1),
        ("urllib3==1.26.18\njinja2==3.1.2\n", None, 0),
        ("urllib3==1.26.18\njinja2==3.1.2\n", "low", 0),
    ],
)
def test_fail_on_thresholds(
    sqlite_engine: Engine,
    tmp_path: Path,
    shared_data: Path,
    pins: str,
    fail_on: str | None,
    exit_code: int,
) -> None:
    factory = make_session_factory(sqlite_engine)
    load_pypa(factory, tmp_path, shared_data)
    requirements = write(tmp_path, "requirements.txt", pins)
    assert scan(factory, requirements=requirements, fail_on=fail_on).exit_code == exit_code


def test_requirements_against_real_pypa_records(
    sqlite_engine: Engine, tmp_path: Path, shared_data: Path
) -> None:
    factory = make_session_factory(sqlite_engine)
    load_pypa(factory, tmp_path, shared_data)
    requirements = write(
        tmp_path,
        "requirements.txt",
        "# pinned by pip-compile\n"
        "Jinja2==3.1.2\n"
        "requests==2.28.0 \\\n"
        "    --hash=sha256:7c5599b102feddaa661c826c56ab4fee28bfd17f5abca1ebbe3e7f19d7c97983\n"
        "urllib3==1.26.15\n"
        "flask>=2.0\n",
    )
    result = scan(factory, requirements=requirements, fmt="json")
    assert [
        (r.package, r.installed_version, r.fixed_version, r.vulnerability_ids, r.advisory_ids)
        for r in result.rows
    ] == [
        ("requests", "2.28.0", "2.31.0", ("CVE-2023-32681",), ("PYSEC-2023-74",)),
        ("urllib3", "1.26.15", "1.26.17", ("CVE-2023-43804",), ("PYSEC-2023-192",)),
        ("urllib3", "1.26.15", "1.26.18", ("CVE-2023-45803",), ("PYSEC-2023-212",)),
    ]
    assert [(r.severity, r.cvss) for r in result.rows] == [
        (None, None),
        ("high", 8.1),
        ("medium", 4.2),
    ]
    assert [r.risk for r in result.rows] == [
        round(5.5 * 6 * CONTEXT, 1),
        round(8.1 * 6 * CONTEXT, 1),
        round(4.2 * 6 * CONTEXT, 1),
    ]
    assert result.exit_code == 1
    assert [reason for _, reason in result.skipped] == [
        "flask: not pinned to one version (>=2.0); pin with =="
    ]


def test_sarif_one_result_per_package_and_vulnerability(
    debian_db: sessionmaker[Session], tmp_path: Path
) -> None:
    status = write(tmp_path, "status", DPKG_STATUS)
    result = scan(debian_db, dpkg_status=status, distro="debian:11", fmt="sarif")
    assert isinstance(result.rendered, str)
    log = json.loads(result.rendered)
    assert log["version"] == "2.1.0"
    assert log["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    (run,) = log["runs"]
    assert run["tool"]["driver"]["name"] == "patchwarden"
    assert run["tool"]["driver"]["version"] == "0.1.0"
    results = run["results"]
    assert sorted((r["properties"]["package"], r["ruleId"]) for r in results) == sorted(
        [("libssl1.1", "CVE-2022-2068"), ("policykit-1", "CVE-2021-4034")]
        + [("libssl1.1", cve) for cve in OPENSSL_CVES]
    )
    rules = run["tool"]["driver"]["rules"]
    assert len(rules) == 7
    for item in results:
        assert rules[item["ruleIndex"]]["id"] == item["ruleId"]
        assert item["locations"] == [
            {"physicalLocation": {"artifactLocation": {"uri": status.as_uri()}}}
        ]
    pwnkit = next(r for r in results if r["ruleId"] == "CVE-2021-4034")
    assert pwnkit["message"]["text"] == (
        "policykit-1 0.105-31 is affected by CVE-2021-4034: upgrade to 0.105-31+deb11u1. "
        "Advisories: DSA-5059-1."
    )
    assert pwnkit["properties"]["kev"] is True
    assert pwnkit["level"] == "note"  # no severity known
    openssl = next(r for r in results if r["ruleId"] == "CVE-2023-0286")
    assert openssl["level"] == "error"
    assert (
        next(r for r in rules if r["id"] == "CVE-2023-0286")["properties"]["security-severity"]
        == "7.4"
    )


def test_sarif_does_not_lend_one_cves_score_to_another(
    debian_db: sessionmaker[Session], tmp_path: Path
) -> None:
    status = write(tmp_path, "status", DPKG_STATUS)
    result = scan(debian_db, dpkg_status=status, distro="debian:11", fmt="sarif")
    assert isinstance(result.rendered, str)
    run = json.loads(result.rendered)["runs"][0]
    unscored = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "CVE-2022-2097")
    assert "security-severity" not in unscored["properties"]


def test_unscored_vulnerabilities_fail_every_threshold(
    debian_db: sessionmaker[Session], tmp_path: Path
) -> None:
    libssl_only = DPKG_STATUS.split("\n\n")[0] + "\n"
    status = write(tmp_path, "status", libssl_only.replace("1.1.1n-0+deb11u1", "1.1.1n-0+deb11u3"))
    result = scan(debian_db, dpkg_status=status, distro="debian:11", fail_on="critical")
    assert [row.severity for row in result.rows].count("high") == 1
    assert [row.severity for row in result.rows].count(None) == 4  # never scored
    assert result.exit_code == 1


def test_empty_advisory_database_says_to_import(sqlite_engine: Engine, tmp_path: Path) -> None:
    factory = make_session_factory(sqlite_engine)
    # KEV data alone is no advisory.
    write_json(tmp_path / "kev.json", kev_catalogue(KEV_PWNKIT))
    feeds.import_feed(factory, tmp_path / "kev.json", None, "test")
    status = write(tmp_path, "status", DPKG_STATUS)
    with pytest.raises(InvalidInput, match="import advisories first") as caught:
        scan(factory, dpkg_status=status, distro="debian:11")
    assert "patchwarden feeds import" in str(caught.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"dpkg_status": "status", "requirements": "requirements.txt", "distro": "debian:11"},
            "give exactly one of --dpkg-status, --rpm-qa, --requirements",
        ),
        ({}, "give exactly one of --dpkg-status, --rpm-qa, --requirements"),
        (
            {"dpkg_status": "status", "distro": "plan9:4"},
            "unknown --distro 'plan9:4': use ID:RELEASE",
        ),
        ({"dpkg_status": "status", "distro": "debian"}, "unknown --distro 'debian'"),
        ({"dpkg_status": "status"}, "--distro ID:RELEASE is required with --dpkg-status"),
        ({"dpkg_status": "binary", "distro": "debian:11"}, "binary is not UTF-8 text"),
        ({"dpkg_status": "nul", "distro": "debian:11"}, "contains NUL bytes"),
        ({"requirements": "missing.txt"}, "missing.txt does not exist"),
        (
            {"requirements": "requirements.txt", "fmt": "xml"},
            "--format must be one of table, json, sarif",
        ),
        (
            {"requirements": "requirements.txt", "fail_on": "severe"},
            "--fail-on must be one of low, medium, high, critical",
        ),
        (
            {"dpkg_status": "requirements.txt", "distro": "debian:11"},
            "not a dpkg status file",
        ),
        # Scans that could find nothing must not pass as clean.
        (
            {"dpkg_status": "status", "distro": "debian:14"},
            "the local advisory database has no advisories for debian:14",
        ),
        ({"dpkg_status": "status", "distro": "fedora:40"}, "deb packages cannot be matched"),
        ({"requirements": "requirements.txt"}, "has no advisories for pypi"),
    ],
)
def test_bad_input(
    debian_db: sessionmaker[Session], tmp_path: Path, options: dict[str, str], message: str
) -> None:
    write(tmp_path, "status", DPKG_STATUS)
    write(tmp_path, "requirements.txt", "urllib3==1.26.15\n")
    (tmp_path / "binary").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "nul").write_text("Package: x\x00\n")
    paths = {"dpkg_status", "requirements"}
    resolved: dict[str, Any] = {
        key: tmp_path / value if key in paths else value for key, value in options.items()
    }
    with pytest.raises(InvalidInput) as caught:
        scan(debian_db, **resolved)
    assert message in str(caught.value)


ROCKY_OPENSSL = {
    "id": "RLSA-2024:0000",
    "modified": "2024-05-01T00:00:00Z",
    "published": "2024-05-01T00:00:00Z",
    "summary": "openssl security update",
    "aliases": ["CVE-2099-0101"],
    "affected": [
        {
            "package": {"ecosystem": "Rocky Linux:9", "name": "openssl"},
            "ranges": [
                {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:3.0.7-28.el9"}]}
            ],
        }
    ],
}


def test_plain_rpm_lines_warn_of_hidden_epochs(sqlite_engine: Engine, tmp_path: Path) -> None:
    """Plain rpm -qa shows no epoch: the finding against a fix with one is kept
    (it may be real) but said to be doubtful, naming the query format to use."""
    factory = make_session_factory(sqlite_engine)
    write_json(tmp_path / "rlsa.json", ROCKY_OPENSSL)
    feeds.import_feed(factory, tmp_path / "rlsa.json", None, "test")
    plain = write(tmp_path, "rpm-plain", "openssl-3.0.7-29.el9.x86_64\n")
    result = scan(factory, rpm_qa=plain, distro="rocky:9", fmt="json")
    assert [row.fixed_version for row in result.rows] == ["1:3.0.7-28.el9"]
    (warning,) = result.warnings
    assert "openssl 3.0.7-29.el9 (fix 1:3.0.7-28.el9)" in warning
    assert "rpm -qa --qf '%{NAME}\\t%{EPOCHNUM}:" in warning
    # With the query format the epoch is known: clean, and nothing to warn of.
    exact = write(
        tmp_path, "rpm-qf", "openssl\t1:3.0.7-29.el9\tx86_64\topenssl-3.0.7-29.el9.src.rpm\n"
    )
    checked = scan(factory, rpm_qa=exact, distro="rocky:9", fmt="json")
    assert (checked.rows, checked.warnings) == ([], [])
