"""Actions carried out on a platform: requested once, run by the job engine, retried, recorded.

The life of an action: `request_action` stores it `pending` (idempotent by the workspace's
`idempotency_key`) and queues its run after the commit; `run_action` claims it
(pending → running, one conditional UPDATE, so two workers never both run it), calls the
executor registered for (platform, kind) outside any database transaction, and stores the
outcome: `done` with the result, back to `pending` with `next_attempt_at_us` for a
retryable error (exponential backoff, at most MAX_ATTEMPTS runs), or `failed` with the
error in words. `sweep_due` (a periodic job) runs what is due, so an action whose job was
lost (the process died between the commit and the queue) still runs.

A run that was interrupted while `running` is not run again by itself: the platform may
already have done it (a mass message sent twice is worse than one not sent), so it is
marked failed with that said, and an operator retries it after checking.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quanzi.connectors.models import ACTION_STATES, ConnectorAction
from quanzi.db.engine import session_scope
from quanzi.kit.clock import US, now_us
from quanzi.kit.errors import InvalidParameter, NotFound, QuanziError

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BACKOFF_BASE_S = 30  # 30 s, 60 s, 120 s, 240 s between the five runs
BACKOFF_MAX_S = 3600
# A pending action whose job should have run by now is the sweeper's after this long.
ORPHAN_GRACE_US = 60 * US
# A run still `running` after this long was interrupted (the worker died mid-call).
RUNNING_LEASE_US = 15 * 60 * US
PER_PAGE = 50
MAX_ERROR_CHARS = 2000

# Executors take ids and plain data, never a session: they talk to the platform with no
# database transaction open (SQLite's write lock must not wait on a remote API).
Executor = Callable[[Engine, int, dict[str, Any]], dict[str, Any]]


class ActionFailed(QuanziError):
    """An executor's failure in words; `retryable` when trying again later may succeed."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class ActionKind:
    platform: str
    kind: str
    payload: type[BaseModel]  # validates and normalises the request's payload
    execute: Executor
    title: str  # a few words, for the console and errors


_KINDS: dict[tuple[str, str], ActionKind] = {}


def register_kind(kind: ActionKind) -> None:
    """Make (platform, kind) requestable; registering the same pair again replaces it."""
    _KINDS[(kind.platform, kind.kind)] = kind


def action_kind(platform: str, kind: str) -> ActionKind:
    _load_platforms()
    found = _KINDS.get((platform, kind))
    if found is None:
        known = ", ".join(sorted(k for p, k in _KINDS if p == platform)) or "none"
        raise InvalidParameter(f"kind: {platform} has no action {kind!r} (known: {known})")
    return found


def kinds(platform: str) -> list[ActionKind]:
    _load_platforms()
    return [k for (p, _k), k in sorted(_KINDS.items()) if p == platform]


def _load_platforms() -> None:
    # The platforms' action modules register their kinds when imported.
    import quanzi.connectors.wecom.actions  # noqa: F401


def validate_payload(kind: ActionKind, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as the kind's model reads it (JSON types), or InvalidParameter naming fields."""
    try:
        model = kind.payload.model_validate(payload)
    except ValidationError as exc:
        raise InvalidParameter(describe_validation_error(exc)) from None
    return model.model_dump(mode="json", exclude_none=True)


def describe_validation_error(exc: ValidationError) -> str:
    """`state: String should have at most 30 characters`-style parts, one per problem."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "payload"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


# --- requesting ------------------------------------------------------------------------------


def request_action(
    session: Session,
    ws_id: int,
    platform: str,
    kind: str,
    payload: dict[str, Any],
    idempotency_key: str,
    created_by: str | None,
) -> ConnectorAction:
    """Store an action to run (pending) and queue its run after the commit.

    A second request with the same `idempotency_key` in the workspace returns the first
    action unchanged (whatever its payload), and queues nothing."""
    key = (idempotency_key or "").strip()
    if not key or len(key) > 200:
        raise InvalidParameter("idempotency_key: give 1-200 characters")
    existing = action_by_key(session, ws_id, key)
    if existing is not None:
        return existing
    spec = action_kind(platform, kind)
    clean = validate_payload(spec, payload)
    now = now_us()
    action = ConnectorAction(
        workspace_id=ws_id,
        platform=platform,
        kind=kind,
        idempotency_key=key,
        payload=clean,
        state="pending",
        attempts=0,
        created_by=created_by,
        created_at_us=now,
        updated_at_us=now,
    )
    try:
        with session.begin_nested():
            session.add(action)
    except IntegrityError:
        # The same key, committed by a concurrent request in the meantime.
        existing = action_by_key(session, ws_id, key)
        if existing is None:
            raise
        return existing
    _queue_run(session, action.id)
    return action


def _queue_run(session: Session, action_id: int) -> None:
    from quanzi.connectors.jobs import run_connector_action
    from quanzi.jobs import enqueue_after_commit

    enqueue_after_commit(session, run_connector_action, action_id)


def action_by_key(session: Session, ws_id: int, key: str) -> ConnectorAction | None:
    """The workspace's action requested with `key`, if any."""
    return session.scalar(
        select(ConnectorAction).where(
            ConnectorAction.workspace_id == ws_id, ConnectorAction.idempotency_key == key
        )
    )


def get_action(session: Session, ws_id: int, action_id: int) -> ConnectorAction:
    action = session.get(ConnectorAction, action_id)
    if action is None or action.workspace_id != ws_id:
        raise NotFound(f"action {action_id} does not exist")
    return action


def retry_action(session: Session, ws_id: int, action_id: int) -> ConnectorAction:
    """A failed action back to pending with a fresh set of attempts; its run is queued."""
    action = get_action(session, ws_id, action_id)
    if action.state != "failed":
        raise InvalidParameter(
            f"action {action_id} is {action.state}: only a failed action can be retried"
        )
    now = now_us()
    done = session.execute(
        update(ConnectorAction)
        .where(ConnectorAction.id == action_id, ConnectorAction.state == "failed")
        .values(state="pending", attempts=0, next_attempt_at_us=None, updated_at_us=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(done, "rowcount", 0) != 1:
        raise InvalidParameter(f"action {action_id} changed meanwhile; reload and try again")
    session.refresh(action)
    _queue_run(session, action_id)
    return action


@dataclass(frozen=True)
class ActionPage:
    rows: list[ConnectorAction]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def list_actions(
    session: Session,
    ws_id: int,
    state: str | None = None,
    page: int = 1,
    per_page: int = PER_PAGE,
) -> ActionPage:
    """The workspace's actions, newest first, optionally in one state."""
    if state is not None and state not in ACTION_STATES:
        raise InvalidParameter(f"state: {state!r} is not one of {', '.join(ACTION_STATES)}")
    if page < 1:
        raise InvalidParameter("page: must be 1 or more")
    where = [ConnectorAction.workspace_id == ws_id]
    if state is not None:
        where.append(ConnectorAction.state == state)
    total = session.scalar(select(func.count()).select_from(ConnectorAction).where(*where)) or 0
    rows = list(
        session.scalars(
            select(ConnectorAction)
            .where(*where)
            .order_by(ConnectorAction.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    )
    return ActionPage(rows, int(total), page, per_page)


# --- running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOutcome:
    action_id: int
    state: str  # the state after this run: done, pending (retry later), failed, or "skipped"
    attempts: int
    error: str | None = None


def backoff_us(attempts: int) -> int:
    """How long to wait after the `attempts`-th run failed with a retryable error."""
    seconds: int = min(BACKOFF_BASE_S << max(attempts - 1, 0), BACKOFF_MAX_S)
    return seconds * US


def run_action(engine: Engine, action_id: int, *, now: int | None = None) -> RunOutcome:
    """Claim the action and run it once; "skipped" when it was not ours to run (taken by
    another worker, not due yet, already done or failed)."""
    started = now if now is not None else now_us()
    claimed = _claim(engine, action_id, started)
    if claimed is None:
        return RunOutcome(action_id, "skipped", 0)
    ws_id, platform, kind, payload, attempts = claimed
    try:
        spec = action_kind(platform, kind)
        result = spec.execute(engine, ws_id, payload)
    except Exception as exc:
        retryable, message = _classify(exc)
        if retryable and attempts < MAX_ATTEMPTS:
            due = (now if now is not None else now_us()) + backoff_us(attempts)
            _finish(engine, action_id, state="pending", next_attempt_at_us=due, last_error=message)
            return RunOutcome(action_id, "pending", attempts, message)
        if retryable:
            message = f"gave up after {attempts} attempts: {message}"
        _finish(engine, action_id, state="failed", last_error=message)
        return RunOutcome(action_id, "failed", attempts, message)
    _finish(engine, action_id, state="done", result=result, last_error=None)
    return RunOutcome(action_id, "done", attempts)


def _claim(
    engine: Engine, action_id: int, now: int
) -> tuple[int, str, str, dict[str, Any], int] | None:
    with session_scope(engine) as session:
        # One conditional UPDATE: SQLite serialises writers, PostgreSQL re-checks the WHERE
        # after waiting for a concurrent claimer's row lock; either way one claim wins.
        done = session.execute(
            update(ConnectorAction)
            .where(
                ConnectorAction.id == action_id,
                ConnectorAction.state == "pending",
                or_(
                    ConnectorAction.next_attempt_at_us.is_(None),
                    ConnectorAction.next_attempt_at_us <= now,
                ),
            )
            .values(
                state="running",
                attempts=ConnectorAction.attempts + 1,
                next_attempt_at_us=None,
                updated_at_us=now,
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(done, "rowcount", 0) != 1:
            return None
        row = session.execute(
            select(
                ConnectorAction.workspace_id,
                ConnectorAction.platform,
                ConnectorAction.kind,
                ConnectorAction.payload,
                ConnectorAction.attempts,
            ).where(ConnectorAction.id == action_id)
        ).one()
        return int(row[0]), str(row[1]), str(row[2]), dict(row[3] or {}), int(row[4])


def _finish(engine: Engine, action_id: int, *, state: str, **values: Any) -> None:
    with session_scope(engine) as session:
        session.execute(
            update(ConnectorAction)
            .where(ConnectorAction.id == action_id, ConnectorAction.state == "running")
            .values(state=state, updated_at_us=now_us(), **values)
            .execution_options(synchronize_session=False)
        )


_SECRET_QUERY_RE = re.compile(r"(access_token|corpsecret|secret)=[^&\s'\"]*", re.I)


def _redact(text: str) -> str:
    """No access token or secret in a stored error (httpx puts the URL in some messages)."""
    return _SECRET_QUERY_RE.sub(r"\1=***", text)[:MAX_ERROR_CHARS]


def _classify(exc: Exception) -> tuple[bool, str]:
    """(retryable, message in words) for an executor's exception."""
    if isinstance(exc, ActionFailed):
        return exc.retryable, _redact(str(exc))
    if isinstance(exc, httpx.TransportError):
        return True, _redact(f"network error ({type(exc).__name__}): {exc}")
    if isinstance(exc, QuanziError):
        return False, _redact(str(exc))
    log.exception("connector action failed unexpectedly")
    return False, _redact(f"internal error ({type(exc).__name__}); see the server log")


# --- the sweeper -----------------------------------------------------------------------------


def due_action_ids(session: Session, now: int, limit: int = 100) -> list[int]:
    """Pending actions whose time has come: a retry that is due, or one whose job never ran."""
    return list(
        session.scalars(
            select(ConnectorAction.id)
            .where(
                ConnectorAction.state == "pending",
                or_(
                    ConnectorAction.next_attempt_at_us <= now,
                    and_(
                        ConnectorAction.next_attempt_at_us.is_(None),
                        ConnectorAction.updated_at_us <= now - ORPHAN_GRACE_US,
                    ),
                ),
            )
            .order_by(ConnectorAction.id)
            .limit(limit)
        )
    )


def fail_interrupted(session: Session, now: int) -> int:
    """Runs left `running` past the lease: failed, saying the outcome is unknown."""
    done = session.execute(
        update(ConnectorAction)
        .where(
            ConnectorAction.state == "running",
            ConnectorAction.updated_at_us <= now - RUNNING_LEASE_US,
        )
        .values(
            state="failed",
            updated_at_us=now,
            last_error=(
                "interrupted while running (the worker stopped); the platform may or may not "
                "have done it: check there before retrying"
            ),
        )
        .execution_options(synchronize_session=False)
    )
    count: int = getattr(done, "rowcount", 0) or 0
    return count


def sweep_due(engine: Engine, *, now: int | None = None, limit: int = 100) -> list[RunOutcome]:
    """Run every due pending action (oldest first); fail runs that were interrupted."""
    at = now if now is not None else now_us()
    with session_scope(engine) as session:
        fail_interrupted(session, at)
        ids = due_action_ids(session, at, limit)
    return [run_action(engine, action_id, now=now) for action_id in ids]
