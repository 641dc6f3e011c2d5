"""Assets: list, inspect, edit attributes, history, agentless (SSH) targets."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import typer

from patchwarden.cli.context import cli_actor, session_factory
from patchwarden.cli.output import Format, emit, print_json
from patchwarden.config import get_settings
from patchwarden.domain.attributes import AssetAttributes
from patchwarden.errors import InvalidInput
from patchwarden.services import agentless, assets, ingest
from patchwarden.storage.db import transaction

app = typer.Typer(help="Managed machines and their inventory.", no_args_is_help=True)
FormatOpt = Annotated[Format, typer.Option("--format", help="table or json")]


def _parse_moment(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{name} must be an ISO 8601 date/time, e.g. 2026-01-31T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{name} must carry a UTC offset, e.g. 2026-01-31T12:00:00Z")
    return moment


@app.command("list")
def list_assets(
    fmt: FormatOpt = Format.TABLE,
    search: Annotated[str | None, typer.Option(help="Substring of the hostname.")] = None,
    status: Annotated[str | None, typer.Option(help="active or stale")] = None,
    tag: Annotated[str | None, typer.Option()] = None,
) -> None:
    with transaction(session_factory()) as session:
        rows, _ = assets.list_assets(
            session, assets.AssetFilter(search=search, status=status, tag=tag), limit=1_000_000
        )
        data = [assets.asset_summary(a) for a in rows]
    emit(
        data,
        [
            "id",
            "hostname",
            "os",
            "kernel",
            "package_count",
            "criticality",
            "environment",
            "source",
            "status",
            "last_seen_at",
        ],
        fmt,
    )


@app.command("show")
def show(asset_id: int) -> None:
    """Everything known about one asset, as JSON."""
    with transaction(session_factory()) as session:
        print_json(assets.asset_detail(session, assets.get_asset(session, asset_id)))


@app.command("packages")
def packages(
    asset_id: int,
    fmt: FormatOpt = Format.TABLE,
    at: Annotated[
        str | None, typer.Option(help="Inventory as it was at this ISO 8601 moment.")
    ] = None,
    name: Annotated[str | None, typer.Option()] = None,
) -> None:
    with transaction(session_factory()) as session:
        rows = [
            {
                "name": p.name,
                "version": p.version,
                "arch": p.arch,
                "ecosystem": p.ecosystem,
                "source_name": p.source_name,
                "source_version": p.source_version,
                "status": p.status,
                "installed_at": p.installed_at,
                "removed_at": p.removed_at,
            }
            for p in assets.packages_of(session, asset_id, _parse_moment(at, "--at"), name)
        ]
    emit(rows, ["name", "version", "arch", "ecosystem", "source_name", "status"], fmt)


@app.command("history")
def history(
    asset_id: int,
    fmt: FormatOpt = Format.TABLE,
    since: Annotated[str | None, typer.Option(help="ISO 8601 moment")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 moment")] = None,
) -> None:
    """Packages installed, removed and changed since the first inventory."""
    with transaction(session_factory()) as session:
        rows = [
            {
                "at": e.at,
                "action": e.action,
                "name": e.name,
                "arch": e.arch,
                "old_version": e.old_version,
                "new_version": e.new_version,
            }
            for e in assets.package_events(
                session, asset_id, _parse_moment(since, "--since"), _parse_moment(until, "--until")
            )
        ]
    emit(rows, ["at", "action", "name", "arch", "old_version", "new_version"], fmt)


@app.command("set")
def set_attributes(
    asset_id: int,
    criticality: Annotated[int | None, typer.Option(help="1 (highest) to 4")] = None,
    environment: Annotated[str | None, typer.Option()] = None,
    owner: Annotated[str | None, typer.Option()] = None,
    business_service: Annotated[str | None, typer.Option()] = None,
    region: Annotated[str | None, typer.Option()] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA time zone, e.g. Europe/Berlin")] = None,
    tags: Annotated[str | None, typer.Option(help="Comma-separated; replaces the tags")] = None,
    internet_facing: Annotated[bool | None, typer.Option("--internet-facing/--internal")] = None,
    data_sensitivity: Annotated[
        str | None, typer.Option(help="public, internal, confidential, restricted")
    ] = None,
    device_type: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Change business attributes; only the options given are changed."""
    given = {
        "criticality": criticality,
        "environment": environment,
        "owner": owner,
        "business_service": business_service,
        "region": region,
        "timezone": timezone,
        "tags": None if tags is None else [t for t in tags.split(",") if t.strip()],
        "internet_facing": internet_facing,
        "data_sensitivity": data_sensitivity,
        "device_type": device_type,
    }
    try:
        attributes = AssetAttributes.model_validate(
            {k: v for k, v in given.items() if v is not None}
        )
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    with transaction(session_factory()) as session:
        asset = assets.update_attributes(session, cli_actor(), asset_id, attributes)
        print_json(assets.asset_summary(asset))


@app.command("delete")
def delete(asset_id: int, yes: Annotated[bool, typer.Option("--yes")] = False) -> None:
    """Forget an asset and its history (a decommissioned machine)."""
    if not yes:
        typer.confirm(f"Delete asset {asset_id} and all its history?", abort=True)
    with transaction(session_factory()) as session:
        assets.delete_asset(session, cli_actor(), asset_id)
    typer.echo(f"asset {asset_id} deleted")


@app.command("add-ssh")
def add_ssh(
    destination: Annotated[str, typer.Argument(help="user@host")],
    port: Annotated[int, typer.Option(min=1, max=65535)] = 22,
    key: Annotated[str | None, typer.Option(help="Private key file")] = None,
) -> None:
    """Add an agentless asset and collect its inventory over SSH now.

    The host key presented now is trusted from then on (trust on first use).
    """
    result = agentless.add_ssh_asset(session_factory(), cli_actor(), destination, port, key)
    print_json(result.__dict__)


@app.command("collect")
def collect(asset_id: int) -> None:
    """Collect an agentless asset's inventory over SSH again (host key must match)."""
    result = agentless.collect_asset(session_factory(), cli_actor(), asset_id)
    print_json(result.__dict__)


@app.command("mark-stale")
def mark_stale() -> None:
    """Mark assets that missed their check-ins (the server does this every minute)."""
    after = timedelta(seconds=get_settings().stale_after_seconds)
    with transaction(session_factory()) as session:
        count = ingest.mark_stale_assets(session, after)
    typer.echo(f"{count} asset(s) marked stale")
