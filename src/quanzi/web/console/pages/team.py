"""The team page: colleagues, roles, operators' groups, invitations, deactivation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quanzi.core.groups import repository as groups_repo
from quanzi.kit.clock import now_us
from quanzi.kit.errors import InvalidParameter, QuanziError
from quanzi.team import service as team
from quanzi.team.models import User
from quanzi.team.roles import GRANTABLE, ROLES, Perm, is_scoped
from quanzi.web.console.deps import Principal, need
from quanzi.web.console.render import render
from quanzi.web.i18n import gettext, translate_error

router = APIRouter(include_in_schema=False)

TeamUser = Annotated[Principal, Depends(need(Perm.MANAGE_TEAM))]
# The new invitation link travels to the page after the redirect in this cookie, once.
INVITE_COOKIE = "qz_new_invite"


def _done_message(done: str) -> str | None:
    messages = {
        "invited": gettext(
            "Invitation created. Copy the link below and send it to your colleague."
        ),
        "revoked": gettext("Invitation revoked."),
        "role": gettext("Role changed."),
        "groups": gettext("Assigned groups saved."),
        "deactivated": gettext("Colleague deactivated; their logins have ended."),
        "reactivated": gettext("Colleague reactivated."),
    }
    return messages.get(done)


def _team_page(
    p: Principal, *, error: str | None = None, status_code: int = 200, link: str | None = None
) -> HTMLResponse:
    request = p.request
    with p.read() as s:
        rows = team.team(s, p.ws.id)
        pending = team.pending_invitations(s, p.ws.id)
        groups = groups_repo.groups(s, p.ws.id, group_ids=None, status="all", end_us=now_us())
    names = {g.id: g.name or g.group_key for g in groups}
    flashes: list[tuple[str, str]] = []
    done = _done_message(request.query_params.get("done", ""))
    if done and error is None:
        flashes.append(("ok", done))
    if error:
        flashes.append(("error", error))
    grantable = GRANTABLE.get(p.role or "", ())
    ctx: dict[str, Any] = {
        "active": "team",
        "flashes": flashes,
        "rows": rows,
        "pending": pending,
        "groups": [
            {
                "id": g.id,
                "name": g.name or g.group_key,
                "key": g.group_key,
                "gone": bool(g.dismissed_at_us),
            }
            for g in groups
        ],
        "group_names": names,
        "grantable": grantable,
        "roles": ROLES,
        "is_scoped": is_scoped,
        "invite_link": link,
        "may_touch": lambda row: row.role != "owner" or p.role == "owner",
    }
    return render(request, "team/team.html", ctx, principal=p, status_code=status_code)


def _error(p: Principal, exc: QuanziError) -> HTMLResponse:
    return _team_page(p, error=translate_error(str(exc)), status_code=exc.status_code)


def _back(p: Principal, done: str, **extra: str) -> RedirectResponse:
    query = "&".join([f"done={done}", *(f"{k}={v}" for k, v in extra.items())])
    return RedirectResponse(p.url(f"/team?{query}"), status_code=303)


@router.get("/w/{workspace}/team")
def team_page(p: TeamUser) -> Response:
    link = None
    token = p.request.cookies.get(INVITE_COOKIE)
    if token and p.request.query_params.get("done") == "invited":
        link = str(p.request.base_url).rstrip("/") + f"/invite/{token}"
    response = _team_page(p, link=link)
    if token:
        response.delete_cookie(INVITE_COOKIE, path=p.url("/team"))
    return response


@router.post("/w/{workspace}/team/invite")
def invite(
    p: TeamUser,
    email: Annotated[str, Form(max_length=254)] = "",
    role: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    try:
        with p.write() as s:
            actor = s.get(User, p.user.id)
            assert actor is not None
            token = team.invite(s, p.ws.id, actor, p.role or "", email, role)
            p.audit(s, "team.invited", target=team.normalize_email(email), detail={"role": role})
    except QuanziError as exc:
        return _error(p, exc)
    response = _back(p, "invited")
    response.set_cookie(
        INVITE_COOKIE,
        token,
        max_age=600,
        httponly=True,
        samesite="strict",
        secure=p.request.url.scheme == "https",
        path=p.url("/team"),
    )
    return response


@router.post("/w/{workspace}/team/invitations/{invitation_id}/revoke")
def revoke(p: TeamUser, invitation_id: int) -> Response:
    try:
        with p.write() as s:
            inv = team.revoke_invitation(s, p.ws.id, invitation_id)
            p.audit(s, "team.invitation_revoked", target=inv.email, detail={"role": inv.role})
    except QuanziError as exc:
        return _error(p, exc)
    return _back(p, "revoked")


def _email_of(s: Any, user_id: int) -> str:
    user = s.get(User, user_id)
    return user.email if user is not None else str(user_id)


@router.post("/w/{workspace}/team/{user_id}/role")
def change_role(
    p: TeamUser, user_id: int, role: Annotated[str, Form(max_length=16)] = ""
) -> Response:
    try:
        with p.write() as s:
            old, new = team.change_role(s, p.ws.id, p.role or "", user_id, role)
            if old != new:
                p.audit(
                    s,
                    "team.role_changed",
                    target=_email_of(s, user_id),
                    detail={"old": old, "new": new},
                )
    except QuanziError as exc:
        return _error(p, exc)
    return _back(p, "role")


@router.post("/w/{workspace}/team/{user_id}/groups")
def assign_groups(
    p: TeamUser,
    user_id: int,
    group_ids: Annotated[list[int] | None, Form()] = None,
) -> Response:
    try:
        with p.write() as s:
            added, removed = team.assign_groups(s, p.ws.id, user_id, list(group_ids or []))
            if added or removed:
                p.audit(
                    s,
                    "team.groups_assigned",
                    target=_email_of(s, user_id),
                    detail={"added": sorted(added), "removed": sorted(removed)},
                )
    except QuanziError as exc:
        return _error(p, exc)
    return _back(p, "groups")


def _set_active(p: Principal, user_id: int, active: bool) -> Response:
    try:
        if not active and user_id == p.user.id:
            raise InvalidParameter("you cannot deactivate yourself")
        with p.write() as s:
            team.set_active(s, p.ws.id, p.role or "", user_id, active)
            p.audit(
                s,
                "team.reactivated" if active else "team.deactivated",
                target=_email_of(s, user_id),
            )
    except QuanziError as exc:
        return _error(p, exc)
    return _back(p, "reactivated" if active else "deactivated")


@router.post("/w/{workspace}/team/{user_id}/deactivate")
def deactivate(p: TeamUser, user_id: int) -> Response:
    return _set_active(p, user_id, False)


@router.post("/w/{workspace}/team/{user_id}/reactivate")
def reactivate(p: TeamUser, user_id: int) -> Response:
    return _set_active(p, user_id, True)
