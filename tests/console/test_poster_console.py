"""Share posters in the console: templates with an uploaded background (audited), bad input
refused naming the field, a member's poster carrying their invite state (scoped like the member
page, cached), and the bounded, scoped, audited bulk download."""

from __future__ import annotations

import io
import os
import zipfile
from typing import Any

import pytest
import segno
from consolekit import LoginAs, Team
from fastapi.testclient import TestClient
from PIL import Image, ImageChops
from sqlalchemy import Engine, func, select

from quanzi.acquisition import channels, poster_templates, posters
from quanzi.acquisition.models import Media, PosterTemplate
from quanzi.acquisition.posters import HEIGHT, QR_SIZE, WIDTH
from quanzi.acquisition.states import member_state
from quanzi.core.members import service as members
from quanzi.core.workspaces.service import get_or_create_workspace
from quanzi.db.engine import session_scope
from quanzi.team.models import AuditEntry

needs_font = pytest.mark.skipif(
    not any(os.path.exists(p) for p in posters.FONT_PATHS) and os.environ.get("CI") != "true",
    reason="Debian's fonts-noto-cjk is not installed (scripts/test installs it)",
)


def png(size: tuple[int, int], color: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def make_code(engine: Engine, ws_id: int, channel: str = "poster") -> tuple[int, str]:
    with session_scope(engine) as s:
        code = channels.create_code(
            s,
            ws_id,
            name="会员海报",
            channel=channel,
            target_kind="link",
            target={"url": "https://example.com/join"},
        )
        s.flush()
        return code.id, code.code


def member_id(engine: Engine, ws_id: int, key: str) -> int:
    with session_scope(engine, read_only=True) as s:
        return members.find_member(s, ws_id, "wecom", key).id


def save(c: TestClient, data: dict[str, Any], files: dict[str, Any] | None = None) -> Any:
    return c.post(
        "/w/default/posters/save",
        data={"csrf_token": c.csrf, **data},  # type: ignore[attr-defined]
        files=files,
        follow_redirects=False,
    )


def audits(engine: Engine, action: str) -> list[dict[str, Any]]:
    with session_scope(engine, read_only=True) as s:
        q = select(AuditEntry.detail).where(AuditEntry.action == action).order_by(AuditEntry.id)
        return [dict(d or {}) for d in s.scalars(q)]


def templates(engine: Engine) -> list[PosterTemplate]:
    with session_scope(engine, read_only=True) as s:
        rows = list(s.scalars(select(PosterTemplate).order_by(PosterTemplate.id)))
        s.expunge_all()
        return rows


@needs_font
def test_owner_creates_and_edits_a_template_with_an_uploaded_background(
    engine: Engine, login_as: LoginAs, console_team: Team
) -> None:
    code_id, _code = make_code(engine, console_team.ws_id)
    c = login_as("owner")
    assert "新建海报模板" in c.get("/w/default/posters/edit").text
    r = save(
        c,
        {"name": "宝妈群海报", "copy": "扫码进群，领取育儿资料包", "channel_code_id": str(code_id)},
        {"background_file": ("bg.png", png((1500, 3000), "#ff0000"), "image/png")},
    )
    assert r.status_code == 303, r.text
    (tpl,) = templates(engine)
    assert (tpl.name, tpl.copy_text, tpl.channel_code_id) == (
        "宝妈群海报",
        "扫码进群，领取育儿资料包",
        code_id,
    )
    with session_scope(engine, read_only=True) as s:
        bg = s.get(Media, tpl.background_media_id)
        assert bg is not None and bg.purpose == "poster"
        assert (bg.width, bg.height) == (667, 1334)  # resized on upload to fit the poster
    assert audits(engine, "poster.created") == [{"name": "宝妈群海报"}]

    page = c.get("/w/default/posters")
    assert page.status_code == 200 and "宝妈群海报" in page.text and "分享海报" in page.text
    preview = c.get(f"/w/default/posters/{tpl.id}/preview.png")
    assert preview.headers["content-type"] == "image/png"
    img = opened(preview.content)
    assert img.size == (WIDTH, HEIGHT)
    red = img.getpixel((10, 10))
    assert isinstance(red, tuple) and red[0] > 240 and red[1] < 20  # the operator's background

    # Editing the copy is audited with what changed; saving unchanged audits nothing.
    form = {
        "id": str(tpl.id),
        "name": "宝妈群海报",
        "copy": "扫码进群，每周三晚直播答疑",
        "channel_code_id": str(code_id),
        "background_media_id": str(tpl.background_media_id),
    }
    assert save(c, form).status_code == 303
    assert save(c, form).status_code == 303
    assert audits(engine, "poster.updated") == [{"changed": ["copy_text"]}]
    assert templates(engine)[0].copy_text == "扫码进群，每周三晚直播答疑"


def test_bad_input_is_refused_naming_the_field_and_stores_nothing(
    engine: Engine, login_as: LoginAs, console_team: Team
) -> None:
    code_id, _code = make_code(engine, console_team.ws_id)
    with session_scope(engine) as s:
        other = get_or_create_workspace(s, "other").id
    foreign_id, _ = make_code(engine, other, "elsewhere")
    c = login_as("admin")
    good = {"name": "海报", "copy": "进群领福利", "channel_code_id": str(code_id)}
    cases = [
        ({**good, "copy": "长" * 81}, None, "文案：请填写 1-80 个字（现在 81 个）"),
        ({**good, "copy": "  "}, None, "文案"),
        ({**good, "name": ""}, None, "名称"),
        ({**good, "channel_code_id": ""}, None, "渠道活码：请选择海报二维码指向的活码"),
        ({**good, "channel_code_id": str(foreign_id)}, None, f"{foreign_id} 不是本工作区的活码"),
        ({**good, "channel_code_id": "abc"}, None, "不是编号"),
        ({**good, "background_media_id": "999"}, None, "背景图：图片 999 不在本工作区"),
        (good, {"background_file": ("x.png", b"not an image", "image/png")}, "背景图：不是"),
        ({**good, "id": "12345"}, None, "海报模板 12345 不存在"),
    ]
    for data, files, message in cases:
        r = save(c, data, files)
        assert r.status_code in (400, 404), (data, r.status_code)
        assert message in r.text, (data, r.text[-2000:])
    assert templates(engine) == []
    with session_scope(engine, read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(Media)) == 0
    # What was typed stays in the form.
    assert "进群领福利" in save(c, {**good, "name": ""}).text
    # Operators and analysts may look, not edit.
    for role in ("operator", "analyst"):
        r = save(login_as(role), good)
        assert r.status_code == 403
        assert login_as(role).get("/w/default/posters").status_code == 200
    assert templates(engine) == []


def _template(engine: Engine, ws_id: int) -> tuple[int, str]:
    code_id, code = make_code(engine, ws_id)
    with session_scope(engine) as s:
        tpl, _ = poster_templates.save_template(
            s, ws_id, None, poster_templates.TemplateFields("海报", "一起读书", code_id, None)
        )
        return tpl.id, code


def _qr(url: str) -> Image.Image:
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="png", scale=10, border=2)
    return opened(buf.getvalue()).resize((QR_SIZE, QR_SIZE), Image.Resampling.NEAREST)


@needs_font
def test_a_members_poster_carries_their_state_is_scoped_and_cached(
    engine: Engine, login_as: LoginAs, console_team: Team
) -> None:
    tpl_id, code = _template(engine, console_team.ws_id)
    m1 = member_id(engine, console_team.ws_id, "m1")
    m3 = member_id(engine, console_team.ws_id, "m3")  # in g2, not the operator's group
    admin = login_as("admin")
    assert f'/w/default/members/{m1}/poster"' in admin.get(f"/w/default/members/{m1}").text
    page = admin.get(f"/w/default/members/{m1}/poster")
    assert page.status_code == 200 and f"/members/{m1}/poster/{tpl_id}.png" in page.text
    r = admin.get(f"/w/default/members/{m1}/poster/{tpl_id}.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = opened(r.content)
    box = (WIDTH - 80 - QR_SIZE, HEIGHT - 80 - QR_SIZE, WIDTH - 80, HEIGHT - 80)
    url = f"http://testserver/c/{code}?m={member_state(m1)}"
    assert ImageChops.difference(img.crop(box), _qr(url)).getbbox() is None
    other = opened(admin.get(f"/w/default/members/{m3}/poster/{tpl_id}.png").content)
    assert ImageChops.difference(img, other).getbbox() is not None  # another name, another QR
    # Cached: rendered once, served again from the data directory.
    cached = list(posters.cache_dir().glob("*.png"))
    assert len(cached) == 2
    again = admin.get(f"/w/default/members/{m1}/poster/{tpl_id}.png?download=1")
    assert again.content == r.content
    assert (
        again.headers["content-disposition"] == f'attachment; filename="poster-{m1}-{tpl_id}.png"'
    )
    assert len(list(posters.cache_dir().glob("*.png"))) == 2

    operator = login_as("operator")
    assert operator.get(f"/w/default/members/{m1}/poster/{tpl_id}.png").status_code == 200
    assert operator.get(f"/w/default/members/{m3}/poster").status_code == 404
    assert operator.get(f"/w/default/members/{m3}/poster/{tpl_id}.png").status_code == 404
    assert admin.get(f"/w/default/members/{m1}/poster/99999.png").status_code == 404
    assert admin.get("/w/default/members/99999/poster").status_code == 404
    assert login_as("analyst").get(f"/w/default/members/{m1}/poster").status_code == 200


def test_a_member_page_without_templates_says_so(login_as: LoginAs, engine: Engine) -> None:
    m1 = member_id(engine, 1, "m1")
    r = login_as("owner").get(f"/w/default/members/{m1}/poster?template=5")
    assert r.status_code == 200 and "还没有海报模板" in r.text


@needs_font
def test_bulk_download_is_scoped_bounded_and_audited(
    engine: Engine, login_as: LoginAs, console_team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    tpl_id, _code = _template(engine, console_team.ws_id)
    ids = {k: member_id(engine, console_team.ws_id, k) for k in ("m1", "m2", "m3", "staff1")}

    def names(c: TestClient, query: str = "") -> set[str]:
        r = c.get(f"/w/default/posters/{tpl_id}/bulk.zip{query}")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
            for name in zf.namelist():
                assert opened(zf.read(name)).size == (WIDTH, HEIGHT)
            return set(zf.namelist())

    admin = login_as("admin")
    assert names(admin, "?staff=exclude") == {f"{ids[k]}.png" for k in ("m1", "m2", "m3")}
    assert names(admin, f"?group={console_team.other_groups[0]}") == {f"{ids['m3']}.png"}
    operator_zip = names(login_as("operator"), "?staff=exclude")
    assert f"{ids['m1']}.png" in operator_zip and f"{ids['m3']}.png" not in operator_zip
    assert login_as("analyst").get(f"/w/default/posters/{tpl_id}/bulk.zip").status_code == 403
    logged = audits(engine, "poster.bulk_download")
    assert logged[0] == {"members": 3, "filter": {"staff": "exclude"}}
    assert len(logged) == 3
    monkeypatch.setattr(poster_templates, "BULK_MAX", 2)
    r = admin.get(f"/w/default/posters/{tpl_id}/bulk.zip?staff=exclude")
    assert r.status_code == 400
    assert "成员：符合条件的有 3 人；请缩小范围到最多 2 人" in r.text
    assert len(audits(engine, "poster.bulk_download")) == 3  # a refusal exports nothing
