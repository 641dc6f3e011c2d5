"""Protocol version 1: rollout jobs between the server and the agent (stdlib only).

A *job* is one asset's unit of work in a rollout. The server signs every job
with its Ed25519 job-signing key; the agent pins the public key when it
enrols and refuses any job whose signature does not verify, whose asset is not
its own, or that has expired. Nothing in a job is ever run through a shell:
hooks and command smoke tests are argument lists.

Poll:    POST /api/v1/agent/jobs/poll   (Authorization: Bearer <credential>)
         {"protocol": 1, "asset_id": int, "running": [job_id, ...]}
         -> 200 {"jobs": [envelope, ...], "release": [rollout_id, ...],
                 "poll_interval": int}
         An envelope is {"job": {...}, "signature": base64, "key_id": str}.
         A job stays in "jobs" until the agent reports its result, so a lost
         answer only means the same job (same id and attempt) comes again;
         the agent's journal makes a second delivery a no-op. "release" lists
         finished rollouts whose kept package files the agent may delete.
Start:   POST /api/v1/agent/jobs/{job_id}/start  {"protocol": 1, "attempt": int}
         -> 200 {"status": "running"}  (409 when the job was cancelled)
Result:  POST /api/v1/agent/jobs/{job_id}/result  (RESULT below)
         -> 200 {"status": "recorded", "duplicate": bool}
         The first result of an attempt is stored; a repeat is acknowledged
         and changes nothing, so the agent can resend until it hears back.
Key:     GET /api/v1/agent/signing-key -> {"key_id": str, "public_key": base64}
         (for agents enrolled before jobs existed; new ones get it at enrolment
         as "job_signing_key" and "job_signing_key_id").

JOB (the signed document):
    {"protocol": 1, "job_id": int, "attempt": int, "rollout_id": int,
     "asset_id": int, "action": "install" | "rollback",
     "issued_at": ISO-8601, "expires_at": ISO-8601,
     "package_manager": "apt" | "dnf" | "zypper" | "apk" | null (detect),
     "targets": [{"name": str, "version": str, "arch": str | null}, ...],
        for "rollback": the versions to go back to; version null = remove
        (a package the install added)
     "remove": [name, ...]   packages to remove (rollback of added packages)
     "reboot": "never" | "if_required" | "always",
     "pre_checks": {"min_free_mb": int, "check_lock": bool,
                    "refuse_pending_reboot": bool},
     "fs_snapshot": null | {"create": [argv], "restore": [argv], "delete": [argv]},
     "pre_hook": null | [argv], "post_hook": null | [argv],
     "smoke_tests": [SMOKE, ...],
     "retry": {"max_attempts": int, "initial_backoff": number,
               "max_backoff": number},
     "timeout": int (seconds for the whole install step)}

SMOKE (each with "name" and "timeout" seconds):
    {"kind": "command", "argv": [str, ...]}         exit code 0 passes
    {"kind": "systemd", "unit": str}                `systemctl is-active` says active
    {"kind": "http", "url": str, "expect_status": int}
    {"kind": "tcp", "host": str, "port": int}
    {"kind": "script", "path": str}                 an executable file, no arguments

RESULT:
    {"protocol": 1, "job_id": int, "attempt": int,
     "status": "succeeded" | "failed" | "rolled_back" | "rollback_failed" | "refused",
     "phase": the phase that decided the status (see PHASES),
     "transient": bool (a retryable failure that exhausted its retries),
     "error": str | null,
     "started_at": ISO-8601, "finished_at": ISO-8601,
     "before": {name: version | null}, "after": {name: version | null},
     "smoke_tests": [{"name": str, "ok": bool, "detail": str}],
     "reboot": {"performed": bool, "boot_id_before": str | null,
                "boot_id_after": str | null},
     "rollback": null | {"method": "packages" | "fs_snapshot",
                         "verified": bool, "versions": {name: version | null}},
     "log": str (at most MAX_LOG characters, the end kept)}

"succeeded": the targets are installed and every smoke test passed.
"failed": nothing needed undoing, or there was nothing to roll back to.
"rolled_back": the install or a smoke test failed, and the snapshot's versions
are back (verified against the package database).
"rollback_failed": the rollback itself failed or could not be verified.
"refused": the job was not run (bad signature, wrong asset, expired, pre-check).
"""

from __future__ import annotations

import base64
import json
from typing import Any, Dict, List, Mapping, Optional

from patchwarden.protocol import ed25519
from patchwarden.protocol.v1 import ARCH_RE, NAME_RE, PROTOCOL_VERSION, VERSION_RE

POLL_PATH = "/api/v1/agent/jobs/poll"
START_PATH = "/api/v1/agent/jobs/%d/start"
RESULT_PATH = "/api/v1/agent/jobs/%d/result"
SIGNING_KEY_PATH = "/api/v1/agent/signing-key"

ACTIONS = ("install", "rollback")
REBOOT_POLICIES = ("never", "if_required", "always")
SMOKE_KINDS = ("command", "systemd", "http", "tcp", "script")
RESULT_STATUSES = ("succeeded", "failed", "rolled_back", "rollback_failed", "refused")
# The steps of a job, in order; a result's phase is one of them or one of PHASES.
STEPS = (
    "pre_check",
    "snapshot",
    "pre_hook",
    "install",
    "reboot",
    "smoke_test",
    "post_hook",
    "verify_versions",
)
PHASES = ("verify", *STEPS, "rollback", "done")
PACKAGE_MANAGERS = ("apt", "dnf", "zypper", "apk")
MAX_LOG = 16 * 1024
MAX_TARGETS = 500
MAX_SMOKE_TESTS = 20
MAX_ARGV = 64
MAX_ARG_LENGTH = 4096


class JobRefused(Exception):
    """A job the agent must not run: the reason says why."""


def canonical_bytes(document: Mapping[str, Any]) -> bytes:
    """The exact bytes that are signed: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def key_id(public_key: bytes) -> str:
    """A short, stable name of a public key (its first 8 bytes, hex)."""
    import hashlib

    return hashlib.sha256(public_key).hexdigest()[:16]


def verify_envelope(envelope: object, public_key: bytes, asset_id: int) -> Dict[str, Any]:
    """The job inside `envelope` once its signature verifies against
    `public_key`, its asset is `asset_id` and its content is well formed.
    Raises JobRefused with the reason otherwise. Expiry is the caller's check
    (it needs a clock)."""
    if not isinstance(envelope, dict):
        raise JobRefused("job envelope is not an object")
    job, signature = envelope.get("job"), envelope.get("signature")
    if not isinstance(job, dict) or not isinstance(signature, str):
        raise JobRefused("job envelope needs a 'job' object and a 'signature'")
    try:
        raw_signature = base64.b64decode(signature.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise JobRefused("job signature is not base64") from None
    try:
        message = canonical_bytes(job)
    except (TypeError, ValueError) as exc:
        raise JobRefused("job cannot be serialised: %s" % exc) from None
    if not ed25519.verify(public_key, message, raw_signature):
        raise JobRefused("job signature does not verify against the server's key")
    problems = job_problems(job)
    if problems:
        raise JobRefused("malformed job: " + "; ".join(problems[:5]))
    if job["asset_id"] != asset_id:
        raise JobRefused(
            "job is for asset %s, this agent is asset %d" % (job["asset_id"], asset_id)
        )
    return job


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _argv_problem(value: object, where: str) -> Optional[str]:
    if (
        not isinstance(value, list)
        or not value
        or len(value) > MAX_ARGV
        or not all(isinstance(a, str) and 0 < len(a) <= MAX_ARG_LENGTH for a in value)
        or any("\x00" in a for a in value)
    ):
        return "%s must be a non-empty list of at most %d strings" % (where, MAX_ARGV)
    return None


def _smoke_problem(test: object, where: str) -> Optional[str]:
    if not isinstance(test, dict):
        return "%s must be an object" % where
    kind = test.get("kind")
    if kind not in SMOKE_KINDS:
        return "%s.kind must be one of %s" % (where, ", ".join(SMOKE_KINDS))
    if not isinstance(test.get("name"), str) or not test["name"]:
        return "%s.name must be a non-empty string" % where
    timeout = test.get("timeout")
    if (
        not isinstance(timeout, (int, float))
        or isinstance(timeout, bool)
        or not 0 < timeout <= 3600
    ):
        return "%s.timeout must be 1..3600 seconds" % where
    if kind == "command":
        return _argv_problem(test.get("argv"), where + ".argv")
    if kind == "systemd":
        unit = test.get("unit")
        if not isinstance(unit, str) or not NAME_RE.fullmatch(unit):
            return "%s.unit must be a unit name" % where
    if kind == "http":
        url = test.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return "%s.url must be an http(s) URL" % where
        status = test.get("expect_status", 200)
        if not _is_int(status) or not 100 <= status <= 599:
            return "%s.expect_status must be an HTTP status" % where
    if kind == "tcp":
        if not isinstance(test.get("host"), str) or not test["host"]:
            return "%s.host must be a host name or address" % where
        port = test.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            return "%s.port must be 1..65535" % where
    if kind == "script":
        path = test.get("path")
        if not isinstance(path, str) or not path.startswith("/") or "\x00" in path:
            return "%s.path must be an absolute path" % where
    return None


def job_problems(job: Mapping[str, Any]) -> List[str]:
    """Everything wrong with a job document (empty when it is well formed)."""
    problems: List[str] = []
    if job.get("protocol") != PROTOCOL_VERSION:
        problems.append("protocol must be %d" % PROTOCOL_VERSION)
    for field in ("job_id", "attempt", "rollout_id", "asset_id"):
        if not _is_int(job.get(field)) or job[field] < 1:
            problems.append("%s must be a positive integer" % field)
    if job.get("action") not in ACTIONS:
        problems.append("action must be one of " + ", ".join(ACTIONS))
    for field in ("issued_at", "expires_at"):
        if not isinstance(job.get(field), str):
            problems.append("%s must be an ISO-8601 time" % field)
    manager = job.get("package_manager")
    if manager is not None and manager not in PACKAGE_MANAGERS:
        problems.append("package_manager must be one of %s or null" % ", ".join(PACKAGE_MANAGERS))
    targets = job.get("targets")
    if not isinstance(targets, list) or len(targets) > MAX_TARGETS:
        problems.append("targets must be a list of at most %d packages" % MAX_TARGETS)
        targets = []
    for position, target in enumerate(targets):
        where = "targets[%d]" % position
        if not isinstance(target, dict):
            problems.append(where + " must be an object")
            continue
        name, version, arch = target.get("name"), target.get("version"), target.get("arch")
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            problems.append("%s.name %r is not a valid package name" % (where, name))
        # A rollback's null version means "remove" (a package the install added).
        if version is None and job.get("action") == "rollback":
            pass
        elif not isinstance(version, str) or not VERSION_RE.fullmatch(version):
            problems.append("%s.version %r is not a valid version" % (where, version))
        if arch is not None and (not isinstance(arch, str) or not ARCH_RE.fullmatch(arch)):
            problems.append("%s.arch %r is not a valid architecture" % (where, arch))
    remove = job.get("remove", [])
    if not isinstance(remove, list) or not all(
        isinstance(n, str) and NAME_RE.fullmatch(n) for n in remove
    ):
        problems.append("remove must be a list of package names")
    if not targets and not remove:
        problems.append("a job needs targets or packages to remove")
    if job.get("reboot") not in REBOOT_POLICIES:
        problems.append("reboot must be one of " + ", ".join(REBOOT_POLICIES))
    checks = job.get("pre_checks")
    if not isinstance(checks, dict):
        problems.append("pre_checks must be an object")
    else:
        if not _is_int(checks.get("min_free_mb", 0)) or checks.get("min_free_mb", 0) < 0:
            problems.append("pre_checks.min_free_mb must be a non-negative integer")
        for flag in ("check_lock", "refuse_pending_reboot"):
            if not isinstance(checks.get(flag, False), bool):
                problems.append("pre_checks.%s must be true or false" % flag)
    snapshot = job.get("fs_snapshot")
    if snapshot is not None:
        if not isinstance(snapshot, dict) or not {"create", "restore"} <= set(snapshot):
            problems.append("fs_snapshot must have 'create' and 'restore' commands")
        else:
            for step in ("create", "restore", "delete"):
                if step in snapshot:
                    problem = _argv_problem(snapshot[step], "fs_snapshot." + step)
                    if problem:
                        problems.append(problem)
    for hook in ("pre_hook", "post_hook"):
        if job.get(hook) is not None:
            problem = _argv_problem(job[hook], hook)
            if problem:
                problems.append(problem)
    smoke = job.get("smoke_tests")
    if not isinstance(smoke, list) or len(smoke) > MAX_SMOKE_TESTS:
        problems.append("smoke_tests must be a list of at most %d tests" % MAX_SMOKE_TESTS)
    else:
        for position, test in enumerate(smoke):
            problem = _smoke_problem(test, "smoke_tests[%d]" % position)
            if problem:
                problems.append(problem)
    retry = job.get("retry")
    if (
        not isinstance(retry, dict)
        or not _is_int(retry.get("max_attempts"))
        or not 1 <= retry["max_attempts"] <= 10
        or not isinstance(retry.get("initial_backoff"), (int, float))
        or not isinstance(retry.get("max_backoff"), (int, float))
        or not 0 <= retry["initial_backoff"] <= retry["max_backoff"] <= 3600
    ):
        problems.append(
            "retry must be {max_attempts 1..10, 0 <= initial_backoff <= max_backoff <= 3600}"
        )
    if not _is_int(job.get("timeout")) or not 1 <= job["timeout"] <= 86400:
        problems.append("timeout must be 1..86400 seconds")
    return problems


def result_problems(result: Mapping[str, Any]) -> List[str]:
    """Everything wrong with a result document (the server's check)."""
    problems: List[str] = []
    if result.get("protocol") != PROTOCOL_VERSION:
        problems.append("protocol must be %d" % PROTOCOL_VERSION)
    for field in ("job_id", "attempt"):
        if not _is_int(result.get(field)) or result[field] < 1:
            problems.append("%s must be a positive integer" % field)
    if result.get("status") not in RESULT_STATUSES:
        problems.append("status must be one of " + ", ".join(RESULT_STATUSES))
    if result.get("phase") not in PHASES:
        problems.append("phase must be one of " + ", ".join(PHASES))
    for field in ("before", "after"):
        versions = result.get(field, {})
        if not isinstance(versions, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in versions.items()
        ):
            problems.append("%s must map package names to versions or null" % field)
    smoke = result.get("smoke_tests", [])
    if not isinstance(smoke, list) or not all(
        isinstance(t, dict) and isinstance(t.get("ok"), bool) for t in smoke
    ):
        problems.append("smoke_tests must be a list of {name, ok, detail}")
    log = result.get("log", "")
    if not isinstance(log, str) or len(log) > 4 * MAX_LOG:
        problems.append("log must be text of at most %d characters" % (4 * MAX_LOG))
    return problems
