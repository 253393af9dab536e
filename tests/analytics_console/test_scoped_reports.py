"""Reports limited to an operator's groups (run_report(..., group_ids=...))."""

from __future__ import annotations

import json
from typing import Any

import pytest
from community import Community, worked_cases, worked_lines
from randomcommunity import random_events
from scoped_community import group_ids, scoped_report
from sqlalchemy import Engine, select

from quanzi.core.groups.models import Group
from quanzi.core.members.models import Member
from quanzi.core.members.service import mark_staff
from quanzi.db.engine import session_scope

AS_OF = "2026-03-01T00:00:00+08:00"
# One ask of every report over the random community's 40 days (from 2026-01-05).
RANDOM_ASKS: list[tuple[str, dict[str, Any]]] = [
    *[("overview", {"date": d}) for d in ("2026-01-06", "2026-01-20", "2026-02-10")],
    *[("groups", {"date": d}) for d in ("2026-01-11", "2026-02-01", "2026-02-14")],
    ("invites", {"from_": "2026-01-05", "to": "2026-02-13", "as_of": AS_OF}),
    ("invites", {"from_": "2026-01-20", "to": "2026-01-26", "as_of": "2026-01-27"}),
    ("retention", {"from_": "2026-01-05", "to": "2026-02-13", "as_of": AS_OF, "weeks": 6}),
    (
        "retention",
        {"from_": "2026-01-05", "to": "2026-02-13", "as_of": AS_OF, "kind": "membership"},
    ),
    ("lifecycle", {"from_": "2026-01-05", "to": "2026-02-20"}),
    ("funnel", {"from_": "2026-01-05", "to": "2026-02-13", "as_of": AS_OF}),
    ("channels", {"from_": "2026-01-05", "to": "2026-02-13", "as_of": AS_OF}),
]


def _ask_id(ask: tuple[str, dict[str, Any]]) -> str:
    return ask[0] + "," + ",".join(f"{k}={v}" for k, v in ask[1].items() if k != "as_of")


@pytest.fixture
def random_community(engine: Engine) -> Community:
    c = Community(engine)
    assert not c.ingest(random_events(7, n_members=150, days=40)).refused
    return c


# -- No scope, or every group: the same answers --------------------------------------------


def test_all_groups_equal_no_scope_on_the_worked_example(engine: Engine) -> None:
    c = Community(engine)
    c.ingest(worked_lines())
    everything = group_ids(c)
    assert len(everything) == 4
    for case in worked_cases():
        params = dict(case["params"])
        flagged = params.pop("fraud_flagged", [])
        # c.report sets the case's fraud flags and answers without a scope.
        assert c.report(case["report"], fraud_flagged=flagged, **params) == case["answer"]
        assert scoped_report(c, case["report"], None, **params) == case["answer"]
        assert scoped_report(c, case["report"], everything, **params) == case["answer"], case


def test_all_groups_equal_no_scope_on_a_random_community(random_community: Community) -> None:
    everything = group_ids(random_community)
    for name, params in RANDOM_ASKS:
        unscoped = scoped_report(random_community, name, None, **params)
        assert scoped_report(random_community, name, everything, **params) == unscoped, name


# -- A scope answers as a workspace holding only those groups would -------------------------


def _only_groups(lines: list[str], keep: set[tuple[str, str]]) -> list[str]:
    """The events of a workspace that holds only the `keep` groups: group-bound events of
    those groups, and every event that belongs to no group (contacts, orders, profiles)."""
    out = []
    for ln in lines:
        ev = json.loads(ln)
        if "group" not in ev or (ev["platform"], ev["group"]) in keep:
            out.append(ln)
    return out


@pytest.mark.parametrize("seed", [3, 11])
def test_a_scope_answers_like_a_workspace_of_only_those_groups(engine: Engine, seed: int) -> None:
    lines = random_events(seed, n_members=120, days=40)
    full = Community(engine, "full")
    assert not full.ingest(lines).refused
    with session_scope(engine) as s:
        rows = s.execute(
            select(Group.id, Group.platform, Group.group_key)
            .where(Group.workspace_id == full.ws_id)
            .order_by(Group.id)
        ).all()
        staff = s.execute(
            select(Member.platform, Member.member_key).where(
                Member.workspace_id == full.ws_id, Member.is_staff.is_(True)
            )
        ).all()
    # Every third group, plus the dismissed g0 (the random community's first group).
    chosen = [r for i, r in enumerate(rows) if i % 3 == 0]
    scope = frozenset(int(r.id) for r in chosen)
    keep = {(r.platform, r.group_key) for r in chosen}
    only = Community(engine, "only")
    assert not only.ingest(_only_groups(lines, keep)).refused
    with session_scope(engine) as s:
        # Staff is a property of the person, learnt from any group: carry it over.
        for platform, key in staff:
            if s.scalar(
                select(Member.id).where(
                    Member.workspace_id == only.ws_id,
                    Member.platform == platform,
                    Member.member_key == key,
                )
            ):
                mark_staff(s, only.ws_id, platform, key)
    for name, params in RANDOM_ASKS:
        expected = scoped_report(only, name, None, **params)
        assert scoped_report(full, name, scope, **params) == expected, (name, params)


def test_an_empty_scope_sees_nothing(random_community: Community) -> None:
    ov = scoped_report(random_community, "overview", frozenset(), date="2026-01-20")
    assert {k: v for k, v in ov.items() if k != "date"} == dict.fromkeys(
        (
            "members",
            "new_members",
            "leaves",
            "messages",
            "member_messages",
            "staff_messages",
            "active_members",
            "groups",
        ),
        0,
    )
    assert scoped_report(random_community, "groups", frozenset(), date="2026-01-20")["groups"] == []
    assert scoped_report(random_community, "channels", frozenset())["channels"] == []
