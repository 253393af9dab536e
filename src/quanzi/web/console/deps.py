"""Who is asking: the signed-in user, their role in the workspace of the URL, CSRF.

Every console route declares what it needs with `Depends(need(Perm.X))` (or `need_login()`
for pages outside a workspace); `tests/console/test_console_access.py` walks the app's routes and
fails on a console route that declares nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from quanzi.core.workspaces.models import Workspace
from quanzi.db.engine import session_scope
from quanzi.kit.clock import LocalCalendar, now_us
from quanzi.kit.errors import NotFound, QuanziError
from quanzi.team import service as team
from quanzi.team.errors import NotAllowed
from quanzi.team.roles import Perm, is_scoped, may
from quanzi.web.auth import request_engine
from quanzi.web.i18n import DEFAULT_LOCALE, LOCALES, current_locale

SESSION_COOKIE = "qz_session"
LANG_COOKIE = "qz_lang"
LOGIN_CSRF_COOKIE = "qz_login_csrf"


class LoginRequired(Exception):
    """No valid login: the console answers with a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfFailed(QuanziError):
    status_code = 403


@dataclass(frozen=True)
class UserInfo:
    id: int
    email: str
    display_name: str
    locale: str


@dataclass(frozen=True)
class WorkspaceInfo:
    id: int
    name: str
    timezone: str


@dataclass
class Principal:
    """The signed-in user in one workspace (or none, for pages outside workspaces)."""

    request: Request
    user: UserInfo
    csrf_token: str
    workspace: WorkspaceInfo | None = None
    role: str | None = None
    # None: every group; a set: an operator's assigned groups only.
    group_ids: frozenset[int] | None = None
    workspaces: list[tuple[str, str]] = field(default_factory=list)  # (name, role)

    def may(self, perm: Perm | str) -> bool:
        return self.role is not None and may(self.role, Perm(perm))

    @property
    def ws(self) -> WorkspaceInfo:
        if self.workspace is None:
            raise NotFound("no workspace")
        return self.workspace

    @property
    def calendar(self) -> LocalCalendar:
        return LocalCalendar(self.ws.timezone)

    @property
    def ip(self) -> str:
        return client_ip(self.request)

    def url(self, path: str = "") -> str:
        """A path inside the current workspace: p.url('/groups') → /w/default/groups."""
        return f"/w/{quote(self.ws.name)}{path}"

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session: runs beside an ingest and never takes SQLite's write lock."""
        with session_scope(request_engine(self.request), read_only=True) as s:
            yield s

    @contextmanager
    def write(self) -> Iterator[Session]:
        with session_scope(request_engine(self.request)) as s:
            yield s

    def audit(
        self,
        s: Session,
        action: str,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        team.audit(
            s,
            workspace_id=self.workspace.id if self.workspace else None,
            user_id=self.user.id,
            actor=self.user.email,
            action=action,
            target=target,
            detail=detail,
            ip=self.ip,
            user_agent=self.request.headers.get("user-agent"),
        )


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def request_locale(request: Request, user: UserInfo | None = None) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LOCALES:
        return chosen
    if user is not None and user.locale in LOCALES:
        return user.locale
    return DEFAULT_LOCALE


def _login(request: Request) -> tuple[UserInfo, str, str]:
    """(user, csrf token, session token) of the request's login, or LoginRequired."""
    token = request.cookies.get(SESSION_COOKIE, "")
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    engine = request_engine(request)
    with session_scope(engine, read_only=True) as s:
        found = team.resolve_session(s, token)
        if found is None:
            raise LoginRequired(target)
        ws_session, user = found
        info = UserInfo(user.id, user.email, user.display_name, user.locale)
        csrf = ws_session.csrf_token
        stale = ws_session.last_seen_at_us
    if now_us() - stale > 60_000_000:
        with session_scope(engine) as s:
            found = team.resolve_session(s, token)
            if found is not None:
                team.touch_session(s, found[0])
    return info, csrf, token


async def _check_csrf(request: Request, expected: str) -> None:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get("csrf_token")
            sent = value if isinstance(value, str) else None
    if not sent or not secrets.compare_digest(sent, expected):
        raise CsrfFailed(
            "the form has expired or did not come from this site; reload the page and try again"
        )


class need:
    """Dependency: a login with `perm` in the URL's workspace (403 otherwise, 404 for a
    workspace the user has no seat in). POST/PUT/DELETE requests must carry the CSRF token."""

    def __init__(self, perm: Perm) -> None:
        self.perm = perm

    async def __call__(self, request: Request, workspace: str) -> Principal:
        user, csrf, _token = _login(request)
        current_locale.set(request_locale(request, user))
        await _check_csrf(request, csrf)
        with session_scope(request_engine(request), read_only=True) as s:
            ws = s.scalar(select(Workspace).where(Workspace.name == workspace))
            seat = team.seat(s, ws.id, user.id) if ws is not None else None
            if ws is None or seat is None or not seat.active:
                raise NotFound(f"workspace {workspace!r} does not exist or you are not in it")
            role = seat.role
            info = WorkspaceInfo(ws.id, ws.name, ws.timezone)
            groups = (
                frozenset(team.assigned_group_ids(s, ws.id, user.id)) if is_scoped(role) else None
            )
            mine = [(w.name, r) for w, r in team.workspaces_of(s, user.id)]
        p = Principal(request, user, csrf, info, role, groups, mine)
        request.state.principal = p
        if not p.may(self.perm):
            raise NotAllowed(f"your role ({role}) may not do this")
        return p


class need_login:
    """Dependency: any login (pages outside a workspace: the workspace chooser, logout)."""

    perm = None

    async def __call__(self, request: Request) -> Principal:
        user, csrf, _token = _login(request)
        current_locale.set(request_locale(request, user))
        await _check_csrf(request, csrf)
        with session_scope(request_engine(request), read_only=True) as s:
            mine = [(w.name, r) for w, r in team.workspaces_of(s, user.id)]
        p = Principal(request, user, csrf, workspaces=mine)
        request.state.principal = p
        return p


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)
