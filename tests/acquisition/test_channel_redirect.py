"""The public /c/<code>: link and landing targets answered from memory with the visit in the
visit log (kind, member ref, network and device digests), the cache following changes, and
garbage in the query never breaking a printed code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text

from quanzi.acquisition import channels
from quanzi.acquisition.models import ChannelVisit
from quanzi.acquisition.states import member_state
from quanzi.acquisition.writers import VISITS
from quanzi.core.workspaces.service import get_or_create_workspace, workspace_key
from quanzi.db.engine import session_scope
from quanzi.web.app import create_app

IP = "203.0.113.7"
UA = "Mozilla/5.0 (Linux; Android 14) MicroMessenger/8.0.40"


def _code(engine: Engine, **kw: Any) -> tuple[int, int, str]:
    with session_scope(engine) as s:
        ws = get_or_create_workspace(s, "default", "Asia/Shanghai").id
        code = channels.create_code(s, ws, name="Flyer", **kw)
        s.flush()
        return ws, code.id, code.code


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine), client=(IP, 1)) as c:
        yield c


def _visits(engine: Engine) -> list[ChannelVisit]:
    VISITS.flush(engine)
    with session_scope(engine, read_only=True) as s:
        return list(s.scalars(select(ChannelVisit).order_by(ChannelVisit.id)))


def test_link_and_landing_targets_redirect_and_log_the_visit(
    engine: Engine, client: TestClient
) -> None:
    ws, link_id, link = _code(
        engine, channel="flyer", target_kind="link", target={"url": "https://example.com/a?b=1"}
    )
    _ws, page_id, page = _code(
        engine, channel="live.douyin", target_kind="landing", target={"page": "spring"}
    )
    headers = {"user-agent": UA}
    r = client.get(f"/c/{link}?s=qr&m=m:1z", headers=headers, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (302, "https://example.com/a?b=1")
    r = client.get(f"/c/{page}", headers=headers, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (302, "/p/spring?c=live.douyin")
    visits = _visits(engine)
    with session_scope(engine, read_only=True) as s:
        key = workspace_key(s, ws)
    net = key.blind_index("network", "203.0.113.0/24")
    device = key.blind_index("device", f"203.0.113.0/24|{UA}")
    assert [(v.code_id, v.kind, v.ua_class, v.ref, v.assigned) for v in visits] == [
        (link_id, "scan", "wechat", "m:1z", None),
        (page_id, "visit", "wechat", None, None),
    ]
    assert all((v.net_digest, v.device_digest) == (net, device) for v in visits)
    assert all(v.day > 0 and v.workspace_id == ws for v in visits)


@pytest.mark.parametrize(
    ("query", "kind", "ref"),
    [
        ("?m=" + member_state(123456789), "visit", member_state(123456789)),
        ("?m=M:1Z", "visit", None),  # states are lower case
        ("?m=l:1z", "visit", None),  # a lead's state is no member's poster
        ("?m=flyer", "visit", None),  # a channel key
        ("?m=" + "m:" + "1" * 21, "visit", None),
        ("?m=" + "x" * 10_000, "visit", None),
        ("?m=%FF%00", "visit", None),
        ("?s=QR", "visit", None),
        ("?s=" + "q" * 5000, "visit", None),
        ("?s=qr&m=m:0", "scan", "m:0"),
    ],
)
def test_garbage_in_the_query_still_redirects(
    engine: Engine, client: TestClient, query: str, kind: str, ref: str | None
) -> None:
    _code(engine, channel="flyer", target_kind="link", target={"url": "https://example.com/"})
    [(_ws, _id, slug)] = [_code_of(engine)]
    r = client.get(f"/c/{slug}{query}", follow_redirects=False)
    assert r.status_code == 302
    [visit] = _visits(engine)
    assert (visit.kind, visit.ref) == (kind, ref)


def _code_of(engine: Engine) -> tuple[int, int, str]:
    with session_scope(engine, read_only=True) as s:
        code = s.scalars(select(channels.ChannelCode)).one()
        return code.workspace_id, code.id, code.code


def test_unknown_and_overlong_codes_are_404_pages(engine: Engine, client: TestClient) -> None:
    _code(engine, channel="flyer", target_kind="link", target={"url": "https://example.com/"})
    for path in ("/c/nope123", "/c/" + "a" * 300, "/c/%E4%BD%A0%E5%A5%BD", "/c/a%00b"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
        assert "该活码已失效" in r.text
    assert _visits(engine) == []


def test_a_deactivated_code_stops_at_once_in_this_process(
    engine: Engine, client: TestClient
) -> None:
    ws, cid, slug = _code(
        engine, channel="flyer", target_kind="link", target={"url": "https://example.com/"}
    )
    assert client.get(f"/c/{slug}", follow_redirects=False).status_code == 302
    with session_scope(engine) as s:
        channels.update_code(s, ws, cid, active=False)
    assert client.get(f"/c/{slug}", follow_redirects=False).status_code == 404
    with session_scope(engine) as s:
        channels.update_code(s, ws, cid, active=True, target={"url": "https://example.com/new"})
    r = client.get(f"/c/{slug}", follow_redirects=False)
    assert r.headers["location"] == "https://example.com/new"


def test_another_process_changing_a_code_shows_within_the_bound(
    engine: Engine, client: TestClient
) -> None:
    _ws, _cid, slug = _code(
        engine, channel="flyer", target_kind="link", target={"url": "https://example.com/"}
    )
    now = [50.0]
    channels.public_codes(engine).codes.clock = lambda: now[0]
    assert client.get(f"/c/{slug}", follow_redirects=False).status_code == 302
    with engine.begin() as conn:  # as another web process (or the console elsewhere) would
        conn.execute(text("UPDATE channel_codes SET active = :no"), {"no": False})
    now[0] += channels.CODE_FRESH_S * 0.9
    assert client.get(f"/c/{slug}", follow_redirects=False).status_code == 302
    now[0] += channels.CODE_FRESH_S * 0.1
    assert client.get(f"/c/{slug}", follow_redirects=False).status_code == 404


def test_a_rotating_code_stores_digests_and_ref_with_its_assignment(
    engine: Engine, client: TestClient
) -> None:
    ws, _cid, slug = _code(
        engine,
        channel="shop",
        target_kind="wecom_contact",
        target={"staff": ["amy", "bob"], "rotation": "round_robin"},
    )
    with VISITS.held():  # written in the request's own transaction, not by the visit log
        for _ in range(2):
            r = client.get(f"/c/{slug}?m=m:2", headers={"user-agent": UA})
            assert r.status_code == 200
        with session_scope(engine, read_only=True) as s:
            visits = s.scalars(select(ChannelVisit).order_by(ChannelVisit.id)).all()
            key = workspace_key(s, ws)
    assert [(v.assigned, v.ref) for v in visits] == [("amy", "m:2"), ("bob", "m:2")]
    assert {v.net_digest for v in visits} == {key.blind_index("network", "203.0.113.0/24")}
    assert {v.device_digest for v in visits} == {key.blind_index("device", f"203.0.113.0/24|{UA}")}


def test_member_ref() -> None:
    assert channels.member_ref("m:1z") == "m:1z"
    assert channels.member_ref(" m:1z ") == "m:1z"
    assert channels.member_ref("m:001z") == "m:1z"  # one member, one spelling
    assert channels.member_ref(None) is None and channels.member_ref("") is None
    assert channels.member_ref("l:1z") is None and channels.member_ref("flyer") is None
