"""Importing asset data from other systems: `patchwarden import cmdb FILE`."""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from patchwarden.cli.common import report_errors
from patchwarden.cli.context import cli_actor, session_factory
from patchwarden.cli.output import Format, console, print_json
from patchwarden.config import get_settings
from patchwarden.errors import PayloadTooLarge
from patchwarden.imports.cmdb import CmdbFormat
from patchwarden.services.cmdb_import import ImportReport, import_cmdb

app = typer.Typer(help="Import assets from other systems.", no_args_is_help=True)
err_console = Console(stderr=True)

_ACTION_STYLE = {"created": "green", "updated": "cyan", "unchanged": "dim", "rejected": "red"}


class FileFormat(StrEnum):
    CSV = "csv"
    JSON = "json"


@app.callback()
def _group() -> None:
    """Import assets from other systems."""
    # A callback keeps `cmdb` a sub-command even while it is the only one.


@app.command("cmdb")
def cmdb(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV or JSON export."),
    ],
    fmt: Annotated[
        FileFormat | None,
        typer.Option("--format", help="csv or json (default: from the file name or content)"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would change; change nothing.")
    ] = False,
    output: Annotated[Format, typer.Option("--output", help="table or json")] = Format.TABLE,
) -> None:
    """Create or update assets from a CMDB export, row by row.

    Rows are matched to assets by hostname, else serial, else IP. Exits 1 when
    any row was rejected (the other rows are still imported)."""
    with report_errors():
        limit = get_settings().max_import_bytes
        if file.stat().st_size > limit:
            raise PayloadTooLarge(
                f"{file} is larger than {limit} bytes (PATCHWARDEN_MAX_IMPORT_BYTES)"
            )
        content = file.read_bytes()
        report = import_cmdb(
            session_factory(), content, _format(file, fmt), cli_actor(), dry_run=dry_run
        )
    if output is Format.JSON:
        print_json(report_as_dict(report))
    else:
        _print_report(report)
    raise typer.Exit(1 if report.has_rejections else 0)


def _format(file: Path, fmt: FileFormat | None) -> CmdbFormat | None:
    if fmt is not None:
        return "json" if fmt is FileFormat.JSON else "csv"
    suffix = file.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix == ".csv":
        return "csv"
    return None  # detected from the content


def report_as_dict(report: ImportReport) -> dict[str, Any]:
    return {
        "format": report.format,
        "dry_run": report.dry_run,
        "totals": {**dataclasses.asdict(report.totals), "total": report.totals.total},
        "warnings": list(report.warnings),
        "rows": [dataclasses.asdict(row) for row in report.rows],
    }


def _print_report(report: ImportReport) -> None:
    for warning in report.warnings:
        err_console.print(
            f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False, soft_wrap=True
        )
    title = "CMDB import (dry run: nothing was changed)" if report.dry_run else "CMDB import"
    table = Table(title=title)
    for column in ("row", "action", "asset", "identity", "details"):
        table.add_column(column, overflow="fold")
    for row in report.rows:
        details = row.reason if row.action == "rejected" else ", ".join(row.changed_fields)
        style = _ACTION_STYLE[row.action]
        table.add_row(
            str(row.row),
            f"[{style}]{row.action}[/{style}]",
            "—" if row.asset_id is None else str(row.asset_id),
            escape(row.identity),
            escape(details or ""),
        )
    console.print(table)
    totals = report.totals
    verb = "would be " if report.dry_run else ""
    console.print(
        f"{totals.total} rows: {totals.created} {verb}created, {totals.updated} {verb}updated, "
        f"{totals.unchanged} unchanged, {totals.rejected} rejected",
        highlight=False,
    )
