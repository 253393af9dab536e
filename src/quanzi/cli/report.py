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


def _table(title: str, rows: list[dict[str, Any]], cols: list[str], fmt: dict[str, Any]) -> Table:
    """A table of `rows` (dicts): the first column left-aligned, numbers right-aligned."""
    t = Table(title=title)
    for i, c in enumerate(cols):
        t.add_column(c, justify="left" if i == 0 or c == "name" else "right", overflow="fold")
    for r in rows:
        t.add_row(*[fmt.get(c, str)(r[c]) for c in cols])
    return t


def render(name: str, answer: dict[str, Any]) -> Table:
    """A readable table of a report answer (the JSON stays the contract)."""
    if name == "overview":
        rows = [{"metric": k, "value": v} for k, v in answer.items() if k != "date"]
        return _table(f"概览 overview {answer['date']}", rows, ["metric", "value"], {})
    if name == "groups":
        cols = list(answer["groups"][0]) if answer["groups"] else ["group"]
        fmt = {"activity_rate_7d": _pct, "ugc_share_7d": _pct}
        return _table(f"社群 groups {answer['date']}", answer["groups"], cols, fmt)
    if name == "invites":
        cols = ["inviter", "raw", "new", "valid", "pending"]
        return _table("邀请 invites", answer["inviters"], cols, {})
    if name == "retention":
        width = max((len(c["retained"]) for c in answer["cohorts"]), default=0)
        rows = []
        for c in answer["cohorts"]:
            row = {"cohort": c["week"], "size": c["size"]}
            for k in range(width):
                n = c["retained"][k] if k < len(c["retained"]) else None
                pct = f" ({n / c['size'] * 100:.0f}%)" if n is not None and c["size"] else ""
                row[f"W{k}"] = "" if n is None else f"{n}{pct}"
            rows.append(row)
        cols = ["cohort", "size", *(f"W{k}" for k in range(width))]
        return _table(f"留存 retention ({answer['kind']})", rows, cols, {})
    if name == "lifecycle":
        cols = ["week", "new", "returning", "resurrecting", "dormant"]
        return _table("生命周期 lifecycle", answer["weeks"], cols, {})
    if name == "funnel":
        acquired = answer["acquired"]
        rows = [
            {"stage": k, "members": v, "of acquired": _pct(v / acquired) if acquired else "—"}
            for k, v in answer.items()
        ]
        return _table("漏斗 funnel (AARRR)", rows, ["stage", "members", "of acquired"], {})
    cols = ["channel", "acquired", "activated", "revenue_members", "revenue"]
    return _table("渠道 channels", answer["channels"], cols, {"revenue": _yuan})


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
