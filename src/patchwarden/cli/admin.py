"""Administration: users, API tokens, enrolment tokens, agents, audit log."""

from __future__ import annotations

import getpass
from datetime import timedelta
from typing import Annotated

import typer

from patchwarden.cli.context import cli_actor, session_factory
from patchwarden.cli.output import Format, emit, print_json
from patchwarden.config import get_settings
from patchwarden.errors import InvalidInput
from patchwarden.services import agents, audit, users
from patchwarden.storage.db import transaction

users_app = typer.Typer(help="Manage users and their roles.", no_args_is_help=True)
tokens_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
enroll_app = typer.Typer(help="One-time agent enrolment tokens.", no_args_is_help=True)
agents_app = typer.Typer(help="Enrolled agents.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)

FormatOpt = Annotated[Format, typer.Option("--format", help="table or json")]


def _ask_password(password: str | None) -> str:
    if password is not None:
        return password
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        raise InvalidInput("the two passwords differ")
    return first


@users_app.command("create")
def users_create(
    username: str,
    role: Annotated[str, typer.Option(help="admin, operator, approver, auditor or viewer")],
    password: Annotated[str | None, typer.Option(help="Prompted for when not given.")] = None,
) -> None:
    """Create a user."""
    with transaction(session_factory()) as session:
        view = users.create_user(session, cli_actor(), username, _ask_password(password), role)
    typer.echo(f"created user {view.username} (id {view.id}, role {view.role})")


@users_app.command("list")
def users_list(fmt: FormatOpt = Format.TABLE) -> None:
    with transaction(session_factory()) as session:
        rows = [u.__dict__ for u in users.list_users(session)]
    emit(rows, ["id", "username", "role", "is_active", "created_at"], fmt)


@users_app.command("set-role")
def users_set_role(username: str, role: str) -> None:
    with transaction(session_factory()) as session:
        users.update_user(session, cli_actor(), username, role=role)
    typer.echo(f"{username} is now {role}")


@users_app.command("set-password")
def users_set_password(
    username: str, password: Annotated[str | None, typer.Option()] = None
) -> None:
    """Set a user's password (ends the user's web sessions)."""
    secret = _ask_password(password)
    with transaction(session_factory()) as session:
        users.update_user(session, cli_actor(), username, password=secret)
    typer.echo(f"password of {username} changed")


@users_app.command("disable")
def users_disable(username: str) -> None:
    with transaction(session_factory()) as session:
        users.update_user(session, cli_actor(), username, is_active=False)
    typer.echo(f"{username} disabled")


@users_app.command("enable")
def users_enable(username: str) -> None:
    with transaction(session_factory()) as session:
        users.update_user(session, cli_actor(), username, is_active=True)
    typer.echo(f"{username} enabled")


@tokens_app.command("create")
def tokens_create(
    username: Annotated[str, typer.Option("--user", help="Whose token it is.")],
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    days: Annotated[int | None, typer.Option(help="Expire after this many days.")] = None,
) -> None:
    """Create an API token; prints only the secret (shown once)."""
    with transaction(session_factory()) as session:
        user = users.get_user(session, username)
        secret, _ = users.create_token(
            session, cli_actor(), user.id, name, ttl=timedelta(days=days) if days else None
        )
    typer.echo(secret)


@tokens_app.command("list")
def tokens_list(fmt: FormatOpt = Format.TABLE) -> None:
    with transaction(session_factory()) as session:
        rows = [t.__dict__ for t in users.list_tokens(session)]
    emit(rows, ["id", "user_id", "name", "prefix", "created_at", "expires_at", "revoked_at"], fmt)


@tokens_app.command("revoke")
def tokens_revoke(token_id: int) -> None:
    with transaction(session_factory()) as session:
        users.revoke_token(session, cli_actor(), token_id)
    typer.echo(f"token {token_id} revoked")


@enroll_app.command("create")
def enroll_create(
    hours: Annotated[
        float | None, typer.Option(help="Lifetime (default: the server setting).")
    ] = None,
    note: Annotated[str, typer.Option(help="What the token is for.")] = "",
) -> None:
    """Create a one-time enrolment token; prints only the token."""
    ttl = (
        timedelta(hours=hours)
        if hours
        else timedelta(seconds=get_settings().enrollment_token_ttl_seconds)
    )
    with transaction(session_factory()) as session:
        secret, _ = agents.create_enrollment_token(session, cli_actor(), ttl, note)
    typer.echo(secret)


@enroll_app.command("list")
def enroll_list(fmt: FormatOpt = Format.TABLE) -> None:
    with transaction(session_factory()) as session:
        rows = [t.__dict__ for t in agents.list_enrollment_tokens(session)]
    emit(
        rows,
        [
            "id",
            "prefix",
            "note",
            "created_by",
            "expires_at",
            "used_at",
            "used_by_agent_id",
            "revoked_at",
        ],
        fmt,
    )


@enroll_app.command("revoke")
def enroll_revoke(token_id: int) -> None:
    with transaction(session_factory()) as session:
        agents.revoke_enrollment_token(session, cli_actor(), token_id)
    typer.echo(f"enrolment token {token_id} revoked")


@agents_app.command("list")
def agents_list(fmt: FormatOpt = Format.TABLE) -> None:
    with transaction(session_factory()) as session:
        rows = [a.__dict__ for a in agents.list_agents(session)]
    emit(rows, ["id", "asset_id", "hostname", "agent_version", "last_seen_at", "revoked_at"], fmt)


@agents_app.command("revoke")
def agents_revoke(agent_id: int) -> None:
    """Revoke an agent's credential: its reports are refused from now on."""
    with transaction(session_factory()) as session:
        agents.revoke_agent(session, cli_actor(), agent_id)
    typer.echo(f"agent {agent_id} revoked")


@audit_app.command("list")
def audit_list(
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 50,
    action: Annotated[str | None, typer.Option()] = None,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    with transaction(session_factory()) as session:
        rows = [
            {
                "id": e.id,
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "target": f"{e.target_type}:{e.target_id}",
                "details": e.details,
            }
            for e in audit.list_events(session, action=action, limit=limit)
        ]
    emit(rows, ["id", "at", "actor", "action", "target", "details"], fmt)


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the hash chain; exit 1 if any event was edited or removed."""
    with transaction(session_factory()) as session:
        check = audit.verify_chain(session)
    print_json(check.__dict__)
    if not check.ok:
        raise typer.Exit(1)
