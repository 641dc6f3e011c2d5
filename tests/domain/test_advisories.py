"""Vulnerability ids as feeds spell them, whatever case a person typed."""

from __future__ import annotations

import pytest

from patchwarden.domain.advisories import canonical_vulnerability_id


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("cve-2021-4034", "CVE-2021-4034"),
        (" Cve-2024-123456 ", "CVE-2024-123456"),
        ("ghsa-JFH8-C2JP-5V3Q", "GHSA-jfh8-c2jp-5v3q"),
        ("PYSEC-2021-19", "PYSEC-2021-19"),  # other schemes: as typed, trimmed
        ("DSA-5059-1", "DSA-5059-1"),
        ("cve-2021", "cve-2021"),  # not a CVE id: left alone
    ],
)
def test_canonical_vulnerability_id(typed: str, canonical: str) -> None:
    assert canonical_vulnerability_id(typed) == canonical
