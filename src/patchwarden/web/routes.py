"""Web pages: login, the asset inventory, one asset's packages and history,
and rollouts with their rings and jobs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from patchwarden import __version__
from patchwarden.api.deps import SESSION_COOKIE, Database, get_database
from patchwarden.domain.roles import Permission, role_has
from patchwarden.errors import AuthenticationFailed, NotFound
from patchwarden.rollouts.engine import FINISHED_ROLLOUT_STATES
from patchwarden.services import assets, rollouts, users
from patchwarden.services.users import Principal

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.globals["version"] = __version__


def _principal(request: Request) -> Principal | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    database: Database = get_database(request)
    try:
        with database.transaction() as session:
            principal = users.resolve_token(session, cookie)
    except AuthenticationFailed:
        return None
    return principal if role_has(principal.role, Permission.INVENTORY_READ) else None


def _page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return _page(request, "login.html", {"error": None})


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
) -> Response:
    database = get_database(request)
    settings = request.app.state.settings
    try:
        with database.transaction() as session:
            user = users.authenticate_password(session, username, password)
            secret, _ = users.create_token(
                session,
                f"user:{user.username}",
                user.id,
                "web",
                kind="session",
                ttl=timedelta(seconds=settings.session_ttl_seconds),
            )
    except AuthenticationFailed as exc:
        return _page(request, "login.html", {"error": str(exc)}, status_code=401)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        httponly=True,
        samesite="strict",
        secure=settings.environment == "production",
        max_age=settings.session_ttl_seconds,
    )
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    principal = _principal(request)
    if cookie and principal:
        with get_database(request).transaction() as session:
            users.revoke_token(session, principal.actor, principal.token_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/", response_class=HTMLResponse)
def inventory(request: Request, search: str | None = None) -> Response:
    principal = _principal(request)
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    with get_database(request).transaction() as session:
        rows, total = assets.list_assets(session, assets.AssetFilter(search=search or None))
        items = [assets.asset_summary(a) for a in rows]
    stale = sum(1 for item in items if item["status"] == "stale")
    return _page(
        request,
        "assets.html",
        {
            "user": principal,
            "assets": items,
            "total": total,
            "stale": stale,
            "search": search or "",
            "packages": sum(item["package_count"] for item in items),
        },
    )


@router.get("/assets/{asset_id}", response_class=HTMLResponse)
def asset_page(request: Request, asset_id: int) -> Response:
    principal = _principal(request)
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    try:
        with get_database(request).transaction() as session:
            asset = assets.get_asset(session, asset_id)
            detail = assets.asset_detail(session, asset)
            packages = assets.packages_of(session, asset_id)
            events = assets.package_events(session, asset_id, limit=200)
    except NotFound as exc:
        return _page(request, "error.html", {"user": principal, "message": str(exc)}, 404)
    return _page(
        request,
        "asset.html",
        {
            "user": principal,
            "asset": detail,
            "packages": packages,
            "events": events,
        },
    )


@router.get("/rollouts", response_class=HTMLResponse)
def rollouts_page(request: Request) -> Response:
    principal = _principal(request)
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    with get_database(request).reading() as session:
        items = rollouts.list_rollouts(session)
    return _page(request, "rollouts.html", {"user": principal, "rollouts": items})


@router.get("/rollouts/{rollout_id}", response_class=HTMLResponse)
def rollout_page(request: Request, rollout_id: int) -> Response:
    principal = _principal(request)
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    try:
        with get_database(request).reading() as session:
            view = rollouts.show(session, rollout_id)
    except NotFound as exc:
        return _page(request, "error.html", {"user": principal, "message": str(exc)}, 404)
    live = view["state"] not in FINISHED_ROLLOUT_STATES and view["state"] != "draft"
    return _page(request, "rollout.html", {"user": principal, "rollout": view, "live": live})
