"""Every API endpoint declares its access rule, and every role gets exactly
what the role table grants: the whole matrix of endpoints x roles, walked."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from patchwarden.api.deps import access_rule
from patchwarden.domain.roles import ROLE_PERMISSIONS, Permission, Role
from patchwarden.storage.db import make_session_factory
from tests.api.conftest import auth, build_app, make_role_tokens


def _rules(dependant: Any) -> set[str]:
    found = set()
    for dependency in dependant.dependencies:
        rule = access_rule(dependency.call)
        if rule:
            found.add(rule)
        found |= _rules(dependency)
    return found


def api_routes(app: FastAPI) -> list[tuple[str, str, str]]:
    routes: list[tuple[str, str, str]] = []
    api_routes: list[tuple[str, APIRoute]] = app.state.api_routes
    for path, route in api_routes:
        rules = _rules(route.dependant)
        assert len(rules) == 1, f"{path} must declare exactly one access rule, has {rules}"
        routes.extend((method, path, next(iter(rules))) for method in sorted(route.methods or ()))
    return routes


@pytest.fixture
def matrix_app(sqlite_engine: Engine, tmp_path: Path) -> FastAPI:
    return build_app(sqlite_engine, tmp_path)


def test_every_route_declares_an_access_rule(matrix_app: FastAPI) -> None:
    routes = api_routes(matrix_app)
    assert len(routes) >= 20
    valid = {p.value for p in Permission} | {"public", "agent"}
    for method, path, rule in routes:
        assert rule in valid, (method, path, rule)


def test_role_matrix(matrix_app: FastAPI, sqlite_engine: Engine) -> None:
    tokens = make_role_tokens(make_session_factory(sqlite_engine))
    checked = 0
    with TestClient(matrix_app) as client:
        # Logging out revokes the caller's token, so it goes last.
        routes = sorted(api_routes(matrix_app), key=lambda r: r[1].endswith("/auth/logout"))
        for method, path, rule in routes:
            url = re.sub(r"\{[^}]+\}", "999999", path)
            if rule in {"public", "agent"}:
                continue
            anonymous = client.request(method, url, json={})
            assert anonymous.status_code == 401, (method, path, anonymous.text)
            for role in Role:
                response = client.request(method, url, json={}, headers=auth(tokens[role.value]))
                allowed = Permission(rule) in ROLE_PERMISSIONS[role]
                if allowed:
                    assert response.status_code not in (401, 403), (
                        role,
                        method,
                        path,
                        response.text,
                    )
                else:
                    assert response.status_code == 403, (role, method, path, response.text)
                    assert response.json()["error"] == "permission_denied"
                checked += 1
    assert checked >= 5 * 60


def test_agent_routes_refuse_user_tokens(matrix_app: FastAPI, sqlite_engine: Engine) -> None:
    tokens = make_role_tokens(make_session_factory(sqlite_engine))
    with TestClient(matrix_app) as client:
        for method, path, rule in api_routes(matrix_app):
            if rule == "agent":
                url = re.sub(r"\{[^}]+\}", "999999", path)
                response = client.request(method, url, json={}, headers=auth(tokens["admin"]))
                assert response.status_code == 401, (path, response.text)


def test_auditor_reads_everything_and_changes_nothing() -> None:
    auditor = ROLE_PERMISSIONS[Role.AUDITOR]
    assert Permission.AUDIT_READ in auditor and Permission.USERS_READ in auditor
    assert not auditor & {
        Permission.INVENTORY_WRITE,
        Permission.AGENTS_MANAGE,
        Permission.USERS_MANAGE,
        Permission.FEEDS_MANAGE,
        Permission.POLICY_MANAGE,
        Permission.REPOS_MANAGE,
        Permission.APPROVALS_REQUEST,
        Permission.APPROVALS_DECIDE,
        Permission.ROLLOUTS_MANAGE,
    }


def test_patch_policy_routes_are_in_the_matrix(matrix_app: FastAPI) -> None:
    """The patch-policy routes are walked above, each with the permission it needs."""
    rules = {(method, path): rule for method, path, rule in api_routes(matrix_app)}
    expected = {
        ("GET", "/repositories"): Permission.INVENTORY_READ,
        ("POST", "/repositories"): Permission.REPOS_MANAGE,
        ("POST", "/repositories/sync"): Permission.REPOS_MANAGE,
        ("GET", "/repositories/{ref}"): Permission.INVENTORY_READ,
        ("DELETE", "/repositories/{ref}"): Permission.REPOS_MANAGE,
        ("GET", "/patches"): Permission.INVENTORY_READ,
        ("GET", "/patches/{patch_id}"): Permission.INVENTORY_READ,
        ("GET", "/patches/{patch_id}/dossier"): Permission.INVENTORY_READ,
        ("POST", "/patches/{patch_id}/approval"): Permission.APPROVALS_REQUEST,
        ("GET", "/approvals"): Permission.INVENTORY_READ,
        ("GET", "/policy/four-eyes"): Permission.INVENTORY_READ,
        ("PUT", "/policy/four-eyes"): Permission.POLICY_MANAGE,
        ("GET", "/groups/{ref}/rules"): Permission.INVENTORY_READ,
        ("POST", "/groups/{ref}/rules"): Permission.APPROVALS_DECIDE,
        ("DELETE", "/rules/{rule_id}"): Permission.APPROVALS_DECIDE,
        ("GET", "/exceptions"): Permission.INVENTORY_READ,
        ("POST", "/exceptions"): Permission.APPROVALS_DECIDE,
        ("POST", "/exceptions/{acceptance_id}/revoke"): Permission.APPROVALS_DECIDE,
        ("GET", "/compliance"): Permission.INVENTORY_READ,
        ("GET", "/groups/{ref}/baselines"): Permission.INVENTORY_READ,
        ("PUT", "/groups/{ref}/baselines"): Permission.INVENTORY_WRITE,
        ("DELETE", "/baselines/{baseline_id}"): Permission.INVENTORY_WRITE,
        ("GET", "/groups/{ref}/drift"): Permission.INVENTORY_READ,
        ("GET", "/sprawl"): Permission.INVENTORY_READ,
    }
    for (method, path), permission in expected.items():
        assert rules.get((method, f"/api/v1{path}")) == permission.value, (method, path)


def test_openapi_document(matrix_app: FastAPI) -> None:
    with TestClient(matrix_app) as client:
        document = client.get("/api/v1/openapi.json").json()
    assert document["info"]["title"] == "Patchwarden"
    assert "/api/v1/assets" in document["paths"]
    assert "/api/v1/assets/{asset_id}/packages" in document["paths"]
    assert "/api/v1/agent/report" in document["paths"]
    assert "/api/v1/patches/{patch_id}/approval" in document["paths"]
    assert "/api/v1/groups/{ref}/baselines" in document["paths"]
