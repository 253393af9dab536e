"""The WeCom hook end to end (verify, store once, answer, process after), the connection
service, the processing job and the console's settings page."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from quanzi.connectors.wecom import service
from quanzi.connectors.wecom.crypto import CallbackCrypto, signature
from quanzi.connectors.wecom.jobs import process_callbacks
from quanzi.connectors.wecom.models import WecomCallback, WecomConnection
from quanzi.core.events.models import EventRecord
from quanzi.core.workspaces.service import get_or_create_workspace
from quanzi.db.engine import session_scope
from quanzi.jobs import huey, reset_backend
from quanzi.kit.errors import InvalidParameter, NotFound
from quanzi.team import service as team
from quanzi.team.models import AuditEntry, User
from quanzi.web.app import create_app
from quanzi.web.console.deps import SESSION_COOKIE

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "wecom"
CORP = "ww1436e0e65a779aee"
TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
AES = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
SECRET = "s3cr3t-customer-contact-XYZ"
GROUP = json.loads((FIXTURES / "groupchat_get.json").read_text())["group_chat"]


@pytest.fixture(autouse=True)
def _queue_of_this_test() -> Iterator[None]:
    reset_backend()  # the job queue file lives in this test's data directory
    yield
    huey.flush()
    reset_backend()


def connect(engine: Engine, workspace: str = "acme", **changes: str) -> int:
    values = {"corp_id": CORP, "secret": SECRET, "token": TOKEN, "encoding_aes_key": AES}
    values.update(changes)
    with session_scope(engine) as s:
        ws_id = get_or_create_workspace(s, workspace).id
        service.connect(s, ws_id, **values)
    return ws_id


def crypto(token: str = TOKEN, aes: str = AES, corp: str = CORP) -> CallbackCrypto:
    return CallbackCrypto(token, aes, corp)


def post(
    client: TestClient,
    xml: str,
    *,
    workspace: str = "acme",
    c: CallbackCrypto | None = None,
    ts: int | None = None,
    nonce: str = "1597212914",
) -> Any:
    timestamp = str(ts if ts is not None else int(time.time()))
    body, sig = (c or crypto()).seal_delivery(xml, nonce, timestamp)
    return client.post(
        f"/hooks/wecom/{workspace}",
        params={"msg_signature": sig, "timestamp": timestamp, "nonce": nonce},
        content=body,
    )


def callbacks(engine: Engine) -> list[WecomCallback]:
    with session_scope(engine, read_only=True) as s:
        return list(s.scalars(select(WecomCallback).order_by(WecomCallback.id)))


def event_ids(engine: Engine, ws_id: int) -> list[str]:
    with session_scope(engine, read_only=True) as s:
        return sorted(
            s.scalars(select(EventRecord.event_id).where(EventRecord.workspace_id == ws_id))
        )


def queued() -> list[tuple[str, tuple[Any, ...]]]:
    return [(task.name, tuple(task.args)) for task in huey.pending()]


def fixture_xml(name: str) -> str:
    return (FIXTURES / f"{name}.xml").read_text()


# --- the hook ---------------------------------------------------------------------------------


def test_url_check_answers_the_bare_echostr(engine: Engine) -> None:
    connect(engine)
    echostr = crypto().encrypt("1288432023552776189")
    ts = str(int(time.time()))
    opened = service.WecomSecrets(CORP, SECRET, TOKEN, AES, "").callback_crypto()
    with TestClient(create_app(engine)) as client:
        r = client.get(
            "/hooks/wecom/acme",
            params={
                "msg_signature": signature(opened.token, ts, "42", echostr),
                "timestamp": ts,
                "nonce": "42",
                "echostr": echostr,
            },
        )
        assert r.status_code == 200
        assert r.content == b"1288432023552776189"  # no quotes, newline or BOM
        assert r.headers["content-type"].startswith("text/plain")
        bad = client.get(
            "/hooks/wecom/acme",
            params={"msg_signature": "0" * 40, "timestamp": ts, "nonce": "42", "echostr": echostr},
        )
        assert bad.status_code == 403


def test_a_delivery_is_stored_once_acknowledged_and_queued(engine: Engine) -> None:
    ws_id = connect(engine)
    xml = fixture_xml("cb_add_external_contact")
    with TestClient(create_app(engine)) as client:
        started = time.monotonic()
        r = post(client, xml)
        assert time.monotonic() - started < 5  # WeCom's limit, with a wide margin
        assert (r.status_code, r.text) == (200, "success")
        # WeCom retries a delivery it thinks was lost: same event, new nonce and timestamp.
        for nonce in ("n2", "n3"):
            assert post(client, xml, nonce=nonce).text == "success"
    rows = callbacks(engine)
    assert len(rows) == 1
    row = rows[0]
    assert (row.event, row.change_type, row.deliveries) == (
        "change_external_contact",
        "add_external_contact",
        3,
    )
    assert row.xml == xml and row.processed_at_us is None
    assert row.digest == service.callback_digest(xml)
    assert ("wecom_process_callbacks", (ws_id,)) in queued()
    with session_scope(engine, read_only=True) as s:
        conn = service.connection(s, ws_id)
        assert conn is not None and conn.last_callback_at_us is not None
    # Processing applies it once, however many deliveries there were.
    report = process_callbacks(engine, ws_id, fetch_group=lambda chat: GROUP)
    assert (report.processed, report.applied) == (1, 1)
    assert event_ids(engine, ws_id) == [
        "wecom:contact:add:zhangsan:woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA:1403610513"
    ]
    assert process_callbacks(engine, ws_id, fetch_group=lambda chat: GROUP).processed == 0


def test_unknown_workspace_or_no_connection_is_not_found(engine: Engine) -> None:
    with session_scope(engine) as s:
        get_or_create_workspace(s, "bare")
    with TestClient(create_app(engine)) as client:
        assert (
            post(client, fixture_xml("cb_del_follow_user"), workspace="nowhere").status_code == 404
        )
        assert post(client, fixture_xml("cb_del_follow_user"), workspace="bare").status_code == 404
    assert callbacks(engine) == []


def test_each_workspace_hook_uses_its_own_keys(engine: Engine) -> None:
    other_token, other_aes = "OtherToken42", "a" * 43
    a = connect(engine, "acme")
    b = connect(engine, "beta", token=other_token, encoding_aes_key=other_aes)
    xml = fixture_xml("cb_del_follow_user")
    with TestClient(create_app(engine)) as client:
        # Signed with acme's keys, sent to beta's hook: refused.
        assert post(client, xml, workspace="beta").status_code == 403
        assert post(client, xml, workspace="beta", c=crypto(other_token, other_aes)).text == (
            "success"
        )
    assert [r.workspace_id for r in callbacks(engine)] == [b]
    assert a != b


BOMB = (
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    "<xml><Event>&c;</Event></xml>"
)
XXE = (
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    "<xml><Event>&e;</Event></xml>"
)


def test_hostile_requests_are_refused_logged_and_not_stored(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    connect(engine)
    xml = fixture_xml("cb_add_external_contact")
    now = int(time.time())
    with TestClient(create_app(engine)) as client:
        caplog.set_level(logging.WARNING, logger="quanzi.connectors.wecom.callbacks")
        statuses: dict[str, int] = {}
        statuses["forged token"] = post(client, xml, c=crypto(token="NotTheToken")).status_code
        statuses["old timestamp"] = post(client, xml, ts=now - 3600).status_code
        statuses["wrong corp"] = post(client, xml, c=crypto(corp="ww0000000000000000")).status_code
        statuses["xml bomb inside"] = post(client, BOMB).status_code
        statuses["external entity inside"] = post(client, XXE).status_code
        ts = str(now)
        body, sig = crypto().seal_delivery(xml, "n", ts)
        tampered = body.replace(b"<Encrypt><![CDATA[", b"<Encrypt><![CDATA[AAAA")
        params = {"msg_signature": sig, "timestamp": ts, "nonce": "n"}
        statuses["tampered"] = client.post(
            "/hooks/wecom/acme", params=params, content=tampered
        ).status_code
        statuses["bomb envelope"] = client.post(
            "/hooks/wecom/acme", params=params, content=BOMB.encode()
        ).status_code
        statuses["oversized"] = client.post(
            "/hooks/wecom/acme", params=params, content=b"<xml>" + b" " * 1_000_001 + b"</xml>"
        ).status_code
        statuses["no signature"] = client.post("/hooks/wecom/acme", content=body).status_code
    assert statuses == {
        "forged token": 403,
        "old timestamp": 403,
        "wrong corp": 403,
        "xml bomb inside": 400,
        "external entity inside": 400,
        "tampered": 403,  # the signature covers the ciphertext
        "bomb envelope": 400,
        "oversized": 413,
        "no signature": 400,
    }
    assert callbacks(engine) == []
    assert queued() == []
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) >= 8
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert TOKEN not in logged and AES not in logged and "zhangsan" not in logged


# --- processing -------------------------------------------------------------------------------


def test_processing_in_order_of_receipt_with_fetched_group_details(engine: Engine) -> None:
    ws_id = connect(engine)
    fetched: list[str] = []

    def fetch(chat: str) -> dict[str, Any]:
        fetched.append(chat)
        return GROUP

    with TestClient(create_app(engine)) as client:
        for name in ("cb_chat_create", "cb_chat_add_member", "cb_chat_del_member"):
            assert post(client, fixture_xml(name)).text == "success"
    report = process_callbacks(engine, ws_id, fetch_group=fetch)
    assert report.processed == 3 and report.failed == []
    assert fetched == ["CHAT_ID", "CHAT_ID"]  # del_member needs no fetch
    ids = event_ids(engine, ws_id)
    assert "wecom:group:CHAT_ID:created" in ids
    assert "wecom:join:CHAT_ID:Jack:1403610500" in ids  # created and add_member: one event
    assert "wecom:join:CHAT_ID:Rose:1403610510" in ids
    assert "wecom:leave:CHAT_ID:Rose:1403610513" in ids
    assert len(ids) == len(set(ids)) == 5  # the group, joins of abel, Jack, Rose; Rose leaves
    assert all(cb.processed_at_us is not None for cb in callbacks(engine))


def test_a_failed_fetch_is_recorded_and_retried_later(engine: Engine) -> None:
    ws_id = connect(engine)
    with TestClient(create_app(engine)) as client:
        post(client, fixture_xml("cb_chat_change_name"))
        post(client, fixture_xml("cb_del_follow_user"))

    def down(chat: str) -> dict[str, Any]:
        raise InvalidParameter("externalcontact/groupchat/get: errcode 60011 (no permission)")

    report = process_callbacks(engine, ws_id, fetch_group=down)
    assert report.processed == 1 and len(report.failed) == 1
    first, second = callbacks(engine)
    assert first.processed_at_us is None and first.attempts == 1
    assert "60011" in (first.last_error or "")
    assert second.processed_at_us is not None
    with session_scope(engine, read_only=True) as s:
        conn = service.connection(s, ws_id)
        assert conn is not None and "60011" in (conn.last_error or "")
    assert event_ids(engine, ws_id) == [
        "wecom:contact:del:zhangsan:woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA:1403610513"
    ]
    # Later WeCom answers: the pending one is applied, nothing else twice.
    report = process_callbacks(engine, ws_id, fetch_group=lambda chat: GROUP)
    assert (report.processed, report.applied, report.failed) == (1, 1, [])
    assert "wecom:group:CHAT_ID:updated:name:1403610513" in event_ids(engine, ws_id)


def test_the_job_uses_the_connections_client(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an injected fetcher the job asks WeCom through client_for(...).post(...)."""
    from quanzi.connectors.wecom import jobs

    ws_id = connect(engine)
    calls: list[tuple[str, dict[str, Any]]] = []

    class FakeClient:
        def __enter__(self) -> FakeClient:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
            calls.append((path, body))
            return {"errcode": 0, "errmsg": "ok", "group_chat": GROUP}

    monkeypatch.setattr(jobs, "client_for", lambda s, wid: FakeClient())
    with TestClient(create_app(engine)) as client:
        post(client, fixture_xml("cb_chat_change_owner"))
    assert process_callbacks(engine, ws_id).processed == 1
    assert calls == [("externalcontact/groupchat/get", {"chat_id": "CHAT_ID", "need_name": 1})]
    with session_scope(engine, read_only=True) as s:
        raw = s.scalar(select(EventRecord.raw).where(EventRecord.workspace_id == ws_id))
    assert raw is not None and json.loads(raw)["owner"] == "ZhuShengBen"


# --- the connection service -------------------------------------------------------------------


def test_secrets_are_sealed_and_validated(engine: Engine) -> None:
    ws_id = connect(engine)
    with session_scope(engine, read_only=True) as s:
        conn = s.scalar(select(WecomConnection).where(WecomConnection.workspace_id == ws_id))
        assert conn is not None
        stored = " ".join([conn.secret_sealed, conn.token_sealed, conn.aes_key_sealed])
        assert SECRET not in stored and TOKEN not in stored and AES not in stored
        assert all(v.startswith("enc:v1:") for v in stored.split())
        opened = service.secrets(s, ws_id)
        assert (opened.corp_id, opened.secret, opened.token, opened.encoding_aes_key) == (
            CORP,
            SECRET,
            TOKEN,
            AES,
        )
        assert opened.api_base == "https://qyapi.weixin.qq.com/cgi-bin/"
        assert SECRET not in repr(opened)
    bad = [
        {"corp_id": "corp1"},
        {"secret": "has space"},
        {"token": "ab"},
        {"token": "tok-en"},
        {"encoding_aes_key": AES[:-1]},
        {"encoding_aes_key": AES[:-1] + "!"},
    ]
    for change in bad:
        with pytest.raises(InvalidParameter), session_scope(engine) as s:
            values = {"corp_id": CORP, "secret": SECRET, "token": TOKEN, "encoding_aes_key": AES}
            values.update(change)
            service.connect(s, ws_id, **values)
    with session_scope(engine) as s:
        ws2 = get_or_create_workspace(s, "other").id
        with pytest.raises(NotFound):
            service.secrets(s, ws2)
        assert service.disconnect(s, ws_id) is True
        assert service.disconnect(s, ws_id) is False
    assert (
        service.callback_url("https://quanzi.example.com/", "acme")
        == "https://quanzi.example.com/hooks/wecom/acme"
    )


# --- the console page -------------------------------------------------------------------------


@pytest.fixture
def signed_in(engine: Engine) -> Iterator[Callable[[str], TestClient]]:
    clients: list[TestClient] = []
    app = create_app(engine)

    def make(role: str) -> TestClient:
        with session_scope(engine) as s:
            ws_id = get_or_create_workspace(s, "acme").id
            user = User(
                email=f"{role}@example.com", password_hash="!", display_name=role, created_at_us=1
            )
            s.add(user)
            s.flush()
            team.add_seat(s, ws_id, user, role)
            token = team.start_session(s, user, ws_id, "testclient", "pytest")
            s.flush()
            found = team.resolve_session(s, token)
            assert found is not None
            csrf = found[0].csrf_token
        c = TestClient(app)
        c.__enter__()
        clients.append(c)
        c.cookies.set(SESSION_COOKIE, token)
        c.csrf = csrf  # type: ignore[attr-defined]
        return c

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def test_console_connects_shows_the_callback_url_and_health(
    engine: Engine, signed_in: Callable[[str], TestClient]
) -> None:
    owner = signed_in("owner")
    page = owner.get("/w/acme/settings/wecom")
    assert page.status_code == 200
    assert "http://testserver/hooks/wecom/acme" in page.text
    form = {
        "csrf_token": owner.csrf,  # type: ignore[attr-defined]
        "corp_id": CORP,
        "secret": SECRET,
        "token": TOKEN,
        "encoding_aes_key": AES,
    }
    r = owner.post("/w/acme/settings/wecom", data=form, follow_redirects=False)
    assert r.status_code == 303
    shown = owner.get(r.headers["location"])
    assert shown.status_code == 200 and CORP in shown.text
    assert SECRET not in shown.text and TOKEN not in shown.text and AES not in shown.text
    assert "wecom-health" in shown.text
    with session_scope(engine) as s:
        ws_id = get_or_create_workspace(s, "acme").id
        service.record_error(s, ws_id, "groupchat/get: errcode 48002 (API not permitted)")
    assert "48002" in owner.get("/w/acme/settings/wecom").text
    # A bad value: the page again with the reason, nothing changed.
    bad = owner.post("/w/acme/settings/wecom", data={**form, "token": "x"})
    assert bad.status_code == 400 and "Token" in bad.text
    # Analysts and operators may not see or change it; no CSRF token, no change.
    assert signed_in("analyst").get("/w/acme/settings/wecom").status_code == 403
    operator = signed_in("operator")
    assert (
        operator.post(
            "/w/acme/settings/wecom",
            data={**form, "csrf_token": operator.csrf},  # type: ignore[attr-defined]
        ).status_code
        == 403
    )
    assert owner.post("/w/acme/settings/wecom/disconnect", data={}).status_code == 403
    r = owner.post(
        "/w/acme/settings/wecom/disconnect",
        data={"csrf_token": owner.csrf},  # type: ignore[attr-defined]
        follow_redirects=False,
    )
    assert r.status_code == 303
    with session_scope(engine, read_only=True) as s:
        assert service.connection(s, ws_id) is None
        actions = list(
            s.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.workspace_id == ws_id, AuditEntry.action.like("wecom.%"))
                .order_by(AuditEntry.id)
            )
        )
        assert actions == ["wecom.connected", "wecom.disconnected"]
        logged = " ".join(str(d) for d in s.scalars(select(AuditEntry.detail)))
        assert SECRET not in logged and TOKEN not in logged
