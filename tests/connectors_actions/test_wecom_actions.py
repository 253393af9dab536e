"""WeCom actions through the production path (client_for → WecomClient → HTTP) to the stand-in."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

STANDIN_DIR = str(Path(__file__).resolve().parent.parent / "wecom_standin")
if STANDIN_DIR not in sys.path:
    sys.path.insert(0, STANDIN_DIR)

from standin import Scenario, StandIn, build_scenario, local_ts  # noqa: E402

from quanzi.config import get_settings  # noqa: E402
from quanzi.connectors.actions import backoff_us, request_action, run_action  # noqa: E402
from quanzi.connectors.models import ConnectorAction  # noqa: E402
from quanzi.connectors.wecom import actions as wecom_actions  # noqa: E402
from quanzi.connectors.wecom.service import connect  # noqa: E402
from quanzi.core.workspaces.service import get_or_create_workspace  # noqa: E402
from quanzi.db.engine import session_scope  # noqa: E402
from quanzi.jobs import huey, reset_backend  # noqa: E402
from quanzi.kit.clock import now_us  # noqa: E402
from quanzi.kit.errors import InvalidParameter  # noqa: E402
from quanzi.team import service as team  # noqa: E402
from quanzi.team.models import AuditEntry, User  # noqa: E402
from quanzi.web.app import create_app  # noqa: E402
from quanzi.web.console.deps import SESSION_COOKIE  # noqa: E402

CORP_ID = "ww0123456789abcdef"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
DAY = date(2026, 10, 1)


@pytest.fixture(autouse=True)
def _queue_and_no_sleep(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("QUANZI_REDIS_URL", raising=False)
    get_settings.cache_clear()
    reset_backend()
    # The client's backoff sleeps are not waited for in tests.
    monkeypatch.setitem(wecom_actions.CLIENT_OPTIONS, "sleep", lambda _s: None)
    yield
    huey.flush()
    reset_backend()


@pytest.fixture
def corp() -> Scenario:
    sc = build_scenario(groups=3, customers=12, staff=2, day=DAY)
    sc.corp_id = CORP_ID
    return sc


@pytest.fixture
def wecom(corp: Scenario) -> Iterator[StandIn]:
    with StandIn(corp) as server:
        yield server


def connected(engine: Engine, api_base: str, name: str = "w1") -> int:
    with session_scope(engine) as s:
        ws_id = get_or_create_workspace(s, name).id
        connect(
            s,
            ws_id,
            corp_id=CORP_ID,
            secret="standin-secret-0123456789",
            token="QDG6eK",
            encoding_aes_key=AES_KEY,
            api_base=api_base,
        )
        return ws_id


def request(engine: Engine, ws_id: int, kind: str, payload: dict[str, Any], key: str = "k") -> int:
    with session_scope(engine) as s:
        action = request_action(s, ws_id, "wecom", kind, payload, key, "owner@example.com")
        s.flush()
        return action.id


def row(engine: Engine, action_id: int) -> ConnectorAction:
    with session_scope(engine, read_only=True) as s:
        found = s.get(ConnectorAction, action_id)
        assert found is not None
        s.expunge(found)
        return found


def sent(wecom: StandIn, path: str) -> list[dict[str, Any]]:
    return [body for p, body in wecom.requests if p == path]


def test_contact_way_creates_a_qr_code_with_the_channel_state(
    engine: Engine, wecom: StandIn
) -> None:
    ws_id = connected(engine, wecom.api_base)
    action_id = request(
        engine, ws_id, "contact_way", {"state": "douyin_live", "user": ["staff_00"]}
    )
    assert run_action(engine, action_id).state == "done"
    done = row(engine, action_id)
    assert done.result is not None
    assert done.result["config_id"].startswith("cw")
    assert done.result["qr_code"].startswith("http://p.qpic.cn/wwhead/")
    assert done.result["state"] == "douyin_live"
    [body] = sent(wecom, "externalcontact/add_contact_way")
    assert {k: body[k] for k in ("type", "scene", "state", "user", "skip_verify")} == {
        "type": 1,
        "scene": 2,
        "state": "douyin_live",
        "user": ["staff_00"],
        "skip_verify": True,
    }
    assert body["access_token"]  # the real path: a token fetched from gettoken first
    assert wecom.token_fetches == 1


def test_45009_is_retried_later_then_succeeds(engine: Engine, wecom: StandIn) -> None:
    ws_id = connected(engine, wecom.api_base)
    action_id = request(engine, ws_id, "contact_way", {"state": "s1", "user": ["staff_01"]})
    wecom.faults.throttle = 2  # more than the client's own one retry inside the call
    t0 = now_us()
    first = run_action(engine, action_id, now=t0)
    assert first.state == "pending"
    waiting = row(engine, action_id)
    assert waiting.next_attempt_at_us == t0 + backoff_us(1)
    assert "errcode 45009" in (waiting.last_error or "")
    assert "API call frequency limit exceeded" in (waiting.last_error or "")
    assert run_action(engine, action_id, now=t0 + backoff_us(1)).state == "done"
    done = row(engine, action_id)
    assert (done.state, done.attempts, done.last_error) == ("done", 2, None)
    assert wecom.calls_to("externalcontact/add_contact_way") == 3


def test_a_used_welcome_code_is_a_permanent_failure(engine: Engine, wecom: StandIn) -> None:
    ws_id = connected(engine, wecom.api_base)
    code = wecom.new_welcome_code()
    first = request(engine, ws_id, "welcome", {"welcome_code": code, "text": "欢迎！"}, "a")
    second = request(engine, ws_id, "welcome", {"welcome_code": code, "text": "欢迎！"}, "b")
    assert run_action(engine, first).state == "done"
    assert sent(wecom, "externalcontact/send_welcome_msg")[0]["text"] == {"content": "欢迎！"}
    assert run_action(engine, second).state == "failed"
    failed = row(engine, second)
    assert failed.attempts == 1 and failed.next_attempt_at_us is None
    assert "errcode 41051" in (failed.last_error or "")
    assert "welcome code already used or expired" in (failed.last_error or "")


def test_a_welcome_is_not_retried_even_when_wecom_is_throttling(
    engine: Engine, wecom: StandIn
) -> None:
    ws_id = connected(engine, wecom.api_base)
    action_id = request(
        engine, ws_id, "welcome", {"welcome_code": wecom.new_welcome_code(), "text": "hi"}
    )
    wecom.faults.throttle = 2
    # The code lives 20 s: a retry after the backoff could only meet 41051.
    assert run_action(engine, action_id).state == "failed"
    assert "errcode 45009" in (row(engine, action_id).last_error or "")


def test_mass_message_returns_msgid_and_fail_list(
    engine: Engine, wecom: StandIn, corp: Scenario
) -> None:
    ws_id = connected(engine, wecom.api_base)
    mine = sorted(e for (u, e) in corp.relations if u == "staff_00")[:2]
    action_id = request(
        engine,
        ws_id,
        "mass_message",
        {
            "chat_type": "single",
            "sender": "staff_00",
            "text": "双十一活动开始啦",
            "external_userid": [*mine, "wmNOTAFRIEND"],
        },
    )
    assert run_action(engine, action_id).state == "done"
    result = row(engine, action_id).result or {}
    assert result["msgid"].startswith("msg")
    assert result["fail_list"] == ["wmNOTAFRIEND"]
    [body] = sent(wecom, "externalcontact/add_msg_template")
    assert body["text"] == {"content": "双十一活动开始啦"}
    assert "chat_id_list" not in body


def test_mark_tag_changes_the_customers_tags_and_unknown_tags_fail(
    engine: Engine, wecom: StandIn, corp: Scenario
) -> None:
    ws_id = connected(engine, wecom.api_base)
    userid, ext = next(iter(corp.relations))
    good = request(
        engine,
        ws_id,
        "mark_tag",
        {"userid": userid, "external_userid": ext, "add_tag": ["et_vip"]},
        "a",
    )
    bad = request(
        engine,
        ws_id,
        "mark_tag",
        {"userid": userid, "external_userid": ext, "add_tag": ["et_nosuch"]},
        "b",
    )
    assert run_action(engine, good).state == "done"
    assert corp.relations[(userid, ext)].tag_id == ["et_vip"]
    assert row(engine, good).result == {"added": ["et_vip"], "removed": []}
    assert run_action(engine, bad).state == "failed"
    assert "errcode 40068 (invalid tag id)" in (row(engine, bad).last_error or "")


def test_group_statistic_stores_wecoms_figures_per_owner(
    engine: Engine, wecom: StandIn, corp: Scenario
) -> None:
    ws_id = connected(engine, wecom.api_base)
    action_id = request(
        engine,
        ws_id,
        "group_statistic",
        {"day_begin": DAY.isoformat(), "owners": ["staff_00", "staff_01"]},
    )
    assert run_action(engine, action_id).state == "done"
    result = row(engine, action_id).result or {}
    assert (result["day_begin"], result["day_end"], result["days"]) == (
        "2026-10-01",
        "2026-10-01",
        1,
    )
    [body] = sent(wecom, "externalcontact/groupchat/statistic")
    assert body["day_begin_time"] == body["day_end_time"] == local_ts(DAY, 0)
    members = sum(len(c.members) for c in corp.chats.values())
    joined = sum(
        1
        for c in corp.chats.values()
        for m in c.members.values()
        if local_ts(DAY, 0) <= m.join_time < local_ts(DAY, 86400)
    )
    assert [i["owner"] for i in result["items"]] == ["staff_00", "staff_01"]
    assert result["totals"]["chat_total"] == len(corp.chats)
    assert result["totals"]["member_total"] == members
    assert result["totals"]["new_member_cnt"] == joined


def test_join_way_creates_the_way_then_reads_its_qr_code(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over an httpx MockTransport with the contract's shapes (the stand-in has no get_join_way
    yet); the client, its token cache and the requests are the production ones."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def wecom_api(request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/cgi-bin/")
        body = json.loads(request.content) if request.content else {}
        seen.append((path, body))
        if path == "gettoken":
            return httpx.Response(
                200, json={"errcode": 0, "access_token": "T1", "expires_in": 7200}
            )
        assert request.url.params["access_token"] == "T1"
        if path == "externalcontact/groupchat/add_join_way":
            return httpx.Response(200, json={"errcode": 0, "errmsg": "ok", "config_id": "jw1"})
        if path == "externalcontact/groupchat/get_join_way":
            way = {
                "config_id": "jw1",
                "scene": 2,
                "qr_code": "https://wework.qpic.cn/jw1",
                "state": "xhs",
            }
            return httpx.Response(200, json={"errcode": 0, "errmsg": "ok", "join_way": way})
        return httpx.Response(200, json={"errcode": 40058, "errmsg": "invalid parameter"})

    http = httpx.Client(transport=httpx.MockTransport(wecom_api))
    monkeypatch.setitem(wecom_actions.CLIENT_OPTIONS, "http", http)
    ws_id = connected(engine, "https://qyapi.weixin.qq.com/cgi-bin/")
    action_id = request(
        engine, ws_id, "join_way", {"chat_id_list": ["wrOgQhDgAA000001"], "state": "xhs"}
    )
    assert run_action(engine, action_id).state == "done"
    assert row(engine, action_id).result == {
        "config_id": "jw1",
        "qr_code": "https://wework.qpic.cn/jw1",
        "state": "xhs",
    }
    assert [p for p, _b in seen] == [
        "gettoken",
        "externalcontact/groupchat/add_join_way",
        "externalcontact/groupchat/get_join_way",
    ]
    assert seen[1][1] == {"scene": 2, "chat_id_list": ["wrOgQhDgAA000001"], "state": "xhs"}
    assert seen[2][1] == {"config_id": "jw1"}


def test_join_way_against_the_stand_in(engine: Engine, wecom: StandIn, corp: Scenario) -> None:
    ws_id = connected(engine, wecom.api_base)
    chats = sorted(corp.chats)[:2]
    action_id = request(engine, ws_id, "join_way", {"chat_id_list": chats, "state": "xhs"})
    assert run_action(engine, action_id).state == "done"
    result = row(engine, action_id).result
    assert result is not None and result["state"] == "xhs"
    assert result["qr_code"].endswith(f"/{result['config_id']}/0")
    asked = sent(wecom, "externalcontact/groupchat/get_join_way")
    assert [b["config_id"] for b in asked] == [result["config_id"]]


def test_an_action_in_a_workspace_without_wecom_fails_saying_so(engine: Engine) -> None:
    with session_scope(engine) as s:
        ws_id = get_or_create_workspace(s, "w1").id
    action_id = request(engine, ws_id, "contact_way", {"state": "x", "user": ["u1"]})
    assert run_action(engine, action_id).state == "failed"
    assert row(engine, action_id).last_error == "WeCom is not connected in this workspace"


@pytest.mark.parametrize(
    ("kind", "payload", "message"),
    [
        ("contact_way", {"state": "x" * 31, "user": ["u"]}, "state: String should have at most 30"),
        ("contact_way", {"state": "s", "user": ["a", "b"]}, "type 1 (single) takes exactly one"),
        ("contact_way", {"state": "s", "user": []}, "user: List should have at least 1 item"),
        ("contact_way", {"state": "s", "user": ["a"], "scene": 1}, "scene: Input should be 2"),
        (
            "join_way",
            {"chat_id_list": [f"c{i}" for i in range(6)], "state": "s"},
            "chat_id_list: List should have at most 5 items",
        ),
        ("welcome", {"welcome_code": "w"}, "give a text or at least one attachment"),
        (
            "mass_message",
            {
                "sender": "s",
                "text": "t",
                "attachments": [{"msgtype": "image", "image": {"media_id": "m"}}] * 10,
            },
            "attachments: List should have at most 9 items",
        ),
        (
            "mass_message",
            {"text": "t", "attachments": [{"msgtype": "link"}]},
            "needs a 'link' object",
        ),
        ("mass_message", {"chat_type": "group", "text": "t"}, "sender: chat_type 'group' needs"),
        (
            "mass_message",
            {"chat_type": "single", "text": "t", "chat_id_list": ["c"]},
            "chat_id_list is for chat_type 'group'",
        ),
        ("mark_tag", {"userid": "u", "external_userid": "e"}, "give add_tag or remove_tag"),
        (
            "group_statistic",
            {"day_begin": "2026-10-01", "day_end": "2026-10-31", "owners": ["u"]},
            "at most 30 days",
        ),
        (
            "group_statistic",
            {"day_begin": "2026-10-02", "day_end": "2026-10-01", "owners": ["u"]},
            "day_end is before day_begin",
        ),
        (
            "group_statistic",
            {"day_begin": "yesterday", "owners": ["u"]},
            "day_begin: Input should be a valid date",
        ),
        (
            "contact_way",
            {"state": "s", "user": ["a"], "secret": "x"},
            "secret: Extra inputs are not permitted",
        ),
    ],
)
def test_payloads_are_checked_when_requested(
    sqlite_url: str, kind: str, payload: dict[str, Any], message: str
) -> None:
    from quanzi.db.engine import get_engine

    engine = get_engine(sqlite_url)
    with session_scope(engine) as s:
        ws_id = get_or_create_workspace(s, "w1").id
        with pytest.raises(InvalidParameter, match=re.escape(message)):
            request_action(s, ws_id, "wecom", kind, payload, "k", None)
        assert s.query(ConnectorAction).count() == 0
    assert list(huey.pending()) == []


# --- the console page -------------------------------------------------------------------------


def signed_in(engine: Engine, app: Any, role: str) -> TestClient:
    """A client logged in as `role` in workspace w1 (session started directly, no argon2)."""
    with session_scope(engine) as s:
        ws = get_or_create_workspace(s, "w1")
        user = User(
            email=f"{role}@example.com", password_hash="!", display_name=role, created_at_us=1
        )
        s.add(user)
        s.flush()
        team.add_seat(s, ws.id, user, role, None)
        token = team.start_session(s, user, ws.id, "testclient", "pytest")
        s.flush()
        found = team.resolve_session(s, token)
        assert found is not None
        csrf = found[0].csrf_token
    client = TestClient(app)
    client.cookies.set(SESSION_COOKIE, token)
    client.csrf = csrf  # type: ignore[attr-defined]
    return client


def audited(engine: Engine, action: str) -> list[AuditEntry]:
    with session_scope(engine, read_only=True) as s:
        rows = list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))
        s.expunge_all()
        return rows


def test_console_actions_page_is_for_owners_and_admins(engine: Engine) -> None:
    app = create_app(engine)
    owner, analyst = signed_in(engine, app, "owner"), signed_in(engine, app, "analyst")
    page = owner.get("/w/w1/actions")
    assert page.status_code == 200
    for kind in (
        "contact_way",
        "join_way",
        "welcome",
        "mass_message",
        "mark_tag",
        "group_statistic",
    ):
        assert f'data-kind="{kind}"' in page.text
    assert "还没有操作" in page.text  # zh-CN by default
    assert analyst.get("/w/w1/actions").status_code == 403
    r = analyst.post(
        "/w/w1/actions/request",
        data={
            "csrf_token": analyst.csrf,
            "kind": "contact_way",
            "idempotency_key": "k",
            "state": "s",
            "user": "u",
        },  # type: ignore[attr-defined]
    )
    assert r.status_code == 403
    r = owner.post("/w/w1/actions/request", data={"kind": "contact_way", "idempotency_key": "k"})
    assert r.status_code == 403  # no CSRF token
    with session_scope(engine, read_only=True) as s:
        assert s.query(ConnectorAction).count() == 0


def test_console_requests_lists_and_retries_an_action(engine: Engine, wecom: StandIn) -> None:
    ws_id = connected(engine, wecom.api_base)
    app = create_app(engine)
    owner = signed_in(engine, app, "owner")
    form = {
        "csrf_token": owner.csrf,  # type: ignore[attr-defined]
        "kind": "contact_way",
        "idempotency_key": "form-1",
        "state": "store_poster",
        "user": "staff_00, nobody_here",
        "type": "2",
        "skip_verify": "1",
    }
    r = owner.post("/w/w1/actions/request", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/w/w1/actions?done=requested"
    # The same form sent twice (a double click, a reload): one action.
    assert owner.post("/w/w1/actions/request", data=form, follow_redirects=False).status_code == 303
    with session_scope(engine, read_only=True) as s:
        [action] = s.query(ConnectorAction).all()
        assert action.payload == {
            "type": 2,
            "scene": 2,
            "state": "store_poster",
            "user": ["staff_00", "nobody_here"],
            "skip_verify": True,
        }
        assert action.created_by == "owner@example.com"
    assert [a.detail for a in audited(engine, "action.requested")] == [{"action_id": action.id}]

    assert run_action(engine, action.id).state == "failed"  # nobody_here is not staff: 60011
    page = owner.get("/w/w1/actions?state=failed")
    assert f'data-action="{action.id}" data-state="failed"' in page.text
    assert "errcode 60011" in page.text and "/w/w1/actions/retry" in page.text
    assert 'data-state="done"' not in owner.get("/w/w1/actions?state=done").text

    r = owner.post(
        "/w/w1/actions/retry",
        data={"csrf_token": owner.csrf, "action_id": str(action.id)},  # type: ignore[attr-defined]
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert row(engine, action.id).state == "pending"
    assert [a.target for a in audited(engine, "action.retried")] == ["wecom.contact_way"]
    # Retrying what is not failed is refused in words, not a 500.
    r = owner.post(
        "/w/w1/actions/retry",
        data={"csrf_token": owner.csrf, "action_id": str(action.id)},  # type: ignore[attr-defined]
    )
    assert r.status_code == 400 and "只有失败的操作才能重试" in r.text
    assert ws_id


def test_console_shows_a_payload_error_naming_the_field(engine: Engine) -> None:
    app = create_app(engine)
    owner = signed_in(engine, app, "owner")
    r = owner.post(
        "/w/w1/actions/request",
        data={
            "csrf_token": owner.csrf,  # type: ignore[attr-defined]
            "kind": "join_way",
            "idempotency_key": "k",
            "chat_id_list": "a\nb\nc\nd\ne\nf",
            "state": "s",
        },
    )
    assert r.status_code == 400
    assert "chat_id_list: List should have at most 5 items" in r.text
    assert '<details open data-kind="join_way">' in r.text  # the form stays open, filled in
    assert "a\nb\nc" in r.text
    with session_scope(engine, read_only=True) as s:
        assert s.query(ConnectorAction).count() == 0
    assert audited(engine, "action.requested") == []
