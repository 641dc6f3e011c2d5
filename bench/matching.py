"""Micro-benchmark of matching on the real corpus (not collected by pytest).

    .venv/bin/python -m bench.matching [--assets N]

Corpus: every DSA, DLA and PyPI OSV record in shared/data plus the USN sample.
Inventory: this machine's dpkg packages (real names, bookworm versions, matched as
if on bullseye, the newest release in the data) topped up to 1,500 packages with
PyPI packages at versions the advisories mention. Reports index build time,
packages per second cold (fresh index and cache), warm (cache shared with an
earlier identical asset), for a fleet of assets that differ a little, and for the
naive algorithm.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from tests.matching import realdata

from patchwarden.domain.inventory import InstalledPackage
from patchwarden.matching import (
    AdvisoryIndex,
    FleetMatcher,
    MatchCache,
    match_packages,
    naive_match,
)
from patchwarden.scan import parse_dpkg_status

PLATFORM = "debian:11"
SIZE = 1500


def inventory(rng: random.Random) -> list[InstalledPackage]:
    status = Path("/var/lib/dpkg/status")
    packages = parse_dpkg_status(status.read_text(encoding="utf-8"))[0] if status.is_file() else []
    mentioned = realdata.versions_of(realdata.all_debian())
    bullseye = sorted((n, sorted(v)) for (p, n), v in mentioned.items() if p == PLATFORM)
    while len(packages) < SIZE * 2 // 3:  # no dpkg here: bullseye source packages instead
        name, versions = rng.choice(bullseye)
        packages.append(InstalledPackage("deb", name, rng.choice(versions), "amd64"))
    pypi = sorted(
        (n, sorted(v))
        for (p, n), v in realdata.versions_of(realdata.all_pypi()).items()
        if p == "pypi" and v
    )
    for name, versions in rng.sample(pypi, SIZE - len(packages)):
        packages.append(InstalledPackage("pypi", name, rng.choice(versions)))
    return packages[:SIZE]


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>12,.0f} packages/s ({seconds * 1000:8.1f} ms for {count:,})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=2000, help="fleet size to simulate")
    args = parser.parse_args()
    rng = random.Random(7)
    advisories = [*realdata.all_debian(), *realdata.all_pypi(), *realdata.all_usn()]
    packages = inventory(rng)

    start = time.perf_counter()
    index = AdvisoryIndex.build(advisories)
    print(f"index: {len(index):,} advisories in {time.perf_counter() - start:.2f} s")

    start = time.perf_counter()
    matches = match_packages(index, PLATFORM, packages)
    print(f"cold:   {rate(len(packages), time.perf_counter() - start)}; {len(matches)} matches")
    cache = MatchCache()
    match_packages(index, PLATFORM, packages, cache=cache)
    rounds = 50
    start = time.perf_counter()
    for _ in range(rounds):
        match_packages(index, PLATFORM, packages, cache=cache)
    print(f"warm:   {rate(len(packages) * rounds, time.perf_counter() - start)}")

    # A fleet: every asset is the base inventory with ~2% of packages at another version.
    fresh = AdvisoryIndex.build(advisories)
    fleet = FleetMatcher(fresh)
    mentioned = realdata.versions_of(advisories)
    assets: list[list[InstalledPackage]] = []
    for _ in range(args.assets):
        asset = list(packages)
        for i in rng.sample(range(len(asset)), len(asset) // 50):
            p = asset[i]
            platform = "pypi" if p.ecosystem == "pypi" else PLATFORM
            choices = sorted(mentioned.get((platform, p.source_name or p.name), {p.version}))
            asset[i] = p._replace(version=rng.choice(choices), source_version=None)
        assets.append(asset)
    start = time.perf_counter()
    found = sum(len(fleet.match(PLATFORM, asset)) for asset in assets)
    total = sum(len(asset) for asset in assets)
    print(f"fleet:  {rate(total, time.perf_counter() - start)} over {args.assets:,} assets")
    print(f"        {found:,} matches; {len(fleet.cache):,} distinct package rows evaluated")

    sample = packages[:150]
    start = time.perf_counter()
    naive = naive_match(advisories, PLATFORM, sample)
    print(f"naive:  {rate(len(sample), time.perf_counter() - start)}")
    assert naive == match_packages(index, PLATFORM, sample)


if __name__ == "__main__":
    main()
