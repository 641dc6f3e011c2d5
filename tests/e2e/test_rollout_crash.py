"""kill -9 of a real `patchwarden serve` at random points of rollouts.

Nine simulated agents (threads speaking the job protocol over real HTTP,
with a journal like the real agent's: a job id is run once, its result resent
until the server acknowledges it) work through 20 rollouts of three rings.
In every trial the server is killed with SIGKILL at a random moment and
started again on the same database. Each rollout must end completed, with
every job run exactly once by its agent and its result recorded exactly once.
"""

from __future__ import annotations

import contextlib
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.protocol.jobs import POLL_PATH, RESULT_PATH, START_PATH, verify_envelope
from patchwarden.services import groups, job_signing, rollouts
from patchwarden.services.users import hash_secret
from patchwarden.storage.db import make_engine, make_session_factory, transaction, upgrade
from patchwarden.storage.tables import Agent, AuditEvent, RolloutJob
from tests.e2e.conftest import _free_port, server_env, spawn_server
from tests.services.test_findings import deb, new_asset
from tests.services.test_rollouts import V1, V2, add_patch, approve, offer

TRIALS = 20
RINGS = {"lab": 1, "pilot": 3, "prod": 5}
OPERATOR = "user:olivia"


class SimulatedAgent(threading.Thread):
    def __init__(
        self, url: str, asset_id: int, credential: str, public_key: bytes, stop: threading.Event
    ) -> None:
        super().__init__(daemon=True)
        self.url, self.asset_id, self.public_key, self.stop = url, asset_id, public_key, stop
        self.headers = {"Authorization": f"Bearer {credential}"}
        self.executed: Counter[int] = Counter()
        self.results: dict[int, dict[str, Any]] = {}
        self.acknowledged: set[int] = set()
        self.refused: list[str] = []

    def _post(self, client: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
        return client.post(self.url + path, json=body, headers=self.headers)

    def _cycle(self, client: httpx.Client) -> None:
        for job_id, result in self.results.items():
            unacknowledged = job_id not in self.acknowledged
            if unacknowledged and self._post(client, RESULT_PATH % job_id, result).is_success:
                self.acknowledged.add(job_id)
        answer = self._post(
            client, POLL_PATH, {"protocol": 1, "asset_id": self.asset_id, "running": []}
        )
        if answer.status_code != 200:
            return
        for envelope in answer.json()["jobs"]:
            job = verify_envelope(envelope, self.public_key, self.asset_id)
            job_id = job["job_id"]
            if job_id in self.results:
                continue  # a redelivery: the journal has it
            started = self._post(client, START_PATH % job_id, {"protocol": 1, "attempt": 1})
            if started.status_code != 200:
                self.refused.append(started.text)
                continue
            self.executed[job_id] += 1
            self.results[job_id] = {
                "protocol": 1,
                "job_id": job_id,
                "attempt": job["attempt"],
                "status": "succeeded",
                "phase": "done",
                "before": {"pwt-hello": V1},
                "after": {"pwt-hello": V2},
                "smoke_tests": [],
                "log": "installed",
            }
            if self._post(client, RESULT_PATH % job_id, self.results[job_id]).status_code == 200:
                self.acknowledged.add(job_id)

    def run(self) -> None:
        with httpx.Client(timeout=2.0) as client:
            while not self.stop.is_set():
                with contextlib.suppress(httpx.HTTPError):  # the server is down: try again
                    self._cycle(client)
                self.stop.wait(0.05)


class Server:
    """A server that can be killed and started again on the same database."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = server_env(data_dir, PATCHWARDEN_ROLLOUT_TICK_SECONDS="0.1")
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = spawn_server(self.env, self.port, self.log)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@dataclass(frozen=True)
class Fleet:
    factory: sessionmaker[Session]
    data: Path
    agents: list[tuple[int, str]]  # (asset id, credential)
    patch_id: int


@pytest.fixture
def fleet_db(tmp_path: Path) -> Iterator[Fleet]:
    data = tmp_path / "data"
    data.mkdir()
    engine = make_engine(f"sqlite:///{data / 'patchwarden.db'}")
    upgrade(engine)
    factory = make_session_factory(engine)
    patch = add_patch(factory, "pwt-hello")
    approve(factory, patch)
    agents: list[tuple[int, str]] = []
    for ring, size in RINGS.items():
        ids = []
        for n in range(size):
            asset_id = new_asset(factory, f"{ring}-{n}", [deb("pwt-hello", V1)])
            offer(factory, asset_id, patch)
            credential = f"pwa_crash_{asset_id}"
            with transaction(factory) as session:
                session.add(Agent(asset_id=asset_id, credential_hash=hash_secret(credential)))
            agents.append((asset_id, credential))
            ids.append(asset_id)
        with transaction(factory) as session:
            groups.create_static(session, OPERATOR, ring, ids)
    yield Fleet(factory, data, agents, patch)
    engine.dispose()


def _spec(patch_id: int, trial: int) -> rollouts.RolloutSpec:
    return rollouts.RolloutSpec(
        f"crash trial {trial}",
        (patch_id,),
        tuple(
            rollouts.RingSpec(name, name, max_concurrency="50%", max_errors="0") for name in RINGS
        ),
    )


def test_server_killed_at_random_points_loses_and_repeats_nothing(
    fleet_db: Fleet, tmp_path: Path
) -> None:
    factory, data, agent_credentials = fleet_db.factory, fleet_db.data, fleet_db.agents
    signer = job_signing.load_or_create(data / "job-signing-key.pem")  # the server's key
    server = Server(data, tmp_path / "server.log")
    stop = threading.Event()
    simulated = [
        SimulatedAgent(server.url, asset_id, credential, signer.public_key, stop)
        for asset_id, credential in agent_credentials
    ]
    rng = random.Random(20261202)
    # Planned before the server runs: its upkeep recomputes the assets'
    # patches from repositories, and this database has none.
    with transaction(factory) as session:
        planned = [
            rollouts.create(session, OPERATOR, _spec(fleet_db.patch_id, trial))
            for trial in range(TRIALS)
        ]
    killed_in: list[str] = []  # the rollout's state when the server died
    server.start()
    for agent in simulated:
        agent.start()
    try:
        for trial, rollout_id in enumerate(planned):
            with transaction(factory) as session:
                rollouts.start(session, OPERATOR, rollout_id)
            time.sleep(rng.uniform(0.0, 2.5))
            server.kill()
            with transaction(factory) as session:
                killed_in.append(rollouts.list_one(session, rollout_id)["state"])
            server.start()
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                with transaction(factory) as session:
                    state = rollouts.list_one(session, rollout_id)["state"]
                if state == "completed":
                    break
                time.sleep(0.1)
            else:
                raise AssertionError(
                    f"trial {trial}: rollout {rollout_id} is {state} after 90 s\n"
                    + (tmp_path / "server.log").read_text()[-3000:]
                )
            _check_exactly_once(factory, rollout_id, simulated)
    finally:
        stop.set()
        server.stop()
        for agent in simulated:
            agent.join(timeout=10)
    assert not [text for agent in simulated for text in agent.refused]
    # The kills fell inside rollouts, not only before or after them.
    assert killed_in.count("running") >= TRIALS // 2, killed_in


def _check_exactly_once(
    factory: sessionmaker[Session], rollout_id: int, simulated: list[SimulatedAgent]
) -> None:
    with transaction(factory) as session:
        jobs = list(
            session.execute(select(RolloutJob).where(RolloutJob.rollout_id == rollout_id)).scalars()
        )
        assert len(jobs) == sum(RINGS.values())
        assert {job.state for job in jobs} == {"succeeded"}
        assert all(job.result_recorded_at is not None and job.deliveries >= 1 for job in jobs)
        recorded = Counter(
            session.execute(
                select(AuditEvent.target_id).where(
                    AuditEvent.action == "rollout.job_result",
                    AuditEvent.target_id.in_([str(job.id) for job in jobs]),
                )
            ).scalars()
        )
        assert recorded == Counter(str(job.id) for job in jobs)
    executed = Counter[int]()
    for agent in simulated:
        executed.update({job_id: n for job_id, n in agent.executed.items()})
    assert {job.id: executed[job.id] for job in jobs} == {job.id: 1 for job in jobs}
