"""Shared data parsed once per session, and helpers to write feed files."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from patchwarden.domain.advisories import ParsedFeed
from patchwarden.feeds import FeedSource, get_feed, read_path
from tests.conftest import SHARED_DATA

# Every shared file the importers read, with the format it must be detected as.
SHARED_FILES = {
    "kev/known_exploited_vulnerabilities.json": "kev",
    "osv-pypi/pypa_advisory_database.jsonl": "osv",
    "ubuntu-osv/usn_sample.jsonl": "osv",
    "debian/DSA_list.txt": "debian-tracker",
    "debian/DLA_list.txt": "debian-tracker",
    "alpine-secdb": "alpine-secdb",
}


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_feeds(shared_dir: Path) -> dict[str, list[ParsedFeed]]:
    """Every shared file parsed (format detected), and how long it took."""
    parsed: dict[str, list[ParsedFeed]] = {}
    started = time.perf_counter()
    for relative in SHARED_FILES:
        parsed[relative] = list(read_path(shared_dir / relative))
    seconds = time.perf_counter() - started
    assert seconds < 10, f"parsing the shared data took {seconds:.1f} s"
    return parsed


Parse = Callable[..., ParsedFeed]


@pytest.fixture
def parse_text() -> Parse:
    """Parse text (or bytes, or a JSON-able value) with a named feed."""

    def parse(fmt: str, content: object, name: str = "feed.json", **kwargs: int) -> ParsedFeed:
        if isinstance(content, bytes):
            data = content
        elif isinstance(content, str):
            data = content.encode()
        else:
            data = json.dumps(content).encode()
        return get_feed(fmt).parse(FeedSource.from_bytes(name, data, **kwargs))

    return parse


def write_gzip(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data))
    return path
