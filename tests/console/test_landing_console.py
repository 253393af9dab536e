"""The landing-page console: the builder round trip with image uploads, preview, publish and
unpublish, versions, an A/B test served to different visitors with its results, and the leads
list (masked, reveal audited, exports audited); analysts read but do not edit."""

from __future__ import annotations

import csv
import io
import re
import struct
import zlib
from typing import Any

import pytest
from consolekit import LoginAs, Team
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine, func, select

from quanzi.acquisition import landing
from quanzi.acquisition.models import LandingPage, LandingPageVersion, LandingVisit, Lead, Media
from quanzi.core.members import service as members
from quanzi.db.engine import session_scope
from quanzi.team.models import AuditEntry


@pytest.fixture(autouse=True)
def _fresh_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(landing, "PER_IP", landing.SlidingWindow(50, 600))
    monkeypatch.setattr(landing, "PER_PHONE", landing.SlidingWindow(5, 3600))


def _jpeg(width: int, height: int) -> bytes:
    noise = Image.effect_noise((width, height), 40)
    grad = Image.linear_gradient("L").resize((width, height))
    img = Image.merge("RGB", (noise, grad, grad))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    out = io.BytesIO()
    img.save(out, "JPEG", quality=95, exif=exif)
    return out.getvalue()


def _png_alpha() -> bytes:
    img = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    img.paste((0, 0, 0, 255), (50, 50, 250, 250))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def _bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width×height pixels."""
    out = io.BytesIO()
    Image.new("L", (1, 1)).save(out, "PNG")
    data = bytearray(out.getvalue())
    at = data.index(b"IHDR")
    data[at + 4 : at + 12] = struct.pack(">II", width, height)
    data[at + 17 : at + 21] = struct.pack(">I", zlib.crc32(bytes(data[at : at + 17])))
    return bytes(data)


def _form(client: TestClient, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "csrf_token": client.csrf,  # type: ignore[attr-defined]
        "variant": "A",
        "headline": "0-3 岁育儿资料包免费领",
        "hook": "扫码进群，每周三专家直播答疑",
        "benefits": "早教游戏 100 例\n辅食食谱",
        "testimonials": "很实用！\n每天打卡，宝宝进步很大",
        "countdown_until": "2030-12-31T20:00",
        "stock_left": "37",
        "form": "1",
        "field_key_0": "baby_age",
        "field_label_0": "宝宝月龄",
        "field_required_0": "1",
        "cta": "立即领取",
        "thanks": "提交成功，扫码进群领取资料",
        "consent_text": "我同意圈子按《隐私政策》使用我的手机号联系我（v1）",
    }
    data.update(changes)
    return data


def _create(client: TestClient, slug: str = "baby-pack") -> int:
    r = client.post(
        "/w/default/landing/create",
        data={"csrf_token": client.csrf, "name": "育儿资料包", "slug": slug, "headline": "领"},  # type: ignore[attr-defined]
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    m = re.search(r"/landing/(\d+)/edit", r.headers["location"])
    assert m
    return int(m.group(1))


def _draft(engine: Engine, page_id: int) -> dict[str, Any]:
    with session_scope(engine, read_only=True) as s:
        page = s.get(LandingPage, page_id)
        assert page is not None
        return dict(page.draft)


def _media_count(engine: Engine) -> int:
    with session_scope(engine, read_only=True) as s:
        return int(s.scalar(select(func.count()).select_from(Media)) or 0)


def _actions(engine: Engine) -> list[str]:
    with session_scope(engine, read_only=True) as s:
        return list(s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def test_builder_round_trip(engine: Engine, console_team: Team, login_as: LoginAs) -> None:
    owner = login_as("owner")
    page_id = _create(owner)
    assert owner.get(f"/w/default/landing/{page_id}/edit").status_code == 200
    before = _draft(engine, page_id)

    # Bad input: an empty headline and a too-short consent text. Nothing changes, the error
    # is in Chinese next to the form, and what was typed stays.
    r = owner.post(
        f"/w/default/landing/{page_id}/save",
        data=_form(owner, headline="", hook="我打的钩子文字"),
        files={"banner_file": ("banner.jpg", _jpeg(2400, 1600), "image/jpeg")},
    )
    assert r.status_code == 400
    assert "主标题" in r.text and "不能为空" in r.text
    assert 'aria-invalid="true"' in r.text and "我打的钩子文字" in r.text
    assert _draft(engine, page_id) == before and _media_count(engine) == 0
    r = owner.post(
        f"/w/default/landing/{page_id}/save",
        data=_form(owner, stock_left="很多", field_key_1="Bad Key", field_label_1="x"),
    )
    assert r.status_code == 400 and "自定义表单项" in r.text
    assert _draft(engine, page_id) == before

    # A good save with a big banner, a transparent group QR and a check-in screenshot.
    big = _jpeg(2400, 1600)
    r = owner.post(
        f"/w/default/landing/{page_id}/save",
        data=_form(owner),
        files=[
            ("banner_file", ("banner.jpg", big, "image/jpeg")),
            ("qr_file", ("qr.png", _png_alpha(), "image/png")),
            ("proof_files", ("checkin.jpg", _jpeg(800, 1400), "image/jpeg")),
        ],
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    draft = _draft(engine, page_id)
    assert draft["headline"] == "0-3 岁育儿资料包免费领" and draft["stock_left"] == 37
    assert draft["fields"] == [{"key": "baby_age", "label": "宝宝月龄", "required": True}]
    assert draft["banner_url"].startswith("/m/") and draft["group_qr_url"].endswith(".png")
    assert len(draft["proof_images"]) == 1
    with session_scope(engine, read_only=True) as s:
        banner = s.scalar(select(Media).where(Media.purpose == "banner"))
        assert banner is not None and banner.width == 1080 and banner.height == 720
        assert banner.size < len(big) // 5 and b"PhoneMaker" not in banner.data
    # The builder shows the stored choices again.
    page = owner.get(f"/w/default/landing/{page_id}/edit")
    assert draft["banner_url"] in page.text and "宝宝月龄" in page.text

    # Preview: the draft as the public page, the public CSP, and a form that cannot submit.
    r = owner.get(f"/w/default/landing/{page_id}/preview")
    assert r.status_code == 200 and "0-3 岁育儿资料包免费领" in r.text and "仅剩 37 份" in r.text
    assert "form-action 'none'" in r.headers["content-security-policy"]
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert owner.get("/p/baby-pack").status_code == 404  # not published yet

    r = owner.post(
        f"/w/default/landing/{page_id}/publish",
        data={"csrf_token": owner.csrf, "variant": "A"},  # type: ignore[attr-defined]
        follow_redirects=False,
    )
    assert r.status_code == 303
    public = owner.get("/p/baby-pack")
    assert public.status_code == 200 and draft["banner_url"] in public.text
    assert draft["proof_images"][0] in public.text
    image = owner.get(draft["banner_url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"

    r = owner.post(
        f"/w/default/landing/{page_id}/unpublish",
        data={"csrf_token": owner.csrf},  # type: ignore[attr-defined]
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert owner.get("/p/baby-pack").status_code == 404
    detail = owner.get(f"/w/default/landing/{page_id}")
    assert detail.status_code == 200 and 'data-version="1"' in detail.text
    listing = owner.get("/w/default/landing")
    assert re.search(r'data-page="baby-pack">.*?已下线', listing.text, re.S)
    with session_scope(engine, read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(LandingPageVersion)) == 1
    acts = _actions(engine)
    for action in ("landing.created", "landing.saved", "landing.published", "landing.unpublished"):
        assert action in acts
    assert acts.count("landing.saved") == 1  # the refused saves left no trace


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"MZ\x90\x00 not an image at all", "不是 JPEG"),
        (b"\xff\xd8\xff" + b"\0" * (10 * 1024 * 1024 + 10), "10 MB"),
        (_bomb(20_000, 20_000), "像素"),
    ],
)
def test_bad_uploads_are_refused_and_nothing_is_stored(
    engine: Engine, console_team: Team, login_as: LoginAs, data: bytes, message: str
) -> None:
    owner = login_as("owner")
    page_id = _create(owner)
    before = _draft(engine, page_id)
    r = owner.post(
        f"/w/default/landing/{page_id}/save",
        data=_form(owner),
        files=[
            ("proof_files", ("ok.jpg", _jpeg(200, 200), "image/jpeg")),
            ("banner_file", ("evil.jpg", data, "image/jpeg")),
        ],
    )
    assert r.status_code == 400 and message in r.text and "头图" in r.text
    assert _media_count(engine) == 0 and _draft(engine, page_id) == before


def test_ab_variants_are_served_to_different_visitors_and_compared(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    owner = login_as("owner")
    page_id = _create(owner, "ab-page")
    csrf = owner.csrf  # type: ignore[attr-defined]
    url = f"/w/default/landing/{page_id}"
    assert owner.post(f"{url}/save", data=_form(owner), follow_redirects=False).status_code == 303
    owner.post(f"{url}/publish", data={"csrf_token": csrf, "variant": "A"})
    # Traffic to B before B is published is refused.
    assert owner.post(f"{url}/split", data={"csrf_token": csrf, "split": "50"}).status_code == 400
    r = owner.post(f"{url}/variant-b", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and "variant=B" in r.headers["location"]
    assert "育儿资料包免费领" in owner.get(f"{url}/edit?variant=B").text  # copied from A
    r = owner.post(
        f"{url}/save",
        data=_form(owner, variant="B", headline="B 版：限时免费领"),
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert _draft(engine, page_id)["headline"] == "0-3 岁育儿资料包免费领"  # A untouched
    owner.post(f"{url}/publish", data={"csrf_token": csrf, "variant": "B"})
    assert owner.post(f"{url}/split", data={"csrf_token": csrf, "split": "abc"}).status_code == 400
    r = owner.post(f"{url}/split", data={"csrf_token": csrf, "split": "50"}, follow_redirects=False)
    assert r.status_code == 303

    served: list[str] = []  # the variant of every request, repeats included
    with TestClient(owner.app) as visitor:
        for i in range(40):
            visitor.cookies.clear()
            visitor.cookies.set("qzv", f"visitor-{i:04d}-abcdefgh")
            html = visitor.get("/p/ab-page").text
            served.append("B" if "B 版：限时免费领" in html else "A")
            if i % 10 == 0:  # the same visitor keeps their variant
                again = visitor.get("/p/ab-page").text
                served.append("B" if "B 版：限时免费领" in again else "A")
                assert served[-1] == served[-2]
    assert served.count("A") > 5 and served.count("B") > 5
    with session_scope(engine, read_only=True) as s:
        by_variant = dict(
            s.execute(
                select(LandingPageVersion.variant, func.count())
                .join(LandingVisit, LandingVisit.version_id == LandingPageVersion.id)
                .group_by(LandingPageVersion.variant)
            ).all()
        )
    assert by_variant == {"A": served.count("A"), "B": served.count("B")}

    page = owner.get(url)
    assert page.status_code == 200
    results = re.search(r'data-testid="ab-results">(.*?)</section>', page.text, re.S)
    assert results is not None
    assert 'data-variant="A"' in results.group(1) and 'data-variant="B"' in results.group(1)
    assert "尚无结论" in results.group(1)  # fewer than 100 views each
    listing = owner.get("/w/default/landing").text
    assert "B 占 50%" in listing

    r = owner.post(f"{url}/end-test", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    with TestClient(owner.app) as visitor:
        for i in range(10):
            visitor.cookies.set("qzv", f"visitor-{i:04d}-abcdefgh")
            assert "B 版：限时免费领" not in visitor.get("/p/ab-page").text
    assert owner.get(url).status_code == 200  # B's figures are kept and still shown
    for action in ("landing.variant_created", "landing.split", "landing.test_ended"):
        assert action in _actions(engine)


def _lead_on_public_page(owner: TestClient, engine: Engine) -> int:
    page_id = _create(owner, "lead-page")
    csrf = owner.csrf  # type: ignore[attr-defined]
    owner.post(f"/w/default/landing/{page_id}/save", data=_form(owner))
    owner.post(f"/w/default/landing/{page_id}/publish", data={"csrf_token": csrf, "variant": "A"})
    with TestClient(owner.app) as visitor:
        form = {"name": "赵小雨", "phone": "186 1234 5678", "consent": "1", "f_baby_age": "8个月"}
        r = visitor.post("/p/lead-page/lead?c=xhs_note", data={**form, "phone": "12345"})
        assert r.status_code == 400
        assert visitor.post("/p/lead-page/lead?c=xhs_note", data=form).status_code == 200
    with session_scope(engine, read_only=True) as s:
        lead = s.scalar(select(Lead))
        assert lead is not None
        return lead.id


def test_leads_are_masked_revealed_with_an_audit_and_exported(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    owner = login_as("owner")
    lead_id = _lead_on_public_page(owner, engine)
    analyst = login_as("analyst")
    listing = analyst.get("/w/default/leads")
    assert listing.status_code == 200
    assert "186****5678" in listing.text and "赵**" in listing.text
    assert "18612345678" not in listing.text and "赵小雨" not in listing.text
    assert "xhs_note" in listing.text and "尚未关联" in listing.text
    detail = analyst.get(f"/w/default/leads/{lead_id}")
    assert "隐私政策" in detail.text and "8个月" not in detail.text
    assert "/reveal" not in detail.text  # analysts have no Show button
    r = analyst.post(
        f"/w/default/leads/{lead_id}/reveal",
        data={"csrf_token": analyst.csrf, "field": "phone"},  # type: ignore[attr-defined]
    )
    assert r.status_code == 403
    assert analyst.get("/w/default/leads/export?format=csv").status_code == 403

    r = owner.post(
        f"/w/default/leads/{lead_id}/reveal",
        data={"csrf_token": owner.csrf, "field": "phone"},  # type: ignore[attr-defined]
    )
    assert r.status_code == 200 and "+8618612345678" in r.text
    r = owner.post(
        f"/w/default/leads/{lead_id}/reveal",
        data={"csrf_token": owner.csrf, "field": "fields"},  # type: ignore[attr-defined]
    )
    assert "8个月" in r.text
    with session_scope(engine, read_only=True) as s:
        reveals = s.scalars(select(AuditEntry).where(AuditEntry.action == "lead.reveal")).all()
        assert [e.detail["field"] for e in reveals] == ["phone", "fields"]  # type: ignore[index]

    # The operator exports masked; the owner asks for the numbers, and both are audited.
    operator = login_as("operator")
    r = operator.get("/w/default/leads/export?format=csv&channel=xhs_note")
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert len(rows) == 2 and "186****5678" in rows[1] and "赵**" in rows[1]
    assert "8个月" not in r.text and "18612345678" not in r.text
    empty = operator.get("/w/default/leads/export?format=csv&channel=douyin")
    assert len(list(csv.reader(io.StringIO(empty.content.decode("utf-8-sig"))))) == 1
    r = owner.get("/w/default/leads/export?format=xlsx&personal=open")
    assert r.status_code == 200 and r.content[:2] == b"PK"
    r = owner.get("/w/default/leads/export?format=csv&personal=open")
    assert "+8618612345678" in r.content.decode("utf-8-sig")
    with session_scope(engine, read_only=True) as s:
        exports = s.scalars(select(AuditEntry).where(AuditEntry.action == "leads.export")).all()
        shown = [(e.detail["personal"], e.detail["rows"]) for e in exports]  # type: ignore[index]
    assert shown == [("masked", 1), ("masked", 0), ("open", 1), ("open", 1)]
    assert owner.get("/w/default/leads/export?format=pdf").status_code == 400


def test_linked_leads_show_their_member_and_filter(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    owner = login_as("owner")
    lead_id = _lead_on_public_page(owner, engine)
    assert f'data-lead="{lead_id}"' not in owner.get("/w/default/leads?linked=yes").text
    with session_scope(engine) as s:
        m1 = members.find_member(s, console_team.ws_id, "wecom", "m1")
        lead = s.get(Lead, lead_id)
        assert lead is not None
        lead.member_id, lead.linked_by = m1.id, "phone"
        m1_id = m1.id
    linked = owner.get("/w/default/leads?linked=yes").text
    assert f'data-lead="{lead_id}"' in linked and f"/w/default/members/{m1_id}" in linked
    assert f'data-lead="{lead_id}"' not in owner.get("/w/default/leads?linked=no").text
    assert f'data-lead="{lead_id}"' in owner.get("/w/default/leads?from=2020-01-01").text
    assert owner.get("/w/default/leads?from=yesterday").status_code == 400
    assert owner.get("/w/default/leads?linked=maybe").status_code == 400
    # An operator sees a member of their groups (m1 is in g1), not one outside them (m3).
    operator = login_as("operator")
    assert f"/w/default/members/{m1_id}" in operator.get("/w/default/leads").text
    with session_scope(engine) as s:
        m3 = members.find_member(s, console_team.ws_id, "wecom", "m3")
        m3_id, m3_name = m3.id, m3.name or ""
        lead = s.get(Lead, lead_id)
        assert lead is not None
        lead.member_id = m3_id
    theirs = operator.get("/w/default/leads").text
    assert f"/w/default/members/{m3_id}" not in theirs and m3_name not in theirs
    assert "你负责的群以外的成员" in theirs
    assert m3_name not in operator.get(f"/w/default/leads/{lead_id}").text
    assert f"/w/default/members/{m3_id}" in owner.get("/w/default/leads").text
    with session_scope(engine) as s:
        lead = s.get(Lead, lead_id)
        assert lead is not None
        lead.member_id = m1_id
    # The page's funnel counts the linked member's contact and join (m1 joined g1).
    detail = owner.get(f"/w/default/landing/{_page_of(engine, lead_id)}")
    funnel = re.search(r'data-testid="funnel">(.*?)</table>', detail.text, re.S)
    assert funnel is not None
    counts = re.findall(
        r'data-step="(\w+)"><td>[^<]*</td><td class="num">(\d+)</td>', funnel.group(1)
    )
    assert dict(counts) == {"view": "0", "lead": "1", "contact": "0", "join": "1"}


def _page_of(engine: Engine, lead_id: int) -> int:
    with session_scope(engine, read_only=True) as s:
        lead = s.get(Lead, lead_id)
        assert lead is not None and lead.page_id is not None
        return lead.page_id


def test_analysts_read_but_do_not_edit(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    owner = login_as("owner")
    page_id = _create(owner)
    analyst = login_as("analyst")
    csrf = analyst.csrf  # type: ignore[attr-defined]
    assert analyst.get("/w/default/landing").status_code == 200
    assert "新建落地页" not in analyst.get("/w/default/landing").text
    assert analyst.get(f"/w/default/landing/{page_id}").status_code == 200
    assert analyst.get(f"/w/default/landing/{page_id}/edit").status_code == 403
    r = analyst.post(
        "/w/default/landing/create", data={"csrf_token": csrf, "name": "x", "headline": "x"}
    )
    assert r.status_code == 403
    for action in ("save", "publish", "unpublish", "variant-b", "end-test"):
        assert (
            analyst.post(
                f"/w/default/landing/{page_id}/{action}", data={"csrf_token": csrf}
            ).status_code
            == 403
        )
    with session_scope(engine, read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(LandingPage)) == 1
        assert s.scalar(select(func.count()).select_from(LandingPageVersion)) == 0
    # Another workspace's page is not found, not forbidden.
    assert owner.get("/w/default/landing/99999").status_code == 404
    r = owner.post(
        "/w/default/landing/create",
        data={"csrf_token": owner.csrf, "name": "同名", "slug": "baby-pack", "headline": "x"},  # type: ignore[attr-defined]
    )
    assert r.status_code == 400 and "已被占用" in r.text and 'value="同名"' in r.text
