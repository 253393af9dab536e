"""Connector actions: requested once, claimed by one runner, retried with backoff, swept."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, select

from quanzi.config import get_settings
from quanzi.connectors import actions
from quanzi.connectors.actions import (
    MAX_ATTEMPTS,
    ORPHAN_GRACE_US,
    RUNNING_LEASE_US,
    ActionFailed,
    ActionKind,
    backoff_us,
    list_actions,
    register_kind,
    request_action,
    retry_action,
    run_action,
    sweep_due,
)
from quanzi.connectors.jobs import run_connector_action, sweep_connector_actions
from quanzi.connectors.models import ConnectorAction
from quanzi.core.workspaces.service import get_or_create_workspace
from quanzi.db.engine import session_scope
from quanzi.jobs import huey, reset_backend
from quanzi.kit.clock import now_us
from quanzi.kit.errors import InvalidParameter, NotFound


class Echo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    times: int = 1


class Script:
    """What the test executor does on each call: a list of results or exceptions."""

    def __init__(self) -> None:
        self.steps: list[Any] = []
        self.calls: list[dict[str, Any]] = []
        self.delay = 0.0
        self.lock = threading.Lock()

    def __call__(self, engine: Engine, ws_id: int, payload: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.calls.append(payload)
            step = self.steps.pop(0) if self.steps else {"echo": payload["text"] * payload["times"]}
        if self.delay:
            time.sleep(self.delay)
        if isinstance(step, BaseException):
            raise step
        return dict(step)


@pytest.fixture
def script() -> Iterator[Script]:
    s = Script()
    register_kind(ActionKind("test", "echo", Echo, s, "Echo"))
    yield s
    actions._KINDS.pop(("test", "echo"), None)


@pytest.fixture(autouse=True)
def _queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The job queue on this test's data dir, emptied after."""
    monkeypatch.delenv("QUANZI_REDIS_URL", raising=False)
    get_settings.cache_clear()
    reset_backend()
    yield
    huey.flush()
    reset_backend()


def queued_runs() -> list[int]:
    return [t.args[0] for t in huey.pending() if t.name == "run_connector_action"]


def workspace(engine: Engine, name: str = "w1") -> int:
    with session_scope(engine) as s:
        return get_or_create_workspace(s, name).id


def request(engine: Engine, ws_id: int, key: str = "k1", **payload: Any) -> int:
    with session_scope(engine) as s:
        action = request_action(
            s, ws_id, "test", "echo", payload or {"text": "hi"}, key, "owner@example.com"
        )
        s.flush()
        return action.id


def row(engine: Engine, action_id: int) -> ConnectorAction:
    with session_scope(engine, read_only=True) as s:
        found = s.get(ConnectorAction, action_id)
        assert found is not None
        s.expunge(found)
        return found


def test_a_request_is_stored_pending_and_its_run_queued_after_commit(
    engine: Engine, script: Script
) -> None:
    ws_id = workspace(engine)
    with session_scope(engine) as s:
        action = request_action(s, ws_id, "test", "echo", {"text": "hi"}, "k1", "a@example.com")
        s.flush()
        assert action.state == "pending" and action.attempts == 0
        assert queued_runs() == []  # not before the commit
    assert queued_runs() == [action.id]
    assert row(engine, action.id).created_by == "a@example.com"


def test_the_same_idempotency_key_returns_the_first_action(engine: Engine, script: Script) -> None:
    ws_id, other_ws = workspace(engine), workspace(engine, "w2")
    first = request(engine, ws_id, "k1", text="hi")
    again = request(engine, ws_id, "k1", text="something else")
    assert again == first
    assert row(engine, first).payload == {"text": "hi", "times": 1}
    assert queued_runs() == [first]  # the repeat queued nothing
    # Keys are per workspace.
    assert request(engine, other_ws, "k1") != first
    with session_scope(engine, read_only=True) as s:
        assert s.scalar(select(ConnectorAction.id).where(ConnectorAction.id > first)) is not None
        assert list_actions(s, ws_id).total == 1


def test_a_bad_payload_or_kind_is_refused_naming_the_field(engine: Engine, script: Script) -> None:
    ws_id = workspace(engine)
    with session_scope(engine) as s:
        with pytest.raises(InvalidParameter, match=r"times: Input should be a valid integer"):
            request_action(s, ws_id, "test", "echo", {"text": "x", "times": "many"}, "k", None)
        with pytest.raises(InvalidParameter, match=r"colour: Extra inputs are not permitted"):
            request_action(s, ws_id, "test", "echo", {"text": "x", "colour": 1}, "k", None)
        with pytest.raises(InvalidParameter, match=r"kind: test has no action 'nope'"):
            request_action(s, ws_id, "test", "nope", {}, "k", None)
        with pytest.raises(InvalidParameter, match="idempotency_key"):
            request_action(s, ws_id, "test", "echo", {"text": "x"}, "  ", None)
        assert list_actions(s, ws_id).total == 0
    assert queued_runs() == []


def test_a_run_stores_the_result(engine: Engine, script: Script) -> None:
    action_id = request(engine, workspace(engine), text="ab", times=2)
    outcome = run_action(engine, action_id)
    assert (outcome.state, outcome.attempts) == ("done", 1)
    done = row(engine, action_id)
    assert (done.state, done.attempts, done.result, done.last_error) == (
        "done",
        1,
        {"echo": "abab"},
        None,
    )
    # Running it again does nothing: it is no longer pending.
    assert run_action(engine, action_id).state == "skipped"
    assert len(script.calls) == 1


def test_two_concurrent_runners_run_an_action_once(engine: Engine, script: Script) -> None:
    action_id = request(engine, workspace(engine))
    script.delay = 0.3  # the first claimer is still running when the second tries
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def runner() -> None:
        start.wait()
        outcomes.append(run_action(engine, action_id).state)

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["done", "skipped"]
    assert len(script.calls) == 1
    assert row(engine, action_id).attempts == 1


def test_a_retryable_error_backs_off_then_succeeds(engine: Engine, script: Script) -> None:
    action_id = request(engine, workspace(engine))
    script.steps = [ActionFailed("WeCom busy", retryable=True), {"ok": True}]
    t0 = now_us()
    first = run_action(engine, action_id, now=t0)
    assert (first.state, first.error) == ("pending", "WeCom busy")
    waiting = row(engine, action_id)
    assert waiting.state == "pending" and waiting.attempts == 1
    assert waiting.next_attempt_at_us == t0 + backoff_us(1)
    assert waiting.last_error == "WeCom busy"
    # Not due yet: a runner leaves it alone.
    assert run_action(engine, action_id, now=t0 + backoff_us(1) - 1).state == "skipped"
    assert run_action(engine, action_id, now=t0 + backoff_us(1)).state == "done"
    done = row(engine, action_id)
    assert (done.state, done.attempts, done.result, done.last_error) == (
        "done",
        2,
        {"ok": True},
        None,
    )


def test_backoff_doubles() -> None:
    assert [backoff_us(n) // 1_000_000 for n in (1, 2, 3, 4)] == [30, 60, 120, 240]


def test_retryable_errors_give_up_after_the_last_attempt(engine: Engine, script: Script) -> None:
    action_id = request(engine, workspace(engine))
    script.steps = [
        httpx.ConnectError("connection refused to /cgi-bin/x?access_token=SECRET123")
    ] * MAX_ATTEMPTS
    at = now_us()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        outcome = run_action(engine, action_id, now=at)
        assert outcome.attempts == attempt
        at += backoff_us(attempt)
    assert outcome.state == "failed"
    failed = row(engine, action_id)
    assert failed.state == "failed" and failed.attempts == MAX_ATTEMPTS
    assert failed.last_error is not None
    assert failed.last_error.startswith(f"gave up after {MAX_ATTEMPTS} attempts: network error")
    assert "SECRET123" not in failed.last_error and "access_token=***" in failed.last_error


def test_a_permanent_error_fails_at_once(engine: Engine, script: Script) -> None:
    action_id = request(engine, workspace(engine))
    script.steps = [ActionFailed("WeCom: errcode 41051 (welcome code already used)")]
    assert run_action(engine, action_id).state == "failed"
    failed = row(engine, action_id)
    assert (failed.state, failed.attempts) == ("failed", 1)
    assert failed.last_error == "WeCom: errcode 41051 (welcome code already used)"
    assert failed.next_attempt_at_us is None


def test_an_unexpected_exception_fails_the_action_without_details(
    engine: Engine, script: Script
) -> None:
    action_id = request(engine, workspace(engine))
    script.steps = [KeyError("secret-ish detail")]
    assert run_action(engine, action_id).state == "failed"
    error = row(engine, action_id).last_error or ""
    assert error.startswith("internal error (KeyError)") and "secret-ish" not in error


def test_retry_puts_a_failed_action_back_with_fresh_attempts(
    engine: Engine, script: Script
) -> None:
    ws_id, other_ws = workspace(engine), workspace(engine, "w2")
    action_id = request(engine, ws_id)
    script.steps = [ActionFailed("no permission")]
    run_action(engine, action_id)
    huey.flush()
    with session_scope(engine) as s:
        assert retry_action(s, ws_id, action_id).state == "pending"
    assert queued_runs() == [action_id]
    again = row(engine, action_id)
    assert (again.state, again.attempts, again.next_attempt_at_us) == ("pending", 0, None)
    assert run_action(engine, action_id).state == "done"
    with session_scope(engine) as s:
        with pytest.raises(InvalidParameter, match="only a failed action can be retried"):
            retry_action(s, ws_id, action_id)
        with pytest.raises(NotFound):
            retry_action(s, other_ws, action_id)  # another workspace's


def test_the_sweeper_runs_an_action_whose_job_never_ran(engine: Engine, script: Script) -> None:
    action_id = request(engine, workspace(engine))
    huey.flush()  # the process died between the commit and the job
    created = row(engine, action_id).created_at_us
    # A fresh action is its job's, not the sweeper's.
    assert sweep_due(engine, now=created + ORPHAN_GRACE_US - 1) == []
    outcomes = sweep_due(engine, now=created + ORPHAN_GRACE_US)
    assert [(o.action_id, o.state) for o in outcomes] == [(action_id, "done")]
    assert row(engine, action_id).result == {"echo": "hi"}


def test_the_sweeper_runs_due_retries_and_fails_interrupted_runs(
    engine: Engine, script: Script
) -> None:
    ws_id = workspace(engine)
    retrying, interrupted = request(engine, ws_id, "a"), request(engine, ws_id, "b")
    script.steps = [ActionFailed("busy", retryable=True)]
    t0 = now_us()
    run_action(engine, retrying, now=t0)
    # A worker claimed it, then died mid-call.
    assert actions._claim(engine, interrupted, t0) is not None
    later = t0 + RUNNING_LEASE_US
    outcomes = sweep_due(engine, now=later)
    assert [(o.action_id, o.state) for o in outcomes] == [(retrying, "done")]
    lost = row(engine, interrupted)
    assert lost.state == "failed"
    assert "may or may not have done it" in (lost.last_error or "")
    assert len(script.calls) == 2  # the interrupted one was not run again by itself


def test_the_jobs_run_on_the_configured_database(
    engine: Engine, db_url: str, script: Script, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUANZI_DATABASE_URL", db_url)
    get_settings.cache_clear()
    ws_id = workspace(engine)
    first = request(engine, ws_id, "a")
    assert run_connector_action.call_local(first) == {
        "action_id": first,
        "state": "done",
        "attempts": 1,
    }
    orphan = request(engine, ws_id, "b")
    with session_scope(engine) as s:  # as if created a while ago
        found = s.get(ConnectorAction, orphan)
        assert found is not None
        found.updated_at_us -= ORPHAN_GRACE_US
    assert sweep_connector_actions.call_local() == {"ran": 1}
    assert row(engine, orphan).state == "done"


def test_list_actions_filters_by_state_and_pages(engine: Engine, script: Script) -> None:
    ws_id = workspace(engine)
    ids = [request(engine, ws_id, f"k{i}") for i in range(5)]
    script.steps = [ActionFailed("nope")]
    run_action(engine, ids[0])
    run_action(engine, ids[1])
    with session_scope(engine, read_only=True) as s:
        assert [a.id for a in list_actions(s, ws_id).rows] == ids[::-1]
        assert [a.id for a in list_actions(s, ws_id, "failed").rows] == [ids[0]]
        assert [a.id for a in list_actions(s, ws_id, "done").rows] == [ids[1]]
        page = list_actions(s, ws_id, "pending", page=2, per_page=2)
        assert ([a.id for a in page.rows], page.total, page.pages) == ([ids[2]], 3, 2)
        with pytest.raises(InvalidParameter, match="state: 'lost' is not one of"):
            list_actions(s, ws_id, "lost")
