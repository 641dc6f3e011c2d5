"""Package repositories: `patchwarden repos add|list|sync|remove`."""

from __future__ import annotations

from typing import Annotated

import typer

from patchwarden.cli.common import err_console, report_errors
from patchwarden.cli.context import cli_actor, session_factory
from patchwarden.cli.output import Format, console, emit
from patchwarden.services import repositories
from patchwarden.storage.db import transaction

app = typer.Typer(
    help="Package repositories (apt, rpm-md, apk) whose updates become available patches.",
    no_args_is_help=True,
)
FormatOpt = Annotated[Format, typer.Option("--format", help="table or json")]
LIST_COLUMNS = (
    "id",
    "name",
    "kind",
    "url",
    "suite",
    "platform",
    "group",
    "package_count",
    "notice_count",
    "last_success_at",
    "last_error",
)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="1-100 letters, digits, . _ -")],
    kind: Annotated[str, typer.Option("--type", help="apt, rpm or apk", show_default=False)],
    url: Annotated[
        str, typer.Option("--url", help="http(s):// or file:// base URL", show_default=False)
    ],
    suite: Annotated[
        str | None, typer.Option("--suite", help="apt: the suite, e.g. bookworm-security")
    ] = None,
    component: Annotated[
        list[str] | None, typer.Option("--component", help="apt: a component (default main)")
    ] = None,
    arch: Annotated[
        list[str] | None, typer.Option("--arch", help="An architecture (apt default amd64)")
    ] = None,
    platform: Annotated[
        str | None,
        typer.Option("--platform", help="Only assets on this platform: debian:12 or debian"),
    ] = None,
    group: Annotated[str | None, typer.Option("--group", help="Only this group's assets")] = None,
    interval: Annotated[int, typer.Option("--interval", help="Seconds between automatic syncs")] = 6
    * 3600,
) -> None:
    """Add a repository; `patchwarden repos sync NAME` fetches it."""
    with report_errors(), transaction(session_factory()) as session:
        view = repositories.add_repository(
            session,
            cli_actor(),
            name=name,
            kind=kind,
            url=url,
            suite=suite,
            components=component or (),
            architectures=arch or (),
            platform=platform,
            group=group,
            sync_interval_seconds=interval,
        )
    typer.echo(f"added repository {view.name} (id {view.id}); fetch it: patchwarden repos sync")


@app.command("list")
def list_repositories(fmt: FormatOpt = Format.TABLE) -> None:
    """Repositories with what their last good metadata holds and their last error."""
    with transaction(session_factory()) as session:
        rows = [r.as_dict() for r in repositories.list_repositories(session)]
    emit(rows, LIST_COLUMNS, fmt)


@app.command("sync")
def sync(
    names: Annotated[
        list[str] | None, typer.Argument(help="Names or ids; every enabled one when omitted")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Download even when the server says unchanged")
    ] = False,
) -> None:
    """Fetch repositories now. Exit code 1 when any could not be fetched (it keeps
    its last good data), 2 when a name is unknown."""
    with report_errors():
        results = repositories.sync(session_factory(), cli_actor(), names or (), force=force)
    for result in results:
        if result.status == "failed":
            err_console.print(
                f"{result.name}: failed: {result.error}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        else:
            console.print(
                f"{result.name}: {result.status} ({result.packages} packages, "
                f"{result.notices} notices)",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
    if any(result.status == "failed" for result in results):
        raise typer.Exit(1)


@app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="The repository's name or id")]) -> None:
    """Remove a repository and its data; the patches it offered are recomputed."""
    with report_errors(), transaction(session_factory()) as session:
        repositories.remove_repository(session, cli_actor(), name)
    typer.echo(f"removed repository {name}")
