"""A campaign's rules JSON: the common rules and each kind's own settings, validated.

`check_rules(kind, raw)` returns the rules as stored (defaults filled in, JSON types) or raises
InvalidParameter naming the field path (`rules.team.size: ...`). Unknown fields are refused,
so a typo never silently turns a rule off.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from quanzi.campaigns.models import CAMPAIGN_KINDS
from quanzi.kit.errors import InvalidParameter

MAX_HOLD_HOURS = 24 * 90
MAX_TIERS = 20
MAX_PRIZES = 50
MAX_REFS = 500

RefId = Annotated[int, Field(ge=1, le=2**31 - 1)]
Channel = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=30)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Eligibility(_Strict):
    """Who may take part: brand-new members only, members with one of the tags, members whose
    first-touch channel is one of the channels. Empty lists mean anyone."""

    new_only: bool = False
    tag_ids: list[RefId] = Field(default_factory=list, max_length=MAX_REFS)
    channels: list[Channel] = Field(default_factory=list, max_length=MAX_REFS)


class CommonRules(_Strict):
    eligibility: Eligibility = Field(default_factory=Eligibility)
    group_ids: list[RefId] = Field(default_factory=list, max_length=MAX_REFS)
    hold_hours: int = Field(default=72, ge=0, le=MAX_HOLD_HOURS)
    per_person_cap: int | None = Field(default=None, ge=1, le=10_000)
    campaign_cap: int | None = Field(default=None, ge=1, le=100_000_000)


class Tier(_Strict):
    invites: int = Field(ge=1, le=100_000)
    reward_id: RefId


class InviteTaskRules(CommonRules):
    tiers: list[Tier] = Field(min_length=1, max_length=MAX_TIERS)
    count: Literal["join", "contact"] = "join"

    @model_validator(mode="after")
    def _ascending(self) -> InviteTaskRules:
        steps = [t.invites for t in self.tiers]
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise ValueError("tiers: invites must go strictly up from one tier to the next")
        return self


class Team(_Strict):
    size: int = Field(ge=2, le=50)
    limit_hours: int = Field(ge=1, le=240)
    price_fen: int = Field(ge=1, le=10**11)
    group_price_fen: int = Field(ge=0, le=10**11)
    leader_only: bool = False

    @model_validator(mode="after")
    def _cheaper(self) -> Team:
        if self.group_price_fen >= self.price_fen:
            raise ValueError("group_price_fen must be below price_fen")
        return self


class GroupBuyRules(CommonRules):
    team: Team


class Help(_Strict):
    helpers_needed: int = Field(ge=1, le=100)
    reward_id: RefId


class HelpUnlockRules(CommonRules):
    help: Help


class BargainSettings(_Strict):
    price_fen: int = Field(ge=1, le=10**11)
    floor_fen: int = Field(ge=0, le=10**11)
    helpers: int = Field(ge=1, le=200)
    hours: int = Field(ge=1, le=240)
    reward_id: RefId | None = None

    @model_validator(mode="after")
    def _room_for_cuts(self) -> BargainSettings:
        if self.floor_fen >= self.price_fen:
            raise ValueError("floor_fen must be below price_fen")
        if self.price_fen - self.floor_fen < self.helpers:
            raise ValueError(
                "price_fen - floor_fen must be at least helpers (every cut is at least 1 fen)"
            )
        return self


class BargainRules(CommonRules):
    bargain: BargainSettings


class GiftSettings(_Strict):
    sender_reward_id: RefId
    friend_reward_id: RefId
    max_gifts: int = Field(ge=1, le=100)


class GiftCouponRules(CommonRules):
    gift: GiftSettings


class Prize(_Strict):
    rank_from: int = Field(ge=1, le=100_000)
    rank_to: int = Field(ge=1, le=100_000)
    reward_id: RefId

    @model_validator(mode="after")
    def _range(self) -> Prize:
        if self.rank_to < self.rank_from:
            raise ValueError("rank_to must be at least rank_from")
        return self


class Board(_Strict):
    metric: Literal["valid_invites", "points"] = "valid_invites"
    prizes: list[Prize] = Field(default_factory=list, max_length=MAX_PRIZES)

    @model_validator(mode="after")
    def _no_overlap(self) -> Board:
        spans = sorted((p.rank_from, p.rank_to) for p in self.prizes)
        if any(b[0] <= a[1] for a, b in itertools.pairwise(spans)):
            raise ValueError("prizes: rank ranges overlap")
        return self


class LeaderboardRules(CommonRules):
    board: Board


class LotterySettings(_Strict):
    winners: int = Field(ge=1, le=10_000)
    reward_id: RefId
    draw_at_us: int = Field(ge=0)


class LotteryRules(CommonRules):
    lottery: LotterySettings


MODELS: dict[str, type[CommonRules]] = {
    "invite_task": InviteTaskRules,
    "group_buy": GroupBuyRules,
    "help_unlock": HelpUnlockRules,
    "bargain": BargainRules,
    "gift_coupon": GiftCouponRules,
    "leaderboard": LeaderboardRules,
    "lottery": LotteryRules,
}
assert set(MODELS) == set(CAMPAIGN_KINDS)


def check_kind(kind: str) -> str:
    if kind not in MODELS:
        raise InvalidParameter(f"kind: {kind!r} is not a campaign kind (one of {CAMPAIGN_KINDS})")
    return kind


_M = TypeVar("_M", bound=BaseModel)


def validated(model: type[_M], raw: Any, where: str) -> _M:
    """`raw` read by `model`, or InvalidParameter naming each wrong field (`where.a.b: ...`)."""
    if not isinstance(raw, dict):
        raise InvalidParameter(f"{where}: give an object")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            path = ".".join([where, *(str(p) for p in err.get("loc", ()))])
            parts.append(f"{path}: {msg}")
        raise InvalidParameter("; ".join(parts)) from None


def check_rules(kind: str, raw: Any) -> dict[str, Any]:
    """The rules of a `kind` campaign as stored, or InvalidParameter naming what is wrong."""
    model = MODELS[check_kind(kind)]
    return validated(model, raw, "rules").model_dump(mode="json")


def reward_ids(rules: dict[str, Any]) -> list[int]:
    """Every reward a campaign's rules name, in order of appearance, without repeats."""
    found: list[int] = []
    for tier in rules.get("tiers", []):
        found.append(tier["reward_id"])
    for section, keys in (
        ("help", ("reward_id",)),
        ("bargain", ("reward_id",)),
        ("gift", ("sender_reward_id", "friend_reward_id")),
        ("lottery", ("reward_id",)),
    ):
        for key in keys:
            value = (rules.get(section) or {}).get(key)
            if value is not None:
                found.append(value)
    for prize in (rules.get("board") or {}).get("prizes", []):
        found.append(prize["reward_id"])
    return list(dict.fromkeys(found))
