"""Vulnerability ids as feeds spell them, whatever case a person typed."""

from __future__ import annotations

import pytest

from patchwarden.domain.advisories import canonical_vulnerability_id, platform_of_os


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


@pytest.mark.parametrize(
    ("version_id", "platform"),
    [
        ("12", "debian:12"),
        ("12.5", "debian:12"),
        ("bookworm", "debian:12"),
        ("Bullseye", "debian:11"),
    ],
)
def test_a_debian_release_by_number_or_codename(version_id: str, platform: str) -> None:
    assert platform_of_os("debian", version_id) == platform
