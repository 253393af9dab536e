"""Tag groups, tags and tagging members, on both stores."""

from __future__ import annotations

import pytest
from community import Community
from sqlalchemy import Engine, select

from quanzi.core.members.models import Member
from quanzi.core.tags import service as tags
from quanzi.db.engine import session_scope
from quanzi.kit.errors import InvalidParameter, NotFound

T0 = "2026-10-01T09:00:00+08:00"


def _members(c: Community, *keys: str) -> list[int]:
    for k in keys:
        c.add("member.joined", T0, group="g1", member=k)
    with session_scope(c.engine) as s:
        rows = s.execute(
            select(Member.member_key, Member.id).where(Member.workspace_id == c.ws_id)
        ).all()
    by_key = dict(rows)
    return [by_key[k] for k in keys]


def test_tag_groups_and_tags_lifecycle(engine: Engine) -> None:
    c = Community(engine)
    with session_scope(engine) as s:
        g = tags.create_tag_group(s, c.ws_id, "  意向 ")
        assert g.name == "意向"
        hot = tags.create_tag(s, c.ws_id, g.id, "高意向", color="red")
        cold = tags.create_tag(s, c.ws_id, g.id, "低意向")
        with pytest.raises(InvalidParameter, match="already exists"):
            tags.create_tag(s, c.ws_id, g.id, "高意向")
        with pytest.raises(InvalidParameter, match="already exists"):
            tags.create_tag_group(s, c.ws_id, "意向")
        with pytest.raises(InvalidParameter, match="1–64"):
            tags.create_tag(s, c.ws_id, g.id, "")
        with pytest.raises(InvalidParameter, match="1–64"):
            tags.create_tag(s, c.ws_id, g.id, "x" * 65)
        with pytest.raises(InvalidParameter, match="color"):
            tags.create_tag(s, c.ws_id, g.id, "ok", color="red; drop")
        tags.rename_tag(s, c.ws_id, cold.id, "观望", color="#00ff00")
        with pytest.raises(InvalidParameter, match="already exists"):
            tags.rename_tag(s, c.ws_id, cold.id, "高意向")
        tags.rename_tag(s, c.ws_id, hot.id, "高意向")  # its own name again is fine
        tags.rename_tag_group(s, c.ws_id, g.id, "购买意向")
        hot_id, cold_id, gid = hot.id, cold.id, g.id
    with session_scope(engine) as s:
        listed = tags.list_tag_groups(s, c.ws_id)
        assert [(x.name, [(t.name, t.color, t.members) for t in x.tags]) for x in listed] == [
            ("购买意向", [("观望", "#00ff00", 0), ("高意向", "red", 0)])
        ]
        tags.delete_tag(s, c.ws_id, cold_id)
        assert [t.id for t in tags.list_tag_groups(s, c.ws_id)[0].tags] == [hot_id]
        tags.delete_tag_group(s, c.ws_id, gid)
        assert tags.list_tag_groups(s, c.ws_id) == []


def test_tagging_is_idempotent_and_counted(engine: Engine) -> None:
    c = Community(engine)
    a, b, d = _members(c, "wm_a", "wm_b", "wm_d")
    with session_scope(engine) as s:
        g = tags.create_tag_group(s, c.ws_id, "宝宝月龄")
        t1 = tags.create_tag(s, c.ws_id, g.id, "0-6月").id
        t2 = tags.create_tag(s, c.ws_id, g.id, "6-12月").id
    with session_scope(engine) as s:
        assert tags.tag_members(s, c.ws_id, [a, b], [t1, t2], by_user_id=None) == 4
        assert tags.tag_members(s, c.ws_id, [a, b, d], [t1], by_user_id=None) == 1
        assert tags.tag_members(s, c.ws_id, [a], [t1], by_user_id=None) == 0
    with session_scope(engine) as s:
        counts = {t.name: t.members for t in tags.list_tag_groups(s, c.ws_id)[0].tags}
        assert counts == {"0-6月": 3, "6-12月": 2}
        on = tags.tags_of_members(s, c.ws_id, [a, b, d])
        assert {m: [t.name for t in ts] for m, ts in on.items()} == {
            a: ["0-6月", "6-12月"],
            b: ["0-6月", "6-12月"],
            d: ["0-6月"],
        }
        assert tags.untag_members(s, c.ws_id, [a, d], [t1]) == 2
        assert tags.untag_members(s, c.ws_id, [a, d], [t1]) == 0
    with session_scope(engine) as s:
        assert {
            m: [t.name for t in ts] for m, ts in tags.tags_of_members(s, c.ws_id, [a, d]).items()
        } == {a: ["6-12月"]}


def test_other_workspaces_ids_are_not_found(engine: Engine) -> None:
    mine, theirs = Community(engine, "mine"), Community(engine, "theirs")
    (their_member,) = _members(theirs, "wm_x")
    (my_member,) = _members(mine, "wm_y")
    with session_scope(engine) as s:
        their_group = tags.create_tag_group(s, theirs.ws_id, "外部")
        their_tag = tags.create_tag(s, theirs.ws_id, their_group.id, "外部标签")
        my_tag = tags.create_tag(
            s, mine.ws_id, tags.create_tag_group(s, mine.ws_id, "内部").id, "t"
        )
        with pytest.raises(NotFound):
            tags.rename_tag_group(s, mine.ws_id, their_group.id, "x")
        with pytest.raises(NotFound):
            tags.create_tag(s, mine.ws_id, their_group.id, "x")
        with pytest.raises(NotFound):
            tags.delete_tag(s, mine.ws_id, their_tag.id)
        with pytest.raises(NotFound):
            tags.tag_members(s, mine.ws_id, [my_member], [their_tag.id], by_user_id=None)
        # Another workspace's member is passed over, not tagged.
        assert (
            tags.tag_members(s, mine.ws_id, [my_member, their_member], [my_tag.id], by_user_id=None)
            == 1
        )
        assert tags.tags_of_members(s, mine.ws_id, [their_member]) == {}
