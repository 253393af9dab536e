"""Leads from landing pages: the filtered list, one lead, reveal, export.

Phone numbers and names are sealed and shown masked (138****5678, 王**). A role with
Perm.REVEAL opens one lead's phone, name or form answers at a time (POST, audited
"lead.reveal"), answered with the page itself, so the value is in no URL. Exports need
Perm.EXPORT_MEMBERS, as member exports do, and are masked unless the role may reveal and asks
for `personal=open` (audited with what was opened).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from quanzi.acquisition import landing_stats as stats
from quanzi.acquisition.lead_list import EXPORT_LIMIT, LeadFilter, LeadRow, get_lead, list_leads
from quanzi.analytics.exports import Cell, to_csv, to_xlsx
from quanzi.analytics.params import iso
from quanzi.core.members import personal
from quanzi.core.workspaces.service import workspace_key
from quanzi.kit.clock import day_date, day_number, from_us, zone
from quanzi.kit.crypto import DecryptionFailed, WorkspaceKey
from quanzi.kit.errors import InvalidParameter
from quanzi.team.roles import Perm
from quanzi.web.console.deps import Principal, need
from quanzi.web.console.render import render
from quanzi.web.i18n import gettext

router = APIRouter(include_in_schema=False)

Viewer = Annotated[Principal, Depends(need(Perm.VIEW))]
PER_PAGE = 50
FILTERS = ("page_id", "channel", "from", "to", "linked")
REVEALABLE = ("phone", "name", "fields")


def parse_day(params: Any, name: str) -> int | None:
    value = str(params.get(name) or "").strip()
    if not value:
        return None
    try:
        if len(value) != 10:
            raise ValueError
        return day_number(date.fromisoformat(value))
    except ValueError:
        raise InvalidParameter(f"{name}: {value[:20]!r} is not a date (use YYYY-MM-DD)") from None


def lead_filter(params: Any) -> LeadFilter:
    page = str(params.get("page_id") or "").strip()
    if page and not page.isdigit():
        raise InvalidParameter(f"page_id: {page[:20]!r} is not a page number")
    linked = str(params.get("linked") or "")
    if linked not in ("", "yes", "no"):
        raise InvalidParameter("linked: yes, no or empty")
    channel = str(params.get("channel") or "").strip()
    if len(channel) > 30:
        raise InvalidParameter("channel: at most 30 characters")
    return LeadFilter(
        page_id=int(page) if page else None,
        channel=channel or None,
        from_day=parse_day(params, "from"),
        to_day=parse_day(params, "to"),
        linked=None if not linked else linked == "yes",
    )


def _open(key: WorkspaceKey, field: str, sealed: str | None) -> str | None:
    if sealed is None:
        return None
    try:
        return key.open(field, sealed)
    except DecryptionFailed:
        return personal.UNREADABLE


def _fields(key: WorkspaceKey, sealed: str | None) -> dict[str, str]:
    text = _open(key, "lead_fields", sealed)
    if text is None:
        return {}
    if text == personal.UNREADABLE:
        return {"?": text}
    found = json.loads(text)
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _shown(key: WorkspaceKey, row: LeadRow) -> dict[str, Any]:
    """A row as every role sees it: the phone and the name masked."""
    phone = _open(key, "phone", row.phone_sealed) or ""
    name = _open(key, "name", row.name_sealed)
    return {
        "row": row,
        "phone": personal.mask_value("phone", phone),
        "name": personal.mask_value("name", name) if name else "",
    }


@router.get("/w/{workspace}/leads")
def leads_page(p: Viewer, page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    params = p.request.query_params
    f = lead_filter(params)
    with p.read() as s:
        rows, total = list_leads(
            s,
            p.ws.id,
            p.calendar,
            f,
            limit=PER_PAGE,
            offset=(page - 1) * PER_PAGE,
            group_ids=p.group_ids,
        )
        key = workspace_key(s, p.ws.id) if rows else None
        shown = [_shown(key, r) for r in rows] if key else []
        pages = [(r.id, r.name) for r in stats.pages_overview(s, p.ws.id)]
        channels = stats.channels_seen(s, p.ws.id)
    ctx = {
        "active": "leads",
        "rows": shown,
        "total": total,
        "page_no": page,
        "pages_count": max(1, -(-total // PER_PAGE)),
        "pages": pages,
        "channels": channels,
        "f": {k: params.get(k, "") for k in FILTERS},
        "may_export": p.may(Perm.EXPORT_MEMBERS),
        "may_reveal": p.may(Perm.REVEAL),
    }
    return render(p.request, "landing/leads.html", ctx, principal=p)


def _lead_page(
    s: Session, p: Principal, lead_id: int, revealed: dict[str, Any] | None = None
) -> HTMLResponse:
    row = get_lead(s, p.ws.id, lead_id, p.group_ids)
    key = workspace_key(s, p.ws.id)
    ctx = {
        "active": "leads",
        "lead": _shown(key, row),
        "field_keys": sorted(_fields(key, row.fields_sealed)),
        "revealed": revealed or {},
        "may_reveal": p.may(Perm.REVEAL),
    }
    return render(p.request, "landing/lead.html", ctx, principal=p)


@router.get("/w/{workspace}/leads/export")
def export_leads(
    p: Annotated[Principal, Depends(need(Perm.EXPORT_MEMBERS))],
    format: Annotated[str, Query(max_length=4)] = "csv",
    personal_data: Annotated[str, Query(alias="personal", max_length=10)] = "masked",
) -> Response:
    """The filtered leads as CSV (UTF-8 with BOM) or XLSX; phone and name masked unless the
    role may reveal and `personal=open` is asked for."""
    if format not in ("csv", "xlsx"):
        raise InvalidParameter(f"format must be csv or xlsx, not {format!r}")
    reveal = personal_data == "open" and p.may(Perm.REVEAL)
    f = lead_filter(p.request.query_params)
    tz = zone(p.ws.timezone)
    out: list[list[Cell]] = []
    with p.read() as s:
        rows, total = list_leads(
            s, p.ws.id, p.calendar, f, limit=EXPORT_LIMIT, group_ids=p.group_ids
        )
        key = workspace_key(s, p.ws.id)
        for r in rows:
            phone = _open(key, "phone", r.phone_sealed) or ""
            name = _open(key, "name", r.name_sealed) or ""
            answers = _fields(key, r.fields_sealed) if reveal else {}
            out.append(
                [
                    r.id,
                    from_us(r.created_at_us).astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                    r.page_name,
                    r.version,
                    r.variant,
                    r.channel,
                    phone if reveal else personal.mask_value("phone", phone),
                    (name if reveal else personal.mask_value("name", name)) if name else None,
                    json.dumps(answers, ensure_ascii=False) if answers else None,
                    r.submissions,
                    r.member_id,
                    r.linked_by,
                    r.consent_version,
                ]
            )
    with p.write() as s:
        p.audit(
            s,
            "leads.export",
            target=f"{len(out)} leads",
            detail={
                "format": format,
                "rows": len(out),
                "personal": "open" if reveal else "masked",
                "filter": {
                    k: v
                    for k, v in {
                        "page_id": f.page_id,
                        "channel": f.channel,
                        "from": iso(f.from_day) if f.from_day is not None else None,
                        "to": iso(f.to_day) if f.to_day is not None else None,
                        "linked": f.linked,
                    }.items()
                    if v is not None
                },
                "truncated": total > len(out),
            },
        )
    labels = [
        gettext("Lead no."),
        gettext("Submitted at"),
        gettext("Landing page"),
        gettext("Version"),
        gettext("Variant"),
        gettext("Channel"),
        gettext("Phone"),
        gettext("Name"),
        gettext("Form answers"),
        gettext("Submissions"),
        gettext("Member no."),
        gettext("Linked by"),
        gettext("Consent version"),
    ]
    stamp = day_date(p.calendar.today()).strftime("%Y%m%d")
    if format == "csv":
        body, media_type = to_csv(labels, out), "text/csv; charset=utf-8"
    else:
        body = to_xlsx(labels, out, gettext("Leads"))
        media_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="leads-{stamp}.{format}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/w/{workspace}/leads/{lead_id}")
def lead_page(lead_id: int, p: Viewer) -> Response:
    with p.read() as s:
        return _lead_page(s, p, lead_id)


@router.post("/w/{workspace}/leads/{lead_id}/reveal")
def reveal(
    lead_id: int,
    p: Annotated[Principal, Depends(need(Perm.REVEAL))],
    field: Annotated[str, Form(max_length=20)] = "phone",
) -> Response:
    """Open one field of one lead once: audited, answered with the page itself."""
    if field not in REVEALABLE:
        raise InvalidParameter(f"field must be one of {', '.join(REVEALABLE)}, not {field!r}")
    with p.write() as s:
        row = get_lead(s, p.ws.id, lead_id, p.group_ids)
        key = workspace_key(s, p.ws.id)
        value: Any
        if field == "phone":
            value = _open(key, "phone", row.phone_sealed)
        elif field == "name":
            value = _open(key, "name", row.name_sealed)
        else:
            value = _fields(key, row.fields_sealed) or None
        p.audit(
            s,
            "lead.reveal",
            target=f"lead {lead_id}",
            detail={"lead": lead_id, "field": field, "found": value is not None},
        )
    with p.read() as s:
        return _lead_page(s, p, lead_id, {field: value} if value is not None else {})
