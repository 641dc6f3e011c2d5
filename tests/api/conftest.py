"""In-process API fixtures: the real ASGI app over a real database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from patchwarden.api.app import create_app
from patchwarden.config import Settings
from patchwarden.domain.roles import Role
from patchwarden.services import agents, users
from patchwarden.storage.db import make_session_factory, transaction

PASSWORD = "correct horse battery staple"


def build_app(engine: Engine, tmp_path: Path) -> FastAPI:
    settings = Settings(data_dir=tmp_path, agent_interval_seconds=60, max_report_bytes=2_000_000)
    return create_app(settings, engine, run_upkeep=False)


@pytest.fixture
def app(engine: Engine, tmp_path: Path) -> FastAPI:
    return build_app(engine, tmp_path)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


def make_role_tokens(factory: sessionmaker[Session]) -> dict[str, str]:
    """One user per role; returns role -> API token."""
    tokens = {}
    with transaction(factory) as session:
        for role in Role:
            user = users.create_user(session, "test", f"{role.value}-user", PASSWORD, role.value)
            secret, _ = users.create_token(session, "test", user.id, "test")
            tokens[role.value] = secret
    return tokens


@pytest.fixture
def role_tokens(factory: sessionmaker[Session]) -> dict[str, str]:
    return make_role_tokens(factory)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_enrollment_token(
    factory: sessionmaker[Session], ttl: timedelta = timedelta(hours=1)
) -> str:
    with transaction(factory) as session:
        secret, _ = agents.create_enrollment_token(session, "test", ttl)
    return secret
