"""Helpers shared by the CLI commands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from quanzi.db.engine import session_scope
from quanzi.kit.errors import QuanziError

WorkspaceOption = typer.Option("default", "--workspace", "-w", help="Workspace name.")

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


@contextmanager
def cli_session(*, read_only: bool = False) -> Iterator[Session]:
    """A committed-once session; user errors become a clear message and exit code 2."""
    try:
        with session_scope(read_only=read_only) as session:
            yield session
    except QuanziError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
