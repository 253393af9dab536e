"""The groups list's figures are kept between requests, but never outlive a change."""

from __future__ import annotations

from datetime import date

from community import Community
from sqlalchemy import Engine

from quanzi.core.groups.service import list_groups
from quanzi.core.members.service import mark_staff
from quanzi.db.engine import session_scope
from quanzi.kit.clock import LocalCalendar, day_number

DAY = day_number(date(2026, 11, 3))


def _sizes(c: Community) -> dict[str, int]:
    with session_scope(c.engine, read_only=True) as s:
        page = list_groups(
            s, c.ws_id, LocalCalendar("Asia/Shanghai"), group_ids=None, day=DAY, status="all"
        )
    return {r.key: r.size for r in page.rows}


def test_an_ingest_or_a_staff_mark_changes_the_list_at_once(engine: Engine) -> None:
    c = Community(engine)
    c.add("member.joined", "2026-11-02T10:00:00+08:00", group="g1", member="a")
    assert _sizes(c) == {"g1": 1}
    assert _sizes(c) == {"g1": 1}  # from the cache
    c.add("member.joined", "2026-11-02T11:00:00+08:00", group="g1", member="b")
    assert _sizes(c) == {"g1": 2}
    with session_scope(engine) as s:
        mark_staff(s, c.ws_id, "wecom", "b")
    assert _sizes(c) == {"g1": 1}
