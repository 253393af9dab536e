"""Reports: retention, lifecycle, funnel, channels and invites, with the API's parameters,
charts, the table shown, and that same table as CSV or Excel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from quanzi.analytics.exports import Cell, labels, report_table, stage_label, to_csv, to_xlsx
from quanzi.analytics.params import ReportParams, iso, parse_params
from quanzi.analytics.service import run_report
from quanzi.core.workspaces.service import get_workspace
from quanzi.kit.errors import InvalidParameter, NotFound
from quanzi.team.roles import Perm
from quanzi.web.console.deps import Principal, need
from quanzi.web.console.pages.dashboard import COLORS, members_by_key
from quanzi.web.console.render import render
from quanzi.web.i18n import current_locale, gettext, translate_error

router = APIRouter(include_in_schema=False)

# The parameters each report takes (contracts/metrics.md's table, plus `as_of` where valid
# invites or complete weeks are judged and `hold_hours` where valid invites are counted).
REPORT_PARAMS: dict[str, tuple[str, ...]] = {
    "retention": ("from", "to", "kind", "weeks", "as_of"),
    "lifecycle": ("from", "to"),
    "funnel": ("from", "to", "hold_hours", "as_of"),
    "channels": ("from", "to"),
    "invites": ("from", "to", "hold_hours", "as_of"),
}
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
MAX_PARAM_LENGTH = 64


def report_title(name: str) -> str:
    return {
        "retention": gettext("Retention"),
        "lifecycle": gettext("Lifecycle"),
        "funnel": gettext("AARRR funnel"),
        "channels": gettext("Channels"),
        "invites": gettext("Invite leaderboard"),
    }[name]


def report_summary(name: str) -> str:
    """One line from contracts/metrics.md: what the report counts."""
    return {
        "retention": gettext(
            "Members grouped by the week of their first join: how many of each cohort posted "
            "(activity) or were still in a group (membership) in each later week."
        ),
        "lifecycle": gettext(
            "Per week, by messages: new posters, returning (active this and last week), "
            "resurrecting (back after a break) and dormant (active last week, silent now)."
        ),
        "funnel": gettext(
            "Members acquired in the window: activated within 7 days, retained in days 7–30, "
            "paying within 30 days, bringing a valid invite within 30 days."
        ),
        "channels": gettext(
            "Where members came from (the channel of their first touch), with how many "
            "became active and paying, and the revenue of their first 30 days."
        ),
        "invites": gettext(
            "Who brought new members: raw invites, invites of new members, valid invites "
            "(still in the group after the hold window) and those still pending."
        ),
    }[name]


def param_label(name: str) -> str:
    return {
        "from": gettext("Start date"),
        "to": gettext("End date"),
        "kind": gettext("Retention kind"),
        "weeks": gettext("Weeks per cohort"),
        "as_of": gettext("As of"),
        "hold_hours": gettext("Hold window (hours)"),
    }[name]


@dataclass
class Shown:
    """The table of a report as shown on the page (and downloaded): machine column names,
    their headers in the user's language, and the rows of plain values."""

    columns: list[str]
    headers: list[str]
    rows: list[list[Cell]]


def _given(request: Request, name: str) -> dict[str, str]:
    """The report's parameters from the query string, as given (empty ones left out)."""
    out: dict[str, str] = {}
    for key in REPORT_PARAMS[name]:
        value = request.query_params.get(key, "").strip()
        if len(value) > MAX_PARAM_LENGTH:
            raise InvalidParameter(f"{key}: the value is too long")
        if value:
            out[key] = value
    return out


def _rounded(num: int, den: int) -> float:
    return round(num / den, 4) if den else 0.0


def shown_table(name: str, answer: dict[str, Any], locale: str) -> Shown:
    """report_table's columns and rows, with what the page adds: the funnel's step conversion
    and stage names, the leaderboard's rank and inviter names."""
    columns, rows = report_table(name, answer)
    heads = labels(name, locale)
    headers = [heads.get(c, c) for c in columns]
    if name == "funnel":
        prev: int | None = None
        out: list[list[Cell]] = []
        for stage, members, share in rows:
            n = int(members or 0)
            step = 1.0 if prev is None else _rounded(n, prev)
            out.append([stage_label(str(stage), locale), n, share, step])
            prev = n
        return Shown([*columns, "step_rate"], [*headers, gettext("Step conversion")], out)
    return Shown(columns, headers, [list(r) for r in rows])


def _invite_table(shown: Shown, names: dict[str, str | None]) -> Shown:
    """Rank and display name in front of the leaderboard's inviter ids and counts."""
    rows: list[list[Cell]] = []
    for i, row in enumerate(shown.rows, start=1):
        key = str(row[0])
        rows.append([i, names.get(key), key, *row[1:]])
    return Shown(
        ["rank", "inviter_name", "inviter", *shown.columns[1:]],
        [gettext("Rank"), gettext("Inviter name"), gettext("Member ID"), *shown.headers[1:]],
        rows,
    )


def _charts(name: str, answer: dict[str, Any], shown: Shown) -> list[tuple[str, dict[str, Any]]]:
    """(id, Plotly spec) of each chart of a report."""
    if name == "retention":
        cohorts = answer["cohorts"]
        width = max((len(c["retained"]) for c in cohorts), default=0)
        z = [
            [
                (_rounded(c["retained"][k], c["size"]) if k < len(c["retained"]) else None)
                for k in range(width)
            ]
            for c in cohorts
        ]
        text = [
            [(str(c["retained"][k]) if k < len(c["retained"]) else "") for k in range(width)]
            for c in cohorts
        ]
        return [
            (
                "retention-heatmap",
                {
                    "data": [
                        {
                            "type": "heatmap",
                            "x": [gettext("Week %(n)s") % {"n": k} for k in range(width)],
                            "y": [c["week"] for c in cohorts],
                            "z": z,
                            "text": text,
                            "zmin": 0,
                            "zmax": 1,
                            "colorscale": [[0, "#eef5fc"], [1, COLORS["primary"]]],
                            "hovertemplate": "%{y} · %{x}: %{z:.1%} (%{text})<extra></extra>",
                        }
                    ],
                    "layout": {"yaxis": {"autorange": "reversed", "type": "category"}},
                },
            )
        ]
    if name == "lifecycle":
        weeks = [w["week"] for w in answer["weeks"]]
        series = [
            ("new", gettext("New"), "#0b5cad", 1),
            ("returning", gettext("Returning"), "#1a7f37", 1),
            ("resurrecting", gettext("Resurrecting"), "#8a5a00", 1),
            ("dormant", gettext("Dormant"), "#b42318", -1),
        ]
        return [
            (
                "lifecycle-bars",
                {
                    "data": [
                        {
                            "type": "bar",
                            "name": label,
                            "x": weeks,
                            "y": [sign * w[key] for w in answer["weeks"]],
                            "marker": {"color": color},
                        }
                        for key, label, color, sign in series
                    ],
                    "layout": {"barmode": "relative", "yaxis": {"rangemode": "normal"}},
                },
            )
        ]
    if name == "funnel":
        return [
            (
                "funnel-chart",
                {
                    "data": [
                        {
                            "type": "funnel",
                            "y": [r[0] for r in shown.rows],
                            "x": [r[1] for r in shown.rows],
                            "textinfo": "value+percent initial",
                            "marker": {"color": COLORS["primary"]},
                        }
                    ],
                    "layout": {"margin": {"l": 90, "r": 16, "t": 8, "b": 24}},
                },
            )
        ]
    if name == "channels":
        rows = answer["channels"]
        chans = [r["channel"] for r in rows]
        bars = [
            ("acquired", gettext("Acquired"), "#0b5cad"),
            ("activated", gettext("Activated"), "#1a7f37"),
            ("revenue_members", gettext("Paying members"), "#8a5a00"),
        ]
        data: list[dict[str, Any]] = [
            {
                "type": "bar",
                "name": label,
                "x": chans,
                "y": [r[key] for r in rows],
                "marker": {"color": color},
            }
            for key, label, color in bars
        ]
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": gettext("Revenue (yuan)"),
                "x": chans,
                "y": [r["revenue"] / 100 for r in rows],
                "yaxis": "y2",
                "marker": {"color": COLORS["leaves"], "size": 10, "symbol": "diamond"},
            }
        )
        return [
            (
                "channels-chart",
                {
                    "data": data,
                    "layout": {
                        "barmode": "group",
                        "yaxis2": {
                            "overlaying": "y",
                            "side": "right",
                            "rangemode": "tozero",
                            "showgrid": False,
                        },
                    },
                },
            )
        ]
    return []


def _filename(name: str, params: ReportParams, fmt: str) -> str:
    return f"{name}-{iso(params.from_day)}-{iso(params.to_day)}.{fmt}"


def _form_values(name: str, given: dict[str, str], params: ReportParams | None) -> dict[str, str]:
    """What the form shows: the given values, else the resolved defaults (as_of stays empty:
    "now")."""
    values = {k: given.get(k, "") for k in REPORT_PARAMS[name]}
    if params is not None:
        values["from"] = values["from"] or iso(params.from_day)
        values["to"] = values["to"] or iso(params.to_day)
        if "hold_hours" in values:
            values["hold_hours"] = values["hold_hours"] or str(params.hold_hours)
        if "weeks" in values:
            values["weeks"] = values["weeks"] or str(params.weeks)
        if "kind" in values:
            values["kind"] = params.kind
    return values


def _download(p: Principal, name: str, given: dict[str, str], fmt: str) -> Response:
    locale = current_locale.get()
    with p.read() as s:
        ws = get_workspace(s, p.ws.name)
        answer = run_report(s, ws, name, dict(given), p.group_ids)
        params = parse_params(dict(given), p.calendar)
        shown = shown_table(name, answer, locale)
        if name == "invites":
            refs = members_by_key(s, p.ws.id, [str(r[0]) for r in shown.rows])
            shown = _invite_table(shown, {k: v.name for k, v in refs.items()})
    with p.write() as s:
        p.audit(s, "report.export", target=name, detail={**given, "format": fmt})
    if fmt == "csv":
        body = to_csv(shown.headers, shown.rows)
    else:
        body = to_xlsx(shown.headers, shown.rows, report_title(name))
    return Response(
        body,
        media_type=FORMATS[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{_filename(name, params, fmt)}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/w/{workspace}/reports")
def report_index(p: Annotated[Principal, Depends(need(Perm.VIEW))]) -> HTMLResponse:
    items = [(n, report_title(n), report_summary(n)) for n in REPORT_PARAMS]
    return render(p.request, "reports/index.html", {"active": "reports", "items": items})


@router.get("/w/{workspace}/reports/{name}")
def report_page(name: str, p: Annotated[Principal, Depends(need(Perm.VIEW))]) -> Response:
    if name not in REPORT_PARAMS:
        raise NotFound(f"no report {name!r} in the console")
    request = p.request
    fmt = request.query_params.get("format", "")
    error: str | None = None
    given: dict[str, str] = {}
    answer: dict[str, Any] | None = None
    params: ReportParams | None = None
    shown: Shown | None = None
    people: dict[str, Any] = {}
    try:
        given = _given(request, name)
        if fmt:
            if fmt not in FORMATS:
                raise InvalidParameter(f"format must be csv or xlsx (got {fmt!r})")
            return _download(p, name, given, fmt)
        with p.read() as s:
            answer = run_report(s, get_workspace(s, p.ws.name), name, dict(given), p.group_ids)
            params = parse_params(dict(given), p.calendar)
            shown = shown_table(name, answer, current_locale.get())
            if name == "invites":
                refs = members_by_key(s, p.ws.id, [str(r[0]) for r in shown.rows])
                people = dict(refs)
                shown = _invite_table(shown, {k: v.name for k, v in refs.items()})
    except InvalidParameter as exc:
        error = translate_error(str(exc))
        given = {k: request.query_params.get(k, "")[:MAX_PARAM_LENGTH] for k in REPORT_PARAMS[name]}
    charts = _charts(name, answer, shown) if answer is not None and shown is not None else []
    return render(
        request,
        f"reports/{name}.html",
        {
            "active": name,
            "charts": bool(charts),
            "name": name,
            "title": report_title(name),
            "summary": report_summary(name),
            "param_names": REPORT_PARAMS[name],
            "param_label": param_label,
            "values": _form_values(name, given, params),
            "answer": answer,
            "shown": shown,
            "chart_specs": dict(charts),
            "people": people,
            "error": error,
            "flashes": [("error", error)] if error else [],
            "report_url": p.url(f"/reports/{name}"),
        },
        status_code=400 if error else 200,
    )
