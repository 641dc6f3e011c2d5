"""Rollout services on a real database (SQLite and PostgreSQL): planning with
approval checks, the engine's rounds, signed job delivery, results recorded
once, halts, pause/resume/abort, rollback, emergency approval, windows."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.errors import Conflict, InvalidInput, NotFound
from patchwarden.policy.errors import ApproverRequired, FourEyesViolation, NotDeployable
from patchwarden.protocol.jobs import JobRefused, verify_envelope
from patchwarden.services import agent_jobs, approvals, audit, groups, job_signing, rollouts
from patchwarden.services import windows as schedules
from patchwarden.storage.db import transaction
from patchwarden.storage.tables import Agent, Asset, AssetPatch, AuditEvent, Patch, RolloutJob
from tests.services.test_findings import deb, new_asset

OPERATOR = "user:olivia"
ALICE = approvals.Actor("user:alice", can_approve=True)
OLIVIA = approvals.Actor(OPERATOR, can_approve=False)
V1, V2 = "1.0-1", "2.0-1"


def add_patch(factory: sessionmaker[Session], name: str, version: str = V2) -> int:
    with transaction(factory) as session:
        patch = Patch(
            ecosystem="deb",
            package_name=name,
            arch="amd64",
            target_version=version,
            classification="security",
        )
        session.add(patch)
        session.flush()
        return patch.id


def offer(factory: sessionmaker[Session], asset_id: int, patch_id: int) -> None:
    with transaction(factory) as session:
        session.add(AssetPatch(asset_id=asset_id, patch_id=patch_id, installed_version=V1))


def approve(factory: sessionmaker[Session], patch_id: int) -> None:
    with transaction(factory) as session:
        approvals.act(session, OLIVIA, patch_id, "request", None)
        approvals.act(session, ALICE, patch_id, "approve", None)


def make_agent(factory: sessionmaker[Session], asset_id: int) -> Agent:
    with transaction(factory) as session:
        agent = Agent(asset_id=asset_id, credential_hash=f"{asset_id:064d}")
        session.add(agent)
        session.flush()
        session.expunge(agent)
        return agent


class Fleet:
    """Six assets with pwt-hello 1.0: lab-1, pilot-1..2, prod-1..3; groups lab,
    pilot, prod; patch pwt-hello 2.0 approved and available on all."""

    def __init__(self, factory: sessionmaker[Session], signer: job_signing.JobSigner) -> None:
        self.factory = factory
        self.signer = signer
        self.patch = add_patch(factory, "pwt-hello")
        approve(factory, self.patch)
        self.assets: dict[str, int] = {}
        self.agents: dict[int, Agent] = {}
        members: dict[str, list[int]] = {"lab": [], "pilot": [], "prod": []}
        for host in ("lab-1", "pilot-1", "pilot-2", "prod-1", "prod-2", "prod-3"):
            asset_id = new_asset(factory, host, [deb("pwt-hello", V1)])
            self.assets[host] = asset_id
            offer(factory, asset_id, self.patch)
            self.agents[asset_id] = make_agent(factory, asset_id)
            members[host.split("-")[0]].append(asset_id)
        with transaction(factory) as session:
            for name, ids in members.items():
                groups.create_static(session, OPERATOR, name, ids)

    def spec(self, **ring_options: Any) -> rollouts.RolloutSpec:
        rings = tuple(
            rollouts.RingSpec(name=name, group=name, max_concurrency="100%", **ring_options)
            for name in ("lab", "pilot", "prod")
        )
        return rollouts.RolloutSpec("hello 2.0", (self.patch,), rings)

    def create(self, spec: rollouts.RolloutSpec | None = None) -> int:
        with transaction(self.factory) as session:
            return rollouts.create(session, OPERATOR, spec or self.spec())

    def start(self, rollout_id: int) -> None:
        with transaction(self.factory) as session:
            rollouts.start(session, OPERATOR, rollout_id)

    def tick(self, now: datetime | None = None) -> None:
        rollouts.tick(self.factory, now)

    def show(self, rollout_id: int) -> dict[str, Any]:
        with transaction(self.factory) as session:
            return rollouts.show(session, rollout_id)

    def ring(self, rollout_id: int, name: str) -> dict[str, Any]:
        return next(r for r in self.show(rollout_id)["rings"] if r["name"] == name)

    def poll(self, host: str) -> list[dict[str, Any]]:
        """What the host's agent would get, verified as the agent verifies it."""
        asset_id = self.assets[host]
        with transaction(self.factory) as session:
            jobs = agent_jobs.pending_jobs(session, asset_id)
            envelopes = agent_jobs.envelopes(session, self.signer, jobs) if jobs else []
        return [verify_envelope(e, self.signer.public_key, asset_id) for e in envelopes]

    def run(self, host: str, status: str = "succeeded", **extra: Any) -> list[bool]:
        """The host's agent runs every job it is given and reports `status`."""
        asset_id = self.assets[host]
        duplicates = []
        for job in self.poll(host):
            with transaction(self.factory) as session:
                agent_jobs.start(session, self.agents[asset_id], job["job_id"], job["attempt"])
            result = {
                "protocol": 1,
                "job_id": job["job_id"],
                "attempt": job["attempt"],
                "status": status,
                "phase": "done" if status == "succeeded" else "smoke_test",
                "before": {"pwt-hello": V1},
                "after": {"pwt-hello": V2 if status == "succeeded" else V1},
                "smoke_tests": [],
                "log": "ok",
                **extra,
            }
            with transaction(self.factory) as session:
                duplicates.append(
                    agent_jobs.record_result(session, self.agents[asset_id], job["job_id"], result)
                )
        return duplicates


@pytest.fixture
def fleet(session_factory: sessionmaker[Session], tmp_path: Path) -> Fleet:
    return Fleet(session_factory, job_signing.load_or_create(tmp_path / "key.pem"))


def states(view: dict[str, Any]) -> dict[str, str]:
    return {ring["name"]: ring["state"] for ring in view["rings"]}


def test_three_rings_in_order_to_completion(fleet: Fleet) -> None:
    rollout_id = fleet.create()
    view = fleet.show(rollout_id)
    assert view["state"] == "draft"
    assert [len(r["jobs"]) for r in view["rings"]] == [1, 2, 3]
    assert view["rings"][0]["jobs"][0]["targets"] == [
        {"name": "pwt-hello", "version": V2, "arch": "amd64"}
    ]
    fleet.tick()
    assert fleet.poll("lab-1") == []  # a draft dispatches nothing

    fleet.start(rollout_id)
    fleet.tick()
    assert states(fleet.show(rollout_id)) == {
        "lab": "running",
        "pilot": "pending",
        "prod": "pending",
    }
    assert fleet.poll("pilot-1") == []  # not its ring's turn
    [job] = fleet.poll("lab-1")
    assert job["action"] == "install" and job["package_manager"] == "apt"
    assert job["targets"] == [{"name": "pwt-hello", "version": V2, "arch": "amd64"}]
    assert fleet.poll("lab-1") == [job]  # redelivered unchanged until its result is in

    assert fleet.run("lab-1") == [False]
    fleet.tick()
    assert states(fleet.show(rollout_id))["lab"] == "passed"
    assert states(fleet.show(rollout_id))["pilot"] == "running"
    for host in ("pilot-1", "pilot-2"):
        assert fleet.run(host) == [False]
    fleet.tick()
    for host in ("prod-1", "prod-2", "prod-3"):
        assert fleet.run(host) == [False]
    fleet.tick()
    view = fleet.show(rollout_id)
    assert view["state"] == "completed" and view["finished_at"] is not None
    assert set(states(view).values()) == {"passed"}
    assert all(job["state"] == "succeeded" for r in view["rings"] for job in r["jobs"])


def test_a_result_is_recorded_once(fleet: Fleet) -> None:
    rollout_id = fleet.create()
    fleet.start(rollout_id)
    fleet.tick()
    [job] = fleet.poll("lab-1")
    agent = fleet.agents[fleet.assets["lab-1"]]
    result = {
        "protocol": 1, "job_id": job["job_id"], "attempt": 1, "status": "succeeded",
        "phase": "done", "before": {}, "after": {}, "smoke_tests": [], "log": "",
    }  # fmt: skip
    with transaction(fleet.factory) as session:
        assert agent_jobs.start(session, agent, job["job_id"], 1) == "running"
        assert agent_jobs.record_result(session, agent, job["job_id"], result) is False
    with transaction(fleet.factory) as session:
        assert agent_jobs.record_result(session, agent, job["job_id"], result) is True
        failed = {**result, "status": "failed"}
        assert agent_jobs.record_result(session, agent, job["job_id"], failed) is True
    with transaction(fleet.factory) as session:
        stored = session.get(RolloutJob, job["job_id"])
        assert stored is not None and stored.state == "succeeded"
        events = session.execute(
            select(func.count()).where(AuditEvent.action == "rollout.job_result")
        ).scalar_one()
        assert events == 1
    assert fleet.poll("lab-1") == []  # no longer delivered


def test_bad_results_and_other_assets_jobs_are_refused(fleet: Fleet) -> None:
    rollout_id = fleet.create()
    fleet.start(rollout_id)
    fleet.tick()
    [job] = fleet.poll("lab-1")
    stranger = fleet.agents[fleet.assets["prod-1"]]
    good = {
        "protocol": 1, "job_id": job["job_id"], "attempt": 1, "status": "succeeded",
        "phase": "done", "before": {}, "after": {}, "smoke_tests": [], "log": "",
    }  # fmt: skip
    with pytest.raises(NotFound), transaction(fleet.factory) as session:
        agent_jobs.record_result(session, stranger, job["job_id"], good)
    owner = fleet.agents[fleet.assets["lab-1"]]
    for bad in (
        {**good, "status": "great"},
        {**good, "phase": "nowhere"},
        {**good, "before": {"x": 3}},
        {**good, "job_id": job["job_id"] + 99},
    ):
        with pytest.raises(InvalidInput), transaction(fleet.factory) as session:
            agent_jobs.record_result(session, owner, job["job_id"], bad)
    with pytest.raises(Conflict), transaction(fleet.factory) as session:
        agent_jobs.record_result(session, owner, job["job_id"], {**good, "attempt": 2})
    with transaction(fleet.factory) as session:
        stored = session.get(RolloutJob, job["job_id"])
        assert stored is not None and stored.state == "dispatched" and stored.result is None


def test_signed_jobs_verify_and_tampering_is_detected(fleet: Fleet) -> None:
    rollout_id = fleet.create()
    fleet.start(rollout_id)
    fleet.tick()
    asset_id = fleet.assets["lab-1"]
    with transaction(fleet.factory) as session:
        [envelope] = agent_jobs.envelopes(
            session, fleet.signer, agent_jobs.pending_jobs(session, asset_id)
        )
    assert verify_envelope(envelope, fleet.signer.public_key, asset_id)["asset_id"] == asset_id
    tampered = {
        **envelope,
        "job": {**envelope["job"], "targets": [{"name": "evil", "version": "1"}]},
    }
    with pytest.raises(JobRefused, match="signature"):
        verify_envelope(tampered, fleet.signer.public_key, asset_id)
    with pytest.raises(JobRefused, match="asset"):
        verify_envelope(envelope, fleet.signer.public_key, asset_id + 1)
    other = job_signing._signer(Ed25519PrivateKey.generate())
    with pytest.raises(JobRefused, match="signature"):
        verify_envelope(envelope, other.public_key, asset_id)
    assert base64.b64decode(fleet.signer.public_key_b64) == fleet.signer.public_key


def test_a_failed_smoke_test_halts_before_the_pilot_ring(fleet: Fleet) -> None:
    rollout_id = fleet.create(fleet.spec())  # max errors 0
    fleet.start(rollout_id)
    fleet.tick()
    fleet.run(
        "lab-1",
        status="rolled_back",
        smoke_tests=[{"name": "http", "ok": False, "detail": "503"}],
        rollback={"method": "packages", "verified": True, "versions": {"pwt-hello": V1}},
    )
    fleet.tick()
    view = fleet.show(rollout_id)
    assert view["state"] == "halted"
    assert "max errors 0" in view["halt_reason"]
    assert states(view) == {"lab": "failed", "pilot": "pending", "prod": "pending"}
    assert view["rings"][0]["jobs"][0]["smoke_failed"] is True
    fleet.tick()
    assert fleet.poll("pilot-1") == []


def test_the_approval_dossier_shows_the_rings_results(fleet: Fleet) -> None:
    rollout_id = fleet.create()
    fleet.start(rollout_id)
    fleet.tick()
    fleet.run("lab-1", status="rolled_back", smoke_tests=[{"name": "t", "ok": False, "detail": ""}])
    fleet.tick()
    with transaction(fleet.factory) as session:
        results = approvals.dossier(session, fleet.patch)["test_results"]
    assert results == [
        {
            "rollout_id": rollout_id,
            "rollout": "hello 2.0",
            "state": "halted",
            "rings": [
                {"ring": "lab", "state": "failed", "jobs": {"rolled_back": 1}, "smoke_failures": 1}
            ],
        }
    ]


def test_the_gate_holds_a_smoke_failure_even_when_errors_are_allowed(fleet: Fleet) -> None:
    rollout_id = fleet.create(fleet.spec(max_errors="5"))
    fleet.start(rollout_id)
    fleet.tick()
    fleet.run("lab-1", status="rolled_back", smoke_tests=[{"name": "t", "ok": False, "detail": ""}])
    fleet.tick()
    view = fleet.show(rollout_id)
    assert view["state"] == "halted" and "smoke test" in view["halt_reason"]


def test_soak_and_sign_off(fleet: Fleet) -> None:
    spec = fleet.spec(soak_seconds=600)
    spec = replace(spec, rings=(replace(spec.rings[0], require_signoff=True), *spec.rings[1:]))
    rollout_id = fleet.create(spec)
    fleet.start(rollout_id)
    fleet.tick()
    fleet.run("lab-1")
    now = datetime.now(UTC)
    fleet.tick(now)
    assert fleet.ring(rollout_id, "lab")["state"] == "soaking"
    fleet.tick(now + timedelta(seconds=300))
    assert fleet.ring(rollout_id, "lab")["state"] == "soaking"
    fleet.tick(now + timedelta(seconds=601))
    assert fleet.ring(rollout_id, "lab")["state"] == "awaiting_signoff"
    with pytest.raises(ApproverRequired), transaction(fleet.factory) as session:
        rollouts.sign_off(session, OLIVIA, rollout_id, "lab")
    with pytest.raises(FourEyesViolation), transaction(fleet.factory) as session:
        rollouts.sign_off(session, approvals.Actor(OPERATOR, True), rollout_id, "lab")
    with transaction(fleet.factory) as session:
        rollouts.sign_off(session, ALICE, rollout_id, "lab")
    fleet.tick(now + timedelta(seconds=602))
    assert states(fleet.show(rollout_id))["lab"] == "passed"
    assert len(fleet.poll("pilot-1")) == 1


def test_declined_or_unapproved_patches_are_refused(fleet: Fleet) -> None:
    unapproved = add_patch(fleet.factory, "pwt-other")
    offer(fleet.factory, fleet.assets["lab-1"], unapproved)
    with pytest.raises(NotDeployable), transaction(fleet.factory) as session:
        rollouts.create(session, OPERATOR, replace(fleet.spec(), patch_ids=(unapproved,)))
    with transaction(fleet.factory) as session:
        approvals.act(session, ALICE, unapproved, "decline", "breaks the web tier")
    with pytest.raises(NotDeployable, match="declined"), transaction(fleet.factory) as session:
        rollouts.create(session, OPERATOR, replace(fleet.spec(), patch_ids=(unapproved,)))
    # A decline after planning stops the start.
    rollout_id = fleet.create()
    with transaction(fleet.factory) as session:
        approvals.act(session, ALICE, fleet.patch, "revoke", "regression reported upstream")
        approvals.act(session, ALICE, fleet.patch, "decline", "regression reported upstream")
    with pytest.raises(NotDeployable), transaction(fleet.factory) as session:
        rollouts.start(session, OPERATOR, rollout_id)
    assert fleet.show(rollout_id)["state"] == "draft"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": " "}, "name"),
        ({"patch_ids": ()}, "patches"),
        ({"patch_ids": (1, 1)}, "more than once"),
        ({"rings": ()}, "rings"),
        ({"job_timeout_seconds": 5}, "job timeout"),
        ({"emergency": True, "emergency_reason": "now"}, "reason"),
        ({"job_options": {"reboot": "sometimes"}}, "reboot"),
        ({"job_options": {"colour": "red"}}, "unknown job option"),
        ({"job_options": {"pre_hook": "rm -rf /"}}, "pre_hook"),
        (
            {
                "job_options": {
                    "smoke_tests": [{"kind": "command", "name": "x", "argv": "ls", "timeout": 5}]
                }
            },
            "argv",
        ),
    ],
)
def test_bad_rollout_specs_change_nothing(
    fleet: Fleet, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message), transaction(fleet.factory) as session:
        rollouts.create(session, OPERATOR, replace(fleet.spec(), **change))
    assert_no_rollouts(fleet)


@pytest.mark.parametrize(
    ("ring_change", "error"),
    [
        ({"name": "bad name"}, InvalidInput),
        ({"max_errors": "-1"}, InvalidInput),
        ({"max_concurrency": "150%"}, InvalidInput),
        ({"soak_seconds": -1}, InvalidInput),
        ({"min_success_percent": 120.0}, InvalidInput),
        ({"group": "nope"}, NotFound),
        ({"schedule": {"windows": [{"cron": "61 * * * *", "duration_minutes": 60}]}}, InvalidInput),
    ],
)
def test_bad_rings_change_nothing(
    fleet: Fleet, ring_change: dict[str, Any], error: type[Exception]
) -> None:
    spec = fleet.spec()
    spec = replace(spec, rings=(replace(spec.rings[0], **ring_change), *spec.rings[1:]))
    with pytest.raises(error), transaction(fleet.factory) as session:
        rollouts.create(session, OPERATOR, spec)
    assert_no_rollouts(fleet)


def assert_no_rollouts(fleet: Fleet) -> None:
    with transaction(fleet.factory) as session:
        assert rollouts.list_rollouts(session) == []
        assert session.execute(select(func.count()).select_from(RolloutJob)).scalar_one() == 0


def test_an_asset_in_two_rings_is_patched_in_the_first(fleet: Fleet) -> None:
    with transaction(fleet.factory) as session:
        groups.add_members(session, OPERATOR, "pilot", [fleet.assets["lab-1"]])
    view = fleet.show(fleet.create())
    assert [j["hostname"] for j in view["rings"][0]["jobs"]] == ["lab-1"]
    assert [j["hostname"] for j in view["rings"][1]["jobs"]] == ["pilot-1", "pilot-2"]


def test_assets_without_an_agent_are_skipped_and_shown(fleet: Fleet) -> None:
    ssh_only = new_asset(fleet.factory, "ssh-1", [deb("pwt-hello", V1)])
    offer(fleet.factory, ssh_only, fleet.patch)
    with transaction(fleet.factory) as session:
        groups.add_members(session, OPERATOR, "lab", [ssh_only])
        revoked = session.get(Agent, fleet.agents[fleet.assets["prod-3"]].id)
        assert revoked is not None
        revoked.revoked_at = datetime.now(UTC)
    view = fleet.show(fleet.create())
    assert view["skipped_assets"] == [
        {"asset_id": ssh_only, "hostname": "ssh-1", "reason": "no active agent"},
        {"asset_id": fleet.assets["prod-3"], "hostname": "prod-3", "reason": "no active agent"},
    ]
    hosts = [j["hostname"] for r in view["rings"] for j in r["jobs"]]
    assert hosts == ["lab-1", "pilot-1", "pilot-2", "prod-1", "prod-2"]


def test_partial_job_options_keep_the_other_defaults(fleet: Fleet) -> None:
    spec = replace(fleet.spec(), job_options={"pre_checks": {"min_free_mb": 1024}})
    options = fleet.show(fleet.create(spec))["job_options"]
    assert options["pre_checks"] == {
        "min_free_mb": 1024,
        "check_lock": True,
        "refuse_pending_reboot": False,
    }


def test_concurrency_order_and_sites(fleet: Fleet) -> None:
    with transaction(fleet.factory) as session:
        groups.create_static(session, OPERATOR, "db", [fleet.assets["prod-3"]])
        for host, region in (("prod-1", "fra"), ("prod-2", "fra"), ("prod-3", "ams")):
            asset = session.get(Asset, fleet.assets[host])
            assert asset is not None
            asset.region = region
    spec = rollouts.RolloutSpec(
        "prod only",
        (fleet.patch,),
        (rollouts.RingSpec("prod", "prod", max_concurrency="2", order_groups=("db",)),),
    )
    rollout_id = fleet.create(spec)
    fleet.start(rollout_id)
    fleet.tick()
    # The database server goes first, alone; then the rest two at a time.
    assert len(fleet.poll("prod-3")) == 1 and fleet.poll("prod-1") == []
    fleet.run("prod-3")
    fleet.tick()
    assert len(fleet.poll("prod-1")) == 1 and len(fleet.poll("prod-2")) == 1
    view = fleet.show(rollout_id)
    assert [j["site"] for j in view["rings"][0]["jobs"]] == ["ams", "fra", "fra"]


def test_pause_resume_and_abort(fleet: Fleet) -> None:
    rollout_id = fleet.create()
    with pytest.raises(Conflict), transaction(fleet.factory) as session:
        rollouts.pause(session, OPERATOR, rollout_id)  # not running yet
    fleet.start(rollout_id)
    with transaction(fleet.factory) as session:
        rollouts.pause(session, OPERATOR, rollout_id)
    fleet.tick()
    assert fleet.poll("lab-1") == []
    with transaction(fleet.factory) as session:
        rollouts.resume(session, OPERATOR, rollout_id)
    fleet.tick()
    [job] = fleet.poll("lab-1")
    with transaction(fleet.factory) as session:
        rollouts.abort(session, OPERATOR, rollout_id)
    agent = fleet.agents[fleet.assets["lab-1"]]
    with pytest.raises(Conflict, match="cancelled"), transaction(fleet.factory) as session:
        agent_jobs.start(session, agent, job["job_id"], 1)
    view = fleet.show(rollout_id)
    assert view["state"] == "aborted"
    assert {j["state"] for r in view["rings"] for j in r["jobs"]} == {"cancelled"}
    with transaction(fleet.factory) as session:
        actions = [e.action for e in audit.list_events(session, target_type="rollout")]
    for action in ("rollout.create", "rollout.start", "rollout.pause", "rollout.abort"):
        assert action in actions


def test_rollback_of_the_whole_rollout(fleet: Fleet) -> None:
    rollout_id = fleet.create()
    fleet.start(rollout_id)
    fleet.tick()
    fleet.run("lab-1")
    fleet.tick()
    fleet.run("pilot-1")  # pilot-2 has not run yet
    with transaction(fleet.factory) as session:
        assert rollouts.rollback(session, OPERATOR, rollout_id) == 2
    view = fleet.show(rollout_id)
    assert view["state"] == "rolling_back"
    assert states(view) == {"lab": "rolling_back", "pilot": "rolling_back", "prod": "cancelled"}
    pilot_jobs = {j["hostname"]: j for j in view["rings"][1]["jobs"]}
    assert pilot_jobs["pilot-2"]["state"] == "cancelled"
    fleet.tick()
    [job] = fleet.poll("lab-1")
    assert job["action"] == "rollback"
    assert job["targets"] == [{"name": "pwt-hello", "version": V1, "arch": "amd64"}]
    fleet.run("lab-1")
    fleet.run("pilot-1")
    fleet.tick()
    view = fleet.show(rollout_id)
    assert view["state"] == "rolled_back"
    assert states(view) == {"lab": "rolled_back", "pilot": "rolled_back", "prod": "cancelled"}
    with pytest.raises(Conflict), transaction(fleet.factory) as session:
        rollouts.rollback(session, OPERATOR, rollout_id)


def test_no_rollback_while_jobs_run(fleet: Fleet) -> None:
    rollout_id = fleet.create()
    fleet.start(rollout_id)
    fleet.tick()
    [job] = fleet.poll("lab-1")
    with transaction(fleet.factory) as session:
        agent_jobs.start(session, fleet.agents[fleet.assets["lab-1"]], job["job_id"], 1)
    with transaction(fleet.factory) as session:
        rollouts.pause(session, OPERATOR, rollout_id)
    with pytest.raises(Conflict, match="still running"), transaction(fleet.factory) as session:
        rollouts.rollback(session, OPERATOR, rollout_id)
    assert fleet.show(rollout_id)["state"] == "paused"
    fleet.run("lab-1")  # the agent finishes and reports
    with transaction(fleet.factory) as session:
        assert rollouts.rollback(session, OPERATOR, rollout_id) == 1


def test_rollback_of_one_ring_halts_the_rest(fleet: Fleet) -> None:
    rollout_id = fleet.create()
    fleet.start(rollout_id)
    fleet.tick()
    fleet.run("lab-1")
    fleet.tick()
    with pytest.raises(NotFound), transaction(fleet.factory) as session:
        rollouts.rollback(session, OPERATOR, rollout_id, "nope")
    with transaction(fleet.factory) as session:
        assert rollouts.rollback(session, OPERATOR, rollout_id, "lab") == 1
    fleet.tick()
    fleet.run("lab-1")
    fleet.tick()
    view = fleet.show(rollout_id)
    assert view["state"] == "halted" and "lab" in view["halt_reason"]
    assert states(view)["lab"] == "rolled_back"


def test_emergency_needs_an_approver(fleet: Fleet) -> None:
    rollout_id = fleet.create(
        replace(fleet.spec(soak_seconds=3600), emergency=True, emergency_reason="CVE-2024-6387 now")
    )
    with pytest.raises(ApproverRequired, match="emergency"), transaction(fleet.factory) as session:
        rollouts.start(session, OPERATOR, rollout_id)
    with pytest.raises(FourEyesViolation), transaction(fleet.factory) as session:
        rollouts.approve_emergency(session, approvals.Actor(OPERATOR, True), rollout_id)
    with transaction(fleet.factory) as session:
        rollouts.approve_emergency(session, ALICE, rollout_id, "zero-day")
    with transaction(fleet.factory) as session:
        schedules.add_blackout(
            session,
            OPERATOR,
            "group",
            "lab",
            {"start": "2000-01-01T00:00:00+00:00", "end": "2100-01-01T00:00:00+00:00"},
        )
    fleet.start(rollout_id)
    fleet.tick()
    fleet.run("lab-1")  # the blackout does not hold an approved emergency
    fleet.tick()
    assert states(fleet.show(rollout_id))["lab"] == "passed"  # and no soak
    with transaction(fleet.factory) as session:
        actions = [e.action for e in audit.list_events(session, target_type="rollout")]
    assert "rollout.emergency_approve" in actions


def test_windows_hold_jobs_until_they_open(fleet: Fleet) -> None:
    with transaction(fleet.factory) as session:
        # Every day 02:00-03:00 in Berlin.
        schedules.add_window(
            session,
            OPERATOR,
            "group",
            "lab",
            {"cron": "0 2 * * *", "duration_minutes": 60, "timezone": "Europe/Berlin"},
        )
    rollout_id = fleet.create()
    fleet.start(rollout_id)
    closed = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    fleet.tick(closed)
    assert fleet.ring(rollout_id, "lab")["state"] == "running"
    assert fleet.poll("lab-1") == []
    fleet.tick(datetime(2026, 12, 3, 1, 30, tzinfo=UTC))  # 02:30 in Berlin
    assert len(fleet.poll("lab-1")) == 1
    with transaction(fleet.factory) as session:
        openings = schedules.upcoming(session, "group", "lab", 2, closed)
    assert [o["local_start"] for o in openings] == [
        "2026-12-03T02:00:00+01:00",
        "2026-12-04T02:00:00+01:00",
    ]
    assert openings[0]["start"] == "2026-12-03T01:00:00+00:00"


def test_jobs_without_a_result_time_out(fleet: Fleet) -> None:
    rollout_id = fleet.create(replace(fleet.spec(), job_timeout_seconds=600))
    fleet.start(rollout_id)
    now = datetime.now(UTC)
    fleet.tick(now)
    assert len(fleet.poll("lab-1")) == 1
    fleet.tick(now + timedelta(seconds=601))
    view = fleet.show(rollout_id)
    assert view["rings"][0]["jobs"][0]["state"] == "timed_out"
    assert view["state"] == "halted"
    # The agent's late result is still recorded: it is the host's true state.
    with transaction(fleet.factory) as session:
        job = session.execute(
            select(RolloutJob).where(RolloutJob.state == "timed_out")
        ).scalar_one()
        job_id = job.id
    result = {
        "protocol": 1, "job_id": job_id, "attempt": 1, "status": "succeeded",
        "phase": "done", "before": {}, "after": {}, "smoke_tests": [], "log": "",
    }  # fmt: skip
    with transaction(fleet.factory) as session:
        agent = fleet.agents[fleet.assets["lab-1"]]
        assert agent_jobs.record_result(session, agent, job_id, result) is False
    assert fleet.show(rollout_id)["rings"][0]["jobs"][0]["state"] == "succeeded"


def test_a_result_between_reading_and_applying_drops_the_stale_step(fleet: Fleet) -> None:
    """The engine reads, decides, then applies in a separate write transaction.
    A result that lands in between (here: just as the job times out) must not
    let the stale decision (a timeout, hence a halt) through."""
    rollout_id = fleet.create(replace(fleet.spec(), job_timeout_seconds=600))
    fleet.start(rollout_id)
    now = datetime.now(UTC)
    fleet.tick(now)
    late = now + timedelta(seconds=601)
    with transaction(fleet.factory) as session:
        planned = rollouts._plan(session, rollout_id, late)
    assert planned is not None and len(planned.step.time_out) == 1
    assert planned.step.rollout_state == "halted"
    fleet.run("lab-1")  # the agent's result arrives now
    with pytest.raises(rollouts._Stale), transaction(fleet.factory) as session:
        rollouts._apply(session, planned, late)
    fleet.tick(late)
    view = fleet.show(rollout_id)
    assert view["state"] == "running" and states(view)["lab"] == "passed"
    assert view["rings"][0]["jobs"][0]["state"] == "succeeded"


def test_a_person_s_move_between_reading_and_applying_wins(fleet: Fleet) -> None:
    rollout_id = fleet.create()
    fleet.start(rollout_id)
    with transaction(fleet.factory) as session:
        planned = rollouts._plan(session, rollout_id, datetime.now(UTC))
    assert planned is not None and planned.step.dispatch
    with transaction(fleet.factory) as session:
        rollouts.pause(session, OPERATOR, rollout_id)
    with pytest.raises(rollouts._Stale), transaction(fleet.factory) as session:
        rollouts._apply(session, planned, datetime.now(UTC))
    assert fleet.poll("lab-1") == []  # nothing was dispatched
