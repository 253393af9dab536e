"""Workspaces, API tokens, rebuild, and operator marks (staff, invite fraud)."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from sqlalchemy import func, select

from quanzi.cli.common import WorkspaceOption, cli_session, console, err_console
from quanzi.config import get_settings
from quanzi.core.events.models import EventRecord
from quanzi.core.events.projections import rebuild as rebuild_projections
from quanzi.core.members import service as members
from quanzi.core.workspaces import service as workspaces
from quanzi.db.engine import get_engine

workspace_app = typer.Typer(help="Workspaces (one brand or company each).", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
member_app = typer.Typer(help="Operator marks on members.", no_args_is_help=True)


@workspace_app.command("create")
def workspace_create(
    name: str,
    timezone: str = typer.Option(
        None, "--timezone", help="IANA time zone (default Asia/Shanghai)."
    ),
) -> None:
    """Create a workspace."""
    with cli_session() as session:
        ws = workspaces.get_or_create_workspace(session, name, timezone)
        console.print(f"workspace {ws.name} (time zone {ws.timezone})", highlight=False)


@workspace_app.command("list")
def workspace_list() -> None:
    """List workspaces with their event counts."""
    with cli_session() as session:
        t = Table("name", "time zone", "events")
        for ws in workspaces.list_workspaces(session):
            n = session.scalar(
                select(func.count())
                .select_from(EventRecord)
                .where(EventRecord.workspace_id == ws.id)
            )
            t.add_row(ws.name, ws.timezone, str(n))
        console.print(t)


@workspace_app.command("set-timezone")
def workspace_set_timezone(name: str, timezone: str) -> None:
    """Change a workspace's time zone and rebuild its projections (days are local)."""
    with cli_session() as session:
        ws = workspaces.get_workspace(session, name)
        workspaces.set_timezone_check(timezone)
        ws.timezone = timezone
        ws_id = ws.id
    _rebuild(ws_id)
    console.print(f"workspace {name}: time zone {timezone}, projections rebuilt", highlight=False)


@token_app.command("create")
def token_create(
    workspace: str = WorkspaceOption,
    name: str = typer.Option("api", "--name", help="A label for the token."),
) -> None:
    """Create an API token (printed once; only its hash is stored)."""
    with cli_session() as session:
        ws = workspaces.get_or_create_workspace(session, workspace)
        token = workspaces.create_token(session, ws, name)
    typer.echo(token)
    err_console.print(
        f"token for workspace {workspace}: use it as 'Authorization: Bearer <token>'",
        highlight=False,
    )


def _rebuild(ws_id: int) -> int:
    engine = get_engine()
    with cli_session() as session:
        total = session.scalar(
            select(func.count()).select_from(EventRecord).where(EventRecord.workspace_id == ws_id)
        )
    with Progress(
        TextColumn("[bold]重建 rebuild"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        disable=not err_console.is_terminal,
    ) as progress:
        task = progress.add_task("rebuild", total=total)
        return rebuild_projections(engine, ws_id, on_progress=lambda n: progress.advance(task, n))


def rebuild(workspace: str = WorkspaceOption) -> None:
    """Recompute every projection of the workspace from its event log."""
    with cli_session() as session:
        ws_id = workspaces.get_workspace(session, workspace).id
    n = _rebuild(ws_id)
    console.print(f"workspace {workspace}: rebuilt from {n} events", highlight=False)


PlatformOption = typer.Option(
    ..., "--platform", "-p", help="Platform of the member id (wecom, telegram, …)."
)


@member_app.command("mark-staff")
def mark_staff(
    member: str,
    platform: str = PlatformOption,
    workspace: str = WorkspaceOption,
    undo: bool = typer.Option(False, "--undo", help="Remove the mark."),
) -> None:
    """Mark a member as staff (left out of member figures)."""
    with cli_session() as session:
        ws = workspaces.get_workspace(session, workspace)
        members.mark_staff(session, ws.id, platform, member, staff=not undo)
    console.print(
        f"{platform}:{member} {'unmarked' if undo else 'marked'} as staff", highlight=False
    )


@member_app.command("flag-invite")
def flag_invite(
    member: str,
    platform: str = PlatformOption,
    workspace: str = WorkspaceOption,
    reason: str = typer.Option(None, "--reason"),
    undo: bool = typer.Option(False, "--undo", help="Remove the flag."),
) -> None:
    """Flag an invitee as fraud: their invites count as neither valid nor pending."""
    with cli_session() as session:
        ws = workspaces.get_workspace(session, workspace)
        if undo:
            members.unflag_invite_fraud(session, ws.id, platform, member)
        else:
            members.flag_invite_fraud(session, ws.id, platform, member, reason)
    console.print(f"{platform}:{member} {'unflagged' if undo else 'flagged'}", highlight=False)


def where() -> None:
    """Print where the database and the data directory are."""
    s = get_settings()
    console.print(f"database: {s.resolved_database_url()}\ndata dir: {s.data_dir}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(workspace_app, name="workspace")
    app.add_typer(token_app, name="token")
    app.add_typer(member_app, name="member")
    app.command("rebuild")(rebuild)
    app.command("where")(where)
