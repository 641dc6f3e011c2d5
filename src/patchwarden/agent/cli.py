"""`patchwarden-agent`: enroll, run, collect.

The one place where errors become exit codes:
    0 ok, 1 transient failure (server unreachable or erroring),
    2 usage or bad local input, 3 refused by the server (bad token, revoked).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator, List, Optional, Sequence

from patchwarden.agent import AGENT_VERSION
from patchwarden.agent.client import AgentClient, decode_public_key, normalize_server_url
from patchwarden.agent.collectors import system
from patchwarden.agent.errors import (
    AgentError,
    CredentialRefusedError,
    NotEnrolledError,
    ServerError,
    ServerUnreachableError,
    StateError,
    UsageError,
)
from patchwarden.agent.host import LocalHost
from patchwarden.agent.inventory import collect_inventory
from patchwarden.agent.jobs import BOOT_ID_FILE, DEFAULT_REBOOT_COMMAND, JobExecutor
from patchwarden.agent.runner import JobAgent, describe, describe_jobs, run_cycle, run_forever
from patchwarden.agent.state import DEFAULT_STATE_DIR, Credentials, StateDir

EXIT_OK = 0
EXIT_TRANSIENT = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_INTERRUPTED = 130  # the shell convention for SIGINT

PROG = "patchwarden-agent"
log = logging.getLogger("patchwarden.agent")


def build_parser() -> argparse.ArgumentParser:
    # --root is accepted before and after the sub-command: the sub-command's
    # copy uses SUPPRESS so it only overrides when actually given.
    parser = argparse.ArgumentParser(prog=PROG, description="Patchwarden inventory agent.")
    parser.add_argument("--version", action="version", version="%(prog)s " + AGENT_VERSION)
    parser.add_argument(
        "--root", default="/", help="collect from this root instead of / (sandbox or image)"
    )
    root_parent = argparse.ArgumentParser(add_help=False)
    root_parent.add_argument("--root", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    enroll = commands.add_parser(
        "enroll", parents=[root_parent], help="register with a server using a one-time token"
    )
    enroll.add_argument("--server", required=True, help="server base URL, https://...")
    enroll.add_argument("--token", required=True, help="one-time enrolment token")
    enroll.add_argument("--state-dir", default=DEFAULT_STATE_DIR)
    enroll.add_argument("--ca-file", help="CA certificate(s) to trust for the server (PEM)")
    enroll.add_argument(
        "--allow-http", action="store_true", help="allow a plain http:// server that is not local"
    )

    run = commands.add_parser(
        "run", parents=[root_parent], help="report inventory and run rollout jobs periodically"
    )
    run.add_argument(
        "--once",
        action="store_true",
        help="finish interrupted jobs, report, run the pending jobs, report again, exit",
    )
    run.add_argument("--state-dir", default=DEFAULT_STATE_DIR)
    run.add_argument(
        "--interval", type=float, help="seconds between reports (default: the server's choice)"
    )
    run.add_argument(
        "--reboot-command",
        default=json.dumps(list(DEFAULT_REBOOT_COMMAND)),
        metavar="JSON",
        help="argv (a JSON list, no shell) a job runs to reboot the host (default: %(default)s)",
    )
    run.add_argument(
        "--boot-id-file",
        default=BOOT_ID_FILE,
        help="file whose content changes with every boot (default: %(default)s)",
    )

    collect = commands.add_parser(
        "collect", parents=[root_parent], help="print the inventory that would be sent"
    )
    collect.add_argument("--format", choices=("json", "summary"), default="json")
    return parser


def _local_host(root: str) -> LocalHost:
    if not os.path.isdir(root):
        raise UsageError("--root %s is not a directory" % root)
    return LocalHost(root)


def cmd_collect(args: argparse.Namespace) -> int:
    inventory = collect_inventory(_local_host(args.root))
    if args.format == "json":
        json.dump(inventory, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
        return EXIT_OK
    facts = inventory["facts"]
    print("hostname: %s" % facts.get("hostname"))
    print("os:       %s" % (facts.get("os") or {}).get("pretty_name"))
    print("kernel:   %s" % facts.get("kernel"))
    print("packages: %d" % len(inventory["packages"]))
    for note in inventory["collector_notes"]:
        line = "  %-15s %s" % (note["collector"], note["status"])
        print(line + (": " + note["message"] if note["message"] else ""))
    return EXIT_OK


def cmd_enroll(args: argparse.Namespace) -> int:
    server = normalize_server_url(args.server, allow_http=args.allow_http)
    ca_file: Optional[str] = None
    if args.ca_file:
        ca_file = os.path.abspath(args.ca_file)
        if not os.path.isfile(ca_file):
            raise UsageError("--ca-file %s does not exist" % args.ca_file)
    facts = system.collect(_local_host(args.root)).facts
    hostname = facts.get("hostname")
    if not hostname:
        raise UsageError("cannot determine this host's name (no /etc/hostname or kernel hostname)")
    state = StateDir(args.state_dir)
    with state.lock():
        client = AgentClient(server, ca_file=ca_file)
        answer = client.enroll(args.token, hostname, facts.get("machine_id"))
        interval = answer.get("report_interval")
        signing_key, signing_key_id = (
            answer.get("job_signing_key"),
            answer.get("job_signing_key_id"),
        )
        if isinstance(signing_key, str):
            decode_public_key(signing_key)  # refuse a malformed key now, not at the first job
        else:
            signing_key = None  # an older server: the key is fetched and pinned on first use
        state.save_credentials(
            Credentials(
                server=server,
                agent_id=answer["agent_id"],
                asset_id=answer["asset_id"],
                credential=answer["credential"],
                ca_file=ca_file,
                report_interval=interval if isinstance(interval, int) and interval > 0 else None,
                job_signing_key=signing_key,
                job_signing_key_id=signing_key_id if isinstance(signing_key_id, str) else None,
            )
        )
        # A new enrolment starts from an empty server-side inventory. The seq
        # counter is kept: it must never go backwards for this machine.
        state.forget_snapshot()
    print(
        "enrolled %s as agent %d (asset %d); state in %s"
        % (hostname, answer["agent_id"], answer["asset_id"], state.path)
    )
    return EXIT_OK


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM/SIGINT end the loop after the current cycle (no half-stored
    state); the previous handlers come back afterwards."""

    def handler(signum: int, frame: Any) -> None:
        log.info("signal %d received; stopping after the current cycle", signum)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _reboot_command(text: str) -> List[str]:
    try:
        argv = json.loads(text)
    except ValueError:
        argv = None
    if (
        not isinstance(argv, list)
        or not argv
        or not all(isinstance(a, str) and a and "\x00" not in a for a in argv)
    ):
        raise UsageError(
            '--reboot-command must be a JSON list of strings, e.g. ["systemctl", "reboot"]'
        )
    return argv


def cmd_run(args: argparse.Namespace) -> int:
    if args.interval is not None and args.interval <= 0:
        raise UsageError("--interval must be a positive number of seconds")
    reboot_command = _reboot_command(args.reboot_command)
    host = _local_host(args.root)
    state = StateDir(args.state_dir)
    credentials = state.load_credentials()
    client = AgentClient(
        credentials.server, ca_file=credentials.ca_file, credential=credentials.credential
    )
    with state.lock():
        executor = JobExecutor(
            state.path, args.root, reboot_command=reboot_command, boot_id_file=args.boot_id_file
        )
        jobs = JobAgent(state, client, credentials, executor)
        if args.once:
            # Recovery first: the report then already shows the true versions.
            jobs.recover()
            print(describe(run_cycle(host, state, client, credentials.asset_id)))
            outcome = jobs.cycle()
            print(describe_jobs(outcome))
            if outcome.changed and not outcome.rebooting:
                print(describe(run_cycle(host, state, client, credentials.asset_id)))
            return EXIT_OK
        stop = threading.Event()
        with _stop_on_signals(stop):
            run_forever(
                host,
                state,
                client,
                credentials.asset_id,
                stop,
                interval=args.interval,
                server_interval=credentials.report_interval,
                jobs=jobs,
            )
    return EXIT_OK


COMMANDS = {"collect": cmd_collect, "enroll": cmd_enroll, "run": cmd_run}


def exit_code_for(exc: AgentError) -> int:
    if isinstance(exc, CredentialRefusedError):
        return EXIT_REFUSED
    if isinstance(exc, (ServerUnreachableError, ServerError)):
        return EXIT_TRANSIENT
    if isinstance(exc, (UsageError, NotEnrolledError, StateError)):
        return EXIT_USAGE
    return EXIT_TRANSIENT


class _StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is at the time (not the one at set-up)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def _setup_logging() -> None:
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter(PROG + ": %(levelname)s: %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)


def main(argv: Optional[Sequence[str]] = None) -> int:
    _setup_logging()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its message
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:  # Ctrl-C outside the run loop (which handles it itself)
        sys.stderr.write("%s: interrupted\n" % PROG)
        return EXIT_INTERRUPTED
    except AgentError as exc:
        message = str(exc)
        if isinstance(exc, CredentialRefusedError) and not exc.detail:
            message += ": the server refuses this agent; enrol again with a new token"
        sys.stderr.write("%s: error: %s\n" % (PROG, message))
        return exit_code_for(exc)
