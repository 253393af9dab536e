"""Channel codes: validation, the public /c/<code> route, rotation with caps, QR images."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from quanzi.acquisition import channels as service
from quanzi.acquisition.models import ChannelRotation, ChannelVisit
from quanzi.core.workspaces.service import get_or_create_workspace
from quanzi.db.engine import session_scope
from quanzi.kit.errors import InvalidParameter
from quanzi.web.app import create_app

WECHAT_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) MicroMessenger/8.0.40"


def _ws(engine: Engine) -> int:
    with session_scope(engine) as s:
        return get_or_create_workspace(s, "default", "Asia/Shanghai").id


def _create(engine: Engine, ws: int, **kw: Any) -> tuple[int, str]:
    with session_scope(engine) as s:
        c = service.create_code(s, ws, **kw)
        s.flush()
        return c.id, c.code


def test_validation_names_the_field(engine: Engine) -> None:
    ws = _ws(engine)
    cases = [
        (
            {"channel": "x" * 31, "target_kind": "link", "target": {"url": "https://a.cn"}},
            "channel",
        ),
        ({"channel": "ok", "target_kind": "link", "target": {"url": "javascript:alert(1)"}}, "url"),
        ({"channel": "ok", "target_kind": "wecom_contact", "target": {"staff": []}}, "staff"),
        (
            {
                "channel": "ok",
                "target_kind": "wecom_contact",
                "target": {"staff": ["a"], "rotation": "x"},
            },
            "rotation",
        ),
        (
            {
                "channel": "ok",
                "target_kind": "wecom_group",
                "target": {"chat_ids": ["c"], "capacity": "0"},
            },
            "capacity",
        ),
        ({"channel": "ok", "target_kind": "poster", "target": {}}, "target_kind"),
    ]
    for kw, field in cases:
        with pytest.raises(InvalidParameter, match=f"^{field}:"):
            _create(engine, ws, name="n", **kw)
    _create(engine, ws, name="a", channel="dup", target_kind="link", target={"url": "http://a.cn"})
    with pytest.raises(InvalidParameter, match=r"^channel: .dup. is already used"):
        _create(
            engine, ws, name="b", channel="dup", target_kind="link", target={"url": "http://b.cn"}
        )


def test_ua_classes() -> None:
    assert service.ua_class(WECHAT_UA) == "wechat"
    assert service.ua_class("Mozilla/5.0 (iPhone) MicroMessenger/8 wxwork/4.1") == "wecom"
    assert service.ua_class("Mozilla/5.0 (Linux; Android 14)") == "android"
    assert service.ua_class("Mozilla/5.0 (Windows NT 10.0; Win64)") == "desktop"
    assert service.ua_class("Googlebot/2.1") == "bot"
    assert service.ua_class(None) == "other"


def test_link_redirects_and_records_scan_without_ip(engine: Engine) -> None:
    ws = _ws(engine)
    cid, slug = _create(
        engine,
        ws,
        name="Flyer",
        channel="flyer",
        target_kind="link",
        target={"url": "https://example.com/x"},
    )
    with TestClient(create_app(engine)) as c:
        r = c.get(f"/c/{slug}?s=qr", headers={"user-agent": WECHAT_UA}, follow_redirects=False)
        assert r.status_code == 302 and r.headers["location"] == "https://example.com/x"
        r = c.get(f"/c/{slug}", follow_redirects=False)
        assert r.status_code == 302
        assert c.get("/c/nope123").status_code == 404
    with session_scope(engine) as s:
        visits = s.scalars(select(ChannelVisit).order_by(ChannelVisit.id)).all()
        assert [(v.kind, v.ua_class, v.code_id) for v in visits] == [
            ("scan", "wechat", cid),
            ("visit", "other", cid),
        ]
        assert all(v.day > 0 for v in visits)
        service.update_code(s, ws, cid, active=False)
    with TestClient(create_app(engine)) as c:
        r = c.get(f"/c/{slug}", follow_redirects=False)
        assert r.status_code == 404 and "该活码已失效" in r.text  # visitors get Chinese by default


def test_landing_redirect(engine: Engine) -> None:
    ws = _ws(engine)
    _cid, slug = _create(
        engine, ws, name="H5", channel="h5", target_kind="landing", target={"page": "spring"}
    )
    with TestClient(create_app(engine)) as c:
        r = c.get(f"/c/{slug}", follow_redirects=False)
        assert r.headers["location"] == "/p/spring?c=h5"  # the channel key: a lead's channel


def test_rotation_round_robin_cap_and_fallback(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    ws = _ws(engine)
    _cid, slug = _create(
        engine,
        ws,
        name="Shop",
        channel="shop",
        target_kind="wecom_contact",
        target={"staff": "amy\nbob", "rotation": "round_robin", "daily_cap": 2},
    )
    with TestClient(create_app(engine)) as c:
        for _ in range(5):
            r = c.get(f"/c/{slug}")
            assert r.status_code == 200
        assert "尚未就绪" in r.text  # WeCom is not connected
        assert "<img" not in r.text
    with session_scope(engine) as s:
        got = [v.assigned for v in s.scalars(select(ChannelVisit).order_by(ChannelVisit.id))]
        counts = {r.assignee: r.count for r in s.scalars(select(ChannelRotation))}
    assert got[:4] == ["amy", "bob", "amy", "bob"]
    assert got[4] == "amy"  # both capped: the least loaded (first on a tie)
    assert counts == {"amy": 3, "bob": 2}
    assert "daily cap" in caplog.text


def test_least_loaded_and_group_capacity(engine: Engine) -> None:
    ws = _ws(engine)
    with session_scope(engine) as s:
        code = service.create_code(
            s,
            ws,
            name="L",
            channel="ll",
            target_kind="wecom_contact",
            target={"staff": ["a", "b", "c"], "rotation": "least_loaded"},
        )
        s.flush()
        first = service.record_visit(s, code, scan=False, user_agent="")
        assert first.assigned == "a"
    with session_scope(engine) as s:
        code = service.get_code(s, ws, code.id)
        seen = [service.record_visit(s, code, scan=False, user_agent="").assigned for _ in range(5)]
    assert seen == ["b", "c", "a", "b", "c"]  # the first visit went to a
    with session_scope(engine) as s:
        g = service.create_code(
            s,
            ws,
            name="G",
            channel="grp",
            target_kind="wecom_group",
            target={"chat_ids": ["full", "next"], "capacity": 1},
        )
        s.flush()
        sizes = service.group_sizes(s, ws, ["full", "next"])
        assert sizes == {"full": 0, "next": 0}
        assert service.record_visit(s, g, scan=True, user_agent="").assigned == "full"


def test_qr_images(engine: Engine) -> None:
    ws = _ws(engine)
    _cid, slug = _create(
        engine, ws, name="P", channel="poster", target_kind="link", target={"url": "https://a.cn"}
    )
    with TestClient(create_app(engine)) as c:
        svg = c.get(f"/c/{slug}/qr.svg")
        assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
        assert "max-age" in svg.headers["cache-control"] and b"<svg" in svg.content
        small = c.get(f"/c/{slug}/qr.png?scale=1")
        big = c.get(f"/c/{slug}/qr.png?scale=40")
        assert small.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(big.content) > len(small.content)
        assert c.get(f"/c/{slug}/qr.png?scale=41").status_code == 400
        assert c.get("/c/unknown1/qr.svg").status_code == 404
    import io

    from PIL import Image

    width = Image.open(io.BytesIO(big.content)).size[0]
    assert width >= 1000  # poster size at scale 40


@pytest.mark.parametrize(
    ("qr_code", "expected"),
    [
        ("http://p.qpic.cn/wwhead/abc/0", "http://p.qpic.cn/wwhead/abc/0"),  # contact way
        ("https://wework.qpic.cn/wwpic/abc/0", "https://wework.qpic.cn/wwpic/abc/0"),  # join way
        ("file:///etc/passwd", None),
        ("javascript:alert(1)", None),
    ],
)
def test_wecom_way_qr_urls_as_wecom_gives_them(
    engine: Engine, qr_code: str, expected: str | None
) -> None:
    from quanzi.connectors.models import ConnectorAction
    from quanzi.kit.clock import now_us

    ws = _ws(engine)
    with session_scope(engine) as s:
        code = service.create_code(
            s,
            ws,
            name="门店",
            channel="shop_qr",
            target_kind="wecom_contact",
            target={"staff": ["zhangsan"]},
        )
        action = ConnectorAction(
            workspace_id=ws,
            platform="wecom",
            kind="contact_way",
            idempotency_key=f"test:{qr_code}",
            payload={},
            state="done",
            result={"config_id": "cfg1", "qr_code": qr_code},
            created_at_us=now_us(),
            updated_at_us=now_us(),
        )
        s.add(action)
        s.flush()
        code.platform_ref = {"actions": {"zhangsan": action.id}}
        assert service.qr_image(s, code, "zhangsan") == expected
        assert service.qr_image(s, code, "lisi") is None
