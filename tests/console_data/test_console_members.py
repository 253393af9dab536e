"""The console's member pages: filters, sorting, paging, scoping, profile, invite tree."""

from __future__ import annotations

from datetime import date

import pytest
from community import Community, line
from sqlalchemy import Engine, select, update

from quanzi.core.groups.models import Group
from quanzi.core.members import service as ms
from quanzi.core.members.models import Member
from quanzi.core.members.personal import phone_digest
from quanzi.core.tags import service as tags
from quanzi.core.workspaces.service import workspace_key
from quanzi.db.engine import session_scope
from quanzi.kit.clock import LocalCalendar, day_date, day_number
from quanzi.kit.errors import InvalidParameter, NotFound

CAL = LocalCalendar("Asia/Shanghai")
D = day_number(date(2026, 11, 20))


def ts(day: int, hm: str = "10:00") -> str:
    return f"{day_date(day).isoformat()}T{hm}:00+08:00"


def _community(engine: Engine) -> tuple[Community, dict[str, int], dict[str, int]]:
    """a invites b (g1), b invites c (g1), c invites a back in g2 (a cycle); d joins g2 by
    a channel and leaves; s is staff in g1; a posts in g1 and g2; a pays an order."""
    c = Community(engine)
    ev = [
        ("member.joined", D - 30, dict(group="g1", member="s", is_staff=True, name="客服")),
        ("member.joined", D - 20, dict(group="g1", member="a", name="小李", channel="douyin")),
        (
            "member.joined",
            D - 19,
            dict(group="g1", member="b", name="Lily", inviter="a", via="invite"),
        ),
        (
            "member.joined",
            D - 18,
            dict(group="g1", member="c", name="王五", inviter="b", via="invite"),
        ),
        ("member.joined", D - 10, dict(group="g2", member="a", inviter="c", via="invite")),
        ("member.joined", D - 5, dict(group="g2", member="d", name="赵六", channel="xhs")),
        ("member.left", D - 4, dict(group="g2", member="d", via="removed", by="s")),
        ("message.posted", D - 1, dict(group="g1", member="a")),
        ("message.posted", D - 1, dict(group="g1", member="a")),
        ("message.posted", D - 2, dict(group="g2", member="a")),
        ("message.posted", D - 40 + 5, dict(group="g1", member="b")),
        ("order.paid", D - 3, dict(order="o1", member="a", amount=19900)),
        ("order.refunded", D - 2, dict(order="o1", amount=5000)),
        ("contact.added", D - 15, dict(member="a", staff="s")),
        ("profile.updated", D - 1, dict(member="a", phone="13812345678", city="上海")),
    ]
    lines = [
        line(id=f"e{i}", type=t, ts=ts(day), platform="wecom", **f)
        for i, (t, day, f) in enumerate(ev)
    ]
    rep = c.ingest(lines)
    assert not rep.refused, rep.refused
    with session_scope(engine) as s:
        members = dict(
            s.execute(
                select(Member.member_key, Member.id).where(Member.workspace_id == c.ws_id)
            ).all()
        )
        grps = dict(
            s.execute(select(Group.group_key, Group.id).where(Group.workspace_id == c.ws_id)).all()
        )
        a = s.get(Member, members["a"])
        assert a is not None
        if a.phone_digest is None:  # until ingest fills it
            digest = phone_digest(workspace_key(s, c.ws_id), "13812345678")
            s.execute(update(Member).where(Member.id == a.id).values(phone_digest=digest))
    return c, members, grps


def _keys(page: ms.MemberPage) -> list[str]:
    return [r.key for r in page.rows]


def test_filters_sorting_and_paging(engine: Engine) -> None:
    c, m, g = _community(engine)
    with session_scope(engine) as s:
        tg = tags.create_tag_group(s, c.ws_id, "意向")
        hot = tags.create_tag(s, c.ws_id, tg.id, "高").id
        vip = tags.create_tag(s, c.ws_id, tg.id, "VIP").id
        tags.tag_members(s, c.ws_id, [m["a"], m["b"]], [hot], by_user_id=None)
        tags.tag_members(s, c.ws_id, [m["a"]], [vip], by_user_id=None)
    with session_scope(engine) as s:

        def find(**kw: object) -> ms.MemberPage:
            opts = {k: kw.pop(k) for k in ("sort", "desc", "page", "per_page") if k in kw}
            return ms.search_members(
                s, c.ws_id, ms.MemberFilter(**kw), group_ids=None, today_day=D, **opts
            )  # type: ignore[arg-type]

        assert _keys(find()) == ["d", "c", "b", "a", "s"]  # newest first join first
        assert _keys(find(sort="first_join", desc=False)) == ["s", "a", "b", "c", "d"]
        assert _keys(find(q="li")) == ["b"]  # name, case-insensitive ("Lily")
        assert _keys(find(q="c")) == ["c"]  # exact member id
        assert _keys(find(q=str(m["d"]))) == ["d"]  # row id
        assert _keys(find(phone="+86 138 1234 5678")) == ["a"]
        assert _keys(find(tag_ids=(hot,))) == ["b", "a"]
        assert _keys(find(tag_ids=(hot, vip))) == ["a"]
        assert _keys(find(group_id=g["g2"])) == ["a"]  # d left g2
        assert _keys(find(channel="xhs")) == ["d"]
        assert _keys(find(staff="only")) == ["s"]
        assert "s" not in _keys(find(staff="exclude"))
        assert _keys(find(joined_from=D - 19, joined_to=D - 18)) == ["c", "b"]
        assert _keys(find(sort="messages_30d"))[:1] == ["a"]
        assert _keys(find(sort="last_active"))[:2] == ["a", "b"]
        p = find(per_page=2, page=3)
        assert _keys(p) == ["s"] and (p.total, p.pages, p.total_capped) == (5, 3, False)
        row = find(q="小李").rows[0]
        assert (row.groups_now, row.messages_30d, row.last_active_day) == (2, 3, D - 1)
        assert [t[1] for t in row.tags] == ["VIP", "高"]
        assert sorted(
            ms.member_ids_matching(s, c.ws_id, ms.MemberFilter(tag_ids=(hot,)), group_ids=None)
        ) == sorted([m["a"], m["b"]])
        exported = list(
            ms.export_rows(s, c.ws_id, ms.MemberFilter(q="小李"), group_ids=None, today_day=D)
        )
        assert len(exported) == 1 and exported[0]["key"] == "a" and exported[0]["phone"] is not None
        assert exported[0]["tags"] == ["VIP", "高"] and exported[0]["unionid"] is None


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"filt": ms.MemberFilter(staff="maybe")}, "staff"),
        ({"filt": ms.MemberFilter(joined_from=D, joined_to=D - 1)}, "joined_from"),
        ({"filt": ms.MemberFilter(phone="not a phone")}, "phone"),
        ({"sort": "age"}, "sort"),
        ({"page": 0}, "page"),
    ],
)
def test_bad_parameters(engine: Engine, kw: dict[str, object], name: str) -> None:
    c = Community(engine)
    filt = kw.get("filt", ms.MemberFilter())
    rest = {k: v for k, v in kw.items() if k != "filt"}
    with session_scope(engine) as s, pytest.raises(InvalidParameter, match=name):
        ms.search_members(s, c.ws_id, filt, group_ids=None, today_day=D, **rest)  # type: ignore[arg-type]


def test_scoping(engine: Engine) -> None:
    c, m, g = _community(engine)
    only_g2 = frozenset({g["g2"]})
    with session_scope(engine) as s:
        page = ms.search_members(s, c.ws_id, ms.MemberFilter(), group_ids=only_g2, today_day=D)
        assert _keys(page) == ["d", "a"]  # d left g2 but was in it
        a = page.rows[1]
        assert (a.groups_now, a.messages_30d) == (1, 1)  # only g2's facts
        with pytest.raises(NotFound):
            ms.member_profile(s, c.ws_id, CAL, m["b"], group_ids=only_g2)
        with pytest.raises(NotFound):
            ms.invite_tree(s, c.ws_id, m["b"], group_ids=only_g2)
        prof = ms.member_profile(s, c.ws_id, CAL, m["a"], group_ids=only_g2, today_day=D)
        assert [gr.key for gr in prof.groups] == ["g2"]
        assert {e.group_id for e in prof.timeline if e.group_id is not None} == {g["g2"]}
        assert sum(w.messages for w in prof.weeks) == 1
        with pytest.raises(NotFound):  # another workspace's member
            ms.member_profile(s, c.ws_id + 1, CAL, m["a"], group_ids=None)


def test_profile(engine: Engine) -> None:
    c, m, g = _community(engine)
    with session_scope(engine) as s:
        p = ms.member_profile(s, c.ws_id, CAL, m["a"], group_ids=None, today_day=D)
        assert (p.key, p.name, p.channel, p.is_staff) == ("a", "小李", "douyin", False)
        assert set(p.profile) >= {"p:phone", "p:city"}
        assert [(gr.key, gr.current, len(gr.intervals)) for gr in p.groups] == [
            ("g1", True, 1),
            ("g2", True, 1),
        ]
        g2 = p.groups[1].intervals[0]
        assert (g2.join_via, g2.inviter_id, g2.inviter_name) == ("invite", m["c"], "王五")
        assert len(p.weeks) == 26 and p.weeks[-1].messages == 3
        kinds = [e.kind for e in p.timeline]
        assert kinds[0] == "profile" and {"join", "order", "refund", "contact_added"} <= set(kinds)
        assert [e.at_us for e in p.timeline] == sorted((e.at_us for e in p.timeline), reverse=True)
        assert [(o.order_key, o.amount_fen, o.refunded_fen) for o in p.orders] == [
            ("o1", 19900, 5000)
        ]
        assert [(i.inviter_key, i.group_id) for i in p.invited_by] == [("c", g["g2"])]
        d = ms.member_profile(s, c.ws_id, CAL, m["d"], group_ids=None, today_day=D)
        (iv,) = d.groups[0].intervals
        assert (iv.ended_by, iv.leave_via, iv.left_by, d.groups[0].current) == (
            "leave",
            "removed",
            "s",
            False,
        )


def test_invite_tree_with_a_cycle(engine: Engine) -> None:
    c, m, _g = _community(engine)
    with session_scope(engine) as s:
        tree = ms.invite_tree(s, c.ws_id, m["a"], group_ids=None, depth=5)
        (b,) = tree.children
        assert (b.key, b.name, b.valid) == ("b", "Lily", True)
        (cc,) = b.children
        assert cc.key == "c" and cc.children == []  # c invited a: the cycle stops there
        assert (tree.nodes, tree.truncated) == (2, False)
        short = ms.invite_tree(s, c.ws_id, m["a"], group_ids=None, depth=1)
        assert [n.key for n in short.children] == ["b"] and short.children[0].children == []
        assert short.truncated
        # As of just after b's join, the 72 h hold window has not passed: not valid yet.
        early = ms.invite_tree(s, c.ws_id, m["a"], group_ids=None, as_of_us=b.joined_at_us + 1)
        assert early.children[0].valid is False
        with pytest.raises(InvalidParameter, match="depth"):
            ms.invite_tree(s, c.ws_id, m["a"], group_ids=None, depth=0)


def test_weekly_chart_of_a_long_silent_member_ends_at_their_last_message(engine: Engine) -> None:
    c = Community(engine)
    c.add("member.joined", "2025-01-06T10:00:00+08:00", group="g1", member="old")
    c.add("message.posted", "2025-01-07T10:00:00+08:00", group="g1", member="old")
    c.add("member.joined", "2026-11-16T10:00:00+08:00", group="g1", member="new")
    c.add("message.posted", "2026-11-17T10:00:00+08:00", group="g1", member="new")
    cal = LocalCalendar("Asia/Shanghai")
    today = day_number(date(2026, 11, 20))
    with session_scope(engine, read_only=True) as s:
        ids = dict(s.execute(select(Member.member_key, Member.id)).all())
        old = ms.member_profile(s, c.ws_id, cal, ids["old"], group_ids=None, today_day=today)
        new = ms.member_profile(s, c.ws_id, cal, ids["new"], group_ids=None, today_day=today)
    assert len(old.weeks) == len(new.weeks) == ms.WEEKS_SHOWN
    assert old.weeks[-1].week == "2025-W02" and old.weeks[-1].messages == 1
    assert new.weeks[-1].week == "2026-W47" and new.weeks[-1].messages == 1
