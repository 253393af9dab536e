"""`quanzi wecom sync` and `quanzi wecom status`: pull a workspace's WeCom corp, show its state."""

from __future__ import annotations

import json

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from quanzi.cli.common import WorkspaceOption, cli_session, console, err_console
from quanzi.connectors.wecom.client import client_for
from quanzi.connectors.wecom.sync import KINDS, sync, sync_states
from quanzi.core.workspaces.service import get_workspace
from quanzi.db.engine import get_engine, session_scope
from quanzi.kit.clock import from_us
from quanzi.kit.errors import QuanziError

wecom_app = typer.Typer(help="WeCom (企业微信): sync customers and groups, show the state.")

LABELS = {
    "staff": "员工 staff",
    "contacts": "客户 contacts",
    "groups": "客户群 groups",
    "tags": "标签 tags",
}


def _sync(
    workspace: str = WorkspaceOption,
    full: bool = typer.Option(False, "--full", help="Start over instead of resuming."),
    kind: list[str] = typer.Option(
        [], "--kind", help=f"Only these kinds ({'|'.join(KINDS)}); repeatable."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Sync staff, customers, customer groups and corp tags; events only for differences."""
    kinds = tuple(kind) or KINDS
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise typer.BadParameter(f"{bad[0]!r} (kinds: {', '.join(KINDS)})", param_hint="--kind")
    engine = get_engine()
    with cli_session() as session:
        ws_id = get_workspace(session, workspace).id
        client = client_for(session, ws_id)
    show = console.is_terminal and not as_json
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        disable=not show,
    )
    tasks: dict[str, TaskID] = {}

    def on_progress(k: str, done: int, total: int | None) -> None:
        if k not in tasks:
            tasks[k] = progress.add_task(LABELS.get(k, k), total=total)
        progress.update(tasks[k], completed=done, total=total)

    try:
        with progress, client:
            report = sync(engine, ws_id, client, kinds=kinds, full=full, on_progress=on_progress)
    except QuanziError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        err_console.print("Run the same command again to resume from where it stopped.")
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps({"workspace": workspace, **report.as_dict()}, ensure_ascii=False))
        return
    for k, r in report.kinds.items():
        resumed = " (resumed)" if r.resumed else ""
        console.print(
            f"{LABELS.get(k, k)}: fetched {r.fetched}, events {r.applied}, "
            f"duplicates {r.duplicates}{resumed}",
            highlight=False,
        )
    console.print(f"workspace {workspace}: {report.applied} events, {report.api_calls} API calls")


def _status(
    workspace: str = WorkspaceOption,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Each kind's last sync: done, running (resumable) or failed, with its error."""
    engine = get_engine()
    with session_scope(engine, read_only=True) as session:
        try:
            ws_id = get_workspace(session, workspace).id
        except QuanziError as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from None
    states = sync_states(engine, ws_id)
    if as_json:
        typer.echo(json.dumps({"workspace": workspace, "kinds": states}, ensure_ascii=False))
        return
    if not states:
        console.print(f"workspace {workspace}: WeCom has not been synced yet")
        return
    table = Table("kind", "status", "started", "finished", "checkpoint", "error")
    for s in states:
        checkpoint = s["checkpoint"] or {}
        table.add_row(
            s["kind"],
            s["status"],
            from_us(s["started_at_us"]).isoformat(timespec="seconds"),
            from_us(s["finished_at_us"]).isoformat(timespec="seconds")
            if s["finished_at_us"]
            else "",
            str(checkpoint.get("done", "")) if s["status"] != "done" else "",
            s["last_error"] or "",
        )
    console.print(table)


wecom_app.command("sync")(_sync)
wecom_app.command("status")(_status)


def register(app: typer.Typer) -> None:
    app.add_typer(wecom_app, name="wecom")
