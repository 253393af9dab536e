"""`quanzi ingest`: load JSON Lines event files (or standard input) into a workspace."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from quanzi.cli.common import WorkspaceOption, cli_session, console, err_console
from quanzi.core.events.service import ingest_lines
from quanzi.core.workspaces.service import get_or_create_workspace
from quanzi.db.engine import get_engine

PARALLEL_FROM_BYTES = 4 * 1024 * 1024


class _Sources:
    """Chains several files into one numbered stream and maps numbers back to (file, line)."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        self.starts: list[tuple[int, str]] = []  # (first global line number, label)
        self.bytes_read = 0
        self.total_bytes = 0
        for p in paths:
            if p != "-":
                path = Path(p)
                if not path.is_file():
                    raise typer.BadParameter(f"{p}: no such file", param_hint="FILE")
                self.total_bytes += path.stat().st_size

    def lines(self) -> Iterator[bytes]:
        n = 0
        for p in self.paths:
            self.starts.append((n + 1, p))
            fh: BinaryIO = sys.stdin.buffer if p == "-" else open(p, "rb")
            try:
                for line in fh:
                    n += 1
                    self.bytes_read += len(line)
                    yield line
            finally:
                if fh is not sys.stdin.buffer:
                    fh.close()

    def where(self, n: int) -> str:
        label, first = self.paths[0], 1
        for start, lab in self.starts:
            if start <= n:
                first, label = start, lab
        local = n - first + 1
        return f"line {local}" if len(self.paths) == 1 else f"{label}: line {local}"


def ingest(
    files: list[str] = typer.Argument(
        ..., metavar="FILE...", help="JSON Lines files; '-' reads standard input."
    ),
    workspace: str = WorkspaceOption,
    strict: bool = typer.Option(False, "--strict", help="Apply nothing if any line is bad."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Ingest events (contracts/events.md). Exits 1 when any line was refused."""
    sources = _Sources(files)
    with cli_session() as session:
        ws_id = get_or_create_workspace(session, workspace).id
    engine = get_engine()
    show = console.is_terminal and not as_json
    progress = Progress(
        TextColumn("[bold]导入 ingest"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=not show,
    )
    with progress:
        task = progress.add_task("ingest", total=sources.total_bytes or None)
        report = ingest_lines(
            engine,
            ws_id,
            sources.lines(),
            strict=strict,
            # A second core validates while this one writes, when there is enough to gain.
            parallel=(os.cpu_count() or 1) > 1
            and (sources.total_bytes > PARALLEL_FROM_BYTES or "-" in files),
            on_progress=lambda _n: progress.update(task, completed=sources.bytes_read),
        )
    errors = [f"{sources.where(n)}: {reason}" for n, reason in report.refused]
    warnings = [f"{sources.where(n)}: {text}" for n, text in report.warnings]
    if as_json:
        out = report.as_dict()
        out["errors"], out["warnings"] = errors, warnings
        out["workspace"] = workspace
        typer.echo(json.dumps(out, ensure_ascii=False))
    else:
        for w in warnings:
            err_console.print(Text.assemble(("warning ", "yellow"), w))
        for e in errors:
            err_console.print(Text.assemble(("refused ", "red"), e))
        note = " (strict: nothing applied)" if strict and report.refused else ""
        console.print(
            f"workspace {workspace}: applied {report.applied}, duplicates {report.duplicates}, "
            f"refused {len(report.refused)}{note}",
            highlight=False,
        )
    if report.refused:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
