"""Match installed packages against an :class:`AdvisoryIndex`.

Which advisories apply to which package:

* ``deb``, ``rpm`` and ``apk`` packages are compared on the asset's distribution
  platform ("debian:12", "ubuntu:22.04" ...), and only when that platform uses the
  package's version scheme (an rpm database on a Debian host is not Debian's).
  Distribution advisories name *source* packages, so the package is looked up by
  ``source_name`` (else ``name``) and its *source* version is compared
  (``source_version``, else ``version``): a binNMU ``1.0-1+b1`` is built from source
  ``1.0-1``. Entries that list binary packages (Ubuntu's) also match by binary name.
* ``pypi`` packages on "pypi" (names compared PEP 503-normalised), ``npm`` on "npm".
* Anything else (windows, firmware ...) is skipped, with a reason when asked.

Each (package, advisory entry) pair yields one :class:`Match`; :func:`collapse`
merges them per (package, vulnerability). :func:`naive_match` is the obvious,
slow algorithm with the same answers, kept for benchmarks and as a test oracle.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cmp_to_key
from typing import Any, Final

from patchwarden.domain.advisories import (
    Advisory,
    AffectedPackage,
    AffectedRange,
    scheme_of_platform,
)
from patchwarden.domain.inventory import InstalledPackage
from patchwarden.matching.index import (
    EVENT_KINDS,
    FIXED,
    INTRODUCED,
    AdvisoryIndex,
    Hit,
    canonical_name,
)
from patchwarden.matching.kernels import unsigned_kernel_source
from patchwarden.versions import InvalidVersion, VersionKey, compare, get_scheme

# Package ecosystems compared on the asset's distribution, and the scheme they need.
OS_ECOSYSTEMS: Final = {"deb": "deb", "rpm": "rpm", "apk": "apk"}
# Package ecosystems with a platform of their own.
LANGUAGE_PLATFORMS: Final = {"pypi": "pypi", "npm": "npm"}


@dataclass(frozen=True, slots=True)
class Match:
    """One advisory entry that affects one installed package."""

    package: InstalledPackage
    platform: str
    advisory_id: str
    vulnerability_ids: tuple[str, ...]
    fixed_version: str | None  # None: no fix (yet), or the advisory gives no fixed version
    affected_name: str  # the package name as the advisory wrote it
    note: str | None  # e.g. "end-of-life", "unfixed"


@dataclass(frozen=True, slots=True)
class SkippedPackage:
    """A package that was not (fully) matched, and why."""

    package: InstalledPackage
    reason: str


@dataclass(frozen=True, slots=True)
class PackageVulnerability:
    """All matches of one package for one vulnerability, merged (see :func:`collapse`)."""

    package: InstalledPackage
    platform: str
    vulnerability_id: str
    advisory_ids: tuple[str, ...]
    fixed_version: str | None  # the lowest fixed version any advisory gives; None if none does
    notes: tuple[str, ...]


def platform_of_package(ecosystem: str, distro_platform: str | None) -> str | None:
    """The platform whose advisories apply to a package of ``ecosystem`` on an asset
    of ``distro_platform``, or None."""
    platform = LANGUAGE_PLATFORMS.get(ecosystem)
    if platform is not None:
        return platform
    needed = OS_ECOSYSTEMS.get(ecosystem)
    if needed is None or distro_platform is None:
        return None
    try:
        scheme = scheme_of_platform(distro_platform)
    except KeyError:
        return None
    return distro_platform if scheme == needed else None


def _why_no_platform(ecosystem: str, distro_platform: str | None) -> str:
    if ecosystem not in OS_ECOSYSTEMS:
        return f"no advisory platform for {ecosystem!r} packages"
    if distro_platform is None:
        return f"{ecosystem} package on an asset whose distribution is not known"
    return f"{ecosystem} packages are not matched on a {distro_platform!r} asset"


def _lookup_terms(
    package: InstalledPackage, platform: str, has_source: Callable[[str, str], bool]
) -> tuple[str, str, str | None]:
    """(name to look up, version to compare, binary name) of a package.
    `has_source(platform, name)`: whether an advisory names that source there."""
    if package.ecosystem in OS_ECOSYSTEMS:
        source = package.source_name or package.name
        kernel = unsigned_kernel_source(source) if package.ecosystem == "deb" else None
        if kernel is not None and not has_source(platform, source):
            # A signed kernel image: the kernel source's advisories, its binary version.
            return kernel, package.version, package.name
        return source, package.source_version or package.version, package.name
    return canonical_name(platform, package.name), package.version, None


def _why_unparsable(error: InvalidVersion) -> str:
    return (
        f"version {error.version!r} is not a {error.scheme} version ({error.rule}): only "
        "advisories listing that exact version or affecting every version were checked"
    )


class MatchCache:
    """Remembers answers across :func:`match_packages` calls (the assets of a fleet).

    Two levels: whole packages (identical rows on many assets are answered with one
    dict lookup) and (platform, source name, source version) lookups (so the binary
    packages of one source are evaluated once). It empties itself when used with
    another index, or after the index changed. Identical rows get the same Match
    objects, so a match's ``package`` may be an equal row of an earlier asset. It
    grows with the number of distinct package rows seen (tens of thousands for a
    fleet of similar machines); drop it to free the memory.
    """

    __slots__ = ("__weakref__", "_generation", "_index", "hits", "packages", "reasons")

    def __init__(self) -> None:
        self.packages: dict[tuple[str, InstalledPackage], tuple[Match, ...]] = {}
        self.hits: dict[tuple[str, str, str | None, str], tuple[tuple[Hit, ...], str | None]] = {}
        self.reasons: dict[tuple[str, InstalledPackage], str] = {}
        self._index: weakref.ref[AdvisoryIndex] | None = None
        self._generation = -1

    def bind(self, index: AdvisoryIndex) -> None:
        """Use the cache with ``index`` (forgetting everything if it is stale)."""
        if self._index is None or self._index() is not index:
            self.clear()
            self._index = weakref.ref(index)
        if self._generation != index.generation:
            self.clear()
            self._generation = index.generation

    def clear(self) -> None:
        self.packages.clear()
        self.hits.clear()
        self.reasons.clear()

    def __len__(self) -> int:
        return len(self.packages)


def match_packages(
    index: AdvisoryIndex,
    distro_platform: str | None,
    packages: Sequence[InstalledPackage],
    *,
    cache: MatchCache | dict[Any, Any] | None = None,
    skipped: list[SkippedPackage] | None = None,
) -> list[Match]:
    """The matches of one asset's packages, in package order (per package, by advisory id).

    ``distro_platform`` is the asset's platform (see
    :func:`patchwarden.domain.advisories.platform_of_os`), None when unknown. Pass one
    ``cache`` for many assets: a :class:`MatchCache`, or any dict the caller keeps
    (a MatchCache is then kept inside it). Pass ``skipped`` to learn which packages
    could not be matched (no platform) or only partly (a version the scheme cannot
    parse).
    """
    cache = _as_cache(cache)
    cache.bind(index)
    memo = cache.packages
    routes: dict[str, str | None] = {}
    out: list[Match] = []
    for package in packages:
        ecosystem = package.ecosystem
        try:
            platform = routes[ecosystem]
        except KeyError:
            platform = routes[ecosystem] = platform_of_package(ecosystem, distro_platform)
            if platform is not None and index.scheme(platform) is None:
                platform = routes[ecosystem] = None
        if platform is None:
            if skipped is not None:
                skipped.append(
                    SkippedPackage(package, _why_no_platform(ecosystem, distro_platform))
                )
            continue
        memo_key = (platform, package)
        found = memo.get(memo_key)
        if found is None:
            found = memo[memo_key] = _match_one(index, cache, platform, package)
        if found:
            out.extend(found)
        if skipped is not None:
            reason = cache.reasons.get(memo_key)
            if reason is not None:
                skipped.append(SkippedPackage(package, reason))
    return out


_CACHE_SLOT: Final = ("patchwarden.matching", "MatchCache")


def _as_cache(cache: MatchCache | dict[Any, Any] | None) -> MatchCache:
    if cache is None:
        return MatchCache()
    if isinstance(cache, MatchCache):
        return cache
    kept = cache.get(_CACHE_SLOT)
    if not isinstance(kept, MatchCache):
        kept = cache[_CACHE_SLOT] = MatchCache()
    return kept


def _match_one(
    index: AdvisoryIndex, cache: MatchCache, platform: str, package: InstalledPackage
) -> tuple[Match, ...]:
    name, version, binary = _lookup_terms(package, platform, index.has_source)
    if binary is not None and not index.has_binary(platform, binary):
        binary = None  # share the answer with the other binaries of this source
    hits_key = (platform, name, binary, version)
    answer = cache.hits.get(hits_key)
    if answer is None:
        hits, error = index.lookup(platform, name, version, binary)
        answer = cache.hits[hits_key] = (hits, None if error is None else _why_unparsable(error))
    hits, reason = answer
    if reason is not None:
        cache.reasons[(platform, package)] = reason
    return tuple(
        Match(
            package,
            platform,
            hit.entry.advisory_id,
            hit.entry.vulnerability_ids,
            hit.fixed_version,
            hit.entry.affected_name,
            hit.entry.note,
        )
        for hit in hits
    )


class FleetMatcher:
    """One index and one cache: call :meth:`match` for every asset of a fleet."""

    def __init__(self, index: AdvisoryIndex) -> None:
        self.index = index
        self.cache = MatchCache()

    def match(
        self,
        distro_platform: str | None,
        packages: Sequence[InstalledPackage],
        *,
        skipped: list[SkippedPackage] | None = None,
    ) -> list[Match]:
        return match_packages(
            self.index, distro_platform, packages, cache=self.cache, skipped=skipped
        )


def collapse(matches: Iterable[Match]) -> list[PackageVulnerability]:
    """Merge matches per (package, vulnerability id), in order of first appearance.

    Several advisories may fix one vulnerability (a DSA and its regression update,
    an OSV record and its GHSA twin): the vulnerability is fixable when any of them
    gives a fixed version, and the lowest such version is the one to install.
    """
    groups: dict[tuple[str, tuple[str, str, str, str], str], list[Match]] = {}
    for match in matches:
        for vulnerability_id in match.vulnerability_ids:
            key = (match.platform, match.package.key, vulnerability_id)
            groups.setdefault(key, []).append(match)
    merged: list[PackageVulnerability] = []
    for (platform, _, vulnerability_id), group in groups.items():
        first = group[0]
        fixed = [m.fixed_version for m in group if m.fixed_version is not None]
        merged.append(
            PackageVulnerability(
                package=first.package,
                platform=platform,
                vulnerability_id=vulnerability_id,
                advisory_ids=tuple(dict.fromkeys(m.advisory_id for m in group)),
                fixed_version=_lowest(platform, fixed),
                notes=tuple(dict.fromkeys(m.note for m in group if m.note)),
            )
        )
    return merged


def _lowest(platform: str, versions: list[str]) -> str | None:
    """The lowest of ``versions`` under the platform's scheme (unparsable ones last)."""
    if not versions:
        return None
    if len(versions) == 1:
        return versions[0]
    try:
        scheme = get_scheme(scheme_of_platform(platform))
    except KeyError:
        return min(versions)

    def order(text: str) -> tuple[int, VersionKey, str]:
        try:
            return (0, scheme.parse(text), text)
        except InvalidVersion:
            return (1, (), text)

    return min(versions, key=order)


# -- the naive algorithm -----------------------------------------------------------


def naive_match(
    advisories: Iterable[Advisory],
    distro_platform: str | None,
    packages: Sequence[InstalledPackage],
) -> list[Match]:
    """The same answers as :func:`match_packages`, computed the obvious way: for every
    package, every entry of every advisory, comparing version strings with
    :func:`patchwarden.versions.compare` (nothing parsed ahead, nothing shared)."""
    advisories = list(advisories)

    def names_source(platform: str, name: str) -> bool:
        return any(
            advisory.withdrawn is None
            and any(
                a.platform == platform and canonical_name(platform, a.name) == name
                for a in advisory.affected
            )
            for advisory in advisories
        )

    out: list[Match] = []
    for package in packages:
        platform = platform_of_package(package.ecosystem, distro_platform)
        if platform is None:
            continue
        try:
            scheme = scheme_of_platform(platform)
        except KeyError:
            continue
        name, version, binary = _lookup_terms(package, platform, names_source)
        try:
            compare(scheme, version, version)
            valid = True
        except InvalidVersion:
            valid = False
        found: list[Match] = []
        for advisory in advisories:
            if advisory.withdrawn is not None:
                continue
            for affected in advisory.affected:
                if affected.platform != platform:
                    continue
                if canonical_name(platform, affected.name) != name and (
                    binary is None or binary not in affected.binaries
                ):
                    continue
                verdict = _naive_entry(scheme, affected, version, valid)
                if verdict is None:
                    continue
                found.append(
                    Match(
                        package,
                        platform,
                        advisory.id,
                        advisory.vulnerability_ids,
                        verdict[0],
                        affected.name,
                        affected.note,
                    )
                )
        found.sort(
            key=lambda m: (m.advisory_id, m.affected_name, m.fixed_version or "", m.note or "")
        )
        out.extend(found)
    return out


def _naive_entry(
    scheme: str, affected: AffectedPackage, version: str, valid: bool
) -> tuple[str | None] | None:
    """None if ``affected`` does not affect ``version``, else ``(fixed version,)``."""
    if affected.all_versions:
        return (None,)
    if not valid:
        return (None,) if version in affected.versions else None
    ranges = [r for r in affected.ranges if _naive_usable(scheme, r, version)]

    def affects(v: str) -> bool:
        for listed in affected.versions:
            try:
                if compare(scheme, v, listed) == 0:
                    return True
            except InvalidVersion:
                if v == listed:
                    return True
        return any(_naive_contains(scheme, r, v) for r in ranges)

    if not affects(version):
        return None
    fixed = [
        e.version
        for r in ranges
        for e in _naive_sorted(scheme, r)
        if e.kind == "fixed" and compare(scheme, e.version, version) > 0
    ]

    def by_version(a: str, b: str) -> int:
        return compare(scheme, a, b)

    fixed.sort(key=cmp_to_key(by_version))
    for candidate in fixed:
        if not affects(candidate):
            return (candidate,)
    return (fixed[0] if fixed else None,)  # a self-contradicting record: its own claim


def _naive_usable(scheme: str, range_: AffectedRange, version: str) -> bool:
    if range_.type == "SEMVER" and scheme != "semver":
        return False
    if range_.type not in ("ECOSYSTEM", "SEMVER"):
        return False
    if not any(e.kind == "introduced" for e in range_.events):
        return False
    if any(e.kind not in EVENT_KINDS and e.kind != "limit" for e in range_.events):
        return False
    try:
        _naive_contains(scheme, range_, version)  # compares every event: raises if one is bad
    except InvalidVersion:
        return False
    return True


def _naive_sorted(scheme: str, range_: AffectedRange) -> list[_NaiveEvent]:
    events = [_NaiveEvent(e.kind, e.version) for e in range_.events if e.kind != "limit"]

    def order(a: _NaiveEvent, b: _NaiveEvent) -> int:
        a_min = a.kind == "introduced" and a.version == "0"
        b_min = b.kind == "introduced" and b.version == "0"
        if a_min or b_min:
            by_version = (b_min - a_min) if a_min != b_min else 0
        else:
            by_version = compare(scheme, a.version, b.version)
        return by_version or EVENT_KINDS[a.kind] - EVENT_KINDS[b.kind]

    events.sort(key=cmp_to_key(order))
    return events


@dataclass(frozen=True, slots=True)
class _NaiveEvent:
    kind: str
    version: str


def _naive_contains(scheme: str, range_: AffectedRange, version: str) -> bool:
    """OSV's IncludedInRanges for one range, straight from the specification."""
    limits = [e.version for e in range_.events if e.kind == "limit"]
    # Compare with every limit (not any(): a bad limit must raise, whatever its place).
    below = [compare(scheme, version, limit) < 0 for limit in limits if "*" not in limit]
    if limits and not any("*" in limit for limit in limits) and not any(below):
        return False
    vulnerable = False
    for event in _naive_sorted(scheme, range_):
        kind = EVENT_KINDS[event.kind]
        if kind == INTRODUCED:
            if event.version == "0" or compare(scheme, version, event.version) >= 0:
                vulnerable = True
        elif kind == FIXED:
            if compare(scheme, version, event.version) >= 0:
                vulnerable = False
        elif compare(scheme, version, event.version) > 0:
            vulnerable = False
    return vulnerable
