"""拼团: a team of three completes; another expires and every seat is refunded exactly once (the
orders and refunds projections net to zero); the last seat under concurrency; leaders."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from community import Community
from sqlalchemy import Engine, func, select
from test_campaign_service import join, live_campaign

from quanzi.campaigns import group_buy, jobs_kinds, metrics, service
from quanzi.campaigns.models import Campaign, CampaignAction, CampaignTeam, Participant, TeamSeat
from quanzi.commerce.models import Order, Refund
from quanzi.core.events.models import EventRecord
from quanzi.core.members.models import Member
from quanzi.db.engine import session_scope
from quanzi.jobs import huey, reset_backend
from quanzi.kit.clock import HOUR_US, now_us
from quanzi.kit.errors import InvalidParameter, NotFound

PRICE, GROUP_PRICE = 9_900, 5_900


def team_rules(size: int = 3, leader_only: bool = False) -> dict[str, Any]:
    return {
        "team": {
            "size": size,
            "limit_hours": 24,
            "price_fen": PRICE,
            "group_price_fen": GROUP_PRICE,
            "leader_only": leader_only,
        }
    }


@pytest.fixture
def c(engine: Engine) -> Iterator[Community]:
    reset_backend()  # the job queue in this test's data directory
    yield Community(engine)
    reset_backend()


def people(engine: Engine, cid: int, n: int, first: int = 0) -> list[int]:
    return [join(engine, cid, phone=f"1381234{i:04d}")[0] for i in range(first, first + n)]


def open_team(engine: Engine, cid: int, leader: int, at: int | None = None) -> int:
    with session_scope(engine) as s:
        camp = s.get(Campaign, cid)
        p = s.get(Participant, leader)
        assert camp is not None and p is not None
        return group_buy.open_team(s, camp, p, now_us=at).id


def pay(engine: Engine, cid: int, team_id: int, pid: int, order: str, at: int | None = None) -> int:
    with session_scope(engine) as s:
        camp = s.get(Campaign, cid)
        p = s.get(Participant, pid)
        assert camp is not None and p is not None
        team = group_buy.get_team(s, camp, team_id)
        return group_buy.pay(s, camp, team, p, order, GROUP_PRICE, now_us=at).id


def team_row(engine: Engine, team_id: int) -> CampaignTeam:
    with session_scope(engine) as s:
        team = s.get(CampaignTeam, team_id)
        assert team is not None
        return team


def campaign_money(engine: Engine, ws_id: int, key: str) -> tuple[int, int, int]:
    """(orders, paid fen, refunded fen) of the campaign, from the orders projections."""
    with session_scope(engine) as s:
        orders = s.execute(
            select(Order.platform, Order.order_key, Order.amount_fen).where(
                Order.workspace_id == ws_id, Order.campaign == key
            )
        ).all()
        refunded = 0
        for platform, order_key, _amount in orders:
            refunded += int(
                s.scalar(
                    select(func.coalesce(func.sum(Refund.amount_fen), 0)).where(
                        Refund.workspace_id == ws_id,
                        Refund.platform == platform,
                        Refund.order_key == order_key,
                    )
                )
                or 0
            )
        return len(orders), sum(a for _p, _k, a in orders), refunded


def dashboard_money(c: Community, cid: int) -> tuple[int, int]:
    """(orders, revenue) as the campaign dashboard attributes them."""
    with session_scope(c.engine) as s:
        figures = metrics.campaign_metrics(s, c.ws_id, cid)
        return figures.orders, figures.revenue_fen


def events_of(engine: Engine, ws_id: int, kind: str) -> list[str]:
    with session_scope(engine) as s:
        return list(
            s.scalars(
                select(EventRecord.event_id).where(
                    EventRecord.workspace_id == ws_id, EventRecord.type == kind
                )
            )
        )


def run_queued_jobs(engine: Engine) -> int:
    """Do what the commits queued (the worker's part) against this test's database (a worker
    would use the configured one); returns how many jobs there were."""
    ran = 0
    while (task := huey.dequeue()) is not None:
        assert task.name == "log_campaign_orders"
        group_buy.log_orders(engine, *task.args)
        ran += 1
    return ran


def test_a_team_of_three_completes_and_its_orders_reach_the_log(c: Community) -> None:
    cid = live_campaign(c.engine, c.ws_id, "group_buy", team_rules(), key="pin3")
    leader, a, b = people(c.engine, cid, 3)
    team_id = open_team(c.engine, cid, leader)
    assert open_team(c.engine, cid, leader) == team_id  # the leader's open team, again
    for pid, order in ((leader, "o-1"), (a, "o-2")):
        pay(c.engine, cid, team_id, pid, order)
        assert team_row(c.engine, team_id).status == "open"
    seat_b = pay(c.engine, cid, team_id, b, "o-3")
    assert pay(c.engine, cid, team_id, b, "o-3") == seat_b  # the same payment reported twice
    team = team_row(c.engine, team_id)
    assert (team.status, team.filled) == ("complete", 3) and team.closed_at_us is not None
    with session_scope(c.engine) as s:
        kinds = s.scalars(
            select(CampaignAction.kind).where(CampaignAction.campaign_id == cid)
        ).all()
    assert kinds.count("team_pay") == 3 and kinds.count("team_done") == 1

    assert events_of(c.engine, c.ws_id, "order.paid") == []  # not before the worker runs
    assert run_queued_jobs(c.engine) == 3
    assert campaign_money(c.engine, c.ws_id, "pin3") == (3, 3 * GROUP_PRICE, 0)
    assert dashboard_money(c, cid) == (3, 3 * GROUP_PRICE)
    # The payers are known by phone only: their orders carry the page as platform.
    with session_scope(c.engine) as s:
        buyers = s.scalars(
            select(Member.member_key).join(Order, Order.member_id == Member.id)
        ).all()
    assert sorted(buyers) == sorted(f"p{p}" for p in (leader, a, b))
    # A complete team is not touched by the expiry, even long after its deadline.
    report = jobs_kinds.sweep(c.engine, now_us=now_us() + 48 * HOUR_US)
    assert report.teams_refunded == 0
    assert team_row(c.engine, team_id).status == "complete"


def test_an_unfilled_team_expires_and_every_seat_is_refunded_exactly_once(c: Community) -> None:
    cid = live_campaign(c.engine, c.ws_id, "group_buy", team_rules(), key="pin-x")
    start = now_us()
    leader, a, late = people(c.engine, cid, 3)
    team_id = open_team(c.engine, cid, leader, at=start)
    pay(c.engine, cid, team_id, leader, "x-1", at=start + HOUR_US)
    pay(c.engine, cid, team_id, a, "x-2", at=start + 2 * HOUR_US)
    after = start + 25 * HOUR_US
    with pytest.raises(group_buy.TeamClosed, match="past its deadline"):
        pay(c.engine, cid, team_id, late, "x-3", at=after)

    # The expiry commits, then the process dies before logging the refunds.
    with session_scope(c.engine) as s:
        expired = group_buy.expire_due_teams(s, now_us=after)
    assert expired.teams == 1 and len(expired.refunds) == 2
    team = team_row(c.engine, team_id)
    assert (team.status, team.closed_at_us) == ("expired", after)
    with session_scope(c.engine) as s:
        seats = s.scalars(select(TeamSeat).where(TeamSeat.team_id == team_id)).all()
        assert [seat.refunded_at_us for seat in seats] == [after, after]
    assert events_of(c.engine, c.ws_id, "order.refunded") == []

    # The next sweep logs what was left out; running it again changes nothing.
    for _ in range(2):
        report = jobs_kinds.sweep(c.engine, now_us=after + 60_000_000)
        assert report.teams_refunded == 0
    run_queued_jobs(
        c.engine
    )  # the payments' own jobs: the sweep already logged them, so duplicates
    refunds = events_of(c.engine, c.ws_id, "order.refunded")
    assert len(refunds) == len(set(refunds)) == 2
    assert campaign_money(c.engine, c.ws_id, "pin-x") == (2, 2 * GROUP_PRICE, 2 * GROUP_PRICE)
    assert dashboard_money(c, cid) == (0, 0)  # fully refunded orders are not attributed
    with session_scope(c.engine) as s:
        total = s.scalar(
            select(func.count()).select_from(Refund).where(Refund.workspace_id == c.ws_id)
        )
    assert total == 2  # one order.refunded per seat, once


def test_the_sweep_expires_and_logs_in_one_go(c: Community) -> None:
    cid = live_campaign(c.engine, c.ws_id, "group_buy", team_rules(size=4), key="pin-s")
    start = now_us()
    leader, a = people(c.engine, cid, 2)
    team_id = open_team(c.engine, cid, leader, at=start)
    pay(c.engine, cid, team_id, leader, "s-1", at=start)
    pay(c.engine, cid, team_id, a, "s-2", at=start)
    empty = open_team(c.engine, cid, a, at=start)  # opened, nobody paid
    report = jobs_kinds.sweep(c.engine, now_us=start + 30 * HOUR_US)
    assert report.teams_refunded == 2
    assert report.orders_logged == 4  # the two payments (their jobs never ran) and two refunds
    assert team_row(c.engine, empty).status == "expired"
    assert campaign_money(c.engine, c.ws_id, "pin-s") == (2, 2 * GROUP_PRICE, 2 * GROUP_PRICE)


def test_teams_of_a_cancelled_campaign_are_refunded(c: Community) -> None:
    cid = live_campaign(c.engine, c.ws_id, "group_buy", team_rules(), key="pin-c")
    leader, a = people(c.engine, cid, 2)
    team_id = open_team(c.engine, cid, leader)
    pay(c.engine, cid, team_id, leader, "c-1")
    with session_scope(c.engine) as s:
        service.cancel(s, c.ws_id, cid, "owner@example.com")
    with pytest.raises(service.CampaignClosed, match="cancelled"):
        pay(c.engine, cid, team_id, a, "c-2")
    report = jobs_kinds.sweep(c.engine)
    assert report.teams_refunded == 1
    assert campaign_money(c.engine, c.ws_id, "pin-c") == (1, GROUP_PRICE, GROUP_PRICE)


def test_the_last_seat_goes_to_exactly_one_of_many_concurrent_payers(c: Community) -> None:
    cid = live_campaign(c.engine, c.ws_id, "group_buy", team_rules(size=3), key="pin-r")
    pids = people(c.engine, cid, 10)
    team_id = open_team(c.engine, cid, pids[0])
    pay(c.engine, cid, team_id, pids[0], "r-0")
    pay(c.engine, cid, team_id, pids[1], "r-1")
    start = threading.Barrier(8)

    def one(pid: int) -> str:
        start.wait()
        try:
            pay(c.engine, cid, team_id, pid, f"r-{pid}")
            return "seat"
        except group_buy.TeamFull:
            return "full"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(one, pids[2:]))
    assert sorted(outcomes) == ["full"] * 7 + ["seat"]
    team = team_row(c.engine, team_id)
    assert (team.status, team.filled) == ("complete", 3)
    with session_scope(c.engine) as s:
        assert s.scalar(select(func.count()).select_from(TeamSeat)) == 3
        paid = s.scalars(select(CampaignAction.kind).where(CampaignAction.kind == "team_pay"))
        assert len(paid.all()) == 3


def test_leader_only_teams_are_opened_by_marked_leaders(c: Community) -> None:
    cid = live_campaign(c.engine, c.ws_id, "group_buy", team_rules(leader_only=True), key="pin-l")
    leader, other = people(c.engine, cid, 2)
    with pytest.raises(service.NotEligible, match="only leaders"):
        open_team(c.engine, cid, other)
    with session_scope(c.engine) as s:
        camp = s.get(Campaign, cid)
        p = s.get(Participant, leader)
        assert camp is not None and p is not None
        assert group_buy.mark_leader(s, camp, p, "owner@example.com") is True
        assert group_buy.mark_leader(s, camp, p, "owner@example.com") is False
    team_id = open_team(c.engine, cid, leader)
    with session_scope(c.engine) as s:
        camp = s.get(Campaign, cid)
        p = s.get(Participant, other)
        assert camp is not None and p is not None
        team = group_buy.get_team(s, camp, team_id)
        assert group_buy.join_team(s, camp, team, p) == GROUP_PRICE
    pay(c.engine, cid, team_id, other, "l-1")  # anyone may join a leader's team


def test_bad_payments_are_refused_by_name_and_change_nothing(c: Community) -> None:
    cid = live_campaign(c.engine, c.ws_id, "group_buy", team_rules(), key="pin-b")
    other = live_campaign(c.engine, c.ws_id, "group_buy", team_rules(), key="pin-o")
    leader, a = people(c.engine, cid, 2)
    team_id = open_team(c.engine, cid, leader)
    pay(c.engine, cid, team_id, leader, "b-1")
    stranger = people(c.engine, other, 1, first=50)[0]

    def attempt(pid: int, order: Any, amount: Any, campaign_id: int = cid) -> None:
        with session_scope(c.engine) as s:
            camp = s.get(Campaign, campaign_id)
            p = s.get(Participant, pid)
            assert camp is not None and p is not None
            team = group_buy.get_team(s, camp, team_id)
            group_buy.pay(s, camp, team, p, order, amount)

    cases: list[tuple[Any, ...]] = [
        (a, "b-2", PRICE, InvalidParameter, "amount_fen: the group price is 5900"),
        (a, "b-2", "5900", InvalidParameter, "amount_fen: give a whole number"),
        (a, "has space", GROUP_PRICE, InvalidParameter, "order_key"),
        (a, "", GROUP_PRICE, InvalidParameter, "order_key"),
        (a, "b-1", GROUP_PRICE, InvalidParameter, "already paid another seat"),
        (leader, "b-9", GROUP_PRICE, InvalidParameter, "already has a seat"),
        (stranger, "b-3", GROUP_PRICE, InvalidParameter, "not in this campaign"),
    ]
    for pid, order, amount, error, message in cases:
        with pytest.raises(error, match=message):
            attempt(pid, order, amount)
    with pytest.raises(NotFound, match="not in this campaign"):
        attempt(stranger, "b-4", GROUP_PRICE, campaign_id=other)
    team = team_row(c.engine, team_id)
    assert (team.status, team.filled) == ("open", 1)
    with session_scope(c.engine) as s:
        assert s.scalar(select(func.count()).select_from(TeamSeat)) == 1
        camp = s.get(Campaign, cid)
        p = s.get(Participant, leader)
        assert camp is not None and p is not None
        with pytest.raises(InvalidParameter, match="not a 拼团"):
            group_buy.open_team(s, _as_kind(camp, "bargain"), p)


def _as_kind(campaign: Campaign, kind: str) -> Campaign:
    """A detached copy of a campaign claiming another kind (what a wrong route would pass)."""
    return Campaign(id=campaign.id, key=campaign.key, kind=kind, rules=campaign.rules)
