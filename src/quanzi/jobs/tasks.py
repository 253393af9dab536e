"""Background tasks; each takes ids, not objects, and is safe to run twice."""

from __future__ import annotations

import time

from quanzi.core.events import projections
from quanzi.db.engine import get_engine
from quanzi.jobs.queue import huey


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
