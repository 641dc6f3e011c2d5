"""Running the server: `serve`, the one-command `quickstart`, and `db upgrade`."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import uvicorn
from rich.console import Console
from sqlalchemy import Engine

from patchwarden.api.app import create_app
from patchwarden.cli.output import print_table
from patchwarden.config import Settings, get_settings
from patchwarden.errors import ConfigError
from patchwarden.services import agents, assets, users
from patchwarden.storage.db import make_engine, make_session_factory, transaction, upgrade

console = Console(stderr=True)


def bootstrap(settings: Settings) -> Engine:
    """Create the data directory, migrate the schema, create the first admin."""
    settings.check_safe()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.effective_database_url)
    upgrade(engine)
    with transaction(make_session_factory(engine)) as session:
        generated = users.ensure_first_admin(session, settings.admin_password)
    if generated:
        console.print(
            "[bold yellow]First start: created user 'admin' with password[/bold yellow] "
            f"[bold]{generated}[/bold]\n"
            "It is shown only this once. Change it with 'patchwarden users set-password admin'."
        )
    return engine


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Server processes sharing the port.")
    ] = 1,
    ssl_certfile: Annotated[
        Path | None, typer.Option(help="TLS certificate (PEM) to serve HTTPS.")
    ] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log",
            help="Log every request (agents poll every minute: a line per agent per minute).",
        ),
    ] = False,
) -> None:
    """Run the server (API, web UI, background upkeep, rollout engine)."""
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise ConfigError("give both --ssl-certfile and --ssl-keyfile, or neither")
    settings = get_settings()
    engine = bootstrap(settings)
    options: dict[str, Any] = {
        "host": host or settings.host,
        "port": port or settings.port,
        "log_level": "info",
        "proxy_headers": True,
        "access_log": access_log,
        "ssl_certfile": str(ssl_certfile) if ssl_certfile else None,
        "ssl_keyfile": str(ssl_keyfile) if ssl_keyfile else None,
    }
    if workers == 1:
        uvicorn.run(create_app(settings, engine), **options)
    else:
        # Each worker process builds its own app (and database pool) from the
        # same PATCHWARDEN_* settings; the database is the only shared state.
        engine.dispose()
        uvicorn.run(
            "patchwarden.api.app:create_app_from_env", factory=True, workers=workers, **options
        )


def db_upgrade() -> None:
    """Apply database migrations (the server also does this when it starts)."""
    settings = get_settings()
    upgrade(make_engine(settings.effective_database_url))
    typer.echo("database is up to date")


def quickstart(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8080,
    interval: Annotated[int, typer.Option(help="Local agent report interval, seconds.")] = 300,
) -> None:
    """Start the server and enrol this machine through a real agent process.

    The agent runs as a separate process (`patchwarden-agent run`), exactly as
    on any managed host; stop both with Ctrl-C.
    """
    settings = get_settings()
    engine = bootstrap(settings)
    app = create_app(settings, engine)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning")
    server = uvicorn.Server(config)
    url = f"http://{host}:{port}"
    state_dir = settings.data_dir / "local-agent"
    agent_process: list[subprocess.Popen[bytes]] = []

    def start_local_agent() -> None:
        if not _wait_healthy(url, server):
            return
        agent_cli = [sys.executable, "-m", "patchwarden.agent"]
        if not (state_dir / "credentials.json").exists():
            with transaction(make_session_factory(engine)) as session:
                token, _ = agents.create_enrollment_token(
                    session, "system:quickstart", timedelta(minutes=10), "quickstart local agent"
                )
            subprocess.run(
                [
                    *agent_cli,
                    "enroll",
                    "--server",
                    url,
                    "--token",
                    token,
                    "--state-dir",
                    str(state_dir),
                ],
                check=True,
            )
        subprocess.run([*agent_cli, "run", "--once", "--state-dir", str(state_dir)], check=True)
        agent_process.append(
            subprocess.Popen(
                [*agent_cli, "run", "--state-dir", str(state_dir), "--interval", str(interval)]
            )
        )
        _print_summary(url, engine)

    helper = threading.Thread(target=start_local_agent, name="quickstart-agent", daemon=True)
    helper.start()
    console.print(f"Patchwarden starting at [bold]{url}[/bold] (data in {settings.data_dir})")
    try:
        server.run()
    finally:
        for process in agent_process:
            process.terminate()
            process.wait(timeout=10)


def _wait_healthy(url: str, server: uvicorn.Server, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not server.should_exit:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def _print_summary(url: str, engine: Engine) -> None:
    with transaction(make_session_factory(engine)) as session:
        rows, _ = assets.list_assets(session)
        data = [assets.asset_summary(a) for a in rows]
    print_table(data, ["id", "hostname", "os", "kernel", "package_count", "status"], "Assets")
    console.print(
        f"\n[bold green]Patchwarden is running.[/bold green]\n"
        f"  Web UI:   {url}/  (log in as admin)\n"
        f"  API:      {url}/api/v1/assets  (token: patchwarden tokens create --user admin)\n"
        f"  API docs: {url}/api/v1/docs\n"
        f"  CLI:      patchwarden assets list | patchwarden assets packages 1\n"
        "This machine reports through a real agent process. Press Ctrl-C to stop."
    )
