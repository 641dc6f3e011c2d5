"""Exceptions (risk acceptances) and compliance: `patchwarden exceptions ...`,
`patchwarden compliance`."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from patchwarden.cli.common import report_errors
from patchwarden.cli.context import acting_user, cli_actor, session_factory
from patchwarden.cli.output import Format, console, emit, print_json
from patchwarden.domain.roles import Permission, role_has
from patchwarden.errors import InvalidInput, PermissionDenied
from patchwarden.services import exceptions
from patchwarden.storage.db import transaction

app = typer.Typer(
    help="Exceptions: accepted risks for a finding, a patch or an asset, until they expire.",
    no_args_is_help=True,
)
FormatOpt = Annotated[Format, typer.Option("--format", help="table or json")]
AsOpt = Annotated[
    str | None,
    typer.Option(
        "--as",
        metavar="USERNAME",
        help="Act as this user, who must be allowed to decide (approver or admin); "
        "default: the OS user",
    ),
]
LIST_COLUMNS = (
    "id",
    "scope",
    "target_id",
    "state",
    "expires_at",
    "approved_by",
    "revoked_by",
    "justification",
)


def parse_expiry(text: str) -> datetime:
    """ISO 8601: a date (2026-03-31) means the end of that day in UTC
    (23:59:59Z); a date-time needs its UTC offset (2026-03-31T18:00:00+02:00)."""
    value = text.strip()
    try:
        day = date.fromisoformat(value)
    except ValueError:
        pass
    else:
        return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"--expires {text!r} is not an ISO 8601 date (2026-03-31) or date-time "
            "(2026-03-31T18:00:00Z)"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(
            f"--expires {text!r} has no UTC offset: add one (Z, +02:00) or give a date"
        )
    return moment


def _decider(session: Session, username: str | None) -> str:
    if username is None:
        return cli_actor()
    name, role = acting_user(session, username)
    if not role_has(role, Permission.APPROVALS_DECIDE):
        raise PermissionDenied(
            f"{name} (role {role}) may not accept or revoke risks: that takes an approver"
        )
    return name


@app.command("add")
def add(
    justification: Annotated[
        str,
        typer.Option("--justification", help="Why the risk is accepted (10-4000 characters)"),
    ],
    expires: Annotated[
        str,
        typer.Option(
            "--expires",
            metavar="DATE_OR_DATETIME",
            help="ISO 8601, at most 365 days ahead. A date (2026-03-31) means the end of "
            "that day in UTC (23:59:59Z); a date-time needs an offset "
            "(2026-03-31T18:00:00+02:00 or …Z)",
        ),
    ],
    finding: Annotated[int | None, typer.Option("--finding", help="A finding's id")] = None,
    patch: Annotated[
        int | None, typer.Option("--patch", help="A patch's id: its findings on every asset")
    ] = None,
    asset: Annotated[
        int | None, typer.Option("--asset", help="An asset's id: all its findings")
    ] = None,
    as_user: AsOpt = None,
) -> None:
    """Accept a risk until it expires: the findings it covers are "excepted"
    (out of the compliance and SLA figures) and reopen when it ends."""
    with report_errors():
        targets = [
            (scope, target)
            for scope, target in (("finding", finding), ("patch", patch), ("asset", asset))
            if target is not None
        ]
        if len(targets) != 1:
            raise InvalidInput("give exactly one of --finding ID, --patch ID or --asset ID")
        [(scope, target_id)] = targets
        expires_at = parse_expiry(expires)
        with transaction(session_factory()) as session:
            view = exceptions.add(
                session, _decider(session, as_user), scope, target_id, justification, expires_at
            )
    typer.echo(
        f"exception {view['id']}: {view['scope']} {view['target_id']} accepted "
        f"until {view['expires_at']}"
    )


@app.command("list")
def list_exceptions(
    state: Annotated[str | None, typer.Option(help="active, expired or revoked")] = None,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Exceptions, oldest first."""
    with report_errors(), transaction(session_factory()) as session:
        rows = exceptions.list_acceptances(session, state)
    emit(rows, LIST_COLUMNS, fmt)


@app.command("revoke")
def revoke(
    acceptance_id: Annotated[int, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit log")] = "",
    as_user: AsOpt = None,
) -> None:
    """End an exception now: the findings it covered reopen."""
    with report_errors(), transaction(session_factory()) as session:
        view = exceptions.revoke(session, _decider(session, as_user), acceptance_id, reason)
    typer.echo(f"exception {view['id']} revoked")


def compliance(fmt: FormatOpt = Format.TABLE) -> None:
    """Fleet compliance: open and overdue findings (excepted ones counted apart),
    and exceptions that expired in the last 7 days."""
    with transaction(session_factory()) as session:
        figures = exceptions.compliance(session)
    if fmt is Format.JSON:
        print_json(figures)
        return
    for key, value in figures.items():
        if key not in ("recently_expired_exceptions", "scopes"):
            console.print(f"{key.replace('_', ' ')}: {value}", highlight=False, markup=False)
    if figures["recently_expired_exceptions"]:
        emit(
            figures["recently_expired_exceptions"],
            LIST_COLUMNS,
            fmt,
            title="exceptions expired in the last 7 days",
        )
