"""The agent protocol over HTTP: enrolment, full and delta reports, and every
kind of bad input refused with a clear 4xx that stores nothing."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.storage.db import transaction
from patchwarden.storage.tables import Asset, InstalledPackage, InventoryReport, PackageEvent
from tests.api.conftest import auth, new_enrollment_token

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC).isoformat()


def pkg(name: str, version: str, arch: str = "amd64", source: str | None = None) -> dict[str, Any]:
    return {
        "ecosystem": "deb",
        "name": name,
        "version": version,
        "arch": arch,
        "source_name": source or name,
        "source_version": version,
        "status": "installed",
    }


BASE_PACKAGES = [
    pkg("openssl", "3.0.11-1~deb12u2"),
    pkg("libssl3", "3.0.11-1~deb12u2", source="openssl"),
    pkg("bash", "5.2.15-2+b2"),
    pkg("tzdata", "2024a-0+deb12u1", "all"),
]
FACTS = {
    "hostname": "web-01",
    "os": {"id": "debian", "version_id": "12", "pretty_name": "Debian GNU/Linux 12 (bookworm)"},
    "kernel": "6.1.0-18-amd64",
    "arch": "x86_64",
    "ip_addresses": ["10.0.0.5"],
    "reboot_required": False,
}


def enroll(
    client: TestClient, factory: sessionmaker[Session], hostname: str = "web-01"
) -> dict[str, Any]:
    token = new_enrollment_token(factory)
    response = client.post(
        "/api/v1/agent/enroll",
        json={
            "protocol": 1,
            "token": token,
            "hostname": hostname,
            "machine_id": "abc123",
            "agent_version": "0.1.0",
        },
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def full(asset_id: int, seq: int, packages: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "protocol": 1,
        "asset_id": asset_id,
        "seq": seq,
        "kind": "full",
        "base_seq": None,
        "agent_version": "0.1.0",
        "collected_at": NOW,
        "facts": FACTS,
        "collector_notes": [
            {"collector": "rpm", "status": "skipped", "message": "rpm not installed"}
        ],
        "packages": BASE_PACKAGES if packages is None else packages,
    }


def delta(
    asset_id: int, seq: int, base: int, added: list[dict[str, Any]], removed: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "protocol": 1,
        "asset_id": asset_id,
        "seq": seq,
        "kind": "delta",
        "base_seq": base,
        "agent_version": "0.1.0",
        "collected_at": NOW,
        "facts": FACTS,
        "added": added,
        "removed": removed,
    }


def counts(factory: sessionmaker[Session]) -> tuple[int, int, int, int]:
    with transaction(factory) as session:
        return (
            session.execute(select(func.count()).select_from(Asset)).scalar_one(),
            session.execute(select(func.count()).select_from(InstalledPackage)).scalar_one(),
            session.execute(select(func.count()).select_from(InventoryReport)).scalar_one(),
            session.execute(select(func.count()).select_from(PackageEvent)).scalar_one(),
        )


def test_full_then_delta_then_history(
    client: TestClient, factory: sessionmaker[Session], role_tokens: dict[str, str]
) -> None:
    agent = enroll(client, factory)
    cred = auth(agent["credential"])
    first = client.post("/api/v1/agent/report", json=full(agent["asset_id"], 1), headers=cred)
    assert first.status_code == 200, first.text
    assert first.json()["ack_seq"] == 1
    assert first.json()["added"] == 4

    upgraded = [
        pkg("openssl", "3.0.13-1~deb12u1"),
        pkg("libssl3", "3.0.13-1~deb12u1", source="openssl"),
    ]
    removed = [BASE_PACKAGES[0], BASE_PACKAGES[1], BASE_PACKAGES[3]]
    added = [*upgraded, pkg("curl", "7.88.1-10+deb12u5")]
    second = client.post(
        "/api/v1/agent/report", json=delta(agent["asset_id"], 2, 1, added, removed), headers=cred
    )
    assert second.status_code == 200, second.text
    assert second.json() | {"report_interval": 0} == {
        "status": "accepted",
        "ack_seq": 2,
        "asset_id": agent["asset_id"],
        "report_interval": 0,
        "added": 1,
        "removed": 1,
        "changed": 2,
    }

    viewer = auth(role_tokens["viewer"])
    packages = client.get(f"/api/v1/assets/{agent['asset_id']}/packages", headers=viewer).json()
    assert sorted((p["name"], p["version"]) for p in packages) == [
        ("bash", "5.2.15-2+b2"),
        ("curl", "7.88.1-10+deb12u5"),
        ("libssl3", "3.0.13-1~deb12u1"),
        ("openssl", "3.0.13-1~deb12u1"),
    ]

    # The first inventory is the baseline: only later changes are events.
    events = client.get(f"/api/v1/assets/{agent['asset_id']}/package-events", headers=viewer).json()
    assert sorted((e["action"], e["name"], e["old_version"], e["new_version"]) for e in events) == [
        ("changed", "libssl3", "3.0.11-1~deb12u2", "3.0.13-1~deb12u1"),
        ("changed", "openssl", "3.0.11-1~deb12u2", "3.0.13-1~deb12u1"),
        ("installed", "curl", None, "7.88.1-10+deb12u5"),
        ("removed", "tzdata", "2024a-0+deb12u1", None),
    ]

    # Point-in-time: just before the delta, the asset had the original packages.
    moment = events[0]["at"]
    before = datetime.fromisoformat(moment) - timedelta(microseconds=1)
    old = client.get(
        f"/api/v1/assets/{agent['asset_id']}/packages",
        params={"at": before.isoformat()},
        headers=viewer,
    ).json()
    assert sorted((p["name"], p["version"]) for p in old) == sorted(
        (p["name"], p["version"]) for p in BASE_PACKAGES
    )

    asset = client.get(f"/api/v1/assets/{agent['asset_id']}", headers=viewer).json()
    assert asset["hostname"] == "web-01"
    assert asset["os_id"] == "debian" and asset["os_version_id"] == "12"
    assert asset["kernel"] == "6.1.0-18-amd64"
    assert asset["package_count"] == 4
    assert asset["ip_addresses"] == ["10.0.0.5"]
    assert asset["collector_notes"][0]["status"] == "skipped"


def test_gap_asks_for_full_report(client: TestClient, factory: sessionmaker[Session]) -> None:
    agent = enroll(client, factory)
    cred = auth(agent["credential"])
    assert (
        client.post(
            "/api/v1/agent/report", json=full(agent["asset_id"], 1), headers=cred
        ).status_code
        == 200
    )
    # The agent missed the ack of report 2 (server has it); its next delta is based on 1.
    assert (
        client.post(
            "/api/v1/agent/report",
            json=delta(agent["asset_id"], 2, 1, [pkg("vim", "2:9.0.1378-2")], []),
            headers=cred,
        ).status_code
        == 200
    )
    before = counts(factory)
    gap = client.post(
        "/api/v1/agent/report", json=delta(agent["asset_id"], 3, 1, [], []), headers=cred
    )
    assert gap.status_code == 409
    assert gap.json()["error"] == "full_report_required"
    assert counts(factory) == before
    again = client.post("/api/v1/agent/report", json=full(agent["asset_id"], 4), headers=cred)
    assert again.status_code == 200
    assert again.json()["removed"] == 1  # vim is gone in the full report


def test_replayed_report_is_refused(client: TestClient, factory: sessionmaker[Session]) -> None:
    agent = enroll(client, factory)
    cred = auth(agent["credential"])
    report = full(agent["asset_id"], 5)
    assert client.post("/api/v1/agent/report", json=report, headers=cred).status_code == 200
    before = counts(factory)
    replay = client.post("/api/v1/agent/report", json=report, headers=cred)
    assert replay.status_code == 409
    assert "replayed" in replay.json()["message"]
    assert counts(factory) == before


def test_report_for_another_agents_asset(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    one = enroll(client, factory, "one")
    two = enroll(client, factory, "two")
    before = counts(factory)
    response = client.post(
        "/api/v1/agent/report", json=full(two["asset_id"], 1), headers=auth(one["credential"])
    )
    assert response.status_code == 403
    assert f"asset {one['asset_id']}" in response.json()["message"]
    assert counts(factory) == before


def test_enrolment_token_is_one_time_and_expires(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    token = new_enrollment_token(factory)
    body = {"protocol": 1, "token": token, "hostname": "h1", "agent_version": "0.1.0"}
    assert client.post("/api/v1/agent/enroll", json=body).status_code == 201
    reused = client.post("/api/v1/agent/enroll", json=body | {"hostname": "h2"})
    assert reused.status_code == 401
    assert "already been used" in reused.json()["message"]

    expired = new_enrollment_token(factory, ttl=timedelta(seconds=1))
    with transaction(factory) as session:
        from patchwarden.storage.tables import EnrollmentToken

        for row in session.execute(select(EnrollmentToken)).scalars():
            if row.used_at is None:
                row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    before = counts(factory)
    response = client.post("/api/v1/agent/enroll", json=body | {"token": expired})
    assert response.status_code == 401
    assert "expired" in response.json()["message"]
    unknown = client.post("/api/v1/agent/enroll", json=body | {"token": "pwe_notatoken"})
    assert unknown.status_code == 401
    assert counts(factory) == before


def test_revoked_agent_is_refused(
    client: TestClient, factory: sessionmaker[Session], role_tokens: dict[str, str]
) -> None:
    agent = enroll(client, factory)
    response = client.post(
        f"/api/v1/agents/{agent['agent_id']}/revoke", headers=auth(role_tokens["operator"])
    )
    assert response.status_code == 204
    before = counts(factory)
    refused = client.post(
        "/api/v1/agent/report", json=full(agent["asset_id"], 1), headers=auth(agent["credential"])
    )
    assert refused.status_code == 403
    assert "revoked" in refused.json()["message"]
    unknown = client.post(
        "/api/v1/agent/report", json=full(agent["asset_id"], 1), headers=auth("pwa_forged")
    )
    assert unknown.status_code == 401
    missing = client.post("/api/v1/agent/report", json=full(agent["asset_id"], 1))
    assert missing.status_code == 401
    assert counts(factory) == before


def _bad_reports(asset_id: int) -> list[tuple[str, Any]]:
    good = full(asset_id, 1)
    cases: list[tuple[str, Any]] = []

    def mutate(label: str, change: Any) -> None:
        report = copy.deepcopy(good)
        change(report)
        cases.append((label, report))

    mutate("seq as string", lambda r: r.__setitem__("seq", "one"))
    mutate("unknown protocol", lambda r: r.__setitem__("protocol", 2))
    mutate("shell in name", lambda r: r["packages"].append(pkg("evil;rm -rf /", "1.0")))
    mutate("space in version", lambda r: r["packages"].append(pkg("ok", "1.0 2")))
    mutate(
        "unknown ecosystem", lambda r: r["packages"].append(pkg("x", "1") | {"ecosystem": "exe"})
    )
    mutate("packages not a list", lambda r: r.__setitem__("packages", {"a": 1}))
    mutate("unknown field", lambda r: r.__setitem__("surprise", True))
    mutate("bad ip", lambda r: r["facts"].__setitem__("ip_addresses", ["999.1.1.1"]))
    mutate("delta fields in full", lambda r: r.__setitem__("added", [pkg("a", "1")]))
    mutate("duplicate package", lambda r: r["packages"].append(BASE_PACKAGES[0]))
    mutate("negative seq", lambda r: r.__setitem__("seq", -1))
    cases.append(("not json", b"{not json"))
    cases.append(("truncated", json.dumps(good).encode()[:200]))
    return cases


def test_bad_reports_change_nothing(client: TestClient, factory: sessionmaker[Session]) -> None:
    agent = enroll(client, factory)
    cred = auth(agent["credential"]) | {"Content-Type": "application/json"}
    before = counts(factory)
    for label, report in _bad_reports(agent["asset_id"]):
        body = report if isinstance(report, bytes) else json.dumps(report).encode()
        response = client.post("/api/v1/agent/report", content=body, headers=cred)
        assert response.status_code == 422, (label, response.text)
        assert response.json()["error"] == "invalid_input", label
        assert response.json()["message"], label
    assert counts(factory) == before
    # The asset is untouched and still accepts a good first report.
    assert (
        client.post(
            "/api/v1/agent/report", json=full(agent["asset_id"], 1), headers=cred
        ).status_code
        == 200
    )


def test_oversized_report_is_refused(client: TestClient, factory: sessionmaker[Session]) -> None:
    agent = enroll(client, factory)
    many = [pkg(f"pkg{i}", "1.0-1") for i in range(30_000)]  # ~4 MB > the 2 MB test limit
    before = counts(factory)
    response = client.post(
        "/api/v1/agent/report",
        json=full(agent["asset_id"], 1, many),
        headers=auth(agent["credential"]),
    )
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert counts(factory) == before


def test_several_agents_are_separate_assets(
    client: TestClient, factory: sessionmaker[Session], role_tokens: dict[str, str]
) -> None:
    ids = set()
    for i in range(3):
        agent = enroll(client, factory, f"node-{i}")
        packages = [*BASE_PACKAGES, pkg(f"only-on-{i}", "1.0")]
        report = full(agent["asset_id"], 1, packages)
        report["facts"] = FACTS | {"hostname": f"node-{i}"}
        assert (
            client.post(
                "/api/v1/agent/report", json=report, headers=auth(agent["credential"])
            ).status_code
            == 200
        )
        ids.add(agent["asset_id"])
    listing = client.get("/api/v1/assets", headers=auth(role_tokens["viewer"])).json()
    assert listing["total"] == 3
    assert {a["hostname"] for a in listing["items"]} == {"node-0", "node-1", "node-2"}
    assert {a["id"] for a in listing["items"]} == ids
    for item in listing["items"]:
        names = {
            p["name"]
            for p in client.get(
                f"/api/v1/assets/{item['id']}/packages", headers=auth(role_tokens["viewer"])
            ).json()
        }
        assert f"only-on-{item['hostname'].split('-')[1]}" in names
        assert len(names) == 5
