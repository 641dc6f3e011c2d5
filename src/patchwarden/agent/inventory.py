"""Run every collector against one host and merge what they found.

`collect_inventory` is the one entry point, for the agent (LocalHost) and for
agentless collection (SshHost) alike.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple, TypedDict

from patchwarden.agent.collectors import COLLECTORS
from patchwarden.agent.collectors.base import Collector, CollectorOutput, Facts
from patchwarden.agent.host import Host
from patchwarden.protocol.v1 import PackageDict, validate_package

# Notes are for people; a runaway stderr must not bloat (or, past the server's
# limit, get refused) every report.
MAX_NOTE_LENGTH = 1000


def _short(message: str) -> str:
    if len(message) <= MAX_NOTE_LENGTH:
        return message
    return message[: MAX_NOTE_LENGTH - 3] + "..."


class CollectorNote(TypedDict):
    collector: str
    status: str  # "ok" | "skipped" | "error"
    message: str


class Inventory(TypedDict):
    facts: Dict[str, Any]
    packages: List[PackageDict]
    collector_notes: List[CollectorNote]


def merge_facts(into: Facts, fragment: Facts) -> None:
    """Merge one collector's facts; nested objects ("os", "firmware") are
    merged key by key so two collectors may each fill part of one."""
    for key, value in fragment.items():
        current = into.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            current.update(value)
        elif isinstance(value, dict):
            into[key] = dict(value)  # a copy: later merges must not alter the collector's output
        else:
            into[key] = value


def _valid_packages(output: CollectorOutput) -> Tuple[List[PackageDict], str]:
    """Drop entries the protocol would refuse (so one odd package cannot get
    the whole report rejected), and say so in the note."""
    good: List[PackageDict] = []
    reasons: List[str] = []
    for package in output.packages or ():
        reason = validate_package(package)
        if reason is None:
            good.append(package)
        else:
            reasons.append(reason)
    if not reasons:
        return good, output.message
    dropped = "%d invalid package entries left out (first: %s)" % (len(reasons), reasons[0])
    return good, "; ".join(m for m in (output.message, dropped) if m)


def collect_inventory(
    host: Host, collectors: Optional[Mapping[str, Collector]] = None
) -> Inventory:
    """Run each collector in isolation: one that raises becomes an "error"
    note and the others still run."""
    facts: Facts = {}
    packages: List[PackageDict] = []
    notes: List[CollectorNote] = []
    for name, collect in (COLLECTORS if collectors is None else collectors).items():
        try:
            output = collect(host)
        except Exception as exc:  # isolation is the point: any failure is a note
            message = "%s: %s" % (type(exc).__name__, exc)
            notes.append({"collector": name, "status": "error", "message": _short(message)})
            continue
        merge_facts(facts, output.facts)
        found, message = _valid_packages(output)
        packages.extend(found)
        notes.append({"collector": name, "status": output.status, "message": _short(message)})
    return {"facts": facts, "packages": packages, "collector_notes": notes}
