"""The adapter for WeCom's chat archive (会话内容存档), which is where group messages live.

Message content of customer groups is only available through WeCom's paid chat-archive SDK, a
native library that cannot be installed here (docs/wecom.md, "Limits"). This module is the
seam it plugs into: a `ChatArchiveSource` (the SDK's GetChatData + decryption, written by
whoever has the SDK) yields `ArchivedMessage`s; `pull_archive` turns them into
`message.posted` events, ingests them and keeps the archive's sequence number as the resume
checkpoint. No source ships with Quanzi; until one exists, messages come from imports and
the events API.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine, select

from quanzi.connectors.wecom.models import WecomSyncState
from quanzi.core.events.service import ingest_lines
from quanzi.db.engine import session_scope
from quanzi.kit.clock import now_us

CHECKPOINT_KIND = "archive"
# The archive's msgtype → the event contract's `kind`.
KINDS = {
    "text": "text",
    "image": "image",
    "voice": "voice",
    "video": "video",
    "file": "file",
    "link": "link",
    "emotion": "sticker",
    "redpacket": "red_packet",
    "weapp": "mini_program",
}


@dataclass(frozen=True)
class ArchivedMessage:
    seq: int  # the archive's own sequence: the resume checkpoint
    msgid: str
    roomid: str  # the customer group's chat id; "" for one-to-one chats (not group activity)
    sender: str  # userid (staff) or external userid
    msgtime_ms: int
    msgtype: str
    text: str | None = None  # text messages only


class ChatArchiveSource(Protocol):
    """Archived messages after a sequence number, in sequence order (the SDK's GetChatData)."""

    def fetch(self, after_seq: int, limit: int) -> Sequence[ArchivedMessage]: ...


def archived_to_events(messages: Sequence[ArchivedMessage]) -> list[dict[str, Any]]:
    """`message.posted` events for the group messages (one-to-one chats are skipped)."""
    events = []
    for m in messages:
        if not m.roomid:
            continue
        event: dict[str, Any] = {
            "id": f"wecom:msg:{m.msgid}",
            "type": "message.posted",
            "ts": m.msgtime_ms // 1000,
            "platform": "wecom",
            "group": m.roomid,
            "member": m.sender,
            "message": m.msgid,
            "kind": KINDS.get(m.msgtype, "other"),
        }
        if m.msgtype == "text" and m.text is not None:
            event["text"] = m.text
        events.append(event)
    return events


@dataclass(frozen=True)
class ArchivePull:
    fetched: int
    applied: int
    duplicates: int
    last_seq: int


def _checkpoint(engine: Engine, ws_id: int) -> int:
    with session_scope(engine, read_only=True) as s:
        cp = s.scalar(
            select(WecomSyncState.checkpoint).where(
                WecomSyncState.workspace_id == ws_id, WecomSyncState.kind == CHECKPOINT_KIND
            )
        )
    return int((cp or {}).get("seq", 0))


def _save_checkpoint(engine: Engine, ws_id: int, seq: int) -> None:
    now = now_us()
    with session_scope(engine) as s:
        row = s.scalar(
            select(WecomSyncState).where(
                WecomSyncState.workspace_id == ws_id, WecomSyncState.kind == CHECKPOINT_KIND
            )
        )
        if row is None:
            row = WecomSyncState(
                workspace_id=ws_id, kind=CHECKPOINT_KIND, status="done", started_at_us=now
            )
            s.add(row)
        row.checkpoint = {"seq": seq}
        row.status = "done"
        row.finished_at_us = now


def pull_archive(
    engine: Engine, ws_id: int, source: ChatArchiveSource, *, batch: int = 1000
) -> ArchivePull:
    """Ingest every archived message after the checkpoint. The events are logged before the
    checkpoint moves, and their ids are the archive's msgids, so a crash in between re-reads a
    batch that then counts as duplicates: nothing is lost or doubled."""
    seq = _checkpoint(engine, ws_id)
    fetched = applied = duplicates = 0
    while True:
        page = list(source.fetch(seq, batch))
        if not page:
            break
        fetched += len(page)
        lines = [json.dumps(e, ensure_ascii=False) for e in archived_to_events(page)]
        report = ingest_lines(engine, ws_id, lines)
        if report.refused:
            n, reason = report.refused[0]
            raise ValueError(f"archived message {n} of the batch after seq {seq}: {reason}")
        applied += report.applied
        duplicates += report.duplicates
        seq = max(m.seq for m in page)
        _save_checkpoint(engine, ws_id, seq)
    return ArchivePull(fetched, applied, duplicates, seq)
