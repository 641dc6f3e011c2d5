"""One report cycle, and the loop that repeats it.

A cycle: collect -> build a delta against the last acknowledged inventory (or
a full report when there is none) -> send -> on 409 full_report_required send
a full report at once -> store what the server acknowledged.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Optional

from patchwarden.agent import AGENT_VERSION
from patchwarden.agent.client import AgentClient
from patchwarden.agent.errors import CredentialRefusedError, ServerError, ServerUnreachableError
from patchwarden.agent.host import Host
from patchwarden.agent.inventory import Inventory, collect_inventory
from patchwarden.agent.state import Snapshot, StateDir
from patchwarden.protocol.v1 import PROTOCOL_VERSION, diff_packages

DEFAULT_INTERVAL = 3600
FULL_REPORT_REQUIRED = "full_report_required"
JITTER = 0.10  # +-10 %, so a fleet restarted together does not report in lockstep

log = logging.getLogger("patchwarden.agent")


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class CycleResult:
    seq: int
    kind: str  # "full" | "delta"
    ack_seq: int
    report_interval: Optional[int]
    packages: int
    added: int
    removed: int


def build_report(
    asset_id: int,
    seq: int,
    inventory: Inventory,
    base: Optional[Snapshot],
    collected_at: str,
) -> Dict[str, Any]:
    """A full report, or a delta against `base` (the acknowledged snapshot)."""
    report: Dict[str, Any] = {
        "protocol": PROTOCOL_VERSION,
        "asset_id": asset_id,
        "seq": seq,
        "kind": "full" if base is None else "delta",
        "base_seq": None if base is None else base.ack_seq,
        "agent_version": AGENT_VERSION,
        "collected_at": collected_at,
        "facts": inventory["facts"],
        "collector_notes": inventory["collector_notes"],
    }
    if base is None:
        report["packages"] = inventory["packages"]
    else:
        report["added"], report["removed"] = diff_packages(base.packages, inventory["packages"])
    return report


def run_cycle(
    host: Host,
    state: StateDir,
    client: AgentClient,
    asset_id: int,
    now: Callable[[], str] = utc_now,
) -> CycleResult:
    """Collect and report once. Raises CredentialRefusedError (stop),
    ServerUnreachableError / ServerError (retry next cycle) or StateError."""
    inventory = collect_inventory(host)
    collected_at = now()
    base = state.load_snapshot()

    def send(against: Optional[Snapshot]) -> CycleResult:
        # next_seq() persists the number before it leaves this machine.
        report = build_report(asset_id, state.next_seq(), inventory, against, collected_at)
        answer = client.report(report)
        ack_seq = answer["ack_seq"]
        state.save_snapshot(Snapshot(ack_seq, inventory["packages"], inventory["facts"]))
        interval = answer.get("report_interval")
        return CycleResult(
            seq=report["seq"],
            kind=report["kind"],
            ack_seq=ack_seq,
            report_interval=interval if isinstance(interval, int) and interval > 0 else None,
            packages=len(inventory["packages"]),
            added=len(report.get("added", ())),
            removed=len(report.get("removed", ())),
        )

    try:
        return send(base)
    except ServerError as exc:
        if base is None or exc.status != 409 or exc.code != FULL_REPORT_REQUIRED:
            raise
        log.info("server asked for a full report (%s); sending one now", exc.detail or exc.code)
        return send(None)


def jittered(interval: float, rand: Callable[[float, float], float] = random.uniform) -> float:
    return interval * rand(1.0 - JITTER, 1.0 + JITTER)


def run_forever(
    host: Host,
    state: StateDir,
    client: AgentClient,
    asset_id: int,
    stop: threading.Event,
    interval: Optional[float] = None,
    server_interval: Optional[int] = None,
) -> None:
    """Report every interval until `stop` is set.

    `interval` (the operator's --interval) wins over the server's
    report_interval. Transient failures are logged and retried next cycle;
    CredentialRefusedError and StateError end the loop (retrying cannot help).
    """
    while not stop.is_set():
        try:
            result = run_cycle(host, state, client, asset_id)
        except CredentialRefusedError:
            raise
        except (ServerUnreachableError, ServerError) as exc:
            log.warning("report failed, will retry next cycle: %s", exc)
        else:
            log.info(describe(result))
            if result.report_interval:
                server_interval = result.report_interval
        base = interval or server_interval or DEFAULT_INTERVAL
        stop.wait(jittered(base))


def describe(result: CycleResult) -> str:
    if result.kind == "full":
        what = "full report, %d packages" % result.packages
    else:
        what = "delta +%d -%d" % (result.added, result.removed)
    return "report %d (%s) acknowledged as %d" % (result.seq, what, result.ack_seq)
