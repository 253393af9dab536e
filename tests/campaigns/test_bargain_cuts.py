"""砍价: cuts with exact sums, no zero cut, never below the floor, front-loaded (property-based over
thousands of random bargains); bargains in the database: once per helper, the floor, time,
buying at the floor price, and concurrent helpers."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from community import Community
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from test_campaign_service import join, live_campaign, make_reward

from quanzi.campaigns import bargain, jobs_kinds
from quanzi.campaigns.bargain import draw_cuts, next_cut
from quanzi.campaigns.models import Bargain, Campaign, CampaignAction, Participant, RewardClaim
from quanzi.commerce.models import Order
from quanzi.db.engine import session_scope
from quanzi.jobs import reset_backend
from quanzi.kit.clock import HOUR_US, now_us
from quanzi.kit.errors import InvalidParameter, NotFound


@st.composite
def bargains(draw: st.DrawFn) -> tuple[int, int, int, int]:
    """(price, floor, helpers, rng seed) with 0 <= floor < price and price − floor >= helpers."""
    helpers = draw(st.integers(1, 200))
    total = draw(st.one_of(st.integers(helpers, helpers + 50), st.integers(helpers, 10**9)))
    floor = draw(st.integers(0, 10**7))
    seed = draw(st.integers(0, 2**32))
    return floor + total, floor, helpers, seed


@settings(max_examples=3000, derandomize=True)
@given(bargains())
def test_cuts_add_up_exactly_and_none_is_zero(case: tuple[int, int, int, int]) -> None:
    price, floor, helpers, seed = case
    cuts = draw_cuts(price - floor, helpers, random.Random(seed))
    assert len(cuts) == helpers
    assert sum(cuts) == price - floor
    assert min(cuts) >= 1
    assert cuts == sorted(cuts, reverse=True)


@settings(max_examples=2000, derandomize=True)
@given(bargains())
def test_no_step_goes_below_the_floor_and_the_last_lands_on_it(
    case: tuple[int, int, int, int],
) -> None:
    price, floor, helpers, seed = case
    cuts = draw_cuts(price - floor, helpers, random.Random(seed))
    current = price
    for taken in range(helpers):
        step = next_cut(cuts, taken, price, floor)
        assert step.cut_fen >= 1
        assert step.current_fen == current - step.cut_fen
        assert step.current_fen >= floor
        assert step.complete == (taken == helpers - 1)
        current = step.current_fen
    assert current == floor
    with pytest.raises(ValueError, match="every cut"):
        next_cut(cuts, helpers, price, floor)


def test_the_first_cut_is_the_big_one_on_a_typical_bargain() -> None:
    rng = random.Random(7)
    for _ in range(200):
        cuts = draw_cuts(9_900, 10, rng)
        # Front-loaded: the first three cuts take more than half of the way to the floor.
        assert sum(cuts[:3]) > 9_900 // 2
        assert cuts[0] > cuts[-1]


def test_cuts_are_random_but_reproducible_from_the_rng() -> None:
    a = draw_cuts(5_000, 8, random.Random(1))
    assert a == draw_cuts(5_000, 8, random.Random(1))
    assert a != draw_cuts(5_000, 8, random.Random(2))


def test_tight_bargain_is_one_fen_each() -> None:
    assert draw_cuts(5, 5, random.Random(0)) == [1, 1, 1, 1, 1]
    assert draw_cuts(7, 1, random.Random(0)) == [7]


@pytest.mark.parametrize(
    ("total", "helpers", "message"), [(4, 5, "at least helpers"), (9, 0, "at least 1")]
)
def test_impossible_bargains_are_refused(total: int, helpers: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        draw_cuts(total, helpers, random.Random(0))


def test_tampered_cuts_cannot_take_the_price_below_the_floor() -> None:
    with pytest.raises(ValueError, match="below the floor"):
        next_cut([60, 50], 1, 200, 100)


# --- bargains in the database -----------------------------------------------------------------


@pytest.fixture
def c(engine: Engine) -> Iterator[Community]:
    reset_backend()  # the job queue in this test's data directory
    yield Community(engine)
    reset_backend()


def bargain_rules(
    price: int = 9_900, floor: int = 100, helpers: int = 5, reward_id: int | None = None
) -> dict[str, Any]:
    return {
        "bargain": {
            "price_fen": price,
            "floor_fen": floor,
            "helpers": helpers,
            "hours": 24,
            "reward_id": reward_id,
        }
    }


def start(engine: Engine, cid: int, pid: int, at: int | None = None) -> int:
    with session_scope(engine) as s:
        camp, p = s.get(Campaign, cid), s.get(Participant, pid)
        assert camp is not None and p is not None
        return bargain.start_bargain(s, camp, p, rng=random.Random(pid), now_us=at).id


def cut_by(engine: Engine, cid: int, bid: int, helper: int, at: int | None = None) -> Any:
    with session_scope(engine) as s:
        camp, p = s.get(Campaign, cid), s.get(Participant, helper)
        assert camp is not None and p is not None
        return bargain.cut(s, camp, bargain.get_bargain(s, camp, bid), p, now_us=at)


def row(engine: Engine, bid: int) -> Bargain:
    with session_scope(engine) as s:
        found = s.get(Bargain, bid)
        assert found is not None
        return found


def test_a_bargain_completes_at_exactly_the_floor_and_grants_its_reward(c: Community) -> None:
    reward = make_reward(c.engine, c.ws_id, stock=10, kind="physical", cost=1_500)
    cid = live_campaign(c.engine, c.ws_id, "bargain", bargain_rules(reward_id=reward), key="kan")
    owner, *helpers = (join(c.engine, cid, phone=f"1391234{i:04d}")[0] for i in range(7))
    bid = start(c.engine, cid, owner)
    assert start(c.engine, cid, owner) == bid  # one bargain per participant
    cuts = row(c.engine, bid).cuts
    assert len(cuts) == 5 and sum(cuts) == 9_800
    current = 9_900
    for i, helper in enumerate(helpers[:5]):
        step = cut_by(c.engine, cid, bid, helper)
        assert step.index == i and step.cut_fen == cuts[i]
        current -= cuts[i]
        assert step.current_fen == current == row(c.engine, bid).current_fen >= 100
        assert cut_by(c.engine, cid, bid, helper) is None  # each helper cuts once
        assert row(c.engine, bid).taken == i + 1
    done = row(c.engine, bid)
    assert done.current_fen == 100 and done.completed_at_us is not None and step.complete
    with pytest.raises(bargain.BargainClosed, match="floor price"):
        cut_by(c.engine, cid, bid, helpers[5])
    with session_scope(c.engine) as s:
        claims = s.scalars(select(RewardClaim).where(RewardClaim.campaign_id == cid)).all()
        assert [(cl.participant_id, cl.reason, cl.status) for cl in claims] == [
            (owner, "bargain", "pending")
        ]
        cut_actions = s.scalars(
            select(CampaignAction).where(CampaignAction.kind == "cut").order_by(CampaignAction.id)
        ).all()
        assert [a.amount_fen for a in cut_actions] == cuts
        assert [a.other_id for a in cut_actions] == helpers[:5]


def test_nobody_cuts_their_own_price_and_strangers_are_refused(c: Community) -> None:
    cid = live_campaign(c.engine, c.ws_id, "bargain", bargain_rules(), key="kan-b")
    other = live_campaign(c.engine, c.ws_id, "bargain", bargain_rules(), key="kan-o")
    owner = join(c.engine, cid, phone="13912340000")[0]
    stranger = join(c.engine, other, phone="13912340001")[0]
    bid = start(c.engine, cid, owner)
    with pytest.raises(InvalidParameter, match="own price"):
        cut_by(c.engine, cid, bid, owner)
    with pytest.raises(InvalidParameter, match=r"helper: participant \d+ is not in this campaign"):
        cut_by(c.engine, cid, bid, stranger)
    with pytest.raises(NotFound):
        cut_by(c.engine, other, bid, stranger)
    assert row(c.engine, bid).taken == 0


def test_time_runs_out_and_the_sweep_records_it_once(c: Community) -> None:
    cid = live_campaign(c.engine, c.ws_id, "bargain", bargain_rules(), key="kan-t")
    t0 = now_us()
    owner, helper = (join(c.engine, cid, phone=f"1391234{i:04d}")[0] for i in range(2))
    bid = start(c.engine, cid, owner, at=t0)
    cut_by(c.engine, cid, bid, helper, at=t0 + HOUR_US)
    with pytest.raises(bargain.BargainClosed, match="time is up"):
        cut_by(
            c.engine, cid, bid, join(c.engine, cid, phone="13912349999")[0], at=t0 + 25 * HOUR_US
        )
    assert jobs_kinds.sweep(c.engine, now_us=t0 + 23 * HOUR_US).bargains_expired == 0
    assert jobs_kinds.sweep(c.engine, now_us=t0 + 25 * HOUR_US).bargains_expired == 1
    assert jobs_kinds.sweep(c.engine, now_us=t0 + 26 * HOUR_US).bargains_expired == 0
    assert row(c.engine, bid).completed_at_us is None


def test_buying_at_the_floor_price_is_an_order_of_the_campaign(c: Community) -> None:
    cid = live_campaign(c.engine, c.ws_id, "bargain", bargain_rules(helpers=2), key="kan-p")
    owner, h1, h2 = (join(c.engine, cid, phone=f"1391234{i:04d}")[0] for i in range(3))
    bid = start(c.engine, cid, owner)

    def buy(order: str) -> int:
        with session_scope(c.engine) as s:
            camp = s.get(Campaign, cid)
            assert camp is not None
            return bargain.pay_bargain(s, camp, bargain.get_bargain(s, camp, bid), order).id

    cut_by(c.engine, cid, bid, h1)
    with pytest.raises(InvalidParameter, match="not at the floor price yet"):
        buy("kp-1")
    cut_by(c.engine, cid, bid, h2)
    action = buy("kp-1")
    assert buy("kp-1") == action
    with pytest.raises(InvalidParameter, match="already paid by another order"):
        buy("kp-2")
    jobs_kinds.sweep(c.engine)  # logs the order its job would have logged
    with session_scope(c.engine) as s:
        orders = s.execute(select(Order.order_key, Order.amount_fen, Order.campaign)).all()
    assert [tuple(o) for o in orders] == [("kp-1", 100, "kan-p")]


def test_concurrent_helpers_never_take_the_same_cut(c: Community) -> None:
    cid = live_campaign(
        c.engine, c.ws_id, "bargain", bargain_rules(price=5_000, floor=0, helpers=8), key="kan-r"
    )
    owner, *helpers = (join(c.engine, cid, phone=f"1391234{i:04d}")[0] for i in range(21))
    bid = start(c.engine, cid, owner)
    gate = threading.Barrier(len(helpers))

    def one(helper: int) -> str:
        gate.wait()
        try:
            return "cut" if cut_by(c.engine, cid, bid, helper) is not None else "again"
        except bargain.BargainClosed:
            return "closed"

    with ThreadPoolExecutor(len(helpers)) as pool:
        outcomes = list(pool.map(one, helpers))
    assert outcomes.count("cut") == 8 and outcomes.count("closed") == 12
    done = row(c.engine, bid)
    assert (done.taken, done.current_fen) == (8, 0) and done.completed_at_us is not None
    with session_scope(c.engine) as s:
        details = s.scalars(select(CampaignAction.detail).where(CampaignAction.kind == "cut"))
        taken = sorted(d["index"] for d in details.all())
        amounts = s.scalars(select(CampaignAction.amount_fen).where(CampaignAction.kind == "cut"))
        assert taken == list(range(8)) and sum(a or 0 for a in amounts.all()) == 5_000


@settings(
    max_examples=12,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(bargains())
def test_random_bargains_in_the_database_end_exactly_at_the_floor(
    c: Community, case: tuple[int, int, int, int]
) -> None:
    price, floor, helpers, seed = case
    helpers = min(helpers, 12)  # each helper is a participant: keep the database work small
    with session_scope(c.engine) as s:
        n = s.scalar(select(func.count()).select_from(Campaign)) or 0
    cid = live_campaign(
        c.engine, c.ws_id, "bargain", bargain_rules(price, floor, helpers), key=f"k{n}"
    )
    owner, *friends = (
        join(c.engine, cid, phone=f"139{seed % 1000:03d}{i:05d}")[0] for i in range(helpers + 1)
    )
    bid = start(c.engine, cid, owner)
    for friend in friends:
        step = cut_by(c.engine, cid, bid, friend)
        assert step.current_fen >= floor
    assert row(c.engine, bid).current_fen == floor
