"""Asset groups: `patchwarden groups create|list|show|add|remove|delete`."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import typer
from rich.markup import escape

from patchwarden.cli.common import report_errors
from patchwarden.cli.context import cli_actor, session_factory
from patchwarden.cli.output import Format, console, emit, print_json
from patchwarden.errors import InvalidInput
from patchwarden.services import groups
from patchwarden.storage.db import transaction

app = typer.Typer(
    help="Asset groups: static lists of assets, or dynamic queries such as "
    "'tag = pci and criticality <= 2'.",
    no_args_is_help=True,
)


FormatOpt = Annotated[Format, typer.Option("--format", help="table or json")]
GroupArg = Annotated[str, typer.Argument(metavar="NAME_OR_ID", help="The group's name or id.")]
AssetsOpt = Annotated[
    str, typer.Option("--assets", help="Asset ids, comma-separated: 1,2,3", show_default=False)
]
LIST_COLUMNS = ("id", "name", "kind", "member_count", "query", "description")


def parse_asset_ids(text: str) -> list[int]:
    """ "1, 2,3" -> [1, 2, 3]; an empty string is an empty list."""
    ids = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isascii() or not part.isdigit():
            raise InvalidInput(f"--assets takes asset ids separated by commas, found {part!r}")
        ids.append(int(part))
    return ids


def _members(count: int) -> str:
    return f"{count} member" if count == 1 else f"{count} members"


def _plain(view: groups.GroupView) -> dict[str, Any]:
    return dataclasses.asdict(view)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="1-100 letters, digits, space, _ . -")],
    assets: Annotated[
        str | None,
        typer.Option("--assets", help="Static group: asset ids, comma-separated (may be '')."),
    ] = None,
    query: Annotated[
        str | None, typer.Option("--query", help="Dynamic group: a query, e.g. 'tag = pci'.")
    ] = None,
    description: Annotated[str, typer.Option("--description")] = "",
) -> None:
    """Create a static group (--assets) or a dynamic one (--query); prints its id."""
    with report_errors():
        if (assets is None) == (query is None):
            raise InvalidInput("give exactly one of --assets (static group) or --query (dynamic)")
        with transaction(session_factory()) as session:
            if query is not None:
                view = groups.create_dynamic(session, cli_actor(), name, query, description)
            else:
                ids = parse_asset_ids(assets or "")
                view = groups.create_static(session, cli_actor(), name, ids, description)
        typer.echo(view.id)


@app.command("list")
def list_groups(fmt: FormatOpt = Format.TABLE) -> None:
    """All groups with their member counts."""
    with report_errors():
        with transaction(session_factory()) as session:
            views = groups.list_groups(session)
        emit([_plain(view) for view in views], LIST_COLUMNS, fmt)


@app.command("show")
def show(ref: GroupArg, fmt: FormatOpt = Format.TABLE) -> None:
    """One group and its members (a dynamic group is evaluated now)."""
    with report_errors():
        with transaction(session_factory()) as session:
            found = groups.detail(session, ref)
        members = [{"id": m.asset_id, "hostname": m.hostname} for m in found.members]
        if fmt is Format.JSON:
            print_json({**_plain(found.group), "members": members})
            return
        view = found.group
        console.print(f"[bold]{escape(view.name)}[/bold] (id {view.id}, {view.kind})")
        if view.description:
            console.print(escape(view.description))
        if view.query:
            console.print(f"query: {escape(view.query)}", highlight=False, soft_wrap=True)
        emit(members, ("id", "hostname"), fmt, title=_members(view.member_count))


@app.command("add")
def add(ref: GroupArg, assets: AssetsOpt) -> None:
    """Add assets to a static group."""
    with report_errors():
        with transaction(session_factory()) as session:
            view = groups.add_members(session, cli_actor(), ref, parse_asset_ids(assets))
        typer.echo(f"group {view.name!r} now has {_members(view.member_count)}")


@app.command("remove")
def remove(ref: GroupArg, assets: AssetsOpt) -> None:
    """Remove assets from a static group."""
    with report_errors():
        with transaction(session_factory()) as session:
            view = groups.remove_members(session, cli_actor(), ref, parse_asset_ids(assets))
        typer.echo(f"group {view.name!r} now has {_members(view.member_count)}")


@app.command("delete")
def delete(ref: GroupArg) -> None:
    """Delete a group (its assets stay)."""
    with report_errors():
        with transaction(session_factory()) as session:
            view = groups.get(session, ref)
            groups.delete(session, cli_actor(), view.id)
        typer.echo(f"deleted group {view.name!r}")
