"""Scheduled WeCom sync: every connected workspace gets an incremental `sync` (sync.py) at most
once per QUANZI_WECOM_SYNC_MINUTES (default 30; 0 turns the schedule off).

A Huey periodic task looks every minute. A workspace is due when neither a scheduled run nor
any sync finished or started within the interval; it is skipped while a sync of it is running
(a WecomSyncState `running` that started less than 2 h ago: older ones are a killed process's,
and the sync resumes them). The scheduler keeps its own row in WecomSyncState (kind `schedule`),
claimed with one conditional UPDATE: two workers ticking at once, or the task run twice, sync
a workspace once. A failure (a refused secret, WeCom unreachable) is recorded on the
connection's health and the schedule row, and the other workspaces go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from huey import crontab  # type: ignore[import-untyped]
from sqlalchemy import Engine, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from quanzi.config import get_settings
from quanzi.connectors.wecom import service
from quanzi.connectors.wecom.client import WecomClient, client_for
from quanzi.connectors.wecom.models import WecomConnection, WecomSyncState
from quanzi.connectors.wecom.sync import sync
from quanzi.db.engine import get_engine, session_scope
from quanzi.jobs.queue import huey
from quanzi.kit.clock import now_us
from quanzi.kit.errors import QuanziError

log = logging.getLogger(__name__)

SCHEDULE_KIND = "schedule"
# A sync marked running for longer than this was interrupted (its process died).
RUNNING_STALE_US = 2 * 3600 * 1_000_000
MINUTE_US = 60 * 1_000_000

ClientFactory = Callable[[Engine, int], WecomClient]


@dataclass
class ScheduleReport:
    """What one tick did, per workspace id."""

    synced: dict[int, int] = field(default_factory=dict)  # workspace → events applied
    skipped: dict[int, str] = field(default_factory=dict)  # workspace → why
    failed: dict[int, str] = field(default_factory=dict)  # workspace → error

    def as_dict(self) -> dict[str, Any]:
        return {
            "synced": len(self.synced),
            "events": sum(self.synced.values()),
            "skipped": len(self.skipped),
            "failed": len(self.failed),
        }


def sync_interval_us() -> int:
    """The configured interval (QUANZI_WECOM_SYNC_MINUTES), in microseconds; 0 = off."""
    return get_settings().wecom_sync_minutes * MINUTE_US


def _connection_client(engine: Engine, ws_id: int) -> WecomClient:
    # The secrets are opened in a short session; the sync's HTTP calls run after it closed.
    with session_scope(engine) as s:
        return client_for(s, ws_id)


def _why_not_due(engine: Engine, ws_id: int, now: int, interval: int) -> str | None:
    """Why the workspace is not due now, or None when it is."""
    with engine.connect() as conn:
        running = conn.scalar(
            select(func.count())
            .select_from(WecomSyncState)
            .where(
                WecomSyncState.workspace_id == ws_id,
                WecomSyncState.status == "running",
                WecomSyncState.started_at_us > now - RUNNING_STALE_US,
            )
        )
        last_sync = conn.scalar(
            select(WecomConnection.last_sync_at_us).where(WecomConnection.workspace_id == ws_id)
        )
        conn.rollback()
    if running:
        return "a sync is running"
    if last_sync is not None and last_sync > now - interval:
        return "synced recently"
    return None


def claim(engine: Engine, ws_id: int, now: int, interval: int) -> bool:
    """Take the workspace's scheduled run for this interval; False when another run has it
    (running, or started within the interval). One conditional UPDATE: atomic on both stores."""
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(WecomSyncState).values(
                    workspace_id=ws_id,
                    kind=SCHEDULE_KIND,
                    status="done",
                    checkpoint=None,
                    started_at_us=0,
                )
            )
    except IntegrityError:  # the row exists (the usual case)
        pass
    with engine.begin() as conn:
        done = conn.execute(
            update(WecomSyncState)
            .where(
                WecomSyncState.workspace_id == ws_id,
                WecomSyncState.kind == SCHEDULE_KIND,
                WecomSyncState.started_at_us <= now - interval,
                or_(
                    WecomSyncState.status != "running",
                    WecomSyncState.started_at_us <= now - RUNNING_STALE_US,
                ),
            )
            .values(status="running", started_at_us=now, finished_at_us=None, last_error=None)
        )
    return bool(getattr(done, "rowcount", 0))


def _finish(engine: Engine, ws_id: int, error: str | None) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(WecomSyncState)
            .where(WecomSyncState.workspace_id == ws_id, WecomSyncState.kind == SCHEDULE_KIND)
            .values(
                status="failed" if error else "done",
                finished_at_us=now_us(),
                last_error=error,
            )
        )


def _reason(exc: Exception) -> str:
    # QuanziError messages (WecomError: errcode and meaning) are written for operators; other
    # exceptions may carry payload data, so only their type is kept.
    return str(exc) if isinstance(exc, QuanziError) else f"internal error ({type(exc).__name__})"


def run_scheduled_syncs(
    engine: Engine,
    *,
    interval_us: int | None = None,
    now: int | None = None,
    make_client: ClientFactory = _connection_client,
) -> ScheduleReport:
    """Sync every connected workspace that is due; safe to run twice and concurrently."""
    report = ScheduleReport()
    interval = sync_interval_us() if interval_us is None else interval_us
    if interval <= 0:
        return report
    with engine.connect() as conn:
        workspaces = list(
            conn.scalars(select(WecomConnection.workspace_id).order_by(WecomConnection.id))
        )
        conn.rollback()
    for ws_id in workspaces:
        at = now_us() if now is None else now
        why = _why_not_due(engine, ws_id, at, interval)
        if why is None and not claim(engine, ws_id, at, interval):
            why = "scheduled recently"
        if why is not None:
            report.skipped[ws_id] = why
            continue
        try:
            client = make_client(engine, ws_id)
            with client:
                result = sync(engine, ws_id, client)
        except Exception as exc:
            message = f"scheduled sync failed: {_reason(exc)}"
            log.warning("workspace %s: %s", ws_id, message)
            try:
                with session_scope(engine) as s:
                    service.record_error(s, ws_id, message)
                _finish(engine, ws_id, message)
            except Exception:  # the database itself may be what failed; the lease expires
                log.exception("workspace %s: could not record the sync error", ws_id)
            report.failed[ws_id] = message
            continue
        _finish(engine, ws_id, None)
        report.synced[ws_id] = result.applied
    return report


@huey.periodic_task(crontab(minute="*"), name="wecom_scheduled_sync")  # type: ignore[untyped-decorator]
def wecom_scheduled_sync() -> dict[str, Any]:
    """Every minute: an incremental sync of each connected workspace that is due."""
    return run_scheduled_syncs(get_engine()).as_dict()
