"""Groups and CMDB imports through the API."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.api.conftest import auth
from tests.api.test_assets_api import make_asset

CSV = b"""hostname,serial,ip,device_type,vendor,model,firmware_version,criticality,environment,tags,timezone
core-sw-1,SN123,10.0.0.1,network_device,Cisco,C9300,17.9.4,1,prod,network;core,Europe/Berlin
lb-1,,10.0.0.2,network_device,F5,BIG-IP i4800,16.1.4,2,prod,network,UTC
broken-1,,10.0.0.3,server,,,,9,prod,,UTC
"""


def test_static_and_dynamic_groups(
    client: TestClient, factory: sessionmaker[Session], role_tokens: dict[str, str]
) -> None:
    web = make_asset(client, factory, "web-01")
    db = make_asset(client, factory, "db-01")
    operator = auth(role_tokens["operator"])
    client.patch(
        f"/api/v1/assets/{db}", headers=operator, json={"tags": ["database"], "criticality": 1}
    )
    static = client.post(
        "/api/v1/groups", headers=operator, json={"name": "pilot", "asset_ids": [web]}
    )
    assert static.status_code == 201, static.text
    dynamic = client.post(
        "/api/v1/groups",
        headers=operator,
        json={"name": "critical-db", "query": "tag = database and criticality <= 2"},
    )
    assert dynamic.status_code == 201, dynamic.text
    detail = client.get(
        f"/api/v1/groups/{dynamic.json()['id']}", headers=auth(role_tokens["viewer"])
    ).json()
    assert [m["hostname"] for m in detail["members"]] == ["db-01"]
    added = client.post(
        f"/api/v1/groups/{static.json()['id']}/members", headers=operator, json={"asset_ids": [db]}
    )
    assert added.json()["member_count"] == 2

    bad_query = client.post(
        "/api/v1/groups", headers=operator, json={"name": "x", "query": "colour = red"}
    )
    assert bad_query.status_code == 422 and "colour" in bad_query.json()["message"]
    both = client.post(
        "/api/v1/groups",
        headers=operator,
        json={"name": "y", "query": "os = debian", "asset_ids": [1]},
    )
    assert both.status_code == 422
    unknown = client.post(
        "/api/v1/groups", headers=operator, json={"name": "z", "asset_ids": [999]}
    )
    assert unknown.status_code == 404
    duplicate = client.post(
        "/api/v1/groups", headers=operator, json={"name": "pilot", "asset_ids": []}
    )
    assert duplicate.status_code == 409
    assert len(client.get("/api/v1/groups", headers=operator).json()) == 2
    assert (
        client.post(
            "/api/v1/groups",
            headers=auth(role_tokens["viewer"]),
            json={"name": "v", "asset_ids": []},
        ).status_code
        == 403
    )


def test_cmdb_import_row_by_row(client: TestClient, role_tokens: dict[str, str]) -> None:
    operator = auth(role_tokens["operator"])
    dry = client.post(
        "/api/v1/imports/cmdb",
        params={"format": "csv", "dry_run": True},
        content=CSV,
        headers=operator,
    )
    assert dry.status_code == 200, dry.text
    assert (dry.json()["created"], dry.json()["rejected"]) == (2, 1)
    assert client.get("/api/v1/assets", headers=operator).json()["total"] == 0

    real = client.post(
        "/api/v1/imports/cmdb", params={"format": "csv"}, content=CSV, headers=operator
    ).json()
    assert [r["action"] for r in real["rows"]] == ["created", "created", "rejected"]
    assert "criticality" in real["rows"][2]["reason"]
    assets = {
        a["hostname"]: a for a in client.get("/api/v1/assets", headers=operator).json()["items"]
    }
    assert set(assets) == {"core-sw-1", "lb-1"}
    switch = client.get(f"/api/v1/assets/{assets['core-sw-1']['id']}", headers=operator).json()
    assert (
        switch["vendor"],
        switch["model"],
        switch["firmware_version"],
        switch["device_type"],
    ) == ("Cisco", "C9300", "17.9.4", "network_device")
    again = client.post(
        "/api/v1/imports/cmdb", params={"format": "csv"}, content=CSV, headers=operator
    ).json()
    assert [r["action"] for r in again["rows"]] == ["unchanged", "unchanged", "rejected"]
    garbage = client.post(
        "/api/v1/imports/cmdb", params={"format": "json"}, content=b"{nope", headers=operator
    )
    assert garbage.status_code == 422
