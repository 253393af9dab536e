"""Running jobs: threads inside the web process (embedded) or `quanzi worker` processes."""

from __future__ import annotations

import importlib
import logging

from huey.consumer import Consumer  # type: ignore[import-untyped]

from quanzi.jobs.queue import huey

# Modules whose import registers tasks on `huey`; a domain with a jobs.py adds it here.
TASK_MODULES = (
    "quanzi.jobs.tasks",
    "quanzi.connectors.jobs",
    "quanzi.connectors.wecom.jobs",
    "quanzi.connectors.wecom.schedule",
    "quanzi.acquisition.lead_jobs",
    "quanzi.acquisition.fraud_jobs",
    "quanzi.campaigns.jobs_core",
    "quanzi.campaigns.jobs_kinds",
)

# How long a stopping consumer waits for running jobs before interrupting them.
SHUTDOWN_TIMEOUT_S = 30.0

log = logging.getLogger(__name__)


def load_tasks() -> None:
    """Import every task module, so a consumer knows every task a producer may queue."""
    for name in TASK_MODULES:
        importlib.import_module(name)


class InProcessConsumer(Consumer):  # type: ignore[misc]
    """A consumer that runs beside a host (uvicorn) which owns the process's signals."""

    def _set_signal_handlers(self) -> None:
        return None


def start_in_process(workers: int = 2) -> InProcessConsumer:
    """Start worker threads in this process; call `.stop(graceful=True)` on shutdown."""
    load_tasks()
    consumer = InProcessConsumer(
        huey, workers=workers, worker_type="thread", shutdown_timeout=SHUTDOWN_TIMEOUT_S
    )
    consumer.start()
    return consumer


def run_worker(workers: int = 2) -> None:
    """Consume until SIGINT/SIGTERM (the `quanzi worker` process)."""
    load_tasks()
    consumer = huey.create_consumer(
        workers=workers, worker_type="thread", shutdown_timeout=SHUTDOWN_TIMEOUT_S
    )
    consumer.run()
