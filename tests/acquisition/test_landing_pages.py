"""Landing pages: publish renders once, visits know their version, leads are validated,
de-duplicated by phone, sealed, rate limited; garbage is a 400 in the visitor's language."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text

from quanzi.acquisition import landing
from quanzi.acquisition.models import LandingVisit, Lead
from quanzi.acquisition.writers import VISITS
from quanzi.core.workspaces.service import get_or_create_workspace, workspace_key
from quanzi.db.engine import session_scope
from quanzi.kit.errors import InvalidParameter
from quanzi.web.app import create_app

CONTENT: dict[str, Any] = {
    "headline": "0-3 岁育儿资料包免费领",
    "hook": "扫码进群，每周三专家直播答疑",
    "benefits": ["早教游戏 100 例", "辅食食谱"],
    "testimonials": ['<script>alert("x")</script> 很实用！'],
    "stock_left": 37,
    "fields": [{"key": "baby_age", "label": "宝宝月龄", "required": True}],
    "group_qr_url": "/static/favicon.svg",
    "consent_text": "我同意圈子按《隐私政策》使用我的手机号联系我（v1）",
}


@pytest.fixture(autouse=True)
def _fresh_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(landing, "PER_IP", landing.SlidingWindow(20, 600))
    monkeypatch.setattr(landing, "PER_PHONE", landing.SlidingWindow(5, 3600))


@pytest.fixture
def site(engine: Engine) -> Iterator[tuple[TestClient, int, str]]:
    with session_scope(engine) as s:
        ws_id = get_or_create_workspace(s, "default").id
        page = landing.create_page(s, ws_id, "育儿资料包", CONTENT, slug="baby-pack")
        landing.publish(s, ws_id, page.id, "owner@example.com")
    with TestClient(create_app(engine)) as client:
        yield client, ws_id, "baby-pack"


def _lead(client: TestClient, **form: str) -> Any:
    data = {"name": "王小花", "phone": "138 1234 5678", "consent": "1", "f_baby_age": "8个月"}
    data.update(form)
    return client.post("/p/baby-pack/lead?c=xhs_note", data=data)


def test_published_page_is_small_escaped_and_counts_visits(
    engine: Engine, site: tuple[TestClient, int, str]
) -> None:
    client, _ws_id, slug = site
    r = client.get(f"/p/{slug}?c=douyin_live", headers={"user-agent": "Mozilla/5.0 (iPhone)"})
    assert r.status_code == 200
    assert len(r.content) < 50_000
    assert "<script>" not in r.text and "&lt;script&gt;" in r.text
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "仅剩 37 份" in r.text
    VISITS.flush(engine)  # views are written in the background, every 0.2 s
    with session_scope(engine, read_only=True) as s:
        visit = s.scalar(select(LandingVisit))
        assert visit is not None
        assert (visit.channel, visit.ua_class) == ("douyin_live", "ios")
    assert client.get("/p/nope").status_code == 404


def test_a_lead_is_sealed_and_deduplicated_by_phone(
    engine: Engine, site: tuple[TestClient, int, str]
) -> None:
    client, ws_id, _slug = site
    assert _lead(client).status_code == 200
    r = _lead(client, phone="+86 13812345678", name="王小花妈妈")
    assert r.status_code == 200 and "提交成功" in r.text
    with session_scope(engine, read_only=True) as s:
        [lead] = s.scalars(select(Lead)).all()
        key = workspace_key(s, ws_id)
        assert lead.submissions == 2 and lead.channel == "xhs_note"
        assert key.open("phone", lead.phone_sealed) == "+8613812345678"
        assert key.open("name", lead.name_sealed or "") == "王小花妈妈"
        assert lead.consent_version == 1 and "隐私政策" in lead.consent_text
        raw = " ".join(str(v) for row in s.execute(text("SELECT * FROM leads")).all() for v in row)
    assert "13812345678" not in raw and "王小花" not in raw and "8个月" not in raw


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"phone": "12345"}, "手机号格式不正确"),
        ({"phone": "19912345678901"}, "手机号格式不正确"),
        ({"consent": ""}, "请先阅读并勾选同意条款"),
        ({"f_baby_age": ""}, "请填写"),
        ({"name": "x" * 31}, "称呼最多 30 个字"),
    ],
)
def test_bad_input_is_a_400_in_the_visitors_language_and_stores_nothing(
    engine: Engine, site: tuple[TestClient, int, str], form: dict[str, str], message: str
) -> None:
    client, _ws, _slug = site
    r = _lead(client, **form)
    assert r.status_code == 400 and message in r.text
    assert 'value="' in r.text  # what the visitor typed is kept in the form
    with session_scope(engine, read_only=True) as s:
        assert s.scalars(select(Lead)).all() == []


def test_honeypot_and_rate_limits(engine: Engine, site: tuple[TestClient, int, str]) -> None:
    client, _ws, _slug = site
    assert _lead(client, website="http://spam.example").status_code == 200
    with session_scope(engine, read_only=True) as s:
        assert s.scalars(select(Lead)).all() == []
    for _ in range(5):
        assert _lead(client).status_code == 200
    r = _lead(client)  # the sixth try of one phone within the hour
    assert r.status_code == 429 and "该手机号提交次数过多" in r.text


def test_a_version_is_kept_when_the_draft_changes(engine: Engine) -> None:
    with session_scope(engine) as s:
        ws_id = get_or_create_workspace(s, "default").id
        page = landing.create_page(s, ws_id, "p", CONTENT, slug="keep-me")
        v1 = landing.publish(s, ws_id, page.id, None)
        landing.save_draft(s, ws_id, page.id, {**CONTENT, "headline": "新标题"})
        assert "育儿资料包" in landing.published(s, "keep-me").html
        v2 = landing.publish(s, ws_id, page.id, None)
        assert (v1.version, v2.version) == (1, 2)
        assert "新标题" in landing.published(s, "keep-me").html
        landing.unpublish(s, ws_id, page.id)
        with pytest.raises(Exception, match="no longer published"):
            landing.published(s, "keep-me")


def test_bad_content_is_refused_naming_the_field(engine: Engine) -> None:
    with session_scope(engine) as s:
        ws_id = get_or_create_workspace(s, "default").id
        with pytest.raises(InvalidParameter, match="headline"):
            landing.create_page(s, ws_id, "p", {**CONTENT, "headline": ""})
        with pytest.raises(InvalidParameter, match="banner_url"):
            landing.create_page(s, ws_id, "p", {**CONTENT, "banner_url": "javascript:alert(1)"})
        with pytest.raises(InvalidParameter, match="slug"):
            landing.create_page(s, ws_id, "p", CONTENT, slug="Bad Slug")
