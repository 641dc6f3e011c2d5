"""Baselines: `patchwarden baselines set|list|remove|drift|sprawl`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from patchwarden.cli.common import report_errors
from patchwarden.cli.context import cli_actor, session_factory
from patchwarden.cli.output import Format, emit
from patchwarden.services import baselines
from patchwarden.storage.db import transaction

app = typer.Typer(
    help="The package versions a group should run, drift from them, and version sprawl.",
    no_args_is_help=True,
)
FormatOpt = Annotated[Format, typer.Option("--format", help="table or json")]
GroupOpt = Annotated[str, typer.Option("--group", help="The group's name or id")]
ENTRY_COLUMNS = ("id", "group", "package", "version", "mode", "os_release")
DRIFT_COLUMNS = ("hostname", "package", "installed", "expected", "mode", "status", "detail")


@app.command("set")
def set_entry(
    group: GroupOpt,
    package: Annotated[str, typer.Option("--package", help="A package name")],
    version: Annotated[str, typer.Option("--version", help="The version")],
    mode: Annotated[
        str,
        typer.Option("--mode", help="minimum: at least this version; desired: exactly this"),
    ] = "minimum",
    os_release: Annotated[
        str | None,
        typer.Option("--os-release", help="Only assets on this platform: debian:12 or debian"),
    ] = None,
) -> None:
    """Set the group's baseline for one package (replaces the entry for the same
    package and --os-release)."""
    with report_errors(), transaction(session_factory()) as session:
        entry = baselines.set_entry(session, cli_actor(), group, package, version, mode, os_release)
    typer.echo(
        f"baseline {entry['id']}: {entry['group']} {entry['package']} {entry['mode']} "
        f"{entry['version']}" + (f" on {entry['os_release']}" if entry["os_release"] else "")
    )


@app.command("list")
def list_entries(
    group: Annotated[str | None, typer.Option("--group", help="The group's name or id")] = None,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Baseline entries, per group."""
    with report_errors(), transaction(session_factory()) as session:
        rows = baselines.list_entries(session, group)
    emit(rows, ENTRY_COLUMNS, fmt)


@app.command("remove")
def remove_entry(baseline_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Remove a baseline entry."""
    with report_errors(), transaction(session_factory()) as session:
        baselines.remove_entry(session, cli_actor(), baseline_id)
    typer.echo(f"removed baseline {baseline_id}")


@app.command("drift")
def drift(
    group: GroupOpt,
    include_ok: Annotated[
        bool, typer.Option("--all", help="Also the assets that meet the baseline")
    ] = False,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """The group's member assets that deviate from its baseline."""
    with report_errors(), transaction(session_factory()) as session:
        rows = baselines.drift_report(session, group, include_ok)
    emit(rows, DRIFT_COLUMNS, fmt)


@app.command("sprawl")
def sprawl(
    group: Annotated[str | None, typer.Option("--group", help="The group's name or id")] = None,
    package: Annotated[str | None, typer.Option("--package", help="Only this package")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Packages shown, most versions first")] = 50,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """How many versions of each package run in the fleet (or a group)."""
    with report_errors(), transaction(session_factory()) as session:
        rows = baselines.version_sprawl(session, group, limit, package)
    table: list[dict[str, Any]] = [
        row | {"by_version": [f"{v['version']} ({v['assets']})" for v in row["by_version"]]}
        for row in rows
    ]
    if fmt is Format.JSON:
        emit(rows, (), fmt)
    else:
        emit(table, ("package", "versions", "assets", "by_version"), fmt)
