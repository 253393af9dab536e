"""`quanzi report NAME`: the reports of contracts/metrics.md, as a table or as JSON."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from quanzi.analytics.service import REPORT_NAMES, run_report
from quanzi.cli.common import WorkspaceOption, cli_session, console
from quanzi.core.workspaces.service import get_or_create_workspace, get_workspace


def _pct(v: Any) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def _yuan(fen: int) -> str:
    return f"¥{fen / 100:,.2f}"


def render(name: str, answer: dict[str, Any]) -> Table:
    """A readable table of a report answer (the JSON stays the contract)."""
    if name == "overview":
        t = Table(title=f"概览 overview {answer['date']}")
        t.add_column("指标 metric")
        t.add_column("值 value", justify="right")
        for k, v in answer.items():
            if k != "date":
                t.add_row(k, str(v))
        return t
    if name == "groups":
        t = Table(title=f"社群 groups {answer['date']}")
        cols = [
            "group",
            "name",
            "size",
            "joins_7d",
            "leaves_7d",
            "messages_7d",
            "active_7d",
            "activity_rate_7d",
            "ugc_share_7d",
            "silent",
        ]
        for c in cols:
            t.add_column(c, justify="left" if c in ("group", "name") else "right", overflow="fold")
        for g in answer["groups"]:
            t.add_row(
                *[
                    _pct(g[c]) if c in ("activity_rate_7d", "ugc_share_7d") else str(g[c])
                    for c in cols
                ]
            )
        return t
    if name == "invites":
        t = Table(title="邀请 invites")
        for c in ("inviter", "raw", "new", "valid", "pending"):
            t.add_column(c, justify="left" if c == "inviter" else "right")
        for r in answer["inviters"]:
            t.add_row(
                r["inviter"], str(r["raw"]), str(r["new"]), str(r["valid"]), str(r["pending"])
            )
        return t
    if name == "retention":
        t = Table(title=f"留存 retention ({answer['kind']})")
        t.add_column("cohort")
        t.add_column("size", justify="right")
        width = max((len(c["retained"]) for c in answer["cohorts"]), default=0)
        for week in range(width):
            t.add_column(f"W{week}", justify="right")
        for c in answer["cohorts"]:
            cells = [
                f"{n} ({n / c['size'] * 100:.0f}%)" if c["size"] else str(n) for n in c["retained"]
            ]
            t.add_row(c["week"], str(c["size"]), *cells, *[""] * (width - len(cells)))
        return t
    if name == "lifecycle":
        t = Table(title="生命周期 lifecycle")
        for c in ("week", "new", "returning", "resurrecting", "dormant"):
            t.add_column(c, justify="left" if c == "week" else "right")
        for w in answer["weeks"]:
            t.add_row(
                w["week"],
                str(w["new"]),
                str(w["returning"]),
                str(w["resurrecting"]),
                str(w["dormant"]),
            )
        return t
    if name == "funnel":
        t = Table(title="漏斗 funnel (AARRR)")
        t.add_column("stage")
        t.add_column("members", justify="right")
        t.add_column("of acquired", justify="right")
        acquired = answer["acquired"]
        for k, v in answer.items():
            t.add_row(k, str(v), _pct(v / acquired) if acquired else "—")
        return t
    t = Table(title="渠道 channels")
    for c in ("channel", "acquired", "activated", "revenue_members", "revenue"):
        t.add_column(c, justify="left" if c == "channel" else "right")
    for r in answer["channels"]:
        t.add_row(
            r["channel"],
            str(r["acquired"]),
            str(r["activated"]),
            str(r["revenue_members"]),
            _yuan(r["revenue"]),
        )
    return t


def report(
    name: str = typer.Argument(..., help="One of: " + ", ".join(REPORT_NAMES)),
    workspace: str = WorkspaceOption,
    date: str = typer.Option(
        None, "--date", help="Day (YYYY-MM-DD) for overview and groups; default yesterday."
    ),
    from_: str = typer.Option(None, "--from", help="First day of the window (YYYY-MM-DD)."),
    to: str = typer.Option(
        None, "--to", help="Last day of the window (YYYY-MM-DD); default yesterday."
    ),
    hold_hours: str = typer.Option(
        None, "--hold-hours", help="Invite hold window in hours (default 72)."
    ),
    as_of: str = typer.Option(
        None, "--as-of", help="Instant the report is asked at (default now)."
    ),
    kind: str = typer.Option(None, "--kind", help="Retention kind: activity or membership."),
    weeks: str = typer.Option(None, "--weeks", help="Retention weeks (default 8)."),
    as_json: bool = typer.Option(False, "--json", help="Print the contract's JSON."),
) -> None:
    """Print a report (contracts/metrics.md)."""
    params = {
        "date": date,
        "from": from_,
        "to": to,
        "hold_hours": hold_hours,
        "as_of": as_of,
        "kind": kind,
        "weeks": weeks,
    }
    with cli_session() as session:
        get_or_create_workspace(session, workspace)
    with cli_session(read_only=True) as session:
        answer = run_report(session, get_workspace(session, workspace), name, params)
    if as_json:
        typer.echo(json.dumps(answer, ensure_ascii=False, sort_keys=False))
    else:
        console.print(render(name, answer))


def register(app: typer.Typer) -> None:
    app.command("report")(report)
