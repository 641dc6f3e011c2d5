"""Rollouts and maintenance windows: `patchwarden rollouts ...`, `patchwarden windows ...`.

Like every CLI command these work on the server's database directly; the
server's rollout engine (every `patchwarden serve` process) moves started
rollouts on. Smoke-test commands are split into argument lists here
(shlex rules) and never run through a shell.
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group as RichGroup
from rich.live import Live
from rich.table import Table
from rich.text import Text

from patchwarden.cli.approvals import AsOpt, approval_actor
from patchwarden.cli.common import report_errors
from patchwarden.cli.context import cli_actor, session_factory
from patchwarden.cli.output import Format, console, emit, print_json
from patchwarden.errors import InvalidInput
from patchwarden.rollouts.engine import FINISHED_ROLLOUT_STATES
from patchwarden.services import rollouts, windows
from patchwarden.storage.db import transaction

app = typer.Typer(
    help="Rollouts: approved patches through test, pilot and production rings.",
    no_args_is_help=True,
)
windows_app = typer.Typer(
    help="Maintenance windows and blackouts of groups and assets.", no_args_is_help=True
)
FormatOpt = Annotated[Format, typer.Option("--format", help="table or json")]
RolloutArg = Annotated[int, typer.Argument(metavar="ROLLOUT_ID", help="The rollout's id")]
SMOKE_TIMEOUT = 30
LIST_COLUMNS = ("id", "name", "state", "emergency", "created_by", "started_at", "halt_reason")
JOB_STATE_STYLE = {
    "succeeded": "green",
    "running": "cyan",
    "dispatched": "cyan",
    "pending": "dim",
    "cancelled": "dim",
}


def _ring_specs(
    rings: list[str],
    template: dict[str, Any],
    defaults: dict[str, Any],
    signoff: list[str],
    order_groups: list[str],
) -> tuple[rollouts.RingSpec, ...]:
    """--ring NAME=GROUP options over the template's rings (same names: the group is replaced)."""
    by_name: dict[str, dict[str, Any]] = {}
    for ring in template.get("rings", []):
        if not isinstance(ring, dict) or not isinstance(ring.get("name"), str):
            raise InvalidInput("template rings must be objects with a name")
        by_name[ring["name"]] = dict(ring)
    for text in rings:
        name, sep, group = text.partition("=")
        if not sep or not name or not group:
            raise InvalidInput(f"--ring takes NAME=GROUP, not {text!r}")
        by_name.setdefault(name, {"name": name})["group"] = group
    specs = []
    for name, ring in by_name.items():
        if "group" not in ring:
            raise InvalidInput(f"ring {name} has no group: add --ring {name}=GROUP")
        values = {**defaults, **ring}
        if name in signoff:
            values["require_signoff"] = True
        if order_groups:
            values["order_groups"] = order_groups
        unknown = set(values) - set(rollouts.RingSpec.__dataclass_fields__)
        if unknown:
            raise InvalidInput(f"ring {name}: unknown setting(s) {', '.join(sorted(unknown))}")
        values["order_groups"] = tuple(values.get("order_groups", ()))
        specs.append(rollouts.RingSpec(**values))
    unknown_signoff = set(signoff) - set(by_name)
    if unknown_signoff:
        raise InvalidInput(f"--signoff names no ring: {', '.join(sorted(unknown_signoff))}")
    return tuple(specs)


def _smoke_tests(
    commands: list[str], http: list[str], tcp: list[str], units: list[str], scripts: list[str]
) -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = []
    for text in commands:
        try:
            argv = shlex.split(text)
        except ValueError as exc:
            raise InvalidInput(f"--smoke-command {text!r}: {exc}") from exc
        tests.append(
            {"kind": "command", "name": f"command {argv[0] if argv else ''}", "argv": argv}
        )
    for url in http:
        tests.append({"kind": "http", "name": f"http {url}", "url": url, "expect_status": 200})
    for address in tcp:
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit():
            raise InvalidInput(f"--smoke-tcp takes HOST:PORT, not {address!r}")
        tests.append({"kind": "tcp", "name": f"tcp {address}", "host": host, "port": int(port)})
    for unit in units:
        tests.append({"kind": "systemd", "name": f"unit {unit}", "unit": unit})
    for path in scripts:
        tests.append({"kind": "script", "name": f"script {path}", "path": path})
    for test in tests:
        test["timeout"] = SMOKE_TIMEOUT
    return tests


def _load_template(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read the template {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"the template {path} must be a JSON object")
    unknown = set(data) - {"rings", "job_options", "job_timeout_seconds"}
    if unknown:
        raise InvalidInput(f"template {path}: unknown key(s) {', '.join(sorted(unknown))}")
    return data


def _ids(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InvalidInput(f"--patches takes ids like 3,4,7, not {text!r}") from None


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="What the rollout is for")],
    patches: Annotated[str, typer.Option("--patches", help="Patch ids, e.g. 3,4,7")],
    ring: Annotated[
        list[str] | None,
        typer.Option("--ring", help="NAME=GROUP, in order (repeat): test=lab --ring pilot=..."),
    ] = None,
    template: Annotated[
        Path | None,
        typer.Option("--template", help="JSON file with rings and job_options to start from"),
    ] = None,
    max_errors: Annotated[
        str | None, typer.Option("--max-errors", help="Per ring: count or % (default 0)")
    ] = None,
    max_concurrency: Annotated[
        str | None, typer.Option("--max-concurrency", help="Per ring: count or % (default 10%)")
    ] = None,
    soak: Annotated[
        int | None, typer.Option("--soak", help="Seconds each ring soaks after its last job")
    ] = None,
    min_success: Annotated[
        float | None, typer.Option("--min-success", help="Promotion gate: success %")
    ] = None,
    signoff: Annotated[
        list[str] | None, typer.Option("--signoff", help="Ring that needs an approver's sign-off")
    ] = None,
    order_groups: Annotated[
        str | None,
        typer.Option("--order", help="Groups in order within each ring, e.g. db,app"),
    ] = None,
    site_limit: Annotated[
        int | None, typer.Option("--site-limit", help="Concurrent jobs per site (asset region)")
    ] = None,
    reboot: Annotated[
        str | None, typer.Option("--reboot", help="never, if_required (default) or always")
    ] = None,
    smoke_command: Annotated[
        list[str] | None, typer.Option("--smoke-command", help="A command that must exit 0")
    ] = None,
    smoke_http: Annotated[
        list[str] | None, typer.Option("--smoke-http", help="A URL that must answer 200")
    ] = None,
    smoke_tcp: Annotated[
        list[str] | None, typer.Option("--smoke-tcp", help="HOST:PORT that must accept")
    ] = None,
    smoke_unit: Annotated[
        list[str] | None, typer.Option("--smoke-unit", help="A systemd unit that must be active")
    ] = None,
    smoke_script: Annotated[
        list[str] | None, typer.Option("--smoke-script", help="An executable that must exit 0")
    ] = None,
    job_timeout: Annotated[
        int | None, typer.Option("--job-timeout", help="Seconds before a job without result fails")
    ] = None,
    emergency: Annotated[
        bool, typer.Option("--emergency", help="Out of band: skips windows and soak once approved")
    ] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why (required for --emergency)")] = "",
) -> None:
    """Plan a rollout; prints its id. Start it with `patchwarden rollouts start ID`."""
    with report_errors():
        data = _load_template(template)
        defaults: dict[str, Any] = {}
        for key, value in (
            ("max_errors", max_errors),
            ("max_concurrency", max_concurrency),
            ("soak_seconds", soak),
            ("min_success_percent", min_success),
            ("site_limit", site_limit),
        ):
            if value is not None:
                defaults[key] = value
        order = [g.strip() for g in (order_groups or "").split(",") if g.strip()]
        options: dict[str, Any] = dict(data.get("job_options") or {})
        if reboot is not None:
            options["reboot"] = reboot
        smoke = _smoke_tests(
            smoke_command or [],
            smoke_http or [],
            smoke_tcp or [],
            smoke_unit or [],
            smoke_script or [],
        )
        if smoke:
            options["smoke_tests"] = [*options.get("smoke_tests", []), *smoke]
        spec = rollouts.RolloutSpec(
            name=name,
            patch_ids=_ids(patches),
            rings=_ring_specs(ring or [], data, defaults, signoff or [], order),
            job_options=options,
            job_timeout_seconds=job_timeout or int(data.get("job_timeout_seconds", 3600)),
            emergency=emergency,
            emergency_reason=reason,
        )
        with transaction(session_factory()) as session:
            rollout_id = rollouts.create(session, cli_actor(), spec)
    typer.echo(rollout_id)


def _move(action: str, rollout_id: int) -> None:
    with report_errors(), transaction(session_factory()) as session:
        rollouts.MOVES[action](session, cli_actor(), rollout_id)
        state = rollouts.list_one(session, rollout_id)["state"]
    typer.echo(f"rollout {rollout_id}: {state}")


@app.command("start")
def start(rollout_id: RolloutArg) -> None:
    """Start a planned rollout (an emergency one needs its approval first)."""
    _move("start", rollout_id)


@app.command("pause")
def pause(rollout_id: RolloutArg) -> None:
    """No new job starts; jobs in flight finish."""
    _move("pause", rollout_id)


@app.command("resume")
def resume(rollout_id: RolloutArg) -> None:
    _move("resume", rollout_id)


@app.command("abort")
def abort(rollout_id: RolloutArg) -> None:
    """Stop for good; jobs not yet started are cancelled."""
    _move("abort", rollout_id)


@app.command("rollback")
def rollback(
    rollout_id: RolloutArg,
    ring: Annotated[str | None, typer.Option("--ring", help="Only this ring")] = None,
) -> None:
    """Put back the versions from before on every asset the rollout (or a ring) changed."""
    with report_errors(), transaction(session_factory()) as session:
        count = rollouts.rollback(session, cli_actor(), rollout_id, ring)
    typer.echo(f"rollout {rollout_id}: rolling back, {count} rollback job(s)")


@app.command("sign-off")
def sign_off(
    rollout_id: RolloutArg,
    ring: Annotated[str, typer.Argument(help="The ring whose promotion gate to sign off")],
    as_user: AsOpt = None,
) -> None:
    """An approver's sign-off that lets a ring be promoted."""
    with report_errors(), transaction(session_factory()) as session:
        rollouts.sign_off(session, approval_actor(session, as_user), rollout_id, ring)
    typer.echo(f"rollout {rollout_id}: ring {ring} signed off")


@app.command("approve-emergency")
def approve_emergency(
    rollout_id: RolloutArg,
    comment: Annotated[str, typer.Option("--comment")] = "",
    as_user: AsOpt = None,
) -> None:
    """An approver lets an emergency rollout skip windows and soak (audited)."""
    with report_errors(), transaction(session_factory()) as session:
        rollouts.approve_emergency(session, approval_actor(session, as_user), rollout_id, comment)
    typer.echo(f"rollout {rollout_id}: emergency approved")


@app.command("list")
def list_rollouts(
    state: Annotated[str | None, typer.Option("--state")] = None, fmt: FormatOpt = Format.TABLE
) -> None:
    with report_errors(), transaction(session_factory()) as session:
        rows = rollouts.list_rollouts(session, state)
    emit(rows, LIST_COLUMNS, fmt)


def _view(rollout_id: int) -> dict[str, Any]:
    with report_errors(), transaction(session_factory()) as session:
        return rollouts.show(session, rollout_id)


def render(view: dict[str, Any]) -> RichGroup:
    """Rings, their counts and every asset's job, for people."""
    title = Text.assemble(
        (f"rollout {view['id']} ", "bold"),
        f"{view['name']}  ",
        (view["state"], "bold magenta"),
        f"  {view['halt_reason']}" if view["halt_reason"] else "",
    )
    parts: list[Any] = [title]
    if view["skipped_assets"]:
        hosts = ", ".join(a["hostname"] for a in view["skipped_assets"][:10])
        more = len(view["skipped_assets"]) - 10
        parts.append(
            Text(
                f"skipped (no active agent): {hosts}" + (f" and {more} more" if more > 0 else ""),
                style="yellow",
            )
        )
    for ring in view["rings"]:
        counts = ", ".join(f"{k} {v}" for k, v in ring["counts"].items() if v)
        table = Table(
            title=f"ring {ring['position'] + 1}: {ring['name']} ({ring['group']}) - "
            f"{ring['state']}{'  ' + ring['reason'] if ring['reason'] else ''}",
            caption=counts or "no jobs",
            title_justify="left",
        )
        for column in ("job", "asset", "host", "action", "state", "phase", "error"):
            table.add_column(column)
        for job in ring["jobs"]:
            style = JOB_STATE_STYLE.get(job["state"], "red")
            table.add_row(
                str(job["job_id"]),
                str(job["asset_id"]),
                job["hostname"],
                job["action"],
                Text(job["state"], style=style),
                job["phase"] or "",
                (job["error"] or "")[:60],
            )
        parts.append(table)
    return RichGroup(*parts)


@app.command("show")
def show(rollout_id: RolloutArg, fmt: FormatOpt = Format.TABLE) -> None:
    """State, and per ring and asset the job state."""
    view = _view(rollout_id)
    if fmt is Format.JSON:
        print_json(view)
    else:
        console.print(render(view))


@app.command("watch")
def watch(
    rollout_id: RolloutArg,
    interval: Annotated[float, typer.Option("--interval", min=0.2, help="Seconds")] = 2.0,
) -> None:
    """A live view of rings, waves and assets until the rollout finishes (Ctrl-C leaves)."""
    view = _view(rollout_id)
    with Live(render(view), console=console, refresh_per_second=4) as live:
        try:
            while view["state"] not in FINISHED_ROLLOUT_STATES:
                time.sleep(interval)
                view = _view(rollout_id)
                live.update(render(view))
        except KeyboardInterrupt:
            pass


# -- windows ----------------------------------------------------------------------------

GroupOpt = Annotated[str | None, typer.Option("--group", help="The group's name or id")]
AssetOpt = Annotated[int | None, typer.Option("--asset", help="The asset's id")]


def _target(group: str | None, asset: int | None) -> tuple[windows.Scope, int | str]:
    if (group is None) == (asset is None):
        raise InvalidInput("give exactly one of --group or --asset")
    return ("group", group) if group is not None else ("asset", int(asset or 0))


def _recurrence(rrule: str | None, cron: str | None) -> dict[str, Any]:
    if (rrule is None) == (cron is None):
        raise InvalidInput("give exactly one of --rrule or --cron")
    return {"rrule": rrule} if rrule is not None else {"cron": cron}


RruleOpt = Annotated[str | None, typer.Option("--rrule", help="e.g. FREQ=WEEKLY;BYDAY=SA;BYHOUR=2")]
CronOpt = Annotated[str | None, typer.Option("--cron", help="e.g. '0 2 * * 6'")]
ZoneOpt = Annotated[str, typer.Option("--timezone", help="IANA zone, e.g. Europe/Berlin")]


@windows_app.command("add")
def add_window(
    duration: Annotated[int, typer.Option("--duration", help="Minutes the window stays open")],
    timezone: ZoneOpt = "UTC",
    rrule: RruleOpt = None,
    cron: CronOpt = None,
    group: GroupOpt = None,
    asset: AssetOpt = None,
) -> None:
    """Add a recurring maintenance window; jobs only start inside one."""
    with report_errors():
        scope, ref = _target(group, asset)
        window = {**_recurrence(rrule, cron), "duration_minutes": duration, "timezone": timezone}
        with transaction(session_factory()) as session:
            result = windows.add_window(session, cli_actor(), scope, ref, window)
    typer.echo(f"{scope} {result['target_id']}: {len(result['windows'])} window(s)")


@windows_app.command("blackout")
def add_blackout(
    start: Annotated[str | None, typer.Option("--start", help="ISO time with offset")] = None,
    end: Annotated[str | None, typer.Option("--end", help="ISO time with offset")] = None,
    rrule: RruleOpt = None,
    cron: CronOpt = None,
    duration: Annotated[int | None, typer.Option("--duration", help="Minutes (recurring)")] = None,
    timezone: ZoneOpt = "UTC",
    reason: Annotated[str, typer.Option("--reason")] = "",
    group: GroupOpt = None,
    asset: AssetOpt = None,
) -> None:
    """Add a change freeze, absolute (--start/--end) or recurring; it overrides windows."""
    with report_errors():
        scope, ref = _target(group, asset)
        blackout: dict[str, Any]
        if start is not None or end is not None:
            blackout = {"start": start, "end": end, "reason": reason}
        else:
            blackout = {
                **_recurrence(rrule, cron),
                "duration_minutes": duration,
                "timezone": timezone,
                "reason": reason,
            }
        with transaction(session_factory()) as session:
            result = windows.add_blackout(session, cli_actor(), scope, ref, blackout)
    typer.echo(f"{scope} {result['target_id']}: {len(result['blackouts'])} blackout(s)")


@windows_app.command("show")
def show_windows(group: GroupOpt = None, asset: AssetOpt = None) -> None:
    with report_errors():
        scope, ref = _target(group, asset)
        with transaction(session_factory()) as session:
            print_json(windows.show(session, scope, ref))


@windows_app.command("clear")
def clear_windows(group: GroupOpt = None, asset: AssetOpt = None) -> None:
    """Remove every window and blackout (work may then start at any time)."""
    with report_errors():
        scope, ref = _target(group, asset)
        with transaction(session_factory()) as session:
            windows.clear(session, cli_actor(), scope, ref)
    typer.echo(f"{scope} {ref}: windows cleared")


@windows_app.command("next")
def next_openings(
    group: GroupOpt = None,
    asset: AssetOpt = None,
    count: Annotated[int, typer.Option("--count", min=1, max=100)] = 5,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """The next openings, in local and UTC time."""
    with report_errors():
        scope, ref = _target(group, asset)
        with transaction(session_factory()) as session:
            rows = windows.upcoming(session, scope, ref, count)
    emit(rows, ("local_start", "local_end", "timezone", "start", "end"), fmt)
