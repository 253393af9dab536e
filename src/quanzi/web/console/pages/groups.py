"""Groups: the sortable list with the `groups` report's figures, and one group's page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse

from quanzi.analytics.params import parse_params
from quanzi.core.groups import repository as group_repo
from quanzi.core.groups import service as groups
from quanzi.kit.clock import day_date
from quanzi.team.roles import Perm
from quanzi.web.console.deps import Principal, need
from quanzi.web.console.render import render
from quanzi.web.i18n import current_locale, gettext, number, percent

router = APIRouter(include_in_schema=False)

# Query parameters the list pages share.
Desc = Annotated[int, Query(ge=0, le=1)]
PageNo = Annotated[int, Query(ge=1, le=1_000_000)]
DateParam = Annotated[str, Query(max_length=10)]
Word = Annotated[str, Query(max_length=40)]

PER_PAGE = 50
HEALTH_BADGES = {
    "healthy": "badge-good",
    "quiet": "badge-warn",
    "declining": "badge-bad",
    "dormant": "badge-bad",
    "new": "badge-info",
    "dismissed": "badge-info",
}


def health_label(code: str) -> str:
    labels = {
        "healthy": gettext("Healthy"),
        "quiet": gettext("Quiet"),
        "declining": gettext("Declining"),
        "dormant": gettext("Dormant"),
        "new": gettext("New group"),
        "dismissed": gettext("Dismissed"),
    }
    return labels.get(code, code)


def report_day(p: Principal, date: str | None) -> int:
    """The local day the figures are for: `date` (YYYY-MM-DD) or yesterday, as in the reports."""
    return parse_params({"date": date or None}, p.calendar).day


def _points(change: float) -> str:
    """A change of a rate in percentage points, unsigned: 0.083 → "8.3"."""
    pts = abs(change) * 100
    return number(pts, 0 if round(pts, 1) == round(pts) else 1)


def verdict_sentences(health: groups.Health, day: int) -> list[str]:
    """The verdict in plain words: the facts behind it, as sentences in the user's language."""
    by = {r.code: r for r in health.reasons}
    out: list[str] = []
    summary = {
        "healthy": gettext("Members are talking and the group is holding its size."),
        "quiet": gettext("The group is quiet: few members post, or staff do most of the talking."),
        "declining": gettext("The group is declining compared with last week."),
        "dormant": gettext("No member has posted in the last 14 days."),
        "new": gettext("The group is less than 14 days old; too young to compare weeks."),
        "dismissed": gettext("The group has been dismissed."),
    }
    out.append(summary.get(health.code, health.code))
    if health.code in ("dismissed", "new"):
        return out
    rate = by.get("activity_rate_7d")
    if rate is not None and isinstance(rate.value, float | int):
        prev = rate.previous if isinstance(rate.previous, float | int) else None
        text = percent(float(rate.value), 0)
        if prev is None or abs(float(rate.value) - float(prev)) < 0.0005:
            out.append(
                gettext("Activity rate this week %(rate)s, the same as last week.") % {"rate": text}
            )
        elif rate.value < prev:
            out.append(
                gettext("Activity rate this week %(rate)s, %(points)s points lower than last week.")
                % {"rate": text, "points": _points(float(prev) - float(rate.value))}
            )
        else:
            out.append(
                gettext(
                    "Activity rate this week %(rate)s, %(points)s points higher than last week."
                )
                % {"rate": text, "points": _points(float(rate.value) - float(prev))}
            )
    ugc = by.get("ugc_share_7d")
    if ugc is not None and isinstance(ugc.value, float | int):
        out.append(gettext("UGC share %(share)s.") % {"share": percent(float(ugc.value), 0)})
    net = by.get("net_growth_7d")
    if net is not None and isinstance(net.value, int) and net.value != 0:
        if net.value > 0:
            out.append(gettext("%(n)s more members than a week ago.") % {"n": number(net.value)})
        else:
            out.append(gettext("%(n)s fewer members than a week ago.") % {"n": number(-net.value)})
    return out


def joined_sentences(sentences: list[str]) -> str:
    sep = "；" if current_locale.get() == "zh-CN" else " "
    if current_locale.get() == "zh-CN":
        sentences = [s.rstrip("。") for s in sentences]
    text = sep.join(sentences)
    return text + ("。" if current_locale.get() == "zh-CN" and text else "")


def _week(row: groups.GroupRow, day: int) -> groups.WeekFigures:
    member_messages = round((row.ugc_share_7d or 0.0) * row.messages_7d)
    return groups.WeekFigures(
        day,
        row.size,
        row.joins_7d,
        row.leaves_7d,
        row.messages_7d,
        member_messages,
        row.active_7d,
        row.activity_rate_7d,
        row.ugc_share_7d,
        row.silent,
    )


def _list_health(
    p: Principal, s: Any, day: int, rows: list[groups.GroupRow]
) -> dict[int, groups.Health]:
    """The health verdict of each listed group (the group page's rule on the list's figures)."""
    if not rows:
        return {}
    ids = frozenset(r.id for r in rows)
    end = p.calendar.day_start_us(day + 1)
    found = {
        g.id: g for g in group_repo.groups(s, p.ws.id, group_ids=ids, status="all", end_us=end)
    }
    before = groups.list_groups(
        s, p.ws.id, p.calendar, group_ids=ids, day=day - 7, status="all", per_page=len(ids)
    )
    prev_rows = {r.id: r for r in before.rows}
    out: dict[int, groups.Health] = {}
    for r in rows:
        g = found.get(r.id)
        if g is None:
            continue
        week = _week(r, day)
        pr = prev_rows.get(r.id)
        prev = (
            _week(pr, day - 7)
            if pr is not None
            else groups.WeekFigures(day - 7, 0, 0, 0, 0, 0, 0, 0.0, None, 0)
        )
        out[r.id] = groups.health(
            g, end, week, prev, week.member_messages_7d + prev.member_messages_7d
        )
    return out


@router.get("/w/{workspace}/groups")
def group_list(
    p: Annotated[Principal, Depends(need(Perm.VIEW))],
    q: Annotated[str, Query(max_length=200)] = "",
    status: Word = "active",
    sort: Word = "size",
    desc: Desc = 1,
    page: PageNo = 1,
    date: DateParam = "",
) -> HTMLResponse:
    day = report_day(p, date)
    with p.read() as s:
        found = groups.list_groups(
            s,
            p.ws.id,
            p.calendar,
            group_ids=p.group_ids,
            day=day,
            q=q,
            status=status,
            sort=sort,
            desc=bool(desc),
            page=page,
            per_page=PER_PAGE,
        )
        verdicts = _list_health(p, s, day, found.rows)
    return render(
        p.request,
        "groups/list.html",
        {
            "active": "groups",
            "result": found,
            "verdicts": verdicts,
            "badges": HEALTH_BADGES,
            "health_label": health_label,
            "q": q,
            "status": status,
            "sort": sort,
            "desc": bool(desc),
            "day": day_date(day).isoformat(),
        },
    )


def _delta(now: float | int | None, before: float | int | None) -> float | int | None:
    if now is None or before is None:
        return None
    return now - before


def _series_charts(detail: groups.GroupDetail) -> tuple[dict[str, Any], dict[str, Any]]:
    days = [day_date(pt.day).isoformat() for pt in detail.series]
    size = {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "name": gettext("Members"),
                "x": days,
                "y": [pt.size for pt in detail.series],
                "line": {"color": "#0b5cad"},
            }
        ],
        "layout": {"showlegend": False},
    }
    flow = {
        "data": [
            {
                "type": "bar",
                "name": gettext("Joins"),
                "x": days,
                "y": [pt.joins for pt in detail.series],
                "marker": {"color": "#1a7f37"},
            },
            {
                "type": "bar",
                "name": gettext("Leaves"),
                "x": days,
                "y": [-pt.leaves for pt in detail.series],
                "marker": {"color": "#b42318"},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": gettext("Messages"),
                "x": days,
                "y": [pt.member_messages + pt.staff_messages for pt in detail.series],
                "yaxis": "y2",
                "line": {"color": "#8a5a00"},
            },
        ],
        "layout": {
            "barmode": "relative",
            "yaxis2": {
                "overlaying": "y",
                "side": "right",
                "rangemode": "tozero",
                "showgrid": False,
            },
        },
    }
    return size, flow


@router.get("/w/{workspace}/groups/{group_id}")
def group_page(
    group_id: int,
    p: Annotated[Principal, Depends(need(Perm.VIEW))],
    sort: Word = "joined",
    desc: Desc = 1,
    page: PageNo = 1,
    date: DateParam = "",
) -> HTMLResponse:
    day = report_day(p, date)
    with p.read() as s:
        detail = groups.group_detail(
            s, p.ws.id, p.calendar, group_id, group_ids=p.group_ids, day=day
        )
        members = groups.group_members(
            s,
            p.ws.id,
            group_id,
            group_ids=p.group_ids,
            day=day,
            page=page,
            per_page=PER_PAGE,
            sort=sort,
            desc=bool(desc),
        )
    size_chart, flow_chart = _series_charts(detail)
    w, pw = detail.week, detail.previous_week
    return render(
        p.request,
        "groups/detail.html",
        {
            "active": "groups",
            "charts": True,
            "g": detail,
            "members": members,
            "sort": sort,
            "desc": bool(desc),
            "day": day_date(day).isoformat(),
            "badge": HEALTH_BADGES.get(detail.health.code, "badge-info"),
            "health": health_label(detail.health.code),
            "verdict": joined_sentences(verdict_sentences(detail.health, day)),
            "size_chart": size_chart,
            "flow_chart": flow_chart,
            "deltas": {
                "size": _delta(w.size, pw.size),
                "joins": _delta(w.joins_7d, pw.joins_7d),
                "leaves": _delta(w.leaves_7d, pw.leaves_7d),
                "messages": _delta(w.messages_7d, pw.messages_7d),
                "rate": _delta(w.activity_rate_7d, pw.activity_rate_7d),
                "ugc": _delta(w.ugc_share_7d, pw.ugc_share_7d),
                "silent": _delta(w.silent, pw.silent),
            },
        },
    )
