"""Scan outputs: JSON, SARIF 2.1.0, the table and the exit code."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import PurePosixPath
from typing import Any

import pytest
from rich.console import Console

from patchwarden.errors import InvalidInput
from patchwarden.scan import ScanRow, exit_code, severity_rank, to_json, to_sarif, to_table
from patchwarden.scan.report import artifact_uri

ROWS = [
    ScanRow(
        package="libssl1.1",
        installed_version="1.1.1n-0+deb11u3",
        fixed_version="1.1.1n-0+deb11u4",
        vulnerability_ids=("CVE-2023-0286", "CVE-2023-0215"),
        advisory_ids=("DSA-5343-1",),
        severity="high",
        cvss=7.4,
        epss=0.0123,
        kev=False,
        risk=61.0,
    ),
    ScanRow(
        package="phpmyadmin",
        installed_version="2.2.6-1",
        fixed_version=None,
        vulnerability_ids=("CVE-2005-2869",),
        advisory_ids=("DSA-880-1",),
    ),
    ScanRow(
        package="linux-image-5.10.0-20-amd64",
        installed_version="5.10.158-2",
        fixed_version="5.10.162-1",
        vulnerability_ids=("CVE-2023-0266",),
        advisory_ids=("DSA-5324-1",),
        severity="critical",
        cvss=7.9,
        kev=True,
    ),
    ScanRow(
        package="jw-util",
        installed_version="2.2",
        fixed_version="2.3",
        vulnerability_ids=("CVE-2020-13388",),
        advisory_ids=("PYSEC-2020-341",),
        severity="MODERATE",
    ),
    ScanRow(  # the same vulnerability from a second advisory row: one SARIF result
        package="libssl1.1",
        installed_version="1.1.1n-0+deb11u3",
        fixed_version="1.1.1n-0+deb11u4",
        vulnerability_ids=("CVE-2023-0286",),
        advisory_ids=("DSA-5343-2",),
        severity="high",
        cvss=7.4,
    ),
]

KEYS = [
    "package",
    "installed_version",
    "fixed_version",
    "vulnerability_ids",
    "advisory_ids",
    "severity",
    "cvss",
    "epss",
    "kev",
    "risk",
]


def test_json_rows_have_exactly_the_fields() -> None:
    data = json.loads(to_json(ROWS))
    assert [list(row) for row in data] == [KEYS] * len(ROWS)
    assert data[0]["vulnerability_ids"] == ["CVE-2023-0286", "CVE-2023-0215"]
    assert data[1] == {
        "package": "phpmyadmin",
        "installed_version": "2.2.6-1",
        "fixed_version": None,
        "vulnerability_ids": ["CVE-2005-2869"],
        "advisory_ids": ["DSA-880-1"],
        "severity": None,
        "cvss": None,
        "epss": None,
        "kev": None,
        "risk": None,
    }
    assert json.loads(to_json([])) == []


def _check_required(log: dict[str, Any]) -> None:
    """The properties the SARIF 2.1.0 schema requires, for the objects we write."""
    assert log["version"] == "2.1.0" and isinstance(log["runs"], list)
    for run in log["runs"]:
        driver = run["tool"]["driver"]
        assert isinstance(driver["name"], str)
        ids = [rule["id"] for rule in driver["rules"]]
        assert len(ids) == len(set(ids))  # rules: uniqueItems
        for rule in driver["rules"]:
            assert isinstance(rule["shortDescription"]["text"], str)
            assert rule["defaultConfiguration"]["level"] in ("none", "note", "warning", "error")
        for result in run["results"]:
            assert isinstance(result["message"]["text"], str) and result["message"]["text"]
            assert result["level"] in ("none", "note", "warning", "error")
            assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
            for location in result.get("locations", []):
                assert isinstance(location["physicalLocation"]["artifactLocation"]["uri"], str)


def test_sarif_structure() -> None:
    log = json.loads(to_sarif(ROWS, "0.1.0", artifact_uri="requirements.txt"))
    _check_required(log)
    [run] = log["runs"]
    assert run["tool"]["driver"]["name"] == "patchwarden"
    assert run["tool"]["driver"]["version"] == "0.1.0"
    rules = {rule["id"]: rule for rule in run["tool"]["driver"]["rules"]}
    assert list(rules) == [
        "CVE-2023-0286",
        "CVE-2023-0215",
        "CVE-2005-2869",
        "CVE-2023-0266",
        "CVE-2020-13388",
    ]
    assert rules["CVE-2023-0286"]["helpUri"] == "https://nvd.nist.gov/vuln/detail/CVE-2023-0286"
    assert rules["CVE-2023-0266"]["properties"]["security-severity"] == "7.9"
    assert "security-severity" not in rules["CVE-2005-2869"]["properties"]
    results = {(r["properties"]["package"], r["ruleId"]): r for r in run["results"]}
    assert len(results) == len(run["results"]) == 5  # the duplicate (package, CVE) merged
    merged = results[("libssl1.1", "CVE-2023-0286")]
    assert merged["properties"]["advisoryIds"] == ["DSA-5343-1", "DSA-5343-2"]
    assert merged["properties"]["fixedVersion"] == "1.1.1n-0+deb11u4"
    assert merged["properties"]["epss"] == 0.0123 and merged["properties"]["kev"] is False
    assert "upgrade to 1.1.1n-0+deb11u4" in merged["message"]["text"]
    levels = {key: r["level"] for key, r in results.items()}
    assert levels == {
        ("libssl1.1", "CVE-2023-0286"): "error",  # high
        ("libssl1.1", "CVE-2023-0215"): "error",
        ("phpmyadmin", "CVE-2005-2869"): "note",  # unknown
        ("linux-image-5.10.0-20-amd64", "CVE-2023-0266"): "error",  # critical
        ("jw-util", "CVE-2020-13388"): "warning",  # "MODERATE" = medium
    }
    unfixed = results[("phpmyadmin", "CVE-2005-2869")]
    assert "no fixed version is known" in unfixed["message"]["text"]
    assert unfixed["locations"] == [
        {"physicalLocation": {"artifactLocation": {"uri": "requirements.txt"}}}
    ]


def test_sarif_without_location_or_rows() -> None:
    log = json.loads(to_sarif(ROWS[:1], "0.1.0"))
    _check_required(log)
    assert all("locations" not in r for r in log["runs"][0]["results"])
    empty = json.loads(to_sarif([], "0.1.0"))
    _check_required(empty)
    assert empty["runs"][0]["results"] == [] and empty["runs"][0]["tool"]["driver"]["rules"] == []


def test_sarif_low_severity_is_a_note() -> None:
    row = ScanRow("demo", "1.0", "1.1", ("CVE-1",), ("A-1",), severity="low")
    [result] = json.loads(to_sarif([row], "0"))["runs"][0]["results"]
    assert result["level"] == "note"


def test_table_renders_every_row() -> None:
    console = Console(file=StringIO(), width=250, color_system=None)
    console.print(to_table(ROWS))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    for expected in ("libssl1.1", "1.1.1n-0+deb11u4", "CVE-2023-0286, CVE-2023-0215", "7.4"):
        assert expected in text
    assert "1.2%" in text  # EPSS 0.0123
    assert "no fix" in text and "yes" in text and "61" in text


def test_severity_rank() -> None:
    assert [severity_rank(s) for s in ("none", "LOW", "Medium", "high", "critical")] == [
        0,
        1,
        2,
        3,
        4,
    ]
    assert severity_rank("moderate") == 2 and severity_rank("important") == 3
    assert severity_rank("negligible") == 1
    assert severity_rank(None) is None and severity_rank("bogus") is None


def _row(severity: str | None) -> ScanRow:
    return ScanRow("demo", "1.0", None, ("CVE-1",), ("A-1",), severity=severity)


@pytest.mark.parametrize(
    ("severities", "fail_on", "expected"),
    [
        ([], None, 0),  # clean
        (["low"], None, 1),  # no threshold: any finding fails
        ([], "low", 0),
        (["low", "medium"], "high", 0),
        (["low", "high"], "high", 1),
        (["critical"], "high", 1),
        (["medium"], "medium", 1),
        (["MODERATE"], "medium", 1),
        (["low"], "critical", 0),
        ([None], "critical", 1),  # unknown severity counts as critical
        (["unheard-of"], "critical", 1),
        (["none"], "low", 0),
    ],
)
def test_exit_code(severities: list[str | None], fail_on: str | None, expected: int) -> None:
    assert exit_code([_row(s) for s in severities], fail_on) == expected


def test_exit_code_rejects_unknown_threshold() -> None:
    with pytest.raises(InvalidInput, match="valid: none, low, medium, high, critical"):
        exit_code([], "severe")


@pytest.mark.parametrize(
    ("path", "uri"),
    [
        ("requirements.txt", "requirements.txt"),
        ("locks/my status", "locks/my%20status"),
        ("/tmp/scans/my status#1", "file:///tmp/scans/my%20status%231"),
    ],
)
def test_artifact_uris_are_uri_references(path: str, uri: str) -> None:
    assert artifact_uri(PurePosixPath(path)) == uri
