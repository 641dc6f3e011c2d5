"""Real advisory data for the policy tests, parsed once per session with the
project's own feed parsers (skipped with a reason when the shared data is absent)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pytest

from patchwarden.domain.advisories import Advisory, KevEntry
from patchwarden.feeds import read_path
from tests.conftest import SHARED_DATA


@dataclass(frozen=True)
class RealData:
    advisories: dict[str, Advisory]  # DSA and DLA ids
    kev: dict[str, KevEntry]  # by CVE id
    cvss: dict[str, float]  # CVSS 3.1 vector -> official base score


@pytest.fixture(scope="session")
def real_data() -> RealData:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA}")
    advisories: dict[str, Advisory] = {}
    for name in ("DSA_list.txt", "DLA_list.txt"):
        for parsed in read_path(SHARED_DATA / "debian" / name, "debian-tracker"):
            assert not parsed.rejected, parsed.rejected[:3]
            advisories.update({r.id: r for r in parsed.records if isinstance(r, Advisory)})
    kev: dict[str, KevEntry] = {}
    kev_file = SHARED_DATA / "kev" / "known_exploited_vulnerabilities.json"
    for parsed in read_path(kev_file, "kev"):
        kev.update({r.cve_id: r for r in parsed.records if isinstance(r, KevEntry)})
    cvss: dict[str, float] = {}
    with Path(SHARED_DATA / "cvss" / "cvss_vectors_scores.tsv").open(newline="") as stream:
        for row in csv.DictReader(stream, delimiter="\t", quoting=csv.QUOTE_NONE):
            if row["cvss_version"] == "3.1":
                cvss.setdefault(row["vector"], float(row["score"]))
    return RealData(advisories, kev, cvss)
