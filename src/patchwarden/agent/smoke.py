"""Commands a job runs besides the package manager (hooks, snapshots, the
reboot) and the smoke tests that decide whether an update is kept.

Everything is an argument list run without a shell, with the fixed command
environment, its own process group (a timeout ends the whole tree) and a
timeout. Smoke tests never raise: a test that cannot even start has failed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence

from patchwarden.agent.host import COMMAND_ENV

OUTPUT_LIMIT = 4096  # characters of a command's output kept for the job log
KILL_GRACE = 5.0


@dataclass(frozen=True)
class CommandOutcome:
    argv: Sequence[str]
    exit_code: Optional[int]  # None: not found, or killed after the timeout
    output: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def describe(self) -> str:
        if self.timed_out:
            status = "timed out"
        elif self.exit_code is None:
            status = "could not run"
        else:
            status = "exit %d" % self.exit_code
        text = "$ %s -> %s" % (" ".join(self.argv), status)
        output = self.output.strip()
        return text + ("\n" + output if output else "")


@dataclass(frozen=True)
class SmokeOutcome:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def _tail(text: str, limit: int = OUTPUT_LIMIT) -> str:
    return text if len(text) <= limit else "[...]" + text[-limit:]


def run_argv(
    argv: Sequence[str], timeout: float, env: Optional[Mapping[str, str]] = None
) -> CommandOutcome:
    """Run argv (never through a shell) with stdout and stderr together."""
    full_env = dict(COMMAND_ENV)
    full_env.update(env or {})
    argv = [str(a) for a in argv]
    program = argv[0] if os.path.isabs(argv[0]) else shutil.which(argv[0], path=full_env["PATH"])
    if program is None or not os.path.isfile(program):
        return CommandOutcome(argv, None, "%s: not found" % argv[0])
    try:
        process = subprocess.Popen(
            [program, *argv[1:]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=True,  # its own process group: a timeout ends it all
        )
    except OSError as exc:
        return CommandOutcome(argv, None, "%s: %s" % (argv[0], exc))
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
                process.wait(timeout=KILL_GRACE)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        try:
            out, _ = process.communicate(timeout=KILL_GRACE)
        except subprocess.TimeoutExpired:  # a daemonised grandchild holds the pipe
            out = b""
        text = out.decode("utf-8", errors="replace")
        return CommandOutcome(argv, None, _tail(text), timed_out=True)
    return CommandOutcome(argv, process.returncode, _tail(out.decode("utf-8", errors="replace")))


def _command(
    test: Mapping[str, Any], argv: Sequence[str], env: Optional[Mapping[str, str]] = None
) -> SmokeOutcome:
    outcome = run_argv(argv, float(test["timeout"]), env)
    return SmokeOutcome(test["name"], outcome.ok, outcome.describe())


def _http(test: Mapping[str, Any]) -> SmokeOutcome:
    expected = int(test.get("expect_status", 200))
    # No proxies from the environment: the test is about this host's service.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(test["url"], timeout=float(test["timeout"])) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return SmokeOutcome(test["name"], False, "GET %s failed: %s" % (test["url"], reason))
    ok = status == expected
    return SmokeOutcome(
        test["name"], ok, "GET %s -> HTTP %d (expected %d)" % (test["url"], status, expected)
    )


def _tcp(test: Mapping[str, Any]) -> SmokeOutcome:
    where = "%s:%d" % (test["host"], test["port"])
    try:
        with socket.create_connection((test["host"], test["port"]), timeout=float(test["timeout"])):
            pass
    except OSError as exc:
        return SmokeOutcome(test["name"], False, "connect to %s failed: %s" % (where, exc))
    return SmokeOutcome(test["name"], True, "connected to %s" % where)


def _systemd(test: Mapping[str, Any]) -> SmokeOutcome:
    outcome = run_argv(["systemctl", "is-active", "--", test["unit"]], float(test["timeout"]))
    state = outcome.output.strip().split("\n")[-1] if outcome.output.strip() else ""
    ok = outcome.ok and state == "active"
    return SmokeOutcome(test["name"], ok, "%s is %s" % (test["unit"], state or "unknown"))


def _script(test: Mapping[str, Any], env: Optional[Mapping[str, str]] = None) -> SmokeOutcome:
    path = test["path"]
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        return SmokeOutcome(test["name"], False, "%s is not an executable file" % path)
    return _command(test, [path], env)


def run_smoke_test(
    test: Mapping[str, Any], env: Optional[Mapping[str, str]] = None
) -> SmokeOutcome:
    """One smoke test (a SMOKE document of protocol/jobs.py, already validated).
    Commands and scripts also get `env` (the job's PATCHWARDEN_* variables)."""
    kind = test.get("kind")
    try:
        if kind == "command":
            return _command(test, test["argv"], env)
        if kind == "systemd":
            return _systemd(test)
        if kind == "http":
            return _http(test)
        if kind == "tcp":
            return _tcp(test)
        if kind == "script":
            return _script(test, env)
    except Exception as exc:  # a smoke test's failure, whatever it is, is a failed test
        return SmokeOutcome(str(test.get("name")), False, "%s: %s" % (type(exc).__name__, exc))
    return SmokeOutcome(str(test.get("name")), False, "unknown smoke test kind %r" % kind)
