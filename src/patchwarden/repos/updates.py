"""Available updates: what ``apt list --upgradable`` / ``dnf check-update``
would say for an inventory, computed from repository snapshots. Pure.

For every installed package (the newest installed version when several
versions of one name and arch are installed, as rpm kernels are) the target
is the highest candidate of the same name, of a compatible arch, strictly
newer under the scheme:

* deb: the same arch, where ``all`` stands for the native arch (a package may
  move between ``all`` and the native arch); other arches never match;
* rpm, apk: the same arch, or ``noarch`` on either side;
* an installed package without an arch matches every arch.

The native arch is the ``native_arch`` argument, else the arch of the
package manager itself (dpkg, rpm, apk-tools) in the inventory, else the
most common arch there.

Classification: the highest of the notices (errata) that list a version of
the package newer than the installed one and not newer than the target
(security > bugfix > enhancement); without such a notice, the highest pocket
class of the repositories carrying the target (apt: ``-security`` wins when a
version is in several suites), which for rpm-md and apk is "unclassified".

:class:`UpdateIndex` parses every candidate version once and memoises the
answer per installed package (and per native arch for the few answers that
depend on it), so a fleet whose assets share images costs about one
dictionary lookup per installed package. The memo is a plain dict: an index
can be shared between threads (at worst an answer is computed twice).

Not modelled: apt pinning. apt offers a version from a NotAutomatic suite
(experimental; backports, which are also ButAutomaticUpgrades) only for
packages installed from there; here such versions are candidates like any
other, classified "enhancement" for backports (``Release.not_automatic``
says which suites these are).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Final, NamedTuple

from patchwarden.domain.inventory import InstalledPackage
from patchwarden.errors import InvalidInput
from patchwarden.repos.model import (
    CLASSIFICATION_RANK,
    SCHEME_OF_KIND,
    SEVERITY_RANK,
    Classification,
    RepoKind,
    RepoPackage,
    RepoSnapshot,
    UpdateNotice,
)
from patchwarden.versions import InvalidVersion, VersionKey, get_scheme

# The package manager's own package: its arch is the native arch.
_MANAGER: Final = {"deb": "dpkg", "rpm": "rpm", "apk": "apk-tools"}
# The arch that goes with every other (deb: stands for the native arch).
_NEUTRAL: Final = {"deb": "all", "rpm": "noarch", "apk": "noarch"}
_KIND_OF_SCHEME: Final[dict[str, RepoKind]] = {v: k for k, v in SCHEME_OF_KIND.items()}
_SOURCE_ARCHES: Final = frozenset({"src", "nosrc", "source"})


@dataclass(frozen=True, slots=True)
class AvailableUpdate:
    """One package an asset can upgrade, and why."""

    name: str
    arch: str  # the installed package's
    installed_version: str
    target_version: str
    target_arch: str  # differs from ``arch`` when a package moves to/from all/noarch
    classification: Classification
    severity: str  # the highest of the notices', "" without notices
    release_date: datetime | None
    notice_ids: tuple[str, ...]
    cve_ids: tuple[str, ...]
    repositories: tuple[str, ...]  # names of the snapshots carrying the target


class SkippedCandidate(NamedTuple):
    """A repository package left out of the index, with the reason."""

    repository: str
    name: str
    version: str
    reason: str


class _Candidate(NamedTuple):
    key: VersionKey
    version: str
    arch: str
    repositories: tuple[str, ...]
    classification: Classification
    build_time: datetime | None
    released: datetime | None  # the earliest Release/repomd date among its repositories


class _NoticeEntry(NamedTuple):
    key: VersionKey
    arch: str
    notice: UpdateNotice


class _Unknown:
    """The native arch before the whole inventory has been seen."""


class _NeedsNative(Exception):
    """Raised where a result depends on the native arch while it is unknown."""


class _NativeDependent:
    """Memoised for a package whose result depends on the native arch."""


class _Missing:
    """Not memoised yet."""


_UNKNOWN: Final = _Unknown()
_NATIVE_DEPENDENT: Final = _NativeDependent()
_MISSING: Final = _Missing()


class UpdateIndex:
    """Candidates of several repositories of one kind, ready for many inventories."""

    def __init__(
        self,
        scheme: str,
        candidates: Mapping[str, tuple[_Candidate, ...]],
        notices: Mapping[str, tuple[_NoticeEntry, ...]],
        skipped: tuple[SkippedCandidate, ...] = (),
    ) -> None:
        self.scheme = scheme
        self.skipped = skipped
        self._parse = get_scheme(scheme).parse
        self._candidates = candidates
        self._notices = notices
        self._neutral = _NEUTRAL.get(scheme, "")
        self._manager = _MANAGER.get(scheme, "")
        # rpm keeps several versions of one name and arch (installonly kernels).
        self._several_versions = scheme == "rpm"
        self._keys: dict[str, VersionKey | None] = {}
        # Results by installed package; by (package, native arch) for the few
        # whose result depends on the native arch.
        self._memo: dict[InstalledPackage, AvailableUpdate | _NativeDependent | None] = {}
        self._native_memo: dict[tuple[InstalledPackage, str | None], AvailableUpdate | None] = {}

    @classmethod
    def build(cls, snapshots: Iterable[RepoSnapshot], scheme: str | None = None) -> UpdateIndex:
        """Index ``snapshots`` (all of one kind). A package whose version the
        scheme cannot order is left out and listed in ``skipped``."""
        snapshots = tuple(snapshots)
        kinds = sorted({s.kind for s in snapshots})
        if len(kinds) > 1:
            raise InvalidInput(f"cannot index {' and '.join(kinds)} repositories together")
        if scheme is None:
            if not kinds:
                raise InvalidInput("no repositories and no version scheme given")
            scheme = SCHEME_OF_KIND[kinds[0]]
        elif kinds and SCHEME_OF_KIND[kinds[0]] != scheme:
            raise InvalidInput(f"{kinds[0]} repositories use {SCHEME_OF_KIND[kinds[0]]} versions")
        parse = get_scheme(scheme).parse
        keys: dict[str, VersionKey | None] = {}
        skipped: list[SkippedCandidate] = []

        def key_of(repository: str, name: str, version: str) -> VersionKey | None:
            if version in keys:
                key = keys[version]
            else:
                try:
                    key = keys[version] = parse(version)
                except InvalidVersion as exc:
                    key = keys[version] = None
                    skipped.append(SkippedCandidate(repository, name, version, exc.rule))
                    return None
            if key is None:
                skipped.append(SkippedCandidate(repository, name, version, "unorderable"))
            return key

        merged: dict[tuple[str, str, VersionKey], _Candidate] = {}
        notices: dict[str, dict[tuple[str, VersionKey, str], _NoticeEntry]] = defaultdict(dict)
        for snapshot in snapshots:
            name = snapshot.name
            pocket = snapshot.classification_default
            released = snapshot.released
            for package in snapshot.packages:
                key = key_of(name, package.name, package.version)
                if key is None:
                    continue
                ident = (package.name, package.arch, key)
                known = merged.get(ident)
                merged[ident] = _merge(known, package, key, name, pocket, released)
            for notice in snapshot.notices:
                for listed in notice.packages:
                    if listed.arch in _SOURCE_ARCHES:
                        continue
                    key = key_of(name, listed.name, listed.version)
                    if key is not None:
                        entry = _NoticeEntry(key, listed.arch, notice)
                        notices[listed.name][(notice.id, key, listed.arch)] = entry
        by_name: dict[str, list[_Candidate]] = defaultdict(list)
        for (package_name, _arch, _key), candidate in merged.items():
            by_name[package_name].append(candidate)
        candidates = {
            package_name: tuple(sorted(found, key=attrgetter("key"), reverse=True))
            for package_name, found in by_name.items()
        }
        return cls(
            scheme,
            candidates,
            {package_name: tuple(entries.values()) for package_name, entries in notices.items()},
            tuple(skipped),
        )

    def __len__(self) -> int:
        """How many (name, arch, version) candidates the index holds."""
        return sum(len(found) for found in self._candidates.values())

    def updates_for(
        self, installed: Iterable[InstalledPackage], native_arch: str | None = None
    ) -> list[AvailableUpdate]:
        """The available updates of one asset's inventory, sorted by name and arch.
        Packages of other ecosystems are ignored, as are versions the scheme
        cannot order (ingest validates them)."""
        packages = installed if isinstance(installed, list | tuple) else list(installed)
        memo = self._memo
        get = memo.get
        missing = _MISSING
        hits: list[tuple[InstalledPackage, AvailableUpdate | _NativeDependent]] = []
        # The hot loop: one memo lookup per package, keyed by the package itself
        # (a tuple, so no key is built); almost every answer is "no update".
        for package in packages:
            result = get(package, missing)
            if result is None:
                continue
            if isinstance(result, _Missing):
                result = memo[package] = self._compute(package)
                if result is None:
                    continue
            hits.append((package, result))
        if not hits:
            return []
        native: str | _Unknown | None = _UNKNOWN
        updates: list[AvailableUpdate] = []
        for package, hit in hits:
            if isinstance(hit, AvailableUpdate):
                updates.append(hit)
                continue
            if isinstance(native, _Unknown):
                native = native_arch or self._native_arch(packages)
            memo_key = (package, native)
            if memo_key in self._native_memo:
                resolved = self._native_memo[memo_key]
            else:
                resolved = self._native_memo[memo_key] = self._compute_update(
                    package.name, package.arch, package.version, native
                )
            if resolved is not None:
                updates.append(resolved)
        if self._several_versions:
            updates = self._newest_installed_only(updates, packages)
        updates.sort(key=attrgetter("name", "arch"))
        return updates

    # -- internals -------------------------------------------------------------------

    def _newest_installed_only(
        self, updates: list[AvailableUpdate], installed: Iterable[InstalledPackage]
    ) -> list[AvailableUpdate]:
        """rpm may hold several versions of one name and arch (installonly
        kernels): only the newest counts, as for dnf. Few names have updates,
        so only those are looked at again."""
        names = {u.name for u in updates}
        newest: dict[tuple[str, str], VersionKey] = {}
        for package in installed:
            if package.name in names and package.ecosystem == self.scheme:
                key = self._key(package.version)
                group = (package.name, package.arch)
                if key is not None and (group not in newest or key > newest[group]):
                    newest[group] = key
        kept: dict[tuple[str, str], AvailableUpdate] = {}
        for update in updates:
            group = (update.name, update.arch)
            if self._key(update.installed_version) == newest.get(group):
                kept[group] = update
        return list(kept.values())

    def _native_arch(self, packages: Iterable[InstalledPackage]) -> str | None:
        """The package manager's own arch, else the most common one."""
        arches: Counter[str] = Counter()
        for package in packages:
            if package.ecosystem != self.scheme:
                continue
            if package.name == self._manager and package.arch:
                return package.arch
            if package.arch and package.arch != self._neutral:
                arches[package.arch] += 1
        return max((n, a) for a, n in arches.items())[1] if arches else None

    def _key(self, version: str) -> VersionKey | None:
        try:
            return self._keys[version]
        except KeyError:
            pass
        try:
            key: VersionKey | None = self._parse(version)
        except InvalidVersion:
            key = None
        self._keys[version] = key
        return key

    def _compatible(self, installed: str, candidate: str, native: str | _Unknown | None) -> bool:
        """Whether a candidate's arch can replace the installed one; raises
        ``_NeedsNative`` when that depends on a native arch not known yet."""
        if installed == candidate or not installed:
            return True
        neutral = self._neutral
        if neutral not in (installed, candidate):
            return False
        if self.scheme != "deb":
            return True
        # deb: "all" is the native arch: amd64 <-> all, but never i386 <-> all.
        if isinstance(native, _Unknown):
            raise _NeedsNative
        if native is None:
            return True
        return (native if installed == neutral else installed) == (
            native if candidate == neutral else candidate
        )

    def _compute(self, package: InstalledPackage) -> AvailableUpdate | _NativeDependent | None:
        """The update of one package as far as it does not depend on the native arch."""
        if package.ecosystem != self.scheme:
            return None
        try:
            return self._compute_update(package.name, package.arch, package.version, _UNKNOWN)
        except _NeedsNative:
            return _NATIVE_DEPENDENT

    def _compute_update(
        self, name: str, arch: str, version: str, native: str | _Unknown | None
    ) -> AvailableUpdate | None:
        candidates = self._candidates.get(name)
        installed_key = self._key(version)
        if candidates is None or installed_key is None:
            return None
        target: _Candidate | None = None
        for candidate in candidates:
            if candidate.key <= installed_key:
                break
            if target is not None and candidate.key < target.key:
                break
            if not self._compatible(arch, candidate.arch, native):
                continue
            if target is None:
                target = candidate
            elif candidate.arch != target.arch and target.arch != arch:
                # The same version in several arches: prefer the installed
                # arch, then the native one.
                if candidate.arch == arch:
                    target = candidate
                elif isinstance(native, _Unknown):
                    raise _NeedsNative
                elif candidate.arch == native:
                    target = candidate
        if target is None:
            return None
        notices = [
            entry.notice
            for entry in self._notices.get(name, ())
            if installed_key < entry.key <= target.key
            and (not entry.arch or self._compatible(arch, entry.arch, native))
        ]
        classification = target.classification
        severity = ""
        release_date = target.build_time or target.released
        if notices:
            classification = max((n.type for n in notices), key=CLASSIFICATION_RANK.__getitem__)
            severity = max((n.severity for n in notices), key=SEVERITY_RANK.__getitem__)
            issued = [n.issued for n in notices if n.issued is not None]
            if issued:
                release_date = max(issued)
        return AvailableUpdate(
            name=name,
            arch=arch,
            installed_version=version,
            target_version=target.version,
            target_arch=target.arch,
            classification=classification,
            severity=severity,
            release_date=release_date,
            notice_ids=tuple(sorted({n.id for n in notices})),
            cve_ids=tuple(sorted({cve for n in notices for cve in n.cve_ids})),
            repositories=target.repositories,
        )


def _merge(
    known: _Candidate | None,
    package: RepoPackage,
    key: VersionKey,
    repository: str,
    pocket: Classification,
    released: datetime | None,
) -> _Candidate:
    """One candidate for a (name, arch, version) offered by several repositories."""
    if known is None:
        return _Candidate(
            key,
            package.version,
            package.arch,
            (repository,),
            pocket,
            package.build_time,
            released,
        )
    repositories = known.repositories
    if repository not in repositories:
        repositories = (*repositories, repository)
    classification = known.classification
    if CLASSIFICATION_RANK[pocket] > CLASSIFICATION_RANK[classification]:
        classification = pocket
    dates = [d for d in (known.released, released) if d is not None]
    return known._replace(
        repositories=repositories,
        classification=classification,
        build_time=known.build_time or package.build_time,
        released=min(dates, default=None),
    )


def available_updates(
    scheme_name: str,
    installed: Iterable[InstalledPackage],
    packages: Iterable[RepoPackage],
    notices: Iterable[UpdateNotice] = (),
    pocket_classification: Classification = "unclassified",
    *,
    repository: str = "",
    native_arch: str | None = None,
) -> list[AvailableUpdate]:
    """The updates one repository offers an inventory (see the module docstring).
    For several repositories, or many inventories, use :class:`UpdateIndex`."""
    kind = _KIND_OF_SCHEME.get(scheme_name)
    if kind is None:
        get_scheme(scheme_name)  # an unknown name gets the error listing the valid ones
        raise InvalidInput(
            f"no package repositories use {scheme_name} versions; "
            f"valid: {', '.join(sorted(_KIND_OF_SCHEME))}"
        )
    snapshot = RepoSnapshot(
        kind, repository, tuple(packages), tuple(notices), pocket_classification
    )
    return UpdateIndex.build([snapshot]).updates_for(installed, native_arch)
