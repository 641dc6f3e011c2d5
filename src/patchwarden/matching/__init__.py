"""Inventory x advisories -> matches (pure: no database, no I/O, no clock).

Build an :class:`AdvisoryIndex` once from the feeds' ``Advisory`` values (every
advisory version is parsed into its platform's sort key there, once), then call
:func:`match_packages` per asset, sharing one :class:`MatchCache` (or a :class:`FleetMatcher`)
across the assets of a fleet so that identical packages are evaluated once.

>>> from patchwarden.domain.advisories import (
...     Advisory, AffectedPackage, AffectedRange, RangeEvent,
... )
>>> from patchwarden.domain.inventory import InstalledPackage
>>> dsa = Advisory(
...     "DSA-5343-1", "debian-tracker", aliases=("CVE-2023-0286",),
...     affected=(AffectedPackage("debian:11", "openssl", ranges=(AffectedRange(
...         "ECOSYSTEM", (RangeEvent("introduced", "0"), RangeEvent("fixed", "1.1.1n-0+deb11u4"))
...     ),)),),
... )
>>> index = AdvisoryIndex.build([dsa])
>>> libssl = InstalledPackage("deb", "libssl1.1", "1.1.1n-0+deb11u3", "amd64", "openssl")
>>> [(m.advisory_id, m.fixed_version) for m in match_packages(index, "debian:11", [libssl])]
[('DSA-5343-1', '1.1.1n-0+deb11u4')]
"""

from patchwarden.matching.engine import (
    FleetMatcher,
    Match,
    MatchCache,
    PackageVulnerability,
    SkippedPackage,
    collapse,
    match_packages,
    naive_match,
    platform_of_package,
)
from patchwarden.matching.index import AdvisoryIndex, IndexProblem, canonical_name

__all__ = [
    "AdvisoryIndex",
    "FleetMatcher",
    "IndexProblem",
    "Match",
    "MatchCache",
    "PackageVulnerability",
    "SkippedPackage",
    "canonical_name",
    "collapse",
    "match_packages",
    "naive_match",
    "platform_of_package",
]
