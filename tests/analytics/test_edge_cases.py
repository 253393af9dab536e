"""The edge cases settled at the end of contracts/metrics.md, one test (or more) each."""

from __future__ import annotations

import pytest
from community import Community
from sqlalchemy import Engine

D = "2026-03-02"  # a Monday; the workspace is in Asia/Shanghai (+08:00)


def t(day: str, hm: str = "10:00") -> str:
    return f"{day}T{hm}:00+08:00"


@pytest.fixture
def c(engine: Engine) -> Community:
    return Community(engine)


# -- Who and when ------------------------------------------------------------------------


def test_staff_is_a_property_of_the_person_everywhere(c: Community) -> None:
    c.add("member.joined", t(D), group="g1", member="s", is_staff=True)
    c.add("member.joined", t(D, "11:00"), group="g2", member="s")  # not flagged here: still staff
    c.add("member.joined", t(D, "12:00"), group="g2", member="a", inviter="s", via="invite")
    c.add("member.joined", t(D, "12:30"), group="g2", member="b", inviter="a", via="invite")
    c.add("member.joined", t(D, "13:00"), group="g1", member="s2", inviter="a", is_staff=True)
    c.add("message.posted", t(D, "14:00"), group="g2", member="s")
    c.add("message.posted", t(D, "14:05"), group="g2", member="a")
    ov = c.report("overview", date=D)
    assert (ov["members"], ov["new_members"], ov["active_members"]) == (2, 2, 1)
    assert (ov["messages"], ov["member_messages"], ov["staff_messages"]) == (2, 1, 1)
    inv = c.report("invites", from_=D, to=D, as_of="2026-04-01T00:00:00Z")
    # s (staff) is not an inviter; a's invite of staff s2 is not counted.
    assert inv == {"inviters": [{"inviter": "a", "raw": 1, "new": 1, "valid": 1, "pending": 0}]}


def test_operator_marked_staff_counts_as_staff(c: Community) -> None:
    from quanzi.core.members.service import mark_staff
    from quanzi.db.engine import session_scope

    c.add("member.joined", t(D), group="g1", member="boss")
    c.add("member.joined", t(D), group="g1", member="a")
    assert c.report("overview", date=D)["members"] == 2
    with session_scope(c.engine) as s:
        mark_staff(s, c.ws_id, "wecom", "boss")
    assert c.report("overview", date=D)["members"] == 1


def test_same_id_on_two_platforms_is_two_people(c: Community) -> None:
    c.add("member.joined", t(D), group="g", member="42", platform="telegram")
    c.add("member.joined", t(D), group="g", member="42", platform="matrix")
    ov = c.report("overview", date=D)
    assert ov["members"] == 2 and ov["groups"] == 2
    names = [g["group"] for g in c.report("groups", date=D)["groups"]]
    assert names == ["g", "g"]  # ids printed as given, one row per (platform, group)


def test_as_of_does_not_hide_later_events(c: Community) -> None:
    c.add("member.joined", t(D), group="g", member="a")
    c.add("member.joined", t(D, "11:00"), group="g", member="b", inviter="a", via="invite")
    c.add("member.left", t("2026-03-03", "11:00"), group="g", member="b")  # 24 h later
    # Asked before the leave happened (and before H passed): the leave still counts.
    inv = c.report("invites", from_=D, to=D, as_of=t(D, "12:00"))
    assert inv["inviters"] == [{"inviter": "a", "raw": 1, "new": 1, "valid": 0, "pending": 0}]


# -- Membership and groups -----------------------------------------------------------------


def test_dismissal_ends_memberships_without_counting_leaves(c: Community) -> None:
    c.add("group.created", t(D, "09:00"), group="g", name="G")
    c.add("member.joined", t(D), group="g", member="a")
    c.add("member.joined", t(D), group="h", member="b")
    c.add("group.dismissed", t(D, "20:00"), group="g")
    ov = c.report("overview", date=D)
    assert (ov["members"], ov["leaves"], ov["groups"]) == (1, 0, 1)
    assert c.report("overview", date="2026-03-01")["groups"] == 0
    assert [g["group"] for g in c.report("groups", date=D)["groups"]] == ["h"]


def test_groups_listed_with_name_at_end_of_date(c: Community) -> None:
    c.add("group.created", t(D, "09:00"), group="g1", name="一群")
    c.add("group.updated", t("2026-03-03", "09:00"), group="g1", name="一群🌸")
    c.add("group.updated", t("2026-03-04", "09:00"), group="g1", notice="只改公告")
    c.add("member.joined", t("2026-03-03"), group="g2", member="a")  # exists from its first join
    c.add("group.updated", t(D, "09:00"), group="g3", name="never created")  # never exists
    rows = lambda d: [(g["group"], g["name"]) for g in c.report("groups", date=d)["groups"]]  # noqa: E731
    assert rows(D) == [("g1", "一群")]
    assert rows("2026-03-03") == [("g1", "一群🌸"), ("g2", "g2")]
    assert rows("2026-03-04") == [("g1", "一群🌸"), ("g2", "g2")]


def test_join_while_in_and_leave_while_out(c: Community) -> None:
    c.add("member.joined", t(D, "09:00"), group="g", member="a")
    c.add("member.joined", t(D, "10:00"), group="g", member="a")  # already in
    c.add("member.left", t(D, "11:00"), group="g", member="a")
    c.add("member.left", t(D, "12:00"), group="g", member="a")  # already out
    g = c.report("groups", date=D)["groups"][0]
    assert (g["size"], g["joins_7d"], g["leaves_7d"]) == (0, 2, 2)
    ov = c.report("overview", date=D)
    assert (ov["members"], ov["leaves"]) == (0, 2)


def test_late_events_apply_at_their_own_time(c: Community) -> None:
    c.add("member.left", t(D, "12:00"), group="g", member="a")
    assert c.report("overview", date=D)["members"] == 0
    c.add("member.joined", t(D, "09:00"), group="g", member="a")  # arrives later, happened earlier
    assert c.report("overview", date="2026-03-01")["members"] == 0
    assert c.report("overview", date=D)["members"] == 0
    c.add("member.joined", t(D, "13:00"), group="g", member="a")
    assert c.report("overview", date=D)["members"] == 1


def test_ties_in_ts_are_broken_by_id(c: Community) -> None:
    # A join and a leave at the same instant: the join (id "a1") comes first, so it ends out.
    c.add("member.left", t(D), group="g", member="m", id="a2")
    c.add("member.joined", t(D), group="g", member="m", id="a1")
    assert c.report("overview", date=D)["members"] == 0
    # Two names at the same instant: the larger id is the later one.
    c.add("group.updated", t(D, "09:00"), group="g", name="second", id="n2")
    c.add("group.updated", t(D, "09:00"), group="g", name="first", id="n1")
    assert c.report("groups", date=D)["groups"][0]["name"] == "second"


# -- Counts and rates -------------------------------------------------------------------------


def test_rates_round_half_even_and_empty_denominators(c: Community) -> None:
    for i in range(8):
        c.add("member.joined", t(D), group="g", member=f"m{i}")
    c.add("member.joined", t(D), group="g", member="s", is_staff=True)
    c.add("message.posted", t(D, "11:00"), group="g", member="m0")
    c.add("member.joined", t(D), group="quiet", member="q")
    rows = {g["group"]: g for g in c.report("groups", date=D)["groups"]}
    assert rows["g"]["activity_rate_7d"] == round(1 / 8, 4) == 0.125
    assert rows["g"]["ugc_share_7d"] == 1.0
    assert rows["quiet"]["ugc_share_7d"] is None and rows["quiet"]["activity_rate_7d"] == 0.0
    for _ in range(7):
        c.add("message.posted", t(D, "12:00"), group="g", member="s")
    # 1 member message of 8: 0.125 exactly; and 2/3 → 0.6667
    assert rows["g"]["silent"] == 7
    assert c.report("groups", date=D)["groups"][0]["ugc_share_7d"] == 0.125


def test_activity_rate_counts_only_members_still_in(c: Community) -> None:
    c.add("member.joined", t(D), group="g", member="a")
    c.add("member.joined", t(D), group="g", member="b")
    c.add("message.posted", t(D, "11:00"), group="g", member="a")
    c.add("message.posted", t(D, "11:00"), group="g", member="b")
    c.add("member.left", t(D, "12:00"), group="g", member="b")
    g = c.report("groups", date=D)["groups"][0]
    assert (g["size"], g["active_7d"], g["activity_rate_7d"]) == (1, 1, 1.0)


def test_seven_and_thirty_day_windows(c: Community) -> None:
    c.add("member.joined", t("2026-01-01"), group="g", member="a")
    c.add("member.joined", t("2026-01-01"), group="g", member="b")
    c.add("message.posted", t("2026-02-01", "23:59"), group="g", member="a")
    c.add("message.posted", t("2026-02-23", "00:00"), group="g", member="b")
    g = c.report("groups", date="2026-03-01")["groups"][0]
    # 7 days ending 03-01: 02-23..03-01; 30 days: 01-31..03-01
    assert (g["active_7d"], g["silent"], g["messages_7d"]) == (1, 0, 1)
    g = c.report("groups", date="2026-03-02")["groups"][0]  # 7 d: 02-24..; 30 d: 02-01..
    assert (g["active_7d"], g["silent"]) == (0, 0)
    g = c.report("groups", date="2026-03-03")["groups"][0]  # 30 d: 02-02..: a is silent now
    assert (g["active_7d"], g["silent"]) == (0, 1)


def test_string_orders_are_by_code_point(c: Community) -> None:
    for g in ("b", "B", "中", "a", "-1"):
        c.add("member.joined", t(D), group=g, member="x" + g)
    assert [g["group"] for g in c.report("groups", date=D)["groups"]] == ["-1", "B", "a", "b", "中"]


# -- Invites ------------------------------------------------------------------------------------


def _invite(c: Community, invitee: str, at: str, group: str = "g") -> None:
    c.add("member.joined", at, group=group, member=invitee, inviter="inv", via="invite")


def test_hold_window_boundaries(c: Community) -> None:
    c.add("member.joined", t("2026-02-01"), group="g", member="inv")
    _invite(c, "left_at_h", t(D, "10:00"))
    c.add(
        "member.left", "2026-03-05T10:00:00+08:00", group="g", member="left_at_h"
    )  # exactly +72 h
    _invite(c, "left_after_h", t(D, "10:00"))
    c.add("member.left", "2026-03-05T10:00:01+08:00", group="g", member="left_after_h")
    _invite(c, "rejoined", t(D, "10:00"))
    c.add("member.left", t(D, "11:00"), group="g", member="rejoined")
    c.add("member.joined", t(D, "12:00"), group="g", member="rejoined")  # does not repair
    _invite(c, "other_group_leave", t(D, "10:00"))
    c.add("member.left", t(D, "11:00"), group="h", member="other_group_leave")
    at_h = "2026-03-05T10:00:00+08:00"  # join + H == as_of: H has passed
    inv = c.report("invites", from_=D, to=D, as_of=at_h)["inviters"][0]
    assert (inv["raw"], inv["new"], inv["valid"], inv["pending"]) == (4, 4, 2, 0)
    inv = c.report("invites", from_=D, to=D, as_of="2026-03-05T09:59:59+08:00")["inviters"][0]
    # not passed: the two who have not left within H are pending; the others neither
    assert (inv["valid"], inv["pending"]) == (0, 2)


def test_flagged_self_and_repeat_invites(c: Community) -> None:
    c.add("member.joined", t("2026-02-01"), group="g", member="inv")
    _invite(c, "f", t(D))
    c.add("member.joined", t(D), group="g", member="inv2", inviter="inv2", via="invite")  # self
    c.add("member.joined", t("2026-02-01"), group="h", member="old")
    _invite(c, "old", t(D))  # not a first join: raw, not new
    inv = c.report("invites", from_=D, to=D, as_of="2026-04-01T00:00:00Z", fraud_flagged=["f"])
    assert inv == {"inviters": [{"inviter": "inv", "raw": 2, "new": 1, "valid": 0, "pending": 0}]}


def test_invites_window_uses_join_time_and_sorting(c: Community) -> None:
    c.add("member.joined", t("2026-02-01"), group="g", member="zed")
    c.add("member.joined", t("2026-02-01"), group="g", member="amy")
    c.add("member.joined", t("2026-03-01", "23:59"), group="g", member="x0", inviter="zed")
    c.add("member.joined", t(D, "00:00"), group="g", member="x1", inviter="zed")
    c.add("member.joined", t(D, "00:00"), group="g", member="x2", inviter="amy")
    c.add("member.left", t(D, "01:00"), group="g", member="x2")
    inv = c.report("invites", from_=D, to=D, as_of="2026-04-01T00:00:00Z")["inviters"]
    assert inv == [
        {"inviter": "zed", "raw": 1, "new": 1, "valid": 1, "pending": 0},
        {"inviter": "amy", "raw": 1, "new": 1, "valid": 0, "pending": 0},
    ]


# -- Retention and lifecycle ----------------------------------------------------------------------


def test_retention_omits_empty_cohorts_and_stops_at_complete_weeks(c: Community) -> None:
    c.add("member.joined", t("2026-03-02"), group="g", member="a")
    c.add("member.joined", t("2026-03-16"), group="g", member="b")
    c.add("message.posted", t("2026-03-10"), group="g", member="a")
    r = c.report(
        "retention",
        from_="2026-03-01",
        to="2026-03-16",
        kind="activity",
        weeks=4,
        as_of="2026-03-23T00:00:00+08:00",
    )
    # W10 (03-02) and W12 (03-16); W11 had no one. 03-01 is a Sunday: its week starts before from.
    assert r == {
        "kind": "activity",
        "cohorts": [
            {"week": "2026-W10", "size": 1, "retained": [0, 1, 0]},
            {"week": "2026-W12", "size": 1, "retained": [0]},
        ],
    }
    m = c.report(
        "retention",
        from_="2026-03-01",
        to="2026-03-16",
        kind="membership",
        weeks=2,
        as_of="2026-03-23T00:00:00+08:00",
    )
    assert m["cohorts"] == [
        {"week": "2026-W10", "size": 1, "retained": [1, 1]},
        {"week": "2026-W12", "size": 1, "retained": [1]},
    ]


def test_lifecycle_whole_weeks_and_earlier_activity(c: Community) -> None:
    c.add("member.joined", t("2026-02-02"), group="g", member="a")
    c.add("message.posted", t("2026-02-02"), group="g", member="a")  # W06, before from
    c.add("message.posted", t("2026-03-04"), group="g", member="a")  # W10: resurrecting
    c.add("member.joined", t("2026-03-02"), group="g", member="b")
    c.add("message.posted", t("2026-03-08", "23:00"), group="g", member="b")  # W10 new
    c.add("message.posted", t("2026-03-09", "08:00"), group="g", member="b")  # W11 returning
    lc = c.report("lifecycle", from_="2026-03-04", to="2026-03-10")
    assert lc == {
        "weeks": [
            {"week": "2026-W10", "new": 1, "returning": 0, "resurrecting": 1, "dormant": 0},
            {"week": "2026-W11", "new": 0, "returning": 1, "resurrecting": 0, "dormant": 1},
        ]
    }


# -- Funnel, channels, money --------------------------------------------------------------------


def test_funnel_window_boundaries(c: Community) -> None:
    fj = "2026-03-02T10:00:00+08:00"
    c.add("member.joined", fj, group="g", member="a", inviter=None)
    c.add(
        "message.posted", "2026-03-09T10:00:00+08:00", group="g", member="a"
    )  # fj + 7 d: activated
    c.add("member.joined", fj, group="g", member="b")
    c.add(
        "message.posted", "2026-03-09T10:00:01+08:00", group="g", member="b"
    )  # just after: retained only
    c.add("member.joined", fj, group="g", member="r")
    c.add("message.posted", fj, group="g", member="r")
    c.add(
        "message.posted", "2026-04-01T10:00:00+08:00", group="g", member="r"
    )  # fj + 30 d: retained
    c.add(
        "order.paid", "2026-04-01T10:00:00+08:00", order="o1", member="r", amount=100
    )  # fj + 30 d
    c.add("order.paid", "2026-04-01T10:00:01+08:00", order="o2", member="b", amount=100)  # too late
    c.add(
        "member.joined",
        "2026-04-01T10:00:00+08:00",
        group="g",
        member="x",
        inviter="a",
        via="invite",
    )
    f = c.report("funnel", from_="2026-03-02", to="2026-03-02", as_of="2026-05-01T00:00:00Z")
    assert f == {"acquired": 3, "activated": 2, "retained": 1, "revenue": 1, "referral": 1}


def test_refunds_whenever_made_and_net_channel_revenue(c: Community) -> None:
    fj = t(D)
    c.add("member.joined", fj, group="g", member="a", channel="ad")
    c.add("order.paid", t(D, "11:00"), order="o1", member="a", amount=1000)
    c.add("order.refunded", t("2026-06-01"), order="o1", amount=400)  # months later still counts
    c.add("order.refunded", t("2026-06-02"), order="o1", amount=600)  # two partials = full
    c.add("order.paid", t(D, "12:00"), order="o2", member="a", amount=500)
    c.add("order.refunded", t(D, "13:00"), order="o2", amount=200)
    c.add("order.refunded", t(D, "09:00"), order="o3", amount=50)  # refund before its order arrives
    c.add("order.paid", t(D, "08:00"), order="o3", member="a", amount=50)
    ch = c.report("channels", from_=D, to=D)
    assert ch == {
        "channels": [
            {"channel": "ad", "acquired": 1, "activated": 0, "revenue_members": 1, "revenue": 300}
        ]
    }
    ov_day = c.report("funnel", from_=D, to=D)
    assert ov_day["revenue"] == 1


def test_channels_first_touch_without_fallback(c: Community) -> None:
    c.add("contact.added", t(D, "08:00"), member="a", staff="s1")  # first touch, no channel
    c.add("member.joined", t(D), group="g", member="a", channel="ad")
    c.add(
        "contact.added", t(D, "08:00"), member="only_contact", staff="s1", channel="ad"
    )  # never joined
    c.add("member.joined", t(D), group="g", member="b", channel="ad")
    c.add("contact.added", t(D, "11:00"), member="b", staff="s1", channel="later")  # after the join
    ch = c.report("channels", from_=D, to=D)["channels"]
    assert ch == [
        {"channel": "(none)", "acquired": 1, "activated": 0, "revenue_members": 0, "revenue": 0},
        {"channel": "ad", "acquired": 1, "activated": 0, "revenue_members": 0, "revenue": 0},
    ]
    assert c.report("funnel", from_=D, to=D)["acquired"] == 2


def test_revenue_on_a_day_is_payments_minus_refunds(c: Community) -> None:
    # Revenue is not one of the seven reports' fields; the channels/funnel money is checked above.
    c.add("member.joined", t(D), group="g", member="a")
    c.add("order.paid", t(D), order="o", member="a", amount=19900)
    assert c.report("funnel", from_=D, to=D)["revenue"] == 1


def test_fractional_and_integer_timestamps(c: Community) -> None:
    c.add("member.joined", "2026-03-02T10:00:00.250+08:00", group="g", member="a")
    c.add("member.left", "2026-03-02T10:00:00.100+08:00", group="g", member="a")  # before the join
    assert c.report("overview", date=D)["members"] == 1
    c.add("member.joined", 1772416800, group="g", member="b")  # 2026-03-02T10:00:00+08:00
    assert c.report("overview", date=D)["members"] == 2
