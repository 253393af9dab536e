"""抽奖: the documented draw algorithm, its uniformity, and tampering being detected."""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter

import pytest

from quanzi.campaigns import lottery


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
