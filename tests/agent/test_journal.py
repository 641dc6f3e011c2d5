"""The job journal: atomic entries, what is unfinished or unreported, pruning."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from patchwarden.agent.errors import StateError
from patchwarden.agent.journal import Journal
from tests.agent.jobkit import job


def entry(job_id: int, state: str = "finished", reported: bool = False) -> dict[str, Any]:
    return {
        "job": job(job_id=job_id),
        "state": state,
        "phase": "done" if state == "finished" else "install",
        "result": {"job_id": job_id} if state == "finished" else None,
        "reported": reported,
    }


def test_entries_by_state(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path))
    assert journal.entries() == [] and journal.load(1) is None
    journal.save(entry(3, "running"))
    journal.save(entry(1))
    journal.save(entry(2, reported=True))
    assert journal.job_ids() == [1, 2, 3]
    assert [e["job"]["job_id"] for e in journal.unfinished()] == [3]
    assert [e["job"]["job_id"] for e in journal.unreported()] == [1]
    journal.mark_reported(1)
    assert journal.unreported() == []
    path = Path(journal.path(1))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not list(path.parent.glob("*.tmp.*"))


def test_prune_keeps_the_newest_reported_and_everything_pending(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path))
    for job_id in range(1, 8):
        journal.save(entry(job_id, reported=job_id <= 5))
    journal.save(entry(8, "running"))
    journal.prune(keep=2)
    assert journal.job_ids() == [4, 5, 6, 7, 8]


def test_corrupt_entry_is_a_state_error(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path))
    journal.save(entry(1))
    Path(journal.path(1)).write_text("{not json")
    with pytest.raises(StateError):
        journal.load(1)
    (tmp_path / "jobs" / "notes.txt").write_text("ignored")
    assert journal.job_ids() == [1]
