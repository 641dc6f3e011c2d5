"""CLI tests run each command on a fresh data directory (SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from patchwarden.cli import context
from patchwarden.config import get_settings


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PATCHWARDEN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PATCHWARDEN_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    context.session_factory.cache_clear()
    yield tmp_path / "data"
    if context.session_factory.cache_info().currsize:
        context.session_factory().kw["bind"].dispose()
    context.session_factory.cache_clear()
    get_settings.cache_clear()
