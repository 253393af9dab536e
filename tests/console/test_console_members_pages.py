"""Members pages: list, filters, scoping, bulk tagging, export, masking and reveal, escaping."""

from __future__ import annotations

import csv
import io
import re

from community import Community
from consolekit import LoginAs, Team
from openpyxl import load_workbook
from sqlalchemy import Engine, select

from quanzi.core.members.models import Member
from quanzi.core.tags import service as tags
from quanzi.db.engine import session_scope
from quanzi.team.models import AuditEntry

XSS = '"><img src=x onerror=alert(1)>'


def _keys(html: str) -> list[str]:
    return re.findall(r'<tr data-member="([^"]+)">', html)


def _member_id(engine: Engine, key: str) -> int:
    with session_scope(engine, read_only=True) as s:
        found = s.scalar(select(Member.id).where(Member.member_key == key))
        assert found is not None
        return found


def _audit(engine: Engine, action: str) -> list[AuditEntry]:
    with session_scope(engine, read_only=True) as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def _tag(engine: Engine, name: str = "高意向") -> int:
    with session_scope(engine) as s:
        group = tags.create_tag_group(s, 1, "意向")
        return tags.create_tag(s, 1, group.id, name).id


def test_list_filters_and_scope(engine: Engine, console_team: Team, login_as: LoginAs) -> None:
    owner = login_as("owner")
    assert sorted(_keys(owner.get("/w/default/members").text)) == ["m1", "m2", "m3", "staff1"]
    assert _keys(owner.get("/w/default/members?q=王小").text) == ["m1"]
    assert _keys(owner.get("/w/default/members?phone=13812345678").text) == ["m1"]
    assert _keys(owner.get("/w/default/members?phone=13900000000").text) == []
    assert _keys(owner.get("/w/default/members?channel=douyin").text) == ["m3"]
    assert "staff1" not in _keys(owner.get("/w/default/members?staff=exclude").text)
    assert _keys(owner.get("/w/default/members?from=2026-11-03&to=2026-11-30").text) == ["m3"]
    r = owner.get("/w/default/members?sort=name&desc=0")
    assert len(_keys(r.text)) == 4
    # The phone searched for is not written back into the page.
    assert "13812345678" not in owner.get("/w/default/members?phone=13812345678").text
    assert owner.get("/w/default/members?from=yesterday").status_code == 400
    operator = login_as("operator")
    assert sorted(_keys(operator.get("/w/default/members").text)) == ["m1", "m2", "staff1"]
    assert _keys(operator.get("/w/default/members?q=韩梅梅").text) == []
    assert operator.get(f"/w/default/members/{_member_id(engine, 'm3')}").status_code == 404


def test_bulk_tag_from_a_filter_tags_exactly_the_matches(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    tag = _tag(engine)
    c = login_as("admin")
    r = c.post(
        "/w/default/members/bulk-tag",
        data={
            "csrf_token": c.csrf,
            "action": "tag",
            "target": "all",
            "tag_ids": str(tag),
            "channel": "flyer",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and "done=tagged" in r.headers["location"]
    assert _keys(c.get(f"/w/default/members?tag={tag}").text) == ["m1"]
    entry = _audit(engine, "tag.tagged")[-1]
    assert entry.detail is not None and entry.detail["members"] == 1
    assert entry.detail["filter"] == {"channel": "flyer"}
    # Selected rows: only those that match the filter and are in scope count.
    m2, m3 = _member_id(engine, "m2"), _member_id(engine, "m3")
    op = login_as("operator")
    r = op.post(
        "/w/default/members/bulk-tag",
        data={
            "csrf_token": op.csrf,
            "action": "tag",
            "target": "selected",
            "tag_ids": str(tag),
            "member_ids": [str(m2), str(m3)],
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert sorted(_keys(c.get(f"/w/default/members?tag={tag}").text)) == ["m1", "m2"]  # not m3
    r = c.post(
        "/w/default/members/bulk-tag",
        data={"csrf_token": c.csrf, "action": "untag", "target": "all", "tag_ids": str(tag)},
    )
    assert r.status_code == 200 and "标签" in r.text
    assert _keys(c.get(f"/w/default/members?tag={tag}").text) == []


def test_analyst_is_masked_and_may_not_tag_export_or_reveal(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    tag = _tag(engine)
    c = login_as("analyst")
    m1 = _member_id(engine, "m1")
    page = c.get(f"/w/default/members/{m1}")
    assert page.status_code == 200
    assert "138****5678" in page.text and "13812345678" not in page.text
    assert "/reveal" not in page.text and "bulk-tag" not in c.get("/w/default/members").text
    assert "/members/export" not in c.get("/w/default/members").text
    data = {"csrf_token": c.csrf, "action": "tag", "target": "all", "tag_ids": str(tag)}
    assert c.post("/w/default/members/bulk-tag", data=data).status_code == 403
    assert c.get("/w/default/members/export?format=csv").status_code == 403
    r = c.post(f"/w/default/members/{m1}/reveal", data={"csrf_token": c.csrf, "field": "phone"})
    assert r.status_code == 403
    assert _audit(engine, "member.reveal") == []


def test_owner_reveal_is_audited_and_shown_once(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    c = login_as("owner")
    m1 = _member_id(engine, "m1")
    page = c.get(f"/w/default/members/{m1}")
    assert "138****5678" in page.text and "/reveal" in page.text
    r = c.post(f"/w/default/members/{m1}/reveal", data={"csrf_token": c.csrf, "field": "phone"})
    assert r.status_code == 200
    assert "13812345678" in r.text
    assert "13812345678" not in str(r.url) and "13812345678" not in str(c.cookies)
    entries = _audit(engine, "member.reveal")
    assert len(entries) == 1 and entries[0].detail is not None
    assert entries[0].detail["field"] == "phone"
    # Once: the next visit is masked again.
    again = c.get(f"/w/default/members/{m1}")
    assert "13812345678" not in again.text and "138****5678" in again.text
    # Without the CSRF token the reveal is refused.
    assert c.post(f"/w/default/members/{m1}/reveal", data={"field": "phone"}).status_code == 403


def test_export_masks_scopes_guards_formulas_and_is_audited(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    Community(engine).add(
        "member.joined",
        "2026-11-04T10:00:00+08:00",
        id="formula",
        group="g1",
        member="m9",
        name="=HYPERLINK(1)",
    )
    op = login_as("operator")
    r = op.get("/w/default/members/export?format=csv")
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    keys = {row[2] for row in rows[1:]}
    assert keys == {"m1", "m2", "m9", "staff1"}  # never m3 of g2
    assert "'=HYPERLINK(1)" in {row[3] for row in rows[1:]}
    phone = {row[2]: row[11] for row in rows[1:]}["m1"]
    assert phone == "138****5678"
    opened = op.get("/w/default/members/export?format=xlsx&personal=open&q=m1")
    sheet = load_workbook(io.BytesIO(opened.content)).active
    assert sheet is not None
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert "13812345678" in str(values[1][11])
    entries = _audit(engine, "members.export")
    assert [e.detail["rows"] for e in entries if e.detail] == [4, 1]
    assert [e.detail["personal"] for e in entries if e.detail] == ["masked", "open"]


def test_member_tags_and_erase(engine: Engine, console_team: Team, login_as: LoginAs) -> None:
    tag = _tag(engine, "VIP")
    c = login_as("owner")
    m1 = _member_id(engine, "m1")
    r = c.post(
        f"/w/default/members/{m1}/tags",
        data={"csrf_token": c.csrf, "action": "add", "tag_id": str(tag)},
    )
    assert r.status_code == 200 and '<span class="tag">VIP</span>' in r.text
    assert len(_audit(engine, "tag.added")) == 1
    c.post(
        f"/w/default/members/{m1}/tags",
        data={"csrf_token": c.csrf, "action": "remove", "tag_id": str(tag)},
    )
    assert len(_audit(engine, "tag.removed")) == 1
    assert '<span class="tag">VIP</span>' not in c.get(f"/w/default/members/{m1}").text
    op = login_as("operator")
    assert (
        op.post(f"/w/default/members/{m1}/erase", data={"csrf_token": op.csrf}).status_code == 403
    )
    r = c.post(f"/w/default/members/{m1}/erase", data={"csrf_token": c.csrf})
    assert r.status_code == 200
    assert "138****5678" not in r.text
    assert len(_audit(engine, "member.erase")) == 1
    assert _keys(c.get("/w/default/members?phone=13812345678").text) == []


def test_hostile_names_are_escaped_in_list_profile_and_invite_tree(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    Community(engine).add(
        "member.joined",
        "2026-11-04T12:00:00+08:00",
        id="xss-join",
        group="g1",
        member="evil",
        name=XSS,
        inviter="m1",
        via="invite",
    )
    c = login_as("owner")
    m1 = _member_id(engine, "m1")
    evil = _member_id(engine, "evil")
    for url in ("/w/default/members", f"/w/default/members/{m1}", f"/w/default/members/{evil}"):
        r = c.get(url)
        assert r.status_code == 200
        assert "<img src=x" not in r.text
        assert "&lt;img src=x onerror=alert(1)&gt;" in r.text or "‹img src=x" in r.text
    tree = c.get(f"/w/default/members/{m1}").text.split('data-testid="invite-tree"')[1]
    assert "&lt;img src=x onerror=alert(1)&gt;" in tree.split("</ul>")[0] or "&lt;img" in tree
