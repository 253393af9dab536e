"""Rewards: stock never oversold and nobody rewarded twice under concurrency, coupon pools,
per-person caps, physical fulfilment, revoking, sealed shipping addresses."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from community import Community
from sqlalchemy import Engine, func, select
from test_campaign_service import PHONE, join, live_campaign, make_reward

from quanzi.campaigns import rewards, service
from quanzi.campaigns.models import Campaign, Participant, Reward, RewardClaim, RewardCode
from quanzi.db.engine import session_scope
from quanzi.kit.clock import now_us
from quanzi.kit.errors import InvalidParameter, NotFound

WORKERS = 32


@pytest.fixture
def c(engine: Engine) -> Community:
    return Community(engine)


def _campaign(c: Community, reward_id: int, **rules: Any) -> int:
    return live_campaign(
        c.engine,
        c.ws_id,
        "invite_task",
        {"tiers": [{"invites": 1, "reward_id": reward_id}], **rules},
    )


def _participants(engine: Engine, campaign_id: int, n: int) -> list[int]:
    """n participants, inserted directly (the join path is tested elsewhere)."""
    now = now_us()
    with session_scope(engine) as s:
        camp = s.get(Campaign, campaign_id)
        assert camp is not None
        rows = [
            Participant(
                workspace_id=camp.workspace_id,
                campaign_id=camp.id,
                phone_digest=f"{i:064x}",
                token_digest=secrets.token_hex(32),
                score=0,
                score_at_us=now,
                joined_at_us=now,
            )
            for i in range(n)
        ]
        s.add_all(rows)
        s.flush()
        return [p.id for p in rows]


def _grant(
    engine: Engine, campaign_id: int, participant_id: int, reward_id: int, reason: str
) -> Any:
    with session_scope(engine) as s:
        camp, p = s.get(Campaign, campaign_id), s.get(Participant, participant_id)
        assert camp is not None and p is not None
        try:
            return rewards.grant(s, camp, p, reward_id, reason).id
        except rewards.OutOfStock:
            return "out"


def _claims(engine: Engine) -> list[tuple[int, int, str, str | None]]:
    with session_scope(engine) as s:
        return [
            (r.participant_id, r.reward_id, r.status, r.code)
            for r in s.scalars(select(RewardClaim).order_by(RewardClaim.id))
        ]


def _claimed(engine: Engine, reward_id: int) -> tuple[int, int | None]:
    with session_scope(engine) as s:
        r = s.get(Reward, reward_id)
        assert r is not None
        return r.claimed, r.stock


def test_a_thousand_concurrent_claims_on_a_stock_of_a_hundred(c: Community) -> None:
    reward = make_reward(c.engine, c.ws_id, stock=100, kind="physical", cost=1500)
    cid = _campaign(c, reward)
    people = _participants(c.engine, cid, 1000)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        out = list(pool.map(lambda p: _grant(c.engine, cid, p, reward, "tier:1"), people))
    assert out.count("out") == 900
    claims = _claims(c.engine)
    assert len(claims) == 100 == len({p for p, *_ in claims})
    assert {status for *_, status, _code in claims} == {"pending"}
    assert _claimed(c.engine, reward) == (100, 100)
    with session_scope(c.engine) as s:
        cost = s.scalar(select(func.sum(RewardClaim.cost_fen)))
        assert cost == 100 * 1500


def test_a_thousand_concurrent_duplicates_make_one_claim(c: Community) -> None:
    reward = make_reward(c.engine, c.ws_id, stock=5)
    cid = _campaign(c, reward)
    (person,) = _participants(c.engine, cid, 1)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        out = list(
            pool.map(lambda _i: _grant(c.engine, cid, person, reward, "tier:1"), range(1000))
        )
    assert len(set(out)) == 1 and "out" not in out
    assert len(_claims(c.engine)) == 1
    assert _claimed(c.engine, reward) == (1, 5)


def test_coupon_pool_hands_out_each_code_once(c: Community) -> None:
    reward = make_reward(c.engine, c.ws_id, kind="coupon_code")
    with session_scope(c.engine) as s:
        assert rewards.add_codes(s, c.ws_id, reward, ["A1", " A2 ", "", "A1", "A3"]) == 3
        assert rewards.add_codes(s, c.ws_id, reward, ["A3", "A4"]) == 1
        with pytest.raises(InvalidParameter, match=r"codes\[1\]"):
            rewards.add_codes(s, c.ws_id, reward, ["ok", "has space"])
    assert _claimed(c.engine, reward) == (0, 4)
    cid = _campaign(c, reward)
    people = _participants(c.engine, cid, 6)
    with ThreadPoolExecutor(max_workers=6) as pool:
        out = list(pool.map(lambda p: _grant(c.engine, cid, p, reward, "tier:1"), people))
    assert out.count("out") == 2
    codes = sorted(code or "" for *_, code in _claims(c.engine))
    assert codes == ["A1", "A2", "A3", "A4"]
    with session_scope(c.engine) as s:
        assert rewards.codes_left(s, reward) == 0
        assert s.scalar(select(func.count()).where(RewardCode.claim_id.is_(None))) == 0


def test_per_person_cap_and_rewards_of_other_campaigns(c: Community) -> None:
    r1 = make_reward(c.engine, c.ws_id)
    r2 = make_reward(c.engine, c.ws_id, kind="points")
    cid = _campaign(c, r1, per_person_cap=2)
    (person,) = _participants(c.engine, cid, 1)
    with session_scope(c.engine) as s:
        camp, p = s.get(Campaign, cid), s.get(Participant, person)
        assert camp is not None and p is not None
        first = rewards.grant(s, camp, p, r1, "tier:1")
        rewards.grant(s, camp, p, r2, "tier:2")
        assert rewards.grant(s, camp, p, r1, "tier:1").id == first.id  # the same reason: same
        with pytest.raises(rewards.CapReached, match="per_person_cap: at most 2"):
            rewards.grant(s, camp, p, r1, "tier:3")
        other = rewards.create_reward(
            s, c.ws_id, name="x", kind="points", unit_cost_fen=0, stock=None,
            config={"points": 1}, campaign_id=camp.id,
        )  # fmt: skip
        rewards.revoke(s, c.ws_id, first.id, "owner")
        assert rewards.grant(s, camp, p, other.id, "tier:3").status == "granted"
        with pytest.raises(InvalidParameter, match="reason"):
            rewards.grant(s, camp, p, r1, "Tier 4!")
        rewards.set_active(s, c.ws_id, r2, False)
        with pytest.raises(InvalidParameter, match="switched off"):
            rewards.grant(s, camp, p, r2, "tier:5")
    other_cid = live_campaign(
        c.engine, c.ws_id, "invite_task", {"tiers": [{"invites": 1, "reward_id": r1}]}, key="k2"
    )
    (stranger,) = _participants(c.engine, other_cid, 1)
    with session_scope(c.engine) as s:
        camp2, p2 = s.get(Campaign, other_cid), s.get(Participant, stranger)
        assert camp2 is not None and p2 is not None
        with pytest.raises(InvalidParameter, match="not available to this campaign"):
            rewards.grant(s, camp2, p2, other.id, "tier:1")


def test_physical_fulfilment_and_revoking_puts_stock_back(c: Community) -> None:
    reward = make_reward(c.engine, c.ws_id, stock=1, kind="physical")
    cid = _campaign(c, reward)
    a, b = _participants(c.engine, cid, 2)
    claim = _grant(c.engine, cid, a, reward, "tier:1")
    assert _grant(c.engine, cid, b, reward, "tier:1") == "out"
    with session_scope(c.engine) as s:
        with pytest.raises(InvalidParameter, match="not shipped"):
            rewards.deliver(s, c.ws_id, claim, "ops")
        with pytest.raises(InvalidParameter, match="tracking_no"):
            rewards.ship(s, c.ws_id, claim, "no", "ops")
        shipped = rewards.ship(s, c.ws_id, claim, "SF1234567890", "ops")
        assert (shipped.status, shipped.tracking_no, shipped.updated_by) == (
            "shipped", "SF1234567890", "ops",
        )  # fmt: skip
        with pytest.raises(NotFound):
            rewards.ship(s, c.ws_id + 1, claim, "SF1234567890", "ops")
        rewards.revoke(s, c.ws_id, claim, "ops")
    assert _claimed(c.engine, reward) == (0, 1)
    assert isinstance(_grant(c.engine, cid, b, reward, "tier:1"), int)
    # a revoked claim is never granted again for the same reason
    assert _grant(c.engine, cid, a, reward, "tier:1") == claim
    assert _claimed(c.engine, reward) == (1, 1)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"kind": "cash"}, "kind: 'cash'"),
        ({"kind": "physical", "stock": None}, "stock: a physical reward needs a stock"),
        ({"kind": "coupon_code", "stock": 5}, "stock: a coupon reward's stock is its pool"),
        ({"config": {"days": 0}, "kind": "membership_days"}, "config.days"),
        ({"config": {"url": "javascript:alert(1)"}}, "config.url"),
        ({"config": {"url": "https://x.cn/a", "extra": 1}}, "config.extra"),
        ({"unit_cost_fen": -1}, "unit_cost_fen"),
        ({"stock": -5}, "stock: give a whole number"),
        ({"name": " "}, "name: give 1-100"),
        ({"campaign_id": 987654}, "campaign_id: campaign 987654"),
    ],
)
def test_bad_rewards_are_refused(c: Community, kw: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {
        "name": "电子书",
        "kind": "content_link",
        "unit_cost_fen": 0,
        "stock": None,
        "config": {"url": "https://example.com/book"},
    }
    with session_scope(c.engine) as s, pytest.raises(InvalidParameter) as err:
        rewards.create_reward(s, c.ws_id, **{**args, **kw})
    assert message in str(err.value)
    with session_scope(c.engine) as s:
        assert s.scalar(select(func.count()).select_from(Reward)) == 0


def test_shipping_address_is_sealed(c: Community) -> None:
    reward = make_reward(c.engine, c.ws_id, stock=3, kind="physical")
    cid = _campaign(c, reward)
    pid, _token = join(c.engine, cid, phone=PHONE)
    address = {
        "name": "王小明",
        "phone": "13912345678",
        "region": "上海 浦东",
        "detail": "世纪大道1号",
    }
    with session_scope(c.engine) as s:
        p = s.get(Participant, pid)
        assert p is not None
        with pytest.raises(InvalidParameter, match=r"address\.phone: not a valid"):
            rewards.set_address(s, p, {**address, "phone": "12345"})
        with pytest.raises(InvalidParameter, match=r"address\.detail"):
            rewards.set_address(s, p, {k: v for k, v in address.items() if k != "detail"})
        assert p.address_sealed is None
        rewards.set_address(s, p, address)
        assert p.address_sealed and "世纪大道" not in p.address_sealed
    with session_scope(c.engine) as s:
        p = s.get(Participant, pid)
        assert p is not None
        assert rewards.open_address(s, p) == {**address, "phone": "+8613912345678"}
    with session_scope(c.engine) as s:
        camp = service.get_campaign(s, c.ws_id, cid)
        assert service.count_participants(s, camp) == 1
