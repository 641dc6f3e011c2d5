"""Vulnerability intelligence on the command line: feeds, findings,
vulnerabilities, prioritisation policy, and the offline `scan`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from patchwarden import __version__
from patchwarden.cli.common import report_errors
from patchwarden.cli.context import cli_actor, session_factory
from patchwarden.cli.output import Format, emit, print_json
from patchwarden.config import get_settings
from patchwarden.errors import InvalidInput
from patchwarden.services import feeds, findings, priorities, scanning
from patchwarden.storage.db import transaction

feeds_app = typer.Typer(
    help="Advisory feeds: import files, sync from the public sources.", no_args_is_help=True
)
findings_app = typer.Typer(
    help="Vulnerable packages on assets, with risk and due dates.", no_args_is_help=True
)
vulns_app = typer.Typer(
    help="Vulnerabilities (CVE) and the advisories that name them.", no_args_is_help=True
)
policy_app = typer.Typer(help="Risk weights and SLA policies.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)
FormatOpt = Annotated[Format, typer.Option("--format", help="table or json")]


def _print_summary(summary: feeds.ImportSummary) -> None:
    console.print(
        f"[bold]{summary.path}[/bold]: {summary.files} file(s) in {summary.seconds:.1f} s — "
        f"created {summary.created}, updated {summary.updated}, unchanged {summary.unchanged}, "
        f"withdrawn {summary.withdrawn}, rejected {summary.rejected}"
        + (
            f" (and {summary.parts_rejected} parts of stored records)"
            if summary.parts_rejected
            else ""
        ),
        highlight=False,
    )
    for note in summary.notes[:10]:
        console.print(f"  note: {note}", highlight=False, markup=False)
    for rejected in summary.rejections[:20]:
        what = "left out of a stored record" if rejected.part else "rejected"
        err_console.print(
            f"  {what} {rejected.where}: {rejected.reason}", highlight=False, markup=False
        )
    if len(summary.rejections) > 20:
        err_console.print(
            f"  … {len(summary.rejections) - 20} more (patchwarden feeds imports --format json)"
        )


@feeds_app.command("import")
def feeds_import(
    path: Annotated[Path, typer.Argument(help="A file, a directory, a .zip or .gz")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="Feed format; detected when omitted.")
    ] = None,
) -> None:
    """Import advisories, NVD, KEV or EPSS data from files (works air-gapped).

    Exit status: 0 when records were stored (or were stored already), even if
    some were rejected (each is listed); 1 when nothing was stored because the
    input was rejected whole (not a feed file, truncated, the wrong --format);
    2 on a usage error (a bad option, an unknown format, a missing path).
    """
    with (
        report_errors(),
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed} records"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        ) as progress,
    ):
        task = progress.add_task(f"importing {path.name}", total=None)
        summary = feeds.import_feed(
            session_factory(), path, fmt, cli_actor(), progress=lambda n: progress.advance(task, n)
        )
    _print_summary(summary)
    if summary.rejected_whole or not summary.files:
        reason = "it was rejected (see above)" if summary.files else "it holds no feed file"
        err_console.print(
            f"error: nothing was imported from {path}: {reason}", highlight=False, markup=False
        )
        raise typer.Exit(1)


@feeds_app.command("sync")
def feeds_sync(
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            help="Only these sources; also nvd-YEAR or nvd-all (every NVD year: a first load).",
        ),
    ] = None,
) -> None:
    """Download the public feeds (conditional, resumable, verified) and import what changed.

    Exit status: 0 when every source is current or was imported; 1 when some
    source failed (its line says why: a download error, or a file rejected whole,
    which the next sync downloads and imports again); 2 when no source could be
    reached, or on a usage error.
    """
    with report_errors():
        results = feeds.sync_sources(
            session_factory(), get_settings().data_dir / "feeds", source, cli_actor()
        )
    for result in results:
        console.print(f"{result.source}: {result.status}", highlight=False, markup=False)
        if result.summary is not None:
            _print_summary(result.summary)
    if any(result.status.startswith("failed") for result in results):
        raise typer.Exit(1)


@feeds_app.command("imports")
def feeds_imports(fmt: FormatOpt = Format.TABLE, limit: int = 20) -> None:
    """Past imports: what each created, updated, withdrew and rejected (and why)."""
    with transaction(session_factory()) as session:
        rows = [
            {
                "id": i.id,
                "started_at": i.started_at,
                "path": i.path,
                "format": i.format,
                "created": i.created,
                "updated": i.updated,
                "unchanged": i.unchanged,
                "withdrawn": i.withdrawn,
                "rejected": i.rejected,
                "parts_rejected": i.parts_rejected,
                "rejections": i.rejections,
            }
            for i in feeds.list_imports(session, limit)
        ]
    emit(
        rows,
        [
            "id",
            "started_at",
            "path",
            "created",
            "updated",
            "unchanged",
            "withdrawn",
            "rejected",
            "parts_rejected",
        ],
        fmt,
    )


FINDING_COLUMNS = [
    "hostname",
    "package",
    "installed_version",
    "fixed_version",
    "vulnerability_id",
    "severity",
    "risk",
    "kev",
    "due_at",
    "status",
]


def _finding_rows(flt: findings.FindingFilter, limit: int) -> list[dict[str, Any]]:
    factory = session_factory()
    if flt.asset_id is not None:
        findings.ensure_fresh(factory, flt.asset_id)
    with transaction(factory) as session:
        return findings.finding_views(session, findings.list_findings(session, flt, limit))


@findings_app.command("list")
def findings_list(
    fmt: FormatOpt = Format.TABLE,
    asset: Annotated[int | None, typer.Option(help="Asset id")] = None,
    vulnerability: Annotated[str | None, typer.Option(help="e.g. CVE-2024-6387")] = None,
    package: Annotated[str | None, typer.Option(help="Binary or source package name")] = None,
    status: Annotated[
        str, typer.Option(help="open, fixed, excepted, false_positive or all")
    ] = "open",
    limit: int = 1000,
) -> None:
    """Findings by asset, by vulnerability or by package, highest risk first."""
    if status not in {"open", "fixed", "excepted", "false_positive", "all"}:
        raise InvalidInput("--status must be open, fixed, excepted, false_positive or all")
    flt = findings.FindingFilter(asset, vulnerability, package, None if status == "all" else status)
    with report_errors():
        emit(_finding_rows(flt, limit), FINDING_COLUMNS, fmt)


@findings_app.command("top")
def findings_top(fmt: FormatOpt = Format.TABLE, limit: int = 20) -> None:
    """The highest open risks across the fleet."""
    emit(_finding_rows(findings.FindingFilter(), limit), FINDING_COLUMNS, fmt)


@findings_app.command("recompute")
def findings_recompute(
    all_assets: Annotated[bool, typer.Option("--all")] = False,
    workers: Annotated[
        int, typer.Option(min=1, max=32, help="Threads sharing the work (PostgreSQL only).")
    ] = 2,
) -> None:
    """Recompute findings of changed assets now (--all: of every asset)."""
    factory = session_factory()
    if all_assets:
        with transaction(factory) as session:
            findings.mark_all_assets(session)
    result = findings.recompute_dirty(factory, workers=workers)
    print_json(result.__dict__)


@vulns_app.command("show")
def vulns_show(vulnerability_id: str) -> None:
    """Scores, KEV and EPSS, advisories, and how many assets have it."""
    with report_errors(), transaction(session_factory()) as session:
        print_json(findings.vulnerability_detail(session, vulnerability_id))


def _pairs(values: list[str]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep:
            raise InvalidInput(f"expected KEY=VALUE, got {item!r}")
        try:
            parsed[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[key.strip()] = raw
    return parsed


@policy_app.command("risk-weights")
def policy_risk_weights(
    set_: Annotated[list[str] | None, typer.Option("--set", help="KEY=VALUE, e.g. kev=30")] = None,
    reset: Annotated[bool, typer.Option("--reset")] = False,
) -> None:
    """Show the risk weights, or change them (every finding and patch is re-scored)."""
    with report_errors(), transaction(session_factory()) as session:
        if set_ or reset:
            current = {} if reset else priorities.risk_weights(session).as_dict()
            weights = priorities.set_risk_weights(
                session, cli_actor(), None if reset else current | _pairs(set_ or [])
            )
            findings.mark_all_for_new_weights(session)
        else:
            weights = priorities.risk_weights(session)
        print_json(weights.as_dict())


@policy_app.command("sla")
def policy_sla(
    group: Annotated[
        str | None, typer.Option(help="A group's own policy (default: the global one)")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="KEY=DAYS, e.g. critical=7")
    ] = None,
    reset: Annotated[bool, typer.Option("--reset")] = False,
) -> None:
    """Show or change SLA days per severity (and for KEV) — globally or per group."""
    with report_errors(), transaction(session_factory()) as session:
        if set_ or reset:
            current = priorities.sla_policy(session, group).as_dict()
            policy = priorities.set_sla_policy(
                session, cli_actor(), group, None if reset else current | _pairs(set_ or [])
            )
            findings.mark_all_for_rescore(session)
        else:
            policy = priorities.sla_policy(session, group)
        print_json(policy.as_dict())


def scan(
    dpkg_status: Annotated[Path | None, typer.Option(help="A dpkg status file")] = None,
    rpm_qa: Annotated[
        Path | None, typer.Option(help="Output of rpm -qa (see docs for --qf)")
    ] = None,
    requirements: Annotated[
        Path | None, typer.Option(help="A pip requirements / freeze file")
    ] = None,
    distro: Annotated[
        str | None, typer.Option(help="ID:RELEASE, e.g. debian:12, ubuntu:22.04")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or sarif")] = "table",
    fail_on: Annotated[str | None, typer.Option(help="low, medium, high or critical")] = None,
) -> None:
    """Scan a package list against the local advisory database; no server needed.

    Exit code 0 when clean, 1 when a finding meets --fail-on, 2 on bad input.
    """
    with report_errors():
        result = scanning.scan_files(
            session_factory(),
            dpkg_status=dpkg_status,
            rpm_qa=rpm_qa,
            requirements=requirements,
            distro=distro,
            fail_on=fail_on,
            fmt=fmt,
            tool_version=__version__,
        )
    for line, reason in result.skipped[:20]:
        err_console.print(f"skipped line {line}: {reason}", highlight=False, markup=False)
    for warning in result.warnings:
        err_console.print(f"warning: {warning}", highlight=False, markup=False)
    if fmt == "table":
        console.print(result.rendered)
    else:
        typer.echo(result.rendered)
    raise typer.Exit(result.exit_code)
