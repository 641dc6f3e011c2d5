"""Available patches: `patchwarden patches list|show|dossier|recompute`."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer

from patchwarden.cli.common import report_errors
from patchwarden.cli.context import session_factory
from patchwarden.cli.output import Format, console, print_json, print_table
from patchwarden.config import get_settings
from patchwarden.errors import InvalidInput
from patchwarden.services import approvals, patches, repositories, upkeep
from patchwarden.storage.db import transaction

app = typer.Typer(
    help="Updates the repositories offer for each asset, and the findings they close.",
    no_args_is_help=True,
)
FormatOpt = Annotated[Format, typer.Option("--format", help="table or json")]
STATUSES = ("available", "applied", "superseded", "all")
LIST_COLUMNS = (
    "id",
    "hostname",
    "package",
    "installed_version",
    "target_version",
    "classification",
    "severity",
    "risk_score",
    "fixes",
    "reboot_required",
    "status",
)
ASSET_COLUMNS = ("asset_id", "hostname", "installed_version", "status", "risk_score", "closes")


@app.command("list")
def list_patches(
    fmt: FormatOpt = Format.TABLE,
    asset: Annotated[
        int | None, typer.Option("--asset", help="One asset's patches (made fresh first)")
    ] = None,
    group: Annotated[str | None, typer.Option("--group", help="A group's name or id")] = None,
    classification: Annotated[
        str | None, typer.Option(help="security, bugfix, enhancement or unclassified")
    ] = None,
    package: Annotated[str | None, typer.Option(help="A package name")] = None,
    status: Annotated[
        str, typer.Option(help="available, applied, superseded or all")
    ] = "available",
    limit: int = 1000,
) -> None:
    """Patches per asset, highest risk first."""
    with report_errors():
        if status not in STATUSES:
            raise InvalidInput(f"--status must be one of {', '.join(STATUSES)}")
        factory = session_factory()
        if asset is not None:
            patches.ensure_fresh(factory, asset)
        flt = patches.PatchFilter(
            asset, group, classification, package, None if status == "all" else status
        )
        with transaction(factory) as session:
            rows = patches.list_patches(session, flt, limit)
    if fmt is Format.JSON:
        print_json(rows)
    else:  # the findings each closes, counted: the CVE lists are in --format json
        print_table([row | {"fixes": len(row["closes"])} for row in rows], LIST_COLUMNS)


def _print_patch(summary: dict[str, Any]) -> None:
    console.print(
        f"[bold]patch {summary['id']}[/bold]: {summary['package']} {summary['target_version']} "
        f"({summary['arch']}, {summary['ecosystem']})",
        highlight=False,
    )
    for key in ("classification", "severity", "released_at", "reboot_required", "risk_score"):
        console.print(f"  {key}: {summary[key]}", highlight=False, markup=False)
    for key in ("closes", "notice_ids", "repositories"):
        console.print(f"  {key}: {', '.join(summary[key]) or '—'}", highlight=False, markup=False)
    print_table(summary["assets"], ASSET_COLUMNS, title="assets")


@app.command("show")
def show(patch_id: int, fmt: FormatOpt = Format.TABLE) -> None:
    """One patch: what it fixes, and every asset it applies to."""
    with report_errors(), transaction(session_factory()) as session:
        summary = patches.patch_summary(session, patches.get_patch(session, patch_id))
    if fmt is Format.JSON:
        print_json(summary)
    else:
        _print_patch(summary)


@app.command("dossier")
def dossier(patch_id: int, fmt: FormatOpt = Format.TABLE) -> None:
    """What an approver reads: fixes, risk, where it goes, the decisions so far."""
    with report_errors(), transaction(session_factory()) as session:
        found = approvals.dossier(session, patch_id)
    if fmt is Format.JSON:
        print_json(found)
        return
    _print_patch(found)
    print_table(
        found["vulnerabilities"],
        ("id", "severity", "cvss", "epss", "kev", "description"),
        title="vulnerabilities closed",
    )
    approval = found["approval"]
    console.print(
        f"approval: {approval['state'] or 'not requested'}"
        + (f", requested by {approval['requested_by']}" if approval["requested_by"] else "")
        + (f", decided by {approval['decided_by']}" if approval["decided_by"] else "")
        + (f": {approval['comment']}" if approval["comment"] else ""),
        highlight=False,
        markup=False,
    )
    for decision in approval["rule_decisions"]:
        console.print(
            f"group {decision['group']}: rule {decision['rule']!r} → {decision['outcome']}"
            + (f" from {decision['eligible_at']}" if decision["eligible_at"] else ""),
            highlight=False,
            markup=False,
        )


@app.command("recompute")
def recompute(
    all_assets: Annotated[
        bool, typer.Option("--all", help="Every asset's patches, not only changed ones")
    ] = False,
) -> None:
    """Recompute changed findings, then patches, then the auto-approval rules'
    decisions now (repositories are not synced: `patchwarden repos sync`)."""
    factory = session_factory()
    if all_assets:
        with transaction(factory) as session:
            repositories.mark_assets_dirty(session)
    stale_after = timedelta(seconds=get_settings().stale_after_seconds)
    total = {"findings": 0, "patches": 0, "rule_approvals": 0}
    with report_errors():
        while True:  # one upkeep round handles at most RECOMPUTE_LIMIT assets of each kind
            done = upkeep.run_once(factory, stale_after, sync_repositories=False)
            total["findings"] += done.findings
            total["patches"] += done.patches
            if done.approved is not None:
                total["rule_approvals"] = done.approved
            if max(done.findings, done.patches) < upkeep.RECOMPUTE_LIMIT:
                break
    print_json(total)
