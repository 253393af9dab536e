"""Callbacks end to end: the stand-in's sender (tested first) delivers encrypted events to the
real app under uvicorn on a loopback port, one delivery retried after lost answers; the queued
job applies them once through groupchat/get on the stand-in; a following sync adds nothing and
`quanzi report overview` equals the scenario."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from sqlalchemy import Engine, select
from standin import (
    Customer,
    Member,
    Relation,
    Scenario,
    StandIn,
    build_scenario,
    encrypt_callback,
    external_chat_xml,
    external_contact_xml,
    local_ts,
    send_callback,
)
from typer.testing import CliRunner

from quanzi.cli.main import app as cli
from quanzi.config import get_settings
from quanzi.connectors.wecom.client import client_for
from quanzi.connectors.wecom.crypto import CallbackCrypto, xml_fields
from quanzi.connectors.wecom.models import WecomCallback
from quanzi.connectors.wecom.service import connect
from quanzi.connectors.wecom.sync import sync
from quanzi.core.events.models import EventRecord
from quanzi.core.workspaces.service import get_or_create_workspace
from quanzi.db.engine import session_scope
from quanzi.jobs import huey, reset_backend
from quanzi.web.app import create_app

DAY = date(2026, 10, 1)
CORP = "ww5a7c0e1f2b3d4e6f"
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


@pytest.fixture(autouse=True)
def _queue_of_this_test() -> Iterator[None]:
    reset_backend()  # the job queue file lives in this test's data directory
    yield
    huey.flush()
    reset_backend()


# --- the sender -------------------------------------------------------------------------------


def test_event_xml_builders_make_what_the_hook_parses() -> None:
    chat = xml_fields(
        external_chat_xml(
            "update",
            corp_id=CORP,
            chat_id="wrOgQhDgAA000001",
            create_time=1700000000,
            update_detail="add_member",
            join_scene=3,
            members=["wmA", "wmB"],
            last_ver="9c3f",
            cur_ver="71217",
        )
    )
    assert chat == {
        "ToUserName": CORP,
        "FromUserName": "sys",
        "CreateTime": "1700000000",
        "MsgType": "event",
        "Event": "change_external_chat",
        "ChangeType": "update",
        "ChatId": "wrOgQhDgAA000001",
        "UpdateDetail": "add_member",
        "JoinScene": "3",
        "MemChangeCnt": "2",
        "MemChangeList": ["wmA", "wmB"],
        "LastMemVer": "9c3f",
        "CurMemVer": "71217",
    }
    contact = xml_fields(
        external_contact_xml(
            "add_external_contact",
            corp_id=CORP,
            userid="staff_01",
            external_userid="wmA",
            create_time=1700000001,
            state="xhs_note",
        )
    )
    assert contact["Event"] == "change_external_contact"
    assert contact["ChangeType"] == "add_external_contact"
    assert (contact["UserID"], contact["ExternalUserID"]) == ("staff_01", "wmA")
    assert contact["State"] == "xhs_note"
    assert "WelcomeCode" not in contact  # None fields are left out, not sent empty


def test_encrypted_delivery_opens_with_the_connections_keys() -> None:
    xml = external_contact_xml(
        "del_follow_user", corp_id=CORP, userid="u", external_userid="wm客户", create_time=1
    )
    now = int(time.time())
    params, body = encrypt_callback(
        xml, token=TOKEN, encoding_aes_key=AES_KEY, corp_id=CORP, timestamp=now
    )
    assert params["timestamp"] == str(now)
    opened = CallbackCrypto(TOKEN, AES_KEY, CORP).open_delivery(
        body.encode(), params["msg_signature"], params["timestamp"], params["nonce"]
    )
    assert opened == xml
    assert "wm客户" not in body and CORP in body  # only ToUserName is in the clear


def test_sender_resends_the_same_envelope_until_200() -> None:
    seen: list[tuple[str, bytes]] = []
    answers = iter([500, None, 200, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.content))
        status = next(answers)
        if status is None:
            raise httpx.ReadTimeout("no answer", request=request)
        return httpx.Response(status, text="success")

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        statuses = send_callback(
            "http://hook.test/hooks/wecom/shop",
            "<xml><Event><![CDATA[x]]></Event></xml>",
            token=TOKEN,
            encoding_aes_key=AES_KEY,
            corp_id=CORP,
            http=http,
        )
    assert statuses == [500, 0, 200]
    assert len(seen) == 3 and len(set(seen)) == 1  # one envelope, resent as it was

    with httpx.Client(transport=httpx.MockTransport(lambda _r: httpx.Response(503))) as http:
        given_up = send_callback(
            "http://hook.test/h",
            "<xml/>",
            token=TOKEN,
            encoding_aes_key=AES_KEY,
            corp_id=CORP,
            http=http,
            retries=2,
        )
    assert given_up == [503, 503, 503]


# --- the real app on a loopback port ------------------------------------------------------------


class LoseAnswers(httpx.BaseTransport):
    """Forwards every request to the app, then loses the answer of the first `lose` of them
    (a timeout, then a 502 from a proxy): WeCom resends, the app has stored each one."""

    def __init__(self, lose: int) -> None:
        self.inner = httpx.HTTPTransport()
        self.lose = lose
        self.forwarded = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        self.forwarded += 1
        if self.forwarded <= self.lose:
            if self.forwarded == 1:
                raise httpx.ReadTimeout("answer lost", request=request)
            return httpx.Response(502, text="bad gateway")
        return response

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def hook_base(engine: Engine) -> Iterator[str]:
    """The app (quanzi.web.app) served by uvicorn in a thread on 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(engine), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def log(engine: Engine, ws: int) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(EventRecord.event_id, EventRecord.raw).where(EventRecord.workspace_id == ws)
        ).all()
        conn.rollback()
    return {eid: orjson.loads(raw) for eid, raw in rows}


def test_callbacks_delivered_retried_applied_once_and_agreeing_with_sync(
    engine: Engine, db_url: str, hook_base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    corp: Scenario = build_scenario(groups=3, customers=30, staff=3, day=DAY)
    with StandIn(corp) as wecom:
        with session_scope(engine) as s:
            ws = get_or_create_workspace(s, "shop").id
            connect(
                s,
                ws,
                corp_id=corp.corp_id,
                secret=corp.secret,
                token=TOKEN,
                encoding_aes_key=AES_KEY,
                api_base=wecom.api_base,
            )
        with session_scope(engine) as s:
            client = client_for(s, ws, sleep=lambda _s: None)
        assert sync(engine, ws, client).applied > 0

        # What happens in the corp on DAY evening: a new customer of staff_01 (channel
        # xhs_note) is invited into a group by one of its members; another member quits.
        chat = corp.chats["wrOgQhDgAA000001"]
        externals = sorted(u for u, m in chat.members.items() if m.type == 2)
        inviter, leaver = externals[0], externals[1]
        ext = "wmNEW0000001"
        added = local_ts(DAY, 20 * 3600)
        joined = added + 300
        left = local_ts(DAY, 21 * 3600)
        corp.customers[ext] = Customer(ext, "新客")
        corp.add_contact(Relation("staff_01", ext, added, state="xhs_note"))
        corp.join(
            chat.chat_id,
            Member(ext, 2, joined, 1, invitor=inviter, state="xhs_note", name="新客"),
        )
        corp.leave(chat.chat_id, leaver, left)
        gone_staff, gone = sorted(corp.relations)[0]
        corp.del_contact(gone_staff, gone)

        url = f"{hook_base}/hooks/wecom/shop"
        keys = {"token": TOKEN, "encoding_aes_key": AES_KEY, "corp_id": corp.corp_id}
        add_member = external_chat_xml(
            "update",
            corp_id=corp.corp_id,
            chat_id=chat.chat_id,
            create_time=joined + 3,
            update_detail="add_member",
            join_scene=0,
            members=[ext],
        )
        lossy = LoseAnswers(lose=2)
        with httpx.Client(transport=lossy) as http:
            assert send_callback(url, add_member, http=http, **keys) == [0, 502, 200]
        assert lossy.forwarded == 3
        del_member = external_chat_xml(
            "update",
            corp_id=corp.corp_id,
            chat_id=chat.chat_id,
            create_time=left,
            update_detail="del_member",
            quit_scene=0,
            members=[leaver],
        )
        assert send_callback(url, del_member, **keys) == [200]
        add_contact = external_contact_xml(
            "add_external_contact",
            corp_id=corp.corp_id,
            userid="staff_01",
            external_userid=ext,
            create_time=added,
            state="xhs_note",
        )
        assert send_callback(url, add_contact, **keys) == [200]
        del_contact = external_contact_xml(
            "del_external_contact",
            corp_id=corp.corp_id,
            userid=gone_staff,
            external_userid=gone,
            create_time=left + 60,
        )
        assert send_callback(url, del_contact, **keys) == [200]

        with session_scope(engine, read_only=True) as s:
            rows = list(s.scalars(select(WecomCallback).order_by(WecomCallback.id)))
            inbox = [(r.event, r.change_type, r.deliveries, r.processed_at_us) for r in rows]
        assert inbox == [
            ("change_external_chat", "update", 3, None),
            ("change_external_chat", "update", 1, None),
            ("change_external_contact", "add_external_contact", 1, None),
            ("change_external_contact", "del_external_contact", 1, None),
        ]

        # The jobs the hook queued after each commit, run as a worker would.
        before = log(engine, ws)
        monkeypatch.setenv("QUANZI_DATABASE_URL", db_url)
        get_settings.cache_clear()
        queued = [t.name for t in huey.pending()]
        assert queued == ["wecom_process_callbacks"] * 6  # one per stored delivery
        while (task := huey.dequeue()) is not None:
            huey.execute(task)
        with session_scope(engine, read_only=True) as s:
            assert all(
                r.processed_at_us is not None and r.attempts == 1
                for r in s.scalars(select(WecomCallback))
            )
        events = log(engine, ws)
        new = {k: v for k, v in events.items() if k not in before}
        assert sorted(new) == sorted(
            [
                f"wecom:join:{chat.chat_id}:{ext}:{joined}",
                f"wecom:leave:{chat.chat_id}:{leaver}:{left}",
                f"wecom:contact:add:staff_01:{ext}:{added}",
                f"wecom:contact:del:{gone_staff}:{gone}:{left + 60}",
            ]
        )
        join = new[f"wecom:join:{chat.chat_id}:{ext}:{joined}"]
        assert join["ts"] == joined  # groupchat/get's join_time, not the callback's CreateTime
        assert (join["via"], join["inviter"], join["channel"]) == ("invite", inviter, "xhs_note")
        assert new[f"wecom:leave:{chat.chat_id}:{leaver}:{left}"]["ts"] == left
        assert new[f"wecom:contact:add:staff_01:{ext}:{added}"]["channel"] == "xhs_note"

        # The next sync sees the same facts: the same ids, nothing new.
        report = sync(engine, ws, client)
        assert report.applied == 0, report.as_dict()
        assert set(log(engine, ws)) == set(events)

        runner = CliRunner()
        result = runner.invoke(
            cli,
            ["report", "overview", "--workspace", "shop", "--date", DAY.isoformat(), "--json"],
            env={"QUANZI_DATABASE_URL": db_url},
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.output) == corp.expect_overview(DAY, leaves=1)
