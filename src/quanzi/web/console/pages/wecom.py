"""The WeCom settings page: connect a corp, the callback URL to paste, the connection's health."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quanzi.connectors.wecom import service as wecom
from quanzi.kit.errors import QuanziError
from quanzi.team.roles import Perm
from quanzi.web.console.deps import Principal, need
from quanzi.web.console.render import render
from quanzi.web.i18n import gettext, translate_error

router = APIRouter(include_in_schema=False)

# Connecting hands Quanzi the corp's customer-contact secret: owners and admins only
# (MANAGE_TEAM until connectors have a permission of their own).
WecomAdmin = Annotated[Principal, Depends(need(Perm.MANAGE_TEAM))]
Field = Annotated[str, Form(max_length=256)]


def _page(p: Principal, *, error: str | None = None, status_code: int = 200) -> HTMLResponse:
    with p.read() as s:
        conn = wecom.connection(s, p.ws.id)
        health: dict[str, Any] | None = None
        if conn is not None:
            health = {
                "corp_id": conn.corp_id,
                "api_base": conn.api_base,
                "connected_at_us": conn.created_at_us,
                "updated_at_us": conn.updated_at_us,
                "last_callback_at_us": conn.last_callback_at_us,
                "last_sync_at_us": conn.last_sync_at_us,
                "last_error": conn.last_error,
                "last_error_at_us": conn.last_error_at_us,
            }
    flashes: list[tuple[str, str]] = []
    done = {
        "connected": gettext("WeCom connected. Paste the callback URL into the WeCom admin."),
        "disconnected": gettext("WeCom disconnected; its secrets were deleted."),
    }.get(p.request.query_params.get("done", ""))
    if done and error is None:
        flashes.append(("ok", done))
    if error:
        flashes.append(("error", error))
    base = str(p.request.base_url)
    ctx = {
        "active": "wecom",
        "flashes": flashes,
        "health": health,
        "callback_url": wecom.callback_url(base, p.ws.name),
    }
    return render(p.request, "wecom/wecom.html", ctx, principal=p, status_code=status_code)


@router.get("/w/{workspace}/settings/wecom")
def wecom_page(p: WecomAdmin) -> Response:
    return _page(p)


@router.post("/w/{workspace}/settings/wecom")
def connect(
    p: WecomAdmin,
    corp_id: Field = "",
    secret: Field = "",
    token: Field = "",
    encoding_aes_key: Field = "",
) -> Response:
    try:
        with p.write() as s:
            conn = wecom.connect(
                s,
                p.ws.id,
                corp_id=corp_id,
                secret=secret,
                token=token,
                encoding_aes_key=encoding_aes_key,
            )
            p.audit(s, "wecom.connected", target=conn.corp_id)
    except QuanziError as exc:
        return _page(p, error=translate_error(str(exc)), status_code=exc.status_code)
    return RedirectResponse(p.url("/settings/wecom?done=connected"), status_code=303)


@router.post("/w/{workspace}/settings/wecom/disconnect")
def disconnect(p: WecomAdmin) -> Response:
    with p.write() as s:
        conn = wecom.connection(s, p.ws.id)
        corp_id = conn.corp_id if conn is not None else None
        if wecom.disconnect(s, p.ws.id):
            p.audit(s, "wecom.disconnected", target=corp_id)
    return RedirectResponse(p.url("/settings/wecom?done=disconnected"), status_code=303)
