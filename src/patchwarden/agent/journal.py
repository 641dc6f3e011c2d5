"""The job journal: one file per job in STATE/jobs/<job_id>.json.

The executor writes the phase *before* each step (atomically, like every
state file), so after the agent or the host died mid-job the next start knows
where it was: it reads the package database and finishes or rolls back. A
finished entry keeps the result until the server acknowledges it, which is
also what makes a second delivery of the same job a no-op.

An entry is a JSON object:
    job        the verified job document
    state      "running" | "finished"
    phase      the phase being worked on (protocol.jobs.PHASES)
    started_at ISO-8601
    before     {name: version | null} the snapshot (install) or the state before (rollback)
    added      [name, ...] packages the transaction installs new
    failure    null | {"phase", "error", "transient"} what started a rollback
    reboot     {"requested_at", "boot_id_before", ...} once a reboot was asked for
    smoke_tests [{name, ok, detail}]
    log        text
    result     the RESULT document once finished
    reported   true once the server acknowledged the result
"""

from __future__ import annotations

import json
import os
from contextlib import suppress
from typing import Any, Dict, List, Optional

from patchwarden.agent.errors import StateError
from patchwarden.agent.state import write_atomic

JOBS_DIR = "jobs"
KEEP_REPORTED = 50  # finished and acknowledged entries kept for inspection


class Journal:
    def __init__(self, state_path: str) -> None:
        self.directory = os.path.join(os.path.abspath(state_path), JOBS_DIR)

    def path(self, job_id: int) -> str:
        return os.path.join(self.directory, "%d.json" % int(job_id))

    def load(self, job_id: int) -> Optional[Dict[str, Any]]:
        try:
            with open(self.path(job_id), "rb") as handle:
                entry = json.loads(handle.read().decode("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StateError("cannot read %s: %s" % (self.path(job_id), exc)) from exc
        if not isinstance(entry, dict) or not isinstance(entry.get("job"), dict):
            raise StateError("%s is not a journal entry" % self.path(job_id))
        return entry

    def save(self, entry: Dict[str, Any]) -> None:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        data = json.dumps(entry, indent=1, sort_keys=True).encode("utf-8") + b"\n"
        try:
            write_atomic(self.path(entry["job"]["job_id"]), data)
        except OSError as exc:
            raise StateError("cannot write the job journal: %s" % exc) from exc

    def job_ids(self) -> List[int]:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        ids = []
        for name in names:
            stem, dot, suffix = name.partition(".")
            if dot and suffix == "json" and stem.isdigit():
                ids.append(int(stem))
        return sorted(ids)

    def entries(self) -> List[Dict[str, Any]]:
        found = []
        for job_id in self.job_ids():
            entry = self.load(job_id)
            if entry is not None:
                found.append(entry)
        return found

    def unfinished(self) -> List[Dict[str, Any]]:
        return [e for e in self.entries() if e.get("state") != "finished"]

    def unreported(self) -> List[Dict[str, Any]]:
        return [
            e
            for e in self.entries()
            if e.get("state") == "finished" and not e.get("reported") and e.get("result")
        ]

    def mark_reported(self, job_id: int) -> None:
        entry = self.load(job_id)
        if entry is None or entry.get("reported"):
            return
        entry["reported"] = True
        self.save(entry)
        self.prune()

    def prune(self, keep: int = KEEP_REPORTED) -> None:
        """Delete the oldest reported entries beyond `keep` (never one that is
        running or still waits for the server)."""
        reported = [e for e in self.entries() if e.get("state") == "finished" and e.get("reported")]
        for entry in reported[: max(0, len(reported) - keep)]:
            with suppress(FileNotFoundError):
                os.unlink(self.path(entry["job"]["job_id"]))
