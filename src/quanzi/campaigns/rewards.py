"""Rewards: what a campaign gives, its stock, and claims that are never oversold or doubled.

A reward is virtual (a coupon code from a pool, membership days, points, a content link) or
physical (stock, shipped to an address). `grant` gives one to a participant for a reason
(`tier:3`, `rank:1`, `unlock`, `draw`, ...):

- once per (campaign, participant, reason): a unique key; a second grant returns the first
  claim, even when both run at the same moment;
- never beyond stock: one conditional UPDATE (`claimed = claimed + 1 WHERE claimed < stock`)
  takes a unit, in the same savepoint as the claim, so a refused or duplicate claim gives the
  unit back;
- at most `per_person_cap` claims (not revoked) per participant in the campaign.

A coupon reward's stock is the size of its pool (`add_codes` grows both), so a unit taken
always has a free code. Physical claims start `pending` and move to `shipped` (with a tracking
number) and `delivered`; virtual ones are `granted` at once. `revoke` puts a unit back in stock,
except a coupon code's (the code was shown; it stays spent).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quanzi.campaigns.models import Campaign, Participant, Reward, RewardClaim, RewardCode
from quanzi.campaigns.rules import validated
from quanzi.campaigns.service import owned, record_action
from quanzi.kit import clock
from quanzi.kit.errors import InvalidParameter

REWARD_KINDS = ("coupon_code", "membership_days", "points", "content_link", "physical")
CLAIM_STATUSES = ("granted", "pending", "shipped", "delivered", "revoked")
REASON_RE = re.compile(r"^[a-z_]{1,20}(:[0-9a-z_\-]{1,19})?$")
TRACKING_RE = re.compile(r"^[A-Za-z0-9\-]{4,64}$")
MAX_CODES = 100_000
MAX_STOCK = 100_000_000
MAX_COST_FEN = 10**11


class OutOfStock(InvalidParameter):
    """Every unit of the reward is taken."""


class CapReached(InvalidParameter):
    """The participant has all the rewards a person may get in this campaign."""


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CouponConfig(_Config):
    value_fen: int = Field(default=0, ge=0, le=MAX_COST_FEN)  # what the coupon is worth


class MembershipConfig(_Config):
    days: int = Field(ge=1, le=3650)


class PointsConfig(_Config):
    points: int = Field(ge=1, le=10**9)


class ContentConfig(_Config):
    url: str = Field(min_length=8, max_length=500, pattern=r"^https?://[^\s]+$")


class PhysicalConfig(_Config):
    sku: str | None = Field(default=None, max_length=64)


CONFIGS: dict[str, type[_Config]] = {
    "coupon_code": CouponConfig,
    "membership_days": MembershipConfig,
    "points": PointsConfig,
    "content_link": ContentConfig,
    "physical": PhysicalConfig,
}


def _check_config(kind: str, config: Any) -> dict[str, Any]:
    if config is None:
        config = {}
    return validated(CONFIGS[kind], config, "config").model_dump(mode="json")


def _int(value: Any, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidParameter(f"{field}: give a whole number from {lo} to {hi}")
    return value


def create_reward(
    session: Session,
    ws_id: int,
    *,
    name: str,
    kind: str,
    unit_cost_fen: int,
    stock: int | None,
    config: dict[str, Any] | None,
    campaign_id: int | None = None,
) -> Reward:
    """A reward; `stock` None is unlimited. A coupon pool starts empty (stock 0) and grows with
    `add_codes`; a physical reward needs a stock."""
    clean_name = (name or "").strip()
    if not 1 <= len(clean_name) <= 100:
        raise InvalidParameter("name: give 1-100 characters")
    if kind not in REWARD_KINDS:
        raise InvalidParameter(f"kind: {kind!r} is not a reward kind (one of {REWARD_KINDS})")
    cost = _int(unit_cost_fen, "unit_cost_fen", 0, MAX_COST_FEN)
    if kind == "coupon_code":
        if stock not in (None, 0):
            raise InvalidParameter("stock: a coupon reward's stock is its pool; add codes instead")
        clean_stock: int | None = 0
    elif stock is None:
        if kind == "physical":
            raise InvalidParameter("stock: a physical reward needs a stock")
        clean_stock = None
    else:
        clean_stock = _int(stock, "stock", 0, MAX_STOCK)
    clean_config = _check_config(kind, config)
    if campaign_id is not None:
        found = session.get(Campaign, campaign_id)
        if found is None or found.workspace_id != ws_id:
            raise InvalidParameter(f"campaign_id: campaign {campaign_id} does not exist")
    reward = Reward(
        workspace_id=ws_id,
        campaign_id=campaign_id,
        name=clean_name,
        kind=kind,
        unit_cost_fen=cost,
        stock=clean_stock,
        claimed=0,
        config=clean_config,
        active=True,
        created_at_us=clock.now_us(),
    )
    session.add(reward)
    session.flush()
    return reward


def get_reward(session: Session, ws_id: int, reward_id: int) -> Reward:
    return owned(session, Reward, reward_id, ws_id, "reward")


def list_rewards(session: Session, ws_id: int, campaign_id: int | None = None) -> list[Reward]:
    """The workspace's rewards; with `campaign_id`, those a campaign may use (its own and the
    shared ones)."""
    q = select(Reward).where(Reward.workspace_id == ws_id)
    if campaign_id is not None:
        q = q.where((Reward.campaign_id.is_(None)) | (Reward.campaign_id == campaign_id))
    return list(session.scalars(q.order_by(Reward.id)))


def set_active(session: Session, ws_id: int, reward_id: int, active: bool) -> Reward:
    """An inactive reward is no longer granted (claims already made stay)."""
    reward = get_reward(session, ws_id, reward_id)
    reward.active = active
    session.flush()
    return reward


def add_codes(session: Session, ws_id: int, reward_id: int, codes: list[str]) -> int:
    """Add codes to a coupon pool (blank lines and codes already there are skipped); the stock
    grows by the number added, which is returned."""
    reward = get_reward(session, ws_id, reward_id)
    if reward.kind != "coupon_code":
        raise InvalidParameter(f"reward_id: reward {reward_id} is not a coupon code pool")
    clean: list[str] = []
    for i, raw in enumerate(codes):
        code = (raw or "").strip() if isinstance(raw, str) else None
        if code is None:
            raise InvalidParameter(f"codes[{i}]: give a text")
        if not code:
            continue
        if len(code) > 100 or any(ch.isspace() for ch in code):
            raise InvalidParameter(f"codes[{i}]: a code is 1-100 characters without spaces")
        clean.append(code)
    fresh = list(dict.fromkeys(clean))
    if len(fresh) > MAX_CODES:
        raise InvalidParameter(f"codes: at most {MAX_CODES} at a time")
    known: set[str] = set()
    for start in range(0, len(fresh), 500):
        chunk = fresh[start : start + 500]
        known.update(
            session.scalars(
                select(RewardCode.code).where(
                    RewardCode.reward_id == reward.id, RewardCode.code.in_(chunk)
                )
            )
        )
    new = [c for c in fresh if c not in known]
    if not new:
        return 0
    session.add_all([RewardCode(reward_id=reward.id, code=c) for c in new])
    session.execute(
        update(Reward)
        .where(Reward.id == reward.id)
        .values(stock=Reward.stock + len(new))
        .execution_options(synchronize_session=False)
    )
    session.flush()
    session.expire(reward, ["stock"])
    return len(new)


def codes_left(session: Session, reward_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(RewardCode)
            .where(RewardCode.reward_id == reward_id, RewardCode.claim_id.is_(None))
        )
        or 0
    )


# --- claims ----------------------------------------------------------------------------------


def claim_for(
    session: Session, campaign_id: int, participant_id: int, reason: str
) -> RewardClaim | None:
    return session.scalar(
        select(RewardClaim).where(
            RewardClaim.campaign_id == campaign_id,
            RewardClaim.participant_id == participant_id,
            RewardClaim.reason == reason,
        )
    )


def claims_of(session: Session, participant: Participant) -> list[RewardClaim]:
    return list(
        session.scalars(
            select(RewardClaim)
            .where(
                RewardClaim.campaign_id == participant.campaign_id,
                RewardClaim.participant_id == participant.id,
            )
            .order_by(RewardClaim.id)
        )
    )


def _check_reason(reason: str) -> str:
    if not isinstance(reason, str) or not REASON_RE.match(reason):
        raise InvalidParameter("reason: like 'tier:3', 'rank:1', 'unlock' (a-z, _ and :)")
    return reason


def _reward_for(session: Session, campaign: Campaign, reward_id: int) -> Reward:
    reward = session.get(Reward, reward_id)
    if (
        reward is None
        or reward.workspace_id != campaign.workspace_id
        or reward.campaign_id not in (None, campaign.id)
    ):
        raise InvalidParameter(f"reward_id: reward {reward_id} is not available to this campaign")
    if not reward.active:
        raise InvalidParameter(f"reward_id: reward {reward_id} is switched off")
    return reward


def _within_cap(session: Session, campaign: Campaign, participant: Participant) -> None:
    cap = campaign.rules.get("per_person_cap")
    if cap is None:
        return
    # One participant's grants queue on their row (PostgreSQL; SQLite writers queue anyway).
    session.execute(
        select(Participant.id).where(Participant.id == participant.id).with_for_update()
    )
    held = session.scalar(
        select(func.count())
        .select_from(RewardClaim)
        .where(
            RewardClaim.campaign_id == campaign.id,
            RewardClaim.participant_id == participant.id,
            RewardClaim.status != "revoked",
        )
    )
    if int(held or 0) >= int(cap):
        raise CapReached(f"per_person_cap: at most {cap} rewards per person in this campaign")


def _take_unit(session: Session, reward: Reward) -> bool:
    done = session.execute(
        update(Reward)
        .where(
            Reward.id == reward.id,
            (Reward.stock.is_(None)) | (Reward.claimed < Reward.stock),
        )
        .values(claimed=Reward.claimed + 1)
        .execution_options(synchronize_session=False)
    )
    return getattr(done, "rowcount", 0) == 1


def _take_code(session: Session, reward_id: int, claim_id: int) -> str:
    for _ in range(50):
        free = (
            select(RewardCode.id)
            .where(RewardCode.reward_id == reward_id, RewardCode.claim_id.is_(None))
            .order_by(RewardCode.id)
            .limit(1)
            .scalar_subquery()
        )
        code_id = session.scalar(select(free))
        if code_id is None:
            break
        done = session.execute(
            update(RewardCode)
            .where(and_(RewardCode.id == code_id, RewardCode.claim_id.is_(None)))
            .values(claim_id=claim_id)
            .execution_options(synchronize_session=False)
        )
        if getattr(done, "rowcount", 0) == 1:
            code = session.scalar(select(RewardCode.code).where(RewardCode.id == code_id))
            return str(code)
    raise OutOfStock("reward: the coupon pool is empty")


def grant(
    session: Session,
    campaign: Campaign,
    participant: Participant,
    reward_id: int,
    reason: str,
    *,
    by: str | None = None,
    now_us: int | None = None,
) -> RewardClaim:
    """Give `reward_id` to the participant for `reason`, once; the existing claim when it was
    given already. Raises OutOfStock, CapReached, InvalidParameter."""
    _check_reason(reason)
    if participant.campaign_id != campaign.id:
        raise InvalidParameter("participant: not in this campaign")
    existing = claim_for(session, campaign.id, participant.id, reason)
    if existing is not None:
        return existing
    reward = _reward_for(session, campaign, reward_id)
    now = clock.now_us() if now_us is None else now_us
    try:
        with session.begin_nested():
            _within_cap(session, campaign, participant)
            if not _take_unit(session, reward):
                raise OutOfStock(f"reward: {reward.name} is out of stock")
            claim = RewardClaim(
                workspace_id=campaign.workspace_id,
                campaign_id=campaign.id,
                participant_id=participant.id,
                reward_id=reward.id,
                reason=reason,
                status="pending" if reward.kind == "physical" else "granted",
                cost_fen=reward.unit_cost_fen,
                claimed_at_us=now,
                updated_at_us=now,
                updated_by=by,
            )
            session.add(claim)
            session.flush()
            if reward.kind == "coupon_code":
                claim.code = _take_code(session, reward.id, claim.id)
                session.flush()
    except IntegrityError:
        # The same claim, made by a concurrent call that committed first.
        again = claim_for(session, campaign.id, participant.id, reason)
        if again is None:
            raise
        return again
    session.expire(reward, ["claimed"])
    record_action(
        session,
        campaign,
        participant,
        "claim",
        f"claim:{participant.id}:{reason}",
        amount_fen=reward.unit_cost_fen,
        detail={"reward_id": reward.id, "claim_id": claim.id},
        now_us=now,
    )
    return claim


def get_claim(session: Session, ws_id: int, claim_id: int) -> RewardClaim:
    return owned(session, RewardClaim, claim_id, ws_id, "claim")


def _move(
    session: Session, ws_id: int, claim_id: int, want: str, to: str, by: str | None, **values: Any
) -> RewardClaim:
    claim = get_claim(session, ws_id, claim_id)
    if claim.status != want:
        raise InvalidParameter(f"status: claim {claim_id} is {claim.status}, not {want}")
    claim.status = to
    for k, v in values.items():
        setattr(claim, k, v)
    claim.updated_at_us = clock.now_us()
    claim.updated_by = by
    session.flush()
    return claim


def ship(
    session: Session, ws_id: int, claim_id: int, tracking_no: str, by: str | None
) -> RewardClaim:
    """pending → shipped, with the carrier's tracking number."""
    number = (tracking_no or "").strip()
    if not TRACKING_RE.match(number):
        raise InvalidParameter("tracking_no: 4-64 letters, digits or -")
    return _move(session, ws_id, claim_id, "pending", "shipped", by, tracking_no=number)


def deliver(session: Session, ws_id: int, claim_id: int, by: str | None) -> RewardClaim:
    """shipped → delivered."""
    return _move(session, ws_id, claim_id, "shipped", "delivered", by)


def revoke(session: Session, ws_id: int, claim_id: int, by: str | None) -> RewardClaim:
    """Take a claim back (fraud found later, a mistake): it stays as `revoked`, so the same
    reason is never granted again; the unit goes back to stock unless it was a coupon code."""
    claim = get_claim(session, ws_id, claim_id)
    if claim.status in ("revoked", "delivered"):
        raise InvalidParameter(f"status: a {claim.status} claim cannot be revoked")
    reward = session.get(Reward, claim.reward_id)
    claim.status = "revoked"
    claim.updated_at_us = clock.now_us()
    claim.updated_by = by
    if reward is not None and reward.kind != "coupon_code":
        session.execute(
            update(Reward)
            .where(Reward.id == reward.id, Reward.claimed > 0)
            .values(claimed=Reward.claimed - 1)
            .execution_options(synchronize_session=False)
        )
        session.expire(reward, ["claimed"])
    session.flush()
    return claim


# --- shipping --------------------------------------------------------------------------------


class Address(BaseModel):
    """Where a physical reward goes; sealed with the workspace key like a phone number."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=30)
    phone: str = Field(min_length=5, max_length=20)
    region: str = Field(min_length=1, max_length=100)  # province / city / district
    detail: str = Field(min_length=1, max_length=200)


def set_address(session: Session, participant: Participant, address: dict[str, Any]) -> None:
    """Store (replace) the participant's shipping address, sealed."""
    import json

    from quanzi.acquisition.landing import valid_phone
    from quanzi.core.workspaces.service import workspace_key

    clean = validated(Address, address, "address")
    phone = valid_phone(clean.phone)
    if phone is None:
        raise InvalidParameter("address.phone: not a valid phone number")
    data = clean.model_dump() | {"phone": phone}
    key = workspace_key(session, participant.workspace_id)
    participant.address_sealed = key.seal("address", json.dumps(data, ensure_ascii=False))
    session.flush()


def open_address(session: Session, participant: Participant) -> dict[str, str] | None:
    """The participant's address in the clear (for the person shipping it), or None."""
    import json

    from quanzi.core.workspaces.service import workspace_key

    if not participant.address_sealed:
        return None
    key = workspace_key(session, participant.workspace_id)
    opened: dict[str, str] = json.loads(key.open("address", participant.address_sealed))
    return opened
