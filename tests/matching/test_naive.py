"""The fast engine and the naive algorithm agree, on real advisories and inventories."""

from __future__ import annotations

import random
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patchwarden.domain.advisories import Advisory
from patchwarden.domain.inventory import InstalledPackage
from patchwarden.matching import AdvisoryIndex, MatchCache, match_packages, naive_match
from tests.matching import realdata

DISTROS = ("debian:11", "debian:10", "debian:9", "ubuntu:22.04", "ubuntu:24.04")
DEB_TWEAKS = ("", "", "~1", "+b1", ".1", "-1", "+deb11u1", "~deb10u1")
PYPI_TWEAKS = ("", "", ".post1", "rc1", ".0", ".dev0", "+local.1", "-1", "a1")
EPOCHS = ("", "", "", "1:", "2:")
# Names with a great many records (tensorflow-*, django ...) make the naive side slow.
MAX_RECORDS_PER_PYPI_NAME = 8


@cache
def corpus() -> tuple[Advisory, ...]:
    pypi = realdata.all_pypi()
    per_name: dict[str, int] = {}
    for advisory in pypi:
        for entry in advisory.affected:
            per_name[entry.name] = per_name.get(entry.name, 0) + 1
    small = tuple(
        a for a in pypi if all(per_name[e.name] <= MAX_RECORDS_PER_PYPI_NAME for e in a.affected)
    )
    return (*realdata.all_debian(), *small, *realdata.all_usn())


@cache
def index() -> AdvisoryIndex:
    return AdvisoryIndex.build(corpus())


@cache
def pools() -> dict[str, list[tuple[str, list[str], tuple[str, ...]]]]:
    """Per platform: (name, versions the advisories mention, binaries) triples."""
    binaries: dict[tuple[str, str], tuple[str, ...]] = {}
    for advisory in corpus():
        for entry in advisory.affected:
            binaries[(entry.platform, entry.name)] = entry.binaries
    found: dict[str, list[tuple[str, list[str], tuple[str, ...]]]] = {}
    for (platform, name), versions in sorted(realdata.versions_of(corpus()).items()):
        if versions and (platform in DISTROS or platform == "pypi"):
            found.setdefault(platform, []).append(
                (name, sorted(versions), binaries[(platform, name)])
            )
    found["pypi"].append(("never-advised-package", ["1.0"], ()))
    return found


def make_package(
    platform: str, name: str, version: str, shape: int, binaries: tuple[str, ...]
) -> InstalledPackage:
    if platform == "pypi":
        spelling = (name, name.upper(), name.replace("-", "_"), name.replace("-", "."))
        return InstalledPackage("pypi", spelling[shape % len(spelling)], version)
    if shape == 0:  # the source package itself
        return InstalledPackage("deb", name, version, "amd64")
    if shape == 1:  # a binNMU'd binary of it
        return InstalledPackage("deb", f"lib{name}", f"{version}+b1", "amd64", name, version)
    if shape == 2 and binaries:  # a binary named by the advisory, source not reported
        return InstalledPackage("deb", binaries[0], version, "amd64")
    return InstalledPackage("deb", f"{name}-unadvised", version, "amd64")


@st.composite
def inventories(draw: st.DrawFn) -> tuple[str, list[InstalledPackage]]:
    distro = draw(st.sampled_from(DISTROS))
    packages: list[InstalledPackage] = []
    for _ in range(draw(st.integers(0, 8))):
        platform = distro if draw(st.booleans()) and distro in pools() else "pypi"
        name, versions, binaries = draw(st.sampled_from(pools()[platform]))
        version = draw(st.sampled_from(versions))
        if platform == "pypi":
            version += draw(st.sampled_from(PYPI_TWEAKS))
        else:
            version = draw(st.sampled_from(EPOCHS)) + version + draw(st.sampled_from(DEB_TWEAKS))
        packages.append(make_package(platform, name, version, draw(st.integers(0, 4)), binaries))
    return distro, packages


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inventories())
def test_engine_equals_naive_on_random_inventories(
    inventory: tuple[str, list[InstalledPackage]],
) -> None:
    distro, packages = inventory
    assert match_packages(index(), distro, packages) == naive_match(corpus(), distro, packages)


def test_engine_equals_naive_on_a_large_real_inventory() -> None:
    rng = random.Random(20240611)
    for distro in ("debian:11", "ubuntu:22.04"):
        packages: list[InstalledPackage] = []
        for platform in (distro, "pypi"):
            pool = pools()[platform]
            for name, versions, binaries in rng.sample(pool, min(80, len(pool))):
                for version in rng.sample(versions, min(2, len(versions))):
                    packages.append(
                        make_package(platform, name, version, rng.randrange(5), binaries)
                    )
        expected = naive_match(corpus(), distro, packages)
        assert len(expected) > 50  # the sample is meant to hit
        assert match_packages(index(), distro, packages) == expected
        shared = MatchCache()
        assert match_packages(index(), distro, packages, cache=shared) == expected
        assert match_packages(index(), distro, packages, cache=shared) == expected
