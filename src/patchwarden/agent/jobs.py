"""The job executor: one verified rollout job, start to finish (or rollback).

Steps, each journaled before it starts (agent/journal.py):

    pre_check       expiry was checked by the caller; free disk under ROOT/var,
                    the package manager's lock (waited for with backoff), a
                    pending reboot
    snapshot        check mode says every package the transaction changes
                    (new dependencies too); their exact versions are the
                    snapshot; the package files of the versions being
                    replaced are kept in STATE/kept/<rollout_id>/ (from the
                    package cache, else repacked); fs_snapshot.create
    pre_hook
    install         the exact targets, retried with backoff when the failure
                    is transient (lock held, mirror unreachable)
    reboot          never / if_required / always: journal the boot id, run the
                    reboot command, stop; the next start continues here
    smoke_test
    post_hook
    verify_versions the package database has the targets

A failed install, smoke test or verification rolls back: fs_snapshot.restore
when the job has one, else the kept files of the old versions, the
repository for anything not kept, and removal of what the job added; then the
snapshot's versions are checked against the package database.

A "rollback" job (the server undoing a finished rollout) moves packages to
the versions it lists (null: remove), from the rollout's kept files when
they are here, else from the repository.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, Sequence, TypeVar

from patchwarden.agent.errors import StateError
from patchwarden.agent.journal import Journal
from patchwarden.agent.pkgmgr import PackageManager, PackageManagerError, Target, backend, detect
from patchwarden.agent.smoke import CommandOutcome, run_argv, run_smoke_test
from patchwarden.agent.state import write_atomic
from patchwarden.protocol.jobs import MAX_LOG, STEPS
from patchwarden.protocol.v1 import PROTOCOL_VERSION

BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"
DEFAULT_REBOOT_COMMAND = ("systemctl", "reboot")
KEPT_DIR = "kept"
MANIFEST = "manifest.json"
HOOK_TIMEOUT = 600.0  # seconds for a hook or snapshot command
REBOOT_COMMAND_TIMEOUT = 120.0
# After asking for a reboot, a start that still sees the old boot id within
# this many seconds waits (the reboot may be under way); later, the reboot is
# taken as not having happened.
REBOOT_GRACE = 600.0
MIB = 1024 * 1024

log = logging.getLogger("patchwarden.agent")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def parse_time(text: str) -> datetime:
    """An ISO-8601 time; "Z" and a missing zone both mean UTC."""
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def truncate_log(text: str, limit: int = MAX_LOG) -> str:
    """The end of the log (where the errors are), at most `limit` characters."""
    if len(text) <= limit:
        return text
    marker = "[... earlier log cut ...]\n"
    return marker + text[len(text) - limit + len(marker) :]


def read_boot_id(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as handle:
            text = handle.read(200).decode("ascii", errors="replace").strip()
    except OSError:
        return None
    return text or None


class RebootStarted(Exception):
    """The host is rebooting (or about to) for a job: stop working; the next
    start continues the job from its journal."""

    def __init__(self, job_id: int) -> None:
        super().__init__("rebooting for job %d" % job_id)
        self.job_id = job_id


class _Outcome(Protocol):
    @property
    def ok(self) -> bool: ...

    @property
    def transient(self) -> bool: ...


OutcomeT = TypeVar("OutcomeT", bound=_Outcome)


class _Stop(Exception):
    """A step decided the job's fate."""

    def __init__(
        self,
        phase: str,
        error: str,
        *,
        status: str = "failed",
        transient: bool = False,
        rollback: bool = False,
    ) -> None:
        super().__init__(error)
        self.phase = phase
        self.error = error
        self.status = status
        self.transient = transient
        self.rollback = rollback


def refused_result(
    job_id: int, attempt: int, error: str, now: datetime, phase: str = "verify"
) -> Dict[str, Any]:
    """The RESULT of a job that was not run at all."""
    return {
        "protocol": PROTOCOL_VERSION,
        "job_id": job_id,
        "attempt": attempt,
        "status": "refused",
        "phase": phase,
        "transient": False,
        "error": error,
        "started_at": iso(now),
        "finished_at": iso(now),
        "before": {},
        "after": {},
        "smoke_tests": [],
        "reboot": {"performed": False, "boot_id_before": None, "boot_id_after": None},
        "rollback": None,
        "log": truncate_log("refused: %s\n" % error),
    }


class _Run:
    """One job being worked on: its journal entry and package manager."""

    def __init__(self, entry: Dict[str, Any], journal: Journal, clock: Clock) -> None:
        self.entry = entry
        self.journal = journal
        self.clock = clock
        self.manager: Optional[PackageManager] = None

    @property
    def job(self) -> Dict[str, Any]:
        job: Dict[str, Any] = self.entry["job"]
        return job

    @property
    def pm(self) -> PackageManager:
        assert self.manager is not None, "no package manager yet"
        return self.manager

    def phase(self, phase: str) -> None:
        self.entry["phase"] = phase
        self.save()

    def save(self) -> None:
        self.journal.save(self.entry)

    def log(self, text: str) -> None:
        line = "%s %s\n" % (iso(self.clock()), text.rstrip())
        # Keep the journal bounded too; the result gets the end anyway.
        self.entry["log"] = truncate_log(self.entry.get("log", "") + line, 2 * MAX_LOG)

    def names(self) -> List[str]:
        """Every package this job looks at: the snapshot's and the targets'."""
        names = set(self.entry.get("before") or {})
        names.update(t["name"] for t in self.job["targets"])
        names.update(self.job.get("remove") or [])
        return sorted(names)

    def desired(self) -> Dict[str, Optional[str]]:
        wanted: Dict[str, Optional[str]] = {t["name"]: t["version"] for t in self.job["targets"]}
        for name in self.job.get("remove") or []:
            wanted[name] = None
        return wanted


class JobExecutor:
    """Runs verified jobs on one root with one state directory.

    `manager_factory(name)` builds the package manager for a job's
    "package_manager" (None: detect); `clock` and `sleep` are injected so
    tests control expiry and backoff.
    """

    def __init__(
        self,
        state_path: str,
        root: str = "/",
        *,
        reboot_command: Sequence[str] = DEFAULT_REBOOT_COMMAND,
        boot_id_file: str = BOOT_ID_FILE,
        manager_factory: Optional[Callable[[Optional[str]], Optional[PackageManager]]] = None,
        clock: Clock = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        hook_timeout: float = HOOK_TIMEOUT,
    ) -> None:
        if not reboot_command or not all(isinstance(a, str) and a for a in reboot_command):
            raise ValueError("the reboot command must be a non-empty list of strings")
        self.state_path = os.path.abspath(state_path)
        self.root = os.path.abspath(root)
        self.journal = Journal(self.state_path)
        self.reboot_command = list(reboot_command)
        self.boot_id_file = boot_id_file
        self.manager_factory = manager_factory or self._default_manager
        self.clock = clock
        self.sleep = sleep
        self.hook_timeout = hook_timeout

    def _default_manager(self, name: Optional[str]) -> Optional[PackageManager]:
        return backend(name, self.root) if name else detect(self.root)

    # -- entry points ----------------------------------------------------------------

    def run(self, job: Dict[str, Any]) -> Dict[str, Any]:
        """Run a verified job (protocol.jobs.verify_envelope) and return its
        RESULT. A job this journal already finished is not run again: its
        stored result comes back. Raises RebootStarted when the host reboots."""
        existing = self.journal.load(job["job_id"])
        if existing is not None and existing["job"].get("attempt") == job["attempt"]:
            if existing.get("state") == "finished":
                log.info("job %d was already done; resending its result", job["job_id"])
                result: Dict[str, Any] = existing["result"]
                return result
            return self.resume(existing)
        now = self.clock()
        entry: Dict[str, Any] = {
            "job": job,
            "state": "running",
            "phase": "verify",
            "started_at": iso(now),
            "before": {},
            "added": [],
            "failure": None,
            "reboot": None,
            "smoke_tests": [],
            "rollback": None,
            "log": "",
            "result": None,
            "reported": False,
        }
        run = _Run(entry, self.journal, self.clock)
        run.log("job %d attempt %d (%s) started" % (job["job_id"], job["attempt"], job["action"]))
        try:
            expires = parse_time(job["expires_at"])
        except ValueError:
            return self._finish(run, "refused", "verify", "expires_at is not an ISO-8601 time")
        if expires < now:
            return self._finish(run, "refused", "verify", "job expired at %s" % job["expires_at"])
        run.save()
        return self._drive(run, "pre_check")

    def recover(self) -> List[Dict[str, Any]]:
        """Finish or roll back every job a previous run left unfinished;
        their results (jobs still waiting for a reboot are skipped)."""
        results = []
        for entry in self.journal.unfinished():
            try:
                results.append(self.resume(entry))
            except RebootStarted:
                log.info("job %d waits for its reboot", entry["job"]["job_id"])
        return results

    def resume(self, entry: Dict[str, Any]) -> Dict[str, Any]:
        """Continue a journaled job from the true state of the package database."""
        run = _Run(entry, self.journal, self.clock)
        phase = entry.get("phase", "verify")
        run.log("continuing after an interruption in phase %s" % phase)
        if phase in ("verify", "pre_check", "snapshot", "pre_hook"):
            self._attach_manager(run, quiet=True)
            return self._finish(
                run,
                "failed",
                phase,
                "the agent stopped during %s, before the install began; nothing was changed"
                % phase,
                transient=True,
            )
        try:
            self._attach_manager(run)
        except _Stop as stop:
            return self._finish(run, "rollback_failed", "rollback", stop.error)
        if phase == "install":
            current = self._current(run)
            if all(current.get(n) == v for n, v in run.desired().items()):
                run.log("the install had completed: %s" % _versions(current))
                return self._drive(run, "reboot")
            if self._is_install(run) and current != self._before(run):
                failure = _Stop("install", "the install was interrupted (%s)" % _versions(current))
                return self._rollback(run, failure)
            return self._finish(
                run, "failed", "install", "the install was interrupted", transient=True
            )
        if phase in ("reboot", "smoke_test", "post_hook", "verify_versions"):
            return self._drive(run, phase)
        if phase == "rollback":
            stored = entry.get("failure") or {}
            failure = _Stop(
                str(stored.get("phase") or "install"),
                str(stored.get("error") or "interrupted"),
                transient=bool(stored.get("transient")),
            )
            return self._rollback(run, failure)
        return self._finish(run, "succeeded", "done", None)

    def release(self, rollout_id: int) -> None:
        """The rollout is finished for good: drop its kept package files (and
        its file-system snapshot, when the job made one)."""
        directory = self.kept_dir(int(rollout_id))
        manifest = self._manifest(int(rollout_id))
        delete = manifest.get("__fs_snapshot_delete__")
        if isinstance(delete, list) and delete:
            outcome = run_argv([str(a) for a in delete], self.hook_timeout)
            if not outcome.ok:
                log.warning("fs snapshot delete for rollout %d failed: %s", rollout_id, outcome)
        shutil.rmtree(directory, ignore_errors=True)

    def kept_rollouts(self) -> List[int]:
        """Rollouts whose kept files (or snapshot) this agent still holds."""
        try:
            names = os.listdir(os.path.join(self.state_path, KEPT_DIR))
        except FileNotFoundError:
            return []
        return sorted(int(name) for name in names if name.isdigit())

    def kept_dir(self, rollout_id: int) -> str:
        return os.path.join(self.state_path, KEPT_DIR, "%d" % int(rollout_id))

    # -- the steps -------------------------------------------------------------------

    STEPS = STEPS  # the protocol's order of steps

    def _drive(self, run: _Run, start: str) -> Dict[str, Any]:
        try:
            if run.manager is None:
                self._attach_manager(run)
            for phase in self.STEPS[self.STEPS.index(start) :]:
                run.phase(phase)
                getattr(self, "_step_" + phase)(run)
        except (PackageManagerError, OSError) as exc:
            # An error raised rather than returned (a tool missing, a refused
            # spec, an unreadable database) ends the step it happened in.
            phase = run.entry.get("phase", start)
            after_install = phase in ("install", "smoke_test", "verify_versions")
            return self._decide(run, _Stop(phase, str(exc), rollback=after_install))
        except _Stop as stop:
            return self._decide(run, stop)
        run.phase("done")
        return self._finish(run, "succeeded", "done", None)

    def _decide(self, run: _Run, stop: _Stop) -> Dict[str, Any]:
        if stop.rollback and self._is_install(run):
            return self._rollback(run, stop)
        return self._finish(run, stop.status, stop.phase, stop.error, transient=stop.transient)

    def _attach_manager(self, run: _Run, quiet: bool = False) -> None:
        try:
            manager = self.manager_factory(run.job.get("package_manager"))
        except PackageManagerError as exc:
            if quiet:
                return
            raise _Stop("pre_check", str(exc), status="refused") from exc
        if manager is None:
            if quiet:
                return
            raise _Stop("pre_check", "no supported package manager found", status="refused")
        manager.timeout = float(run.job["timeout"])
        run.manager = manager

    def _step_pre_check(self, run: _Run) -> None:
        checks = run.job["pre_checks"]
        min_free = int(checks.get("min_free_mb", 0))
        if min_free:
            where = os.path.join(self.root, "var")
            if not os.path.isdir(where):
                where = self.root
            info = os.statvfs(where)
            free = info.f_bavail * info.f_frsize // MIB
            if free < min_free:
                raise _Stop(
                    "pre_check",
                    "only %d MiB free under %s, the job needs %d" % (free, where, min_free),
                    status="refused",
                )
            run.log("%d MiB free under %s" % (free, where))
        if checks.get("check_lock"):
            retry = run.job["retry"]
            backoff = float(retry["initial_backoff"])
            for attempt in range(1, int(retry["max_attempts"]) + 1):
                if not run.pm.lock_held():
                    break
                if attempt == retry["max_attempts"]:
                    raise _Stop(
                        "pre_check",
                        "the package manager's lock is held by another process",
                        status="refused",
                        transient=True,
                    )
                run.log("package manager lock held; waiting %.1f s" % backoff)
                self.sleep(backoff)
                backoff = min(backoff * 2, float(retry["max_backoff"]))
        if checks.get("refuse_pending_reboot") and run.pm.reboot_required():
            raise _Stop("pre_check", "a reboot is pending from earlier changes", status="refused")

    def _step_snapshot(self, run: _Run) -> None:
        if not self._is_install(run):
            run.entry["before"] = self._installed_or_none(run, sorted(run.desired()))
            run.log("before: %s" % _versions(run.entry["before"]))
            return
        targets = self._targets(run)
        plan = self._with_retries(run, "check", lambda: run.pm.check(targets))
        if not plan.ok:
            run.log(plan.result.output)
            raise _Stop(
                "snapshot",
                "check mode refused the transaction: %s" % _last_line(plan.result.output),
                transient=plan.transient,
            )
        names = sorted({c.name for c in plan.changes} | {t.name for t in targets})
        before = self._installed_or_none(run, names)
        run.entry["before"] = before
        run.entry["added"] = sorted(n for n in names if before[n] is None)
        run.log("snapshot: %s; new: %s" % (_versions(before), ", ".join(run.entry["added"])))
        manifest = self._manifest(run.job["rollout_id"])
        for name, version in sorted(before.items()):
            if version is None or name in manifest:
                continue  # nothing to keep, or the rollout's first version is kept already
            kept = self._keep(run, name, version)
            if kept:
                manifest[name] = {"version": version, "file": os.path.basename(kept)}
        snapshot = run.job.get("fs_snapshot")
        if snapshot and snapshot.get("delete"):
            manifest["__fs_snapshot_delete__"] = snapshot["delete"]
        self._save_manifest(run.job["rollout_id"], manifest)
        run.save()
        if snapshot:
            outcome = self._command(run, snapshot["create"])
            if not outcome.ok:
                raise _Stop("snapshot", "fs_snapshot.create failed: %s" % outcome.describe())

    def _keep(self, run: _Run, name: str, version: str) -> Optional[str]:
        """A copy of the package file of `name` at `version` in the rollout's
        kept directory: the package cache's, else a repack of the installed one."""
        directory = self.kept_dir(run.job["rollout_id"])
        os.makedirs(directory, mode=0o700, exist_ok=True)
        try:
            cached = run.pm.cached_package_file(name, version)
            if cached:
                target = os.path.join(directory, os.path.basename(cached))
                shutil.copyfile(cached, target + ".part")
                os.replace(target + ".part", target)
                run.log("kept %s %s from the package cache" % (name, version))
                return target
            repacked = run.pm.repack(name, directory)
            if repacked:
                run.log("kept %s %s (repacked from the installed files)" % (name, version))
                return repacked
        except (PackageManagerError, OSError) as exc:
            run.log("cannot keep %s %s: %s" % (name, version, exc))
            return None
        run.log("no package file of %s %s to keep; rollback needs the repository" % (name, version))
        return None

    def _step_pre_hook(self, run: _Run) -> None:
        hook = run.job.get("pre_hook")
        if hook:
            outcome = self._command(run, hook)
            if not outcome.ok:
                raise _Stop("pre_hook", "pre_hook failed: %s" % _last_line(outcome.describe()))

    def _step_install(self, run: _Run) -> None:
        if not self._is_install(run):
            error = self._restore(run, run.desired())
            if error:
                raise _Stop("install", error)
            return
        targets = self._targets(run)
        try:
            result = self._with_retries(run, "install", lambda: run.pm.install(targets))
        except PackageManagerError as exc:
            raise _Stop("install", str(exc), rollback=True) from exc
        run.log(result.output)
        if result.ok:
            return
        changed = self._current(run) != self._before(run)
        raise _Stop(
            "install",
            "install failed: %s" % _last_line(result.output),
            transient=result.transient,
            rollback=changed,
        )

    def _step_reboot(self, run: _Run) -> None:
        policy = run.job["reboot"]
        reboot = run.entry.get("reboot")
        if reboot and reboot.get("requested_at"):
            now_id = read_boot_id(self.boot_id_file)
            if now_id is not None and now_id != reboot.get("boot_id_before"):
                reboot.update(performed=True, boot_id_after=now_id)
                run.log("rebooted: boot id %s -> %s" % (reboot.get("boot_id_before"), now_id))
                run.save()
                return
            if not reboot.get("performed") and reboot.get("boot_id_after") is None:
                asked = parse_time(reboot["requested_at"])
                if (self.clock() - asked).total_seconds() < REBOOT_GRACE:
                    raise RebootStarted(run.job["job_id"])
                reboot.update(performed=False, boot_id_after=now_id)
                run.log("the host did not reboot (boot id unchanged); continuing")
                run.save()
            return
        needed = policy == "always" or (policy == "if_required" and run.pm.reboot_required())
        if not needed:
            run.entry["reboot"] = {
                "performed": False,
                "boot_id_before": None,
                "boot_id_after": None,
            }
            return
        boot_id = read_boot_id(self.boot_id_file)
        run.entry["reboot"] = {
            "performed": False,
            "boot_id_before": boot_id,
            "boot_id_after": None,
            "requested_at": iso(self.clock()),
        }
        run.log("rebooting (policy %s, boot id %s)" % (policy, boot_id))
        run.save()  # the journal says "reboot" before the machine goes down
        outcome = self._command(run, self.reboot_command, timeout=REBOOT_COMMAND_TIMEOUT)
        if not outcome.ok:
            run.entry["reboot"].update(boot_id_after=boot_id)
            run.log("the reboot command failed; continuing without a reboot")
            run.save()
            return
        raise RebootStarted(run.job["job_id"])

    def _step_smoke_test(self, run: _Run) -> None:
        outcomes = []
        for test in run.job["smoke_tests"]:
            outcome = run_smoke_test(test, self._job_env(run))
            run.log(
                "smoke test %s: %s - %s"
                % (outcome.name, "ok" if outcome.ok else "FAILED", outcome.detail)
            )
            outcomes.append(outcome)
        run.entry["smoke_tests"] = [o.as_dict() for o in outcomes]
        failed = [o for o in outcomes if not o.ok]
        if failed:
            raise _Stop(
                "smoke_test",
                "smoke test %s failed: %s" % (failed[0].name, _last_line(failed[0].detail)),
                rollback=True,
            )

    def _step_post_hook(self, run: _Run) -> None:
        hook = run.job.get("post_hook")
        if hook:
            outcome = self._command(run, hook)
            if not outcome.ok:
                raise _Stop("post_hook", "post_hook failed: %s" % _last_line(outcome.describe()))

    def _step_verify_versions(self, run: _Run) -> None:
        current = self._current(run)
        wrong = {n: current.get(n) for n, v in run.desired().items() if current.get(n) != v}
        if wrong:
            raise _Stop(
                "verify_versions",
                "the package database disagrees with the targets: %s" % _versions(wrong),
                rollback=True,
            )

    # -- rollback --------------------------------------------------------------------

    def _rollback(self, run: _Run, failure: _Stop) -> Dict[str, Any]:
        run.entry["failure"] = {
            "phase": failure.phase,
            "error": failure.error,
            "transient": failure.transient,
        }
        run.phase("rollback")
        run.log("rolling back: %s" % failure.error)
        before = self._before(run)
        snapshot = run.job.get("fs_snapshot")
        method = "fs_snapshot" if snapshot else "packages"
        error: Optional[str] = None
        try:
            if snapshot:
                outcome = self._command(run, snapshot["restore"])
                if not outcome.ok:
                    error = "fs_snapshot.restore failed: %s" % _last_line(outcome.describe())
            else:
                error = self._restore(run, before)
            current = self._current(run)
        except (PackageManagerError, OSError) as exc:
            error, current = str(exc), {}
        versions = {name: current.get(name) for name in before}
        verified = error is None and versions == before
        run.entry["rollback"] = {"method": method, "verified": verified, "versions": versions}
        if verified:
            run.log("rolled back and verified: %s" % _versions(versions))
            return self._finish(
                run, "rolled_back", failure.phase, failure.error, transient=failure.transient
            )
        detail = error or "the package database shows %s" % _versions(versions)
        run.log("rollback failed: %s" % detail)
        return self._finish(
            run, "rollback_failed", "rollback", "%s; rollback failed: %s" % (failure.error, detail)
        )

    def _restore(self, run: _Run, desired: Mapping[str, Optional[str]]) -> Optional[str]:
        """Move packages to `desired` ({name: version or None to remove}):
        kept files first, the repository for the rest, then removals. The
        reason when something failed, else None."""
        manifest = self._manifest(run.job["rollout_id"])
        directory = self.kept_dir(run.job["rollout_id"])
        current = self._current(run, desired)
        files: List[str] = []
        from_repository: List[Target] = []
        for name, version in sorted(desired.items()):
            if version is None or current.get(name) == version:
                continue
            kept = manifest.get(name)
            path = os.path.join(directory, str(kept.get("file"))) if isinstance(kept, dict) else ""
            if isinstance(kept, dict) and kept.get("version") == version and os.path.isfile(path):
                files.append(path)
            else:
                from_repository.append(Target(name, version))
        errors: List[str] = []
        if files:
            run.log("installing kept files: %s" % ", ".join(os.path.basename(f) for f in files))
            result = self._with_retries(run, "install_files", lambda: run.pm.install_files(files))
            run.log(result.output)
            if not result.ok:
                errors.append("installing the kept files failed: %s" % _last_line(result.output))
        if from_repository:
            run.log("installing from the repository: %s" % ", ".join(map(_spec, from_repository)))
            result = self._with_retries(run, "install", lambda: run.pm.install(from_repository))
            run.log(result.output)
            if not result.ok:
                errors.append(
                    "installing from the repository failed: %s" % _last_line(result.output)
                )
        present = self._current(run, desired)
        remove = sorted(n for n, v in desired.items() if v is None and n in present)
        if remove:
            run.log("removing %s" % ", ".join(remove))
            result = self._with_retries(run, "remove", lambda: run.pm.remove(remove))
            run.log(result.output)
            if not result.ok:
                errors.append(
                    "removing %s failed: %s" % (", ".join(remove), _last_line(result.output))
                )
        return "; ".join(errors) or None

    # -- helpers ---------------------------------------------------------------------

    def _with_retries(self, run: _Run, what: str, call: Callable[[], OutcomeT]) -> OutcomeT:
        retry = run.job["retry"]
        attempts = int(retry["max_attempts"])
        backoff = float(retry["initial_backoff"])
        attempt = 1
        while True:
            outcome = call()
            if outcome.ok or not outcome.transient or attempt >= attempts:
                return outcome
            run.log(
                "%s failed transiently (attempt %d of %d); retrying in %.1f s"
                % (what, attempt, attempts, backoff)
            )
            self.sleep(backoff)
            backoff = min(backoff * 2, float(retry["max_backoff"]))
            attempt += 1

    def _job_env(self, run: _Run) -> Dict[str, str]:
        """What hooks and smoke tests learn of the job, e.g. the root to look in."""
        return {
            "PATCHWARDEN_JOB_ID": str(run.job["job_id"]),
            "PATCHWARDEN_ROLLOUT_ID": str(run.job["rollout_id"]),
            "PATCHWARDEN_PHASE": str(run.entry.get("phase")),
            "PATCHWARDEN_ROOT": self.root,
        }

    def _command(
        self, run: _Run, argv: Sequence[str], timeout: Optional[float] = None
    ) -> CommandOutcome:
        outcome = run_argv(list(argv), timeout or self.hook_timeout, self._job_env(run))
        run.log(outcome.describe())
        return outcome

    def _is_install(self, run: _Run) -> bool:
        return bool(run.job["action"] == "install")

    def _targets(self, run: _Run) -> List[Target]:
        return [Target(t["name"], t["version"], t.get("arch")) for t in run.job["targets"]]

    def _before(self, run: _Run) -> Dict[str, Optional[str]]:
        before: Dict[str, Optional[str]] = dict(run.entry.get("before") or {})
        return before

    def _installed_or_none(self, run: _Run, names: Sequence[str]) -> Dict[str, Optional[str]]:
        installed = run.pm.installed(names) if names else {}
        return {name: installed.get(name) for name in names}

    def _current(
        self, run: _Run, names: Optional[Mapping[str, Any]] = None
    ) -> Dict[str, Optional[str]]:
        wanted = sorted(names) if names is not None else run.names()
        return self._installed_or_none(run, wanted)

    def _manifest(self, rollout_id: int) -> Dict[str, Any]:
        path = os.path.join(self.kept_dir(rollout_id), MANIFEST)
        try:
            with open(path, "rb") as handle:
                data = json.loads(handle.read().decode("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("kept-file manifest %s is unreadable: %s", path, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def _save_manifest(self, rollout_id: int, manifest: Dict[str, Any]) -> None:
        directory = self.kept_dir(rollout_id)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        data = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
        try:
            write_atomic(os.path.join(directory, MANIFEST), data)
        except OSError as exc:
            raise StateError("cannot write the kept-file manifest: %s" % exc) from exc

    def _finish(
        self,
        run: _Run,
        status: str,
        phase: str,
        error: Optional[str],
        transient: bool = False,
    ) -> Dict[str, Any]:
        entry = run.entry
        after: Dict[str, Optional[str]] = {}
        if run.manager is not None:
            try:
                after = self._current(run)
            except (PackageManagerError, OSError) as exc:
                run.log("cannot read the package database: %s" % exc)
        if error:
            run.log("%s in %s: %s" % (status, phase, error))
        else:
            run.log(status)
        reboot = entry.get("reboot") or {}
        result = {
            "protocol": PROTOCOL_VERSION,
            "job_id": run.job["job_id"],
            "attempt": run.job["attempt"],
            "status": status,
            "phase": phase,
            "transient": bool(transient),
            "error": error,
            "started_at": entry.get("started_at") or iso(self.clock()),
            "finished_at": iso(self.clock()),
            "before": self._before(run),
            "after": after,
            "smoke_tests": entry.get("smoke_tests") or [],
            "reboot": {
                "performed": bool(reboot.get("performed")),
                "boot_id_before": reboot.get("boot_id_before"),
                "boot_id_after": reboot.get("boot_id_after"),
            },
            "rollback": entry.get("rollback"),
            "log": truncate_log(entry.get("log", "")),
        }
        entry["state"] = "finished"
        entry["phase"] = phase
        entry["result"] = result
        run.save()
        return result


def _spec(target: Target) -> str:
    return "%s=%s" % (target.name, target.version)


def _versions(versions: Mapping[str, Optional[str]]) -> str:
    if not versions:
        return "(none)"
    return ", ".join("%s %s" % (n, v or "(absent)") for n, v in sorted(versions.items()))


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().split("\n") if line.strip()]
    return lines[-1][:500] if lines else "(no output)"
