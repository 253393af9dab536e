"""Background writers of the public pages: the visit log and the lead group commit.

- `VisitLog`: a view of a landing page or a channel code's redirect is appended to memory and
  written by one background thread every `FLUSH_S` (0.2 s), all pending visits of a database
  in one transaction, and again when the app shuts down. A SIGKILL loses at most the visits of
  the last interval (view counts only; a lead never goes through it).
- `GroupCommit`: a lead is acknowledged only after its transaction committed. Submissions that
  arrive while a commit is running are stored together in the next one (each in its own
  savepoint, so one failing submission does not fail the others): one commit, one fsync, for
  many leads, and no writers queueing for SQLite's write lock.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from quanzi.acquisition.models import ChannelVisit, LandingVisit
from quanzi.acquisition.visitors import Visitor
from quanzi.core.workspaces.service import workspace_key
from quanzi.db.engine import session_scope
from quanzi.kit.clock import LocalCalendar
from quanzi.kit.crypto import WorkspaceKey

log = logging.getLogger(__name__)

T = TypeVar("T")

FLUSH_S = 0.2
MAX_PENDING = 100_000  # visits kept per database while it cannot be written; older ones drop
GIVE_UP = 150  # failed flushes in a row (30 s) before a database's pending visits are dropped


@dataclass(frozen=True)
class PendingVisit:
    """A visit not yet written: its row without digests and day, and who made it."""

    model: type[LandingVisit] | type[ChannelVisit]
    workspace_id: int
    timezone: str
    at_us: int
    values: dict[str, Any]
    visitor: Visitor


class VisitLog:
    """Visits in memory, written every `interval` seconds by one daemon thread."""

    def __init__(self, interval: float = FLUSH_S) -> None:
        self.interval = interval
        self._pending: dict[Engine, list[PendingVisit]] = {}
        self._failures: dict[Engine, int] = {}
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # one flush at a time (the thread or a shutdown)
        self._thread: threading.Thread | None = None
        self._held = 0

    def add(self, engine: Engine, visit: PendingVisit) -> None:
        with self._lock:
            rows = self._pending.setdefault(engine, [])
            rows.append(visit)
            if len(rows) > MAX_PENDING:
                del rows[: len(rows) - MAX_PENDING]
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="quanzi-visit-log", daemon=True
                )
                self._thread.start()

    def pending(self, engine: Engine) -> int:
        with self._lock:
            return len(self._pending.get(engine, ()))

    def flush(self, engine: Engine | None = None) -> int:
        """Write the pending visits (of `engine`, or of every database) now; how many."""
        written = 0
        with self._flushing:
            with self._lock:
                engines = list(self._pending) if engine is None else [engine]
            for e in engines:
                with self._lock:
                    rows = self._pending.pop(e, [])
                if not rows:
                    continue
                try:
                    written += _write_visits(e, rows)
                except Exception as exc:  # the database is away: keep them for the next try
                    failures = self._failures[e] = self._failures.get(e, 0) + 1
                    if failures >= GIVE_UP:
                        log.error("%d visits dropped: the database failed: %s", len(rows), exc)
                        del self._failures[e]
                        continue
                    if failures == 1:
                        log.warning("%d visits not written yet: %s", len(rows), exc)
                    with self._lock:
                        later = self._pending.setdefault(e, [])
                        later[:0] = rows[-MAX_PENDING:]
                else:
                    self._failures.pop(e, None)
        return written

    @contextmanager
    def held(self) -> Iterator[None]:
        """No background flush meanwhile (an explicit `flush` still writes): for tests."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            if not self._held:
                self.flush()


def _write_visits(engine: Engine, rows: list[PendingVisit]) -> int:
    keys: dict[int, WorkspaceKey] = {}
    calendars: dict[str, LocalCalendar] = {}
    # Within one flush, many visits come from one device (a refresh, a bench): digest it once.
    memo: dict[tuple[int, str | None, str], tuple[str | None, str | None]] = {}
    by_model: dict[type[LandingVisit] | type[ChannelVisit], list[dict[str, Any]]] = defaultdict(
        list
    )
    with session_scope(engine) as s:
        for v in rows:
            key = keys.get(v.workspace_id)
            if key is None:
                key = keys[v.workspace_id] = workspace_key(s, v.workspace_id)
            cal = calendars.get(v.timezone)
            if cal is None:
                cal = calendars[v.timezone] = LocalCalendar(v.timezone)
            seen = (v.workspace_id, v.visitor.network, v.visitor.user_agent)
            digests = memo.get(seen)
            if digests is None:
                digests = memo[seen] = v.visitor.digests(key)
            net, device = digests
            by_model[v.model].append(
                {
                    **v.values,
                    "workspace_id": v.workspace_id,
                    "at_us": v.at_us,
                    "day": cal.day_of(v.at_us),
                    "net_digest": net,
                    "device_digest": device,
                }
            )
        written = 0
        for model, items in by_model.items():
            try:
                with s.begin_nested():
                    s.execute(insert(model), items)
                written += len(items)
            except IntegrityError:
                # A page or code deleted meanwhile: write the others, drop those.
                for item in items:
                    try:
                        with s.begin_nested():
                            s.execute(insert(model), [item])
                        written += 1
                    except IntegrityError:
                        log.info("visit dropped: its %s is gone", model.__tablename__)
    return written


VISITS = VisitLog()
atexit.register(VISITS.flush)


@asynccontextmanager
async def flush_visits_on_shutdown(app: Any) -> AsyncIterator[None]:
    """A router lifespan: the app's pending visits are written when it shuts down."""
    try:
        yield
    finally:
        engine = getattr(app.state, "engine", None)
        if engine is not None:
            await run_in_threadpool(VISITS.flush, engine)


class GroupCommit(Generic[T]):
    """Runs submitted writes on one thread, many per transaction, each in a savepoint; a
    submission's future resolves only once its transaction has committed."""

    IDLE_S = 5.0  # the thread ends after this long without work (and starts again on demand)

    def __init__(
        self,
        engine: Engine,
        max_batch: int = 128,
        finish: Callable[[Session, list[Any]], list[T]] | None = None,
    ) -> None:
        """`finish(session, results)`, when given, runs once per batch after every submission
        and before the commit (work done once for many, e.g. one UPDATE): it gets the
        successful submissions' results and returns what their futures resolve to, in order."""
        self.engine = engine
        self.max_batch = max_batch
        self.finish = finish
        self._queue: list[tuple[Callable[[Session], Any], Future[T]]] = []
        self._cond = threading.Condition()
        self._running = False

    def submit(self, work: Callable[[Session], Any]) -> Future[T]:
        """Run `work(session)` in the next batch; its future resolves to what it returned
        (passed through `finish`, when given) once the batch has committed."""
        fut: Future[T] = Future()
        with self._cond:
            self._queue.append((work, fut))
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="quanzi-group-commit", daemon=True).start()
            self._cond.notify()
        return fut

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._queue:
                    self._cond.wait(self.IDLE_S)
                    if not self._queue:
                        self._running = False
                        return
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
            self._commit(batch)

    def _commit(self, batch: list[tuple[Callable[[Session], Any], Future[T]]]) -> None:
        done: list[tuple[Future[T], Any]] = []
        try:
            with session_scope(self.engine) as s:
                for work, fut in batch:
                    if not fut.set_running_or_notify_cancel():
                        continue
                    try:
                        with s.begin_nested():
                            result = work(s)
                    except Exception as exc:
                        fut.set_exception(exc)
                    else:
                        done.append((fut, result))
                if self.finish is not None and done:
                    finished = self.finish(s, [result for _fut, result in done])
                    done = list(zip((fut for fut, _r in done), finished, strict=True))
        except Exception as exc:  # the commit itself failed: nothing of the batch is stored
            log.warning("a batch of %d writes failed to commit: %s", len(done), exc)
            for fut, _result in done:
                fut.set_exception(exc)
            return
        for fut, result in done:
            fut.set_result(result)
