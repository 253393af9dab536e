"""The dashboard's figures: the day card is the overview report, the series equals it day by
day, and the lists are the reports' rows; with and without a scope."""

from __future__ import annotations

import json
from datetime import date

import pytest
from community import Community
from randomcommunity import random_events
from scoped_community import D1, D2, D3, D, group_ids, scoped_report
from sqlalchemy import Engine

from quanzi.analytics.dashboard import SERIES_DAYS, Dashboard, dashboard
from quanzi.core.workspaces.models import Workspace
from quanzi.db.engine import session_scope
from quanzi.kit.clock import LocalCalendar, day_date, day_number

LAST = "2026-02-13"  # the random community runs from 2026-01-05 for 40 days


def board(c: Community, day: str | None, scope: frozenset[int] | None) -> Dashboard:
    with session_scope(c.engine) as s:
        ws = s.get(Workspace, c.ws_id)
        assert ws is not None
        cal = LocalCalendar(ws.timezone)
        n = day_number(date.fromisoformat(day)) if day else None
        return dashboard(s, c.ws_id, cal, group_ids=scope, day=n)


def shift(day: str, n: int) -> str:
    return day_date(day_number(date.fromisoformat(day)) + n).isoformat()


@pytest.fixture
def random_community(engine: Engine) -> Community:
    c = Community(engine)
    assert not c.ingest(random_events(5, n_members=150, days=40)).refused
    return c


@pytest.mark.parametrize("scoped", [False, True], ids=["workspace", "scoped"])
def test_day_card_and_series_equal_the_overview(random_community: Community, scoped: bool) -> None:
    c = random_community
    scope = frozenset(sorted(group_ids(c))[::2]) if scoped else None
    for day in (LAST, "2026-01-20", "2026-01-06"):
        b = board(c, day, scope)
        ov = scoped_report(c, "overview", scope, date=day)
        prev = scoped_report(c, "overview", scope, date=shift(day, -1))
        card = b.day
        assert (card.from_date, card.to_date, card.previous_to_date) == (day, day, shift(day, -1))
        for key in ("members", "new_members", "leaves", "messages", "active_members"):
            assert card.kpi(key).value == ov[key], key
            assert card.kpi(key).previous == prev[key], key
        share = round(ov["member_messages"] / ov["messages"], 4) if ov["messages"] else None
        assert card.kpi("ugc_share").value == share
        assert len(b.series) == SERIES_DAYS and b.series[-1].date == day
    # The series of the last board, day by day (days before the data are all zeros).
    for point in b.series:
        ov = scoped_report(c, "overview", scope, date=point.date)
        assert (
            point.new_members,
            point.leaves,
            point.messages,
            point.member_messages,
            point.staff_messages,
            point.active_members,
        ) == (
            ov["new_members"],
            ov["leaves"],
            ov["messages"],
            ov["member_messages"],
            ov["staff_messages"],
            ov["active_members"],
        ), point.date


def test_week_card_sums_the_days(random_community: Community) -> None:
    c = random_community
    b = board(c, LAST, None)
    days = [scoped_report(c, "overview", None, date=shift(LAST, -i)) for i in range(7)]
    week = b.week
    assert (week.from_date, week.to_date) == (shift(LAST, -6), LAST)
    assert (week.previous_from_date, week.previous_to_date) == (shift(LAST, -13), shift(LAST, -7))
    assert week.kpi("new_members").value == sum(d["new_members"] for d in days)
    assert week.kpi("leaves").value == sum(d["leaves"] for d in days)
    assert week.kpi("messages").value == sum(d["messages"] for d in days)
    assert week.kpi("members").value == days[0]["members"]
    # Distinct posters over the 7 days: at least the busiest day's, at most the sum.
    active = week.kpi("active_members").value
    assert isinstance(active, int)
    assert (
        max(d["active_members"] for d in days) <= active <= sum(d["active_members"] for d in days)
    )
    json.dumps(b.as_dict(), ensure_ascii=False)  # plain data


def test_dashboard_of_three_groups_by_hand(three_groups: Community) -> None:
    c = three_groups
    mine = group_ids(c, "g1", "g2")
    whole = board(c, D3, None)
    revenue = {p.date: p.revenue_fen for p in whole.series if p.revenue_fen}
    # d paid 5,000 on D; b paid 10,000 on D+2 and got 3,000 back on D+3.
    assert revenue == {D: 5000, D2: 10000, D3: -3000}
    scoped = board(c, D3, mine)
    # d was never in g1/g2: the operator does not see that order.
    assert {p.date: p.revenue_fen for p in scoped.series if p.revenue_fen} == {
        D2: 10000,
        D3: -3000,
    }
    rev = scoped.day.kpi("revenue_fen")
    assert (rev.value, rev.previous, rev.change, rev.change_pct) == (-3000, 10000, -13000, -1.3)
    # 7 days D-3..D+3 against D-10..D-4: 7,000 against nothing.
    week_rev = scoped.week.kpi("revenue_fen")
    assert (week_rev.value, week_rev.previous, week_rev.change_pct) == (7000, 0, None)

    b = board(c, D1, mine)
    # 7 days ending D+1 in g1/g2: a, b (D) and e (D+1) posted; the days before: nobody.
    act = b.week.kpi("active_members")
    assert (act.value, act.previous, act.change, act.change_pct) == (3, 0, 3, None)
    # Members: a, b, c, e first joined g1/g2 in the window.
    assert b.week.kpi("new_members").value == 4
    # 30 days of messages: a 2, b 1, e 1 (s is staff; d posted in g3).
    assert [(m.member, m.messages) for m in b.top_members] == [("a", 2), ("b", 1), ("e", 1)]
    assert [(g.group, g.messages_7d, g.activity_rate_7d) for g in b.top_groups] == [
        ("g1", 4, 1.0),
        ("g2", 1, 1.0),
    ]
    assert b.quiet_groups == []  # g1 and g2 did not exist a week earlier
    assert [(r["inviter"], r["valid"]) for r in b.top_inviters] == [("a", 1), ("z", 0)]
    assert [(r["channel"], r["acquired"]) for r in b.channels] == [
        ("(none)", 2),
        ("c1", 1),
        ("store", 1),
    ]

    w = board(c, D1, None)
    # g3 at the end of 02-24: z, a; a posted that day: 1/2. At the end of D+1: z, a, d, f,
    # and only d posted in 02-25..03-03: 1/4.
    assert [
        (q.group, q.activity_rate_7d, q.previous_activity_rate_7d, q.drop) for q in w.quiet_groups
    ] == [("g3", 0.25, 0.5, 0.25)]


def test_default_day_is_yesterday(three_groups: Community) -> None:
    b = board(three_groups, None, None)
    assert b.date == day_date(LocalCalendar("Asia/Shanghai").today() - 1).isoformat()
    assert not b.scoped
