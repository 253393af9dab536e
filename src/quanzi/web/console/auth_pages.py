"""Login, logout, language, invitations and the workspace chooser."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from quanzi.db.engine import session_scope
from quanzi.kit.errors import InvalidParameter, NotFound
from quanzi.team import service as team
from quanzi.team.errors import LoginFailed, LoginThrottled
from quanzi.team.roles import Perm
from quanzi.web.auth import request_engine
from quanzi.web.console.deps import (
    LANG_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    LoginRequired,
    Principal,
    client_ip,
    need,
    need_login,
    new_login_csrf,
    request_locale,
)
from quanzi.web.console.render import render
from quanzi.web.i18n import LOCALES, current_locale, gettext, translate_error

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None, default: str = "/") -> str:
    """Only local paths: never an open redirect to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def _login_page(
    request: Request, error: str | None = None, email: str = "", status_code: int = 200
) -> HTMLResponse:
    current_locale.set(request_locale(request))
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_login_csrf()
    response = render(
        request,
        "auth/login.html",
        {
            "error": error,
            "email": email,
            "login_csrf": token,
            "next": safe_next(request.query_params.get("next"), ""),
        },
        status_code=status_code,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/login",
    )
    return response


@router.get("/login")
def login_form(request: Request) -> HTMLResponse:
    return _login_page(request)


@router.post("/login")
def login(
    request: Request,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    current_locale.set(request_locale(request))
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, csrf_token):
        return _login_page(
            request, gettext("The login form expired. Please try again."), email, 403
        )
    ip = client_ip(request)
    agent = request.headers.get("user-agent", "")
    engine = request_engine(request)
    try:
        with session_scope(engine) as s:
            # A refused login is committed (its try counts toward the throttle), so it is
            # answered after the transaction, not by raising through it.
            login = _log_in(s, email, password, next, ip, agent)
    except LoginThrottled as exc:
        minutes = (exc.retry_after + 59) // 60
        page = _login_page(
            request,
            gettext("Too many failed logins. Try again in %(minutes)s minutes.")
            % {"minutes": minutes},
            email,
            429,
        )
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    if login is None:
        return _login_page(request, gettext("Wrong email or password."), email, 401)
    token, target = login
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=team.SESSION_DAYS * 86400,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


def _log_in(
    s: Session, email: str, password: str, next_path: str, ip: str, agent: str
) -> tuple[str, str] | None:
    """(session token, where to go) for good credentials; None (and the try audited) otherwise."""
    try:
        user = team.authenticate(s, email, password, ip)
    except LoginFailed:
        known = team.user_by_email(s, email)
        for ws, _role in team.workspaces_of(s, known.id) if known else []:
            team.audit(
                s,
                workspace_id=ws.id,
                user_id=known.id if known else None,
                actor=email.strip().lower()[:254],
                action="login.failed",
                ip=ip,
                user_agent=agent,
            )
        return None
    spaces = team.workspaces_of(s, user.id)
    target = safe_next(next_path, "")
    ws_id = spaces[0][0].id if spaces else None
    for ws, _role in spaces:
        if target.startswith(f"/w/{ws.name}/") or target == f"/w/{ws.name}":
            ws_id = ws.id
    token = team.start_session(s, user, ws_id, ip, agent)
    team.audit(
        s,
        workspace_id=ws_id,
        user_id=user.id,
        actor=user.email,
        action="login",
        ip=ip,
        user_agent=agent,
    )
    if not target:
        target = f"/w/{spaces[0][0].name}/dashboard" if len(spaces) == 1 else "/workspaces"
    return token, target


@router.post("/logout")
def logout(request: Request, p: Annotated[Principal, Depends(need_login())]) -> Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    with session_scope(request_engine(request)) as s:
        team.end_session(s, token)
        for name, _role in p.workspaces:
            ws = next((w for w, _r in team.workspaces_of(s, p.user.id) if w.name == name), None)
            if ws is not None:
                team.audit(
                    s,
                    workspace_id=ws.id,
                    user_id=p.user.id,
                    actor=p.user.email,
                    action="logout",
                    ip=p.ip,
                    user_agent=request.headers.get("user-agent"),
                )
                break
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/lang/{code}")
def switch_language(code: str, request: Request) -> Response:
    """Remember the chosen language in a cookie (a preference; nothing is stored server-side)."""
    if code not in LOCALES:
        raise NotFound(f"language {code!r} is not available (choose {', '.join(LOCALES)})")
    referer_path = request.query_params.get("next")
    response = RedirectResponse(safe_next(referer_path), status_code=303)
    response.set_cookie(
        LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", path="/", httponly=True
    )
    return response


@router.get("/")
def home(request: Request) -> Response:
    if not request.cookies.get(SESSION_COOKIE):
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse("/workspaces", status_code=303)


@router.get("/workspaces")
def workspaces(request: Request, p: Annotated[Principal, Depends(need_login())]) -> Response:
    if len(p.workspaces) == 1:
        return RedirectResponse(f"/w/{p.workspaces[0][0]}/dashboard", status_code=303)
    return render(request, "auth/workspaces.html", principal=p)


@router.get("/w/{workspace}")
def workspace_home(p: Annotated[Principal, Depends(need(Perm.VIEW))]) -> Response:
    return RedirectResponse(p.url("/dashboard"), status_code=303)


@router.get("/invite/{token}")
def invitation_form(token: str, request: Request) -> HTMLResponse:
    current_locale.set(request_locale(request))
    with session_scope(request_engine(request), read_only=True) as s:
        inv = team.open_invitation(s, token)
        existing = team.user_by_email(s, inv.email) is not None
        ctx = {"email": inv.email, "role": inv.role, "existing": existing, "error": None}
    return _invite_page(request, token, ctx)


def _invite_page(
    request: Request, token: str, ctx: dict[str, object], status_code: int = 200
) -> HTMLResponse:
    csrf = request.cookies.get(LOGIN_CSRF_COOKIE) or new_login_csrf()
    response = render(
        request,
        "auth/invite.html",
        {**ctx, "token": token, "login_csrf": csrf},
        status_code=status_code,
    )
    response.set_cookie(LOGIN_CSRF_COOKIE, csrf, httponly=True, samesite="strict", path="/invite")
    return response


@router.post("/invite/{token}")
def accept_invitation(
    token: str,
    request: Request,
    password: Annotated[str, Form(max_length=1024)] = "",
    display_name: Annotated[str, Form(max_length=100)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    current_locale.set(request_locale(request))
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    engine = request_engine(request)
    with session_scope(engine, read_only=True) as s:
        inv = team.open_invitation(s, token)
        ctx: dict[str, object] = {
            "email": inv.email,
            "role": inv.role,
            "existing": team.user_by_email(s, inv.email) is not None,
        }
    if not expected or not secrets.compare_digest(expected, csrf_token):
        ctx["error"] = gettext("The form expired. Please try again.")
        return _invite_page(request, token, ctx, 403)
    ip = client_ip(request)
    agent = request.headers.get("user-agent", "")
    try:
        with session_scope(engine) as s:
            user, inv = team.accept_invitation(s, token, password, display_name)
            team.audit(
                s,
                workspace_id=inv.workspace_id,
                user_id=user.id,
                actor=user.email,
                action="team.joined",
                target=user.email,
                detail={"role": inv.role},
                ip=ip,
                user_agent=agent,
            )
            session_token = team.start_session(s, user, inv.workspace_id, ip, agent)
            ws_name = next(
                w.name for w, _r in team.workspaces_of(s, user.id) if w.id == inv.workspace_id
            )
    except (InvalidParameter, LoginFailed) as exc:
        ctx["error"] = translate_error(str(exc))
        return _invite_page(request, token, ctx, exc.status_code)
    response = RedirectResponse(f"/w/{ws_name}/dashboard", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session_token,
        max_age=team.SESSION_DAYS * 86400,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


def redirect_to_login(exc: LoginRequired) -> RedirectResponse:
    from urllib.parse import quote

    return RedirectResponse(f"/login?next={quote(exc.next_path, safe='/')}", status_code=303)
