"""The console's group pages: figures equal the groups report, scoping, filters, health."""

from __future__ import annotations

from datetime import date

import pytest
from community import Community, line
from randomcommunity import random_events
from sqlalchemy import Engine

from quanzi.core.groups import service as groups
from quanzi.db.engine import session_scope
from quanzi.kit.clock import LocalCalendar, day_number
from quanzi.kit.errors import InvalidParameter, NotFound

CAL = LocalCalendar("Asia/Shanghai")
D = day_number(date(2026, 11, 20))


def ts(day: int, hm: str = "10:00") -> str:
    from quanzi.kit.clock import day_date

    return f"{day_date(day).isoformat()}T{hm}:00+08:00"


def _figures(row: object) -> tuple[object, ...]:
    names = ("size", "joins_7d", "leaves_7d", "messages_7d", "active_7d", "activity_rate_7d")
    return tuple(getattr(row, n) for n in (*names, "ugc_share_7d", "silent"))


def _report_figures(row: dict[str, object]) -> tuple[object, ...]:
    names = ("size", "joins_7d", "leaves_7d", "messages_7d", "active_7d", "activity_rate_7d")
    return tuple(row[n] for n in (*names, "ugc_share_7d", "silent"))


@pytest.mark.parametrize("report_day", ["2026-01-20", "2026-02-01", "2026-02-14"])
def test_list_and_detail_equal_the_groups_report(engine: Engine, report_day: str) -> None:
    c = Community(engine)
    rep = c.ingest(random_events(7, n_members=200, days=40))
    assert not rep.refused
    expected = c.report("groups", date=report_day)["groups"]
    assert expected  # the random community has groups on that day
    day = day_number(date.fromisoformat(report_day))
    with session_scope(engine) as s:
        cal = LocalCalendar("Asia/Shanghai")
        page = groups.list_groups(s, c.ws_id, cal, group_ids=None, day=day, per_page=500)
        rows = sorted(page.rows, key=lambda r: (r.key, r.platform))
        assert [(r.key, *_figures(r)) for r in rows] == [
            (e["group"], *_report_figures(e)) for e in expected
        ]
        # The per-group path (an operator's few groups, one group's page) agrees too.
        scoped = groups.list_groups(
            s, c.ws_id, cal, group_ids=frozenset(r.id for r in rows[:3]), day=day
        )
        assert sorted(_figures(r) for r in scoped.rows) == sorted(_figures(r) for r in rows[:3])
        for r in rows:
            detail = groups.group_detail(s, c.ws_id, cal, r.id, group_ids=None, day=day)
            assert _figures(detail.week) == _figures(r)
            assert detail.series[-1].size == r.size
            last7 = detail.series[-7:]
            assert sum(p.joins for p in last7) == r.joins_7d
            assert sum(p.member_messages + p.staff_messages for p in last7) == r.messages_7d


def _small(engine: Engine) -> Community:
    """g1 (宝妈交流1群) busy, g2 (读书会) quiet, g3 dismissed; a staff member in g1."""
    c = Community(engine)
    lines = [
        line(
            id="c1",
            type="group.created",
            ts=ts(D - 60),
            platform="wecom",
            group="g1",
            name="宝妈交流1群",
            owner="staff_anna",
            notice="欢迎",
        ),
        line(
            id="c2",
            type="group.created",
            ts=ts(D - 60),
            platform="wecom",
            group="g2",
            name="读书会",
            owner="staff_anna",
        ),
        line(
            id="c3",
            type="group.created",
            ts=ts(D - 60),
            platform="wecom",
            group="g3",
            name="Old Group",
        ),
        line(
            id="c4",
            type="group.updated",
            ts=ts(D - 30),
            platform="wecom",
            group="g1",
            name="宝妈交流群",
        ),
        line(id="c5", type="group.dismissed", ts=ts(D - 20), platform="wecom", group="g3"),
        line(
            id="s1",
            type="member.joined",
            ts=ts(D - 60, "09:30"),
            platform="wecom",
            group="g1",
            member="staff_anna",
            is_staff=True,
        ),
    ]
    for i in range(1, 11):
        lines.append(
            line(
                id=f"j{i}",
                type="member.joined",
                ts=ts(D - 50 + i),
                platform="wecom",
                group="g1",
                member=f"m{i}",
                name=f"成员{i}",
            )
        )
    for i in range(1, 5):
        lines.append(
            line(
                id=f"k{i}",
                type="member.joined",
                ts=ts(D - 40),
                platform="wecom",
                group="g2",
                member=f"m{i}",
            )
        )
    lines.append(
        line(
            id="k9", type="member.joined", ts=ts(D - 40), platform="wecom", group="g3", member="m9"
        )
    )
    # g1: this week m1..m6 post (m1 most), last week m1..m3; staff posts 4 times this week.
    n = 0
    for i in range(1, 7):
        for _ in range(7 - i):
            n += 1
            lines.append(
                line(
                    id=f"p{n}",
                    type="message.posted",
                    ts=ts(D - 1),
                    platform="wecom",
                    group="g1",
                    member=f"m{i}",
                )
            )
    for i in range(1, 4):
        n += 1
        lines.append(
            line(
                id=f"p{n}",
                type="message.posted",
                ts=ts(D - 9),
                platform="wecom",
                group="g1",
                member=f"m{i}",
            )
        )
    for _ in range(4):
        n += 1
        lines.append(
            line(
                id=f"p{n}",
                type="message.posted",
                ts=ts(D),
                platform="wecom",
                group="g1",
                member="staff_anna",
            )
        )
    # g2: three members posted last week, one this week.
    for i in range(1, 4):
        n += 1
        lines.append(
            line(
                id=f"p{n}",
                type="message.posted",
                ts=ts(D - 10),
                platform="wecom",
                group="g2",
                member=f"m{i}",
            )
        )
    n += 1
    lines.append(
        line(
            id=f"p{n}",
            type="message.posted",
            ts=ts(D - 2),
            platform="wecom",
            group="g2",
            member="m1",
        )
    )
    lines.append(
        line(id="l1", type="member.left", ts=ts(D - 3), platform="wecom", group="g1", member="m10")
    )
    rep = c.ingest(lines)
    assert not rep.refused, rep.refused
    return c


def _ids(engine: Engine, c: Community) -> dict[str, int]:
    with session_scope(engine) as s:
        page = groups.list_groups(s, c.ws_id, CAL, group_ids=None, day=D, status="all")
        return {r.key: r.id for r in page.rows}


def test_list_filters_sorts_and_pages(engine: Engine) -> None:
    c = _small(engine)
    with session_scope(engine) as s:

        def keys(**kw: object) -> list[str]:
            p = groups.list_groups(s, c.ws_id, CAL, group_ids=None, day=D, **kw)  # type: ignore[arg-type]
            return [r.key for r in p.rows]

        assert keys() == ["g1", "g2"]  # by size, largest first; g3 is dismissed
        assert keys(status="dismissed") == ["g3"]
        assert sorted(keys(status="all")) == ["g1", "g2", "g3"]
        assert keys(q="宝妈") == ["g1"]
        assert keys(q="G2") == ["g2"]  # the group id, case-insensitive
        assert keys(q="old", status="all") == ["g3"]
        assert keys(q="%") == []  # LIKE wildcards are taken literally
        assert keys(sort="name", desc=False) == ["g1", "g2"]  # 宝 < 读 by code point
        assert keys(sort="activity_rate_7d", desc=False) == ["g2", "g1"]
        assert keys(sort="leaves_7d") == ["g1", "g2"]
        p = groups.list_groups(s, c.ws_id, CAL, group_ids=None, day=D, per_page=1, page=2)
        assert [r.key for r in p.rows] == ["g2"] and (p.total, p.pages) == (2, 2)
        row = groups.list_groups(s, c.ws_id, CAL, group_ids=None, day=D).rows[0]
        assert row.name == "宝妈交流群" and row.size == 9 and row.leaves_7d == 1
        assert row.active_7d == 6 and row.messages_7d == 21 + 4
        assert row.ugc_share_7d == round(21 / 25, 4) and row.dismissed is False


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"sort": "members"}, "sort"),
        ({"status": "gone"}, "status"),
        ({"page": 0}, "page"),
        ({"per_page": 0}, "per_page"),
        ({"per_page": 10_000}, "per_page"),
    ],
)
def test_bad_parameters_are_named(engine: Engine, kw: dict[str, object], name: str) -> None:
    c = Community(engine)
    with session_scope(engine) as s, pytest.raises(InvalidParameter, match=name):
        groups.list_groups(s, c.ws_id, CAL, group_ids=None, day=D, **kw)  # type: ignore[arg-type]


def test_scoping_hides_other_groups(engine: Engine) -> None:
    c = _small(engine)
    ids = _ids(engine, c)
    only_g2 = frozenset({ids["g2"]})
    with session_scope(engine) as s:
        page = groups.list_groups(s, c.ws_id, CAL, group_ids=only_g2, day=D, status="all")
        assert [r.key for r in page.rows] == ["g2"]
        with pytest.raises(NotFound):
            groups.group_detail(s, c.ws_id, CAL, ids["g1"], group_ids=only_g2, day=D)
        with pytest.raises(NotFound):
            groups.group_members(s, c.ws_id, ids["g1"], group_ids=only_g2, day=D)
        with pytest.raises(NotFound):  # and a group of another workspace, or none at all
            groups.group_detail(s, c.ws_id + 1, CAL, ids["g2"], group_ids=None, day=D)
        assert [t.key for t in groups.top_groups(s, c.ws_id, CAL, group_ids=only_g2, day=D)] == [
            "g2"
        ]


def test_group_detail(engine: Engine) -> None:
    c = _small(engine)
    ids = _ids(engine, c)
    with session_scope(engine) as s:
        d = groups.group_detail(s, c.ws_id, CAL, ids["g1"], group_ids=None, day=D, days=30)
        assert (d.name, d.notice, d.owner, d.key) == ("宝妈交流群", "欢迎", "staff_anna", "g1")
        assert len(d.series) == 30 and d.series[-1].day == D
        assert d.series[-1].staff_messages == 4 and d.series[-2].member_messages == 21
        assert d.series[-2].active == 6
        # m10 left on D-3: size 10 before, 9 after; staff never counted.
        assert [p.size for p in d.series[-5:]] == [10, 9, 9, 9, 9]  # days D-4..D
        assert d.previous_week.active_7d == 3 and d.week.active_7d == 6
        assert [(p.key, p.messages_30d) for p in d.top_posters[:3]] == [
            ("m1", 7),
            ("m2", 6),
            ("m3", 5),
        ]
        assert all(p.key != "staff_anna" for p in d.top_posters)
        assert d.staff_messages_30d == 4 and d.messages_30d == 4 + 21 + 3
        assert d.staff_message_share_30d == round(4 / 28, 4)
        assert d.silent == 9 - 6  # m7, m8, m9 posted nothing in 30 days
        assert [(ch.field, ch.value) for ch in d.changes][:1] == [("name", "宝妈交流群")]
        assert d.health.code == "healthy"
        with pytest.raises(InvalidParameter, match="days"):
            groups.group_detail(s, c.ws_id, CAL, ids["g1"], group_ids=None, day=D, days=0)


def test_health_verdicts(engine: Engine) -> None:
    c = _small(engine)
    ids = _ids(engine, c)
    with session_scope(engine) as s:

        def verdict(key: str, day: int = D) -> groups.Health:
            return groups.group_detail(s, c.ws_id, CAL, ids[key], group_ids=None, day=day).health

        g2 = verdict("g2")  # 3 of 4 posted last week, 1 this week
        assert g2.code == "declining"
        fell = next(r for r in g2.reasons if r.code == "activity_rate_7d")
        assert fell.triggered and (fell.value, fell.previous) == (0.25, 0.75)
        assert verdict("g3").code == "dismissed"
        assert verdict("g1", D - 55).code == "new"
        assert verdict("g2", D + 20).code == "dormant"


def test_group_members_and_dashboard_picks(engine: Engine) -> None:
    c = _small(engine)
    ids = _ids(engine, c)
    with session_scope(engine) as s:
        page = groups.group_members(
            s, c.ws_id, ids["g1"], group_ids=None, day=D, sort="messages_30d", per_page=3
        )
        assert page.total == 10 and page.pages == 4  # 9 members + staff (marked)
        assert [(r.key, r.messages_30d) for r in page.rows] == [("m1", 7), ("m2", 6), ("m3", 5)]
        assert page.rows[0].last_message_day == D - 1
        staff = groups.group_members(
            s, c.ws_id, ids["g1"], group_ids=None, day=D, sort="name", desc=False, per_page=50
        )
        assert [r.is_staff for r in staff.rows if r.key == "staff_anna"] == [True]
        with pytest.raises(InvalidParameter, match="sort"):
            groups.group_members(s, c.ws_id, ids["g1"], group_ids=None, day=D, sort="x")
        quiet = groups.quiet_groups(s, c.ws_id, CAL, group_ids=None, day=D)
        assert [(q.key, q.activity_rate_prev_7d, q.activity_rate_7d) for q in quiet] == [
            ("g2", 0.75, 0.25)
        ]
        assert [t.key for t in groups.top_groups(s, c.ws_id, CAL, group_ids=None, day=D)] == [
            "g1",
            "g2",
        ]
