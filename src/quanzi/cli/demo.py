"""`quanzi demo`: fill a workspace with a simulated community (through ingest) and serve it."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from quanzi.cli.common import cli_session, console, err_console
from quanzi.cli.users import ensure_user, generate_password
from quanzi.core.groups.models import Group
from quanzi.core.workspaces.service import create_token, get_or_create_workspace, validate_name
from quanzi.db.engine import get_engine
from quanzi.demo.fraud_leads import load_planted_file
from quanzi.demo.generator import (
    DemoSpec,
    estimate_events,
    fraud_acquisition_path,
    fraud_truth_path,
    write_fraud_events,
)
from quanzi.demo.loader import (
    count_lines,
    delete_workspace,
    demo_file,
    demo_state,
    ingest_file,
    parse_day,
    write_events,
)
from quanzi.kit.errors import QuanziError
from quanzi.team import service as team


def demo(
    workspace: str = typer.Option("default", "--workspace", "-w", help="Workspace to fill."),
    seed: int = typer.Option(42, "--seed", help="Same seed and sizes, same community."),
    members: int = typer.Option(
        3000, "--members", min=1, max=10_000_000, help="Members who join within the window."
    ),
    days: int = typer.Option(90, "--days", min=1, max=3650, help="Length of the window in days."),
    groups: int = typer.Option(24, "--groups", min=1, max=100_000, help="Groups in the portfolio."),
    end_day: str | None = typer.Option(
        None,
        "--end-day",
        metavar="YYYY-MM-DD",
        help="Last day of the window. Default: the loaded community's, else yesterday (Asia/Shanghai).",
        show_default=False,
    ),
    activity: float = typer.Option(
        1.0, "--activity", min=0.0, max=100.0, help="Chat volume multiplier."
    ),
    fraud: bool = typer.Option(
        False,
        "--fraud",
        help="Plant invite fraud (self-invites, quick leavers, sybil rings) with ground truth "
        "written beside the events file.",
    ),
    reset: bool = typer.Option(
        False, "--reset", help="Delete the workspace and everything in it first."
    ),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Start the web app afterwards."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", "-p", help="Port to listen on."),
) -> None:
    """Load a realistic simulated community (deterministic for a seed) and serve it."""
    try:
        validate_name(workspace)
        end = parse_day(end_day) if end_day else None
    except (QuanziError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None
    engine = get_engine()
    console.print(f"database   {engine.url.render_as_string(hide_password=True)}", highlight=False)
    if reset and delete_workspace(engine, workspace):
        console.print(f"workspace  {workspace}: deleted (--reset)", highlight=False)
    with cli_session() as session:
        ws_id = get_or_create_workspace(session, workspace).id

    state = demo_state(engine, ws_id, DemoSpec(seed, members, days, groups, end, activity, fraud))
    spec = state.spec
    assert spec.end_day is not None
    if state.stored_end_day is not None and state.stored_end_day != spec.end_day:
        err_console.print(
            f"[red]error:[/red] workspace {workspace} already holds this demo community (seed {seed}, "
            f"{members} members) ending {state.stored_end_day}; to load it ending {spec.end_day}, "
            "add --reset (deletes the workspace's data) or use another --workspace.",
            highlight=False,
        )
        raise typer.Exit(2)
    start_day = spec.end_day - timedelta(days=days - 1)
    window = f"{start_day} … {spec.end_day}"
    if state.complete:
        console.print(
            f"workspace  {workspace}: demo community already loaded (seed {seed}, {members} members, "
            f"{window}); nothing to do. Use --reset to load it afresh.",
            highlight=False,
        )
    else:
        _load(engine, ws_id, workspace, spec, window, resumed=state.started)
    if spec.fraud:  # leads are not events: stored after the ingest (idempotent)
        path = _fraud_path(spec)
        if not fraud_acquisition_path(path).exists():
            write_fraud_events(spec, path)  # the same bytes again, with the leads beside them
        leads, visits = load_planted_file(engine, ws_id, fraud_acquisition_path(path))
        console.print(f"leads      {leads} planted leads, {visits} poster visits", highlight=False)

    with cli_session() as session:
        token = create_token(session, get_or_create_workspace(session, workspace), name="demo")
        logins = demo_team(session, workspace)
    _print_next_steps(workspace, token, spec, host, port, logins)
    if serve:
        from quanzi.web.server import serve as run_server

        run_server(host, port, workspace_hint=workspace)


def _progress(label: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("events"),
        TimeRemainingColumn(),
        console=err_console,
        disable=not err_console.is_terminal,
    )


def _load(
    engine: Engine, ws_id: int, workspace: str, spec: DemoSpec, window: str, *, resumed: bool
) -> None:
    path = _fraud_path(spec) if spec.fraud else demo_file(spec)
    began = time.monotonic()
    if path.exists():
        total = count_lines(path)
    elif spec.fraud:
        total = write_fraud_events(spec, path)
        console.print(f"truth      {fraud_truth_path(path)}", highlight=False)
    else:
        estimate = estimate_events(spec.members, spec.groups, spec.days, spec.activity)
        with _progress("生成 generate") as progress:
            task = progress.add_task("generate", total=estimate)
            total = write_events(spec, path, on_progress=lambda n: progress.advance(task, n))
            progress.update(task, total=total, completed=total)
    console.print(f"events     {path} ({total} lines)", highlight=False)
    if resumed:
        console.print("workspace  a previous load was interrupted: resuming", highlight=False)
    with _progress("导入 ingest") as progress:
        task = progress.add_task("ingest", total=total)
        report = ingest_file(engine, ws_id, path, on_progress=lambda n: progress.advance(task, n))
    seconds = time.monotonic() - began
    console.print(
        f"workspace  {workspace}: applied {report.applied}, duplicates {report.duplicates}, "
        f"refused {len(report.refused)} in {seconds:.1f} s ({window})",
        highlight=False,
    )
    for n, reason in report.refused[:10]:
        err_console.print(f"[red]refused[/red] line {n}: {reason}", highlight=False)
    if report.refused:
        # The generator only writes valid events: a refusal is a bug in it or in ingest.
        raise typer.Exit(1)


def _fraud_path(spec: DemoSpec) -> Path:
    path = demo_file(spec)
    return path.with_name(path.stem + "-fraud.jsonl")


DEMO_TEAM = (
    ("owner", "owner@demo.quanzi.test", "演示负责人"),
    ("operator", "operator@demo.quanzi.test", "演示运营"),
    ("analyst", "analyst@demo.quanzi.test", "演示分析师"),
)


def demo_team(session: Session, workspace: str) -> list[tuple[str, str, str]]:
    """An owner, an operator (the first three groups) and an analyst, with fresh passwords."""
    logins = []
    ws = get_or_create_workspace(session, workspace)
    first_groups = list(
        session.scalars(
            select(Group.id).where(Group.workspace_id == ws.id).order_by(Group.group_key).limit(3)
        )
    )
    for role, email, name in DEMO_TEAM:
        password = generate_password()
        user = ensure_user(session, workspace, email, role, password, name)
        if role == "operator":
            team.assign_groups(session, ws.id, user.id, first_groups)
        logins.append((role, email, password))
    return logins


def _print_next_steps(
    workspace: str,
    token: str,
    spec: DemoSpec,
    host: str,
    port: int,
    logins: list[tuple[str, str, str]],
) -> None:
    assert spec.end_day is not None
    end = spec.end_day.isoformat()
    start = (spec.end_day - timedelta(days=spec.days - 1)).isoformat()
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
    base = f"http://{shown}:{port}"
    ws = "" if workspace == "default" else f" --workspace {workspace}"
    lines = [
        f"Console    {base}/login   (passwords are new on every run of quanzi demo)",
        *[f"  {role:<9}{email}   password {password}" for role, email, password in logins],
        "",
        f"API token  {token}   (workspace {workspace}; shown once, stored hashed)",
        "",
        "Try:",
        f"  quanzi report overview --date {end}{ws}",
        f"  quanzi report groups --date {end}{ws}",
        f"  quanzi report channels --from {start} --to {end}{ws}",
        f"  quanzi report invites --from {start} --to {end}{ws}",
        f"  quanzi report retention --from {start} --to {end}{ws}",
        f'  curl -H "Authorization: Bearer {token}" "{base}/api/v1/reports/funnel?from={start}&to={end}"',
        (
            f'  curl -H "Authorization: Bearer {token}" -H "Content-Type: application/x-ndjson" '
            f"--data-binary @events.jsonl {base}/api/v1/events"
        ),
    ]
    console.print("\n".join(lines), highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
