"""The pre-launch forecast: the branching process against theory, the time window and the cap,
reward costing, and the history read from a hand-made community (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from datetime import datetime
from typing import Any

import pytest
from community import Community
from sqlalchemy import Engine

from quanzi.campaigns.forecast import (
    RewardPlan,
    Run,
    forecast_campaign,
    forecast_vs_actual,
    quantile,
    simulate,
)
from quanzi.campaigns.models import Campaign, Participant, Reward, RewardClaim
from quanzi.core.members.models import Member
from quanzi.db.engine import session_scope
from quanzi.kit.clock import DAY_US, HOUR_US, to_us
from quanzi.kit.errors import InvalidParameter

FAR = 10**15  # a horizon nothing reaches


def poisson_sample(m: float, n: int) -> list[int]:
    """n offspring counts in the exact proportions of Poisson(m) (rounded)."""
    out: list[int] = []
    for k in range(30):
        out += [k] * round(n * math.exp(-m) * m**k / math.factorial(k))
    return out


def test_subcritical_mean_reach_is_one_over_one_minus_m() -> None:
    offspring = poisson_sample(0.8, 10_000)
    m = sum(offspring) / len(offspring)
    assert abs(m - 0.8) < 0.01
    runs = simulate(offspring, [HOUR_US], seeds=10, horizon_us=FAR, runs=2000, seed=7)
    per_seed = sum(r.participants for r in runs) / (2000 * 10)
    # Total progeny of a Galton–Watson tree with mean m < 1: 1 / (1 − m) = 5 per seed; the
    # standard error over 20,000 trees is ~0.07, so 0.35 is five of them.
    assert abs(per_seed - 1 / (1 - m)) < 0.35
    assert all(r.acquired == r.participants - 10 and not r.capped for r in runs)
    # Everyone but the seeds was brought by someone.
    assert all(sum(k * n for k, n in r.brought.items()) == r.acquired for r in runs)


def test_deterministic_for_a_seed() -> None:
    offspring, delays = poisson_sample(0.9, 1000), [HOUR_US, 5 * HOUR_US, DAY_US]
    a = simulate(offspring, delays, seeds=5, horizon_us=3 * DAY_US, runs=300, seed=42)
    b = simulate(offspring, delays, seeds=5, horizon_us=3 * DAY_US, runs=300, seed=42)
    c = simulate(offspring, delays, seeds=5, horizon_us=3 * DAY_US, runs=300, seed=43)
    assert a == b
    assert [r.participants for r in a] != [r.participants for r in c]


def test_supercritical_history_is_bounded_by_the_time_window() -> None:
    # Everyone brings exactly 2 people, one day later: 10, 20, 40, 80, 160 on days 0..4; the
    # day-5 generation falls after a 5-day campaign.
    runs = simulate([2], [DAY_US], seeds=10, horizon_us=5 * DAY_US, runs=50, seed=1)
    assert {r.participants for r in runs} == {310}
    assert not any(r.capped for r in runs)
    assert runs[0].brought == Counter({2: 150, 0: 160})
    longer = simulate([2], [DAY_US], seeds=10, horizon_us=7 * DAY_US, runs=5, seed=1)
    assert {r.participants for r in longer} == {1270}


def test_the_cap_keeps_the_earliest_participants() -> None:
    runs = simulate([2], [DAY_US], seeds=10, horizon_us=30 * DAY_US, runs=3, seed=1, cap=100)
    for r in runs:
        # Days 0..2 hold 10 + 20 + 40 people; the first 30 born of the 80 of day 3 fill the
        # cap: children of 15 of day 2. So 10 + 20 + 15 brought two, the rest none.
        assert (r.participants, r.acquired, r.capped) == (100, 90, True)
        assert r.brought == Counter({2: 45, 0: 55})
    # An explosive history stops early, after at least one run, within the work budget.
    few = simulate([3], [HOUR_US], seeds=10, horizon_us=FAR, runs=50, seed=1, cap=5000, budget=1)
    assert len(few) == 1 and few[0].participants == 5000


def test_no_invites_in_history_gives_the_seeds_alone() -> None:
    runs = simulate([0, 0, 0], [], seeds=7, horizon_us=DAY_US, runs=10, seed=1)
    assert {(r.participants, r.acquired) for r in runs} == {(7, 0)}


def test_quantiles_are_nearest_rank() -> None:
    values = list(range(10, 0, -1))
    assert [quantile(values, q) for q in (0.1, 0.5, 0.9)] == [1, 5, 9]
    assert quantile([4], 0.9) == 4


def run_of(participants: int, brought: dict[int, int]) -> Run:
    return Run(participants, participants - 1, Counter(brought), False)


def test_reward_plan_costs_tiers_caps_stock_prizes_and_draws() -> None:
    tiers = RewardPlan({1: 100, 2: 1000}, {1: None, 2: 3}, thresholds=[(3, 2), (1, 1)])
    # 5 brought none, 4 brought 1 or 2 (tier 1), 2 brought 3+ (tiers 1 and 2).
    run = run_of(11, {0: 5, 1: 3, 2: 1, 3: 1, 7: 1})
    assert tiers.given(run) == Counter({1: 6, 2: 2})
    assert tiers.cost(run) == 6 * 100 + 2 * 1000
    # Stock 3 of reward 2: at most 3 are paid for.
    assert tiers.cost(run_of(9, {3: 9})) == 9 * 100 + 3 * 1000
    capped = RewardPlan({1: 100, 2: 1000}, {}, thresholds=[(1, 1), (3, 2)], per_person_cap=1)
    assert capped.given(run) == Counter({1: 6})
    gift = RewardPlan({5: 50, 6: 30}, {}, per_brought=[(5, 2, True), (6, 2, False)])
    assert gift.cost(run_of(3, {0: 1, 1: 1, 4: 1})) == (1 + 2) * 50 + (1 + 2) * 30
    board = RewardPlan({9: 800, 8: 100}, {}, prizes=[(1, 1, 9), (2, 10, 8)])
    # Four people brought someone: ranks 1..4 win.
    assert board.cost(run_of(20, {0: 16, 1: 2, 5: 2})) == 800 + 3 * 100
    draw = RewardPlan({4: 200}, {4: 2}, draw=(5, 4))
    assert draw.cost(run_of(3, {0: 3})) == 2 * 200  # 3 participants, stock of 2


# --- the history, from events -----------------------------------------------------------------


def us(text: str) -> int:
    return to_us(datetime.fromisoformat(text + "+08:00"))


def history(c: Community) -> None:
    """With now = 04-28 and 60 days of history, the population's first joins are in
    02-27..04-18 (a 7-day campaign plus the 72 h hold before the history ends): p1 (two valid
    invites, 24 h and 72 h after its first join; q4 left within the hold), p2 (an invite 10
    days later: past the campaign's length), p3, q1..q4, r1; p0, p4 and staff are outside."""

    def join(t: str, member: str, inviter: str | None = None, **kw: Any) -> None:
        extra = {"inviter": inviter, "via": "invite"} if inviter else {}
        c.add("member.joined", t + "+08:00", group="g1", member=member, **extra, **kw)

    join("2026-02-01T10:00:00", "p0")
    join("2026-03-05T10:00:00", "r1", "p0")
    join("2026-03-10T10:00:00", "p1")
    join("2026-03-11T10:00:00", "q1", "p1")
    join("2026-03-12T10:00:00", "q4", "p1")
    c.add("member.left", "2026-03-12T20:00:00+08:00", group="g1", member="q4")
    join("2026-03-13T10:00:00", "q2", "p1")
    join("2026-03-15T10:00:00", "s1", is_staff=True)
    join("2026-03-20T10:00:00", "p2")
    join("2026-03-30T10:00:00", "q3", "p2")
    join("2026-04-01T10:00:00", "p3")
    join("2026-04-25T10:00:00", "p4")


def make_campaign(engine: Engine, ws: int, rules: dict[str, Any]) -> int:
    with session_scope(engine) as s:
        reward = Reward(
            workspace_id=ws,
            name="课程",
            kind="content_link",
            unit_cost_fen=300,
            stock=None,
            claimed=0,
            config={},
            active=True,
            created_at_us=0,
        )
        s.add(reward)
        s.flush()
        camp = Campaign(
            workspace_id=ws,
            key="may",
            slug="may-x",
            kind="invite_task",
            name="五月任务宝",
            status="draft",
            starts_at_us=us("2026-05-01T00:00:00"),
            ends_at_us=us("2026-05-08T00:00:00"),
            rules={**rules, "tiers": [{"invites": 1, "reward_id": reward.id}], "count": "join"},
            copy_text={},
            created_at_us=0,
            updated_at_us=0,
        )
        s.add(camp)
        s.flush()
        return camp.id


NOW = us("2026-04-28T00:00:00")


def test_history_offspring_delays_and_stored_forecast(engine: Engine) -> None:
    c = Community(engine)
    history(c)
    cid = make_campaign(engine, c.ws_id, {"hold_hours": 72})
    with session_scope(engine) as s:
        f = forecast_campaign(s, c.ws_id, cid, seeds=10, runs=500, seed=3, window_days=60, now=NOW)
    inputs = f["inputs"]
    # The history ends at the earlier of the start and now; 60 days back from there.
    assert inputs["history_to_us"] == NOW
    assert inputs["history_from_us"] == NOW - 60 * DAY_US
    assert (inputs["population"], inputs["invites"]) == (8, 2)
    assert (inputs["mean_offspring"], inputs["zero_share"]) == (0.25, 0.875)
    assert inputs["median_delay_hours"] == 48.0
    assert inputs["runs_made"] == 500 and f["capped_runs"] == 0
    p, a, cost = f["participants"], f["acquired"], f["reward_cost_fen"]
    assert 10 <= p["p10"] <= p["p50"] <= p["p90"] and a["p50"] == p["p50"] - 10
    assert cost["p10"] <= cost["p50"] <= cost["p90"]
    with session_scope(engine) as s:
        stored = s.get(Campaign, cid)
        assert stored is not None and stored.forecast == f
        again = forecast_campaign(
            s, c.ws_id, cid, seeds=10, runs=500, seed=3, window_days=60, now=NOW
        )
    assert again["participants"] == p and again["reward_cost_fen"] == cost


def test_forecast_beside_what_happened(engine: Engine) -> None:
    c = Community(engine)
    history(c)
    cid = make_campaign(engine, c.ws_id, {})
    with session_scope(engine) as s:
        with pytest.raises(InvalidParameter, match="no forecast"):
            forecast_vs_actual(s, c.ws_id, cid)
        forecast_campaign(s, c.ws_id, cid, seeds=3, runs=200, seed=1, window_days=60, now=NOW)
        member = s.query(Member).filter_by(workspace_id=c.ws_id, member_key="p1").one()
        p = Participant(
            workspace_id=c.ws_id,
            campaign_id=cid,
            member_id=member.id,
            token_digest=hashlib.sha256(b"t").hexdigest(),
            score=0,
            score_at_us=0,
            joined_at_us=us("2026-05-01T10:00:00"),
        )
        s.add(p)
        s.flush()
        camp = s.get(Campaign, cid)
        assert camp is not None
        reward_id = camp.rules["tiers"][0]["reward_id"]
        s.add(
            RewardClaim(
                workspace_id=c.ws_id,
                campaign_id=cid,
                participant_id=p.id,
                reward_id=reward_id,
                reason="tier:1",
                status="granted",
                cost_fen=300,
                claimed_at_us=0,
                updated_at_us=0,
            )
        )
        s.flush()
        out = forecast_vs_actual(s, c.ws_id, cid, as_of_us=us("2026-06-01T00:00:00"))
    assert out["actual"] == {"participants": 1, "acquired": 0, "reward_cost_fen": 300}
    rows = {r["figure"]: r for r in out["rows"]}
    # Three seeds were forecast; one person took part: below the range.
    assert rows["participants"]["p10"] >= 3 and rows["participants"]["within"] is False
    assert rows["acquired"]["within"] is (rows["acquired"]["p10"] == 0)


def test_empty_history_and_bad_inputs_are_clear(engine: Engine) -> None:
    c = Community(engine)
    c.add("member.joined", "2026-04-30T10:00:00+08:00", group="g1", member="late")
    cid = make_campaign(engine, c.ws_id, {})
    with session_scope(engine) as s:
        with pytest.raises(InvalidParameter, match="no invite history"):
            forecast_campaign(s, c.ws_id, cid, seeds=5, now=NOW)
        with pytest.raises(InvalidParameter, match="window_days"):
            forecast_campaign(s, c.ws_id, cid, seeds=5, window_days=5, now=NOW)
        with pytest.raises(InvalidParameter, match="seeds"):
            forecast_campaign(s, c.ws_id, cid, seeds=0, now=NOW)
        with pytest.raises(InvalidParameter, match="runs"):
            forecast_campaign(s, c.ws_id, cid, seeds=5, runs="many", now=NOW)  # type: ignore[arg-type]
        camp = s.get(Campaign, cid)
        assert camp is not None and camp.forecast is None
