"""砍价 (bargain): friends cut a participant's price down to the floor, one pre-drawn cut each.

The cuts are drawn when the bargain starts (`draw_cuts`): exactly `helpers` of them, each at
least 1 fen, adding up to exactly price − floor, the first ones bigger. A helper takes the next
cut with a compare-and-swap on `taken`, so two helpers never take the same cut and the price
never goes below the floor; the cut that takes the last one completes the bargain at exactly
the floor price.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# Cut weights: a random factor in [0.5, 1.5) times a decay over the helper's position, so the
# first cuts are the big ones (the fun of 砍价: "a friend cut ¥12!") and the last ones are small.
_DECAY = 3.0  # the last cut's weight is about e^-3 ≈ 5% of the first one's
_FIRST_BOOST = 2.0  # the first helper's cut counts double
_WEIGHT_SCALE = 1 << 30  # weights become integers, so the shares add up exactly


def draw_cuts(total_fen: int, helpers: int, rng: random.Random) -> list[int]:
    """`helpers` cuts of at least 1 fen each that add up to exactly `total_fen`, largest first.

    Every cut gets 1 fen; the remaining total − helpers fen are shared out in proportion to
    random, decaying integer weights (largest remainder for the fen left by rounding down), and
    the cuts are sorted in descending order.
    """
    if helpers < 1:
        raise ValueError(f"helpers must be at least 1, not {helpers}")
    if total_fen < helpers:
        raise ValueError(
            f"total_fen ({total_fen}) must be at least helpers ({helpers}): every cut is >= 1 fen"
        )
    spare = total_fen - helpers
    weights = []
    for i in range(helpers):
        w = rng.uniform(0.5, 1.5) * math.exp(-_DECAY * i / helpers)
        if i == 0:
            w *= _FIRST_BOOST
        weights.append(max(1, int(w * _WEIGHT_SCALE)))
    whole = sum(weights)
    shares = [spare * w // whole for w in weights]
    left = spare - sum(shares)  # 0 <= left < helpers
    by_remainder = sorted(range(helpers), key=lambda i: (-(spare * weights[i] % whole), i))
    for i in by_remainder[:left]:
        shares[i] += 1
    return sorted((1 + s for s in shares), reverse=True)


@dataclass(frozen=True)
class CutStep:
    """What one cut did: its amount and the price after it."""

    index: int
    cut_fen: int
    current_fen: int
    complete: bool


def next_cut(cuts: list[int], taken: int, price_fen: int, floor_fen: int) -> CutStep:
    """The step taking cut number `taken` (0-based) of a bargain; refuses past the last one.

    `current_fen` is price − the cuts taken so far, which is never below the floor because the
    cuts add up to exactly price − floor.
    """
    if taken >= len(cuts):
        raise ValueError("every cut of this bargain has been taken")
    current = price_fen - sum(cuts[: taken + 1])
    if current < floor_fen:  # only if the stored cuts were tampered with
        raise ValueError(f"cut {taken} would take the price below the floor ({floor_fen} fen)")
    return CutStep(taken, cuts[taken], current, taken + 1 == len(cuts))
