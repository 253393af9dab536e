"""The rules JSON: defaults, each kind's settings, and errors that name the field path."""

from __future__ import annotations

from typing import Any

import pytest

from quanzi.campaigns.rules import check_rules, reward_ids
from quanzi.kit.errors import InvalidParameter

TIERS = {"tiers": [{"invites": 3, "reward_id": 1}, {"invites": 10, "reward_id": 2}]}


def test_defaults_are_filled_in() -> None:
    out = check_rules("invite_task", TIERS)
    assert out == {
        "eligibility": {"new_only": False, "tag_ids": [], "channels": []},
        "group_ids": [],
        "hold_hours": 72,
        "per_person_cap": None,
        "campaign_cap": None,
        "tiers": [{"invites": 3, "reward_id": 1}, {"invites": 10, "reward_id": 2}],
        "count": "join",
    }


def test_every_kind_accepts_its_settings() -> None:
    good: dict[str, dict[str, Any]] = {
        "invite_task": TIERS,
        "group_buy": {
            "team": {"size": 3, "limit_hours": 24, "price_fen": 9900, "group_price_fen": 5900}
        },
        "help_unlock": {"help": {"helpers_needed": 5, "reward_id": 7}},
        "bargain": {"bargain": {"price_fen": 10000, "floor_fen": 100, "helpers": 20, "hours": 24}},
        "gift_coupon": {"gift": {"sender_reward_id": 1, "friend_reward_id": 2, "max_gifts": 5}},
        "leaderboard": {
            "board": {
                "metric": "points",
                "prizes": [{"rank_from": 1, "rank_to": 3, "reward_id": 4}],
            }
        },
        "lottery": {"lottery": {"winners": 10, "reward_id": 3, "draw_at_us": 1}},
    }
    for kind, raw in good.items():
        out = check_rules(kind, {**raw, "campaign_cap": 500, "hold_hours": 0})
        assert out["campaign_cap"] == 500 and out["hold_hours"] == 0, kind
    assert check_rules("group_buy", good["group_buy"])["team"]["leader_only"] is False
    assert check_rules("bargain", good["bargain"])["bargain"]["reward_id"] is None


@pytest.mark.parametrize(
    ("kind", "raw", "where"),
    [
        ("invite_task", {"tiers": []}, "rules.tiers"),
        ("invite_task", {**TIERS, "colour": "red"}, "rules.colour"),
        ("invite_task", {**TIERS, "hold_hours": -1}, "rules.hold_hours"),
        ("invite_task", {**TIERS, "eligibility": {"vip": True}}, "rules.eligibility.vip"),
        ("invite_task", {**TIERS, "eligibility": {"tag_ids": [0]}}, "rules.eligibility.tag_ids.0"),
        ("invite_task", {**TIERS, "per_person_cap": 0}, "rules.per_person_cap"),
        ("invite_task", {"tiers": [{"invites": 3}]}, "rules.tiers.0.reward_id"),
        (
            "invite_task",
            {"tiers": [{"invites": 5, "reward_id": 1}, {"invites": 5, "reward_id": 2}]},
            "strictly up",
        ),
        ("invite_task", {**TIERS, "count": "likes"}, "rules.count"),
        (
            "group_buy",
            {"team": {"size": 1, "limit_hours": 24, "price_fen": 9900, "group_price_fen": 1}},
            "rules.team.size",
        ),
        (
            "group_buy",
            {"team": {"size": 3, "limit_hours": 24, "price_fen": 9900, "group_price_fen": 9900}},
            "rules.team: group_price_fen must be below price_fen",
        ),
        ("help_unlock", {"help": {"helpers_needed": 101, "reward_id": 1}}, "rules.help.helpers"),
        (
            "bargain",
            {"bargain": {"price_fen": 100, "floor_fen": 90, "helpers": 11, "hours": 1}},
            "every cut is at least 1 fen",
        ),
        (
            "bargain",
            {"bargain": {"price_fen": 100, "floor_fen": 100, "helpers": 1, "hours": 1}},
            "floor_fen must be below",
        ),
        ("gift_coupon", {"gift": {"sender_reward_id": 1, "max_gifts": 1}}, "friend_reward_id"),
        (
            "leaderboard",
            {
                "board": {
                    "prizes": [
                        {"rank_from": 1, "rank_to": 3, "reward_id": 1},
                        {"rank_from": 3, "rank_to": 5, "reward_id": 2},
                    ]
                }
            },
            "overlap",
        ),
        (
            "leaderboard",
            {"board": {"prizes": [{"rank_from": 4, "rank_to": 2, "reward_id": 1}]}},
            "rank_to must be at least",
        ),
        ("lottery", {"lottery": {"winners": 0, "reward_id": 1, "draw_at_us": 1}}, "winners"),
        ("lottery", {}, "rules.lottery"),
    ],
)
def test_errors_name_the_field(kind: str, raw: dict[str, Any], where: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        check_rules(kind, raw)
    assert where in str(err.value)


def test_unknown_kind_and_non_object() -> None:
    with pytest.raises(InvalidParameter, match="kind: 'spin'"):
        check_rules("spin", {})
    with pytest.raises(InvalidParameter, match="rules: give an object"):
        check_rules("invite_task", [1, 2])


def test_reward_ids_lists_every_reward_once() -> None:
    rules = check_rules(
        "leaderboard",
        {
            "board": {
                "prizes": [
                    {"rank_from": 1, "rank_to": 1, "reward_id": 9},
                    {"rank_from": 2, "rank_to": 5, "reward_id": 4},
                    {"rank_from": 6, "rank_to": 9, "reward_id": 9},
                ]
            }
        },
    )
    assert reward_ids(rules) == [9, 4]
    assert reward_ids(check_rules("invite_task", TIERS)) == [1, 2]
    gift = check_rules(
        "gift_coupon", {"gift": {"sender_reward_id": 3, "friend_reward_id": 5, "max_gifts": 2}}
    )
    assert reward_ids(gift) == [3, 5]
