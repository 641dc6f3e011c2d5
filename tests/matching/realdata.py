"""Advisory values built from the real shared data, converted by hand (minimal fields).

Deliberately independent of patchwarden.feeds: these tests are about matching, and
the conversion here is the simplest faithful one:

* DSA/DLA: one entry per (release, source package); a fixed version becomes the
  range ``introduced 0, fixed X``; ``<unfixed>``/``<end-of-life>`` become
  ``all_versions`` with the status as note; ``<not-affected>`` is left out.
* PyPI OSV: ECOSYSTEM ranges and the ``versions`` list as given (GIT ranges dropped,
  names as upstream spelled them, so the index's normalisation is exercised).
* Ubuntu OSV: ``Ubuntu:22.04:LTS`` -> ``ubuntu:22.04``; the binaries; the
  ``UBUNTU-CVE-...`` upstream ids become CVE aliases.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from patchwarden.domain.advisories import (
    DEBIAN_CODENAMES,
    Advisory,
    AffectedPackage,
    AffectedRange,
    RangeEvent,
)

# tests/matching/realdata.py -> repo root -> ../shared/data
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DSA = DATA / "debian" / "DSA_list.parsed.jsonl"
DLA = DATA / "debian" / "DLA_list.parsed.jsonl"
PYPI = DATA / "osv-pypi" / "pypa_advisory_database.jsonl"
USN = DATA / "ubuntu-osv" / "usn_sample.jsonl"


def require(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"shared test data not found: {path} (see DESIGN.md 'Real data for tests')")
    return path


@cache
def _records(path: Path) -> dict[str, dict[str, Any]]:
    records: dict[str, dict[str, Any]] = {}
    with require(path).open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            records[record["id"]] = record
    return records


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def debian_advisory(record: dict[str, Any]) -> Advisory:
    affected: list[AffectedPackage] = []
    for fix in record["fixed"]:
        platform = f"debian:{DEBIAN_CODENAMES[fix['release']]}"
        if "fixed_version" in fix:
            events = (RangeEvent("introduced", "0"), RangeEvent("fixed", fix["fixed_version"]))
            ranges = (AffectedRange("ECOSYSTEM", events),)
            affected.append(AffectedPackage(platform, fix["package"], ranges=ranges))
        elif fix["status"] in ("unfixed", "end-of-life"):
            affected.append(
                AffectedPackage(platform, fix["package"], all_versions=True, note=fix["status"])
            )
    return Advisory(
        record["id"],
        "debian-tracker",
        aliases=tuple(record["cves"]),
        title=record["title"] or None,
        affected=tuple(affected),
    )


def osv_advisory(record: dict[str, Any]) -> Advisory:
    """A PyPI or Ubuntu OSV record."""
    affected: list[AffectedPackage] = []
    for entry in record["affected"]:
        ecosystem = entry["package"]["ecosystem"]
        # "PyPI", or "Ubuntu:22.04:LTS"
        platform = "pypi" if ecosystem == "PyPI" else "ubuntu:" + ecosystem.split(":")[1]
        ranges = tuple(
            AffectedRange(
                "ECOSYSTEM",
                tuple(RangeEvent(kind, v) for event in r["events"] for kind, v in event.items()),
            )
            for r in entry.get("ranges", ())
            if r["type"] == "ECOSYSTEM"
        )
        binaries = tuple(
            b["binary_name"] for b in entry.get("ecosystem_specific", {}).get("binaries", ())
        )
        affected.append(
            AffectedPackage(
                platform,
                entry["package"]["name"],
                ranges=ranges,
                versions=tuple(entry.get("versions", ())),
                binaries=binaries,
            )
        )
    aliases = [*record.get("aliases", ())]
    aliases += [u.removeprefix("UBUNTU-") for u in record.get("upstream", ())]
    return Advisory(
        record["id"],
        "osv",
        aliases=tuple(aliases),
        details=record.get("details"),
        published=_when(record.get("published")),
        modified=_when(record.get("modified")),
        withdrawn=_when(record.get("withdrawn")),
        affected=tuple(affected),
    )


def dsa(*ids: str) -> list[Advisory]:
    records = _records(DSA)
    return [debian_advisory(records[i]) for i in ids]


def pysec(*ids: str) -> list[Advisory]:
    records = _records(PYPI)
    return [osv_advisory(records[i]) for i in ids]


def usn(*ids: str) -> list[Advisory]:
    records = _records(USN)
    return [osv_advisory(records[i]) for i in ids]


def dsa_for(package: str) -> list[Advisory]:
    """Every DSA naming ``package`` as a fixed source package, newest first."""
    return [
        debian_advisory(r)
        for r in _records(DSA).values()
        if any(f["package"] == package for f in r["fixed"])
    ]


@cache
def all_debian() -> tuple[Advisory, ...]:
    """Every DSA and DLA."""
    return tuple(debian_advisory(r) for path in (DSA, DLA) for r in _records(path).values())


@cache
def all_pypi() -> tuple[Advisory, ...]:
    return tuple(osv_advisory(r) for r in _records(PYPI).values())


@cache
def all_usn() -> tuple[Advisory, ...]:
    return tuple(osv_advisory(r) for r in _records(USN).values())


def versions_of(advisories: Iterable[Advisory]) -> dict[tuple[str, str], set[str]]:
    """Every version each (platform, name) mentions: range events and listed versions."""
    found: dict[tuple[str, str], set[str]] = {}
    for advisory in advisories:
        for entry in advisory.affected:
            bucket = found.setdefault((entry.platform, entry.name), set())
            bucket.update(entry.versions)
            for r in entry.ranges:
                bucket.update(e.version for e in r.events if e.version != "0")
    return found
