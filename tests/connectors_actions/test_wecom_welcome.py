"""Welcome messages: a new contact's WelcomeCode → one send_welcome_msg, at once, with the
channel's text; through the real hook, the callback job and the client, to the stand-in."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

STANDIN_DIR = str(Path(__file__).resolve().parent.parent / "wecom_standin")
if STANDIN_DIR not in sys.path:
    sys.path.insert(0, STANDIN_DIR)

from standin import Scenario, StandIn, build_scenario, external_contact_xml, send_callback  # noqa: E402

# The same folder's helpers: the queue reset (autouse) and a signed-in console client.
from test_wecom_actions import _queue_and_no_sleep, signed_in  # noqa: E402, F401

from quanzi.connectors.actions import run_action  # noqa: E402
from quanzi.connectors.models import ConnectorAction  # noqa: E402
from quanzi.connectors.wecom import welcome  # noqa: E402
from quanzi.connectors.wecom.jobs import process_callbacks  # noqa: E402
from quanzi.connectors.wecom.models import WecomKnown  # noqa: E402
from quanzi.connectors.wecom.service import connect  # noqa: E402
from quanzi.core.workspaces.service import get_or_create_workspace  # noqa: E402
from quanzi.db.engine import session_scope  # noqa: E402
from quanzi.jobs import huey  # noqa: E402
from quanzi.kit.errors import InvalidParameter  # noqa: E402
from quanzi.team.models import AuditEntry  # noqa: E402
from quanzi.web.app import create_app  # noqa: E402

CORP_ID = "ww0123456789abcdef"
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
SEND = "externalcontact/send_welcome_msg"


@pytest.fixture
def wecom() -> Iterator[StandIn]:
    sc: Scenario = build_scenario(groups=2, customers=2, staff=2)
    sc.corp_id = CORP_ID
    with StandIn(sc) as server:
        yield server


def connected(engine: Engine, api_base: str) -> int:
    with session_scope(engine) as s:
        ws_id = get_or_create_workspace(s, "w1").id
        connect(
            s,
            ws_id,
            corp_id=CORP_ID,
            secret="standin-secret-0123456789",
            token=TOKEN,
            encoding_aes_key=AES_KEY,
            api_base=api_base,
        )
        return ws_id


def configure(engine: Engine, ws_id: int, text: str, channels: dict[str, str]) -> None:
    with session_scope(engine) as s:
        welcome.set_welcome(s, ws_id, text, channels)


def deliver(client: TestClient, xml: str) -> None:
    statuses = send_callback(
        "http://testserver/hooks/wecom/w1",
        xml,
        token=TOKEN,
        encoding_aes_key=AES_KEY,
        corp_id=CORP_ID,
        http=client,
    )
    assert statuses == [200]


def new_contact(
    wecom: StandIn, external: str, *, state: str | None, age_s: int = 0, code: str | None = None
) -> tuple[str, str]:
    code = code or wecom.new_welcome_code()
    xml = external_contact_xml(
        "add_external_contact",
        corp_id=CORP_ID,
        userid="staff_00",
        external_userid=external,
        create_time=int(time.time()) - age_s,
        state=state,
        welcome_code=code,
    )
    return code, xml


def sent(wecom: StandIn) -> list[dict[str, Any]]:
    return [body for p, body in wecom.requests if p == SEND]


def actions(engine: Engine) -> list[ConnectorAction]:
    with session_scope(engine, read_only=True) as s:
        rows = list(s.scalars(select(ConnectorAction).order_by(ConnectorAction.id)))
        s.expunge_all()
        return rows


def test_a_new_contact_gets_its_channels_text_once(engine: Engine, wecom: StandIn) -> None:
    ws_id = connected(engine, wecom.api_base)
    configure(engine, ws_id, "欢迎！", {"douyin_live": "抖音直播来的朋友，欢迎！"})
    code, xml = new_contact(wecom, "wmNEW0001", state="douyin_live")
    with TestClient(create_app(engine)) as client:
        deliver(client, xml)
        assert process_callbacks(engine, ws_id).processed == 1
        [body] = sent(wecom)
        assert body["welcome_code"] == code
        assert body["text"] == {"content": "抖音直播来的朋友，欢迎！"}
        [action] = actions(engine)
        assert (action.kind, action.state, action.idempotency_key) == (
            "welcome",
            "done",
            f"welcome:{code}",
        )
        assert action.attempts == 1
        # Its job was queued after the commit too; the run above claimed it, so that is a no-op.
        queued = [tuple(t.args) for t in huey.pending() if t.name == "run_connector_action"]
        assert queued == [(action.id,)]
        assert run_action(engine, action.id).state == "skipped"

        # WeCom re-delivers the same event; the job runs again: nothing more is sent.
        deliver(client, xml)
        process_callbacks(engine, ws_id)
        outcome = welcome.welcome_new_contact(
            engine,
            ws_id,
            {
                "Event": "change_external_contact",
                "ChangeType": "add_external_contact",
                "WelcomeCode": code,
                "CreateTime": str(int(time.time())),
            },
        )
        assert outcome is not None and outcome.state == "existing"
        assert len(sent(wecom)) == 1 and len(actions(engine)) == 1

        # Another channel (or none): the default text.
        code2, xml2 = new_contact(wecom, "wmNEW0002", state="xhs_note")
        deliver(client, xml2)
        process_callbacks(engine, ws_id)
    assert [b["text"]["content"] for b in sent(wecom)] == ["抖音直播来的朋友，欢迎！", "欢迎！"]
    assert sent(wecom)[1]["welcome_code"] == code2
    assert [a.state for a in actions(engine)] == ["done", "done"]


def test_no_text_configured_means_no_action(engine: Engine, wecom: StandIn) -> None:
    ws_id = connected(engine, wecom.api_base)
    _code, xml = new_contact(wecom, "wmNEW0003", state="douyin_live")
    with TestClient(create_app(engine)) as client:
        deliver(client, xml)
        assert process_callbacks(engine, ws_id).processed == 1
        # Only another channel has a text: this contact's channel gets nothing.
        configure(engine, ws_id, "", {"store_poster": "门店海报来的朋友好"})
        _code, xml2 = new_contact(wecom, "wmNEW0004", state="douyin_live")
        deliver(client, xml2)
        assert process_callbacks(engine, ws_id).processed == 1
    assert sent(wecom) == [] and actions(engine) == []


def test_a_welcome_older_than_20_s_is_not_sent_and_says_why(engine: Engine, wecom: StandIn) -> None:
    ws_id = connected(engine, wecom.api_base)
    configure(engine, ws_id, "欢迎！", {})
    code, xml = new_contact(wecom, "wmNEW0005", state=None, age_s=45)
    with TestClient(create_app(engine)) as client:
        deliver(client, xml)
        process_callbacks(engine, ws_id)
        deliver(client, xml)
        process_callbacks(engine, ws_id)
    assert sent(wecom) == []
    [action] = actions(engine)
    assert action.state == "failed" and action.idempotency_key == f"welcome:{code}"
    assert action.last_error is not None
    # 45 s old when made; a second may pass on a slow machine before it is processed.
    assert re.search(r"processed 4[5-9] s after it was added", action.last_error)
    assert "within 20 s" in action.last_error
    assert [t for t in huey.pending() if t.name == "run_connector_action"] == []


def test_a_refused_welcome_fails_the_action_not_the_callback(
    engine: Engine, wecom: StandIn
) -> None:
    ws_id = connected(engine, wecom.api_base)
    configure(engine, ws_id, "欢迎！", {})
    # A code WeCom does not know (used elsewhere, or expired): 41051, never retried.
    _code, xml = new_contact(wecom, "wmNEW0006", state=None, code="WELCOMECODEunknown")
    with TestClient(create_app(engine)) as client:
        deliver(client, xml)
        report = process_callbacks(engine, ws_id)
    assert report.processed == 1 and report.failed == []
    [action] = actions(engine)
    assert action.state == "failed" and action.attempts == 1
    assert "errcode 41051" in (action.last_error or "")
    assert len(sent(wecom)) == 1


def test_settings_are_checked_and_stored_as_a_wecom_known_setting(engine: Engine) -> None:
    with session_scope(engine) as s:
        ws_id = get_or_create_workspace(s, "w1").id
        with pytest.raises(InvalidParameter, match="at most 4000 characters"):
            welcome.set_welcome(s, ws_id, "x" * 4001)
        with pytest.raises(InvalidParameter, match="at most 30 characters"):
            welcome.set_welcome(s, ws_id, "hi", {"c" * 31: "text"})
        with pytest.raises(InvalidParameter, match="give its text or remove"):
            welcome.set_welcome(s, ws_id, "hi", {"douyin": " "})
        welcome.set_welcome(s, ws_id, "  hi  ", {" douyin ": "抖音好"})
    with session_scope(engine, read_only=True) as s:
        [row] = s.scalars(select(WecomKnown).where(WecomKnown.workspace_id == ws_id))
        assert (row.kind, row.key) == ("setting", "welcome")
        assert row.state == {"text": "hi", "channels": {"douyin": "抖音好"}}
        got = welcome.get_welcome(s, ws_id)
    assert got.text_for("douyin") == "抖音好" and got.text_for("other") == "hi"


def test_console_welcome_settings_for_owners_and_admins(engine: Engine) -> None:
    app = create_app(engine)
    owner, analyst = signed_in(engine, app, "owner"), signed_in(engine, app, "analyst")
    page = owner.get("/w/w1/settings/wecom/welcome")
    assert page.status_code == 200 and "欢迎语" in page.text
    assert analyst.get("/w/w1/settings/wecom/welcome").status_code == 403
    form = {
        "csrf_token": owner.csrf,  # type: ignore[attr-defined]
        "text": "欢迎加入！",
        "channel_state": ["douyin_live", "", "xhs"],
        "channel_text": ["抖音的朋友好", "", "小红书的朋友好"],
    }
    r = owner.post("/w/w1/settings/wecom/welcome", data=form, follow_redirects=False)
    assert r.status_code == 303
    page = owner.get("/w/w1/settings/wecom/welcome")
    assert "欢迎加入！" in page.text and 'data-channel="douyin_live"' in page.text
    with session_scope(engine, read_only=True) as s:
        ws_id = get_or_create_workspace(s, "w1").id
        assert welcome.get_welcome(s, ws_id).channels == {
            "douyin_live": "抖音的朋友好",
            "xhs": "小红书的朋友好",
        }
        [entry] = s.scalars(select(AuditEntry).where(AuditEntry.action == "wecom.welcome_saved"))
        assert entry.detail == {"default": True, "channels": ["douyin_live", "xhs"]}
    # A text without its channel code: refused in words, the form kept.
    bad = dict(form, channel_state=["", "", ""], channel_text=["孤儿文本", "", ""])
    r = owner.post("/w/w1/settings/wecom/welcome", data=bad)
    assert r.status_code == 400 and "请为每条渠道欢迎语填写渠道码" in r.text
    assert "孤儿文本" in r.text
    r = analyst.post(
        "/w/w1/settings/wecom/welcome",
        data={"csrf_token": analyst.csrf, "text": "x"},  # type: ignore[attr-defined]
    )
    assert r.status_code == 403
