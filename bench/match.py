"""bench/match: vulnerability matching for a whole fleet, end to end.

Builds N assets (default 10,000) whose package lists come from real data in
../shared/data: Debian source packages and their fixed versions per release
from the DSA/DLA lists — some installed older than a fix, some equal, some
newer — plus PyPI packages from the PyPA advisories, ~1,500 packages each,
grouped into machine templates with per-asset variation (realistic overlap).
Imports every shared advisory feed, then prints: full match time for the fleet
(including writing findings), findings written per second, a full re-match and
a full re-score (a day's EPSS update) with nothing changed, a feed change to
the most widespread package (its holders match it again), re-match of one
changed asset, the fleet-wide questions (top risks, one asset's findings, which
assets have the most widespread vulnerability, the findings of the package with
the most, compliance figures), peak
memory, and the naive approach (every package row against every advisory range
of its name, no pre-parsing, no de-duplication) timed on a slice and
extrapolated — for SQLite and PostgreSQL.

    python bench/match.py [--assets 10000] [--packages 1500] [--only sqlite]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, or_, select, text

from patchwarden.domain.advisories import DEBIAN_CODENAMES
from patchwarden.domain.inventory import InstalledPackage
from patchwarden.matching.engine import match_packages, naive_match
from patchwarden.services import exceptions, feeds, findings
from patchwarden.storage.bulk import FINDING_COLUMNS, insert_packages
from patchwarden.storage.db import make_engine, make_session_factory, transaction, upgrade
from patchwarden.storage.tables import Asset, Finding

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
POSTGRES_URL = os.environ.get(
    "PATCHWARDEN_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# Threads sharing the full match, as the server runs it (PostgreSQL only: SQLite has
# one writer).
WORKERS = 2
INCREMENTAL_RUNS = 7
QUERY_RUNS = 5
RELEASES = ("9", "10", "11")  # stretch, buster, bullseye: the releases the DSA/DLA data covers best
FEED_PATHS = [
    SHARED / "debian" / "DSA_list.txt",
    SHARED / "debian" / "DLA_list.txt",
    SHARED / "osv-pypi" / "pypa_advisory_database.jsonl",
    SHARED / "ubuntu-osv" / "usn_sample.jsonl",
    SHARED / "alpine-secdb",
    SHARED / "kev" / "known_exploited_vulnerabilities.json",
]


def debian_universe() -> dict[str, dict[str, list[str]]]:
    """release number -> source package -> fixed versions, from the parsed DSA/DLA lists."""
    universe: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for name in ("DSA_list.parsed.jsonl", "DLA_list.parsed.jsonl"):
        for line in (SHARED / "debian" / name).read_text().splitlines():
            record = json.loads(line)
            for fixed in record["fixed"]:
                release = DEBIAN_CODENAMES.get(fixed["release"])
                if release in RELEASES and fixed.get("fixed_version"):
                    universe[release][fixed["package"]].append(fixed["fixed_version"])
    return universe


def pypi_universe() -> dict[str, list[str]]:
    """PyPI package -> versions named by advisories (affected lists and fixes)."""
    versions: dict[str, set[str]] = defaultdict(set)
    for line in (SHARED / "osv-pypi" / "pypa_advisory_database.jsonl").read_text().splitlines():
        record = json.loads(line)
        for affected in record.get("affected", []):
            name = affected["package"]["name"].lower()
            versions[name].update(affected.get("versions", [])[:20])
            for r in affected.get("ranges", []):
                versions[name].update(e["fixed"] for e in r["events"] if "fixed" in e)
    return {name: sorted(v) for name, v in versions.items() if v}


def variant(rng: random.Random, fixed: str) -> str:
    """A version just below, equal to, or just above a fixed version."""
    roll = rng.random()
    if roll < 0.45:
        return fixed + "~bench1"  # '~' sorts before anything: older than the fix
    if roll < 0.7:
        return fixed
    return fixed + "+bench1"


def make_templates(
    rng: random.Random, packages: int, per_release: int
) -> list[tuple[str, list[InstalledPackage]]]:
    debian, pypi = debian_universe(), pypi_universe()
    pypi_names = sorted(pypi)
    templates = []
    for release in RELEASES:
        names = sorted(debian[release])
        for _ in range(per_release):
            # A server's ~1,500 binary packages come from ~600 sources, of which a
            # couple of hundred have ever had a security advisory.
            chosen = rng.sample(names, min(len(names), packages // 7))
            rows = [
                InstalledPackage(
                    "deb", n, variant(rng, rng.choice(debian[release][n])), "amd64", n, None
                )
                for n in chosen
            ]
            rows += [
                InstalledPackage(
                    "deb", f"bench-filler-{i}", f"1.{i}-1", "amd64", f"bench-filler-{i}"
                )
                for i in range(packages - len(rows) - 60)
            ]
            rows += [
                InstalledPackage("pypi", n, rng.choice(pypi[n])) for n in rng.sample(pypi_names, 60)
            ]
            templates.append((release, rows))
    return templates


def build_fleet(factory: Any, assets: int, packages: int, seed: int = 11) -> list[int]:
    rng = random.Random(seed)
    templates = make_templates(rng, packages, per_release=8)
    now = datetime.now(UTC)
    ids: list[int] = []
    for start in range(0, assets, 500):
        with transaction(factory) as session:
            for i in range(start, min(assets, start + 500)):
                release, rows = templates[i % len(templates)]
                # Each machine drifts a little from its template.
                rows = [
                    p._replace(version=p.version + "+local1") if rng.random() < 0.01 else p
                    for p in rows
                ]
                asset = Asset(
                    hostname=f"bench-{i:05d}",
                    source="agent",
                    os_id="debian",
                    os_version_id=release,
                    criticality=rng.choice((1, 2, 3, 4)),
                    internet_facing=rng.random() < 0.2,
                    package_count=len(rows),
                    findings_dirty=True,
                )
                session.add(asset)
                session.flush()
                insert_packages(session, asset.id, rows, now)
                ids.append(asset.id)
    return ids


def fresh_url(backend: str, workdir: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{workdir / 'match.db'}"
    admin = make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text('DROP DATABASE IF EXISTS "pwbench_match"'))
        connection.execute(text('CREATE DATABASE "pwbench_match"'))
    admin.dispose()
    return POSTGRES_URL.rsplit("/", 1)[0] + "/pwbench_match"


def run(backend: str, assets: int, packages: int, naive_slice: int) -> None:
    with tempfile.TemporaryDirectory(prefix="pwbench-match-") as tmp:
        url = fresh_url(backend, Path(tmp))
        engine = make_engine(url)
        upgrade(engine)
        factory = make_session_factory(engine)
        started = time.perf_counter()
        for path in FEED_PATHS:
            feeds.import_feed(factory, path, None, "bench")
        imported = time.perf_counter() - started
        started = time.perf_counter()
        ids = build_fleet(factory, assets, packages)
        built = time.perf_counter() - started
        with transaction(factory) as session:  # the import marked nothing; the fleet came later
            session.execute(text("UPDATE assets SET findings_dirty = true"))

        started = time.perf_counter()
        result = findings.recompute_dirty(factory, batch=200, workers=WORKERS)
        full = time.perf_counter() - started
        full_peak = peak_megabytes()
        with transaction(factory) as session:
            written = session.execute(select(func.count()).select_from(Finding)).scalar_one()

        rows = assets * packages
        print(
            f"\n[{backend}]  {assets} assets x {packages} packages = {rows:,} package rows",
            flush=True,
        )
        print(
            f"  feeds imported      {imported:8.1f} s   fleet built {built:.1f} s (setup, not measured)"
        )
        print(
            f"  full match          {full:8.1f} s   {result.assets} assets, {rows / full:,.0f} package rows/s"
            " (goal < 60 s)"
        )
        print(
            f"  findings written    {written:8,d}     {written / full:,.0f} findings/s", flush=True
        )
        # In a child process: SQLite's INSERT ... SELECT of millions of rows grows
        # its process by gigabytes, which would hide this process's own peak.
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as child:
            copied, floor = child.submit(write_floor, url, WORKERS).result()
        assert copied == written, (copied, written)
        print(
            f"  write floor         {floor:8.1f} s   the database alone copying these findings"
            f" into an empty findings table ({written / floor:,.0f} rows/s; in a child"
            f" process); the full match takes {full / floor:.2f}x that",
            flush=True,
        )

        # Every asset matched again with nothing to change (a matching fix, --all).
        with transaction(factory) as session:
            session.execute(text("UPDATE assets SET findings_dirty = true"))
        started = time.perf_counter()
        findings.recompute_dirty(factory, batch=200, workers=WORKERS)
        rematch = time.perf_counter() - started
        print(
            f"  full re-match       {rematch:8.1f} s   every asset matched again, nothing changed",
            flush=True,
        )
        # A day's EPSS scores: every asset re-scored, without matching again.
        with transaction(factory) as session:
            session.execute(text("UPDATE assets SET scores_dirty = true"))
        started = time.perf_counter()
        findings.recompute_dirty(factory, batch=200, workers=WORKERS)
        rescore = time.perf_counter() - started
        print(
            f"  full re-score       {rescore:8.1f} s   every asset's scores, nothing changed"
            f" (what a day's EPSS scores cost; {rematch / rescore:.1f}x less than a re-match)",
            flush=True,
        )

        # A feed change to the package with the most findings: its holders match
        # that package again, not all of their packages.
        common = widest_package(factory)
        started = time.perf_counter()
        with transaction(factory) as session:
            holders = findings.mark_assets_for_names(
                session, [(f"debian:{release}", common) for release in RELEASES]
            )
        marked = time.perf_counter() - started
        started = time.perf_counter()
        findings.recompute_dirty(factory, batch=200, workers=WORKERS)
        by_name = time.perf_counter() - started
        print(
            f"  one package changed {by_name:8.1f} s   an advisory of {common} changed: {holders}"
            f" holders match it again (marking them {marked:.1f} s; matching all of their"
            f" packages again ~{rematch * holders / assets:.1f} s)",
            flush=True,
        )

        # One asset changes: three packages upgraded past their fixes.
        target = ids[len(ids) // 2]
        with transaction(factory) as session:
            session.execute(
                text(
                    "UPDATE installed_packages SET version = version || '+bench9', source_version = NULL "
                    "WHERE id IN (SELECT id FROM installed_packages WHERE asset_id = :a AND removed_at IS NULL "
                    "AND name NOT LIKE 'bench-filler%' ORDER BY id LIMIT 3)"
                ),
                {"a": target},
            )
            session.execute(
                text("UPDATE assets SET findings_dirty = true WHERE id = :a"), {"a": target}
            )
        findings.recompute_dirty(factory)  # warm: index cached as in a running server
        incremental_runs = []
        for _ in range(INCREMENTAL_RUNS):
            with transaction(factory) as session:
                session.execute(
                    text("UPDATE assets SET findings_dirty = true WHERE id = :a"), {"a": target}
                )
            started = time.perf_counter()
            findings.recompute_dirty(factory)
            incremental_runs.append(time.perf_counter() - started)
        incremental_runs.sort()
        incremental = incremental_runs[len(incremental_runs) // 2]

        queries = fleet_queries(factory, target)

        # The naive approach on a slice: every row against every range of its name.
        with transaction(factory) as session:
            advisories = findings.load_advisories(session)
            slice_ids = ids[:naive_slice]
            inventories = []
            for asset_id in slice_ids:
                asset = session.get(Asset, asset_id)
                assert asset is not None
                platform = f"debian:{asset.os_version_id}"
                inventories.append((findings.current_packages(session, asset_id), platform))
            index = findings.INDEX_CACHE.get(session)
        started = time.perf_counter()
        naive_count = sum(
            len(naive_match(advisories, platform, pkgs)) for pkgs, platform in inventories
        )
        naive = (time.perf_counter() - started) * len(ids) / len(slice_ids)
        started = time.perf_counter()
        fast_count = sum(
            len(match_packages(index, platform, pkgs)) for pkgs, platform in inventories
        )
        fast_slice = (time.perf_counter() - started) * len(ids) / len(slice_ids)
        assert naive_count == fast_count, (naive_count, fast_count)
        resident = resident_megabytes()  # before the connections unmap their files
        engine.dispose()
    peak = peak_megabytes()
    print(
        f"  one changed asset   {incremental * 1000:8.1f} ms  median of {INCREMENTAL_RUNS},"
        f" slowest {incremental_runs[-1] * 1000:.1f} ms (goal < 50 ms)"
    )
    print(
        f"  naive, extrapolated {naive:8.1f} s   from {naive_slice} assets -> {naive / full:.1f}x slower than the full match"
        f" end to end, {naive / fast_slice:.1f}x slower than matching alone (goal >= 20x)"
    )
    for name, seconds in queries.items():
        print(f"  {name:<19} {seconds * 1000:8.1f} ms  median of {QUERY_RUNS}")
    print(
        f"  peak memory         {peak:8.0f} MB resident, whole run of this backend's process"
        f" (the write floor's child apart); {full_peak:.0f} MB by the end of the full match"
    )
    print(
        f"  resident at the end {resident['RssAnon']:8.0f} MB heap (index, caches) +"
        f" {resident['RssFile']:.0f} MB of mapped files (SQLite's memory-mapped reads,"
        " shared with the page cache)"
    )


# -- the database's own floor for writing these findings ------------------------------
# The findings a full match just wrote are copied into an empty table of the same
# schema (columns, primary key, unique identity, indexes, foreign key) with one
# INSERT ... SELECT per writer: no Python per row, no matching, no encoding. That is
# the least any code storing one row per finding can spend writing them on this
# machine, so the full match reads against it. It slightly overstates the floor: it
# also reads the findings it copies.

FLOOR_TABLE = "bench_floor"


def _create_sqlite(engine: Engine) -> None:
    with engine.begin() as connection:
        ddl = connection.execute(
            text("SELECT sql FROM sqlite_master WHERE tbl_name = 'findings' AND sql IS NOT NULL")
        ).scalars()
        for statement in ddl:
            statement = re.sub(r"\bfindings\b", FLOOR_TABLE, statement)
            connection.execute(text(statement.replace("_findings_", f"_{FLOOR_TABLE}_")))


def _create_postgres(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                f"CREATE TABLE {FLOOR_TABLE} (LIKE findings INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
                " INCLUDING INDEXES)"
            )
        )
        # Its own id sequence (LIKE shares the findings'), and the foreign key LIKE omits.
        connection.execute(text(f"CREATE SEQUENCE {FLOOR_TABLE}_id_seq OWNED BY {FLOOR_TABLE}.id"))
        connection.execute(
            text(
                f"ALTER TABLE {FLOOR_TABLE} ALTER COLUMN id SET DEFAULT nextval('{FLOOR_TABLE}_id_seq')"
            )
        )
        connection.execute(
            text(
                f"ALTER TABLE {FLOOR_TABLE} ADD FOREIGN KEY (asset_id) REFERENCES assets (id)"
                " ON DELETE CASCADE"
            )
        )


def write_floor(url: str, writers: int) -> tuple[int, float]:
    """(rows copied, seconds): the findings copied by `writers` concurrent
    connections, each taking the assets whose id falls to it, as the full match
    shares its assets between workers (SQLite has one writer)."""
    engine = make_engine(url)
    postgres = engine.dialect.name == "postgresql"
    writers = writers if postgres else 1
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {FLOOR_TABLE}"))
    (_create_postgres if postgres else _create_sqlite)(engine)
    columns = ", ".join(FINDING_COLUMNS)

    def copy(share: int) -> None:
        with engine.begin() as connection:
            connection.execute(
                text(
                    f"INSERT INTO {FLOOR_TABLE} ({columns}) SELECT {columns} FROM findings"
                    " WHERE asset_id % :writers = :share"
                ),
                {"writers": writers, "share": share},
            )

    started = time.perf_counter()
    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(copy, range(writers)))
    seconds = time.perf_counter() - started
    with engine.begin() as connection:
        copied = connection.execute(text(f"SELECT count(*) FROM {FLOOR_TABLE}")).scalar_one()
        connection.execute(text(f"DROP TABLE {FLOOR_TABLE}"))
    engine.dispose()
    return int(copied), seconds


def peak_megabytes() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def resident_megabytes() -> dict[str, float]:
    """This process's resident memory now, by kind (Linux's /proc/self/status)."""
    kinds = {"RssAnon": 0.0, "RssFile": 0.0}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in kinds:
            kinds[name] = int(value.split()[0]) / 1024  # kB
    return kinds


def median_seconds(factory: Any, question: Any) -> float:
    """The median time of QUERY_RUNS answers to `question(session)`, each in its own
    transaction."""
    runs = []
    for _ in range(QUERY_RUNS):
        with transaction(factory) as session:
            started = time.perf_counter()
            question(session)
            runs.append(time.perf_counter() - started)
    return sorted(runs)[QUERY_RUNS // 2]


def widest_package(factory: Any) -> str:
    """The source package with the most findings."""
    with transaction(factory) as session:
        package = session.execute(
            select(Finding.source_name)
            .where(Finding.source_name.is_not(None))
            .group_by(Finding.source_name)
            .order_by(func.count().desc())
            .limit(1)
        ).scalar_one()
    assert package is not None  # the query keeps source names
    return package


def fleet_queries(factory: Any, asset_id: int) -> dict[str, float]:
    """Median times of the questions the API and CLI answer over the whole fleet."""
    with transaction(factory) as session:
        widest = session.execute(
            select(Finding.vulnerability_id)
            .group_by(Finding.vulnerability_id)
            .order_by(func.count().desc())
            .limit(1)
        ).scalar_one()
    package = widest_package(factory)  # the largest by-package answer
    questions = {
        "top 20 risks": findings.FindingFilter(),
        "one asset's": findings.FindingFilter(asset_id=asset_id),
        f"assets with {widest[:7]}": findings.FindingFilter(vulnerability_id=widest),
        f"package {package[:11]}": findings.FindingFilter(package=package),
    }
    timings: dict[str, float] = {}
    for name, flt in questions.items():
        limit = 20 if name.startswith("top") else 1000
        timings[name] = median_seconds(
            factory,
            lambda session, flt=flt, limit=limit: findings.list_findings(session, flt, limit),
        )
    timings["compliance figures"] = median_seconds(factory, exceptions.compliance)
    # For comparison, in the same run: the same answers read the way they were
    # before per-asset counts and package names (a count or a scan of every finding).
    timings["  by counting all"] = median_seconds(factory, count_every_finding)
    timings["  package, scanned"] = median_seconds(
        factory,
        lambda session: session.execute(
            select(Finding, Asset.hostname)
            .join(Asset, Asset.id == Finding.asset_id)
            .where(
                or_(Finding.package_name == package, Finding.source_name == package),
                Finding.status == "open",
            )
            .order_by(Finding.risk_score.desc(), Finding.asset_id, Finding.id)
            .limit(1000)
        ).all(),
    )
    return timings


def count_every_finding(session: Any) -> None:
    """The compliance figures' finding counts taken over the findings table."""
    now = datetime.now(UTC)
    session.execute(select(Finding.status, func.count()).group_by(Finding.status)).all()
    session.execute(
        select(func.count()).where(Finding.status == "open", Finding.due_at < now)
    ).scalar_one()
    session.execute(
        select(func.count(func.distinct(Finding.asset_id))).where(Finding.status == "open")
    ).scalar_one()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--packages", type=int, default=1500)
    parser.add_argument("--naive-slice", type=int, default=50)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"shared data not found at {SHARED}")
    if args.only is not None:
        run(args.only, args.assets, args.packages, min(args.naive_slice, args.assets))
        return
    # One process per backend, so that each one's peak memory is its own.
    for backend in ["sqlite", "postgresql"]:
        command = [sys.executable, __file__, "--only", backend]
        command += ["--assets", str(args.assets), "--packages", str(args.packages)]
        command += ["--naive-slice", str(args.naive_slice)]
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
