"""Run the web app (and, embedded, the job consumer) under uvicorn."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI
from rich.console import Console

from quanzi.config import get_settings
from quanzi.db.engine import get_engine
from quanzi.jobs import describe_backend, uses_redis
from quanzi.web.app import create_app


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    workspace_hint: str | None = None,
    run_jobs: bool | None = None,
) -> None:
    """Serve until interrupted; prints where to open it.

    Jobs run in this process (threads) unless QUANZI_REDIS_URL is set, in which case
    `quanzi worker` processes run them (`run_jobs` overrides).
    """
    console = Console(stderr=True, soft_wrap=True)
    engine = get_engine()
    # Generated and stored in the data directory on first start when not configured.
    settings = get_settings()
    key_source = (
        "QUANZI_SECRET_KEY" if settings.secret_key else str(settings.data_dir / "secret_key")
    )
    settings.resolved_secret_key()
    if run_jobs is None:
        run_jobs = not uses_redis()
    app = create_app(engine, run_jobs=run_jobs)

    shown_host = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown_host = "127.0.0.1"
    base = f"http://{shown_host}:{port}"
    console.print(f"[bold]Quanzi[/bold] on [link={base}/]{base}/[/link]", highlight=False)
    console.print(f"  API docs   {base}/docs", highlight=False)
    console.print(f"  OpenAPI    {base}/openapi.json", highlight=False)
    console.print(f"  health     {base}/healthz", highlight=False)
    console.print(
        f"  database   {engine.url.render_as_string(hide_password=True)}", highlight=False
    )
    console.print(f"  secret key {key_source}", highlight=False)
    jobs_where = "in this process" if run_jobs else "by `quanzi worker` processes"
    console.print(f"  jobs       {describe_backend()}, run {jobs_where}", highlight=False)
    if workspace_hint:
        console.print(
            f"  workspace  {workspace_hint} — API token: quanzi token create --workspace {workspace_hint}",
            highlight=False,
        )
    console.print("Press Ctrl+C to stop.", highlight=False)
    run(app, host, port)


def run(app: FastAPI, host: str, port: int) -> None:
    """uvicorn as `quanzi serve` runs it (bench/landing.py runs it the same way): one process,
    which holds the embedded job consumer and the public pages' in-memory state; httptools and
    uvloop, which uvicorn picks when installed; X-Forwarded-For/-Proto believed only from the
    peers in QUANZI_TRUSTED_PROXIES (the public pages apply the same rule)."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        proxy_headers=True,
        forwarded_allow_ips=get_settings().trusted_proxies,
    )
