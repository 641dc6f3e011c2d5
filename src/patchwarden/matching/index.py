"""The advisory index: every affected-package entry, found by (platform, name), with
every version it mentions parsed into its platform scheme's sort key once.

Range semantics are OSV's (https://ossf.github.io/osv-schema/#evaluation):

* the events of one range are evaluated in version order; ``introduced: "0"`` sorts
  before every version; ``fixed`` is exclusive, ``last_affected`` inclusive;
* ``limit`` events bound a range from above (exclusive): a version is only in the
  range when it is below at least one limit; a limit containing ``*`` (or no limit
  at all) means no bound;
* the ranges of an entry are a union, and the ``versions`` list adds exact versions
  (equal under the scheme, so PEP 440 ``1.0`` is ``1.0.0``);
* ``all_versions`` entries (Debian ``<unfixed>``, ``<end-of-life>``) affect everything.

The fixed version of a match is the lowest ``fixed`` event above the installed
version at which the entry no longer applies: with overlapping ranges, or a
``versions`` list naming a version the ranges call fixed, the next ``fixed`` event
may still be affected, and installing it would not help. If the record contradicts
itself so that every later ``fixed`` version is also listed as affected, the lowest
one above the installed version is given anyway: the record does claim a fix. No
``fixed`` event above the installed version (``last_affected``, ``limit``,
``<unfixed>``) means None.

When two events of one range have equal versions they apply in the order
introduced, fixed, last_affected (so ``introduced X, fixed X`` affects nothing).

Lookups are fast because the answer only changes at the versions an entry
mentions: the bucket of one (platform, name) keeps those boundaries sorted, and a
lookup bisects them to a *cell* (below the first boundary, equal to a boundary,
between two, ...) whose answer is computed once and remembered.

Nothing here raises on bad advisory data: a range with a version the scheme cannot
parse is dropped (so is a SEMVER range on a platform with another scheme, or a
range without an ``introduced`` event), a listed version that cannot be parsed is
matched by its exact text only, an entry left with nothing usable (or on an
unknown platform) is not indexed; each is reported in :attr:`AdvisoryIndex.problems`.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final, NamedTuple

from patchwarden.domain.advisories import (
    Advisory,
    AffectedPackage,
    RangeEvent,
    scheme_of_platform,
)
from patchwarden.versions import InvalidVersion, VersionKey, VersionScheme, get_scheme

# Event kinds, in the order they apply at equal versions.
INTRODUCED: Final = 0
FIXED: Final = 1
LAST_AFFECTED: Final = 2
EVENT_KINDS: Final = {"introduced": INTRODUCED, "fixed": FIXED, "last_affected": LAST_AFFECTED}

# Sorts before every real key (every scheme's keys are non-empty tuples, or "()"
# for the generic scheme's "0", which is the lowest version there anyway).
MIN_KEY: Final[VersionKey] = ()

_PEP503: Final = re.compile(r"[-_.]+")

# (scheme name, version text) -> its key or the parse error, while building.
ParseMemo = dict[tuple[str, str], "VersionKey | InvalidVersion"]


def canonical_name(platform: str, name: str) -> str:
    """The name advisories and packages are compared under: PEP 503 for PyPI
    (``Zope.Interface`` -> ``zope-interface``), the name itself elsewhere."""
    if platform == "pypi":
        return _PEP503.sub("-", name).lower()
    return name


@dataclass(frozen=True, slots=True)
class IndexProblem:
    """Advisory data the index could not use (fully or partly), and what it did instead."""

    advisory_id: str
    platform: str
    name: str
    version: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class CompiledRange:
    """One OSV range with parsed, sorted events: ``(key, kind, text)``."""

    events: tuple[tuple[VersionKey, int, str], ...]
    limits: tuple[VersionKey, ...] | None  # None: no upper limit

    def contains(self, v: VersionKey) -> bool:
        if self.limits is not None and not any(v < limit for limit in self.limits):
            return False
        vulnerable = False
        for key, kind, _ in self.events:
            if key > v:
                break  # later events are at higher versions: none applies to v
            if kind == INTRODUCED:
                vulnerable = True
            elif kind == FIXED or v > key:  # fixed at v, or above last_affected
                vulnerable = False
        return vulnerable

    def keys(self) -> Iterator[VersionKey]:
        for key, _, _ in self.events:
            yield key
        if self.limits is not None:
            yield from self.limits


@dataclass(frozen=True, slots=True, eq=False)
class IndexEntry:
    """One affected-package entry of one advisory, ready to evaluate."""

    advisory_id: str
    vulnerability_ids: tuple[str, ...]
    platform: str
    name: str  # canonical
    affected_name: str  # as the advisory wrote it
    note: str | None
    all_versions: bool
    ranges: tuple[CompiledRange, ...]
    version_keys: frozenset[VersionKey]
    raw_versions: frozenset[str]  # listed versions the scheme cannot parse: exact text only
    fixed: tuple[tuple[VersionKey, str], ...]  # the ranges' fixed events, ascending
    binaries: tuple[str, ...]

    def affects(self, v: VersionKey) -> bool:
        if self.all_versions or v in self.version_keys:
            return True
        return any(r.contains(v) for r in self.ranges)

    def fixed_version(self, v: VersionKey) -> str | None:
        """The lowest ``fixed`` version above ``v`` that this entry does not affect
        (else, when the record contradicts itself, the lowest ``fixed`` above ``v``)."""
        if self.all_versions:
            return None
        first: str | None = None
        for key, text in self.fixed:
            if key > v:
                if not self.affects(key):
                    return text
                if first is None:
                    first = text
        return first

    def boundaries(self) -> Iterator[VersionKey]:
        """Every version at which the entry's answer (or its fixed version) can change."""
        for r in self.ranges:
            yield from r.keys()
        yield from self.version_keys


class Hit(NamedTuple):
    entry: IndexEntry
    fixed_version: str | None


def _hit_order(hit: Hit) -> tuple[str, str, str, str]:
    entry = hit.entry
    return (entry.advisory_id, entry.affected_name, hit.fixed_version or "", entry.note or "")


def sort_hits(hits: Iterable[Hit]) -> tuple[Hit, ...]:
    return tuple(sorted(hits, key=_hit_order))


class _Bucket:
    """The entries of one (platform, name), with lazily built cells."""

    __slots__ = ("_bounds", "_cells", "entries")

    def __init__(self) -> None:
        self.entries: list[IndexEntry] = []
        self._bounds: list[VersionKey] | None = None
        self._cells: dict[int, tuple[Hit, ...]] = {}

    def add(self, entry: IndexEntry) -> None:
        self.entries.append(entry)
        self._bounds, self._cells = None, {}

    def discard(self, entry: IndexEntry) -> None:
        self.entries = [e for e in self.entries if e is not entry]
        self._bounds, self._cells = None, {}

    def hits(self, v: VersionKey) -> tuple[Hit, ...]:
        bounds = self._bounds
        if bounds is None:
            bounds = self._bounds = sorted({k for e in self.entries for k in e.boundaries()})
        i = bisect_left(bounds, v)
        cell = 2 * i + 1 if i < len(bounds) and bounds[i] == v else 2 * i
        found = self._cells.get(cell)
        if found is None:
            # Every v in this cell compares alike with every boundary, so v stands for all.
            found = self._cells[cell] = sort_hits(
                Hit(e, e.fixed_version(v)) for e in self.entries if e.affects(v)
            )
        return found

    def hits_unparsable(self, text: str) -> tuple[Hit, ...]:
        """For a version the scheme cannot parse: entries affecting every version, and
        entries listing exactly this text. No fixed version can be told."""
        return sort_hits(
            Hit(e, None) for e in self.entries if e.all_versions or text in e.raw_versions
        )


class AdvisoryIndex:
    """Advisories by (platform, canonical name), for :func:`~patchwarden.matching.match_packages`.

    Withdrawn advisories are not indexed. Adding an advisory whose id is already
    indexed replaces it (a feed update); adding a withdrawn one removes it.
    ``generation`` changes with every change, so caches know when to forget.
    """

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._binaries: dict[tuple[str, str], _Bucket] = {}
        self._entries: dict[str, tuple[IndexEntry, ...]] = {}
        self._problems: dict[str, list[IndexProblem]] = {}
        self._schemes: dict[str, VersionScheme | None] = {}
        self.generation = 0

    @classmethod
    def build(cls, advisories: Iterable[Advisory]) -> AdvisoryIndex:
        index = cls()
        memo: ParseMemo = {}  # feeds repeat versions a lot: parse each text once
        for advisory in advisories:
            index._add(advisory, memo)
        return index

    def add(self, advisory: Advisory) -> None:
        self._add(advisory, {})

    def remove(self, advisory_id: str) -> bool:
        """Forget an advisory; False if it was not indexed."""
        self._problems.pop(advisory_id, None)
        entries = self._entries.pop(advisory_id, None)
        if entries is None:
            return False
        for entry in entries:
            self._unlink(self._buckets, (entry.platform, entry.name), entry)
            for binary in entry.binaries:
                self._unlink(self._binaries, (entry.platform, binary), entry)
        self.generation += 1
        return True

    @property
    def problems(self) -> list[IndexProblem]:
        return [problem for problems in self._problems.values() for problem in problems]

    def names(self, platform: str) -> set[str]:
        """The (canonical, source) package names advisories cover on ``platform``."""
        return {name for (p, name) in self._buckets if p == platform}

    def platforms(self) -> set[str]:
        return {platform for (platform, _) in self._buckets}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, advisory_id: object) -> bool:
        return advisory_id in self._entries

    def has_source(self, platform: str, name: str) -> bool:
        """Whether an entry on ``platform`` names the (canonical, source) ``name``."""
        return (platform, name) in self._buckets

    def has_binary(self, platform: str, name: str) -> bool:
        """Whether an entry on ``platform`` lists ``name`` among its binary packages."""
        return (platform, name) in self._binaries

    def scheme(self, platform: str) -> VersionScheme | None:
        """The version scheme of ``platform``, None if the platform is unknown."""
        try:
            return self._schemes[platform]
        except KeyError:
            pass
        scheme: VersionScheme | None
        try:
            scheme = get_scheme(scheme_of_platform(platform))
        except KeyError:
            scheme = None
        self._schemes[platform] = scheme
        return scheme

    def lookup(
        self, platform: str, name: str, version: str, binary: str | None = None
    ) -> tuple[tuple[Hit, ...], InvalidVersion | None]:
        """What affects ``version`` of the (canonical) ``name`` on ``platform``, plus
        entries naming ``binary`` among their binaries; and the parse error when
        ``version`` is not a version of the platform's scheme (then only entries
        affecting every version or listing that exact text are returned)."""
        source = self._buckets.get((platform, name))
        by_binary = self._binaries.get((platform, binary)) if binary is not None else None
        if source is None and by_binary is None:
            return (), None
        scheme = self.scheme(platform)
        if scheme is None:  # unreachable: entries only exist on known platforms
            return (), None
        error: InvalidVersion | None = None
        try:
            key = scheme.parse(version)
        except InvalidVersion as exc:
            error = exc
        buckets = [b for b in (source, by_binary) if b is not None]
        if error is None:
            found = [bucket.hits(key) for bucket in buckets]
        else:
            found = [bucket.hits_unparsable(version) for bucket in buckets]
        if len(found) == 1:
            return found[0], error
        seen = {id(hit.entry) for hit in found[0]}
        extra = [hit for hit in found[1] if id(hit.entry) not in seen]
        return (sort_hits([*found[0], *extra]) if extra else found[0]), error

    # -- building ---------------------------------------------------------------

    @staticmethod
    def _unlink(
        buckets: dict[tuple[str, str], _Bucket], where: tuple[str, str], entry: IndexEntry
    ) -> None:
        bucket = buckets.get(where)
        if bucket is None:
            return
        bucket.discard(entry)
        if not bucket.entries:
            del buckets[where]

    def _add(self, advisory: Advisory, memo: ParseMemo) -> None:
        if advisory.id in self._entries or advisory.id in self._problems:
            self.remove(advisory.id)
        if advisory.withdrawn is not None:
            return
        problems: list[IndexProblem] = []
        entries: list[IndexEntry] = []
        for affected in advisory.affected:
            entry = self._compile(advisory, affected, memo, problems)
            if entry is not None:
                entries.append(entry)
        if problems:
            self._problems[advisory.id] = problems
        self._entries[advisory.id] = tuple(entries)
        for entry in entries:
            self._buckets.setdefault((entry.platform, entry.name), _Bucket()).add(entry)
            for binary in entry.binaries:
                self._binaries.setdefault((entry.platform, binary), _Bucket()).add(entry)
        self.generation += 1

    def _compile(
        self,
        advisory: Advisory,
        affected: AffectedPackage,
        memo: ParseMemo,
        problems: list[IndexProblem],
    ) -> IndexEntry | None:
        platform = affected.platform
        name = canonical_name(platform, affected.name)

        def problem(version: str | None, reason: str) -> None:
            problems.append(IndexProblem(advisory.id, platform, affected.name, version, reason))

        scheme = self.scheme(platform)
        if scheme is None:
            problem(None, f"unknown platform {platform!r}: entry not indexed")
            return None

        def parse(text: str) -> VersionKey | InvalidVersion:
            cached = memo.get((scheme.name, text))
            if cached is None:
                try:
                    cached = scheme.parse(text)
                except InvalidVersion as exc:
                    cached = exc
                memo[(scheme.name, text)] = cached
            return cached

        ranges: list[CompiledRange] = []
        fixed: dict[VersionKey, str] = {}
        for number, range_ in enumerate(affected.ranges, start=1):
            where = f"range {number}"
            if range_.type not in ("ECOSYSTEM", "SEMVER") or (
                range_.type == "SEMVER" and scheme.name != "semver"
            ):
                problem(None, f"{where}: {range_.type} range on a {scheme.name} platform dropped")
                continue
            compiled = _compile_range(range_.events, parse)
            if isinstance(compiled, tuple):
                version, reason = compiled
                problem(version, f"{where} dropped: {reason}")
                continue
            if not any(kind == INTRODUCED for _, kind, _ in compiled.events):
                problem(None, f"{where} has no 'introduced' event: it affects nothing")
                continue
            ranges.append(compiled)
            for key, kind, text in compiled.events:
                if kind == FIXED:
                    fixed.setdefault(key, text)

        version_keys: set[VersionKey] = set()
        raw_versions: set[str] = set()
        for text in affected.versions:
            parsed = parse(text)
            if isinstance(parsed, InvalidVersion):
                raw_versions.add(text)
                problem(text, f"listed version does not parse ({parsed.rule}): exact text only")
            else:
                version_keys.add(parsed)

        if not (affected.all_versions or ranges or version_keys or raw_versions):
            problem(None, "no usable range or version: entry not indexed")
            return None
        return IndexEntry(
            advisory_id=advisory.id,
            vulnerability_ids=advisory.vulnerability_ids,
            platform=platform,
            name=name,
            affected_name=affected.name,
            note=affected.note,
            all_versions=affected.all_versions,
            ranges=tuple(ranges),
            version_keys=frozenset(version_keys),
            raw_versions=frozenset(raw_versions),
            fixed=tuple(sorted(fixed.items())),
            binaries=tuple(dict.fromkeys(affected.binaries)),
        )


def _compile_range(
    events: Iterable[RangeEvent], parse: Callable[[str], VersionKey | InvalidVersion]
) -> CompiledRange | tuple[str | None, str]:
    """The compiled range, or ``(version, reason)`` why it cannot be used."""
    compiled: list[tuple[VersionKey, int, str]] = []
    limits: list[VersionKey] = []
    unbounded = False
    for event in events:
        kind_name, text = event.kind, event.version
        if kind_name == "limit":
            if "*" in text:
                unbounded = True
                continue
            key = parse(text)
            if isinstance(key, InvalidVersion):
                return text, f"limit {text!r} does not parse ({key.rule})"
            limits.append(key)
            continue
        kind = EVENT_KINDS.get(kind_name)
        if kind is None:
            return None, f"unknown event kind {kind_name!r}"
        if kind == INTRODUCED and text == "0":
            compiled.append((MIN_KEY, INTRODUCED, text))
            continue
        key = parse(text)
        if isinstance(key, InvalidVersion):
            return text, f"{kind_name} {text!r} does not parse ({key.rule})"
        compiled.append((key, kind, text))
    compiled.sort(key=lambda event: (event[0], event[1]))
    return CompiledRange(tuple(compiled), None if unbounded or not limits else tuple(limits))
