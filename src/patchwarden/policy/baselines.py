"""Baselines: the package versions a group of assets should run, and drift from them.

A baseline entry names a package and a version in one of two modes:

* "minimum": at least this version (a security floor);
* "desired": exactly this version (standardisation).

An entry applies to every asset, or, with `os_release`, only to assets on that
platform ("debian:12", see `patchwarden.domain.advisories.platform_of_os`) or
platform family ("debian" covers "debian:11" and "debian:12"). For each
package an asset takes its most specific entry (platform over family over
none); two entries for the same package and `os_release` are refused.

`drift` compares each asset's installed versions with its entries under the
asset platform's version scheme (epochs, ``~`` and all), and reports per
(asset, package):

* "missing": the package is not installed;
* "below_minimum": the newest installed version is older than the minimum;
* "differs": the newest installed version is not the desired one (older or newer);
* "ok": the baseline is met;
* "not_comparable": no verdict is possible, with the reason in `detail`:
  the asset's platform has no known version scheme, or a version cannot be
  read under it. Such rows are reported, never dropped.

Several versions of one package may be installed at once (rpm kernels); the
newest one is compared and shown, and `detail` says how many there are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from patchwarden.domain.advisories import PLATFORM_SCHEMES, scheme_of_platform
from patchwarden.policy.errors import InvalidPolicy
from patchwarden.versions import InvalidVersion, VersionScheme, get_scheme

BaselineMode = Literal["desired", "minimum"]
DriftStatus = Literal["missing", "below_minimum", "differs", "ok", "not_comparable"]
BASELINE_MODES: Final[tuple[BaselineMode, ...]] = ("desired", "minimum")
MAX_NAME_LENGTH: Final = 255


def _plain_text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidPolicy(f"{what} must be non-empty text, not {value!r}")
    if len(value) > MAX_NAME_LENGTH or any(ch.isspace() or not ch.isprintable() for ch in value):
        raise InvalidPolicy(
            f"{what} {value[:40]!r} must be at most {MAX_NAME_LENGTH} characters with no "
            "spaces or control characters"
        )
    return value


@dataclass(frozen=True)
class BaselineEntry:
    """One package's baseline; validated on construction (InvalidPolicy).

    With `os_release` set, `version` must be well formed under that platform's
    scheme; without it, it is read under each asset's scheme in `drift`.
    """

    package: str
    version: str
    mode: BaselineMode
    os_release: str | None = None

    def __post_init__(self) -> None:
        _plain_text(self.package, "a baseline package name")
        _plain_text(self.version, f"baseline {self.package}: version")
        if self.mode not in BASELINE_MODES:
            raise InvalidPolicy(
                f"baseline {self.package}: mode {self.mode!r} is not one of "
                f"{', '.join(BASELINE_MODES)}"
            )
        if self.os_release is None:
            return
        _plain_text(self.os_release, f"baseline {self.package}: os_release")
        try:
            scheme = scheme_of_platform(self.os_release)
        except KeyError:
            raise InvalidPolicy(
                f"baseline {self.package}: unknown platform {self.os_release!r}; use a "
                f"family or family:release of {', '.join(sorted(PLATFORM_SCHEMES))} "
                "(e.g. 'debian:12')"
            ) from None
        try:
            get_scheme(scheme).validate(self.version)
        except InvalidVersion as exc:
            raise InvalidPolicy(f"baseline {self.package} on {self.os_release}: {exc}") from exc

    def specificity(self, platform: str | None) -> int | None:
        """How closely the entry fits an asset on `platform`: 2 exact platform,
        1 platform family, 0 every asset; None when it does not apply."""
        if self.os_release is None:
            return 0
        if platform is None:
            return None
        if platform == self.os_release:
            return 2
        if ":" not in self.os_release and platform.split(":", 1)[0] == self.os_release:
            return 1
        return None


@dataclass(frozen=True)
class AssetPackages:
    """What `drift` needs of an asset. `platform` as `platform_of_os` gives it
    (None when unknown); `installed` maps package name to installed versions."""

    asset_id: int
    hostname: str
    platform: str | None
    installed: Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class DriftRow:
    """One (asset, package) against its baseline entry. `installed` is the
    newest installed version (None when missing); `detail` says why in words."""

    asset_id: int
    hostname: str
    package: str
    installed: str | None
    expected: str
    mode: BaselineMode
    status: DriftStatus
    detail: str


def _entries_by_package(entries: Iterable[BaselineEntry]) -> dict[str, list[BaselineEntry]]:
    by_package: dict[str, list[BaselineEntry]] = defaultdict(list)
    seen: set[tuple[str, str | None]] = set()
    for entry in entries:
        key = (entry.package, entry.os_release)
        if key in seen:
            where = f" on {entry.os_release}" if entry.os_release else ""
            raise InvalidPolicy(
                f"the baseline names {entry.package}{where} twice; keep one entry per "
                "package and os_release"
            )
        seen.add(key)
        by_package[entry.package].append(entry)
    return by_package


def _pick(candidates: list[BaselineEntry], platform: str | None) -> BaselineEntry | None:
    best: BaselineEntry | None = None
    best_fit = -1
    for entry in candidates:
        fit = entry.specificity(platform)
        if fit is not None and fit > best_fit:
            best, best_fit = entry, fit
    return best


def _verdict(
    entry: BaselineEntry,
    versions: Sequence[str],
    scheme: VersionScheme | None,
    platform: str | None,
) -> tuple[str | None, DriftStatus, str]:
    """(newest installed version, status, detail) of one package on one asset."""
    wants = f"{entry.mode} {entry.version}"
    if not versions:
        return None, "missing", f"not installed (baseline: {wants})"
    if scheme is None:
        return (
            versions[0],
            "not_comparable",
            f"platform {platform or 'unknown'} has no known version scheme, so "
            f"{', '.join(versions)} cannot be compared with {wants}",
        )
    keyed = []
    for version in versions:
        try:
            keyed.append((scheme.parse(version), version))
        except InvalidVersion as exc:
            return (
                version,
                "not_comparable",
                f"installed version {version!r} is not a {scheme.name} version: {exc.rule}",
            )
    newest_key, newest = max(keyed, key=lambda item: item[0])
    try:
        expected = scheme.parse(entry.version)
    except InvalidVersion as exc:
        return (
            newest,
            "not_comparable",
            f"baseline version {entry.version!r} is not a {scheme.name} version: {exc.rule}",
        )
    of = f" (newest of {len(versions)} installed)" if len(versions) > 1 else ""
    if entry.mode == "minimum":
        if newest_key >= expected:
            return newest, "ok", f"{newest}{of} ≥ minimum {entry.version}"
        return newest, "below_minimum", f"{newest}{of} < minimum {entry.version}"
    if newest_key == expected:
        return newest, "ok", f"{newest}{of} is the desired version"
    relation = "newer" if newest_key > expected else "older"
    return newest, "differs", f"{newest}{of} is {relation} than desired {entry.version}"


def drift(
    assets: Iterable[AssetPackages],
    entries: Iterable[BaselineEntry],
    scheme_for_platform: Callable[[str], str] = scheme_of_platform,
    *,
    include_ok: bool = False,
) -> tuple[DriftRow, ...]:
    """Every (asset, baselined package) that deviates, or with `include_ok`
    every one; sorted by hostname, asset id and package.

    `scheme_for_platform` names the version scheme of a platform and raises
    KeyError for one it does not know (its rows become "not_comparable").
    """
    by_package = _entries_by_package(entries)
    rows: list[DriftRow] = []
    for asset in assets:
        scheme: VersionScheme | None = None
        if asset.platform is not None:
            try:
                scheme = get_scheme(scheme_for_platform(asset.platform))
            except KeyError:
                scheme = None
        for package, candidates in by_package.items():
            entry = _pick(candidates, asset.platform)
            if entry is None:
                continue
            versions = tuple(asset.installed.get(package, ()))
            installed, status, detail = _verdict(entry, versions, scheme, asset.platform)
            if status == "ok" and not include_ok:
                continue
            rows.append(
                DriftRow(
                    asset.asset_id,
                    asset.hostname,
                    package,
                    installed,
                    entry.version,
                    entry.mode,
                    status,
                    detail,
                )
            )
    rows.sort(key=lambda row: (row.hostname, row.asset_id, row.package))
    return tuple(rows)


@dataclass(frozen=True)
class VersionAssets:
    """One installed version of a package and the assets that run it."""

    version: str
    asset_ids: tuple[int, ...]


@dataclass(frozen=True)
class PackageSprawl:
    """How many versions of one package run across the assets. `versions` is
    ordered by number of assets (most first), then version text; `missing`
    lists the assets without the package."""

    package: str
    versions: tuple[VersionAssets, ...]
    missing: tuple[int, ...] = ()

    @property
    def distinct(self) -> int:
        return len(self.versions)


def version_sprawl(rows: Iterable[DriftRow]) -> tuple[PackageSprawl, ...]:
    """Per package: the distinct installed versions and who runs each, most
    versions first (then by package name). Versions are told apart by their
    text as the package manager reported it. Give it ``drift(...,
    include_ok=True)`` rows to see every asset, not only the deviating ones."""
    packages: dict[str, None] = {}  # every package seen, also one that is only missing
    versions: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    missing: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        packages[row.package] = None
        if row.installed is None:
            missing[row.package].add(row.asset_id)
        else:
            versions[row.package][row.installed].add(row.asset_id)
    result = [
        PackageSprawl(
            package,
            tuple(
                VersionAssets(version, tuple(sorted(ids)))
                for version, ids in sorted(
                    versions.get(package, {}).items(), key=lambda kv: (-len(kv[1]), kv[0])
                )
            ),
            tuple(sorted(missing.get(package, ()))),
        )
        for package in packages
    ]
    result.sort(key=lambda sprawl: (-sprawl.distinct, sprawl.package))
    return tuple(result)
