"""The job engine: Huey on a SQLite file (embedded) or on Redis (QUANZI_REDIS_URL)."""

from __future__ import annotations

from quanzi.jobs.commit import JobQueueUnavailable, enqueue_after_commit
from quanzi.jobs.consumer import load_tasks, run_worker, start_in_process
from quanzi.jobs.queue import describe_backend, huey, reset_backend, uses_redis

__all__ = [
    "JobQueueUnavailable",
    "describe_backend",
    "enqueue_after_commit",
    "huey",
    "load_tasks",
    "reset_backend",
    "run_worker",
    "start_in_process",
    "uses_redis",
]
