"""What the public pages keep in memory between requests, and how long.

A `Fresh` map holds values read from the database (a landing page's live versions, a channel
code's target) for at most `ttl` seconds, then reads them again: every web process sees a
publish, an unpublish or a deactivated code within `ttl` without any message between
processes. The process that made the change forgets the value as soon as its transaction
commits (`forget_on_commit`), so an operator never sees their own change late.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

T = TypeVar("T")
V = TypeVar("V")

_ON_COMMIT = "quanzi_forget_on_commit"


class Fresh(Generic[V]):
    """key → value (None included: "there is none") for at most `ttl` seconds."""

    def __init__(
        self, ttl: float, max_items: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl, self.max_items, self.clock = ttl, max_items, clock
        self._items: dict[str, tuple[float, V | None]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bool, V | None]:
        """(known, value): not known, or known longer ago than `ttl`: read it again."""
        hit = self._items.get(key)
        if hit is None or self.clock() - hit[0] >= self.ttl:
            return False, None
        return True, hit[1]

    def put(self, key: str, value: V | None, read_at: float) -> None:
        """Keep `value`, read from the database at `read_at` (the clock before the read: a
        change committed during the read is then seen no later than `ttl` after it)."""
        with self._lock:
            if len(self._items) >= self.max_items:
                self._items.clear()
            self._items[key] = (read_at, value)

    def forget(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


class PerDatabase(Generic[T]):
    """One `make(engine)` per database in this process, made on first use."""

    def __init__(self, make: Callable[[Engine], T]) -> None:
        self._make = make
        self._made: dict[Engine, T] = {}
        self._lock = threading.Lock()

    def __call__(self, engine: Engine) -> T:
        found = self._made.get(engine)
        if found is None:
            with self._lock:
                found = self._made.get(engine)
                if found is None:
                    found = self._made[engine] = self._make(engine)
        return found

    def each(self) -> list[T]:
        return list(self._made.values())


def forget_on_commit(
    session: Session, caches: Callable[[], Iterable[Fresh[Any]]], key: str
) -> None:
    """Forget `key` in `caches` now and again once `session` commits (a request that re-read
    the old value meanwhile does not keep it)."""

    def forget() -> None:
        for cache in caches():
            cache.forget(key)

    forget()
    session.info.setdefault(_ON_COMMIT, []).append(forget)


@event.listens_for(Session, "after_commit")
def _forget_committed(session: Session) -> None:
    for forget in session.info.pop(_ON_COMMIT, ()):
        forget()
