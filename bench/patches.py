"""bench/patches: available patches from real Debian repository metadata.

Serves this machine's real apt lists (/var/lib/apt/lists after `apt-get
update`: bookworm, bookworm-updates, bookworm-security) on loopback as a
mirror, then prints:

* parse time of the bookworm main Packages index (pure parser), and the time of
  a full repository sync through the service (download, verify, parse, store);
* patch computation for N assets (default 10,000: this machine's package list
  with 10 % of packages downgraded per asset, as the Patchman harness does),
  end to end from the database (index build, matching, writes), and peak memory;
* in the same run, Patchman 4.0.21 (../shared/peers/patchman/run.sh) on its
  host reports, and Patchwarden on the very same reports (ingest + patches,
  answers checked against the harness's reference), as a per-host ratio.

    python bench/patches.py [--assets 10000] [--patchman-hosts 10] [--skip-patchman]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.domain.inventory import Facts, InstalledPackage
from patchwarden.repos._compression import decompress
from patchwarden.repos.apt import parse_packages
from patchwarden.services import ingest, patches, repositories
from patchwarden.storage.bulk import insert_packages
from patchwarden.storage.db import make_engine, make_session_factory, transaction, upgrade
from patchwarden.storage.tables import Asset, AssetPatch, Patch

LISTS = Path("/var/lib/apt/lists")
PEER = Path(__file__).resolve().parents[2] / "shared" / "peers" / "patchman"
LIST_RE = re.compile(r"^(?P<host>[^_]+)_(?P<root>.+)_dists_(?P<suite>[^_]+)_InRelease$")
SUITES = ("bookworm", "bookworm-updates", "bookworm-security")


def build_mirror(out: Path) -> dict[str, str]:
    """dists/<suite>/{InRelease, main/binary-amd64/Packages} from the apt lists:
    apt keeps the index lz4-compressed; the plain text is what Release hashes."""
    roots: dict[str, str] = {}
    for release in sorted(LISTS.glob("*_InRelease")):
        match = LIST_RE.match(release.name)
        if match is None or match["suite"] not in SUITES:
            continue
        suite, root = match["suite"], match["root"].replace("_", "/")
        base = out / root / "dists" / suite
        (base / "main" / "binary-amd64").mkdir(parents=True, exist_ok=True)
        shutil.copy(release, base / "InRelease")
        stem = release.name.removesuffix("_InRelease")
        [packages] = LISTS.glob(f"{stem}_main_binary-amd64_Packages*")
        plain = decompress(packages.read_bytes(), packages.name)
        (base / "main" / "binary-amd64" / "Packages").write_bytes(plain)
        roots[suite] = root
    missing = set(SUITES) - set(roots)
    if missing:
        sys.exit(f"apt lists lack {', '.join(sorted(missing))}: run apt-get update")
    return roots


@contextlib.contextmanager
def serve(root: Path) -> Iterator[str]:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def this_machine() -> list[InstalledPackage]:
    """The Patchman harness's frozen package list of this machine (name, arch, version)."""
    rows = []
    for line in (PEER / "fixture" / "installed-packages.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            name, arch, version = line.split("\t")[:3]
            rows.append(InstalledPackage("deb", name, version, arch, name, version))
    return rows


def older(version: str) -> str:
    """A lower version: the last number decremented, else '~bench1' appended."""
    numbers = list(re.finditer(r"\d+", version))
    if numbers and int(numbers[-1].group()) > 0:
        last = numbers[-1]
        return version[: last.start()] + str(int(last.group()) - 1) + version[last.end() :]
    return version + "~bench1"


def fleet(
    count: int, base: list[InstalledPackage], seed: str = "20250601"
) -> Iterator[list[InstalledPackage]]:
    picks = round(0.10 * len(base))
    for i in range(count):
        rng = random.Random(f"{seed}:{i}")
        chosen = set(rng.sample(range(len(base)), picks))
        yield [
            p._replace(version=older(p.version)) if n in chosen else p for n, p in enumerate(base)
        ]


def add_repositories(factory: sessionmaker[Session], url: str, roots: dict[str, str]) -> float:
    with transaction(factory) as session:
        for suite in SUITES:
            repositories.add_repository(
                session,
                "bench",
                name=suite,
                kind="apt",
                url=f"{url}/{roots[suite]}",
                suite=suite,
                platform="debian:12",
            )
    started = time.perf_counter()
    results = repositories.sync(factory, "bench")
    elapsed = time.perf_counter() - started
    failed = [r for r in results if r.status != "updated"]
    if failed:
        sys.exit(f"sync failed: {failed}")
    return elapsed


def new_database(workdir: Path, name: str) -> tuple[Engine, sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{workdir / name}")
    upgrade(engine)
    return engine, make_session_factory(engine)


def run_ours(args: argparse.Namespace, workdir: Path, url: str, roots: dict[str, str]) -> float:
    main_index = LISTS.glob("*_debian_dists_bookworm_main_binary-amd64_Packages*")
    path = next(iter(main_index))
    raw = path.read_bytes()
    started = time.perf_counter()
    parsed = parse_packages(raw, path.name)  # decompresses by name
    parse = time.perf_counter() - started
    print(
        f"  parse bookworm main  {parse:8.2f} s   {len(parsed):,} packages ({len(raw) / 1e6:.1f} MB lz4)"
    )

    engine, factory = new_database(workdir, "fleet.db")
    synced = add_repositories(factory, url, roots)
    print(f"  sync 3 repositories  {synced:8.2f} s   download, verify, parse, store")

    base = this_machine()
    now = datetime.now(UTC)
    started = time.perf_counter()
    hosts = fleet(args.assets, base)
    for start in range(0, args.assets, 500):
        with transaction(factory) as session:
            for i in range(start, min(args.assets, start + 500)):
                asset = Asset(
                    hostname=f"bench-{i:05d}",
                    source="agent",
                    os_id="debian",
                    os_version_id="12",
                    package_count=len(base),
                    patches_dirty=True,
                )
                session.add(asset)
                session.flush()
                insert_packages(session, asset.id, next(hosts), now)
    built = time.perf_counter() - started
    print(
        f"  fleet                {args.assets:8,d}     assets x {len(base)} packages (built in {built:.0f} s, not measured)"
    )

    started = time.perf_counter()
    done = patches.recompute_dirty(factory, batch=200)
    elapsed = time.perf_counter() - started
    with transaction(factory) as session:
        written = session.execute(select(func.count()).select_from(AssetPatch)).scalar_one()
        distinct = session.execute(select(func.count()).select_from(Patch)).scalar_one()
    print(
        f"  patches computed     {elapsed:8.2f} s   {done.assets:,} assets, {written:,} asset patches"
        f" ({distinct:,} distinct), {elapsed / done.assets * 1000:.2f} ms per asset"
    )
    engine.dispose()
    return elapsed / done.assets


def report_packages(report: dict[str, str]) -> list[InstalledPackage]:
    """patchman-client's package lines: 'name' 'epoch' 'version' 'release' 'arch' 'deb'."""
    rows = []
    for line in report["packages"].splitlines():
        fields = re.findall(r"'([^']*)'", line)
        if len(fields) < 5:
            continue
        name, epoch, version, release, arch = fields[:5]
        full = (f"{epoch}:" if epoch else "") + version + (f"-{release}" if release else "")
        rows.append(InstalledPackage("deb", name, full, arch, name, full))
    return rows


def run_patchman(hosts: int) -> tuple[float, Path]:
    env = dict(
        os.environ, RESULTS_DIR=str(Path(tempfile.mkdtemp(prefix="pm-results-"))), SHOW_HOSTS="0"
    )
    completed = subprocess.run(
        ["bash", str(PEER / "run.sh"), str(hosts)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        sys.exit(f"patchman run failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
    line = (Path(env["RESULTS_DIR"]) / "timings.log").read_text().splitlines()[-1]
    fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
    per_host = (float(fields["process"]) + float(fields["updates(-u)"])) / hosts
    work = Path(
        os.environ.get("PATCHMAN_BENCH_WORK", f"{os.environ.get('TMPDIR', '/tmp')}/patchman-bench")
    )
    print(
        f"  patchman {hosts} hosts     process {fields['process']} s + updates {fields['updates(-u)']} s"
        f" = {per_host:.2f} s per host"
    )
    return per_host, work / f"reports-N{hosts}"


def ours_on_reports(workdir: Path, url: str, roots: dict[str, str], reports: Path) -> float:
    engine, factory = new_database(workdir, "same-reports.db")
    add_repositories(factory, url, roots)
    # The update index is built once per process and repository change (Patchman's
    # equivalent, its repository refresh, is outside its per-host figures too).
    started = time.perf_counter()
    with transaction(factory) as session:
        scopes = repositories.INDEX_CACHE.scopes(session)
        repositories.INDEX_CACHE.index(session, tuple(s.id for s in scopes))
    print(f"  update index built   {time.perf_counter() - started:8.2f} s   once per process")
    files = sorted(f for f in reports.glob("*.json") if f.name != "meta.json")
    started = time.perf_counter()
    ids = {}
    for file in files:
        report = json.loads(file.read_text())
        with transaction(factory) as session:
            asset = Asset(hostname=report["host"].lower(), source="agent")
            session.add(asset)
            session.flush()
            ingest.ingest_collected_inventory(
                session,
                asset.id,
                report_packages(report),
                Facts(hostname=report["host"], os_id="debian", os_version_id="12"),
                None,
                "agent",
            )
            ids[asset.hostname] = asset.id
        with transaction(factory) as session:
            patches.recompute_asset(session, asset.id)
    per_host = (time.perf_counter() - started) / len(files)
    # The harness's reference answers: host, name, arch, installed, new, security.
    expected: set[tuple[str, ...]] = set()
    reference = reports / "expected-updates.tsv"
    for line in reference.read_text().splitlines()[1:]:
        host, name, arch, installed, new, security = line.split("\t")[:6]
        expected.add((host.lower(), name, arch, installed, new, security))
    got: set[tuple[str, ...]] = set()
    with transaction(factory) as session:
        for hostname, asset_id in ids.items():
            for row in patches.list_patches(
                session, patches.PatchFilter(asset_id=asset_id), limit=100_000
            ):
                got.add(
                    (
                        hostname,
                        row["package"],
                        row["arch"],
                        row["installed_version"],
                        row["target_version"],
                        "1" if row["classification"] == "security" else "0",
                    )
                )
    engine.dispose()
    verdict = (
        "identical"
        if got == expected
        else f"DIFFERENT: {len(got - expected)} extra, {len(expected - got)} missing"
    )
    print(
        f"  patchwarden same     {per_host:8.3f} s per host (ingest + patches), answers vs reference: {verdict}"
    )
    return per_host


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--patchman-hosts", type=int, default=10)
    parser.add_argument("--skip-patchman", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pwbench-patches-") as tmp:
        workdir = Path(tmp)
        roots = build_mirror(workdir / "mirror")
        with serve(workdir / "mirror") as url:
            print("[patchwarden, SQLite]")
            run_ours(args, workdir, url, roots)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"  peak memory          {peak:8.0f} MB")
            if args.skip_patchman:
                return
            print("[patchman 4.0.21, same machine, same run]")
            theirs, reports = run_patchman(args.patchman_hosts)
            ours = ours_on_reports(workdir, url, roots, reports)
            print(f"  ratio                {theirs / ours:8.0f}x faster per host (goal >= 100x)")


if __name__ == "__main__":
    main()
