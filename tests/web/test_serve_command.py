"""`quanzi serve` for real: a uvicorn process that answers, runs jobs in-process, and stops."""

from __future__ import annotations

import inspect
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from quanzi.config import get_settings
from quanzi.core.workspaces.service import create_token, get_or_create_workspace
from quanzi.db.engine import get_engine, session_scope
from quanzi.jobs import huey, reset_backend
from quanzi.web.server import serve


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Path]]:
    monkeypatch.setenv("QUANZI_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    reset_backend()  # this test's queue file, shared with the server process
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "quanzi.cli.main", "serve", "--port", str(port)],
            env=dict(os.environ),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, log.read_text(errors="replace")
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text(errors="replace")
                time.sleep(0.1)
            yield base, log
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            reset_backend()
    assert proc.returncode == 0, log.read_text(errors="replace")


def test_serve_answers_prints_where_and_runs_jobs(
    server: tuple[str, Path], sqlite_url: str
) -> None:
    base, log = server
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "Quanzi"
    banner = log.read_text()
    assert f"{base}/" in banner and f"{base}/docs" in banner
    assert f"database   {sqlite_url}" in banner
    # The first start generated the secret key and stored it, private, in the data directory.
    key_file = get_settings().data_dir / "secret_key"
    assert len(key_file.read_text()) >= 40 and key_file.stat().st_mode & 0o077 == 0
    assert f"secret key {key_file}" in banner

    with session_scope(get_engine(sqlite_url)) as session:
        token = create_token(session, get_or_create_workspace(session, "default"))
    r = httpx.post(f"{base}/api/v1/rebuild", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 202
    # Nobody consumes in this process: only the server's in-process consumer can finish it.
    result = huey.result(r.json()["task_id"], blocking=True, timeout=60)
    assert result["events"] == 0


def test_serve_keeps_the_signature_demo_calls() -> None:
    params = inspect.signature(serve).parameters
    assert params["host"].default == "127.0.0.1" and params["port"].default == 8000
    assert params["workspace_hint"].kind is inspect.Parameter.KEYWORD_ONLY
