"""Load the upstream test vectors in shared/data/versions as pytest parameters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

# tests/versions/vectors.py -> repo root (/work/main) -> ../shared/data
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
VERSIONS = DATA / "versions"


def missing_reason(path: Path) -> str | None:
    if not path.is_file():
        return f"shared test data not found: {path.resolve()} (see DESIGN.md 'Real data for tests')"
    return None


def read_tsv(name: str) -> list[dict[str, str]]:
    """Rows of a header-first TSV file (no quoting, no tabs inside fields)."""
    lines = (VERSIONS / name).read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:] if line]


def tsv_params(name: str, *columns: str) -> list[Any]:
    """One pytest.param per row (id: line number and values), or one skipped param."""
    reason = missing_reason(VERSIONS / name)
    if reason:
        return [pytest.param(*([None] * len(columns)), marks=pytest.mark.skip(reason=reason))]
    return [
        pytest.param(*(row[c] for c in columns), id=f"L{n}:" + " ".join(row[c] for c in columns))
        for n, row in enumerate(read_tsv(name), start=2)
    ]


def require(path: Path) -> Path:
    reason = missing_reason(path)
    if reason:
        pytest.skip(reason)
    return path


def pep440_normalization() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        require(VERSIONS / "pep440_normalization_and_invalid.json").read_text(encoding="utf-8")
    )
    return data
