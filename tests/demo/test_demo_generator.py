"""The demo generator: deterministic, valid per the event contract, and realistic (seeds 000-003).

Realism is checked on the generator's output alone (no database), at the default size.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from quanzi.core.events.schemas import EventRefused, parse_event
from quanzi.core.events.service import ingest_lines
from quanzi.core.workspaces.service import get_or_create_workspace
from quanzi.db.engine import session_scope
from quanzi.demo import DemoSpec, corpus, estimate_events, generate, generate_lines

END = date(2026, 11, 22)  # the window 2026-08-25 … 2026-11-22 holds Double 11
START = END - timedelta(days=89)
CONTRACT_TYPES = {
    "group.created", "group.updated", "group.dismissed", "member.joined", "member.left",
    "message.posted", "contact.added", "contact.removed", "profile.updated", "order.paid",
    "order.refunded",
}  # fmt: skip
CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")


@pytest.fixture(scope="module")
def community() -> list[dict[str, Any]]:
    return list(generate(42, end_day=END))


@pytest.fixture(scope="module")
def staff(community: list[dict[str, Any]]) -> set[str]:
    return {e["member"] for e in community if e["type"] == "member.joined" and e.get("is_staff")}


@pytest.fixture(scope="module")
def joins(community: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in community if e["type"] == "member.joined" and not e.get("is_staff")]


# --- determinism ----------------------------------------------------------------------------


def test_same_seed_and_arguments_give_identical_bytes() -> None:
    a = b"".join(generate_lines(7, members=400, end_day=END))
    b = b"".join(generate_lines(7, members=400, end_day=END))
    assert a == b
    assert a.count(b"\n") > 2000


def test_different_seed_gives_a_different_community() -> None:
    a = list(generate(7, members=400, end_day=END))
    b = list(generate(8, members=400, end_day=END))
    assert a != b
    # Different communities never share event or member ids: both can live in one workspace.
    assert not {e["id"] for e in a} & {e["id"] for e in b}
    members_a = {e["member"] for e in a if e["type"] == "member.joined" and not e.get("is_staff")}
    members_b = {e["member"] for e in b if e["type"] == "member.joined" and not e.get("is_staff")}
    assert not members_a & members_b


def test_dates_depend_on_end_day_only() -> None:
    a = list(generate(7, members=200, end_day=END))
    b = list(generate(7, members=200, end_day=date(2026, 3, 31)))
    assert a[0]["ts"].startswith(START.isoformat())
    assert b[0]["ts"].startswith("2026-01-01")
    # The first and last events keep their ids whatever the dates (the demo's "loaded" check).
    spec = DemoSpec(seed=7, members=200)
    assert a[0]["id"] == b[0]["id"] == spec.first_event_id
    assert a[-1]["id"] == b[-1]["id"] == spec.marker_event_id


def test_ids_unique_and_events_in_time_order_within_the_window(
    community: list[dict[str, Any]],
) -> None:
    ids = [e["id"] for e in community]
    assert len(ids) == len(set(ids))
    ts = [e["ts"] for e in community]
    assert all(t.endswith("+08:00") for t in ts)
    assert ts == sorted(ts)  # one offset everywhere, so text order is time order
    assert ts[0] >= f"{START}T00:00:00+08:00"
    assert ts[-1] <= f"{END}T23:59:59+08:00"
    assert {e["platform"] for e in community} == {"demo"}


# --- the event contract ---------------------------------------------------------------------


def test_every_line_is_a_valid_event() -> None:
    refused = []
    types = Counter()
    for n, line in enumerate(generate_lines(3, members=600, end_day=END), start=1):
        try:
            ev = parse_event(line)
        except EventRefused as exc:
            refused.append(f"line {n}: {exc}")
            continue
        types[ev.type] += 1
    assert refused == []
    assert set(types) == CONTRACT_TYPES  # every type of the contract is exercised


def test_ingest_applies_every_line(engine: Engine) -> None:
    with session_scope(engine) as session:
        ws_id = get_or_create_workspace(session, "demo").id
    lines = list(generate_lines(5, members=150, days=30, groups=12, end_day=END))
    report = ingest_lines(engine, ws_id, lines)
    assert (report.applied, report.duplicates, report.refused) == (len(lines), 0, [])
    again = ingest_lines(engine, ws_id, lines)
    assert (again.applied, again.duplicates, again.refused, again.warnings) == (
        0,
        len(lines),
        [],
        [],
    )


# --- realism (at the default size) ----------------------------------------------------------


def test_groups_have_themes_and_staff_owners(
    community: list[dict[str, Any]], staff: set[str]
) -> None:
    created = [e for e in community if e["type"] == "group.created"]
    assert len({e["group"] for e in created}) >= 20
    names = [e["name"] for e in created]
    for theme in ("宝妈交流", "读书会", "健身打卡", "福利"):
        assert any(theme in n for n in names), theme
    assert all(e["owner"] in staff for e in created)
    updates = [e for e in community if e["type"] == "group.updated"]
    assert any("name" in e for e in updates) and any("notice" in e for e in updates)
    assert any("owner" in e for e in updates)  # a handover
    assert [e for e in community if e["type"] == "group.dismissed"]


def test_three_thousand_members_and_staff_who_post(
    community: list[dict[str, Any]], staff: set[str], joins: list[dict[str, Any]]
) -> None:
    assert len({e["member"] for e in joins}) >= 3000
    assert 3 <= len(staff) < 50
    staff_posts = [e for e in community if e["type"] == "message.posted" and e["member"] in staff]
    assert len(staff_posts) > 1000
    assert any(e.get("text", "").startswith("【") for e in staff_posts)  # announcements
    assert any(e.get("mentions") for e in staff_posts)  # welcomes @ newcomers


def test_channels_of_different_quality(
    community: list[dict[str, Any]], joins: list[dict[str, Any]]
) -> None:
    channels = {e["channel"] for e in joins if e.get("channel")}
    channels |= {
        e["channel"] for e in community if e["type"] == "contact.added" and e.get("channel")
    }
    assert len(channels) >= 3
    assert {"douyin_live", "xhs_note", "offline_store"} <= channels


def test_invite_chains_with_super_inviters(joins: list[dict[str, Any]], staff: set[str]) -> None:
    invites = Counter(e["inviter"] for e in joins if e.get("inviter") and e["inviter"] not in staff)
    assert invites.most_common(1)[0][1] >= 20
    # A heavy tail: a few people bring in a large share, most bring one or two.
    counts = sorted(invites.values(), reverse=True)
    assert sum(counts[:5]) > 0.15 * sum(counts)
    assert Counter(counts)[1] > len(counts) / 3
    # Chains: some invitees invite in turn.
    invited = {e["member"] for e in joins if e.get("inviter") and e["inviter"] not in staff}
    assert len(invited & set(invites)) >= 20


def test_people_leave_and_come_back(community: list[dict[str, Any]]) -> None:
    history: dict[tuple[str, str], list[str]] = defaultdict(list)
    for e in community:
        if e["type"] in ("member.joined", "member.left"):
            history[(e["group"], e["member"])].append(e["type"])
    rejoined = [
        k
        for k, h in history.items()
        if "member.left" in h and "member.joined" in h[h.index("member.left") + 1 :]
    ]
    assert len(rejoined) >= 10
    left = [e for e in community if e["type"] == "member.left"]
    assert Counter(e.get("via") for e in left)["quit"] > 100


def test_spam_is_posted_then_removed_by_staff(
    community: list[dict[str, Any]], staff: set[str]
) -> None:
    removed = [e for e in community if e["type"] == "member.left" and e.get("via") == "removed"]
    assert len(removed) >= 10
    assert all(e["by"] in staff for e in removed)
    posted_before = set()
    for e in community:
        if e["type"] == "message.posted" and e.get("text") in corpus.SPAM_TEXTS:
            posted_before.add((e["group"], e["member"]))
    assert sum((e["group"], e["member"]) in posted_before for e in removed) >= 0.8 * len(removed)


def test_messages_look_like_group_chat(community: list[dict[str, Any]], staff: set[str]) -> None:
    msgs = [e for e in community if e["type"] == "message.posted"]
    kinds = Counter(e.get("kind", "text") for e in msgs)
    assert kinds["text"] > 0.6 * len(msgs)
    assert {"image", "sticker", "voice", "link", "mini_program", "red_packet"} <= set(kinds)
    assert any(e.get("reply_to") for e in msgs if e["member"] not in staff)
    assert any(e.get("mentions") for e in msgs if e["member"] not in staff)
    # Daily rhythm: evenings busier than the small hours; weekly: all seven days present.
    hours = Counter(int(e["ts"][11:13]) for e in msgs)
    assert hours[21] > 5 * hours[3]
    assert len({date.fromisoformat(e["ts"][:10]).weekday() for e in msgs}) == 7
    assert any("打卡" in e.get("text", "") for e in msgs)


def test_profiles_with_phones_and_cities(community: list[dict[str, Any]]) -> None:
    profiles = [e for e in community if e["type"] == "profile.updated"]
    phones = [e["phone"] for e in profiles if "phone" in e]
    assert len(phones) > 300
    assert all(CN_MOBILE.match(p) and p[:3] in corpus.PHONE_PREFIXES for p in phones)
    owners = defaultdict(set)
    for e in profiles:
        if "phone" in e:
            owners[e["phone"]].add(e["member"])
    assert all(len(m) == 1 for m in owners.values())  # a phone names one person
    assert len({e["city"] for e in profiles if "city" in e}) >= 10
    assert any("unionid" in e for e in profiles)
    assert all(
        isinstance(v, (str, int, float, bool))
        for e in profiles
        for v in e.get("attrs", {}).values()
    )


def test_orders_and_refunds(community: list[dict[str, Any]], joins: list[dict[str, Any]]) -> None:
    orders = {e["order"]: e for e in community if e["type"] == "order.paid"}
    assert len(orders) > 300
    for o in orders.values():
        assert isinstance(o["amount"], int) and o["amount"] > 0
        assert o["items"] and all(
            isinstance(i["qty"], int) and isinstance(i["price"], int) for i in o["items"]
        )
    assert any("campaign" in o for o in orders.values())
    members = {e["member"] for e in joins}
    referrers = [o["referrer"] for o in orders.values() if "referrer" in o]
    assert referrers and set(referrers) <= members
    refunded: dict[str, list[int]] = defaultdict(list)
    for e in community:
        if e["type"] == "order.refunded":
            assert e["order"] in orders  # refunds come after their order
            refunded[e["order"]].append(e["amount"])
    full = [o for o, parts in refunded.items() if sum(parts) == orders[o]["amount"]]
    partial = [o for o, parts in refunded.items() if sum(parts) < orders[o]["amount"]]
    split_full = [o for o in full if len(refunded[o]) >= 2]
    assert full and partial and split_full
    assert all(sum(parts) <= orders[o]["amount"] for o, parts in refunded.items())


def test_double_eleven_peak(community: list[dict[str, Any]], joins: list[dict[str, Any]]) -> None:
    orders_by_day = Counter(e["ts"][:10] for e in community if e["type"] == "order.paid")
    assert orders_by_day.most_common(1)[0][0] == "2026-11-11"
    ordinary = sorted(orders_by_day.values())[len(orders_by_day) // 2]
    assert orders_by_day["2026-11-11"] > 4 * ordinary
    first_join: dict[str, str] = {}
    for e in joins:
        first_join.setdefault(e["member"], e["ts"][:10])
    new_by_day = Counter(first_join.values())
    # The launch days aside, the busiest days for newcomers are Double 11 and its run-up.
    later = {d: n for d, n in new_by_day.items() if d >= "2026-09-01"}
    peak = max(later, key=lambda d: (later[d], d))
    assert "2026-11-01" <= peak <= "2026-11-12"


def test_no_double_eleven_outside_its_window() -> None:
    events = list(generate(42, members=500, days=60, end_day=date(2026, 9, 30)))
    assert not any("double11" in e.get("campaign", "") for e in events)


def _member_messages(events: list[dict[str, Any]]) -> int:
    return sum(
        1 for e in events if e["type"] == "message.posted" and not e["member"].startswith("staff_")
    )


def test_event_volume_knob() -> None:
    events = list(generate(11, members=2000, end_day=END))
    assert 0.8 < len(events) / estimate_events(2000) < 1.25
    busier = list(generate(11, members=2000, end_day=END, activity=2.0))
    assert 0.8 < len(busier) / estimate_events(2000, activity=2.0) < 1.25
    # `activity` scales how often members chat (at most a session a day, so the keenest are
    # capped); staff routines and joins stay as they were.
    assert 1.3 < _member_messages(busier) / _member_messages(events) < 2.1


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        generate(1, members=0)
    with pytest.raises(ValueError):
        generate(1, days=0)
