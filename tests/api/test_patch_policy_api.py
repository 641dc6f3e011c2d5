"""Repositories, patches, approvals, rules, exceptions and baselines through the
HTTP API (the real ASGI app over SQLite and PostgreSQL, a real apt repository
served on loopback)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.policy.errors import NotDeployable
from patchwarden.services import approvals, groups, users
from patchwarden.storage.db import transaction
from patchwarden.storage.tables import (
    ApprovalRuleRow,
    AuditEvent,
    Baseline,
    RepositoryPackage,
    RiskAcceptanceRow,
)
from tests.api.conftest import PASSWORD, auth
from tests.repos.repo_server import RepoServer
from tests.services.test_patch_policy import bullseye_assets, bullseye_mirror

Headers = dict[str, str]


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[RepoServer]:
    with bullseye_mirror(tmp_path / "www") as server:
        yield server


def closed_port_url() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/debian"


def add_repository(client: TestClient, headers: Headers, **body: Any) -> Any:
    response = client.post("/api/v1/repositories", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def fleet(
    client: TestClient,
    role_tokens: dict[str, str],
    factory: sessionmaker[Session],
    tmp_path: Path,
    mirror: RepoServer,
) -> dict[str, int]:
    """Advisories, two bullseye assets, the two suites added and synced through the API."""
    web, db = bullseye_assets(factory, tmp_path)
    operator = auth(role_tokens["operator"])
    for suite in ("bullseye", "bullseye-security"):
        add_repository(
            client,
            operator,
            name=suite,
            kind="apt",
            url=mirror.url(),
            suite=suite,
            platform="debian",
        )
    synced = client.post("/api/v1/repositories/sync", json={}, headers=operator)
    assert synced.status_code == 200, synced.text
    assert [(r["name"], r["status"]) for r in synced.json()] == [
        ("bullseye", "updated"),
        ("bullseye-security", "updated"),
    ]
    with transaction(factory) as session:
        group = groups.create_static(session, "test", "web", [web])
    return {"web": web, "db": db, "group": group.id}


def patch_ids(client: TestClient, headers: Headers, asset_id: int) -> dict[str, int]:
    response = client.get("/api/v1/patches", params={"asset_id": asset_id}, headers=headers)
    assert response.status_code == 200, response.text
    return {row["package"]: row["id"] for row in response.json()}


def second_approver(factory: sessionmaker[Session]) -> Headers:
    with transaction(factory) as session:
        user = users.create_user(session, "test", "bob", PASSWORD, "approver")
        secret, _ = users.create_token(session, "test", user.id, "test")
    return auth(secret)


def count(factory: sessionmaker[Session], table: Any) -> int:
    with transaction(factory) as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())


# --- repositories -----------------------------------------------------------------------


def test_repositories(
    client: TestClient,
    role_tokens: dict[str, str],
    factory: sessionmaker[Session],
    fleet: dict[str, int],
    mirror: RepoServer,
) -> None:
    operator, viewer = auth(role_tokens["operator"]), auth(role_tokens["viewer"])
    listed = client.get("/api/v1/repositories", headers=viewer).json()
    assert [(r["name"], r["package_count"], r["last_error"]) for r in listed] == [
        ("bullseye", 3, None),
        ("bullseye-security", 2, None),
    ]
    one = client.get("/api/v1/repositories/bullseye-security", headers=viewer).json()
    assert (one["kind"], one["suite"], one["components"], one["architectures"]) == (
        "apt",
        "bullseye-security",
        ["main"],
        ["amd64"],
    )
    assert one["last_success_at"] is not None
    assert client.get(f"/api/v1/repositories/{one['id']}", headers=viewer).json()["name"] == (
        "bullseye-security"
    )

    # Refused definitions store nothing.
    for body, status in (
        ({"name": "r", "kind": "rpm", "url": mirror.url(), "suite": "x"}, 422),
        ({"name": "r", "kind": "yum", "url": mirror.url()}, 422),
        ({"name": "r", "kind": "apt", "url": mirror.url()}, 422),
        ({"name": "r", "kind": "apk", "url": "ftp://example.org/"}, 422),
        ({"name": "r", "kind": "apk", "url": mirror.url(), "colour": "red"}, 422),
        ({"name": "bullseye", "kind": "apt", "url": mirror.url(), "suite": "s"}, 409),
        ({"name": "r", "kind": "rpm", "url": mirror.url(), "group": "nope"}, 404),
    ):
        response = client.post("/api/v1/repositories", json=body, headers=operator)
        assert response.status_code == status, (body, response.text)
    assert len(client.get("/api/v1/repositories", headers=viewer).json()) == 2

    # Unchanged metadata is not downloaded again; an unknown name is a 404.
    again = client.post("/api/v1/repositories/sync", json={"names": ["bullseye"]}, headers=operator)
    assert [(r["status"], r["packages"]) for r in again.json()] == [("unchanged", 3)]
    missing = client.post("/api/v1/repositories/sync", json={"names": ["nope"]}, headers=operator)
    assert missing.status_code == 404

    # A repository that cannot be fetched: 200, "failed" with the reason.
    url = closed_port_url()
    add_repository(client, operator, name="down", kind="apt", url=url, suite="x")
    response = client.post(
        "/api/v1/repositories/sync",
        json={"names": ["down", "bullseye"], "force": True},
        headers=operator,
    )
    assert response.status_code == 200, response.text
    down, bullseye = response.json()
    assert (down["name"], down["status"]) == ("down", "failed")
    assert url.removesuffix("/debian").removeprefix("http://") in down["error"]
    assert bullseye["status"] == "updated"
    assert (
        client.get("/api/v1/repositories/down", headers=viewer).json()["last_error"]
        == (down["error"])
    )

    for role in ("viewer", "auditor", "approver"):
        headers = auth(role_tokens[role])
        assert client.post("/api/v1/repositories/sync", json={}, headers=headers).status_code == 403
        assert client.delete("/api/v1/repositories/down", headers=headers).status_code == 403
    assert client.delete("/api/v1/repositories/down", headers=operator).status_code == 204
    assert client.get("/api/v1/repositories/down", headers=viewer).status_code == 404
    with transaction(factory) as session:
        actions = session.execute(
            select(AuditEvent.action).where(AuditEvent.target_type == "repository")
        ).scalars()
        assert "repository.remove" in set(actions)


# --- patches ------------------------------------------------------------------------------


def test_patches(client: TestClient, role_tokens: dict[str, str], fleet: dict[str, int]) -> None:
    viewer = auth(role_tokens["viewer"])
    # Nothing recomputed yet: asking for an asset's patches brings them up to date.
    response = client.get("/api/v1/patches", params={"asset_id": fleet["web"]}, headers=viewer)
    assert response.status_code == 200, response.text
    rows = {r["package"]: r for r in response.json()}
    assert {k: (v["installed_version"], v["target_version"]) for k, v in rows.items()} == {
        "libssl1.1": ("1.1.1n-0+deb11u1", "1.1.1n-0+deb11u4"),
        "policykit-1": ("0.105-31", "0.105-31+deb11u1"),
        "bash": ("5.1-2+deb11u1", "5.1-2+deb11u2"),
        "tzdata": ("2021a-1+deb11u8", "2024a-0+deb11u1"),
    }
    ssl = rows["libssl1.1"]
    assert (ssl["hostname"], ssl["classification"], ssl["status"]) == (
        "web-1",
        "security",
        "available",
    )
    assert "CVE-2022-2068" in ssl["closes"]
    risks = [r["risk_score"] for r in response.json()]
    assert risks == sorted(risks, reverse=True)
    assert risks[0] > 0 == risks[-1]  # security fixes close findings; bugfixes none

    def packages(**params: str | int) -> list[str]:
        response = client.get("/api/v1/patches", params=params, headers=viewer)
        assert response.status_code == 200, response.text
        return sorted(r["package"] for r in response.json())

    assert packages(asset_id=fleet["web"], classification="bugfix") == ["bash", "tzdata"]
    assert packages(group="web", package="bash") == ["bash"]
    assert packages(group=str(fleet["group"])) == sorted(rows)
    assert packages(asset_id=fleet["db"]) == []
    assert packages(status="applied") == []
    assert len(packages(limit=2, offset=1)) == 2
    for params in (
        {"classification": "critical"},
        {"status": "gone"},
        {"limit": 0},
    ):
        refused = client.get("/api/v1/patches", params=params, headers=viewer)
        assert refused.status_code == 422
    assert (
        client.get("/api/v1/patches", params={"asset_id": 999999}, headers=viewer).status_code
        == 404
    )
    assert (
        client.get("/api/v1/patches", params={"group": "nope"}, headers=viewer).status_code == 404
    )

    summary = client.get(f"/api/v1/patches/{ssl['id']}", headers=viewer).json()
    assert (summary["package"], summary["ecosystem"], summary["target_version"]) == (
        "libssl1.1",
        "deb",
        "1.1.1n-0+deb11u4",
    )
    assert [(a["hostname"], a["status"]) for a in summary["assets"]] == [("web-1", "available")]
    assert summary["closes"] == sorted(ssl["closes"])

    dossier = client.get(f"/api/v1/patches/{ssl['id']}/dossier", headers=viewer).json()
    assert {v["id"] for v in dossier["vulnerabilities"]} == set(ssl["closes"])
    assert dossier["approval"]["state"] is None
    assert dossier["test_results"] == []
    assert client.get("/api/v1/patches/999999", headers=viewer).status_code == 404
    assert client.get("/api/v1/patches/999999/dossier", headers=viewer).status_code == 404


# --- approvals ----------------------------------------------------------------------------


def act(
    client: TestClient, headers: Headers, patch_id: int, action: str, comment: str | None = None
) -> Any:
    return client.post(
        f"/api/v1/patches/{patch_id}/approval",
        json={"action": action, "comment": comment},
        headers=headers,
    )


def test_manual_approval_with_four_eyes(
    client: TestClient,
    role_tokens: dict[str, str],
    factory: sessionmaker[Session],
    fleet: dict[str, int],
) -> None:
    operator, alice = auth(role_tokens["operator"]), auth(role_tokens["approver"])
    bob = second_approver(factory)
    ids = patch_ids(client, operator, fleet["web"])
    ssl = ids["libssl1.1"]

    requested = act(client, alice, ssl, "request", "CVE-2022-2068")
    assert requested.status_code == 200, requested.text
    assert (requested.json()["state"], requested.json()["requested_by"]) == (
        "pending",
        "user:approver-user",
    )
    # An operator may request but not approve: the policy layer says so.
    refused = act(client, operator, ssl, "approve")
    assert (refused.status_code, refused.json()["error"]) == (403, "approver_required")
    # Four-eyes is on by default: the requester does not approve their own request.
    own = act(client, alice, ssl, "approve")
    assert (own.status_code, own.json()["error"]) == (403, "four_eyes_violation")
    approved = act(client, bob, ssl, "approve", "tested in staging")
    assert approved.status_code == 200, approved.text
    assert (approved.json()["state"], approved.json()["decided_by"]) == ("approved", "user:bob")
    again = act(client, bob, ssl, "approve")
    assert (again.status_code, again.json()["error"]) == (409, "transition_not_allowed")
    with transaction(factory) as session:
        approvals.ensure_deployable(session, ssl, None)

    # The operator requests another one, and the approver who did not request approves it.
    assert act(client, operator, ids["tzdata"], "request").json()["requested_by"] == (
        "user:operator-user"
    )
    assert act(client, alice, ids["tzdata"], "approve").status_code == 200

    # Four-eyes off (admins only): approving one's own request is allowed.
    viewer = auth(role_tokens["viewer"])
    assert client.get("/api/v1/policy/four-eyes", headers=viewer).json() == {"enabled": True}
    for role in ("approver", "operator", "auditor"):
        refused = client.put(
            "/api/v1/policy/four-eyes", json={"enabled": False}, headers=auth(role_tokens[role])
        )
        assert refused.status_code == 403, role
    off = client.put(
        "/api/v1/policy/four-eyes", json={"enabled": False}, headers=auth(role_tokens["admin"])
    )
    assert off.json() == {"enabled": False}
    assert act(client, alice, ids["bash"], "request").status_code == 200
    assert act(client, alice, ids["bash"], "approve").status_code == 200

    listed = client.get("/api/v1/approvals", params={"state": "approved"}, headers=viewer).json()
    assert sorted(a["package"] for a in listed) == ["bash", "libssl1.1", "tzdata"]
    assert client.get("/api/v1/approvals", params={"state": "pending"}, headers=viewer).json() == []
    assert client.get("/api/v1/approvals", params={"state": "x"}, headers=viewer).status_code == 422
    assert act(client, alice, 999999, "request").status_code == 404
    assert act(client, alice, ssl, "deploy").status_code == 422


def test_declined_patch_cannot_be_deployed(
    client: TestClient,
    role_tokens: dict[str, str],
    factory: sessionmaker[Session],
    fleet: dict[str, int],
) -> None:
    approver = auth(role_tokens["approver"])
    bash = patch_ids(client, approver, fleet["web"])["bash"]
    silent = act(client, approver, bash, "decline")
    assert (silent.status_code, silent.json()["error"]) == (422, "comment_required")
    declined = act(client, approver, bash, "decline", "breaks our login scripts")
    assert declined.json()["state"] == "declined"
    with (
        transaction(factory) as session,
        pytest.raises(NotDeployable, match="login scripts"),
    ):
        approvals.ensure_deployable(session, bash, fleet["group"])
    dossier = client.get(f"/api/v1/patches/{bash}/dossier", headers=approver).json()
    assert dossier["approval"]["comment"] == "breaks our login scripts"
    # Lifting is an approver's decision, so an operator cannot.
    lifted = act(client, auth(role_tokens["operator"]), bash, "lift", "fixed")
    assert (lifted.status_code, lifted.json()["error"]) == (403, "approver_required")


# --- rules --------------------------------------------------------------------------------


def test_auto_approval_rules(
    client: TestClient,
    role_tokens: dict[str, str],
    factory: sessionmaker[Session],
    fleet: dict[str, int],
) -> None:
    approver, viewer = auth(role_tokens["approver"]), auth(role_tokens["viewer"])
    ids = patch_ids(client, viewer, fleet["web"])
    url = "/api/v1/groups/web/rules"
    rule = {"name": "security", "classifications": ["security"], "exclude": ["policykit-*"]}
    for role in ("operator", "viewer", "auditor"):
        assert client.post(url, json=rule, headers=auth(role_tokens[role])).status_code == 403
    response = client.post(url, json=rule, headers=approver)
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["group"], created["position"], created["exclude"], created["timezone"]) == (
        "web",
        1,
        ["policykit-*"],
        "UTC",
    )
    assert created["created_by"] == "user:approver-user"
    with transaction(factory) as session:
        assert approvals.deployable_state(session, ids["libssl1.1"], fleet["group"]) == "approved"
        assert approvals.deployable_state(session, ids["policykit-1"], fleet["group"]) is None
    dossier = client.get(f"/api/v1/patches/{ids['libssl1.1']}/dossier", headers=viewer).json()
    [decision] = dossier["approval"]["rule_decisions"]
    assert (decision["group"], decision["rule"], decision["outcome"]) == (
        "web",
        "security",
        "approve",
    )

    # Refused rules store nothing.
    for body, status, code in (
        ({"name": "bad", "include": ["^lib.*$"]}, 422, "invalid_pattern"),
        ({"name": "bad", "classifications": ["urgent"]}, 422, "invalid_policy"),
        ({"name": "bad", "timezone": "Mars/Olympus"}, 422, "invalid_policy"),
        ({"name": "x" * 101}, 422, "invalid_policy"),
        ({"name": "bad", "colour": "red"}, 422, "invalid_input"),
        ({"name": "security"}, 409, "conflict"),
    ):
        refused = client.post(url, json=body, headers=approver)
        assert (refused.status_code, refused.json()["error"]) == (status, code), body
    assert count(factory, ApprovalRuleRow) == 1
    assert client.post("/api/v1/groups/nope/rules", json=rule, headers=approver).status_code == 404

    listed = client.get(url, headers=viewer).json()
    assert [r["name"] for r in listed] == ["security"]
    assert client.get(f"/api/v1/groups/{fleet['group']}/rules", headers=viewer).json() == listed
    for role in ("operator", "auditor"):
        gone = client.delete(f"/api/v1/rules/{created['id']}", headers=auth(role_tokens[role]))
        assert gone.status_code == 403
    assert client.delete(f"/api/v1/rules/{created['id']}", headers=approver).status_code == 204
    assert client.delete(f"/api/v1/rules/{created['id']}", headers=approver).status_code == 404
    with transaction(factory) as session:
        assert approvals.deployable_state(session, ids["libssl1.1"], fleet["group"]) is None


# --- exceptions ---------------------------------------------------------------------------


def test_exceptions_and_compliance(
    client: TestClient,
    role_tokens: dict[str, str],
    factory: sessionmaker[Session],
    fleet: dict[str, int],
) -> None:
    approver, viewer = auth(role_tokens["approver"]), auth(role_tokens["viewer"])
    policykit = patch_ids(client, viewer, fleet["web"])["policykit-1"]
    client.get("/api/v1/findings", params={"asset_id": fleet["db"]}, headers=viewer)
    before = client.get("/api/v1/compliance", headers=viewer).json()
    expires = datetime.now(UTC) + timedelta(days=30)
    body = {
        "scope": "patch",
        "target_id": policykit,
        "justification": "pkexec is removed by our hardening role",
        "expires_at": expires.isoformat(),
    }

    # Refused exceptions store nothing and except nothing.
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    for bad, status in (
        ({k: v for k, v in body.items() if k != "justification"}, 422),
        (body | {"justification": "   "}, 422),
        (body | {"justification": "because"}, 422),
        (body | {"expires_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()}, 422),
        (body | {"expires_at": (datetime.now(UTC) + timedelta(days=400)).isoformat()}, 422),
        (body | {"expires_at": "2030-01-01T00:00:00"}, 422),
        (body | {"scope": "host"}, 422),
        (body | {"scope": "finding", "target_id": 999999, "expires_at": future}, 404),
    ):
        refused = client.post("/api/v1/exceptions", json=bad, headers=approver)
        assert refused.status_code == status, (bad, refused.text)
    for role in ("operator", "viewer", "auditor"):
        refused = client.post("/api/v1/exceptions", json=body, headers=auth(role_tokens[role]))
        assert refused.status_code == 403, role
    assert count(factory, RiskAcceptanceRow) == 0
    assert client.get("/api/v1/compliance", headers=viewer).json() == before

    response = client.post("/api/v1/exceptions", json=body, headers=approver)
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["state"], created["approved_by"], created["scope"]) == (
        "active",
        "user:approver-user",
        "patch",
    )
    after = client.get("/api/v1/compliance", headers=auth(role_tokens["auditor"])).json()
    assert after["excepted_findings"] == before["excepted_findings"] + 1
    assert after["open_findings"] == before["open_findings"] - 1
    assert after["active_exceptions"] == 1
    listed = client.get("/api/v1/exceptions", params={"state": "active"}, headers=viewer).json()
    assert [e["id"] for e in listed] == [created["id"]]
    assert (
        client.get("/api/v1/exceptions", params={"state": "revoked"}, headers=viewer).json() == []
    )

    revoke = f"/api/v1/exceptions/{created['id']}/revoke"
    assert client.post(revoke, json={}, headers=auth(role_tokens["operator"])).status_code == 403
    revoked = client.post(revoke, json={"reason": "hardening rolled back"}, headers=approver)
    assert revoked.status_code == 200, revoked.text
    assert (revoked.json()["state"], revoked.json()["revoked_by"]) == (
        "revoked",
        "user:approver-user",
    )
    assert client.post(revoke, headers=approver).status_code == 409
    assert client.post("/api/v1/exceptions/999999/revoke", headers=approver).status_code == 404
    assert (
        client.get("/api/v1/compliance", headers=viewer).json()["excepted_findings"]
        == (before["excepted_findings"])
    )


# --- baselines ----------------------------------------------------------------------------


def test_baselines_drift_and_sprawl(
    client: TestClient,
    role_tokens: dict[str, str],
    factory: sessionmaker[Session],
    fleet: dict[str, int],
) -> None:
    operator, viewer = auth(role_tokens["operator"]), auth(role_tokens["viewer"])
    with transaction(factory) as session:
        groups.create_static(session, "test", "servers", [fleet["web"], fleet["db"]])
    url = "/api/v1/groups/servers/baselines"
    assert client.get("/api/v1/groups/servers/drift", headers=viewer).status_code == 409
    entry = {"package": "libssl1.1", "version": "1.1.1n-0+deb11u4", "mode": "minimum"}
    for role in ("approver", "viewer", "auditor"):
        assert client.put(url, json=entry, headers=auth(role_tokens[role])).status_code == 403
    response = client.put(url, json=entry, headers=operator)
    assert response.status_code == 200, response.text
    ssl = response.json()
    assert (ssl["group"], ssl["mode"], ssl["os_release"]) == ("servers", "minimum", None)
    desired = {"package": "bash", "version": "5.1-2+deb11u2", "mode": "desired"}
    client.put(url, json=desired | {"os_release": "debian:11"}, headers=operator)
    # Setting the same package and release again replaces the entry.
    replaced = client.put(url, json=entry | {"version": "1.1.1n-0+deb11u3"}, headers=operator)
    assert replaced.json()["id"] == ssl["id"]
    client.put(url, json=entry, headers=operator)
    for bad in (
        entry | {"mode": "exact"},
        entry | {"version": "1 2"},
        entry | {"os_release": "plan9:4"},
        entry | {"os_release": "debian:" + "1" * 80},
    ):
        assert client.put(url, json=bad, headers=operator).status_code == 422, bad
    assert count(factory, Baseline) == 2

    listed = client.get(url, headers=viewer).json()
    assert sorted(e["package"] for e in listed) == ["bash", "libssl1.1"]
    drift = client.get("/api/v1/groups/servers/drift", headers=viewer).json()
    assert {(d["hostname"], d["package"]): d["status"] for d in drift} == {
        ("web-1", "bash"): "differs",
        ("web-1", "libssl1.1"): "below_minimum",
    }
    everything = client.get(
        "/api/v1/groups/servers/drift", params={"include_ok": True}, headers=viewer
    ).json()
    assert len(everything) == 4

    sprawl = client.get("/api/v1/sprawl", params={"group": "servers"}, headers=viewer).json()
    top = {s["package"]: s for s in sprawl}
    assert (top["libssl1.1"]["versions"], top["libssl1.1"]["assets"]) == (2, 2)
    one = client.get(
        "/api/v1/sprawl", params={"package": "bash", "limit": 1}, headers=viewer
    ).json()
    assert [(s["package"], len(s["by_version"])) for s in one] == [("bash", 2)]

    assert client.delete(f"/api/v1/baselines/{ssl['id']}", headers=viewer).status_code == 403
    assert client.delete(f"/api/v1/baselines/{ssl['id']}", headers=operator).status_code == 204
    assert client.delete(f"/api/v1/baselines/{ssl['id']}", headers=operator).status_code == 404
    assert [e["package"] for e in client.get(url, headers=viewer).json()] == ["bash"]


# --- who may do what --------------------------------------------------------------------


def test_auditor_reads_everything_and_changes_nothing(
    client: TestClient,
    role_tokens: dict[str, str],
    factory: sessionmaker[Session],
    fleet: dict[str, int],
) -> None:
    admin, auditor = auth(role_tokens["admin"]), auth(role_tokens["auditor"])
    pid = patch_ids(client, admin, fleet["web"])["libssl1.1"]
    assert act(client, admin, pid, "request").status_code == 200
    rule = client.post("/api/v1/groups/web/rules", json={"name": "all"}, headers=admin).json()
    baseline = client.put(
        "/api/v1/groups/web/baselines",
        json={"package": "bash", "version": "5.1-2+deb11u2"},
        headers=admin,
    ).json()
    expires = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    exception = client.post(
        "/api/v1/exceptions",
        json={
            "scope": "asset",
            "target_id": fleet["db"],
            "justification": "decommissioned next week",
            "expires_at": expires,
        },
        headers=admin,
    ).json()
    for path in (
        "/repositories",
        "/repositories/bullseye",
        f"/patches?asset_id={fleet['web']}",
        f"/patches/{pid}",
        f"/patches/{pid}/dossier",
        "/approvals",
        "/policy/four-eyes",
        "/groups/web/rules",
        "/exceptions",
        "/compliance",
        "/groups/web/baselines",
        "/groups/web/drift",
        "/sprawl",
    ):
        response = client.get(f"/api/v1{path}", headers=auditor)
        assert response.status_code == 200, (path, response.text)
    with transaction(factory) as session:
        events = session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
        packages = session.execute(select(func.count()).select_from(RepositoryPackage)).scalar_one()
    for method, path, body in (
        ("POST", "/repositories", {"name": "x", "kind": "apk", "url": "http://x/"}),
        ("POST", "/repositories/sync", {}),
        ("DELETE", "/repositories/bullseye", None),
        ("POST", f"/patches/{pid}/approval", {"action": "decline", "comment": "no"}),
        ("PUT", "/policy/four-eyes", {"enabled": False}),
        ("POST", "/groups/web/rules", {"name": "more"}),
        ("DELETE", f"/rules/{rule['id']}", None),
        (
            "POST",
            "/exceptions",
            {
                "scope": "asset",
                "target_id": fleet["web"],
                "justification": "the auditor should not",
                "expires_at": expires,
            },
        ),
        ("POST", f"/exceptions/{exception['id']}/revoke", {}),
        ("PUT", "/groups/web/baselines", {"package": "bash", "version": "1"}),
        ("DELETE", f"/baselines/{baseline['id']}", None),
    ):
        response = client.request(method, f"/api/v1{path}", json=body, headers=auditor)
        assert (response.status_code, response.json()["error"]) == (403, "permission_denied"), (
            method,
            path,
        )
    with transaction(factory) as session:
        assert session.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == events
        assert (
            session.execute(select(func.count()).select_from(RepositoryPackage)).scalar_one()
            == packages
        )
