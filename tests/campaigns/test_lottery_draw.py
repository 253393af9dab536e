"""抽奖: the documented draw algorithm, its uniformity, tampering being detected; commit, the
published list, the draw and its rewards in the database."""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from typing import Any

import pytest
from community import Community
from sqlalchemy import Engine, select
from test_campaign_service import join, live_campaign, make_reward, member_id, secs

from quanzi.campaigns import jobs_kinds, lottery
from quanzi.campaigns.models import Campaign, CampaignAction, RewardClaim
from quanzi.db.engine import session_scope
from quanzi.kit.clock import HOUR_US, now_us
from quanzi.kit.errors import InvalidParameter


def _seed(i: int) -> bytes:
    return hashlib.sha256(f"test seed {i}".encode()).digest()


def test_winners_follow_the_documented_algorithm_step_by_step() -> None:
    seed = _seed(1)
    people = [3, 5, 8, 13, 21, 34, 55]

    # An independent re-implementation of the steps in the module's docstring.
    def r(i: int) -> int:
        return int.from_bytes(hmac.new(seed, f"quanzi-draw:{i}".encode(), "sha256").digest(), "big")

    order, i = list(people), 0
    for k in range(3):
        m = len(order) - k
        while r(i) >= 2**256 - 2**256 % m:
            i += 1
        j = k + r(i) % m
        i += 1
        order[k], order[j] = order[j], order[k]
    assert lottery.draw_winners(seed, people, 3) == order[:3]


def test_winners_are_distinct_members_of_the_list() -> None:
    people = list(range(100, 150))
    for i in range(50):
        won = lottery.draw_winners(_seed(i), people, 10)
        assert len(won) == len(set(won)) == 10
        assert set(won) <= set(people)


def test_more_winners_than_people_gives_everyone_and_none_gives_nobody() -> None:
    assert sorted(lottery.draw_winners(_seed(0), [4, 2, 9], 10)) == [2, 4, 9]
    assert lottery.draw_winners(_seed(0), [4, 2, 9], 0) == []
    assert lottery.draw_winners(_seed(0), [], 3) == []


def test_a_different_seed_or_list_changes_the_draw() -> None:
    people = list(range(1, 1001))
    base = lottery.draw_winners(_seed(1), people, 5)
    assert lottery.draw_winners(_seed(1), people, 5) == base
    assert lottery.draw_winners(_seed(2), people, 5) != base
    shifted = [p for p in people if p != base[0]]
    assert lottery.draw_winners(_seed(1), shifted, 5) != base


def test_each_position_wins_about_equally_often_chi_square() -> None:
    n, draws = 10, 4000
    firsts: Counter[int] = Counter()
    seconds: Counter[int] = Counter()
    for i in range(draws):
        won = lottery.draw_winners(_seed(i), list(range(n)), 2)
        firsts[won[0]] += 1
        seconds[won[1]] += 1
    expected = draws / n
    for counts in (firsts, seconds):
        chi2 = sum((counts[k] - expected) ** 2 / expected for k in range(n))
        # 9 degrees of freedom: P(chi2 > 33.7) = 0.0001; the seeds are fixed, so no flakiness.
        assert chi2 < 33.7, counts


def test_a_list_of_three_does_not_favour_any_one_chi_square() -> None:
    # m = 3 does not divide 2^256: the rejection step is what keeps this uniform.
    counts = Counter(lottery.draw_winners(_seed(i), [1, 2, 3], 1)[0] for i in range(3000))
    chi2 = sum((counts[k] - 1000) ** 2 / 1000 for k in (1, 2, 3))
    assert chi2 < 18.4, counts  # 2 degrees of freedom, P = 0.0001


def test_verify_detects_a_seed_that_does_not_match_the_commitment() -> None:
    seed = _seed(3)
    people = list(range(1, 40))
    ok = lottery.verify(seed.hex(), lottery.commitment_of(seed), people, 3)
    assert ok.commitment_matches
    assert ok.winners == lottery.draw_winners(seed, people, 3)
    other = _seed(4)
    bad = lottery.verify(other.hex(), lottery.commitment_of(seed), people, 3)
    assert not bad.commitment_matches


@pytest.mark.parametrize(("seed", "message"), [("zz" * 32, "hexadecimal"), ("ab" * 31, "32 bytes")])
def test_malformed_seeds_are_refused(seed: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        lottery.seed_from_hex(seed)


def test_published_lists_parse_from_json_and_csv() -> None:
    entries = [lottery.PublishedEntry(7, "张*"), lottery.PublishedEntry(9, "李**")]
    csv_text = lottery.to_csv(entries)
    assert csv_text.splitlines()[0] == "position,id,name"
    assert lottery.parse_published(csv_text) == [7, 9]
    assert lottery.parse_published('{"participants": [{"id": 7}, {"id": 9}]}') == [7, 9]
    assert lottery.parse_published("[7, 9]") == [7, 9]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("{not json", "not valid JSON"),
        ('{"people": []}', "participants"),
        ('{"participants": [{"id": "7"}]}', r"participants\[0\]"),
        ("name\nx\n", "`id` column"),
        ("id,name\n7,a\nseven,b\n", "line 3"),
    ],
)
def test_malformed_lists_are_refused_with_where(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        lottery.parse_published(text)


# --- draws in the database --------------------------------------------------------------------


@pytest.fixture
def c(engine: Engine) -> Community:
    return Community(engine)


def lottery_campaign(c: Community, winners: int = 2, stock: int | None = 10) -> tuple[int, int]:
    """A live lottery drawing in an hour; (campaign id, draw time)."""
    draw_at = now_us() + HOUR_US
    reward = make_reward(c.engine, c.ws_id, stock=stock, kind="points", cost=300)
    rules = {"lottery": {"winners": winners, "reward_id": reward, "draw_at_us": draw_at}}
    return live_campaign(c.engine, c.ws_id, "lottery", rules, key="choujiang"), draw_at


def with_campaign(engine: Engine, cid: int, fn: Any) -> Any:
    with session_scope(engine) as s:
        camp = s.get(Campaign, cid)
        assert camp is not None
        return fn(s, camp)


def test_commit_publish_draw_reveal(c: Community) -> None:
    cid, draw_at = lottery_campaign(c, winners=2)
    pids = [join(c.engine, cid, phone=f"1361234{i:04d}")[0] for i in range(9)]
    named = join(c.engine, cid, phone="13612349999", name="张三丰")[0]
    c.add("member.joined", ts=secs(now_us()), group="g1", member="wm_li", name="李小龙")
    member = join(c.engine, cid, member_id=member_id(c, "wm_li"))[0]
    late = join(c.engine, cid, phone="13612348888", now_us=draw_at)[0]  # after the draw time

    commitment = with_campaign(c.engine, cid, lambda s, k: lottery.commit(s, k))
    assert with_campaign(c.engine, cid, lambda s, k: lottery.commit(s, k)) == commitment
    before = with_campaign(c.engine, cid, lottery.published_list)
    assert before.commitment == commitment and before.seed is None and before.drawn_at_us is None
    assert [e.participant_id for e in before.entries] == sorted([*pids, named, member])  # not late
    names = {e.participant_id: e.name for e in before.entries}
    assert (names[named], names[member], names[pids[0]]) == ("张**", "李**", "136****0000")
    with pytest.raises(InvalidParameter, match="has not come yet"):
        with_campaign(c.engine, cid, lambda s, k: lottery.draw(s, k, now_us=draw_at - 1))

    won = with_campaign(c.engine, cid, lambda s, k: lottery.draw(s, k, now_us=draw_at))
    after = with_campaign(c.engine, cid, lottery.published_list)
    assert after.seed is not None and lottery.commitment_of(bytes.fromhex(after.seed)) == commitment
    listed = [e.participant_id for e in after.entries]
    assert listed == [e.participant_id for e in before.entries]
    assert won == lottery.draw_winners(bytes.fromhex(after.seed), listed, 2)
    assert late not in won and len(won) == 2
    # Once: drawing again answers the same winners and grants nothing more.
    assert (
        with_campaign(c.engine, cid, lambda s, k: lottery.draw(s, k, now_us=draw_at + HOUR_US))
        == won
    )
    with session_scope(c.engine) as s:
        got = s.execute(
            select(RewardClaim.participant_id, RewardClaim.reason).order_by(RewardClaim.id)
        ).all()
        assert [tuple(g) for g in got] == [(won[0], "draw"), (won[1], "draw")]
        ranks = s.execute(
            select(CampaignAction.participant_id, CampaignAction.detail).where(
                CampaignAction.kind == "draw_win"
            )
        ).all()
        assert sorted((p, d["rank"]) for p, d in ranks) == sorted([(won[0], 1), (won[1], 2)])


def test_the_sweep_commits_then_draws(c: Community) -> None:
    cid, draw_at = lottery_campaign(c, winners=1)
    join(c.engine, cid, phone="13612340000")
    report = jobs_kinds.sweep(c.engine)
    assert report.lotteries_committed == 1
    assert with_campaign(c.engine, cid, lambda s, k: k.draw_commitment) is not None
    assert jobs_kinds.sweep(c.engine).lotteries_committed == 0
    assert jobs_kinds.sweep(c.engine, now_us=draw_at).lotteries_drawn == 1
    assert jobs_kinds.sweep(c.engine, now_us=draw_at + 1).lotteries_drawn == 0
    assert with_campaign(c.engine, cid, lambda s, k: k.drawn_at_us) == draw_at


def test_no_fair_draw_without_an_early_commitment(c: Community) -> None:
    cid, draw_at = lottery_campaign(c)
    join(c.engine, cid, phone="13612340000")
    with pytest.raises(InvalidParameter, match="no commitment"):
        with_campaign(c.engine, cid, lambda s, k: lottery.draw(s, k, now_us=draw_at))
    with pytest.raises(InvalidParameter, match="draw time has passed"):
        with_campaign(c.engine, cid, lambda s, k: lottery.commit(s, k, now_us=draw_at))
    assert with_campaign(c.engine, cid, lambda s, k: (k.draw_commitment, k.drawn_at_us)) == (
        None,
        None,
    )


def test_winners_beyond_the_stock_are_drawn_but_not_rewarded(c: Community) -> None:
    cid, draw_at = lottery_campaign(c, winners=3, stock=1)
    for i in range(5):
        join(c.engine, cid, phone=f"1361234{i:04d}")
    with_campaign(c.engine, cid, lambda s, k: lottery.commit(s, k))
    won = with_campaign(c.engine, cid, lambda s, k: lottery.draw(s, k, now_us=draw_at))
    assert len(won) == 3
    with session_scope(c.engine) as s:
        assert s.scalars(select(RewardClaim.participant_id)).all() == [won[0]]
