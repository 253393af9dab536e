"""Personal states (m:<member>, l:<lead>) against the WeCom stand-in: a join through a member's
poster is that member's invite in the invites report (over WeCom's staff `invitor`), a contact
add through a lead's code links the lead and takes its channel, garbage or foreign states are
no state, the sync reads them like the callbacks; personal contact ways are asked for and their
QR shown on the landing page's thank-you, through the server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

STANDIN_DIR = str(Path(__file__).resolve().parent.parent / "wecom_standin")
if STANDIN_DIR not in sys.path:
    sys.path.insert(0, STANDIN_DIR)

from standin import (  # noqa: E402
    Customer,
    Member,
    Relation,
    Scenario,
    StandIn,
    build_scenario,
    external_chat_xml,
    external_contact_xml,
    local_ts,
)

from quanzi.acquisition import channels, landing, personal_ways  # noqa: E402
from quanzi.acquisition import personal_endpoints as endpoints  # noqa: E402
from quanzi.acquisition.models import Lead  # noqa: E402
from quanzi.acquisition.states import REFERRAL_CHANNEL, lead_state, member_state  # noqa: E402
from quanzi.analytics.service import run_report  # noqa: E402
from quanzi.config import get_settings  # noqa: E402
from quanzi.connectors.actions import run_action  # noqa: E402
from quanzi.connectors.models import ConnectorAction  # noqa: E402
from quanzi.connectors.wecom import actions as wecom_actions  # noqa: E402
from quanzi.connectors.wecom import service  # noqa: E402
from quanzi.connectors.wecom.client import client_for  # noqa: E402
from quanzi.connectors.wecom.jobs import process_callbacks  # noqa: E402
from quanzi.connectors.wecom.mapping import (  # noqa: E402
    StateMeaning,
    callback_to_events,
    member_joined,
)
from quanzi.connectors.wecom.sync import sync  # noqa: E402
from quanzi.core.events.models import EventRecord  # noqa: E402
from quanzi.core.events.service import ingest_lines  # noqa: E402
from quanzi.core.members.models import Member as MemberRow  # noqa: E402
from quanzi.core.workspaces.models import Workspace  # noqa: E402
from quanzi.core.workspaces.service import get_or_create_workspace  # noqa: E402
from quanzi.db.engine import session_scope  # noqa: E402
from quanzi.jobs import huey, reset_backend  # noqa: E402
from quanzi.kit.errors import InvalidParameter, NotFound  # noqa: E402
from quanzi.web.app import create_app  # noqa: E402

DAY = date(2026, 10, 1)
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CHAT = "wrOgQhDgAA000000"
PAGE: dict[str, Any] = {
    "headline": "育儿资料包免费领",
    "group_qr_url": "/static/favicon.svg",
    "consent_text": "我同意按《隐私政策》使用我的手机号联系我（v1）",
}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("QUANZI_REDIS_URL", raising=False)
    get_settings.cache_clear()
    reset_backend()
    monkeypatch.setitem(wecom_actions.CLIENT_OPTIONS, "sleep", lambda _s: None)
    monkeypatch.setattr(landing, "PER_IP", landing.SlidingWindow(1000, 600))
    monkeypatch.setattr(landing, "PER_PHONE", landing.SlidingWindow(1000, 3600))
    if hasattr(landing, "_PUBLISHED"):  # published versions cached by id: ids repeat across tests
        monkeypatch.setattr(landing, "_PUBLISHED", {})
    yield
    huey.flush()
    reset_backend()


@pytest.fixture
def corp() -> Scenario:
    return build_scenario(groups=2, customers=10, staff=2, day=DAY)


@pytest.fixture
def wecom(corp: Scenario) -> Iterator[StandIn]:
    with StandIn(corp) as server:
        yield server


def connected(engine: Engine, wecom: StandIn, name: str = "shop") -> int:
    with session_scope(engine) as s:
        ws = get_or_create_workspace(s, name).id
        service.connect(
            s,
            ws,
            corp_id=wecom.sc.corp_id,
            secret=wecom.sc.secret,
            token=TOKEN,
            encoding_aes_key=AES_KEY,
            api_base=wecom.api_base,
        )
    return ws


def synced(engine: Engine, ws: int) -> int:
    with session_scope(engine) as s:
        client = client_for(s, ws, sleep=lambda _s: None)
    with client:
        return sync(engine, ws, client).applied


def deliver(engine: Engine, ws: int, xml: str, event: str, change: str) -> None:
    """A verified callback in the inbox, as the hook stores it (tested in its own file)."""
    with session_scope(engine) as s:
        service.store_callback(s, ws, xml, event, change)


def log(engine: Engine, ws: int) -> dict[str, dict[str, Any]]:
    with session_scope(engine, read_only=True) as s:
        rows = s.execute(
            select(EventRecord.event_id, EventRecord.raw).where(EventRecord.workspace_id == ws)
        ).all()
    return {eid: orjson.loads(raw) for eid, raw in rows}


def member_id(engine: Engine, ws: int, key: str) -> int:
    with session_scope(engine, read_only=True) as s:
        found = s.scalar(
            select(MemberRow.id).where(MemberRow.workspace_id == ws, MemberRow.member_key == key)
        )
    assert found is not None, key
    return found


def invites_of(engine: Engine, ws: int, inviter: str) -> dict[str, int]:
    with session_scope(engine, read_only=True) as s:
        workspace = s.get(Workspace, ws)
        assert workspace is not None
        got = run_report(
            s,
            workspace,
            "invites",
            {"from": DAY.isoformat(), "to": DAY.isoformat(), "as_of": str(DAY + timedelta(5))},
        )
    for row in got["inviters"]:
        if row["inviter"] == inviter:
            return {k: v for k, v in row.items() if k != "inviter"}
    return {"raw": 0, "new": 0, "valid": 0, "pending": 0}


def page_and_lead(engine: Engine, ws: int, phone: str, channel: str, slug: str = "pack") -> int:
    with session_scope(engine) as s:
        if not _page_exists(s, slug):
            page = landing.create_page(s, ws, "资料包", PAGE, slug=slug)
            landing.publish(s, ws, page.id, None)
    with TestClient(create_app(engine)) as client:
        r = client.post(f"/p/{slug}/lead?c={channel}", data={"phone": phone, "consent": "1"})
        assert r.status_code == 200, r.text
    with session_scope(engine, read_only=True) as s:
        found = s.scalar(select(Lead.id).where(Lead.workspace_id == ws).order_by(Lead.id.desc()))
    assert found is not None
    return found


def _page_exists(s: Any, slug: str) -> bool:
    from quanzi.acquisition.models import LandingPage

    return s.scalar(select(LandingPage.id).where(LandingPage.slug == slug)) is not None


# --- the mapping, pure ----------------------------------------------------------------------


def test_a_personal_code_wins_over_wecoms_staff_invitor_and_is_none_without_a_database() -> None:
    row = {"userid": "wmNEW", "join_time": 1700000000, "join_scene": 3, "state": "m:1z",
           "invitor": {"userid": "staff_00"}}  # fmt: skip
    seen: list[tuple[str, str]] = []

    def resolve(state: str, member: str) -> StateMeaning:
        seen.append((state, member))
        return StateMeaning(channel=REFERRAL_CHANNEL, inviter="wmHOST")

    event = member_joined(CHAT, row, resolve)
    assert event is not None and seen == [("m:1z", "wmNEW")]
    assert (event["inviter"], event["via"], event["channel"]) == ("wmHOST", "invite", "referral")
    # Without a resolver (no database) a personal state cannot be checked: no state at all;
    # WeCom's staff invitor and the REST join scene stay.
    plain = member_joined(CHAT, row)
    assert plain is not None and "channel" not in plain
    assert (plain["inviter"], plain["via"]) == ("staff_00", "qrcode")
    channel = member_joined(CHAT, {**row, "state": "xhs_note"})
    assert channel is not None and channel["channel"] == "xhs_note"
    fields = {"Event": "change_external_contact", "ChangeType": "add_external_contact",
              "UserID": "staff_00", "ExternalUserID": "wmX", "CreateTime": "1700000000"}  # fmt: skip
    for junk in ("m:", "l:zz", "M:1", "l:-1", "   "):
        (added,) = callback_to_events({**fields, "State": junk}, lambda chat: {})
        assert "channel" not in added and "inviter" not in added, junk


# --- callbacks and sync against the stand-in --------------------------------------------------


def test_joins_through_a_members_poster_are_that_members_invites(
    engine: Engine, corp: Scenario, wecom: StandIn
) -> None:
    ws = connected(engine, wecom)
    assert synced(engine, ws) > 0
    chat = corp.chats[CHAT]
    host = sorted(u for u, m in chat.members.items() if m.type == 2)[0]
    before = invites_of(engine, ws, host)
    poster = member_state(member_id(engine, ws, host))
    t = local_ts(DAY, 20 * 3600)
    # Two newcomers scan the host's poster (a group join way with the host's state); WeCom
    # names the group's owner as invitor of the second (it only ever names staff). A third is
    # invited by the owner through a plain channel code.
    corp.join(CHAT, Member("wmNEW0000001", 2, t, 3, state=poster, name="新人一"))
    corp.join(
        CHAT, Member("wmNEW0000002", 2, t + 60, 3, invitor=chat.owner, state=poster, name="新人二")
    )
    corp.join(CHAT, Member("wmNEW0000003", 2, t + 90, 1, invitor=chat.owner, state="xhs_note"))
    xml = external_chat_xml(
        "update",
        corp_id=corp.corp_id,
        chat_id=CHAT,
        create_time=t + 100,
        update_detail="add_member",
        join_scene=3,
        members=["wmNEW0000001", "wmNEW0000002", "wmNEW0000003"],
    )
    deliver(engine, ws, xml, "change_external_chat", "update")
    report = process_callbacks(engine, ws)
    assert (report.failed, report.applied) == ([], 3)
    events = log(engine, ws)
    one = events[f"wecom:join:{CHAT}:wmNEW0000001:{t}"]
    two = events[f"wecom:join:{CHAT}:wmNEW0000002:{t + 60}"]
    three = events[f"wecom:join:{CHAT}:wmNEW0000003:{t + 90}"]
    for e in (one, two):
        assert (e["inviter"], e["via"], e["channel"]) == (host, "invite", REFERRAL_CHANNEL)
    assert (three["inviter"], three["via"], three["channel"]) == (chat.owner, "invite", "xhs_note")
    after = invites_of(engine, ws, host)
    assert {k: after[k] - before[k] for k in after} == {
        "raw": 2,
        "new": 2,
        "valid": 2,
        "pending": 0,
    }
    with session_scope(engine, read_only=True) as s:
        newcomer = s.get(MemberRow, member_id(engine, ws, "wmNEW0000001"))
        assert newcomer is not None and newcomer.channel == REFERRAL_CHANNEL
    # The sync sees the same joins and reads their states the same way: nothing new.
    assert synced(engine, ws) == 0
    assert log(engine, ws) == events


def test_the_sync_reads_personal_states_like_the_callbacks(
    engine: Engine, corp: Scenario, wecom: StandIn
) -> None:
    ws = connected(engine, wecom)
    synced(engine, ws)
    chat = corp.chats[CHAT]
    host = sorted(u for u, m in chat.members.items() if m.type == 2)[0]
    lead = page_and_lead(engine, ws, "13812345678", "douyin_live")
    t = local_ts(DAY, 21 * 3600)
    corp.customers["wmLEAD000001"] = Customer("wmLEAD000001", "线索客户")
    corp.add_contact(Relation("staff_00", "wmLEAD000001", t, state=lead_state(lead)))
    corp.customers["wmJUNK000001"] = Customer("wmJUNK000001", "乱码客户")
    corp.add_contact(Relation("staff_01", "wmJUNK000001", t, state="l:" + "z" * 12))
    poster = member_state(member_id(engine, ws, host))
    corp.join(CHAT, Member("wmPOST000001", 2, t, 3, invitor=chat.owner, state=poster))
    assert synced(engine, ws) > 0
    events = log(engine, ws)
    added = events[f"wecom:contact:add:staff_00:wmLEAD000001:{t}"]
    assert added["channel"] == "douyin_live"  # the lead's channel
    junk = events[f"wecom:contact:add:staff_01:wmJUNK000001:{t}"]
    assert "channel" not in junk
    join = events[f"wecom:join:{CHAT}:wmPOST000001:{t}"]
    assert (join["inviter"], join["via"], join["channel"]) == (host, "invite", REFERRAL_CHANNEL)
    with session_scope(engine, read_only=True) as s:
        row = s.get(Lead, lead)
        assert row is not None
        assert (row.member_id, row.linked_by) == (
            member_id(engine, ws, "wmLEAD000001"),
            "state",
        )


def test_foreign_unknown_and_garbage_states_are_no_state(
    engine: Engine, corp: Scenario, wecom: StandIn
) -> None:
    ws = connected(engine, wecom)
    synced(engine, ws)
    # Another workspace's member and lead, and a Telegram member of this workspace.
    with session_scope(engine) as s:
        other = get_or_create_workspace(s, "other").id
    line = {"id": "o1", "type": "member.joined", "ts": 1_790_000_000, "platform": "wecom",
            "group": "g", "member": "wmOTHER"}  # fmt: skip
    ingest_lines(engine, other, [orjson.dumps(line)])
    ingest_lines(engine, ws, [orjson.dumps({**line, "id": "t1", "platform": "telegram"})])
    other_lead = page_and_lead(engine, other, "13912345678", "x", slug="other-pack")
    states = [
        member_state(member_id(engine, other, "wmOTHER")),
        lead_state(other_lead),
        member_state(member_id(engine, ws, "wmOTHER")),  # the Telegram member
        member_state(10**12),
        lead_state(10**12),
        "m:",
        "l:",
        "m:!!",
        "M:1",
        "m:" + "z" * 40,
        "l:1\u202e",
    ]
    t = local_ts(DAY, 22 * 3600)
    for i, state in enumerate(states):
        xml = external_contact_xml(
            "add_external_contact",
            corp_id=corp.corp_id,
            userid="staff_00",
            external_userid=f"wmG{i:09d}",
            create_time=t + i,
            state=state,
        )
        deliver(engine, ws, xml, "change_external_contact", "add_external_contact")
    report = process_callbacks(engine, ws)
    assert (report.processed, report.failed, report.applied) == (len(states), [], len(states))
    events = log(engine, ws)
    for i, state in enumerate(states):
        e = events[f"wecom:contact:add:staff_00:wmG{i:09d}:{t + i}"]
        assert "channel" not in e and "inviter" not in e, state
    with session_scope(engine, read_only=True) as s:
        assert s.scalars(select(Lead.member_id).where(Lead.member_id.is_not(None))).all() == []


# --- personal ways: asked for, shown through the server -----------------------------------------


def contact_code(engine: Engine, ws: int, staff: list[str], channel: str = "xhs_note") -> int:
    with session_scope(engine) as s:
        code = channels.create_code(
            s,
            ws,
            name="小红书笔记",
            channel=channel,
            target_kind="wecom_contact",
            target={"staff": staff},
            created_by="owner@example.com",
        )
        s.flush()
        return code.id


def test_a_members_personal_way_is_asked_once_per_target_and_checked(
    engine: Engine, corp: Scenario, wecom: StandIn
) -> None:
    ws = connected(engine, wecom)
    synced(engine, ws)
    host = member_id(engine, ws, sorted(u for u in corp.customers)[0])
    code_id = contact_code(engine, ws, ["staff_00", "staff_01"])
    with session_scope(engine) as s:
        group = channels.create_code(
            s,
            ws,
            name="进群",
            channel="group_join",
            target_kind="wecom_group",
            target={"chat_ids": list(corp.chats)},
        )
        link = channels.create_code(
            s, ws, name="l", channel="plain", target_kind="link", target={"url": "https://a.b"}
        )
        code = channels.get_code(s, ws, code_id)
        first = personal_ways.request(s, ws, code, member_state(host), "owner@example.com")
        again = personal_ways.request(s, ws, code, member_state(host), "owner@example.com")
        joins = personal_ways.request(s, ws, group, member_state(host), None)
        assert first is not None and again is not None and joins is not None
        assert first.id == again.id and joins.kind == "join_way"
        assert personal_ways.qr_for(s, ws, member_state(host)) is None  # not run yet
        ids = (first.id, joins.id)
        with pytest.raises(InvalidParameter, match="state"):
            personal_ways.request(s, ws, code, "xhs_note", None)
        with pytest.raises(NotFound, match="member"):
            personal_ways.request(s, ws, code, member_state(10**9), None)
        with pytest.raises(InvalidParameter, match="code"):
            personal_ways.request(s, ws, link, member_state(host), None)
        with pytest.raises(NotFound, match="channel code"):
            personal_ways.request(s, ws + 1000, code, member_state(host), None)
    assert [run_action(engine, i).state for i in ids] == ["done", "done"]
    [body] = [b for p, b in wecom.requests if p == "externalcontact/add_contact_way"][-1:]
    assert (body["type"], body["state"], body["user"]) == (
        2,
        member_state(host),
        ["staff_00", "staff_01"],
    )
    [join] = [b for p, b in wecom.requests if p == "externalcontact/groupchat/add_join_way"][-1:]
    assert (join["state"], join["chat_id_list"]) == (member_state(host), list(corp.chats))
    with session_scope(engine) as s:
        code = channels.get_code(s, ws, code_id)
        url = personal_ways.qr_for(s, ws, member_state(host), code)
        assert url is not None and url.startswith("http://p.qpic.cn/wwhead/")
        # The code's target changes: a new way is asked for (the old one stays WeCom's).
        channels.update_code(s, ws, code_id, target={"staff": ["staff_01"]})
        fresh = personal_ways.request(s, ws, code, member_state(host), None)
        assert fresh is not None and fresh.id not in ids and fresh.payload["type"] == 1
    # Not connected: nothing is asked.
    with session_scope(engine) as s:
        service.disconnect(s, ws)
    with session_scope(engine) as s:
        code = channels.get_code(s, ws, code_id)
        assert personal_ways.request(s, ws, code, member_state(host), None) is None


def test_the_thank_you_shows_the_leads_own_code_and_its_add_links_the_lead(
    engine: Engine, corp: Scenario, wecom: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = connected(engine, wecom)
    contact_code(engine, ws, ["staff_01"])
    fetched: list[str] = []

    def fetch(url: str) -> tuple[bytes, str]:
        fetched.append(url)
        return PNG, "image/png"

    monkeypatch.setattr(endpoints, "fetch_image", fetch)
    with session_scope(engine) as s:
        page = landing.create_page(s, ws, "资料包", PAGE, slug="pack")
        landing.publish(s, ws, page.id, None)
    with TestClient(create_app(engine)) as client:
        r = client.post("/p/pack/lead?c=xhs_note", data={"phone": "138 1234 5678", "consent": "1"})
        assert r.status_code == 200 and "扫码添加顾问" in r.text and "长按识别二维码" in r.text
        with session_scope(engine, read_only=True) as s:
            lead_id = s.scalar(select(Lead.id))
            assert lead_id is not None
        token = personal_ways.lead_token(ws, lead_id)
        assert f'src="/l/{token}.png"' in r.text and "正在生成" in r.text
        assert personal_ways.read_lead_token(token) == (ws, lead_id) and len(token) >= 30
        # The image: the server runs the pending way itself (the stand-in answers), fetches
        # WeCom's image once and serves it; the page then shows it ready.
        image = client.get(f"/l/{token}.png")
        assert image.status_code == 200 and image.content == PNG
        assert client.get(f"/l/{token}.png").content == PNG
        assert len(fetched) == 1 and fetched[0].startswith("http://p.qpic.cn/wwhead/")
        [way] = [b for p, b in wecom.requests if p == "externalcontact/add_contact_way"][-1:]
        assert (way["type"], way["user"], way["state"]) == (1, ["staff_01"], lead_state(lead_id))
        again = client.get(f"/l/{token}")
        assert again.status_code == 200 and "扫码添加顾问" in again.text
        assert (
            "正在生成" not in again.text
            and "default-src 'none'" in again.headers["content-security-policy"]
        )
        # A resubmission asks for nothing new and shows the ready code at once.
        r = client.post("/p/pack/lead?c=xhs_note", data={"phone": "13812345678", "consent": "1"})
        assert f'src="/l/{token}.png"' in r.text and "正在生成" not in r.text
        # Tampered or foreign tokens are 404s.
        for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "x" * 40, "1"):
            assert client.get(f"/l/{bad}.png").status_code == 404
            assert client.get(f"/l/{bad}").status_code == 404
    with session_scope(engine, read_only=True) as s:
        asked = s.scalars(
            select(ConnectorAction.id).where(ConnectorAction.kind == "contact_way")
        ).all()
        assert len(asked) == 2  # the channel code's own way and the lead's

    # The lead scans it: WeCom's add-contact callback carries l:<id>.
    t = local_ts(DAY, 20 * 3600)
    xml = external_contact_xml(
        "add_external_contact",
        corp_id=corp.corp_id,
        userid="staff_01",
        external_userid="wmLEAD000009",
        create_time=t,
        state=lead_state(lead_id),
    )
    deliver(engine, ws, xml, "change_external_contact", "add_external_contact")
    assert process_callbacks(engine, ws).applied == 1
    added = log(engine, ws)[f"wecom:contact:add:staff_01:wmLEAD000009:{t}"]
    assert added["channel"] == "xhs_note"
    with session_scope(engine, read_only=True) as s:
        row = s.get(Lead, lead_id)
        assert row is not None and row.linked_by == "state"
        assert row.member_id == member_id(engine, ws, "wmLEAD000009")


def test_a_way_wecom_has_not_answered_yet_is_said_so(
    engine: Engine, wecom: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = connected(engine, wecom)
    contact_code(engine, ws, ["staff_00"])
    monkeypatch.setattr(endpoints, "WAIT_S", 0.0)
    with session_scope(engine) as s:
        page = landing.create_page(s, ws, "资料包", PAGE, slug="pack")
        landing.publish(s, ws, page.id, None)
    wecom.faults.busy = 100  # WeCom answers -1 (busy): the way stays pending, retried later
    with TestClient(create_app(engine)) as client:
        r = client.post("/p/pack/lead?c=xhs_note", data={"phone": "13812345678", "consent": "1"})
        assert "正在生成" in r.text
        with session_scope(engine, read_only=True) as s:
            lead_id = s.scalar(select(Lead.id))
            assert lead_id is not None
        token = personal_ways.lead_token(ws, lead_id)
        image = client.get(f"/l/{token}.png")
        assert image.status_code == 404
        page_again = client.get(f"/l/{token}")
        assert page_again.status_code == 200 and "正在生成" in page_again.text
    with session_scope(engine, read_only=True) as s:
        way = personal_ways.way_of(s, ws, lead_state(lead_id))
        assert way is not None and way.state == "pending" and "errcode -1" in (way.last_error or "")
    # A lead whose channel is no WeCom contact code, or with WeCom disconnected: no code shown.
    with session_scope(engine) as s:
        service.disconnect(s, ws)
    with TestClient(create_app(engine)) as client:
        r = client.post("/p/pack/lead?c=other", data={"phone": "13912345678", "consent": "1"})
        assert r.status_code == 200 and "扫码添加顾问" not in r.text
        r = client.post("/p/pack/lead?c=xhs_note", data={"phone": "13712345678", "consent": "1"})
        assert r.status_code == 200 and "扫码添加顾问" not in r.text
