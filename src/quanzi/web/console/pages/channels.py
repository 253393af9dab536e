"""Channel codes (活码): the list with each code's figures, a per-day chart, create and edit.

Everyone who may view sees the codes and their numbers; owners and admins (manage_team)
create and edit them, because a code speaks for the company on WeCom.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import RedirectResponse, Response

from quanzi.acquisition import channels as service
from quanzi.analytics.params import iso, parse_params
from quanzi.analytics.service import run_report
from quanzi.core.workspaces.models import Workspace
from quanzi.kit.clock import LocalCalendar
from quanzi.kit.errors import InvalidParameter, NotFound, QuanziError
from quanzi.team.roles import Perm
from quanzi.web.console.deps import Principal, need
from quanzi.web.console.render import render
from quanzi.web.i18n import gettext, translate_error

router = APIRouter(include_in_schema=False)

Viewer = Annotated[Principal, Depends(need(Perm.VIEW))]
Manager = Annotated[Principal, Depends(need(Perm.MANAGE_TEAM))]


def figures(s: Any, p: Principal, frm: str, to: str) -> tuple[list[dict[str, Any]], int, int]:
    """One row per code: visits, scans and the `channels` report's numbers for its channel."""
    ws = s.get(Workspace, p.ws.id)
    if ws is None:
        raise NotFound("no workspace")
    params = parse_params({"from": frm or None, "to": to or None}, LocalCalendar(ws.timezone))
    report = run_report(
        s, ws, "channels", {"from": iso(params.from_day), "to": iso(params.to_day)}, p.group_ids
    )
    by_channel = {r["channel"]: r for r in report["channels"]}
    visits = service.visit_counts(s, p.ws.id, params.from_day, params.to_day)
    rows = []
    for c in service.list_codes(s, p.ws.id):
        r = by_channel.get(c.channel, {})
        acquired, activated = int(r.get("acquired", 0)), int(r.get("activated", 0))
        v = visits.get(c.id, {"visit": 0, "scan": 0})
        rows.append(
            {
                "id": c.id,
                "code": c.code,
                "name": c.name,
                "channel": c.channel,
                "kind": c.target_kind,
                "active": c.active,
                "visits": v["visit"],
                "scans": v["scan"],
                "acquired": acquired,
                "activated": activated,
                "revenue_members": int(r.get("revenue_members", 0)),
                "revenue": int(r.get("revenue", 0)),
                "cost": c.cost_fen,
                "cost_per_acquired": c.cost_fen // acquired if acquired else None,
                "cost_per_activated": c.cost_fen // activated if activated else None,
            }
        )
    return rows, params.from_day, params.to_day


def _flash(done: str | None) -> list[tuple[str, str]]:
    texts = {
        "created": gettext("Channel code created."),
        "updated": gettext("Channel code saved."),
        "deactivated": gettext("Channel code turned off: its link now shows a not-found page."),
        "activated": gettext("Channel code turned on again."),
    }
    return [("ok", texts[done])] if done in texts else []


@router.get("/w/{workspace}/channels")
def channels_page(
    p: Viewer,
    frm: Annotated[str, Query(alias="from", max_length=10)] = "",
    to: Annotated[str, Query(max_length=10)] = "",
    id: Annotated[int | None, Query(ge=1)] = None,
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    with p.read() as s:
        rows, from_day, to_day = figures(s, p, frm, to)
        chart = None
        chosen = None
        if id is not None:
            code = service.get_code(s, p.ws.id, id)
            chosen = {"id": code.id, "name": code.name, "code": code.code}
            days = service.daily_visits(s, code, from_day, to_day)
            chart = {
                "data": [
                    {
                        "type": "bar",
                        "name": gettext("Visits"),
                        "x": [iso(d) for d, _v, _s in days],
                        "y": [v for _d, v, _s in days],
                    },
                    {
                        "type": "bar",
                        "name": gettext("Scans"),
                        "x": [iso(d) for d, _v, _s in days],
                        "y": [sc for _d, _v, sc in days],
                    },
                ],
                "layout": {"barmode": "stack"},
            }
    ctx = {
        "active": "channels",
        "charts": chart is not None,
        "rows": rows,
        "from": iso(from_day),
        "to": iso(to_day),
        "chart": chart,
        "chosen": chosen,
        "flashes": _flash(done),
        "may_edit": p.may(Perm.MANAGE_TEAM),
        "kinds": kind_labels(),
    }
    return render(p.request, "channels/list.html", ctx, principal=p)


def kind_labels() -> dict[str, str]:
    return {
        "wecom_contact": gettext("WeCom contact (staff rotation)"),
        "wecom_group": gettext("WeCom group"),
        "link": gettext("Link"),
        "landing": gettext("Landing page"),
    }


def _form_values(code: Any) -> dict[str, str]:
    if code is None:
        return {"target_kind": "wecom_contact", "rotation": "round_robin", "capacity": "200"}
    t = code.target
    return {
        "id": str(code.id),
        "name": code.name,
        "channel": code.channel,
        "target_kind": code.target_kind,
        "staff": "\n".join(t.get("staff", [])),
        "rotation": t.get("rotation", "round_robin"),
        "daily_cap": str(t.get("daily_cap", "") or ""),
        "chat_ids": "\n".join(t.get("chat_ids", [])),
        "capacity": str(t.get("capacity", 200)),
        "url": t.get("url", ""),
        "page": t.get("page", ""),
        "cost": f"{Decimal(code.cost_fen) / 100:.2f}",
    }


def _edit(
    p: Principal, values: dict[str, str], error: str | None = None, status_code: int = 200
) -> Response:
    ctx = {
        "active": "channels",
        "v": values,
        "kinds": kind_labels(),
        "flashes": [("error", error)] if error else [],
    }
    return render(p.request, "channels/edit.html", ctx, principal=p, status_code=status_code)


@router.get("/w/{workspace}/channels/edit")
def edit_page(p: Manager, id: Annotated[int | None, Query(ge=1)] = None) -> Response:
    with p.read() as s:
        code = service.get_code(s, p.ws.id, id) if id is not None else None
        values = _form_values(code)
    return _edit(p, values)


def cost_fen(text: str) -> int:
    text = (text or "").strip().replace(",", "")
    if not text:
        return 0
    try:
        yuan = Decimal(text)
    except InvalidOperation:
        raise InvalidParameter(f"cost: {text[:20]!r} is not an amount in yuan") from None
    if not yuan.is_finite() or yuan < 0 or yuan > Decimal(10**11):
        raise InvalidParameter("cost: give an amount in yuan, 0 or more")
    return int((yuan * 100).to_integral_value())


@router.post("/w/{workspace}/channels/save")
async def save(p: Manager, id: Annotated[str, Form(max_length=12)] = "") -> Response:
    form = {k: v for k, v in (await p.request.form()).items() if isinstance(v, str)}
    kind = form.get("target_kind", "")
    target = {
        k: form.get(k, "")
        for k in ("staff", "rotation", "daily_cap", "chat_ids", "capacity", "url", "page")
    }
    try:
        fen = cost_fen(form.get("cost", ""))
        with p.write() as s:
            if id:
                code_id = int(id) if id.isdigit() else 0
                code, changed = service.update_code(
                    s,
                    p.ws.id,
                    code_id,
                    name=form.get("name", ""),
                    channel=form.get("channel", ""),
                    target_kind=kind,
                    target=target,
                    cost_fen=fen,
                    updated_by=p.user.email,
                )
                if changed:
                    p.audit(s, "channel.updated", target=code.code, detail={"changed": changed})
                done = "updated"
            else:
                code = service.create_code(
                    s,
                    p.ws.id,
                    name=form.get("name", ""),
                    channel=form.get("channel", ""),
                    target_kind=kind,
                    target=target,
                    cost_fen=fen,
                    created_by=p.user.email,
                )
                p.audit(
                    s,
                    "channel.created",
                    target=code.code,
                    detail={"channel": code.channel, "kind": code.target_kind},
                )
                done = "created"
            code_id = code.id
    except QuanziError as exc:
        return _edit(p, form, translate_error(str(exc)), exc.status_code)
    return RedirectResponse(p.url(f"/channels?done={done}&id={code_id}"), status_code=303)


@router.post("/w/{workspace}/channels/active")
def set_active(
    p: Manager,
    id: Annotated[int, Form(ge=1)],
    active: Annotated[str, Form(max_length=1)] = "0",
) -> Response:
    on = active == "1"
    with p.write() as s:
        code, changed = service.update_code(s, p.ws.id, id, active=on, updated_by=p.user.email)
        if changed:
            p.audit(
                s, "channel.updated", target=code.code, detail={"changed": ["active"], "active": on}
            )
    return RedirectResponse(
        p.url(f"/channels?done={'activated' if on else 'deactivated'}"), status_code=303
    )
