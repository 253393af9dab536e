"""The periodic invite-fraud re-scan: `refresh_suspects` for each workspace whose data changed.

A Huey periodic task looks every minute. A workspace is scanned when its last scan is at least
QUANZI_FRAUD_SCAN_MINUTES old (default 10; 0 turns the schedule off) **and** either what the
signals read changed since then (the data mark: the latest logged event, the staff, the leads
and their links, the poster visits) or time alone can now tell more (a recent invite's hold
window ended, so a silent ring can be judged). Otherwise it costs one small read.

What a scan did is kept as a watermark per database and workspace in the job engine's own
key-value store (the SQLite queue file or Redis): no table of ours, shared by every worker, and
losing it (a flushed queue) only costs one extra scan. A scan upserts like the page's re-scan
button: verdicts are never reopened, and in strict mode new suspects are flagged at once.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from huey import crontab  # type: ignore[import-untyped]
from huey.constants import EmptyData  # type: ignore[import-untyped]
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from quanzi.acquisition import fraud
from quanzi.acquisition.models import ChannelVisit, Lead
from quanzi.analytics.repository import last_event_seq, staff_ids
from quanzi.config import get_settings
from quanzi.core.workspaces.models import Workspace
from quanzi.db.engine import get_engine, session_scope
from quanzi.jobs.queue import huey
from quanzi.kit.clock import LocalCalendar, now_us

log = logging.getLogger(__name__)

MINUTE_US = 60 * 1_000_000


class Watermarks(Protocol):
    """Where each workspace's last scan is remembered."""

    def get(self, ws_id: int) -> dict[str, Any] | None: ...

    def put(self, ws_id: int, mark: dict[str, Any]) -> None: ...


class QueueWatermarks:
    """Watermarks in the job engine's key-value store, one key per database and workspace."""

    def __init__(self, engine: Engine) -> None:
        url = engine.url.render_as_string(hide_password=False)
        self.prefix = "fraud-scan:" + hashlib.sha256(url.encode()).hexdigest()[:16]

    def get(self, ws_id: int) -> dict[str, Any] | None:
        raw = huey.storage.peek_data(f"{self.prefix}:{ws_id}")
        if raw is EmptyData or raw is None:
            return None
        found: dict[str, Any] = orjson.loads(bytes(raw))
        return found

    def put(self, ws_id: int, mark: dict[str, Any]) -> None:
        huey.storage.put_data(f"{self.prefix}:{ws_id}", orjson.dumps(mark))


@dataclass
class ScanReport:
    """What one tick did, per workspace id."""

    scanned: dict[int, fraud.RefreshResult] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)  # workspace → why
    failed: dict[int, str] = field(default_factory=dict)  # workspace → error type

    def as_dict(self) -> dict[str, int]:
        return {
            "scanned": len(self.scanned),
            "added": sum(r.added for r in self.scanned.values()),
            "skipped": len(self.skipped),
            "failed": len(self.failed),
        }


def scan_interval_us() -> int:
    """The configured interval (QUANZI_FRAUD_SCAN_MINUTES), in microseconds; 0 = off."""
    return get_settings().fraud_scan_minutes * MINUTE_US


def data_mark(session: Session, ws_id: int) -> list[Any]:
    """What the fraud signals read, summed up: equal marks, equal suspects (at one instant)."""
    leads = session.execute(
        select(func.count(), func.max(Lead.updated_at_us), func.max(Lead.linked_at_us)).where(
            Lead.workspace_id == ws_id
        )
    ).one()
    visits = session.execute(
        select(func.count(), func.max(ChannelVisit.id)).where(
            ChannelVisit.workspace_id == ws_id, ChannelVisit.ref.is_not(None)
        )
    ).one()
    return [
        last_event_seq(session, ws_id),
        sorted(staff_ids(session, ws_id)),
        [int(leads[0]), leads[1], leads[2]],
        [int(visits[0]), visits[1]],
    ]


def _why_not_due(
    last: dict[str, Any] | None, mark: list[Any], at: int, interval: int
) -> str | None:
    if last is None:
        return None
    if at - int(last["at_us"]) < interval:
        return "scanned recently"
    due = last.get("due_us")
    if last.get("mark") == mark and (due is None or at < int(due)):
        return "no new data"
    return None


def run_fraud_scans(
    engine: Engine,
    *,
    interval_us: int | None = None,
    now: int | None = None,
    store: Watermarks | None = None,
) -> ScanReport:
    """Re-scan every workspace that is due; safe to run twice (a second run finds nothing due)."""
    report = ScanReport()
    interval = scan_interval_us() if interval_us is None else interval_us
    if interval <= 0:
        return report
    marks = store if store is not None else QueueWatermarks(engine)
    with session_scope(engine, read_only=True) as s:
        workspaces = list(
            s.execute(select(Workspace.id, Workspace.timezone).order_by(Workspace.id))
        )
    for ws_id, tz in workspaces:
        at = now_us() if now is None else now
        try:
            # The mark is read before the scan: data arriving meanwhile only makes the next tick
            # scan again, never hides it. The check takes no write lock (SQLite).
            with session_scope(engine, read_only=True) as s:
                mark = data_mark(s, ws_id)
            why = _why_not_due(marks.get(ws_id), mark, at, interval)
            if why is not None:
                report.skipped[ws_id] = why
                continue
            cal = LocalCalendar(tz)
            with session_scope(engine) as s:
                result = fraud.refresh_suspects(s, ws_id, cal, as_of_us=at)
                due = fraud.next_judgement_us(s, ws_id, cal, at)
            marks.put(ws_id, {"at_us": at, "mark": mark, "due_us": due})
        except Exception as exc:  # one workspace's failure must not stop the others
            log.exception("workspace %s: invite fraud re-scan failed", ws_id)
            report.failed[ws_id] = type(exc).__name__
            continue
        report.scanned[ws_id] = result
        if result.added:
            log.info("workspace %s: %s new suspected invites", ws_id, result.added)
    return report


@huey.periodic_task(crontab(minute="*"), name="fraud_rescan")  # type: ignore[untyped-decorator]
def fraud_rescan() -> dict[str, int]:
    """Every minute: re-scan the invites of each workspace that is due (see the module)."""
    return run_fraud_scans(get_engine()).as_dict()
