"""Welcome messages: a text sent to a new customer contact, at once, through the WeCom
`welcome` action (actions.py).

WeCom hands a `WelcomeCode` in the add_external_contact callback; `send_welcome_msg` accepts
it once and within 20 seconds of the event. So the action is requested as soon as the callback
is processed (idempotency key `welcome:<code>`: a callback processed twice sends once) and run
in the same worker right after the commit (the queued job then finds it claimed). A welcome
whose event is older than the window is not sent: it is stored as a failed action saying why.

The text lives in the workspace's `wecom_known` table as a setting (kind "setting", key
"welcome", state `{"text": ..., "channels": {state: text}}`): no table of its own. The sync
only touches the kinds it syncs, so it never removes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quanzi.connectors.actions import action_by_key, request_action, run_action
from quanzi.connectors.models import ConnectorAction
from quanzi.connectors.wecom.models import WecomKnown
from quanzi.db.engine import session_scope
from quanzi.kit.clock import US, now_us
from quanzi.kit.errors import InvalidParameter, QuanziError

log = logging.getLogger(__name__)

PLATFORM = "wecom"
SETTING_KIND = "setting"
SETTING_KEY = "welcome"
WINDOW_S = 20  # WeCom takes a welcome code within 20 s of the event
MAX_TEXT = 4000
MAX_STATE = 30  # a contact way's state is at most 30 characters
MAX_CHANNELS = 200
CREATED_BY = "wecom welcome"


@dataclass(frozen=True)
class WelcomeSettings:
    """One default text and optional texts per channel (the contact way's `state`)."""

    text: str = ""
    channels: dict[str, str] = field(default_factory=dict)

    def text_for(self, state: str) -> str:
        """The channel's text, else the default; "" when nothing is configured."""
        return self.channels.get(state.strip(), "") or self.text

    def as_state(self) -> dict[str, Any]:
        return {"text": self.text, "channels": dict(sorted(self.channels.items()))}


def _row(session: Session, ws_id: int) -> WecomKnown | None:
    return session.scalar(
        select(WecomKnown).where(
            WecomKnown.workspace_id == ws_id,
            WecomKnown.kind == SETTING_KIND,
            WecomKnown.key == SETTING_KEY,
        )
    )


def get_welcome(session: Session, ws_id: int) -> WelcomeSettings:
    """The workspace's welcome texts (empty when none was saved)."""
    row = _row(session, ws_id)
    state = row.state if row is not None and isinstance(row.state, dict) else {}
    channels = state.get("channels")
    return WelcomeSettings(
        text=str(state.get("text") or ""),
        channels={str(k): str(v) for k, v in channels.items() if v}
        if isinstance(channels, dict)
        else {},
    )


def check_welcome(text: str, channels: dict[str, str]) -> WelcomeSettings:
    """The texts, trimmed and checked; InvalidParameter naming what is wrong."""
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise InvalidParameter(f"welcome text: at most {MAX_TEXT} characters (got {len(text)})")
    clean: dict[str, str] = {}
    for state, value in channels.items():
        state, value = state.strip(), value.strip()
        if not state and not value:
            continue
        if not state:
            raise InvalidParameter("channel: give the channel code (state) of each channel text")
        if len(state) > MAX_STATE:
            raise InvalidParameter(f"channel {state!r}: a channel code has at most 30 characters")
        if not value:
            raise InvalidParameter(f"channel {state!r}: give its text or remove the channel")
        if len(value) > MAX_TEXT:
            raise InvalidParameter(f"channel {state!r}: at most {MAX_TEXT} characters")
        if state in clean:
            raise InvalidParameter(f"channel {state!r}: given twice")
        clean[state] = value
    if len(clean) > MAX_CHANNELS:
        raise InvalidParameter(f"channels: at most {MAX_CHANNELS}")
    return WelcomeSettings(text, clean)


def set_welcome(
    session: Session, ws_id: int, text: str, channels: dict[str, str] | None = None
) -> WelcomeSettings:
    """Save the workspace's welcome texts (all empty: no welcome is sent)."""
    settings = check_welcome(text, channels or {})
    row = _row(session, ws_id)
    now = now_us()
    if row is None:
        row = WecomKnown(workspace_id=ws_id, kind=SETTING_KIND, key=SETTING_KEY, seen_at_us=now)
        session.add(row)
    row.state = settings.as_state()
    row.seen_at_us = now
    session.flush()
    return settings


# --- the callback hook -----------------------------------------------------------------------


@dataclass(frozen=True)
class WelcomeOutcome:
    action_id: int
    state: str  # the action's state after this call: done, failed, pending, or "existing"
    error: str | None = None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def welcome_new_contact(
    engine: Engine, ws_id: int, fields: dict[str, Any], *, now: int | None = None
) -> WelcomeOutcome | None:
    """For a processed callback: an add_external_contact with a WelcomeCode in a workspace
    with a welcome text gets one `welcome` action, run now. None when there is nothing to
    send (another callback, no code, no text). Never raises: a failure is the action's."""
    if _text(fields.get("Event")) != "change_external_contact":
        return None
    if _text(fields.get("ChangeType")) != "add_external_contact":
        return None
    code = _text(fields.get("WelcomeCode"))
    if not code:
        return None
    try:
        return _welcome(engine, ws_id, code, fields, now if now is not None else now_us())
    except Exception as exc:
        # The callback's events are applied already; a welcome problem must not undo that.
        reason = str(exc) if isinstance(exc, QuanziError) else type(exc).__name__
        log.warning("workspace %s: welcome message not requested: %s", ws_id, reason)
        return None


def _welcome(
    engine: Engine, ws_id: int, code: str, fields: dict[str, Any], now: int
) -> WelcomeOutcome | None:
    key = f"welcome:{code}"[:200]
    with session_scope(engine) as s:
        existing = action_by_key(s, ws_id, key)
        if existing is not None:
            return WelcomeOutcome(existing.id, "existing")
        text = get_welcome(s, ws_id).text_for(_text(fields.get("State")))
        if not text:
            return None
        created = _int(fields.get("CreateTime"))
        age_s = (now // US) - created if created else None
        if age_s is None or age_s > WINDOW_S:
            why = (
                "welcome not sent: the add-contact event has no CreateTime"
                if age_s is None
                else f"welcome not sent: the new contact was processed {age_s} s after it was "
                f"added; WeCom accepts a welcome message within {WINDOW_S} s"
            )
            action_id = _record_too_late(s, ws_id, key, code, text, why, now)
            return WelcomeOutcome(action_id, "failed", why)
        action = request_action(
            s, ws_id, PLATFORM, "welcome", {"welcome_code": code, "text": text}, key, CREATED_BY
        )
        s.flush()
        action_id = action.id
    # Committed (its job queued too); run it here and now: the window is 20 s.
    outcome = run_action(engine, action_id)
    return WelcomeOutcome(action_id, outcome.state, outcome.error)


def _record_too_late(
    s: Session, ws_id: int, key: str, code: str, text: str, why: str, now: int
) -> int:
    action = ConnectorAction(
        workspace_id=ws_id,
        platform=PLATFORM,
        kind="welcome",
        idempotency_key=key,
        payload={"welcome_code": code, "text": text},
        state="failed",
        attempts=0,
        last_error=why,
        created_by=CREATED_BY,
        created_at_us=now,
        updated_at_us=now,
    )
    try:
        with s.begin_nested():
            s.add(action)
    except IntegrityError:  # recorded by a concurrent run meanwhile
        found = action_by_key(s, ws_id, key)
        if found is None:
            raise
        return found.id
    return action.id
