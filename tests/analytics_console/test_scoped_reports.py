"""Reports limited to an operator's groups (run_report(..., group_ids=...))."""

from __future__ import annotations

import json
from typing import Any

import pytest
from community import Community, worked_cases, worked_lines
from randomcommunity import random_events
from scoped_community import D1, LATER, D, group_ids, scoped_report
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
    assert len(ov) == 9 and {v for k, v in ov.items() if k != "date"} == {0}
    assert scoped_report(random_community, "groups", frozenset(), date="2026-01-20")["groups"] == []
    assert scoped_report(random_community, "channels", frozenset())["channels"] == []


# -- A small community worked out by hand --------------------------------------------------


def test_scoped_overview_by_hand(three_groups: Community) -> None:
    mine = group_ids(three_groups, "g1", "g2")
    ov = scoped_report(three_groups, "overview", mine, date=D)
    # members at the end of D: a, b (g1), c (g2); s is staff; z, d, f are only in g3.
    # new members: first join within g1/g2 on D: a (earlier join was in g3), b, c.
    # messages in g1: a 2 + b 1 (members) + s 1 (staff); d's post in g3 is not seen.
    assert ov == {
        "date": D,
        "members": 3,
        "new_members": 3,
        "leaves": 0,
        "messages": 4,
        "member_messages": 3,
        "staff_messages": 1,
        "active_members": 2,
        "groups": 2,
    }
    # The whole workspace, for contrast: + z, d (a counted once), new b, c, d, f (not a).
    whole = scoped_report(three_groups, "overview", None, date=D)
    assert (whole["members"], whole["new_members"], whole["messages"], whole["groups"]) == (
        6,
        4,
        5,
        3,
    )
    ov1 = scoped_report(three_groups, "overview", mine, date=D1)
    # c left g2 (a leave), e joined it: a, b, e; e is new; one message by e.
    assert (ov1["members"], ov1["new_members"], ov1["leaves"], ov1["messages"]) == (3, 1, 1, 1)


def test_scoped_groups_report_lists_only_those_groups(three_groups: Community) -> None:
    mine = group_ids(three_groups, "g1", "g2")
    rows = scoped_report(three_groups, "groups", mine, date=D1)["groups"]
    # g1: a, b in it (s is staff); joins a, b; 4 messages of which 3 by members; both posted.
    # g2: e in it (c left); joins c, e; one leave; one message by e.
    assert rows == [
        {
            "group": "g1",
            "name": "g1",
            "size": 2,
            "joins_7d": 2,
            "leaves_7d": 0,
            "messages_7d": 4,
            "active_7d": 2,
            "activity_rate_7d": 1.0,
            "ugc_share_7d": 0.75,
            "silent": 0,
        },
        {
            "group": "g2",
            "name": "g2",
            "size": 1,
            "joins_7d": 2,
            "leaves_7d": 1,
            "messages_7d": 1,
            "active_7d": 1,
            "activity_rate_7d": 1.0,
            "ugc_share_7d": 1.0,
            "silent": 0,
        },
    ]


def test_scoped_invites_count_joins_into_the_scope(three_groups: Community) -> None:
    mine = group_ids(three_groups, "g1", "g2")
    inv = scoped_report(three_groups, "invites", mine, from_=D, to=D1, as_of=LATER)
    # a invited b into g1 (valid) and d into g3 (not seen); z, who is only in g3, invited c
    # into g2: seen, but c left within 72 h.
    assert inv["inviters"] == [
        {"inviter": "a", "raw": 1, "new": 1, "valid": 1, "pending": 0},
        {"inviter": "z", "raw": 1, "new": 1, "valid": 0, "pending": 0},
    ]
    whole = scoped_report(three_groups, "invites", None, from_=D, to=D1, as_of=LATER)
    assert whole["inviters"][0] == {"inviter": "a", "raw": 2, "new": 2, "valid": 2, "pending": 0}


def test_scoped_channels_and_funnel_by_hand(three_groups: Community) -> None:
    mine = group_ids(three_groups, "g1", "g2")
    ch = scoped_report(three_groups, "channels", mine, from_=D, to=D1, as_of=LATER)
    # Acquired in scope on D..D+1: a (first join in scope on D, channel c1: the earlier g3
    # join is outside), b (store: the contact came before the join), c and e (no channel).
    # Activated: a, b, e posted within 7 days. b's order: 10,000 − 3,000 = 7,000.
    assert ch["channels"] == [
        {"channel": "(none)", "acquired": 2, "activated": 1, "revenue_members": 0, "revenue": 0},
        {"channel": "c1", "acquired": 1, "activated": 1, "revenue_members": 0, "revenue": 0},
        {
            "channel": "store",
            "acquired": 1,
            "activated": 1,
            "revenue_members": 1,
            "revenue": 7000,
        },
    ]
    fu = scoped_report(three_groups, "funnel", mine, from_=D, to=D1, as_of=LATER)
    # referral: a's valid invite of b, an hour after a's first join in scope.
    assert fu == {"acquired": 4, "activated": 3, "retained": 0, "revenue": 1, "referral": 1}
    whole = scoped_report(three_groups, "funnel", None, from_=D, to=D1, as_of=LATER)
    # Workspace: b, c, d, e, f acquired (a first joined on 02-23); b, d, e activated; b and
    # d paid; a is not acquired in the window, so no referral.
    assert whole == {"acquired": 5, "activated": 3, "retained": 0, "revenue": 2, "referral": 0}


def test_scoped_retention_and_lifecycle_by_hand(three_groups: Community) -> None:
    mine = group_ids(three_groups, "g1", "g2")
    ret = scoped_report(three_groups, "retention", mine, from_=D, to=D, as_of=LATER)
    # Cohort 2026-W10 in scope: a, b, c, e; posted in g1/g2 that week: a, b, e. Week 1 is not
    # complete on 03-10.
    assert ret == {
        "kind": "activity",
        "cohorts": [{"week": "2026-W10", "size": 4, "retained": [3]}],
    }
    life = scoped_report(three_groups, "lifecycle", mine, from_=D, to=D)
    # a's post in g3 on 02-24 is outside: a's first message in scope is in W10, so a is new.
    assert life["weeks"] == [
        {"week": "2026-W10", "new": 3, "returning": 0, "resurrecting": 0, "dormant": 0}
    ]
    whole = scoped_report(three_groups, "lifecycle", None, from_=D, to=D)
    # Workspace: a posted in W09 too (returning); b, d, e are new.
    assert whole["weeks"] == [
        {"week": "2026-W10", "new": 3, "returning": 1, "resurrecting": 0, "dormant": 0}
    ]
