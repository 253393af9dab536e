"""`quanzi serve` (the web app, with jobs in-process by default) and `quanzi worker`."""

from __future__ import annotations

import logging

import typer

from quanzi.cli.common import err_console


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(worker)


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", "-p", help="Port to listen on."),
    jobs: bool | None = typer.Option(
        None,
        "--jobs/--no-jobs",
        help="Run background jobs in this process. Default: yes, unless QUANZI_REDIS_URL is set "
        "(then `quanzi worker` processes run them).",
        show_default=False,
    ),
) -> None:
    """Start the web app: HTTP API, OpenAPI docs and /healthz."""
    from quanzi.web.server import serve as run_server

    run_server(host, port, run_jobs=jobs)


def worker(
    threads: int = typer.Option(2, "--threads", "-t", min=1, max=64, help="Jobs run at once."),
) -> None:
    """Run background jobs from the queue (for QUANZI_REDIS_URL / scale-out) until stopped."""
    from quanzi.jobs import describe_backend, run_worker, uses_redis

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not uses_redis():
        err_console.print(
            "note: QUANZI_REDIS_URL is not set, so jobs are queued in the local SQLite file and "
            "`quanzi serve` already runs them; this worker helps on this machine only.",
            highlight=False,
        )
    err_console.print(
        f"worker: consuming {describe_backend()} with {threads} thread(s)", highlight=False
    )
    run_worker(threads)
