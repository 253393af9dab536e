"""砍价 cuts: exact sums, no zero cut, never below the floor, front-loaded; property-based over
thousands of random bargains."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quanzi.campaigns.bargain import draw_cuts, next_cut


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
