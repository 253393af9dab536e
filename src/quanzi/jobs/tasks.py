"""Background tasks; each takes ids, not objects, and is safe to run twice."""

from __future__ import annotations

import time
from collections.abc import Callable

from quanzi.core.events import projections
from quanzi.db.engine import get_engine
from quanzi.jobs.queue import huey

# What follows new phone numbers in a workspace (an ingest with profile.updated phones queues
# `new_phones`); a domain's job module (loaded by every consumer) registers its step here.
PHONE_FOLLOWUPS: list[Callable[[int], object]] = []


@huey.task(retries=2, retry_delay=30, name="rebuild_workspace")  # type: ignore[untyped-decorator]
def rebuild_workspace(workspace_id: int) -> dict[str, float | int]:
    """Recompute the workspace's projections from its event log (idempotent by nature)."""
    started = time.monotonic()
    replayed = projections.rebuild(get_engine(), workspace_id)
    return {
        "workspace_id": workspace_id,
        "events": int(replayed or 0),
        "seconds": round(time.monotonic() - started, 3),
    }


@huey.task(retries=2, retry_delay=30, name="new_phones")  # type: ignore[untyped-decorator]
def new_phones(workspace_id: int) -> dict[str, object]:
    """Run every registered follow-up of new phone numbers (each idempotent)."""
    return {f.__qualname__: f(workspace_id) for f in PHONE_FOLLOWUPS}
