"""The dashboard's cache never shows stale figures: an ingest or a staff mark shows at once."""

from __future__ import annotations

from datetime import date

from community import Community
from sqlalchemy import Engine

from quanzi.analytics.dashboard import Dashboard, dashboard
from quanzi.core.members.service import mark_staff
from quanzi.db.engine import session_scope
from quanzi.kit.clock import LocalCalendar, day_number

DAY = "2026-11-03"


def _board(c: Community) -> Dashboard:
    with session_scope(c.engine, read_only=True) as s:
        return dashboard(
            s, c.ws_id, LocalCalendar("Asia/Shanghai"), day=day_number(date.fromisoformat(DAY))
        )


def test_new_events_and_staff_marks_show_at_once(engine: Engine) -> None:
    c = Community(engine)
    c.add("member.joined", "2026-11-03T10:00:00+08:00", group="g1", member="a")
    c.add("message.posted", "2026-11-03T11:00:00+08:00", group="g1", member="a")
    first = _board(c)
    assert first.day.kpi("new_members").value == 1
    assert first.day.kpi("messages").value == 1
    # Asked again with nothing changed: the same answer (from the cache).
    assert _board(c) == first

    c.add("member.joined", "2026-11-03T12:00:00+08:00", group="g1", member="b")
    c.add("message.posted", "2026-11-03T12:30:00+08:00", group="g1", member="b")
    second = _board(c)
    assert second.day.kpi("new_members").value == 2
    assert second.day.kpi("messages").value == 2

    # Staff marks live outside the event log; they must invalidate too.
    with session_scope(engine) as s:
        mark_staff(s, c.ws_id, "wecom", "b")
    third = _board(c)
    assert third.day.kpi("new_members").value == 1
    assert third.day.kpi("members").value == 1


def test_callers_cannot_change_the_cached_answer(engine: Engine) -> None:
    c = Community(engine)
    c.add("member.joined", "2026-11-03T10:00:00+08:00", group="g1", member="a")
    board = _board(c)
    board.series.clear()
    assert _board(c).series, "the cache handed out its own object"
