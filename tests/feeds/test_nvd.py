"""NVD CVE API 2.0 JSON, written exactly as the API and the 2.0 data feeds publish it."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from patchwarden.domain.advisories import CvssMetric, VulnerabilityRecord
from patchwarden.feeds import detect_format, read_path
from tests.feeds.conftest import Parse

V31 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
V2 = "AV:N/AC:L/Au:N/C:P/I:P/A:P"
V40 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"


def cve(cve_id: str = "CVE-2021-44228", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": cve_id,
        "sourceIdentifier": "security@apache.org",
        "published": "2021-12-10T10:15:09.143",
        "lastModified": "2024-04-03T17:15:26.860",
        "vulnStatus": "Modified",
        "cisaExploitAdd": "2021-12-10",
        "descriptions": [
            {"lang": "es", "value": "Apache Log4j2 ..."},
            {"lang": "en", "value": "Apache Log4j2 JNDI features do not protect ..."},
        ],
        "metrics": {
            "cvssMetricV40": [
                {
                    "source": "cna@example.org",
                    "type": "Secondary",
                    "cvssData": {"version": "4.0", "vectorString": V40, "baseScore": 9.3},
                }
            ],
            "cvssMetricV31": [
                {
                    "source": "nvd@nist.gov",
                    "type": "Primary",
                    "cvssData": {
                        "version": "3.1",
                        "vectorString": V31,
                        "baseScore": 10.0,
                        "baseSeverity": "CRITICAL",
                        "attackVector": "NETWORK",
                    },
                    "exploitabilityScore": 3.9,
                    "impactScore": 6.0,
                }
            ],
            "cvssMetricV2": [
                {
                    "source": "nvd@nist.gov",
                    "type": "Primary",
                    "cvssData": {"version": "2.0", "vectorString": V2, "baseScore": 9.3},
                    "baseSeverity": "HIGH",
                    "acInsufInfo": False,
                }
            ],
        },
        "weaknesses": [
            {
                "source": "nvd@nist.gov",
                "type": "Primary",
                "description": [{"lang": "en", "value": "CWE-917"}],
            },
            {
                "source": "security@apache.org",
                "type": "Secondary",
                "description": [
                    {"lang": "en", "value": "CWE-502"},
                    {"lang": "en", "value": "NVD-CWE-Other"},
                ],
            },
        ],
        "configurations": [{"nodes": []}],
        "references": [{"url": "https://logging.apache.org/log4j/2.x/security.html"}],
    }
    return base | fields


def response(*cves: dict[str, Any], start: int = 0, total: int | None = None) -> dict[str, Any]:
    return {
        "resultsPerPage": len(cves),
        "startIndex": start,
        "totalResults": len(cves) if total is None else total,
        "format": "NVD_CVE",
        "version": "2.0",
        "timestamp": "2024-08-01T12:00:00.000",
        "vulnerabilities": [{"cve": c} for c in cves],
    }


def test_one_cve(parse_text: Parse) -> None:
    parsed = parse_text("nvd", response(cve()))
    assert parsed.rejected == ()
    assert parsed.records == (
        VulnerabilityRecord(
            id="CVE-2021-44228",
            description="Apache Log4j2 JNDI features do not protect ...",
            published=datetime(2021, 12, 10, 10, 15, 9, 143000, tzinfo=UTC),
            modified=datetime(2024, 4, 3, 17, 15, 26, 860000, tzinfo=UTC),
            status="Modified",
            cvss=(
                CvssMetric("4.0", V40, 9.3, "cna@example.org", primary=False),
                CvssMetric("3.1", V31, 10.0, "nvd@nist.gov"),
                CvssMetric("2.0", V2, 9.3, "nvd@nist.gov"),
            ),
            cwes=("CWE-917", "CWE-502"),
        ),
    )
    assert parsed.notes == ("NVD CVE API 2.0 data of 2024-08-01T12:00:00.000: 1 CVEs",)


def test_a_page_with_no_results_is_a_valid_document(parse_text: Parse) -> None:
    # What the API answers to a lastModStartDate window in which nothing changed.
    parsed = parse_text("nvd", response())
    assert (parsed.records, parsed.rejected) == ((), ())
    assert parsed.notes == ("NVD CVE API 2.0 data of 2024-08-01T12:00:00.000: 0 CVEs",)


def test_rejected_cve_and_bad_entries(parse_text: Parse) -> None:
    rejected = cve(
        "CVE-2020-0001",
        vulnStatus="Rejected",
        descriptions=[{"lang": "en", "value": "** REJECT ** Not used."}],
        metrics={},
        weaknesses=[],
    )
    bad_vector = cve("CVE-2020-0002")
    bad_vector["metrics"]["cvssMetricV31"][0]["cvssData"]["vectorString"] = "CVSS:3.1/AV:X"
    doc = response(
        rejected, bad_vector, cve("CVE-20-1"), cve(published="soon"), start=2000, total=2004
    )
    doc["vulnerabilities"].append({"item": 1})
    parsed = parse_text("nvd", doc, name="page.json")
    ids = [r.id for r in parsed.records if isinstance(r, VulnerabilityRecord)]
    assert ids == ["CVE-2020-0001", "CVE-2020-0002"]
    first = parsed.records[0]
    assert isinstance(first, VulnerabilityRecord)
    assert (first.status, first.cvss, first.cwes) == ("Rejected", (), ())
    second = parsed.records[1]
    assert isinstance(second, VulnerabilityRecord)
    assert [m.version for m in second.cvss] == ["4.0", "2.0"]
    reasons = [(r.where, r.reason.split(":")[0]) for r in parsed.rejected]
    assert reasons == [
        (
            "page.json vulnerabilities[1] CVE-2020-0002 metrics.cvssMetricV31[0]",
            "invalid CVSS vector 'CVSS",
        ),
        ("page.json vulnerabilities[2] CVE-20-1", "id 'CVE-20-1' is not a CVE id (CVE-YYYY-NNNN)"),
        (
            "page.json vulnerabilities[3] CVE-2021-44228",
            "published 'soon' is not an ISO 8601 date-time",
        ),
        ("page.json vulnerabilities[4]", "no 'cve' object"),
    ]
    assert parsed.notes == (
        "NVD CVE API 2.0 data of 2024-08-01T12:00:00.000: 5 CVEs "
        "(results 2001-2005 of 2004: fetch the other pages too)",
    )


def test_data_feed_gzip(tmp_path: Path) -> None:
    import json

    path = tmp_path / "nvdcve-2.0-modified.json.gz"
    cves = [cve(f"CVE-2024-{i:05}") for i in range(1, 300)]
    path.write_bytes(gzip.compress(json.dumps(response(*cves)).encode()))
    assert detect_format(path) == "nvd"
    (parsed,) = read_path(path)
    assert len(parsed.records) == 299
    assert parsed.rejected == ()


def test_not_nvd(parse_text: Parse) -> None:
    doc = response(cve())
    doc["format"] = "MITRE"
    parsed = parse_text("nvd", doc, name="x")
    assert parsed.records == ()
    assert parsed.rejected[0].reason.startswith(
        'not an NVD CVE API 2.0 document: expected "format": "NVD_CVE"'
    )
