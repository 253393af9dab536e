"""enqueue_after_commit: a job is queued by its transaction's commit, never by a rollback."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from quanzi.core.workspaces.service import create_token, get_or_create_workspace, get_workspace
from quanzi.db.engine import session_factory, session_scope
from quanzi.jobs import JobQueueUnavailable, enqueue_after_commit, huey
from quanzi.jobs.tasks import rebuild_workspace
from quanzi.kit.errors import NotFound
from quanzi.web.app import create_app

pytestmark = pytest.mark.usefixtures("sqlite_queue")


def queued() -> list[tuple[str, tuple[Any, ...]]]:
    return [(task.id, tuple(task.args)) for task in huey.pending()]


def test_queued_when_the_transaction_commits(engine: Engine) -> None:
    with session_scope(engine) as session:
        ws = get_or_create_workspace(session, "w1")
        task_id = enqueue_after_commit(session, rebuild_workspace, ws.id)
        session.flush()
        assert queued() == []  # not before the commit
    assert queued() == [(task_id, (ws.id,))]


def test_dropped_when_the_transaction_rolls_back(engine: Engine) -> None:
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        ws = get_or_create_workspace(session, "w1")
        enqueue_after_commit(session, rebuild_workspace, ws.id)
        raise RuntimeError("the request failed")
    assert queued() == []
    with session_scope(engine) as session, pytest.raises(NotFound):
        get_workspace(session, "w1")  # the transaction really was rolled back


def test_dropped_when_the_session_closes_without_commit(engine: Engine) -> None:
    session: Session = session_factory(engine)()
    get_or_create_workspace(session, "w1")
    enqueue_after_commit(session, rebuild_workspace, 1)
    session.close()
    assert queued() == []
    session.commit()  # the same session, a new (empty) transaction: nothing left to queue
    assert queued() == []


def test_each_commit_queues_its_own_jobs_once(engine: Engine) -> None:
    session: Session = session_factory(engine)()
    try:
        enqueue_after_commit(session, rebuild_workspace, 1)  # before anything began
        session.commit()
        enqueue_after_commit(session, rebuild_workspace, 2)
        session.rollback()
        enqueue_after_commit(session, rebuild_workspace, 3)
        session.commit()
        session.commit()
    finally:
        session.close()
    assert sorted(args for _id, args in queued()) == [(1,), (3,)]


def test_savepoint_rollback_drops_only_its_own_jobs(engine: Engine) -> None:
    with session_scope(engine) as session:
        get_or_create_workspace(session, "w1")
        enqueue_after_commit(session, rebuild_workspace, 1)
        with session.begin_nested():
            enqueue_after_commit(session, rebuild_workspace, 2)  # released: kept
        savepoint = session.begin_nested()
        enqueue_after_commit(session, rebuild_workspace, 3)
        savepoint.rollback()
        assert queued() == []
    assert sorted(args for _id, args in queued()) == [(1,), (2,)]


def test_a_queue_failure_after_commit_is_a_503_not_a_500(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with session_scope(engine) as session:
        token = create_token(session, get_or_create_workspace(session, "w1"))

    def down(task: Any) -> None:
        raise ConnectionError("queue unreachable")

    monkeypatch.setattr(huey, "enqueue", down)
    with pytest.raises(JobQueueUnavailable), session_scope(engine) as session:
        get_or_create_workspace(session, "w2")
        enqueue_after_commit(session, rebuild_workspace, 1)
    with session_scope(engine) as session:
        get_workspace(session, "w2")  # committed before the queue was asked

    with TestClient(create_app(engine)) as client:
        r = client.post("/api/v1/rebuild", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 503
    assert "job queue" in r.json()["detail"]
