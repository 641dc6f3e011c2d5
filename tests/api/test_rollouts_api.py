"""The rollout API and the agent job endpoints over HTTP (in-process app,
real database): create, show, moves, refusals, signed jobs, exactly-once
results, maintenance windows."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.protocol.jobs import verify_envelope
from patchwarden.services import groups, rollouts
from patchwarden.storage.db import transaction
from tests.api.conftest import auth, new_enrollment_token
from tests.services.test_rollouts import V1, add_patch, approve, offer

HOSTNAME = "web-1"


@pytest.fixture
def enrolled(client: TestClient, factory: sessionmaker[Session]) -> dict[str, Any]:
    """An agent enrolled over the API, its asset in group "lab" with an approved patch."""
    answer = client.post(
        "/api/v1/agent/enroll",
        json={
            "protocol": 1,
            "token": new_enrollment_token(factory),
            "hostname": HOSTNAME,
            "machine_id": None,
            "agent_version": "test",
        },
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    patch = add_patch(factory, "pwt-hello")
    approve(factory, patch)
    offer(factory, body["asset_id"], patch)
    with transaction(factory) as session:
        groups.create_static(session, "test", "lab", [body["asset_id"]])
    body["patch_id"] = patch
    return body


def rollout_body(patch_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": "hello",
        "patch_ids": [patch_id],
        "rings": [{"name": "lab", "group": "lab", "max_concurrency": "100%"}],
        **extra,
    }


def test_enrolment_gives_the_job_signing_key(client: TestClient, enrolled: dict[str, Any]) -> None:
    assert len(base64.b64decode(enrolled["job_signing_key"])) == 32
    headers = auth(enrolled["credential"])
    key = client.get("/api/v1/agent/signing-key", headers=headers).json()
    assert key == {
        "key_id": enrolled["job_signing_key_id"],
        "public_key": enrolled["job_signing_key"],
    }


def test_a_rollout_over_http(
    client: TestClient,
    enrolled: dict[str, Any],
    role_tokens: dict[str, str],
    factory: sessionmaker[Session],
) -> None:
    operator = auth(role_tokens["operator"])
    created = client.post(
        "/api/v1/rollouts", json=rollout_body(enrolled["patch_id"]), headers=operator
    )
    assert created.status_code == 201, created.text
    rollout_id = created.json()["id"]
    started = client.post(f"/api/v1/rollouts/{rollout_id}/start", headers=operator)
    assert started.status_code == 200 and started.json()["state"] == "running"
    rollouts.tick(factory)

    agent = auth(enrolled["credential"])
    poll = {"protocol": 1, "asset_id": enrolled["asset_id"], "running": [], "kept": []}
    answer = client.post("/api/v1/agent/jobs/poll", json=poll, headers=agent).json()
    [envelope] = answer["jobs"]
    key = base64.b64decode(enrolled["job_signing_key"])
    job = verify_envelope(envelope, key, enrolled["asset_id"])
    assert job["targets"] == [{"name": "pwt-hello", "version": "2.0-1", "arch": "amd64"}]
    assert answer["poll_interval"] == 60

    start = client.post(
        f"/api/v1/agent/jobs/{job['job_id']}/start",
        json={"protocol": 1, "attempt": 1},
        headers=agent,
    )
    assert start.json() == {"status": "running"}
    result = {
        "protocol": 1, "job_id": job["job_id"], "attempt": 1, "status": "succeeded",
        "phase": "done", "before": {"pwt-hello": V1}, "after": {"pwt-hello": "2.0-1"},
        "smoke_tests": [{"name": "http", "ok": True, "detail": "200"}], "log": "x" * 60_000,
    }  # fmt: skip
    path = f"/api/v1/agent/jobs/{job['job_id']}/result"
    assert client.post(path, json=result, headers=agent).json() == {
        "status": "recorded",
        "duplicate": False,
    }
    assert client.post(path, json=result, headers=agent).json()["duplicate"] is True
    rollouts.tick(factory)

    view = client.get(f"/api/v1/rollouts/{rollout_id}", headers=auth(role_tokens["viewer"])).json()
    assert view["state"] == "completed"
    assert view["rings"][0]["jobs"][0]["after"] == {"pwt-hello": "2.0-1"}
    # The kept package files of a finished rollout may go.
    poll["kept"] = [rollout_id, rollout_id + 100]
    answer = client.post("/api/v1/agent/jobs/poll", json=poll, headers=agent).json()
    assert answer == {"jobs": [], "release": [rollout_id], "poll_interval": 60}


def test_agent_endpoints_refuse_strangers_and_bad_bodies(
    client: TestClient, enrolled: dict[str, Any]
) -> None:
    poll = {"protocol": 1, "asset_id": enrolled["asset_id"]}
    assert client.post("/api/v1/agent/jobs/poll", json=poll).status_code == 401
    stranger = auth("pwa_not-a-credential")
    assert client.post("/api/v1/agent/jobs/poll", content=b"{", headers=stranger).status_code == 401
    agent = auth(enrolled["credential"])
    other = {**poll, "asset_id": enrolled["asset_id"] + 1}
    assert client.post("/api/v1/agent/jobs/poll", json=other, headers=agent).status_code == 403
    for bad in (b"{", b"[]", b'{"protocol": 2, "asset_id": 1}', b'{"asset_id": 1, "x": 1}'):
        response = client.post("/api/v1/agent/jobs/poll", content=bad, headers=agent)
        assert response.status_code == 422, (bad, response.text)
    result = client.post("/api/v1/agent/jobs/1/result", content=b"[1]", headers=agent)
    assert result.status_code == 422
    missing = {"protocol": 1, "job_id": 77, "attempt": 1, "status": "succeeded", "phase": "done"}
    assert (
        client.post("/api/v1/agent/jobs/77/result", json=missing, headers=agent).status_code == 404
    )


def test_declined_patches_and_bad_rollouts_are_refused(
    client: TestClient,
    enrolled: dict[str, Any],
    role_tokens: dict[str, str],
    factory: sessionmaker[Session],
) -> None:
    operator, approver = auth(role_tokens["operator"]), auth(role_tokens["approver"])
    declined = add_patch(factory, "pwt-web")
    offer(factory, enrolled["asset_id"], declined)
    client.post(
        f"/api/v1/patches/{declined}/approval",
        json={"action": "decline", "comment": "breaks the login page"},
        headers=approver,
    )
    refused = client.post("/api/v1/rollouts", json=rollout_body(declined), headers=operator)
    assert refused.status_code == 409 and "declined" in refused.json()["message"]
    bad_ring = rollout_body(enrolled["patch_id"])
    bad_ring["rings"][0]["max_errors"] = "lots"
    assert client.post("/api/v1/rollouts", json=bad_ring, headers=operator).status_code == 422
    assert client.get("/api/v1/rollouts", headers=operator).json() == []
    # An approver may not create rollouts; an operator may not approve emergencies.
    assert (
        client.post(
            "/api/v1/rollouts", json=rollout_body(enrolled["patch_id"]), headers=approver
        ).status_code
        == 403
    )
    emergency = rollout_body(
        enrolled["patch_id"], emergency=True, emergency_reason="regreSSHion, exploited now"
    )
    rollout_id = client.post("/api/v1/rollouts", json=emergency, headers=operator).json()["id"]
    assert client.post(f"/api/v1/rollouts/{rollout_id}/start", headers=operator).status_code == 403
    approval = f"/api/v1/rollouts/{rollout_id}/emergency-approval"
    assert client.post(approval, json={}, headers=operator).status_code == 403
    approved = client.post(approval, json={"comment": "go"}, headers=approver)
    assert approved.status_code == 200 and approved.json()["emergency_approved_by"]
    assert client.post(f"/api/v1/rollouts/{rollout_id}/start", headers=operator).status_code == 200
    assert client.post(f"/api/v1/rollouts/{rollout_id}/resume", headers=operator).status_code == 409
    assert client.post(f"/api/v1/rollouts/{rollout_id}/pause", headers=operator).status_code == 200
    rollback = client.post(f"/api/v1/rollouts/{rollout_id}/rollback", json={}, headers=operator)
    assert rollback.json() == {"rollback_jobs": 0}


def test_maintenance_windows_over_http(
    client: TestClient, enrolled: dict[str, Any], role_tokens: dict[str, str]
) -> None:
    operator = auth(role_tokens["operator"])
    window = {
        "rrule": "FREQ=WEEKLY;BYDAY=SA;BYHOUR=2",
        "duration_minutes": 120,
        "timezone": "Europe/Berlin",
    }
    added = client.post("/api/v1/groups/lab/maintenance/windows", json=window, headers=operator)
    assert added.status_code == 200, added.text
    assert added.json()["windows"] == [window]
    bad = {**window, "timezone": "Mars/Olympus"}
    response = client.post("/api/v1/groups/lab/maintenance/windows", json=bad, headers=operator)
    assert response.status_code == 422
    assert client.get("/api/v1/groups/lab/maintenance", headers=operator).json()["windows"] == [
        window
    ]
    openings = client.get("/api/v1/groups/lab/maintenance/next?count=3", headers=operator).json()
    assert len(openings) == 3
    assert all(o["local_start"].endswith(("+01:00", "+02:00")) for o in openings)
    assert all("T02:00:00" in o["local_start"] for o in openings)
    asset = enrolled["asset_id"]
    blackout = {
        "start": "2026-12-20T00:00:00+01:00",
        "end": "2027-01-04T00:00:00+01:00",
        "reason": "freeze",
    }
    added = client.post(
        f"/api/v1/assets/{asset}/maintenance/blackouts", json=blackout, headers=operator
    )
    assert added.status_code == 200 and added.json()["blackouts"][0]["reason"] == "freeze"
    cleared = client.delete("/api/v1/groups/lab/maintenance", headers=operator)
    assert cleared.json()["windows"] == []
