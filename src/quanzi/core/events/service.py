"""Ingestion: parse, validate, log and apply events (the one way in for community data)."""

from __future__ import annotations

import logging
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, select, update

from quanzi.core.events.models import EventRecord
from quanzi.core.events.projections import Applier, insert_values, lock_workspace, select_in
from quanzi.core.events.schemas import (
    Event,
    EventRefused,
    check_lines,
    checked_event,
    parse_event,
)
from quanzi.core.members.personal import opened_data, seal_event
from quanzi.core.workspaces.models import Workspace
from quanzi.kit.clock import now_us
from quanzi.kit.crypto import WorkspaceKey

BATCH_LINES = 20_000

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    """What an ingest did: counts, and every refused line with its reason."""

    applied: int = 0
    duplicates: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[tuple[int, str]] = field(default_factory=list)
    # New profile.updated events that set a phone: their follow-up job is queued after the
    # commit (quanzi.jobs.tasks.new_phones). Not part of the API's answer.
    phones: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "applied": self.applied,
            "duplicates": self.duplicates,
            "refused": len(self.refused),
            "errors": [f"line {n}: {reason}" for n, reason in self.refused],
            "warnings": [f"line {n}: {text}" for n, text in self.warnings],
        }


def _batches(
    numbered: Iterator[tuple[int, bytes | str]], size: int, parallel: bool
) -> Iterator[tuple[list[tuple[int, bytes | str]], list[int | str | None] | None]]:
    """Slices of `size` lines; with `parallel`, each with the verdicts of `check_lines` from a
    worker process, which validates the next two slices while the caller applies this one."""
    if not parallel:
        while chunk := list(islice(numbered, size)):
            yield chunk, None
        return
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        pending: deque[tuple[list[tuple[int, bytes | str]], Any]] = deque()
        while True:
            while len(pending) < 3 and (chunk := list(islice(numbered, size))):
                pending.append((chunk, pool.apply_async(check_lines, ([ln for _n, ln in chunk],))))
            if not pending:
                return
            chunk, result = pending.popleft()
            yield chunk, result.get()


def _relax_sync(conn: Connection) -> bool:
    """After the first batch of a long SQLite ingest: commits without fsync until the last.

    In WAL mode a commit with synchronous=NORMAL survives the process being killed (the OS
    has the pages) but not a power cut; the final commit of the ingest runs with FULL, whose
    fsync of the WAL makes every earlier batch durable too before the ingest is acknowledged.
    """
    if conn.dialect.name != "sqlite":
        return False
    _driver(conn).execute("PRAGMA synchronous=NORMAL")
    return True


def _driver(conn: Connection) -> Any:
    """The DBAPI connection, for pragmas that must run outside a transaction."""
    return conn.connection.dbapi_connection


def _numbered(lines: Iterable[bytes | str]) -> Iterator[tuple[int, bytes | str]]:
    return enumerate(lines, start=1)


class _Batch:
    """Parses a slice of lines; keeps the first line of each id (later ones are duplicates)."""

    def __init__(
        self,
        numbered: list[tuple[int, bytes | str]],
        report: IngestReport,
        checked: list[int | str | None] | None = None,
    ) -> None:
        self.events: list[tuple[int, Event]] = []
        self.dups: list[tuple[int, Event, Event | None]] = []  # (line, this, first)
        first: dict[str, Event] = {}
        for i, (n, line) in enumerate(numbered):
            if checked is not None:
                verdict = checked[i]
                if verdict is None:
                    continue
                if isinstance(verdict, str):
                    report.refused.append((n, verdict))
                    continue
                ev = checked_event(line, verdict)
            else:
                if not line.strip():
                    continue
                try:
                    ev = parse_event(line)
                except EventRefused as exc:
                    report.refused.append((n, str(exc)))
                    continue
            prev = first.get(ev.id)
            if prev is not None:
                self.dups.append((n, ev, prev))
                continue
            first[ev.id] = ev
            self.events.append((n, ev))


def _store(
    conn: Connection,
    workspace_id: int,
    batch: _Batch,
    report: IngestReport,
    key: Callable[[], WorkspaceKey],
) -> list[Event]:
    """Append the batch to the log; return the events that were new (the rest are duplicates).

    A new profile.updated is logged and applied with its personal fields sealed (`key` gives
    the workspace key, looked up once per ingest and only when such an event comes)."""
    received = now_us()
    # Writers of a workspace hold its lock (lock_workspace), so what is not in the log now
    # cannot appear before this transaction commits: look up, then insert plainly.
    stored: dict[str, str] = dict(
        select_in(
            conn,
            "SELECT event_id, raw FROM events WHERE workspace_id = {p} AND event_id IN",
            (workspace_id,),
            [ev.id for _n, ev in batch.events],
        )
    )
    fresh = [
        seal_event(key(), ev) if ev.type == "profile.updated" else ev
        for _n, ev in batch.events
        if ev.id not in stored
    ]
    insert_values(
        conn,
        EventRecord,
        ("workspace_id", "event_id", "type", "platform", "ts_us", "raw", "received_at_us"),
        [(workspace_id, ev.id, ev.type, ev.platform, ev.ts_us, ev.raw, received) for ev in fresh],
    )
    old = [(n, ev) for n, ev in batch.events if ev.id in stored]
    # A duplicate is compared with the winner: the stored event, else the batch's first line.
    dups: list[tuple[int, Event, Event | None]] = [(n, ev, None) for n, ev in old]
    for n, ev, prev in sorted(dups + batch.dups, key=lambda d: d[0]):
        report.duplicates += 1
        kept = stored.get(ev.id)
        if kept is not None:
            same = _same_as_stored(kept, ev, key)
        else:
            same = prev is not None and prev.canonical() == ev.canonical()
        if not same:
            report.warnings.append((n, f"duplicate id {ev.id!r} with different content: ignored"))
    report.applied += len(fresh)
    report.phones += sum(1 for ev in fresh if ev.type == "profile.updated" and "phone" in ev.data)
    return fresh


def _same_as_stored(raw: str, ev: Event, key: Callable[[], WorkspaceKey]) -> bool:
    """Whether a re-sent event has the content of the logged line `raw`: sealed personal
    fields are compared opened, and an erased one matches whatever is sent."""
    obj = orjson.loads(raw)
    stored = {k: v for k, v in obj.items() if v is not None}
    sent = ev.data
    if ev.type == "profile.updated" and stored.get("type") == ev.type:
        stored, erased = opened_data(key(), stored)
        sent = {k: v for k, v in sent.items() if k not in erased}
    return orjson.dumps(stored, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
        sent, option=orjson.OPT_SORT_KEYS
    )


def stored_event_ts(engine: Engine, workspace_id: int, event_id: str) -> int | None:
    """The instant (UTC µs) of a logged event, or None when the log does not hold it."""
    with engine.connect() as conn:
        ts: int | None = conn.execute(
            select(EventRecord.ts_us).where(
                EventRecord.workspace_id == workspace_id, EventRecord.event_id == event_id
            )
        ).scalar()
        return ts


def ingest_lines(
    engine: Engine,
    workspace_id: int,
    lines: Iterable[bytes | str],
    *,
    strict: bool = False,
    on_progress: Callable[[int], None] | None = None,
    batch_lines: int = BATCH_LINES,
    parallel: bool = False,
) -> IngestReport:
    """Ingest JSON Lines (numbered from 1) into the workspace. See contracts/events.md.

    Each batch is logged and applied in one transaction, so a line is never half-applied and a
    crash loses at most the unacknowledged batch. With `strict`, the whole input is one
    transaction that is rolled back if any line is refused (the rest are still checked, so
    every bad line is reported).

    `parallel` validates lines in a second process while this one writes (for large inputs
    from a single-threaded caller such as the CLI: it forks).
    """
    report = IngestReport()
    numbered = _numbered(lines)
    with engine.connect() as conn:
        ws = conn.execute(
            select(Workspace.id, Workspace.name, Workspace.timezone).where(
                Workspace.id == workspace_id
            )
        ).one()
        workspace = Workspace(id=ws.id, name=ws.name, timezone=ws.timezone)
        conn.commit()
        applier: Applier | None = None
        in_tx = False
        relaxed = False
        for chunk, checked in _batches(numbered, batch_lines, parallel):
            batch = _Batch(chunk, report, checked)
            if strict and report.refused:
                pass  # nothing more is applied; keep reading to report every bad line
            elif batch.events or batch.dups:
                if not in_tx:
                    conn.begin()
                    in_tx = True
                    lock_workspace(conn, workspace_id)
                    applier = Applier(conn, workspace)
                assert applier is not None
                fresh = _store(conn, workspace_id, batch, report, applier.key)
                applier.apply(fresh)
                if not strict:
                    conn.commit()
                    in_tx = False
                    relaxed = relaxed or _relax_sync(conn)
            if on_progress:
                on_progress(len(chunk))
        if relaxed:
            if in_tx:
                conn.commit()
                in_tx = False
            # The acknowledging commit, with synchronous=FULL: a one-row write whose commit
            # fsyncs the WAL file, and with it every batch committed before.
            _driver(conn).execute("PRAGMA synchronous=FULL")
            conn.begin()
            in_tx = True
            conn.execute(
                update(Workspace)
                .where(Workspace.id == workspace_id)
                .values(timezone=Workspace.timezone)
            )
        if in_tx:
            if strict and report.refused:
                conn.rollback()
            else:
                conn.commit()
    if strict and report.refused:
        report.applied = 0
        report.duplicates = 0
        report.phones = 0
        report.warnings.clear()
    if report.phones:
        _queue_phone_followups(workspace_id)
    return report


def _queue_phone_followups(workspace_id: int) -> None:
    """New phone numbers are committed: queue their follow-up job. A queue that is down
    fails nothing (the events are in); the work waits for its periodic pass."""
    from quanzi.jobs.queue import huey
    from quanzi.jobs.tasks import new_phones

    try:
        huey.enqueue(new_phones.s(workspace_id))
    except Exception as exc:
        log.warning("workspace %s: new phones' follow-up job not queued: %s", workspace_id, exc)
