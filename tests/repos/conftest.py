"""Fixtures of the repository tests: a loopback HTTP server and a client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.repos.repo_server import RepoServer, serve


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RepoServer]:
    """A real HTTP server on 127.0.0.1 serving ``tmp_path / "www"``."""
    root = tmp_path / "www"
    root.mkdir()
    with serve(root) as state:
        yield state


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as http:
        yield http
