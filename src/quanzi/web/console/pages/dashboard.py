"""The dashboard: what happened on one day (default yesterday) and in the 7 days ending on it."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from quanzi.analytics.dashboard import Dashboard, Kpi, dashboard
from quanzi.analytics.params import iso, parse_params
from quanzi.analytics.service import run_report
from quanzi.core.groups import repository as group_repo
from quanzi.core.members import repository as member_repo
from quanzi.core.members.models import Member
from quanzi.core.workspaces.service import get_workspace
from quanzi.kit.clock import now_us
from quanzi.team.roles import Perm
from quanzi.web.console.deps import Principal, need
from quanzi.web.console.render import render
from quanzi.web.i18n import gettext, number, percent

router = APIRouter(include_in_schema=False)

COLORS = {
    "joins": "#1a7f37",
    "leaves": "#b42318",
    "messages": "#8a5a00",
    "primary": "#0b5cad",
}
# The figures where a rise is bad news.
LOWER_IS_BETTER = frozenset({"leaves"})


@dataclass(frozen=True)
class MemberRef:
    """Where a member id printed in a report leads: the member's row id and display name."""

    id: int
    name: str | None


def group_ids_by_key(s: Session, p: Principal) -> dict[str, int]:
    """Group.id of each group key the principal may see (for links from report rows, which
    carry the platform's group id). A key used on two platforms links to neither."""
    seen: dict[str, int] = {}
    twice: set[str] = set()
    for g in group_repo.groups(s, p.ws.id, group_ids=p.group_ids, status="all", end_us=now_us()):
        if g.group_key in seen:
            twice.add(g.group_key)
        seen[g.group_key] = g.id
    return {k: v for k, v in seen.items() if k not in twice}


def members_by_key(s: Session, ws_id: int, keys: Collection[str]) -> dict[str, MemberRef]:
    """Row id and name of the members whose platform id is in `keys` (reports print ids as
    given); a key used on two platforms resolves to neither."""
    wanted = sorted(set(keys))
    found: dict[str, list[Member]] = {}
    for i in range(0, len(wanted), 500):
        conds: list[Any] = [
            Member.workspace_id == ws_id,
            Member.member_key.in_(wanted[i : i + 500]),
        ]
        ids = member_repo.matching_ids(s, conds, None)
        for m in member_repo.members_by_id(s, ws_id, ids):
            found.setdefault(m.member_key, []).append(m)
    return {k: MemberRef(ms[0].id, ms[0].name) for k, ms in found.items() if len(ms) == 1}


def _signed(value: float, digits: int = 0) -> str:
    return ("+" if value > 0 else "") + number(value, digits)


def change_text(k: Kpi) -> str:
    """The change against the previous period in words: "+12 (+8.5%)", "+3.2 pts", "—"."""
    if k.change is None:
        return gettext("no comparison")
    if k.key == "ugc_share":
        pts = round(float(k.change) * 100, 1)
        return gettext("%(points)s pts") % {"points": _signed(pts, 1)}
    if k.key == "revenue_fen":
        fen = int(k.change)
        text = ("+" if fen > 0 else "-" if fen < 0 else "") + "¥" + number(abs(fen) / 100, 2)
    else:
        text = _signed(k.change)
    if k.change_pct is not None:
        text += f" ({'+' if k.change_pct > 0 else ''}{percent(k.change_pct)})"
    return text


def tone(k: Kpi) -> str:
    """good / bad / flat: a rise is good except for leaves."""
    if not k.change:
        return "flat"
    rising = k.change > 0
    return "bad" if rising == (k.key in LOWER_IS_BETTER) else "good"


def shown_value(k: Kpi) -> str:
    if k.key == "ugc_share":
        return percent(k.value if k.value is None else float(k.value))
    if k.key == "revenue_fen":
        return "—" if k.value is None else "¥" + number(int(k.value) / 100, 2)
    return number(k.value)


def raw_value(value: int | float | None) -> str:
    return "" if value is None else str(value)


def kpi_label(key: str) -> str:
    return {
        "members": gettext("Members"),
        "new_members": gettext("New members"),
        "leaves": gettext("Leaves"),
        "messages": gettext("Messages"),
        "ugc_share": gettext("UGC share"),
        "active_members": gettext("Active members"),
        "revenue_fen": gettext("Revenue"),
    }.get(key, key)


def _series_chart(d: Dashboard) -> dict[str, Any]:
    days = [pt.date for pt in d.series]
    return {
        "data": [
            {
                "type": "bar",
                "name": gettext("Joins"),
                "x": days,
                "y": [pt.new_members for pt in d.series],
                "marker": {"color": COLORS["joins"]},
            },
            {
                "type": "bar",
                "name": gettext("Leaves"),
                "x": days,
                "y": [-pt.leaves for pt in d.series],
                "marker": {"color": COLORS["leaves"]},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": gettext("Messages"),
                "x": days,
                "y": [pt.messages for pt in d.series],
                "yaxis": "y2",
                "line": {"color": COLORS["messages"]},
            },
        ],
        "layout": {
            "barmode": "relative",
            "margin": {"l": 56, "r": 64, "t": 16, "b": 40},
            "yaxis": {"title": {"text": gettext("Joins / leaves")}, "rangemode": "normal"},
            "yaxis2": {
                "title": {"text": gettext("Messages")},
                "overlaying": "y",
                "side": "right",
                "rangemode": "tozero",
                "showgrid": False,
            },
        },
    }


def _channel_chart(rows: list[dict[str, Any]]) -> dict[str, Any]:
    top = rows[:8][::-1]
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "name": gettext("New members"),
                "x": [r["acquired"] for r in top],
                "y": [r["channel"] for r in top],
                "marker": {"color": COLORS["primary"]},
            }
        ],
        "layout": {"showlegend": False, "margin": {"l": 110, "r": 16, "t": 8, "b": 32}},
    }


@router.get("/w/{workspace}/dashboard")
def dashboard_page(
    p: Annotated[Principal, Depends(need(Perm.VIEW))],
    date: Annotated[str, Query(max_length=40)] = "",
) -> HTMLResponse:
    cal = p.calendar
    day = parse_params({"date": date or None}, cal).day
    with p.read() as s:
        d = dashboard(s, p.ws.id, cal, group_ids=p.group_ids, day=day)
        overview = run_report(
            s, get_workspace(s, p.ws.name), "overview", {"date": iso(day)}, p.group_ids
        )
        group_links = group_ids_by_key(s, p)
        people = members_by_key(s, p.ws.id, [r["inviter"] for r in d.top_inviters])
    yesterday = cal.today() - 1
    return render(
        p.request,
        "dashboard/dashboard.html",
        {
            "active": "dashboard",
            "charts": True,
            "d": d,
            "overview": overview,
            "is_yesterday": day == yesterday,
            "prev_day": iso(day - 1),
            "next_day": iso(day + 1) if day < yesterday else None,
            "max_day": iso(yesterday),
            "group_links": group_links,
            "people": people,
            "kpi_label": kpi_label,
            "change_text": change_text,
            "tone": tone,
            "shown_value": shown_value,
            "raw_value": raw_value,
            "series_chart": _series_chart(d),
            "channel_chart": _channel_chart(d.channels),
        },
    )
