"""bench/ingest: inventory ingestion through the real HTTP API versus a raw load.

For SQLite and PostgreSQL: start a real `patchwarden serve` process, enrol N
agents, send N full reports of ~2,000 packages, then no-change and small delta
reports; then load the same rows straight into a fresh database of the same
schema (PostgreSQL COPY, SQLite executemany in one transaction) and print the
ratio. Peak memory is the server process's VmHWM.

    python bench/ingest.py [--reports 200] [--packages 2000] [--clients 4] [--only sqlite]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from patchwarden.domain.inventory import InstalledPackage
from patchwarden.services import agents
from patchwarden.storage.bulk import insert_packages
from patchwarden.storage.db import make_engine, make_session_factory, transaction, upgrade
from patchwarden.storage.tables import Asset

POSTGRES_URL = os.environ.get(
    "PATCHWARDEN_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def real_package_names() -> list[tuple[str, str, str]]:
    """(name, version, arch) from this machine's dpkg database, the most realistic names we have."""
    status = Path("/var/lib/dpkg/status")
    rows: list[tuple[str, str, str]] = []
    if status.exists():
        fields: dict[str, str] = {}
        for line in [*status.read_text(errors="replace").splitlines(), ""]:
            if not line:
                if "Package" in fields and "Version" in fields:
                    rows.append(
                        (fields["Package"], fields["Version"], fields.get("Architecture", "amd64"))
                    )
                fields = {}
            elif not line.startswith(" ") and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
    return rows


def make_fleet(reports: int, packages: int, seed: int = 7) -> list[list[dict[str, Any]]]:
    rng = random.Random(seed)
    base = real_package_names()
    while len(base) < packages * 2:
        i = len(base)
        base.append((f"lib-synthetic{i}", f"1.{i % 17}.{i % 5}-{i % 3 + 1}", "amd64"))
    fleet = []
    for _ in range(reports):
        chosen = rng.sample(base, packages)
        fleet.append(
            [
                {
                    "ecosystem": "deb",
                    "name": n,
                    "version": v if rng.random() > 0.1 else v + "+b1",
                    "arch": a,
                    "source_name": n,
                    "source_version": v,
                    "status": "installed",
                }
                for n, v, a in chosen
            ]
        )
    return fleet


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def report_body(asset_id: int, seq: int, kind: str, base: int | None, **parts: Any) -> bytes:
    body = {
        "protocol": 1,
        "asset_id": asset_id,
        "seq": seq,
        "kind": kind,
        "base_seq": base,
        "agent_version": "bench",
        "collected_at": datetime.now(UTC).isoformat(),
        "facts": {
            "hostname": f"bench-{asset_id}",
            "os": {"id": "debian", "version_id": "12"},
            "kernel": "6.1.0-18-amd64",
            "arch": "x86_64",
        },
        "collector_notes": [{"collector": "dpkg", "status": "ok", "message": ""}],
        **parts,
    }
    return json.dumps(body).encode()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """The process and its children (uvicorn worker processes)."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                pids.append(int(entry.name))
    return pids


def tree_cpu_seconds(pid: int) -> float:
    return sum(cpu_seconds(p) for p in process_tree(pid))


def server_ms(response: httpx.Response) -> float:
    timing = response.headers.get("server-timing", "app;dur=nan")
    return float(timing.split("dur=")[1])


def fresh_database(backend: str, workdir: Path, name: str) -> tuple[str, Any]:
    if backend == "sqlite":
        return f"sqlite:///{workdir / name}.db", None
    admin = make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    database = f"pwbench_{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{database}"'))
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    admin.dispose()
    return POSTGRES_URL.rsplit("/", 1)[0] + f"/{database}", database


def bench_http(
    backend: str, fleet: list[list[dict[str, Any]]], clients: int, workers: int, workdir: Path
) -> dict[str, float]:
    url, _ = fresh_database(backend, workdir, "http")
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    port = free_port()
    env = {
        **os.environ,
        "PATCHWARDEN_DATABASE_URL": url,
        "PATCHWARDEN_DATA_DIR": str(workdir / "data"),
        "PATCHWARDEN_ADMIN_PASSWORD": "benchmark-admin-password",
        "PATCHWARDEN_MAX_REPORT_BYTES": str(64 << 20),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "patchwarden.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=60) as client:
            for _ in range(200):
                try:
                    if client.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            enrolled = []
            for i in range(len(fleet)):
                with transaction(factory) as session:
                    token, _ = agents.create_enrollment_token(session, "bench", timedelta(hours=1))
                r = client.post(
                    f"{base}/api/v1/agent/enroll",
                    json={
                        "protocol": 1,
                        "token": token,
                        "hostname": f"bench-{i}",
                        "agent_version": "bench",
                    },
                )
                r.raise_for_status()
                enrolled.append(r.json())
        bodies = [
            report_body(a["asset_id"], 1, "full", None, packages=pkgs)
            for a, pkgs in zip(enrolled, fleet, strict=True)
        ]

        local = threading.local()

        def send(args: tuple[dict[str, Any], bytes]) -> float:
            agent, body = args
            # One keep-alive connection per client thread, as a real agent fleet
            # spreads over many connections without paying set-up each time.
            if not hasattr(local, "client"):
                local.client = httpx.Client(timeout=120)
            response = local.client.post(
                f"{base}/api/v1/agent/report",
                content=body,
                headers={
                    "Authorization": f"Bearer {agent['credential']}",
                    "Content-Type": "application/json",
                },
            )
            response.raise_for_status()
            return server_ms(response)

        started, cpu_before = time.perf_counter(), tree_cpu_seconds(server.pid)
        with ThreadPoolExecutor(clients) as pool:
            full_ms = list(pool.map(send, zip(enrolled, bodies, strict=True)))
        full_seconds = time.perf_counter() - started
        full_cpu = tree_cpu_seconds(server.pid) - cpu_before
        rows = sum(len(p) for p in fleet)

        # No-change deltas: the check-in every agent sends on every cycle. One
        # client, so the server time is handling time, not queueing.
        empty = [report_body(a["asset_id"], 2, "delta", 1, added=[], removed=[]) for a in enrolled]
        started = time.perf_counter()
        empty_ms = [send(item) for item in zip(enrolled, empty, strict=True)]
        empty_seconds = time.perf_counter() - started

        # Small deltas: five upgrades each.
        small = []
        for a, pkgs in zip(enrolled, fleet, strict=True):
            old = pkgs[:5]
            new = [p | {"version": p["version"] + "+deb12u9"} for p in old]
            small.append(report_body(a["asset_id"], 3, "delta", 2, added=new, removed=old))
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            small_ms = list(pool.map(send, zip(enrolled, small, strict=True)))
        small_seconds = time.perf_counter() - started
        peak = sum(peak_rss_mb(p) for p in process_tree(server.pid))
    finally:
        server.terminate()
        server.wait(timeout=30)
        engine.dispose()
    n = len(fleet)
    return {
        "full_reports_per_s": n / full_seconds,
        "full_rows_per_s": rows / full_seconds,
        "full_server_ms_p50": statistics.median(full_ms),
        "full_server_cpu_ms": full_cpu / n * 1000,
        "empty_delta_per_s": n / empty_seconds,
        "empty_delta_server_ms_p50": statistics.median(empty_ms),
        "empty_delta_server_ms_p99": sorted(empty_ms)[int(0.99 * (n - 1))],
        "small_delta_per_s": n / small_seconds,
        "small_delta_server_ms_p50": statistics.median(small_ms),
        "server_peak_rss_mb": peak,
    }


def bench_raw(backend: str, fleet: list[list[dict[str, Any]]], workdir: Path) -> float:
    """The same rows loaded straight into the same table: rows per second."""
    url, _ = fresh_database(backend, workdir, "raw")
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        ids = []
        for i in range(len(fleet)):
            asset = Asset(hostname=f"raw-{i}", source="agent")
            session.add(asset)
            session.flush()
            ids.append(asset.id)
    domain = [
        [
            InstalledPackage(
                p["ecosystem"],
                p["name"],
                p["version"],
                p["arch"],
                p["source_name"],
                p["source_version"],
                p["status"],
            )
            for p in pkgs
        ]
        for pkgs in fleet
    ]
    now = datetime.now(UTC)
    started = time.perf_counter()
    if backend == "sqlite":
        # executemany of plain tuples in one transaction: the floor for SQLite.
        with engine.connect() as connection:
            raw = connection.connection.driver_connection
            assert raw is not None
            cursor = raw.cursor()
            cursor.execute("BEGIN")
            stamp = now.replace(tzinfo=None).isoformat(sep=" ")
            for asset_id, pkgs in zip(ids, domain, strict=True):
                cursor.executemany(
                    "INSERT INTO installed_packages (asset_id, ecosystem, name, version, arch, source_name,"
                    " source_version, status, installed_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    [
                        (
                            asset_id,
                            p.ecosystem,
                            p.name,
                            p.version,
                            p.arch,
                            p.source_name,
                            p.source_version,
                            p.status,
                            stamp,
                        )
                        for p in pkgs
                    ],
                )
            cursor.execute("COMMIT")
    else:
        with transaction(factory) as session:
            for asset_id, pkgs in zip(ids, domain, strict=True):
                insert_packages(session, asset_id, pkgs, now)
    seconds = time.perf_counter() - started
    engine.dispose()
    return sum(len(p) for p in fleet) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reports", type=int, default=200)
    parser.add_argument("--packages", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    fleet = make_fleet(args.reports, args.packages)
    print(
        f"bench/ingest: {args.reports} agents x {args.packages} packages, {args.clients} concurrent clients,"
        f" {args.workers} server process(es)"
    )
    for backend in ["sqlite", "postgresql"] if args.only is None else [args.only]:
        with tempfile.TemporaryDirectory(prefix=f"pwbench-{backend}-") as tmp:
            http = bench_http(backend, fleet, args.clients, args.workers, Path(tmp))
            raw = bench_raw(backend, fleet, Path(tmp))
        print(f"\n[{backend}]")
        print(
            f"  full reports     {http['full_reports_per_s']:8.1f} reports/s  {http['full_rows_per_s']:10.0f} rows/s"
            f"  (server p50 {http['full_server_ms_p50']:.1f} ms, server CPU {http['full_server_cpu_ms']:.1f} ms per report)"
        )
        print(
            f"  raw load         {raw:10.0f} rows/s  ({'COPY' if backend == 'postgresql' else 'executemany, one transaction'})"
        )
        print(f"  ingest / raw     {http['full_rows_per_s'] / raw:8.1%}   (goal >= 50 %)")
        print(
            f"  no-change delta  {http['empty_delta_per_s']:8.1f} reports/s (1 client)  server p50 {http['empty_delta_server_ms_p50']:.2f} ms,"
            f" p99 {http['empty_delta_server_ms_p99']:.2f} ms   (goal < 10 ms)"
        )
        print(
            f"  5-change delta   {http['small_delta_per_s']:8.1f} reports/s  server p50 {http['small_delta_server_ms_p50']:.2f} ms"
        )
        print(f"  server peak RSS  {http['server_peak_rss_mb']:8.1f} MB")


if __name__ == "__main__":
    main()
