"""砍价 (bargain): friends cut a participant's price down to the floor, one pre-drawn cut each.

The cuts are drawn when the bargain starts (`draw_cuts`): exactly `helpers` of them, each at
least 1 fen, adding up to exactly price − floor, the first ones bigger. A helper takes the next
cut with a compare-and-swap on `taken`, so two helpers never take the same cut and the price
never goes below the floor; the cut that takes the last one completes the bargain at exactly
the floor price.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, cast, exists, literal, select, update
from sqlalchemy.orm import Session

from quanzi.campaigns import group_buy, rewards, service
from quanzi.campaigns.models import Bargain, Campaign, CampaignAction, Participant
from quanzi.kit import clock
from quanzi.kit.errors import InvalidParameter, NotFound

log = logging.getLogger(__name__)

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


# --- bargains in the database ----------------------------------------------------------------

_CAS_TRIES = 1000
EXPIRE_BATCH = 500
# Campaigns that ended longer ago than this have had every bargain expired already.
EXPIRE_LOOKBACK_US = 7 * clock.DAY_US


class BargainClosed(service.CampaignClosed):
    """The bargain takes no more cuts: it reached the floor, or its time ran out."""


def _settings(campaign: Campaign) -> dict[str, Any]:
    return group_buy.kind_settings(campaign, "bargain")


def deadline_of(campaign: Campaign, bargain: Bargain) -> int:
    """When a bargain stops taking cuts: `hours` after it started, or the campaign's end."""
    hours = int(campaign.rules["bargain"]["hours"])
    return min(bargain.started_at_us + hours * clock.HOUR_US, campaign.ends_at_us)


def bargain_of(session: Session, campaign: Campaign, participant: Participant) -> Bargain | None:
    return session.scalar(
        select(Bargain).where(
            Bargain.campaign_id == campaign.id, Bargain.participant_id == participant.id
        )
    )


def get_bargain(session: Session, campaign: Campaign, bargain_id: int) -> Bargain:
    found = session.get(Bargain, bargain_id)
    if found is None or found.campaign_id != campaign.id:
        raise NotFound(f"bargain {bargain_id} is not in this campaign")
    return found


def start_bargain(
    session: Session,
    campaign: Campaign,
    participant: Participant,
    *,
    rng: random.Random | None = None,
    now_us: int | None = None,
) -> Bargain:
    """The participant's bargain (one per campaign: the existing one if they started it), its
    cuts drawn now."""
    settings = _settings(campaign)
    now = clock.now_us() if now_us is None else now_us
    if participant.campaign_id != campaign.id:
        raise InvalidParameter(f"participant: {participant.id} is not in this campaign")
    existing = bargain_of(session, campaign, participant)
    if existing is not None:
        return existing
    group_buy.require_open(campaign, now)
    price, floor = int(settings["price_fen"]), int(settings["floor_fen"])
    cuts = draw_cuts(price - floor, int(settings["helpers"]), rng or random.SystemRandom())
    bargain = Bargain(
        workspace_id=campaign.workspace_id,
        campaign_id=campaign.id,
        participant_id=participant.id,
        price_fen=price,
        floor_fen=floor,
        cuts=cuts,
        taken=0,
        current_fen=price,
        started_at_us=now,
        completed_at_us=None,
    )
    session.add(bargain)
    session.flush()
    service.record_action(
        session, campaign, participant, "bargain", f"bargain:start:{participant.id}",
        amount_fen=price, detail={"bargain": bargain.id}, now_us=now,
    )  # fmt: skip
    return bargain


def _take_next(session: Session, bargain: Bargain, now: int) -> CutStep:
    """Take the next cut: a compare-and-swap on `taken`, so two helpers never get the same."""
    for _ in range(_CAS_TRIES):
        taken = session.scalar(select(Bargain.taken).where(Bargain.id == bargain.id))
        if taken is None or taken >= len(bargain.cuts):
            raise BargainClosed("bargain: it is already at the floor price")
        step = next_cut(bargain.cuts, int(taken), bargain.price_fen, bargain.floor_fen)
        done = session.execute(
            update(Bargain)
            .where(Bargain.id == bargain.id, Bargain.taken == taken)
            .values(
                taken=taken + 1,
                current_fen=step.current_fen,
                completed_at_us=now if step.complete else None,
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(done, "rowcount", 0) == 1:
            return step
    raise RuntimeError(f"bargain {bargain.id}: too many concurrent cuts")  # pragma: no cover


def cut(
    session: Session,
    campaign: Campaign,
    bargain: Bargain,
    helper: Participant,
    *,
    now_us: int | None = None,
) -> CutStep | None:
    """A friend cuts the price: they take the next pre-drawn cut, once per campaign (None when
    they already cut). The last cut completes the bargain at exactly the floor price and grants
    the campaign's reward, if it has one."""
    settings = _settings(campaign)
    now = clock.now_us() if now_us is None else now_us
    if bargain.campaign_id != campaign.id:
        raise NotFound(f"bargain {bargain.id} is not in this campaign")
    if helper.campaign_id != campaign.id:
        raise InvalidParameter(f"helper: participant {helper.id} is not in this campaign")
    if helper.id == bargain.participant_id:
        raise InvalidParameter("helper: nobody cuts their own price; ask a friend")
    idem = f"cut:{helper.id}"
    if _recorded(session, campaign, idem):
        return None  # they already cut (a double tap, or another friend's bargain)
    group_buy.require_open(campaign, now)
    if bargain.completed_at_us is not None:
        raise BargainClosed("bargain: it is already at the floor price")
    if now >= deadline_of(campaign, bargain):
        raise BargainClosed("bargain: its time is up")
    owner = session.get(Participant, bargain.participant_id)
    if owner is None:
        raise NotFound(f"bargain {bargain.id} has no participant any more")
    action = service.record_action(
        session, campaign, owner, "cut", idem, other_id=helper.id, now_us=now
    )
    if action is None:
        return None
    step = _take_next(session, bargain, now)
    action.amount_fen = step.cut_fen
    action.detail = {"bargain": bargain.id, "index": step.index, "current_fen": step.current_fen}
    session.flush()
    session.refresh(bargain)
    if step.complete:
        service.record_action(
            session, campaign, owner, "bargain_done", f"bargain:done:{bargain.id}",
            amount_fen=bargain.current_fen, detail={"bargain": bargain.id}, now_us=now,
        )  # fmt: skip
        reward_id = settings.get("reward_id")
        if reward_id is not None:
            try:
                rewards.grant(session, campaign, owner, int(reward_id), "bargain", now_us=now)
            except (rewards.OutOfStock, rewards.CapReached) as exc:
                # The bargain still completes: the participant can buy at the floor price.
                log.warning("bargain %s complete, reward not granted: %s", bargain.id, exc)
    return step


def _recorded(session: Session, campaign: Campaign, idem_key: str) -> CampaignAction | None:
    return session.scalar(
        select(CampaignAction).where(
            CampaignAction.campaign_id == campaign.id, CampaignAction.idem_key == idem_key
        )
    )


def pay_bargain(
    session: Session,
    campaign: Campaign,
    bargain: Bargain,
    order_key: str,
    *,
    now_us: int | None = None,
) -> CampaignAction:
    """The participant buys at the floor price once the bargain is complete, by the order
    `order_key` (logged as an order.paid of the campaign); the same call again is a no-op."""
    _settings(campaign)
    now = clock.now_us() if now_us is None else now_us
    if bargain.campaign_id != campaign.id:
        raise NotFound(f"bargain {bargain.id} is not in this campaign")
    key = group_buy.check_order_key(order_key)
    idem = f"bargain:pay:{bargain.id}"
    paid = _recorded(session, campaign, idem)
    if paid is not None:
        if (paid.detail or {}).get("order") == key:
            return paid
        raise InvalidParameter(f"bargain: {bargain.id} is already paid by another order")
    if bargain.completed_at_us is None:
        raise InvalidParameter("bargain: not at the floor price yet; more friends must cut")
    owner = session.get(Participant, bargain.participant_id)
    if owner is None:
        raise NotFound(f"bargain {bargain.id} has no participant any more")
    action = service.record_action(
        session, campaign, owner, "bargain_pay", idem, amount_fen=bargain.current_fen,
        detail={"bargain": bargain.id, "order": key}, now_us=now,
    )  # fmt: skip
    if action is None:  # paid at this very moment by a twin call
        again = _recorded(session, campaign, idem)
        assert again is not None
        return again
    group_buy.log_orders_after_commit(session, [action.id])
    return action


def _expired_key(bargain_id: int) -> str:
    return f"bargain:expired:{bargain_id}"


def expire_due_bargains(session: Session, *, now_us: int | None = None) -> int:
    """Record (once) every bargain whose time ran out before it reached the floor; returns how
    many were recorded now. Cuts are refused past the deadline anyway: this puts the end in the
    action log, where the figures count it."""
    now = clock.now_us() if now_us is None else now_us
    campaigns = session.scalars(
        select(Campaign).where(
            Campaign.kind == "bargain",
            Campaign.status != "draft",
            Campaign.ends_at_us >= now - EXPIRE_LOOKBACK_US,
        )
    ).all()
    recorded = 0
    for campaign in campaigns:
        hours = int(campaign.rules["bargain"]["hours"])
        started_before = now if campaign.ends_at_us <= now else now - hours * clock.HOUR_US
        marker = literal("bargain:expired:") + cast(Bargain.id, String)
        due = session.scalars(
            select(Bargain)
            .where(
                Bargain.campaign_id == campaign.id,
                Bargain.completed_at_us.is_(None),
                Bargain.started_at_us <= started_before,
                ~exists().where(
                    CampaignAction.campaign_id == campaign.id, CampaignAction.idem_key == marker
                ),
            )
            .order_by(Bargain.id)
            .limit(EXPIRE_BATCH)
        ).all()
        for bargain in due:
            owner = session.get(Participant, bargain.participant_id)
            if owner is None:
                continue
            if service.record_action(
                session, campaign, owner, "bargain_expired", _expired_key(bargain.id),
                amount_fen=bargain.current_fen, detail={"bargain": bargain.id}, now_us=now,
            ) is not None:  # fmt: skip
                recorded += 1
    return recorded
