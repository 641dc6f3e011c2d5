"""Entry point of the `patchwarden` command. Sub-command groups live in their own
modules and are mounted here; this is the one place errors become exit codes."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from patchwarden.errors import PatchwardenError

app = typer.Typer(
    name="patchwarden",
    help="Patchwarden: self-hosted patch management.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

err_console = Console(stderr=True)


def _mount() -> None:
    # Imported here so `patchwarden --help` lists everything while each module
    # stays independent of the others.
    from patchwarden.cli import (
        admin,
        approvals,
        assets,
        baselines,
        cvss,
        exceptions,
        groups,
        imports,
        patches,
        repos,
        rollouts,
        server,
        versions,
        vulns,
    )

    app.command("serve")(server.serve)
    app.command("quickstart")(server.quickstart)
    db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
    db_app.command("upgrade")(server.db_upgrade)
    app.add_typer(db_app, name="db")
    app.add_typer(admin.users_app, name="users")
    app.add_typer(admin.tokens_app, name="tokens")
    app.add_typer(admin.enroll_app, name="enroll-token")
    app.add_typer(admin.agents_app, name="agents")
    app.add_typer(admin.audit_app, name="audit")
    app.add_typer(assets.app, name="assets")
    app.add_typer(groups.app, name="groups")
    app.add_typer(imports.app, name="import")
    app.add_typer(versions.app, name="versions")
    app.add_typer(cvss.app, name="cvss")
    app.add_typer(vulns.feeds_app, name="feeds")
    app.add_typer(vulns.findings_app, name="findings")
    app.add_typer(vulns.vulns_app, name="vulnerabilities")
    app.add_typer(vulns.policy_app, name="policy")
    app.command("scan")(vulns.scan)
    app.add_typer(repos.app, name="repos")
    app.add_typer(patches.app, name="patches")
    app.add_typer(approvals.approvals_app, name="approvals")
    app.add_typer(approvals.rules_app, name="rules")
    app.add_typer(exceptions.app, name="exceptions")
    app.command("compliance")(exceptions.compliance)
    app.add_typer(baselines.app, name="baselines")
    app.add_typer(rollouts.app, name="rollouts")
    app.add_typer(rollouts.windows_app, name="windows")


_mount()


def main() -> None:
    try:
        app()
    except PatchwardenError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}")
        sys.exit(2)
