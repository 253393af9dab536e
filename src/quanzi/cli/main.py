"""The `quanzi` command. Each module below adds its commands; they stay thin and call services."""

from __future__ import annotations

import typer

from quanzi.cli import admin, demo, ingest, report, serve, users

app = typer.Typer(
    name="quanzi",
    help="Quanzi (圈子): self-hosted community operations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for module in (ingest, report, admin, users, demo, serve):
    module.register(app)


if __name__ == "__main__":
    app()
