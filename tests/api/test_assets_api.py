"""Asset attributes through the API: validation, audit, filters, deletion."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.api.conftest import auth
from tests.api.test_agent_protocol import enroll, full


def make_asset(client: TestClient, factory: sessionmaker[Session], hostname: str = "web-01") -> int:
    agent = enroll(client, factory, hostname)
    report = full(agent["asset_id"], 1)
    report["facts"] = report["facts"] | {"hostname": hostname}
    assert (
        client.post(
            "/api/v1/agent/report", json=report, headers=auth(agent["credential"])
        ).status_code
        == 200
    )
    asset_id: int = agent["asset_id"]
    return asset_id


def test_edit_attributes_and_audit(
    client: TestClient, factory: sessionmaker[Session], role_tokens: dict[str, str]
) -> None:
    asset_id = make_asset(client, factory)
    operator = auth(role_tokens["operator"])
    response = client.patch(
        f"/api/v1/assets/{asset_id}",
        headers=operator,
        json={
            "criticality": 1,
            "environment": "prod",
            "owner": "payments-team",
            "business_service": "checkout",
            "region": "eu-central",
            "timezone": "Europe/Berlin",
            "tags": ["PCI", "web", "pci"],
            "internet_facing": True,
            "data_sensitivity": "restricted",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["criticality"] == 1 and body["timezone"] == "Europe/Berlin"
    assert body["tags"] == ["pci", "web"]
    assert body["internet_facing"] is True and body["data_sensitivity"] == "restricted"

    # Only what is sent changes; null clears a text field.
    response = client.patch(f"/api/v1/assets/{asset_id}", headers=operator, json={"owner": None})
    assert response.json()["owner"] is None and response.json()["environment"] == "prod"

    events = client.get(
        "/api/v1/audit-events",
        params={"action": "asset.update"},
        headers=auth(role_tokens["auditor"]),
    ).json()
    assert events[1]["details"]["criticality"] == {"from": 3, "to": 1}
    assert events[0]["actor"] == "user:operator-user"
    assert client.get("/api/v1/audit-events/verify", headers=auth(role_tokens["auditor"])).json()[
        "ok"
    ]


def test_bad_attributes_change_nothing(
    client: TestClient, factory: sessionmaker[Session], role_tokens: dict[str, str]
) -> None:
    asset_id = make_asset(client, factory)
    operator = auth(role_tokens["operator"])
    before = client.get(f"/api/v1/assets/{asset_id}", headers=operator).json()
    for bad in (
        {"criticality": 0},
        {"criticality": 5},
        {"criticality": "high"},
        {"timezone": "Mars/Olympus_Mons"},
        {"tags": ["has space"]},
        {"tags": ["; rm -rf"]},
        {"data_sensitivity": "secret"},
        {"surprise": 1},
        {"internet_facing": "maybe"},
        {"criticality": None},
    ):
        response = client.patch(f"/api/v1/assets/{asset_id}", headers=operator, json=bad)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["message"], bad
    after = client.get(f"/api/v1/assets/{asset_id}", headers=operator).json()
    assert after == before


def test_filters_and_delete(
    client: TestClient, factory: sessionmaker[Session], role_tokens: dict[str, str]
) -> None:
    one = make_asset(client, factory, "db-01")
    make_asset(client, factory, "web-02")
    viewer = auth(role_tokens["viewer"])
    client.patch(
        f"/api/v1/assets/{one}", headers=auth(role_tokens["operator"]), json={"tags": ["database"]}
    )
    assert [
        a["hostname"]
        for a in client.get("/api/v1/assets", params={"search": "DB"}, headers=viewer).json()[
            "items"
        ]
    ] == ["db-01"]
    assert [
        a["hostname"]
        for a in client.get("/api/v1/assets", params={"tag": "database"}, headers=viewer).json()[
            "items"
        ]
    ] == ["db-01"]
    assert (
        client.get("/api/v1/assets", params={"status": "bogus"}, headers=viewer).status_code == 422
    )
    assert (
        client.get(
            f"/api/v1/assets/{one}/packages", params={"at": "2026-01-01T00:00:00"}, headers=viewer
        ).status_code
        == 422
    )
    assert client.delete(f"/api/v1/assets/{one}", headers=viewer).status_code == 403
    assert (
        client.delete(f"/api/v1/assets/{one}", headers=auth(role_tokens["operator"])).status_code
        == 204
    )
    assert client.get(f"/api/v1/assets/{one}", headers=viewer).status_code == 404
    assert client.get("/api/v1/assets", headers=viewer).json()["total"] == 1


def test_users_and_tokens(
    client: TestClient, factory: sessionmaker[Session], role_tokens: dict[str, str]
) -> None:
    admin = auth(role_tokens["admin"])
    created = client.post(
        "/api/v1/users",
        headers=admin,
        json={"username": "carol", "password": "x" * 12, "role": "viewer"},
    )
    assert created.status_code == 201
    assert (
        client.post(
            "/api/v1/users",
            headers=admin,
            json={"username": "carol", "password": "x" * 12, "role": "viewer"},
        ).status_code
        == 409
    )
    assert (
        client.post(
            "/api/v1/users",
            headers=admin,
            json={"username": "dave", "password": "short", "role": "viewer"},
        ).status_code
        == 422
    )
    login = client.post("/api/v1/auth/login", json={"username": "carol", "password": "x" * 12})
    assert login.status_code == 200
    session_token = login.json()["token"]
    assert client.get("/api/v1/me", headers=auth(session_token)).json()["role"] == "viewer"
    assert (
        client.post(
            "/api/v1/auth/login", json={"username": "carol", "password": "y" * 12}
        ).status_code
        == 401
    )
    token = client.post("/api/v1/tokens", headers=auth(session_token), json={"name": "ci"}).json()
    assert client.get("/api/v1/assets", headers=auth(token["token"])).status_code == 200
    assert (
        client.delete(f"/api/v1/tokens/{token['id']}", headers=auth(session_token)).status_code
        == 204
    )
    assert client.get("/api/v1/assets", headers=auth(token["token"])).status_code == 401
    # Disabling a user ends their sessions.
    client.patch(f"/api/v1/users/{created.json()['id']}", headers=admin, json={"is_active": False})
    assert client.get("/api/v1/me", headers=auth(session_token)).status_code == 401
