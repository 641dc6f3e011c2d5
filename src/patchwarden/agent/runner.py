"""One report cycle, the job cycle, and the loop that repeats them.

A report cycle: collect -> build a delta against the last acknowledged
inventory (or a full report when there is none) -> send -> on 409
full_report_required send a full report at once -> store what the server
acknowledged.

A job cycle (after each report): resend results the server has not
acknowledged -> poll -> drop kept files of released rollouts -> for each job,
one at a time: verify its signature with the pinned key (a bad one is
reported "refused" and nothing runs), skip it when the journal already
finished it, tell the server it starts, run it, send the result. When
anything changed, a fresh report follows so the server sees the new versions.
"""

from __future__ import annotations

import base64
import logging
import random
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, Tuple

from patchwarden.agent import AGENT_VERSION
from patchwarden.agent.client import AgentClient, decode_public_key
from patchwarden.agent.errors import CredentialRefusedError, ServerError, ServerUnreachableError
from patchwarden.agent.host import Host
from patchwarden.agent.inventory import Inventory, collect_inventory
from patchwarden.agent.jobs import JobExecutor, RebootStarted, parse_time, refused_result
from patchwarden.agent.state import Credentials, Snapshot, StateDir
from patchwarden.protocol.jobs import JobRefused, verify_envelope
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


@dataclass(frozen=True)
class JobCycleResult:
    polled: int  # envelopes the server sent
    ran: int  # jobs run (or continued) in this cycle
    refused: int  # envelopes refused before anything ran
    sent: int  # results the server acknowledged
    rebooting: bool  # a job is rebooting the host: stop for now
    poll_interval: Optional[int]

    @property
    def changed(self) -> bool:
        """Packages may have changed: the server wants a fresh inventory."""
        return self.ran > 0


def _claimed_ids(envelope: object) -> Optional[Tuple[int, int]]:
    """The job id and attempt an unverified envelope claims, to report a
    refusal against (None when it does not even say)."""
    job = envelope.get("job") if isinstance(envelope, dict) else None
    if not isinstance(job, dict):
        return None
    job_id, attempt = job.get("job_id"), job.get("attempt")
    for value in (job_id, attempt):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            return None
    assert isinstance(job_id, int)
    assert isinstance(attempt, int)
    return job_id, attempt


class JobAgent:
    """The agent's side of rollout jobs against one server."""

    def __init__(
        self,
        state: StateDir,
        client: AgentClient,
        credentials: Credentials,
        executor: JobExecutor,
    ) -> None:
        self.state = state
        self.client = client
        self.credentials = credentials
        self.executor = executor
        self.journal = executor.journal

    def public_key(self) -> bytes:
        """The pinned job-signing key; fetched once and stored when the agent
        was enrolled before the server handed it out."""
        if self.credentials.job_signing_key:
            return decode_public_key(self.credentials.job_signing_key)
        key_id, raw = self.client.signing_key()
        self.credentials = replace(
            self.credentials,
            job_signing_key=base64.b64encode(raw).decode("ascii"),
            job_signing_key_id=key_id,
        )
        self.state.save_credentials(self.credentials)
        log.info("pinned the server's job-signing key %s", key_id)
        return raw

    def recover(self) -> List[Dict[str, Any]]:
        """Finish jobs an earlier run left half done (no server needed)."""
        results = self.executor.recover()
        for result in results:
            log.info("job %d recovered: %s", result["job_id"], result["status"])
        return results

    def send(self, result: Dict[str, Any], journaled: bool = True) -> bool:
        """Send one result; True once the server acknowledged it. A result the
        server cannot take at all (unknown job, invalid) is not resent forever."""
        try:
            self.client.send_result(result["job_id"], result)
        except CredentialRefusedError:
            raise
        except ServerError as exc:
            if exc.status not in (400, 404, 409, 410, 422):
                raise
            log.warning("server refused the result of job %d: %s", result["job_id"], exc)
        if journaled:
            self.journal.mark_reported(result["job_id"])
        return True

    def resend_pending(self) -> int:
        sent = 0
        for entry in self.journal.unreported():
            self.send(entry["result"])
            sent += 1
        return sent

    def cycle(
        self, now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    ) -> JobCycleResult:
        """One poll and every job it brought. Raises ServerUnreachableError /
        ServerError (next cycle resends what is unacknowledged)."""
        sent = self.resend_pending()
        running = [e["job"]["job_id"] for e in self.journal.unfinished()]
        try:
            key = self.public_key()
            answer = self.client.poll_jobs(
                self.credentials.asset_id, running, self.executor.kept_rollouts()
            )
        except ServerError as exc:
            if exc.status != 404 or isinstance(exc, CredentialRefusedError):
                raise
            # A server from before rollout jobs: nothing to do, not an error.
            log.debug("server has no job endpoints (%s)", exc)
            return JobCycleResult(0, 0, 0, sent, False, None)
        for rollout_id in answer["release"]:
            self.executor.release(rollout_id)
        ran = refused = 0
        rebooting = False
        for envelope in answer["jobs"]:
            try:
                job = verify_envelope(envelope, key, self.credentials.asset_id)
            except JobRefused as exc:
                refused += 1
                claimed = _claimed_ids(envelope)
                log.warning("refusing job %s: %s", claimed[0] if claimed else "?", exc)
                if claimed is not None:
                    self.send(refused_result(claimed[0], claimed[1], str(exc), now()), False)
                    sent += 1
                continue
            entry = self.journal.load(job["job_id"])
            same = entry is not None and entry["job"].get("attempt") == job["attempt"]
            if same and entry is not None and entry.get("state") == "finished":
                # A lost answer: the result goes again, the job does not run again.
                self.send(entry["result"])
                sent += 1
                continue
            if not same and not self._expired(job, now()):
                try:
                    self.client.start_job(job["job_id"], job["attempt"])
                except ServerError as exc:
                    if exc.status != 409 or isinstance(exc, CredentialRefusedError):
                        raise
                    log.info("job %d was cancelled before it started", job["job_id"])
                    continue
            try:
                result = self.executor.run(job)
            except RebootStarted:
                log.info("job %d is rebooting the host", job["job_id"])
                rebooting = True
                ran += 1
                break
            ran += 1
            log.info("job %d: %s (%s)", job["job_id"], result["status"], result["phase"])
            self.send(result)
            sent += 1
        return JobCycleResult(
            polled=len(answer["jobs"]),
            ran=ran,
            refused=refused,
            sent=sent,
            rebooting=rebooting,
            poll_interval=answer["poll_interval"],
        )

    @staticmethod
    def _expired(job: Dict[str, Any], now: datetime) -> bool:
        try:
            return parse_time(job["expires_at"]) < now
        except ValueError:
            return True


def describe_jobs(result: JobCycleResult) -> str:
    text = "jobs: %d polled, %d run, %d refused, %d results sent" % (
        result.polled,
        result.ran,
        result.refused,
        result.sent,
    )
    return text + ("; rebooting" if result.rebooting else "")


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
    jobs: Optional[JobAgent] = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    """Report every interval until `stop` is set; with `jobs`, poll for jobs
    after each report and as often as the server's poll_interval asks.

    `interval` (the operator's --interval) wins over the server's
    report_interval. Transient failures are logged and retried next cycle;
    CredentialRefusedError and StateError end the loop (retrying cannot help).
    A job that reboots the host ends the loop too.
    """
    if jobs is not None:
        jobs.recover()
    poll_interval: Optional[int] = None
    next_report = monotonic()
    while not stop.is_set():
        report_due = monotonic() >= next_report
        base = interval or server_interval or DEFAULT_INTERVAL
        try:
            if report_due:
                next_report = monotonic() + jittered(base)
                result = run_cycle(host, state, client, asset_id)
                log.info(describe(result))
                if result.report_interval:
                    server_interval = result.report_interval
            if jobs is not None:
                outcome = jobs.cycle()
                poll_interval = outcome.poll_interval or poll_interval
                if outcome.ran or outcome.polled:
                    log.info(describe_jobs(outcome))
                if outcome.rebooting:
                    return
                if outcome.changed:
                    log.info(describe(run_cycle(host, state, client, asset_id)))
        except CredentialRefusedError:
            raise
        except (ServerUnreachableError, ServerError) as exc:
            log.warning("server exchange failed, will retry next cycle: %s", exc)
        wait = max(0.0, next_report - monotonic())
        if jobs is not None and poll_interval:
            wait = min(wait, jittered(poll_interval))
        stop.wait(wait)


def describe(result: CycleResult) -> str:
    if result.kind == "full":
        what = "full report, %d packages" % result.packages
    else:
        what = "delta +%d -%d" % (result.added, result.removed)
    return "report %d (%s) acknowledged as %d" % (result.seq, what, result.ack_seq)
