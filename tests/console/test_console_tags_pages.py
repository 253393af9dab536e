"""Tags page: tag groups and tags with counts, create/rename/delete audited, errors in Chinese."""

from __future__ import annotations

import re

from consolekit import LoginAs, Team
from sqlalchemy import Engine, select

from quanzi.core.tags import service as tags
from quanzi.db.engine import session_scope
from quanzi.team.models import AuditEntry


def _actions(engine: Engine) -> list[str]:
    with session_scope(engine, read_only=True) as s:
        return list(s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("tag.%"))))


def _groups(engine: Engine) -> list[tags.TagGroupView]:
    with session_scope(engine, read_only=True) as s:
        return tags.list_tag_groups(s, 1)


def test_tag_crud_is_audited(engine: Engine, console_team: Team, login_as: LoginAs) -> None:
    c = login_as("operator")
    r = c.post(
        "/w/default/tags/groups",
        data={"csrf_token": c.csrf, "name": "购买意向"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    (g,) = _groups(engine)
    r = c.post(f"/w/default/tags/groups/{g.id}/tags", data={"csrf_token": c.csrf, "name": "高"})
    assert r.status_code == 200 and "已保存" in r.text
    (t,) = _groups(engine)[0].tags
    page = c.get("/w/default/tags").text
    assert f'href="/w/default/members?tag={t.id}"' in page
    c.post(f"/w/default/tags/{t.id}/rename", data={"csrf_token": c.csrf, "name": "很高"})
    c.post(f"/w/default/tags/groups/{g.id}/rename", data={"csrf_token": c.csrf, "name": "意向"})
    assert [(x.name, [y.name for y in x.tags]) for x in _groups(engine)] == [("意向", ["很高"])]
    c.post(f"/w/default/tags/{t.id}/delete", data={"csrf_token": c.csrf})
    assert _groups(engine)[0].tags == []
    c.post(f"/w/default/tags/groups/{g.id}/delete", data={"csrf_token": c.csrf})
    assert _groups(engine) == []
    assert _actions(engine) == [
        "tag.group_created",
        "tag.created",
        "tag.updated",
        "tag.group_updated",
        "tag.deleted",
        "tag.group_deleted",
    ]


def test_bad_names_answer_400_in_chinese(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    c = login_as("admin")
    c.post("/w/default/tags/groups", data={"csrf_token": c.csrf, "name": "渠道"})
    r = c.post("/w/default/tags/groups", data={"csrf_token": c.csrf, "name": "渠道"})
    assert r.status_code == 400 and "已存在名为" in r.text
    r = c.post("/w/default/tags/groups", data={"csrf_token": c.csrf, "name": "   "})
    assert r.status_code == 400 and "标签组名称须为 1–64 个字符" in r.text
    (g,) = _groups(engine)
    r = c.post(
        f"/w/default/tags/groups/{g.id}/tags", data={"csrf_token": c.csrf, "name": "长" * 65}
    )
    assert r.status_code == 400 and "标签名称须为 1–64 个字符" in r.text
    assert 'aria-invalid="true"' in r.text
    c.cookies.set("qz_lang", "en")
    r = c.post("/w/default/tags/groups", data={"csrf_token": c.csrf, "name": "渠道"})
    assert r.status_code == 400 and "already exists" in r.text
    assert len(_groups(engine)) == 1 and _groups(engine)[0].tags == []


def test_analyst_reads_but_may_not_change_and_csrf_is_required(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    admin = login_as("admin")
    admin.post("/w/default/tags/groups", data={"csrf_token": admin.csrf, "name": "<b>x</b>"})
    a = login_as("analyst")
    page = a.get("/w/default/tags")
    assert page.status_code == 200 and "&lt;b&gt;x&lt;/b&gt;" in page.text
    assert not re.search(r'<form method="post" action="/w/default/tags', page.text)
    assert (
        a.post("/w/default/tags/groups", data={"csrf_token": a.csrf, "name": "x"}).status_code
        == 403
    )
    assert admin.post("/w/default/tags/groups", data={"name": "y"}).status_code == 403
    assert [g.name for g in _groups(engine)] == ["<b>x</b>"]
