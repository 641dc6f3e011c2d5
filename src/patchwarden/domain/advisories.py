"""Advisory-feed values: what importers produce and matching consumes.

A *platform* says where an affected-package entry applies and so which
installed packages it is compared with: "debian:12", "ubuntu:22.04",
"alpine:3.11", "rhel:9" for distributions (their advisories name *source*
packages), "pypi" and "npm" for language ecosystems. `platform_of_os` maps an
asset's os-release to its platform.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

RangeEventKind = Literal["introduced", "fixed", "last_affected", "limit"]

# Version scheme of each platform family (see patchwarden.versions).
PLATFORM_SCHEMES = {
    "debian": "deb",
    "ubuntu": "deb",
    "alpine": "apk",
    "rhel": "rpm",
    "rocky": "rpm",
    "almalinux": "rpm",
    "fedora": "rpm",
    "opensuse": "rpm",
    "sles": "rpm",
    "pypi": "pep440",
    "npm": "semver",
}

# Debian advisories name releases by codename.
DEBIAN_CODENAMES = {
    "woody": "3.0",
    "sarge": "3.1",
    "etch": "4",
    "lenny": "5",
    "squeeze": "6",
    "wheezy": "7",
    "jessie": "8",
    "stretch": "9",
    "buster": "10",
    "bullseye": "11",
    "bookworm": "12",
    "trixie": "13",
    "forky": "14",
}


_CVE_ID = re.compile(r"cve-\d{4}-\d{4,}", re.IGNORECASE)
_GHSA_ID = re.compile(r"ghsa(?:-[23456789cfghjmpqrvwx]{4}){3}", re.IGNORECASE)


def canonical_vulnerability_id(text: str) -> str:
    """A vulnerability id as feeds spell it, whatever case a person typed:
    CVE-2021-4034 (upper case), GHSA-jfh8-c2jp-5v3q (prefix upper, rest lower)."""
    stripped = text.strip()
    if _CVE_ID.fullmatch(stripped):
        return stripped.upper()
    if _GHSA_ID.fullmatch(stripped):
        return "GHSA" + stripped[4:].lower()
    return stripped


def scheme_of_platform(platform: str) -> str:
    """The version scheme for a platform ("debian:12" -> "deb"); KeyError if unknown."""
    return PLATFORM_SCHEMES[platform.split(":", 1)[0]]


def platform_of_os(os_id: str | None, version_id: str | None) -> str | None:
    """The platform of an asset from os-release ID and VERSION_ID, or None.

    Debian uses its major version ("12"), Alpine its branch ("3.11" from
    "3.11.6"), Ubuntu its release ("22.04"), RHEL-likes their major ("9").
    """
    if not os_id or not version_id:
        return None
    os_id = os_id.lower()
    if os_id == "debian":  # a codename names its release: bookworm is 12
        version_id = DEBIAN_CODENAMES.get(version_id.lower(), version_id)
    parts = version_id.split(".")
    if os_id == "debian":  # "12" from "12.5"; releases before 4 were "3.0", "3.1"
        return f"debian:{parts[0]}" if parts[0] != "3" else f"debian:{'.'.join(parts[:2])}"
    if os_id == "ubuntu":
        return f"ubuntu:{'.'.join(parts[:2])}"
    if os_id == "alpine":
        return f"alpine:{'.'.join(parts[:2])}"
    if os_id in {"rhel", "rocky", "almalinux", "centos"}:
        return f"rhel:{parts[0]}"
    if os_id in PLATFORM_SCHEMES:
        return f"{os_id}:{version_id}"
    return None


@dataclass(frozen=True)
class RangeEvent:
    kind: RangeEventKind
    version: str


@dataclass(frozen=True)
class AffectedRange:
    """One OSV range: events in the order given (introduced, fixed, last_affected, limit).

    `type` is "ECOSYSTEM" (the platform's own version order) or "SEMVER".
    """

    type: Literal["ECOSYSTEM", "SEMVER"]
    events: tuple[RangeEvent, ...]


@dataclass(frozen=True)
class AffectedPackage:
    """Which versions of one package on one platform an advisory covers.

    A version is affected when it falls in any range or is listed in
    `versions` (OSV semantics). An entry with no ranges and no versions means
    "all versions" only when `all_versions` is set (e.g. Debian `<unfixed>`).
    """

    platform: str
    name: str  # source package for distributions; PEP 503-normalised for PyPI
    ranges: tuple[AffectedRange, ...] = ()
    versions: tuple[str, ...] = ()
    all_versions: bool = False
    binaries: tuple[str, ...] = ()  # binary packages built from `name`, when the feed says
    note: str | None = None  # e.g. "end-of-life": affected and no fix will come


@dataclass(frozen=True)
class CvssMetric:
    version: str  # "2.0", "3.0", "3.1", "4.0"
    vector: str
    base_score: float | None = None
    source: str | None = None  # who scored it (NVD, a CNA …)
    primary: bool = True


@dataclass(frozen=True)
class Advisory:
    """A published fix record: OSV record, DSA/DLA, USN, Alpine secfix …"""

    id: str
    source: str  # feed name: "osv", "debian-tracker", "alpine-secdb" …
    aliases: tuple[str, ...] = ()  # CVE ids and other ids of the same flaw
    title: str | None = None
    details: str | None = None
    published: datetime | None = None
    modified: datetime | None = None
    withdrawn: datetime | None = None
    severity: tuple[CvssMetric, ...] = ()
    affected: tuple[AffectedPackage, ...] = ()
    references: tuple[str, ...] = ()
    # The distribution's own rating ("medium": Ubuntu's priority, Debian's
    # urgency): a vulnerability's severity until a CVSS score is known.
    rating: str | None = None

    @property
    def vulnerability_ids(self) -> tuple[str, ...]:
        """The ids findings are keyed on: CVE aliases, else the advisory's own id."""
        cves = tuple(a for a in self.aliases if a.startswith("CVE-"))
        return cves or (self.id,)


@dataclass(frozen=True)
class VulnerabilityRecord:
    """A CVE as NVD describes it (CVE API 2.0)."""

    id: str
    description: str | None = None
    published: datetime | None = None
    modified: datetime | None = None
    status: str | None = None  # NVD vulnStatus; "Rejected" means withdrawn
    cvss: tuple[CvssMetric, ...] = ()
    cwes: tuple[str, ...] = ()


@dataclass(frozen=True)
class KevEntry:
    """A CISA Known Exploited Vulnerabilities catalogue entry."""

    cve_id: str
    vendor: str
    product: str
    name: str
    date_added: date
    due_date: date | None
    known_ransomware: bool
    required_action: str = ""
    notes: str = ""
    # When the catalogue that lists it was released (its dateReleased): an older
    # catalogue imported later neither rolls the entry back nor un-lists it.
    catalogue_released: datetime | None = None


@dataclass(frozen=True)
class EpssScore:
    cve_id: str
    epss: float  # probability of exploitation activity in the next 30 days, 0..1
    percentile: float
    score_date: date | None = None
    model_version: str | None = None


FeedRecord = Advisory | VulnerabilityRecord | KevEntry | EpssScore


@dataclass(frozen=True)
class RejectedRecord:
    """A record a feed could not use, and why. Never a silent drop.

    ``part_of``: the id of the record only a part of which (an affected entry, a
    CVSS metric, a line of a DSA) was refused; the record is stored without it."""

    where: str  # "line 17", "DSA-5123-1", "file.json: affected[2]"
    reason: str
    part_of: str | None = None

    @property
    def part(self) -> bool:
        return self.part_of is not None


@dataclass(frozen=True)
class ParsedFeed:
    """What one feed file yields: usable records and rejections."""

    source: str
    records: tuple[FeedRecord, ...] = ()
    file: str = ""  # where the records came from (provenance), e.g. "all.zip:DSA-1.json"
    rejected: tuple[RejectedRecord, ...] = ()
    notes: tuple[str, ...] = field(
        default=()
    )  # e.g. "EPSS model v2025.03.14, scores of 2025-08-01"
