"""Approvals and auto-approval rules: `patchwarden approvals ...`, `patchwarden rules ...`.

The CLI has local database access: by default it acts as the OS user
(`cli:NAME`) with approver rights; `--as USERNAME` acts as an existing user,
whose role decides whether they may approve.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy.orm import Session

from patchwarden.cli.common import report_errors
from patchwarden.cli.context import acting_user, cli_actor, session_factory
from patchwarden.cli.output import Format, emit
from patchwarden.domain.roles import Permission, role_has
from patchwarden.errors import InvalidInput
from patchwarden.services import approvals
from patchwarden.storage.db import transaction

approvals_app = typer.Typer(
    help="Manual approval of patches: request, approve, decline, lift, revoke.",
    no_args_is_help=True,
)
rules_app = typer.Typer(
    help="Auto-approval rules of groups, e.g. security fixes 7 days after release.",
    no_args_is_help=True,
)
FormatOpt = Annotated[Format, typer.Option("--format", help="table or json")]
PatchArg = Annotated[int, typer.Argument(metavar="PATCH_ID", help="The patch's id")]
CommentOpt = Annotated[
    str | None, typer.Option("--comment", help="Why (required to decline or revoke)")
]
AsOpt = Annotated[
    str | None,
    typer.Option(
        "--as",
        metavar="USERNAME",
        help="Act as this user; their role decides whether they may approve "
        "(default: the OS user, as an approver)",
    ),
]
APPROVAL_COLUMNS = (
    "patch_id",
    "package",
    "target_version",
    "state",
    "requested_by",
    "decided_by",
    "decided_at",
    "comment",
)
RULE_COLUMNS = (
    "id",
    "group",
    "position",
    "name",
    "classifications",
    "min_severity",
    "min_cvss",
    "kev_only",
    "include",
    "exclude",
    "days_after_release",
    "timezone",
)


def approval_actor(session: Session, username: str | None) -> approvals.Actor:
    if username is None:
        return approvals.Actor(cli_actor(), can_approve=True)
    name, role = acting_user(session, username)
    return approvals.Actor(name, role_has(role, Permission.APPROVALS_DECIDE))


def _act(action: str, patch_id: int, comment: str | None, username: str | None) -> None:
    with report_errors(), transaction(session_factory()) as session:
        view = approvals.act(session, approval_actor(session, username), patch_id, action, comment)
    typer.echo(
        f"patch {view['patch_id']} ({view['package']} {view['target_version']}): {view['state']}"
    )


@approvals_app.command("request")
def request(patch_id: PatchArg, comment: CommentOpt = None, as_user: AsOpt = None) -> None:
    """Ask for a patch to be approved."""
    _act("request", patch_id, comment, as_user)


@approvals_app.command("approve")
def approve(patch_id: PatchArg, comment: CommentOpt = None, as_user: AsOpt = None) -> None:
    """Approve a requested patch (with four-eyes on, not one's own request)."""
    _act("approve", patch_id, comment, as_user)


@approvals_app.command("decline")
def decline(patch_id: PatchArg, comment: CommentOpt = None, as_user: AsOpt = None) -> None:
    """Decline a patch, saying why: no rule can approve it until it is lifted."""
    _act("decline", patch_id, comment, as_user)


@approvals_app.command("lift")
def lift(patch_id: PatchArg, comment: CommentOpt = None, as_user: AsOpt = None) -> None:
    """Lift a decline: the patch is requested again."""
    _act("lift", patch_id, comment, as_user)


@approvals_app.command("revoke")
def revoke(patch_id: PatchArg, comment: CommentOpt = None, as_user: AsOpt = None) -> None:
    """Revoke an approval, saying why: the patch is requested again."""
    _act("revoke", patch_id, comment, as_user)


@approvals_app.command("list")
def list_approvals(
    state: Annotated[str | None, typer.Option(help="pending, approved or declined")] = None,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Manual decisions and the rules' decisions, per patch."""
    with report_errors(), transaction(session_factory()) as session:
        rows = approvals.list_approvals(session, state)
    emit(rows, APPROVAL_COLUMNS, fmt)


@approvals_app.command("four-eyes")
def four_eyes(
    setting: Annotated[
        str | None, typer.Argument(metavar="[on|off]", help="Omit to show the setting")
    ] = None,
) -> None:
    """Show or set four-eyes approval: nobody approves their own request."""
    with report_errors(), transaction(session_factory()) as session:
        if setting is not None:
            if setting not in ("on", "off"):
                raise InvalidInput(f"four-eyes takes on or off, not {setting!r}")
            approvals.set_four_eyes(session, cli_actor(), setting == "on")
        enabled = approvals.four_eyes(session)
    typer.echo(f"four-eyes approval is {'on' if enabled else 'off'}")


@rules_app.command("add")
def add_rule(
    group: Annotated[str, typer.Option("--group", help="The group's name or id")],
    name: Annotated[str, typer.Option("--name", help="Unique within the group")],
    classification: Annotated[
        list[str] | None,
        typer.Option(
            "--classification", help="security, bugfix, enhancement or unclassified (repeat)"
        ),
    ] = None,
    min_severity: Annotated[
        str | None, typer.Option("--min-severity", help="low, medium, high or critical")
    ] = None,
    min_cvss: Annotated[
        float | None, typer.Option("--min-cvss", help="The highest CVSS it fixes, 0-10")
    ] = None,
    kev_only: Annotated[
        bool, typer.Option("--kev-only", help="Only patches fixing a CISA KEV vulnerability")
    ] = False,
    include: Annotated[
        list[str] | None,
        typer.Option("--include", help="Package glob, e.g. 'openssl*' (repeat; default all)"),
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Package glob to leave out (repeat)")
    ] = None,
    days_after_release: Annotated[
        int | None,
        typer.Option("--days-after-release", help="Calendar days to wait after the release"),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option("--timezone", help="IANA zone of those days, e.g. Europe/Berlin (UTC)"),
    ] = None,
) -> None:
    """Add an auto-approval rule after the group's others; its patches are
    decided again at once."""
    definition: dict[str, Any] = {"name": name}
    optional = {
        "classifications": classification,
        "min_severity": min_severity,
        "min_cvss": min_cvss,
        "kev_only": kev_only or None,
        "include": include,
        "exclude": exclude,
        "days_after_release": days_after_release,
        "timezone": timezone,
    }
    definition |= {key: value for key, value in optional.items() if value is not None}
    with report_errors(), transaction(session_factory()) as session:
        rule = approvals.add_rule(session, cli_actor(), group, definition)
    typer.echo(f"added rule {rule['id']} {rule['name']!r} to group {rule['group']}")


@rules_app.command("list")
def list_rules(
    group: Annotated[str | None, typer.Option("--group", help="The group's name or id")] = None,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Rules per group, in the order they are evaluated."""
    with report_errors(), transaction(session_factory()) as session:
        rows = approvals.list_rules(session, group)
    emit(rows, RULE_COLUMNS, fmt)


@rules_app.command("remove")
def remove_rule(rule_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Remove a rule; its group's patches are decided again."""
    with report_errors(), transaction(session_factory()) as session:
        approvals.remove_rule(session, cli_actor(), rule_id)
    typer.echo(f"removed rule {rule_id}")
