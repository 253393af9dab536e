"""The `quanzi` command. Each module below adds its commands; they stay thin and call services."""

from __future__ import annotations

import sys

import typer

from quanzi.cli import admin, campaign, demo, ingest, report, serve, users, wecom
from quanzi.cli.common import err_console
from quanzi.kit.errors import QuanziError

app = typer.Typer(
    name="quanzi",
    help="Quanzi (圈子): self-hosted community operations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for module in (ingest, report, admin, users, demo, serve, wecom, campaign):
    module.register(app)


def main() -> None:
    """The console script: a user error anywhere (even mid-ingest) is one clear line, exit 2."""
    try:
        app()
    except QuanziError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
