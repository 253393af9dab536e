"""Turning stored WeCom callbacks into events, after they were acknowledged.

Safe to run twice and concurrently: event ids name the fact (mapping.py), so a callback
processed again, or a crash between ingest and marking it processed, adds nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Engine

from quanzi.acquisition.personal_ways import StateResolver
from quanzi.connectors.wecom import service
from quanzi.connectors.wecom.client import client_for
from quanzi.connectors.wecom.crypto import xml_fields
from quanzi.connectors.wecom.mapping import PLATFORM, FetchGroup, callback_to_events
from quanzi.connectors.wecom.welcome import welcome_new_contact
from quanzi.core.events.service import ingest_lines
from quanzi.db.engine import get_engine, session_scope
from quanzi.jobs.queue import huey
from quanzi.kit.errors import QuanziError

log = logging.getLogger(__name__)

GROUPCHAT_GET = "externalcontact/groupchat/get"


class CallbacksPending(QuanziError):
    """Some callbacks could not be processed yet; the job is retried later."""

    status_code = 503


@dataclass
class ProcessReport:
    processed: int = 0
    events: int = 0
    applied: int = 0
    failed: list[int] = field(default_factory=list)  # callback ids left pending

    def as_dict(self) -> dict[str, Any]:
        return {
            "processed": self.processed,
            "events": self.events,
            "applied": self.applied,
            "failed": list(self.failed),
        }


def wecom_fetch_group(engine: Engine, ws_id: int) -> FetchGroup:
    """`groupchat/get` (with names) through the connection's client (client.py)."""

    def fetch(chat_id: str) -> dict[str, Any]:
        # The secrets are read in a short session; the HTTP call runs after it closed (no
        # SQLite write lock held while WeCom answers) and the client stores a refreshed
        # access token in a short transaction of its own.
        with session_scope(engine) as s:
            client = client_for(s, ws_id)
        with client:
            answer = client.post(GROUPCHAT_GET, {"chat_id": chat_id, "need_name": 1})
        group = answer.get("group_chat")
        if not isinstance(group, dict):
            raise QuanziError(f"{GROUPCHAT_GET} answered without group_chat for {chat_id}")
        return group

    return fetch


def _reason(exc: Exception) -> str:
    # QuanziError messages (WecomError: errcode and its meaning) are written for operators;
    # other exceptions may carry payload data, so only their type is kept.
    return str(exc) if isinstance(exc, QuanziError) else f"internal error ({type(exc).__name__})"


def process_callbacks(
    engine: Engine,
    ws_id: int,
    *,
    fetch_group: FetchGroup | None = None,
    limit: int = 500,
) -> ProcessReport:
    """Turn the workspace's pending callbacks into events, in order of receipt. A callback
    that fails (WeCom unreachable, an errcode) stays pending with its error, which is also
    shown as the connection's last error; the others go on."""
    report = ProcessReport()
    with session_scope(engine, read_only=True) as s:
        pending = [(cb.id, cb.xml) for cb in service.pending_callbacks(s, ws_id, limit)]
    if not pending:
        return report
    fetch = fetch_group or wecom_fetch_group(engine, ws_id)
    states = StateResolver(engine, ws_id, PLATFORM)  # personal codes (m:/l:) in the database
    for callback_id, xml in pending:
        try:
            fields = xml_fields(xml)
            events = callback_to_events(fields, fetch, states.resolve)
        except Exception as exc:
            reason = f"WeCom callback {callback_id}: {_reason(exc)}"
            log.warning("workspace %s: %s", ws_id, reason)
            with session_scope(engine) as s:
                service.mark_failed(s, ws_id, callback_id, reason)
                service.record_error(s, ws_id, reason)
            report.failed.append(callback_id)
            continue
        done = ingest_lines(engine, ws_id, [orjson.dumps(e) for e in events])
        # Before the callback is marked processed: a crash in between maps it again.
        states.link_leads()
        report.events += len(events)
        report.applied += done.applied
        with session_scope(engine) as s:
            service.mark_processed(s, ws_id, callback_id)
            if done.refused:
                reasons = "; ".join(f"event {n}: {why}" for n, why in done.refused[:3])
                service.record_error(s, ws_id, f"WeCom callback {callback_id}: {reasons}")
        report.processed += 1
        welcome_new_contact(engine, ws_id, fields)  # welcome.py: within WeCom's 20 s, once
    return report


@huey.task(retries=5, retry_delay=60, name="wecom_process_callbacks")  # type: ignore[untyped-decorator]
def process_wecom_callbacks(workspace_id: int) -> dict[str, Any]:
    """The job queued by every new callback: process what is pending; retried on failures."""
    report = process_callbacks(get_engine(), workspace_id)
    if report.failed:
        raise CallbacksPending(f"{len(report.failed)} WeCom callbacks wait for a retry")
    return report.as_dict()
