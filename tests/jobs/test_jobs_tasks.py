"""rebuild_workspace runs on both backends: SQLite in-process threads, Redis with a worker process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from huey.storage import RedisStorage, SqliteStorage
from sqlalchemy import Engine, delete

from quanzi.analytics.service import REPORT_NAMES, run_report
from quanzi.config import get_settings
from quanzi.core.events.projections import PROJECTION_TABLES
from quanzi.core.events.service import ingest_lines
from quanzi.core.workspaces.service import create_token, get_or_create_workspace, get_workspace
from quanzi.db.engine import session_scope
from quanzi.jobs import (
    describe_backend,
    enqueue_after_commit,
    huey,
    reset_backend,
    start_in_process,
    uses_redis,
)
from quanzi.jobs.tasks import rebuild_workspace
from quanzi.web.app import create_app

PARAMS = {
    "from": "2026-09-28",
    "to": "2026-10-11",
    "date": "2026-10-02",
    "as_of": "2026-11-01T00:00:00+08:00",
}
LINES = [
    '{"id":"e1","type":"group.created","ts":"2026-10-01T09:00:00+08:00","platform":"wecom","group":"g1","name":"一群"}',
    '{"id":"e2","type":"member.joined","ts":"2026-10-01T09:01:00+08:00","platform":"wecom","group":"g1","member":"s","is_staff":true}',
    '{"id":"e3","type":"member.joined","ts":"2026-10-01T10:00:00+08:00","platform":"wecom","group":"g1","member":"a","channel":"live"}',
    '{"id":"e4","type":"member.joined","ts":"2026-10-01T10:05:00+08:00","platform":"wecom","group":"g1","member":"b","inviter":"a","via":"invite"}',
    '{"id":"e5","type":"message.posted","ts":"2026-10-02T10:06:00+08:00","platform":"wecom","group":"g1","member":"b","text":"hi"}',
    '{"id":"e6","type":"member.left","ts":"2026-10-02T11:00:00+08:00","platform":"wecom","group":"g1","member":"a"}',
    '{"id":"e7","type":"order.paid","ts":"2026-10-03T20:00:00+08:00","platform":"wecom","order":"o1","member":"b","amount":19900,"referrer":"a"}',
]


@pytest.fixture
def configured_db(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """QUANZI_DATABASE_URL names the test's database: that is where a job finds its work."""
    monkeypatch.setenv("QUANZI_DATABASE_URL", db_url)
    get_settings.cache_clear()
    return db_url


def reports(engine: Engine, workspace: str) -> dict[str, Any]:
    with session_scope(engine) as session:
        ws = get_workspace(session, workspace)
        return {name: run_report(session, ws, name, dict(PARAMS)) for name in REPORT_NAMES}


def community_with_lost_projections(engine: Engine) -> tuple[int, dict[str, Any]]:
    """A workspace whose projections were wiped after ingest; returns its id and the true reports."""
    with session_scope(engine) as session:
        ws_id = get_or_create_workspace(session, "w1").id
    assert ingest_lines(engine, ws_id, LINES).applied == len(LINES)
    truth = reports(engine, "w1")
    with engine.begin() as conn:
        for table in PROJECTION_TABLES:
            conn.execute(delete(table).where(table.workspace_id == ws_id))
    assert reports(engine, "w1") != truth
    return ws_id, truth


@pytest.fixture
def in_process_consumer(sqlite_queue: None) -> Iterator[None]:
    consumer = start_in_process(workers=1)
    try:
        yield
    finally:
        consumer.stop(graceful=True)


def test_queue_backend_is_a_sqlite_file_in_the_data_dir_by_default(sqlite_queue: None) -> None:
    assert isinstance(huey.storage, SqliteStorage)
    assert Path(huey.storage.filename).parent == get_settings().data_dir


def test_queue_backend_is_redis_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUANZI_REDIS_URL", "redis://:s3cret@redis.internal:6380/2")
    get_settings.cache_clear()
    reset_backend()
    try:
        assert isinstance(huey.storage, RedisStorage)  # created without connecting
        assert describe_backend() == "Redis redis://:***@redis.internal:6380/2"
        assert uses_redis()
    finally:
        reset_backend()


def test_rebuild_runs_in_process_on_sqlite(
    engine: Engine, configured_db: str, in_process_consumer: None
) -> None:
    ws_id, truth = community_with_lost_projections(engine)
    with session_scope(engine) as session:
        task_id = enqueue_after_commit(session, rebuild_workspace, ws_id)
    result = huey.result(task_id, blocking=True, timeout=60)
    assert result["workspace_id"] == ws_id and result["events"] == len(LINES)
    assert reports(engine, "w1") == truth

    # Idempotent: running it again changes nothing.
    rebuild_workspace.call_local(ws_id)
    assert reports(engine, "w1") == truth


def test_rebuild_endpoint_with_the_apps_own_consumer(
    engine: Engine, configured_db: str, sqlite_queue: None
) -> None:
    ws_id, truth = community_with_lost_projections(engine)
    with session_scope(engine) as session:
        token = create_token(session, get_workspace(session, "w1"))
    with TestClient(create_app(engine, run_jobs=True)) as client:  # the lifespan runs the consumer
        r = client.post("/api/v1/rebuild", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 202, r.text
        assert r.json()["task"] == "rebuild_workspace"
        result = huey.result(r.json()["task_id"], blocking=True, timeout=60)
    assert result["workspace_id"] == ws_id
    assert reports(engine, "w1") == truth


def test_rebuild_runs_on_redis_in_a_separate_worker_process(
    engine: Engine, configured_db: str, redis_queue: str, tmp_path: Path
) -> None:
    assert isinstance(huey.storage, RedisStorage)
    ws_id, truth = community_with_lost_projections(engine)
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "quanzi.cli.main", "worker", "--threads", "1"],
        env={**os.environ, "QUANZI_REDIS_URL": redis_queue, "QUANZI_DATABASE_URL": configured_db},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with session_scope(engine) as session:
            task_id = enqueue_after_commit(session, rebuild_workspace, ws_id)
        result = huey.result(task_id, blocking=True, timeout=60)
        assert result["workspace_id"] == ws_id and result["events"] == len(LINES)
        assert reports(engine, "w1") == truth
    finally:
        worker.send_signal(signal.SIGINT)
        try:
            worker.wait(timeout=30)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            log.close()
    output = (tmp_path / "worker.log").read_text(errors="replace")
    assert "rebuild_workspace" in output, output
