"""bench/rollout: a fleet of simulated agents polling one real server, then a rollout.

For SQLite and PostgreSQL: a fresh database holding N assets with agents, three
static groups test (1 %), pilot (9 %) and prod (90 %), one approved patch
(pwt-hello 2.0-1) available on every asset and a draft rollout over the three
rings (max concurrency 10 %, max errors 0, no soak). One `patchwarden serve`
process (one worker, engine round every second) answers N simulated agents
that run in this process: each polls POST /api/v1/agent/jobs/poll every
poll_interval seconds of the answer (+-10 % jitter, first poll at a random
offset), and for every job starts it, "works" one second and posts a
succeeded result.

Phase A: steady state, no live rollout, for --steady seconds.
Phase B: the rollout is started (services.rollouts.start from here) and the
agents keep polling until the server's engine completes it; then the database
is checked: every job succeeded exactly once, one audited result per job,
every job delivered.

Latency is client-side wall time of a poll (request written to answer read,
including the wait for one of the client's keep-alive connections); the
Server-Timing header gives the server's own part. Server CPU is the server
process's user + system time from /proc; on PostgreSQL the database's CPU is
shown beside it (every postgres process on the cluster, so other users of the
cluster count too). The client is a small HTTP/1.1 keep-alive client on uvloop
so that it stays cheap next to the server on a shared machine; its CPU share
and event-loop lag are printed to show whether it kept up.

    python bench/rollout.py [--agents 10000] [--interval 60] [--steady 120] [--only sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/rollout.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import uvloop
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from bench.ingest import (
    POSTGRES_URL,
    cpu_seconds,
    free_port,
    fresh_database,
    tree_cpu_seconds,
)
from patchwarden.protocol.jobs import POLL_PATH, RESULT_PATH, START_PATH, verify_envelope
from patchwarden.services import approvals, groups, rollouts, upkeep
from patchwarden.services.users import hash_secret, new_secret
from patchwarden.storage.db import make_engine, make_session_factory, transaction, upgrade
from patchwarden.storage.tables import (
    Agent,
    Asset,
    AssetPatch,
    AuditEvent,
    Patch,
    Rollout,
    RolloutJob,
    utcnow,
)

HOST = "127.0.0.1"
OPERATOR = approvals.Actor("user:bench-operator", can_approve=False)
APPROVER = approvals.Actor("user:bench-approver", can_approve=True)
PACKAGE, V1, V2 = "pwt-hello", "1.0-1", "2.0-1"
IDLE_SECONDS = 4.0  # uvicorn closes keep-alive connections idle for 5 s
REQUEST_TIMEOUT = 60.0
WORK_SECONDS = 1.0
VERIFIED_ENVELOPES = 20  # the first jobs are checked as an agent checks them (pure-Python Ed25519)
GOAL = "goal: 10,000 agents polling every 60 s on one server process: p99 < 100 ms and < 50 % of one core"


# -- setup -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SimAgent:
    asset_id: int
    credential: str


def build_fleet(
    factory: sessionmaker[Session], n: int
) -> tuple[list[SimAgent], int, dict[str, int]]:
    """N assets with agents, groups test/pilot/prod, the approved patch and a
    draft rollout; returns the agents, the rollout id and the group sizes."""
    now = utcnow()
    credentials = [new_secret("pwa_") for _ in range(n)]
    with transaction(factory) as session:
        session.execute(
            insert(Asset),
            [
                {
                    "hostname": f"bench-{i:05d}",
                    "source": "agent",
                    "os_id": "debian",
                    "os_version_id": "12",
                    "arch": "x86_64",
                    "last_seen_at": now,
                }
                for i in range(n)
            ],
        )
        ids = list(session.execute(select(Asset.id).order_by(Asset.id)).scalars())
        session.execute(
            insert(Agent),
            [
                {
                    "asset_id": asset_id,
                    "credential_hash": hash_secret(credential),
                    "agent_version": "bench",
                    "last_seen_at": now,
                }
                for asset_id, credential in zip(ids, credentials, strict=True)
            ],
        )
        n_test = max(1, round(n * 0.01))
        n_pilot = max(1, round(n * 0.09))
        split = {
            "test": ids[:n_test],
            "pilot": ids[n_test : n_test + n_pilot],
            "prod": ids[n_test + n_pilot :],
        }
        for name, members in split.items():
            groups.create_static(session, OPERATOR.name, name, members)
        patch = Patch(
            ecosystem="deb",
            package_name=PACKAGE,
            arch="amd64",
            target_version=V2,
            classification="security",
        )
        session.add(patch)
        session.flush()
        patch_id = patch.id
        session.execute(
            insert(AssetPatch),
            [
                {
                    "asset_id": a,
                    "patch_id": patch_id,
                    "installed_version": V1,
                    "status": "available",
                }
                for a in ids
            ],
        )
    with transaction(factory) as session:
        approvals.act(session, OPERATOR, patch_id, "request", "bench")
        approvals.act(session, APPROVER, patch_id, "approve", "bench")
    spec = rollouts.RolloutSpec(
        name="bench pwt-hello 2.0",
        patch_ids=(patch_id,),
        rings=tuple(
            rollouts.RingSpec(
                name=name, group=name, max_concurrency="10%", max_errors="0", soak_seconds=0
            )
            for name in ("test", "pilot", "prod")
        ),
    )
    with transaction(factory) as session:
        rollout_id = rollouts.create(session, OPERATOR.name, spec)
    fleet = [SimAgent(a, c) for a, c in zip(ids, credentials, strict=True)]
    return fleet, rollout_id, {name: len(members) for name, members in split.items()}


# -- measuring ---------------------------------------------------------------------------


def postgres_cpu_seconds() -> float:
    """CPU time of every postgres process, plus what the postmaster's reaped
    children (ended backends) used: the cluster's work, whoever asked for it."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.find("(") + 1 : stat.rfind(")")]
        if name != "postgres" and not name.startswith("postgres:"):
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
        if fields[1] == "1":  # the postmaster: add its ended children
            total += (int(fields[13]) + int(fields[14])) / tick
    return total


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


@dataclass
class Meter:
    """Counters of one phase."""

    polls: list[float] = field(default_factory=list)  # client wall ms
    poll_server_ms: list[float] = field(default_factory=list)
    other_requests: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    lag_ms: list[float] = field(default_factory=list)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


@dataclass
class Snapshot:
    wall: float
    server_cpu: float
    postgres_cpu: float
    client_cpu: float


def snapshot(server_pid: int, postgres: bool) -> Snapshot:
    return Snapshot(
        time.monotonic(),
        tree_cpu_seconds(server_pid),
        postgres_cpu_seconds() if postgres else 0.0,
        time.process_time(),
    )


def phase_figures(meter: Meter, start: Snapshot, end: Snapshot) -> dict[str, float]:
    wall = end.wall - start.wall
    server = end.server_cpu - start.server_cpu
    polls = len(meter.polls)
    return {
        "seconds": wall,
        "polls": polls,
        "polls_per_s": polls / wall if wall else float("nan"),
        "other_requests": meter.other_requests,
        "p50_ms": pct(meter.polls, 0.5),
        "p99_ms": pct(meter.polls, 0.99),
        "max_ms": max(meter.polls, default=float("nan")),
        "server_p50_ms": pct(meter.poll_server_ms, 0.5),
        "server_p99_ms": pct(meter.poll_server_ms, 0.99),
        "cpu_per_1k": server / polls * 1000 if polls else float("nan"),
        "cpu_share": server / wall if wall else float("nan"),
        "postgres_share": (end.postgres_cpu - start.postgres_cpu) / wall if wall else float("nan"),
        "client_share": (end.client_cpu - start.client_cpu) / wall if wall else float("nan"),
        "lag_p99_ms": pct(meter.lag_ms, 0.99),
        "errors": sum(meter.errors.values()),
    }


# -- a cheap HTTP/1.1 keep-alive client --------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    server_ms: float


class HttpPool:
    """At most `size` keep-alive connections to one server; a request waits for
    a free one. A reused connection the server closed meanwhile is retried once
    on a fresh one (every request of the job protocol may be repeated)."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port = host, port
        self._slots = asyncio.Semaphore(size)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.opened = 0

    def head(self, method: str, path: str, credential: str, length: int) -> bytes:
        return (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {credential}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n"
        ).encode()

    def request_bytes(self, method: str, path: str, credential: str, body: bytes) -> bytes:
        return self.head(method, path, credential, len(body)) + body

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        now = time.monotonic()
        while self._idle:
            reader, writer, last = self._idle.pop()
            if now - last < IDLE_SECONDS:
                return reader, writer, True
            writer.close()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.opened += 1
        return reader, writer, False

    async def request(self, raw: bytes) -> Reply:
        async with self._slots:
            for attempt in (1, 2):
                reader, writer, reused = await self._connection()
                try:
                    writer.write(raw)
                    head = await reader.readuntil(b"\r\n\r\n")
                    lines = head.split(b"\r\n")
                    status = int(lines[0].split()[1])
                    length, server_ms, close = 0, float("nan"), False
                    for line in lines[1:]:
                        name, _, value = line.partition(b":")
                        name = name.strip().lower()
                        if name == b"content-length":
                            length = int(value)
                        elif name == b"server-timing":
                            server_ms = float(value.split(b"dur=")[1])
                        elif name == b"connection" and value.strip().lower() == b"close":
                            close = True
                    body = await reader.readexactly(length)
                except (OSError, asyncio.IncompleteReadError) as exc:
                    writer.close()
                    if reused and attempt == 1:
                        continue
                    raise ConnectionError(f"request failed: {exc!r}") from exc
                except BaseException:
                    writer.close()
                    raise
                if close:
                    writer.close()
                else:
                    self._idle.append((reader, writer, time.monotonic()))
                return Reply(status, body, server_ms)
        raise AssertionError("unreachable")

    def close(self) -> None:
        for _, writer, _ in self._idle:
            writer.close()
        self._idle.clear()


# -- the simulated fleet -----------------------------------------------------------------


@dataclass
class Fleet:
    pool: HttpPool
    interval: float
    public_key: bytes
    meter: Meter = field(default_factory=Meter)
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    jobs_run: int = 0
    redelivered: int = 0  # a job delivered again after this agent recorded its result
    duplicates: int = 0  # results the server called a repeat
    verified: int = 0
    first_poll_after_start: float | None = None

    async def call(self, raw: bytes, what: str) -> Reply | None:
        try:
            reply = await asyncio.wait_for(self.pool.request(raw), REQUEST_TIMEOUT)
        except (TimeoutError, ConnectionError) as exc:
            self.meter.error(f"{what}: {type(exc).__name__}")
            return None
        if reply.status != 200:
            self.meter.error(f"{what}: HTTP {reply.status}")
            return None
        return reply

    async def run_job(self, agent: SimAgent, envelope: dict[str, Any]) -> bool:
        job = envelope["job"]
        if self.verified < VERIFIED_ENVELOPES:
            self.verified += 1
            verify_envelope(envelope, self.public_key, agent.asset_id)  # raises if not
        job_id, attempt = int(job["job_id"]), int(job["attempt"])
        start = json.dumps({"protocol": 1, "attempt": attempt}).encode()
        self.meter.other_requests += 1
        if (
            await self.call(
                self.pool.request_bytes("POST", START_PATH % job_id, agent.credential, start),
                "start",
            )
            is None
        ):
            return False
        started = datetime.now().astimezone()
        await asyncio.sleep(WORK_SECONDS)
        result = {
            "protocol": 1,
            "job_id": job_id,
            "attempt": attempt,
            "status": "succeeded",
            "phase": "done",
            "transient": False,
            "error": None,
            "started_at": started.isoformat(),
            "finished_at": datetime.now().astimezone().isoformat(),
            "before": {PACKAGE: V1},
            "after": {PACKAGE: V2},
            "smoke_tests": [],
            "reboot": {"performed": False, "boot_id_before": None, "boot_id_after": None},
            "rollback": None,
            "log": "ok",
        }
        self.meter.other_requests += 1
        reply = await self.call(
            self.pool.request_bytes(
                "POST", RESULT_PATH % job_id, agent.credential, json.dumps(result).encode()
            ),
            "result",
        )
        if reply is None:
            return False
        if json.loads(reply.body).get("duplicate"):
            self.duplicates += 1
        self.jobs_run += 1
        return True

    async def agent(self, agent: SimAgent) -> None:
        body = json.dumps(
            {"protocol": 1, "asset_id": agent.asset_id, "running": [], "kept": []}
        ).encode()
        poll = self.pool.request_bytes("POST", POLL_PATH, agent.credential, body)
        done: set[int] = set()
        await asyncio.sleep(self.rng.uniform(0, self.interval))
        while True:
            began = time.perf_counter()  # uvloop's loop.time() has 1 ms steps
            meter = self.meter
            reply = await self.call(poll, "poll")
            interval = self.interval
            if reply is not None:
                meter.polls.append((time.perf_counter() - began) * 1000)
                meter.poll_server_ms.append(reply.server_ms)
                answer = json.loads(reply.body)
                interval = float(answer["poll_interval"])
                for envelope in answer["jobs"]:
                    job_id = int(envelope["job"]["job_id"])
                    if job_id in done:
                        self.redelivered += 1
                        continue
                    if await self.run_job(agent, envelope):
                        done.add(job_id)
            delay = interval * self.rng.uniform(0.9, 1.1) - (time.perf_counter() - began)
            await asyncio.sleep(max(0.0, delay))

    async def watch_lag(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.05)
            self.meter.lag_ms.append((time.perf_counter() - before - 0.05) * 1000)


# -- one backend -------------------------------------------------------------------------


def start_server(
    url: str, workdir: Path, interval: int
) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    log_path = workdir / "server.log"
    env = {
        **os.environ,
        "PATCHWARDEN_DATABASE_URL": url,
        "PATCHWARDEN_DATA_DIR": str(workdir / "data"),
        "PATCHWARDEN_ADMIN_PASSWORD": "benchmark-admin-password",
        "PATCHWARDEN_ROLLOUT_TICK_SECONDS": "1",
        "PATCHWARDEN_HOST": HOST,
        "PATCHWARDEN_JOB_POLL_SECONDS": str(interval),
    }
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "patchwarden.cli",
                "serve",
                "--host",
                HOST,
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return server, port, log_path


def wait_healthy(server: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                break
            try:
                if client.get(f"http://{HOST}:{port}/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    tail = log_path.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"the server did not come up on port {port}:\n{tail}")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def signing_key(port: int, agent: SimAgent) -> bytes:
    import base64

    reply = httpx.get(
        f"http://{HOST}:{port}/api/v1/agent/signing-key",
        headers={"Authorization": f"Bearer {agent.credential}"},
        timeout=10,
    )
    reply.raise_for_status()
    return base64.b64decode(reply.json()["public_key"])


def rollout_state(factory: sessionmaker[Session], rollout_id: int) -> tuple[str, int, int]:
    """The rollout's state, jobs dispatched so far, jobs finished so far."""
    with transaction(factory) as session:
        state = session.execute(select(Rollout.state).where(Rollout.id == rollout_id)).scalar_one()
        dispatched, finished = session.execute(
            select(
                func.count(RolloutJob.dispatched_at), func.count(RolloutJob.result_recorded_at)
            ).where(RolloutJob.rollout_id == rollout_id)
        ).one()
    return str(state), int(dispatched), int(finished)


def start_rollout(factory: sessionmaker[Session], rollout_id: int) -> None:
    with transaction(factory) as session:
        rollouts.start(session, OPERATOR.name, rollout_id)


def verify(factory: sessionmaker[Session], rollout_id: int, n: int) -> dict[str, Any]:
    with transaction(factory) as session:
        states = dict(
            session.execute(
                select(RolloutJob.state, func.count())
                .where(RolloutJob.rollout_id == rollout_id)
                .group_by(RolloutJob.state)
            ).all()
        )
        row = session.execute(
            select(
                func.count(),
                func.min(RolloutJob.deliveries),
                func.max(RolloutJob.deliveries),
                func.count(RolloutJob.result_recorded_at),
                func.count(RolloutJob.dispatched_at),
                func.min(RolloutJob.dispatched_at),
                func.max(RolloutJob.result_recorded_at),
            ).where(RolloutJob.rollout_id == rollout_id)
        ).one()
        redelivered = session.execute(
            select(func.count()).where(
                RolloutJob.rollout_id == rollout_id, RolloutJob.deliveries > 1
            )
        ).scalar_one()
        audited, audited_jobs = session.execute(
            select(func.count(), func.count(func.distinct(AuditEvent.target_id))).where(
                AuditEvent.action == "rollout.job_result"
            )
        ).one()
        rollout = session.execute(select(Rollout).where(Rollout.id == rollout_id)).scalar_one()
        started_at, finished_at, state = rollout.started_at, rollout.finished_at, rollout.state
    jobs, min_del, max_del, recorded, dispatched, first_dispatch, last_result = row
    succeeded = int(states.get("succeeded", 0))
    ok = (
        state == "completed"
        and jobs == n
        and succeeded == n
        and audited == n
        and audited_jobs == n
        and recorded == n
        and dispatched == n
        and (min_del or 0) >= 1
    )
    return {
        "state": state,
        "states": states,
        "jobs": int(jobs),
        "succeeded": succeeded,
        "audited": int(audited),
        "audited_jobs": int(audited_jobs),
        "recorded": int(recorded),
        "dispatched": int(dispatched),
        "min_deliveries": min_del,
        "max_deliveries": max_del,
        "delivered_more_than_once": int(redelivered),
        "db_seconds": (finished_at - started_at).total_seconds()
        if started_at and finished_at
        else float("nan"),
        "dispatch_seconds": (last_result - first_dispatch).total_seconds()
        if first_dispatch and last_result
        else float("nan"),
        "ok": ok,
    }


async def drive(
    fleet: Fleet,
    agents_: list[SimAgent],
    server_pid: int,
    postgres: bool,
    factory: sessionmaker[Session],
    rollout_id: int,
    steady: float,
    timeout: float,
) -> tuple[dict[str, float], dict[str, float], dict[str, Any]]:
    tasks = [asyncio.create_task(fleet.agent(a)) for a in agents_]
    tasks.append(asyncio.create_task(fleet.watch_lag()))
    try:
        # Phase A: steady state.
        fleet.meter = Meter()
        a_start = snapshot(server_pid, postgres)
        await asyncio.sleep(steady)
        a_end = snapshot(server_pid, postgres)
        phase_a = phase_figures(fleet.meter, a_start, a_end)
        print(
            f"  phase A done: {phase_a['polls']:.0f} polls, p99 {phase_a['p99_ms']:.1f} ms,"
            f" server {phase_a['cpu_share']:.0%} of a core",
            flush=True,
        )
        # Phase B: the rollout.
        fleet.meter = Meter()
        b_start = snapshot(server_pid, postgres)
        await asyncio.to_thread(start_rollout, factory, rollout_id)
        deadline = b_start.wall + timeout
        state, last_report = "running", 0.0
        while time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            state, dispatched, finished = await asyncio.to_thread(
                rollout_state, factory, rollout_id
            )
            now = time.monotonic()
            if state not in ("running", "rolling_back"):
                break
            if now - last_report >= 15:
                last_report = now
                print(
                    f"    t+{now - b_start.wall:5.0f} s  {state:9s} dispatched {dispatched:6d}"
                    f"  finished {finished:6d}  polls {len(fleet.meter.polls):7d}"
                    f"  p99 {pct(fleet.meter.polls[-5000:], 0.99):7.1f} ms",
                    flush=True,
                )
        b_end = snapshot(server_pid, postgres)
        phase_b = phase_figures(fleet.meter, b_start, b_end)
        phase_b["timed_out"] = float(state in ("running", "rolling_back"))
        phase_b["wall_total"] = b_end.wall - b_start.wall
        errors_b = dict(fleet.meter.errors)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        fleet.pool.close()
    checks = await asyncio.to_thread(verify, factory, rollout_id, len(agents_))
    checks["client_errors"] = errors_b
    return phase_a, phase_b, checks


def settle(factory: sessionmaker[Session]) -> int:
    """Run the server's upkeep until nothing is dirty, so the steady phase
    measures polls rather than the first recomputation of 10,000 new assets."""
    for rounds in range(1, 100):
        done = upkeep.run_once(factory, timedelta(hours=3), sync_repositories=False)
        if not done.findings and not done.patches:
            return rounds
    return rounds


def bench_backend(backend: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    url, database = fresh_database(backend, workdir, "rollout")
    engine = make_engine(url)
    server: subprocess.Popen[bytes] | None = None
    try:
        upgrade(engine)
        factory = make_session_factory(engine)
        built = time.perf_counter()
        agents_, rollout_id, sizes = build_fleet(factory, args.agents)
        print(
            f"  fleet: {len(agents_)} assets and agents, groups {sizes}, rollout {rollout_id} (draft)"
            f" built in {time.perf_counter() - built:.1f} s",
            flush=True,
        )
        settled = time.perf_counter()
        rounds = settle(factory)
        print(
            f"  upkeep settled in {rounds} round(s), {time.perf_counter() - settled:.1f} s"
            " (new assets' findings and patches; not part of the measurement)",
            flush=True,
        )
        server, port, log_path = start_server(url, workdir, args.interval)
        wait_healthy(server, port, log_path)
        fleet = Fleet(
            HttpPool(HOST, port, args.connections),
            float(args.interval),
            signing_key(port, agents_[0]),
        )
        phase_a, phase_b, checks = uvloop.run(
            drive(
                fleet,
                agents_,
                server.pid,
                backend == "postgresql",
                factory,
                rollout_id,
                float(args.steady),
                float(args.rollout_timeout),
            )
        )
        server_alive = server.poll() is None
        checks.update(
            jobs_run=fleet.jobs_run,
            redelivered_client=fleet.redelivered,
            duplicates=fleet.duplicates,
            verified=fleet.verified,
            connections_opened=fleet.pool.opened,
            server_alive=server_alive,
            server_cpu_total=cpu_seconds(server.pid) if server_alive else float("nan"),
        )
        checks["ok"] = (
            checks["ok"]
            and fleet.duplicates == 0
            and fleet.redelivered == 0
            and fleet.jobs_run == args.agents
            and checks["delivered_more_than_once"] == 0
        )
    finally:
        if server is not None:
            stop_server(server)
        engine.dispose()
        if database is not None:
            with contextlib.suppress(Exception):
                admin = make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
                with admin.connect() as connection:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{database}"'))
                admin.dispose()
    return {"steady": phase_a, "rollout": phase_b, "checks": checks}


# -- report ------------------------------------------------------------------------------


def rate(checks: dict[str, Any]) -> float:
    seconds = checks["dispatch_seconds"]
    return float(checks["dispatched"] / seconds) if seconds and seconds == seconds else float("nan")


def print_backend(backend: str, result: dict[str, Any], postgres: bool) -> None:
    a, b, c = result["steady"], result["rollout"], result["checks"]

    def cpu(p: dict[str, float]) -> str:
        extra = f", postgres {p['postgres_share']:.0%}" if postgres else ""
        return (
            f"server CPU {p['cpu_per_1k']:.2f} s per 1,000 check-ins, {p['cpu_share']:.0%} of one core"
            f"{extra}; client {p['client_share']:.0%}, loop lag p99 {p['lag_p99_ms']:.0f} ms"
        )

    print(f"\n[{backend}]")
    print(
        f"  steady state   {a['seconds']:.0f} s: {a['polls']:.0f} polls ({a['polls_per_s']:.0f}/s),"
        f" check-in p50 {a['p50_ms']:.1f} ms, p99 {a['p99_ms']:.1f} ms, max {a['max_ms']:.0f} ms"
        f" (server-timing p50 {a['server_p50_ms']:.1f}, p99 {a['server_p99_ms']:.1f} ms), errors {a['errors']:.0f}"
    )
    print(f"                 {cpu(a)}")
    verdict = "TIMED OUT" if b["timed_out"] else c["state"]
    print(
        f"  rollout        {verdict} in {c['db_seconds']:.1f} s (bench wall {b['wall_total']:.1f} s),"
        f" {c['dispatched']} jobs dispatched ({c['recorded']} results), {rate(c):.1f} jobs/s"
        f" (first dispatch to last result {c['dispatch_seconds']:.1f} s)"
    )
    print(
        f"                 {b['polls']:.0f} polls ({b['polls_per_s']:.0f}/s) + {b['other_requests']:.0f} start/result,"
        f" check-in p50 {b['p50_ms']:.1f} ms, p99 {b['p99_ms']:.1f} ms, max {b['max_ms']:.0f} ms"
        f" (server-timing p50 {b['server_p50_ms']:.1f}, p99 {b['server_p99_ms']:.1f} ms), errors {b['errors']:.0f}"
    )
    print(f"                 {cpu(b)}")
    print(
        f"  checks         succeeded {c['succeeded']}/{c['jobs']} (states {c['states']}),"
        f" audited results {c['audited']} for {c['audited_jobs']} jobs, results recorded {c['recorded']},"
        f" deliveries min {c['min_deliveries']} max {c['max_deliveries']}"
        f" ({c['delivered_more_than_once']} delivered more than once),"
        f" repeats answered 'duplicate' {c['duplicates']}, redelivered after result {c['redelivered_client']},"
        f" jobs run {c['jobs_run']}, envelopes verified {c['verified']} -> {'OK' if c['ok'] else 'FAILED'}"
    )
    if c["client_errors"]:
        print(f"                 client errors during the rollout: {c['client_errors']}")


def print_summary(results: dict[str, dict[str, Any]], agents_: int, interval: int) -> None:
    print(f"\nsummary ({agents_} agents, poll interval {interval} s, one server process)")
    header = f"  {'':34s}" + "".join(f"{b:>14s}" for b in results)
    print(header)
    rows: list[tuple[str, str, str, str]] = [
        ("steady: polls/s", "steady", "polls_per_s", "{:.0f}"),
        ("steady: check-in p50 ms", "steady", "p50_ms", "{:.1f}"),
        ("steady: check-in p99 ms", "steady", "p99_ms", "{:.1f}"),
        ("steady: server CPU s / 1k", "steady", "cpu_per_1k", "{:.2f}"),
        ("steady: server share of a core", "steady", "cpu_share", "{:.0%}"),
        ("rollout: time s", "checks", "db_seconds", "{:.1f}"),
        ("rollout: jobs dispatched", "checks", "dispatched", "{}"),
        ("rollout: dispatch rate jobs/s", "checks", "rate", "{:.1f}"),
        ("rollout: polls/s", "rollout", "polls_per_s", "{:.0f}"),
        ("rollout: check-in p50 ms", "rollout", "p50_ms", "{:.1f}"),
        ("rollout: check-in p99 ms", "rollout", "p99_ms", "{:.1f}"),
        ("rollout: server CPU s / 1k", "rollout", "cpu_per_1k", "{:.2f}"),
        ("rollout: server share of a core", "rollout", "cpu_share", "{:.0%}"),
        ("rollout: exactly once", "checks", "ok", "{}"),
    ]
    for result in results.values():
        c = result["checks"]
        c["rate"] = rate(c)
    for label, part, key, fmt in rows:
        cells = "".join(f"{fmt.format(r[part][key]):>14s}" for r in results.values())
        print(f"  {label:34s}{cells}")
    print(f"\n{GOAL}")
    for backend, result in results.items():
        a = result["steady"]
        met = a["p99_ms"] < 100 and a["cpu_share"] < 0.5
        print(
            f"  {backend:10s} steady state: p99 {a['p99_ms']:.1f} ms, {a['cpu_share']:.0%} of one core"
            f" -> {'met' if met else 'MISSED'}"
            + ("" if agents_ >= 10000 and interval == 60 else " (not the goal's fleet size)")
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=10000)
    parser.add_argument("--interval", type=int, default=60, help="server's poll interval, s")
    parser.add_argument("--steady", type=int, default=120, help="phase A length, s")
    parser.add_argument("--rollout-timeout", type=int, default=1200, help="phase B limit, s")
    parser.add_argument("--connections", type=int, default=64, help="client keep-alive pool")
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    # A stopped benchmark still stops its server and removes its files.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.agents < 10:
        parser.error("--agents must be at least 10")
    print(
        f"bench/rollout: {args.agents} agents, poll interval {args.interval} s, steady {args.steady} s,"
        f" {args.connections} client connections, one server process, engine round 1 s",
        flush=True,
    )
    results: dict[str, dict[str, Any]] = {}
    for backend in ["sqlite", "postgresql"] if args.only is None else [args.only]:
        print(f"\n[{backend}] running ...", flush=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"pwbench-rollout-{backend}-"))
        try:
            results[backend] = bench_backend(backend, args, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print_backend(backend, results[backend], backend == "postgresql")
    print_summary(results, args.agents, args.interval)


if __name__ == "__main__":
    main()
