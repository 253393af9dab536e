"""Before launch: how far a campaign may reach and what its rewards may cost, simulated as a
Galton–Watson branching process over the workspace's own invite history; after it, the forecast
beside what happened. Definitions in docs/campaign-metrics.md ("Forecast")."""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from quanzi.campaigns.metrics import (
    calendar,
    campaign_metrics,
    counted_groups,
    hold_hours,
    invites_between,
)
from quanzi.campaigns.models import Campaign, Reward
from quanzi.campaigns.service import get_campaign
from quanzi.core.members.models import Member
from quanzi.kit.clock import DAY_US, HOUR_US, day_date, now_us
from quanzi.kit.errors import InvalidParameter

DEFAULT_RUNS = 2000
DEFAULT_WINDOW_DAYS = 180
DEFAULT_CAP = 20_000
# People drawn over all runs before a forecast stops early (about 10 s on one core).
WORK_BUDGET = 5_000_000
QUANTILES = (("p10", 0.1), ("p50", 0.5), ("p90", 0.9))


@dataclass(frozen=True, slots=True)
class History:
    """The workspace's invite history before the campaign: one offspring count per member of
    the population (zeros included) and one delay per counted invite (microseconds)."""

    from_us: int
    to_us: int
    population_to_us: int  # the population's first joins are in [from_us, population_to_us]
    offspring: list[int]
    delays_us: list[int]

    @property
    def mean_offspring(self) -> float:
        return statistics.fmean(self.offspring) if self.offspring else 0.0


def invite_history(
    s: Session, c: Campaign, *, window_days: int = DEFAULT_WINDOW_DAYS, now: int | None = None
) -> History:
    """Offspring and delays from the history window before the campaign (it ends at the
    campaign's start, or now when that is earlier). The population: members (not staff) whose
    first join left them the campaign's length plus the hold window to invite before the
    history ends; each one's offspring: their valid invites (the campaign's counted groups and
    hold window, fraud flags) whose invitee joined within the campaign's length after the
    inviter's first join. InvalidParameter when the population is empty."""
    ws = c.workspace_id
    length = c.ends_at_us - c.starts_at_us
    hold = hold_hours(c) * HOUR_US
    to = min(c.starts_at_us, now_us() if now is None else now)
    lo = to - window_days * DAY_US
    pop_hi = to - length - hold
    cal = calendar(s, ws)
    if pop_hi < lo:
        raise InvalidParameter(
            f"window_days: {window_days} days of history leave no room for members to invite "
            f"during the campaign's {length / DAY_US:g} days plus the {hold_hours(c)} h hold "
            "window; give a longer history window"
        )
    q = select(Member.id, Member.first_join_us).where(
        Member.workspace_id == ws,
        Member.is_staff.is_(False),
        Member.first_join_us >= lo,
        Member.first_join_us <= pop_hi,
    )
    first = {int(m): int(fj or 0) for m, fj in s.execute(q)}
    if not first:
        raise InvalidParameter(
            "no invite history: no member (not staff) first joined between "
            f"{day_date(cal.day_of(lo))} and {day_date(cal.day_of(pop_hi))}, so there is "
            "nobody whose invites could be counted; forecast once the community has members, "
            "or widen window_days"
        )
    kids: Counter[int] = Counter()
    delays: list[int] = []
    for f in invites_between(s, ws, lo, to, hold, counted_groups(c), cal):
        fj = first.get(f.inviter_id)
        if fj is None or not f.valid(hold, to) or not fj <= f.joined_us <= fj + length:
            continue
        kids[f.inviter_id] += 1
        delays.append(f.joined_us - fj)
    return History(lo, to, pop_hi, [kids[m] for m in sorted(first)], sorted(delays))


@dataclass(frozen=True, slots=True)
class Run:
    """One simulated campaign: participants (seeds included), of them brought in (acquired),
    how many participants each participant brought (k → how many had k), and whether the
    per-run cap stopped it."""

    participants: int
    acquired: int
    brought: Counter[int]
    capped: bool
    drawn: int = 0  # people drawn, kept or not: the run's work


def _one_run(
    rng: random.Random,
    offspring: Sequence[int],
    delays_us: Sequence[int],
    seeds: int,
    horizon_us: int,
    cap: int,
) -> Run:
    """One campaign, a generation at a time (the draws of a generation are made in one call).
    Once more than `cap` people have joined, only the `cap` earliest (by time, then order of
    birth) can be participants, so anyone joining after the cap-th earliest so far is dropped
    with their descendants: a parent is always earlier than its children."""
    times = [0] * seeds
    parents = [-1] * seeds
    frontier = list(range(seeds))
    cutoff = horizon_us  # instants at or after this cannot take part
    live = [0] * seeds  # the times of those still before the cutoff
    capped = False
    while frontier and delays_us:
        counts = rng.choices(offspring, k=len(frontier))
        born = [i for i, n in zip(frontier, counts, strict=True) for _ in range(n)]
        if not born:
            break
        delays = rng.choices(delays_us, k=len(born))
        frontier = []
        for parent, d in zip(born, delays, strict=True):
            at = times[parent] + d
            if at < cutoff:
                frontier.append(len(times))
                times.append(at)
                parents.append(parent)
            elif at < horizon_us:
                capped = True
        live.extend(times[i] for i in frontier)
        if len(live) > cap:
            capped = True
            live.sort()
            cutoff = live[cap - 1]
            del live[cap:]
            frontier = [i for i in frontier if times[i] < cutoff]
    kept: Sequence[int] = range(len(times))
    if len(times) > cap:
        # The cap earliest: everyone before the cutoff, then those at it in order of birth.
        before = [i for i, t in enumerate(times) if t < cutoff]
        tied = [i for i, t in enumerate(times) if t == cutoff]
        kept = before + tied[: cap - len(before)]
    brought = dict.fromkeys(kept, 0)
    for i in kept:
        if parents[i] >= 0:
            brought[parents[i]] += 1
    n = len(brought)
    return Run(n, max(0, n - seeds), Counter(brought.values()), capped, len(times))


def simulate(
    offspring: Sequence[int],
    delays_us: Sequence[int],
    *,
    seeds: int,
    horizon_us: int,
    runs: int,
    seed: int,
    cap: int = DEFAULT_CAP,
    budget: int = WORK_BUDGET,
) -> list[Run]:
    """Galton–Watson with empirical laws: every participant, at the instant they join (seeds
    at 0), draws a number of invitees from `offspring` and, for each, a delay from `delays_us`;
    invitees whose join falls before `horizon_us` take part in turn. At most `cap` take part
    (a participant cap or the safety cap): the earliest ones. Runs stop early once `budget`
    people have been drawn over all runs (an explosive history), after at least one."""
    rng = random.Random(seed)
    out: list[Run] = []
    drawn = 0
    while len(out) < runs and (not out or drawn < budget):
        run = _one_run(rng, offspring, delays_us, seeds, horizon_us, cap)
        drawn += run.drawn
        out.append(run)
    return out


@dataclass(frozen=True, slots=True)
class RewardPlan:
    """What the campaign's rules give, for costing a run. A participant who brought k others
    gets each `thresholds` reward whose need is ≤ k (ascending, at most `per_person_cap` of
    them) and min(k, most) of each `per_brought` reward; `prizes` go to ranks 1.. of those who
    brought at least one; `draw` gives min(winners, participants) rewards."""

    unit_cost: dict[int, int]
    left: dict[int, int | None]  # stock still to give; None = unlimited
    thresholds: list[tuple[int, int]] = field(default_factory=list)  # (need, reward)
    per_brought: list[tuple[int, int, bool]] = field(default_factory=list)  # (reward, most, capped)
    prizes: list[tuple[int, int, int]] = field(default_factory=list)  # (rank_from, rank_to, reward)
    draw: tuple[int, int] | None = None  # (winners, reward)
    per_person_cap: int | None = None

    def rewards_for(self, k: int) -> Counter[int]:
        """The rewards a participant who brought k others receives."""
        reached = [r for need, r in sorted(self.thresholds) if k >= need]
        cap = self.per_person_cap
        out = Counter(reached if cap is None else reached[:cap])
        for reward, most, capped in self.per_brought:
            n = min(k, most)
            out[reward] += n if cap is None or not capped else min(n, cap)
        return out

    def given(self, run: Run) -> Counter[int]:
        out: Counter[int] = Counter()
        for k, n in run.brought.items():
            for reward, times in self.rewards_for(k).items():
                out[reward] += times * n
        ranked = sum(n for k, n in run.brought.items() if k >= 1)
        for a, b, reward in self.prizes:
            out[reward] += max(0, min(b, ranked) - a + 1)
        if self.draw is not None:
            out[self.draw[1]] += min(self.draw[0], run.participants)
        return out

    def cost(self, run: Run) -> int:
        total = 0
        for reward, n in self.given(run).items():
            left = self.left.get(reward)
            total += (n if left is None else min(n, left)) * self.unit_cost.get(reward, 0)
        return total


def reward_plan(s: Session, c: Campaign) -> RewardPlan:
    """The rewards of the campaign's rules, with their unit costs and the stock left."""
    rules = c.rules or {}
    cap = rules.get("per_person_cap")
    thresholds: list[tuple[int, int]] = []
    per_brought: list[tuple[int, int, bool]] = []
    prizes: list[tuple[int, int, int]] = []
    draw: tuple[int, int] | None = None
    if c.kind == "invite_task":
        thresholds = [(int(t["invites"]), int(t["reward_id"])) for t in rules.get("tiers", [])]
    elif c.kind == "help_unlock":
        spec = rules.get("help") or {}
        thresholds = [(int(spec["helpers_needed"]), int(spec["reward_id"]))]
    elif c.kind == "bargain":
        spec = rules.get("bargain") or {}
        if spec.get("reward_id") is not None:
            thresholds = [(int(spec["helpers"]), int(spec["reward_id"]))]
    elif c.kind == "gift_coupon":
        gift = rules.get("gift") or {}
        most = int(gift.get("max_gifts", 1))
        per_brought = [
            (int(gift["sender_reward_id"]), most, True),
            (int(gift["friend_reward_id"]), most, False),
        ]
    elif c.kind == "leaderboard":
        prizes = [
            (int(p["rank_from"]), int(p["rank_to"]), int(p["reward_id"]))
            for p in (rules.get("board") or {}).get("prizes", [])
        ]
    elif c.kind == "lottery":
        lot = rules.get("lottery") or {}
        draw = (int(lot.get("winners", 0)), int(lot["reward_id"]))
    ids = {r for _n, r in thresholds} | {r for r, _m, _c in per_brought}
    ids |= {r for _a, _b, r in prizes} | ({draw[1]} if draw else set())
    unit: dict[int, int] = {}
    left: dict[int, int | None] = {}
    rows = select(Reward.id, Reward.unit_cost_fen, Reward.stock, Reward.claimed).where(
        Reward.workspace_id == c.workspace_id, Reward.id.in_(sorted(ids))
    )
    for rid, cost, stock, claimed in s.execute(rows):
        unit[int(rid)] = int(cost or 0)
        left[int(rid)] = None if stock is None else max(0, int(stock) - int(claimed or 0))
    return RewardPlan(
        unit,
        left,
        thresholds,
        per_brought,
        prizes,
        draw,
        cap if isinstance(cap, int) and not isinstance(cap, bool) and cap >= 1 else None,
    )


def quantile(values: Sequence[int], q: float) -> int:
    """The nearest-rank quantile: the ⌈q·N⌉-th smallest value (N ≥ 1)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def spread(values: Sequence[int]) -> dict[str, float | int]:
    out: dict[str, float | int] = {name: quantile(values, q) for name, q in QUANTILES}
    out["mean"] = round(statistics.fmean(values), 2)
    return out


def _whole(value: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidParameter(f"{name}: give a whole number in {lo}..{hi}, not {value!r}")
    return value


def forecast_campaign(
    session: Session,
    ws_id: int,
    campaign_id: int,
    seeds: int,
    runs: int = DEFAULT_RUNS,
    seed: int = 0,
    *,
    window_days: int = DEFAULT_WINDOW_DAYS,
    cap: int = DEFAULT_CAP,
    now: int | None = None,
) -> dict[str, Any]:
    """Simulate the campaign `runs` times from `seeds` initial participants and store the P10,
    P50 and P90 of participants, acquired members and reward cost, with the inputs and the
    history window, in Campaign.forecast; returns it."""
    seeds = _whole(seeds, "seeds", 1, 1_000_000)
    runs = _whole(runs, "runs", 1, 20_000)
    seed = _whole(seed, "seed", 0, 2**63 - 1)
    window_days = _whole(window_days, "window_days", 1, 3660)
    c = get_campaign(session, ws_id, campaign_id)
    campaign_cap = (c.rules or {}).get("campaign_cap")
    limit = _whole(cap, "cap", 1, 10_000_000)
    if isinstance(campaign_cap, int) and campaign_cap >= 1:
        limit = min(limit, campaign_cap)
    hist = invite_history(session, c, window_days=window_days, now=now)
    horizon = c.ends_at_us - c.starts_at_us
    sims = simulate(
        hist.offspring,
        hist.delays_us,
        seeds=seeds,
        horizon_us=horizon,
        runs=runs,
        seed=seed,
        cap=max(limit, 1),
    )
    plan = reward_plan(session, c)
    notes = []
    if not hist.delays_us:
        notes.append("no valid invites in the history: the forecast is the seeds alone")
    capped = sum(1 for r in sims if r.capped)
    if capped:
        notes.append(f"{capped} of {len(sims)} runs reached the cap of {limit} participants")
    if len(sims) < runs:
        notes.append(
            f"stopped after {len(sims)} of {runs} runs: the history is explosive and every run "
            "reaches the cap; the ranges come from the runs made"
        )
    result: dict[str, Any] = {
        "made_at_us": now_us() if now is None else now,
        "inputs": {
            "seeds": seeds,
            "runs": runs,
            "runs_made": len(sims),
            "seed": seed,
            "cap": limit,
            "window_days": window_days,
            "history_from_us": hist.from_us,
            "history_to_us": hist.to_us,
            "population_first_join_to_us": hist.population_to_us,
            "horizon_us": horizon,
            "hold_hours": hold_hours(c),
            "population": len(hist.offspring),
            "invites": len(hist.delays_us),
            "mean_offspring": round(hist.mean_offspring, 4),
            "zero_share": round(hist.offspring.count(0) / len(hist.offspring), 4),
            "median_delay_hours": (
                round(statistics.median(hist.delays_us) / HOUR_US, 2) if hist.delays_us else None
            ),
        },
        "participants": spread([r.participants for r in sims]),
        "acquired": spread([r.acquired for r in sims]),
        "reward_cost_fen": spread([plan.cost(r) for r in sims]),
        "capped_runs": capped,
        "notes": notes,
    }
    c.forecast = result
    session.flush()
    return result


def forecast_vs_actual(
    session: Session, ws_id: int, campaign_id: int, as_of_us: int | None = None
) -> dict[str, Any]:
    """The stored forecast's ranges beside the campaign's figures (participants, acquired
    members, reward cost), each with whether it fell within P10..P90."""
    c = get_campaign(session, ws_id, campaign_id)
    if not c.forecast:
        raise InvalidParameter(
            f"campaign {campaign_id}: no forecast was made; run the forecast before launch"
        )
    m = campaign_metrics(session, ws_id, campaign_id, as_of_us)
    actual = {
        "participants": m.participants,
        "acquired": m.acquired,
        "reward_cost_fen": m.reward_cost_fen,
    }
    rows = []
    for name, value in actual.items():
        band = c.forecast.get(name) or {}
        rows.append(
            {
                "figure": name,
                **{q: band.get(q) for q, _v in QUANTILES},
                "actual": value,
                "within": band.get("p10", value) <= value <= band.get("p90", value),
            }
        )
    return {"forecast": c.forecast, "actual": actual, "rows": rows}
