"""Findings, vulnerabilities, feed imports and the risk policy through the
HTTP API (the real ASGI app over SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.services import feeds, findings, users
from patchwarden.storage.db import make_session_factory, transaction
from tests.api.conftest import PASSWORD, auth, build_app
from tests.services.test_feeds import DSA_TEXT, KEV_PWNKIT, kev_catalogue, osv_record
from tests.services.test_findings import (
    DEBIAN_PACKAGES,
    DSA_WRITTEN,
    KEV_RISK,
    OPENSSL_CVES,
    PLAIN_RISK,
    deb,
    libssl,
    new_asset,
)


@pytest.fixture(autouse=True)
def fresh_index_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process-wide index cache knows only the feed generation, not which
    database it was built from: each test gets its own (a real IndexCache)."""
    monkeypatch.setattr(findings, "INDEX_CACHE", findings.IndexCache())


@pytest.fixture
def fleet(factory: sessionmaker[Session], tmp_path: Path) -> dict[str, int]:
    """Advisories and KEV imported, two Debian 11 assets; nothing recomputed yet."""
    for name, text in (
        ("DSA_list.txt", DSA_TEXT),
        ("DSA_written.txt", DSA_WRITTEN),
        ("kev.json", json.dumps(kev_catalogue(KEV_PWNKIT))),
    ):
        (tmp_path / name).write_text(text)
        feeds.import_feed(factory, tmp_path / name, None, "test")
    return {
        "web": new_asset(factory, "deb-web", DEBIAN_PACKAGES),
        "db": new_asset(factory, "deb-db", [libssl("1.1.1n-0+deb11u4"), deb("bash", "5.1-2")]),
    }


def test_finding_queries(
    client: TestClient, role_tokens: dict[str, str], fleet: dict[str, int]
) -> None:
    viewer = auth(role_tokens["viewer"])
    # Nothing recomputed yet: asking for one asset's findings recomputes it first.
    response = client.get("/api/v1/findings", params={"asset_id": fleet["web"]}, headers=viewer)
    assert response.status_code == 200, response.text
    rows = response.json()
    assert len(rows) == 8
    first = rows[0]
    assert (first["hostname"], first["package"], first["vulnerability_id"]) == (
        "deb-web",
        "policykit-1",
        "CVE-2021-4034",
    )
    assert (first["kev"], first["risk"], first["fixed_version"]) == (
        True,
        KEV_RISK,
        "0.105-31+deb11u1",
    )
    assert first["advisory_ids"] == ["DSA-5059-1"]
    assert (first["status"], first["platform"], first["ecosystem"]) == ("open", "debian:11", "deb")
    assert first["sla_rule"].startswith("KEV due date 2022-07-18 passed before first seen")
    assert first["sla_status"] == "ok"  # 14 days left; only the last 3 are "due soon"
    assert {r["risk"] for r in rows[1:]} == {PLAIN_RISK}
    unfixed = next(r for r in rows if r["package"] == "sudo")
    assert unfixed["fixed_version"] is None and unfixed["sla_status"] == "ok"

    assert (
        client.get("/api/v1/findings", params={"asset_id": 999999}, headers=viewer).status_code
        == 404
    )

    findings_of_db = client.get(
        "/api/v1/findings", params={"asset_id": fleet["db"]}, headers=viewer
    )
    assert findings_of_db.status_code == 200

    def get(**params: str | int | float) -> list[tuple[str, str, str]]:
        response = client.get("/api/v1/findings", params=params, headers=viewer)
        assert response.status_code == 200, response.text
        return [(r["hostname"], r["package"], r["vulnerability_id"]) for r in response.json()]

    # "Which assets have CVE-2022-2068?"
    assert get(vulnerability_id="CVE-2022-2068") == [
        ("deb-web", "libssl1.1", "CVE-2022-2068"),
        ("deb-db", "libssl1.1", "CVE-2022-2068"),
    ]
    assert get(vulnerability_id="CVE-2021-4034") == [("deb-web", "policykit-1", "CVE-2021-4034")]
    assert get(vulnerability_id="CVE-1999-0001") == []
    # A binary package, or the source package it was built from.
    by_source = get(package="openssl")
    assert by_source == get(package="libssl1.1")
    assert sorted(by_source) == sorted(
        [("deb-web", "libssl1.1", cve) for cve in ("CVE-2022-2068", *OPENSSL_CVES)]
        + [("deb-db", "libssl1.1", "CVE-2022-2068")]
    )
    assert get(min_risk=20) == [("deb-web", "policykit-1", "CVE-2021-4034")]
    assert get(status="fixed") == []
    assert len(get(status="all")) == 9
    assert len(get(limit=2, offset=1)) == 2
    for params in ({"status": "closed"}, {"min_risk": 101}, {"limit": 0}):
        response = client.get("/api/v1/findings", params=params, headers=viewer)
        assert response.status_code == 422
        assert response.json()["error"] == "invalid_input"

    response = client.get(
        "/api/v1/findings/top", params={"limit": 3}, headers=auth(role_tokens["auditor"])
    )
    assert response.status_code == 200, response.text
    top = response.json()
    assert len(top) == 3
    assert top[0]["vulnerability_id"] == "CVE-2021-4034"
    assert [r["risk"] for r in top] == sorted((r["risk"] for r in top), reverse=True)
    assert client.get("/api/v1/findings/top").status_code == 401

    response = client.get("/api/v1/vulnerabilities/CVE-2021-4034", headers=viewer)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["kev"], body["kev_due_date"], body["affected_assets"]) == (
        "CVE-2021-4034",
        True,
        "2022-07-18",
        1,
    )
    assert [a["id"] for a in body["advisories"]] == ["DSA-5059-1"]
    assert body["advisories"][0]["source"] == "debian-tracker"

    two = client.get("/api/v1/vulnerabilities/CVE-2022-2068", headers=viewer).json()
    assert [a["id"] for a in two["advisories"]] == ["DSA-5169-1", "DSA-9002-1"]
    assert two["affected_assets"] == 2

    missing = client.get("/api/v1/vulnerabilities/CVE-1999-0001", headers=viewer)
    assert missing.status_code == 404
    assert missing.json() == {
        "error": "not_found",
        "message": "vulnerability CVE-1999-0001 is not in the advisory database",
    }


def test_feed_import_upload(
    client: TestClient, role_tokens: dict[str, str], factory: sessionmaker[Session]
) -> None:
    asset_id = new_asset(factory, "deb-web", DEBIAN_PACKAGES)
    viewer = auth(role_tokens["viewer"])
    assert (
        client.get("/api/v1/findings", params={"asset_id": asset_id}, headers=viewer).json() == []
    )
    operator = auth(role_tokens["operator"])
    response = client.post(
        "/api/v1/feeds/import",
        params={"filename": "DSA_list.txt"},
        content=DSA_TEXT.encode(),
        headers=operator,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["created"], body["updated"], body["unchanged"], body["rejected"]) == (3, 0, 0, 0)
    assert body["actor"] == "user:operator-user"
    assert body["path"].endswith("/DSA_list.txt")
    assert body["finished_at"] is not None
    # The asset holding openssl and policykit-1 is stale now: read, it is recomputed.
    rows = client.get("/api/v1/findings", params={"asset_id": asset_id}, headers=viewer).json()
    assert len(rows) == 7

    again = client.post(
        "/api/v1/feeds/import",
        params={"filename": "DSA_list.txt", "format": "debian-tracker"},
        content=DSA_TEXT.encode(),
        headers=operator,
    ).json()
    assert (again["created"], again["unchanged"], again["format"]) == (0, 3, "debian-tracker")

    # A broken record is counted and explained; nothing of it is stored.
    broken = client.post(
        "/api/v1/feeds/import",
        params={"filename": "osv.json"},
        content=json.dumps(osv_record(ecosystem="Maven", name="org.demo:lib")).encode(),
        headers=auth(role_tokens["admin"]),
    ).json()
    assert (broken["created"], broken["rejected"]) == (0, 1)
    assert "unsupported ecosystem 'Maven'" in broken["rejections"][0]["reason"]

    for role, status in (("viewer", 403), ("auditor", 403), ("approver", 403)):
        refused = client.post(
            "/api/v1/feeds/import", content=DSA_TEXT.encode(), headers=auth(role_tokens[role])
        )
        assert refused.status_code == status, role
    assert client.post("/api/v1/feeds/import", content=DSA_TEXT.encode()).status_code == 401
    unknown = client.post(
        "/api/v1/feeds/import",
        params={"format": "debian"},
        content=DSA_TEXT.encode(),
        headers=operator,
    )
    assert unknown.status_code == 422
    assert "valid formats: alpine-secdb" in unknown.json()["message"]
    bad_name = client.post(
        "/api/v1/feeds/import",
        params={"filename": "../etc/passwd"},
        content=DSA_TEXT.encode(),
        headers=operator,
    )
    assert bad_name.status_code == 422

    history = client.get("/api/v1/feeds/imports", headers=viewer)
    assert history.status_code == 200
    finished = [h for h in history.json() if h["finished_at"] is not None]
    assert [(h["created"], h["unchanged"], h["rejected"]) for h in finished] == [
        (0, 0, 1),
        (0, 3, 0),
        (3, 0, 0),
    ]
    assert finished[0]["actor"] == "user:admin-user"


def test_feed_import_refuses_a_directory_name(sqlite_engine: Engine, tmp_path: Path) -> None:
    with transaction(make_session_factory(sqlite_engine)) as session:
        user = users.create_user(session, "test", "ops", PASSWORD, "operator")
        token, _ = users.create_token(session, "test", user.id, "test")
    with TestClient(build_app(sqlite_engine, tmp_path), raise_server_exceptions=False) as client:
        response = client.post(
            "/api/v1/feeds/import",
            params={"filename": ".."},
            content=DSA_TEXT.encode(),
            headers=auth(token),
        )
    assert response.status_code == 422


def test_risk_weights_policy(
    client: TestClient,
    role_tokens: dict[str, str],
    fleet: dict[str, int],
    factory: sessionmaker[Session],
) -> None:
    findings.recompute_dirty(factory)
    admin = auth(role_tokens["admin"])
    default = client.get("/api/v1/policy/risk-weights", headers=auth(role_tokens["viewer"]))
    assert default.status_code == 200
    assert (default.json()["cvss"], default.json()["kev"], default.json()["epss"]) == (
        6.0,
        25.0,
        20.0,
    )

    for body in ({"kev": 10}, {"cvss": -1}, {"speed": 3}, {"criticality": [0.5, 1.0, 1.0, 1.0]}):
        refused = client.put("/api/v1/policy/risk-weights", json=body, headers=admin)
        assert refused.status_code == 422, body
        assert refused.json()["error"] == "invalid_input"
    assert client.get("/api/v1/policy/risk-weights", headers=admin).json() == default.json()
    for role in ("operator", "viewer", "approver", "auditor"):
        forbidden = client.put(
            "/api/v1/policy/risk-weights", json={"cvss": 3.0}, headers=auth(role_tokens[role])
        )
        assert forbidden.status_code == 403, role

    changed = client.put("/api/v1/policy/risk-weights", json={"cvss": 3.0}, headers=admin)
    assert changed.status_code == 200, changed.text
    assert changed.json() == default.json() | {"cvss": 3.0}
    assert client.get("/api/v1/policy/risk-weights", headers=admin).json()["cvss"] == 3.0
    # Every finding is re-scored with the new weights.
    rows = client.get("/api/v1/findings", params={"asset_id": fleet["web"]}, headers=admin).json()
    sudo = next(r for r in rows if r["package"] == "sudo")
    assert sudo["risk"] == round(5.5 * 3 * 0.8 * 0.8 * 0.8, 1)


def test_sla_policy_per_group(
    client: TestClient,
    role_tokens: dict[str, str],
    fleet: dict[str, int],
    factory: sessionmaker[Session],
) -> None:
    admin = auth(role_tokens["admin"])
    created = client.post(
        "/api/v1/groups",
        json={"name": "pci", "asset_ids": [fleet["web"]]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    policy = {"critical": 5, "high": 10, "medium": 20, "low": 40}
    response = client.put("/api/v1/policy/sla", params={"group": "pci"}, json=policy, headers=admin)
    assert response.status_code == 200, response.text
    assert (
        client.get("/api/v1/policy/sla", params={"group": "pci"}, headers=admin).json()["medium"]
        == 20
    )
    assert client.get("/api/v1/policy/sla", headers=admin).json()["medium"] == 90
    bad = client.put("/api/v1/policy/sla", json={"critical": 30, "high": 10}, headers=admin)
    assert bad.status_code == 422
    assert (
        client.put(
            "/api/v1/policy/sla", json=policy, headers=auth(role_tokens["operator"])
        ).status_code
        == 403
    )
    rows = client.get("/api/v1/findings", params={"asset_id": fleet["web"]}, headers=admin).json()
    sudo = next(r for r in rows if r["package"] == "sudo")
    assert sudo["sla_rule"].startswith("no severity, treated as medium: 20 days after first seen")
