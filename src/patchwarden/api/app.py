"""The ASGI application: API under /api/v1, web pages under /, and the
background upkeep every server process runs (idempotent, so several
processes may run it at once)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from patchwarden import __version__
from patchwarden.api import errors
from patchwarden.api.deps import Database
from patchwarden.api.routes import (
    agent_jobs,
    agent_protocol,
    agents,
    approvals,
    assets,
    audit,
    auth,
    baselines,
    exceptions,
    findings,
    groups,
    imports,
    patches,
    repositories,
    rollouts,
    users,
)
from patchwarden.api.timing import ServerTimingMiddleware
from patchwarden.config import Settings
from patchwarden.services import job_signing, upkeep
from patchwarden.services import rollouts as rollout_engine
from patchwarden.storage.db import make_session_factory

log = logging.getLogger("patchwarden.server")
UPKEEP_INTERVAL_SECONDS = 10


def create_app(settings: Settings, engine: Engine, *, run_upkeep: bool = True) -> FastAPI:
    database = Database(make_session_factory(engine), make_session_factory(engine, read_only=True))

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tasks = (
            [
                asyncio.create_task(_upkeep_loop(database, settings)),
                asyncio.create_task(_engine_loop(database, settings)),
            ]
            if run_upkeep
            else []
        )
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        title="Patchwarden",
        version=__version__,
        description='Self-hosted patch management. Errors are JSON: {"error", "message"}.',
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.job_signer = job_signing.load_or_create(settings.effective_job_signing_key_file)
    errors.install(app)
    app.add_middleware(ServerTimingMiddleware)

    api = APIRouter(prefix="/api/v1")
    routers = [
        m.router
        for m in (
            # Agents' polls are most of the traffic: their routes match first.
            agent_jobs,
            agent_protocol,
            auth,
            users,
            agents,
            assets,
            groups,
            imports,
            findings,
            repositories,
            patches,
            approvals,
            exceptions,
            baselines,
            rollouts,
            audit,
        )
    ]
    for router in routers:
        api.include_router(router)
    app.include_router(api)
    # The API's routes with their full paths, for the docs and the role-matrix test.
    app.state.api_routes = [
        (f"/api/v1{route.path}", route)
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
    ]

    @app.get("/healthz", tags=["health"], include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    from patchwarden.web import routes as web_routes

    app.include_router(web_routes.router)
    return app


def upkeep_once(database: Database, settings: Settings) -> int:
    """One upkeep round (services.upkeep); returns how many assets went stale."""
    done = upkeep.run_once(
        database.factory,
        timedelta(seconds=settings.stale_after_seconds),
        recompute_workers=settings.recompute_workers,
    )
    return done.stale


async def _upkeep_loop(database: Database, settings: Settings) -> None:
    while True:
        try:
            marked = await run_in_threadpool(upkeep_once, database, settings)
            if marked:
                log.info("marked %d asset(s) stale", marked)
        except Exception:  # keep the loop alive; the next round retries
            log.exception("upkeep failed")
        await asyncio.sleep(UPKEEP_INTERVAL_SECONDS)


async def _engine_loop(database: Database, settings: Settings) -> None:
    """The rollout engine: one round every rollout_tick_seconds (on PostgreSQL
    one process at a time does the work; the others find the lock taken)."""
    while True:
        try:
            await run_in_threadpool(
                rollout_engine.tick, database.factory, None, database.read_factory
            )
        except Exception:  # keep the loop alive; the next round retries
            log.exception("rollout engine round failed")
        await asyncio.sleep(settings.rollout_tick_seconds)


def create_app_from_env() -> FastAPI:
    """App factory for `patchwarden serve --workers N` (each worker process calls it)."""
    from patchwarden.config import get_settings
    from patchwarden.storage.db import make_engine

    settings = get_settings()
    return create_app(settings, make_engine(settings.effective_database_url))
