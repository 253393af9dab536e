"""送券 (gift a coupon): a participant sends a gift link to a friend; when the friend redeems the
gift, both get their rewards.

- `send_gift`: a new gift link (its token is shown once; only its SHA-256 is kept), at most
  `max_gifts` per sender. Each gift takes a numbered slot in the action log
  (`gift:send:<sender>:<n>`), whose unique key keeps even concurrent sends within the limit.
- `accept_gift`: the friend opens the link and takes part (joining the campaign, with the
  sender as referrer). Not the sender themself, and one gift per friend per campaign.
- `redeem`: the platform reports that the friend used the gift (the shop when the coupon is
  spent, or the page when the friend claims it). The friend gets the friend reward (reason
  `gift:received`) and the sender the sender reward (`gift_sent:<gift id>`), once each.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quanzi.campaigns import group_buy, rewards, service
from quanzi.campaigns.models import Campaign, Gift, Participant, RewardClaim
from quanzi.kit import clock
from quanzi.kit.errors import InvalidParameter, NotFound

log = logging.getLogger(__name__)

FRIEND_REASON = "gift:received"
_SEND_TRIES = 5


def sender_reason(gift_id: int) -> str:
    """The sender's reward reason for one gift (rewards' reasons take one `:`)."""
    return f"gift_sent:{gift_id}"


@dataclass(frozen=True)
class SentGift:
    gift: Gift
    token: str  # the gift link's token: shown to the sender once, never stored


@dataclass(frozen=True)
class Redeemed:
    friend_claim: RewardClaim | None
    sender_claim: RewardClaim | None


def _settings(campaign: Campaign) -> dict[str, Any]:
    return group_buy.kind_settings(campaign, "gift_coupon")


def gifts_sent(session: Session, campaign: Campaign, sender: Participant) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Gift)
            .where(Gift.campaign_id == campaign.id, Gift.sender_id == sender.id)
        )
        or 0
    )


def send_gift(
    session: Session, campaign: Campaign, sender: Participant, *, now_us: int | None = None
) -> SentGift:
    """A new gift link from `sender`; refused once they have sent `max_gifts`."""
    settings = _settings(campaign)
    now = clock.now_us() if now_us is None else now_us
    group_buy.require_open(campaign, now)
    if sender.campaign_id != campaign.id:
        raise InvalidParameter(f"sender: participant {sender.id} is not in this campaign")
    limit = int(settings["max_gifts"])
    for _ in range(_SEND_TRIES):
        n = gifts_sent(session, campaign, sender) + 1
        if n > limit:
            raise InvalidParameter(f"gift: at most {limit} gifts per person in this campaign")
        slot = service.record_action(
            session, campaign, sender, "gift_send", f"gift:send:{sender.id}:{n}", now_us=now
        )
        if slot is None:
            continue  # slot n was taken by a concurrent send: count again
        token = secrets.token_urlsafe(24)
        gift = Gift(
            workspace_id=campaign.workspace_id,
            campaign_id=campaign.id,
            sender_id=sender.id,
            friend_id=None,
            token_digest=service.token_digest(token),
            status="sent",
            sent_at_us=now,
            redeemed_at_us=None,
        )
        session.add(gift)
        session.flush()
        slot.detail = {"gift": gift.id}
        session.flush()
        return SentGift(gift, token)
    raise InvalidParameter("gift: too many gifts sent at once; try again")


def gift_by_token(session: Session, campaign: Campaign, token: str) -> Gift:
    """The gift a link's token opens; NotFound otherwise."""
    if not token or len(token) > 100:
        raise NotFound("no such gift")
    found = session.scalar(select(Gift).where(Gift.token_digest == service.token_digest(token)))
    if found is None or found.campaign_id != campaign.id:
        raise NotFound("no such gift")
    return found


def gift_of_friend(session: Session, campaign: Campaign, friend: Participant) -> Gift | None:
    return session.scalar(
        select(Gift).where(Gift.campaign_id == campaign.id, Gift.friend_id == friend.id)
    )


def accept_gift(
    session: Session,
    campaign: Campaign,
    token: str,
    *,
    member_id: int | None = None,
    phone: str | None = None,
    name: str | None = None,
    now_us: int | None = None,
) -> tuple[Gift, service.Joined]:
    """The friend opens the gift link and takes part. Raises InvalidParameter when the friend
    is the sender, already took a gift in this campaign, or the gift was taken by someone else;
    NotEligible / CampaignClosed from joining."""
    _settings(campaign)
    now = clock.now_us() if now_us is None else now_us
    gift = gift_by_token(session, campaign, token)
    joined = service.join(
        session, campaign, member_id=member_id, phone=phone, name=name,
        referrer_id=gift.sender_id, now_us=now,
    )  # fmt: skip
    friend = joined.participant
    if friend.id == gift.sender_id:
        raise InvalidParameter("friend: a gift is for a friend, not for its sender")
    if gift.friend_id == friend.id:
        return gift, joined  # the same friend opening the link again
    if gift.status != "sent":
        raise InvalidParameter("gift: this gift was already taken by someone else")
    if gift_of_friend(session, campaign, friend) is not None:
        raise InvalidParameter("friend: already took a gift in this campaign (one per person)")
    try:
        with session.begin_nested():
            done = session.execute(
                update(Gift)
                .where(Gift.id == gift.id, Gift.status == "sent")
                .values(friend_id=friend.id, status="accepted")
                .execution_options(synchronize_session=False)
            )
            if getattr(done, "rowcount", 0) != 1:
                raise InvalidParameter("gift: this gift was already taken by someone else")
    except IntegrityError:
        raise InvalidParameter(
            "friend: already took a gift in this campaign (one per person)"
        ) from None
    session.refresh(gift)
    service.record_action(
        session, campaign, friend, "gift_accept", f"gift:accept:{gift.id}",
        other_id=gift.sender_id, detail={"gift": gift.id}, now_us=now,
    )  # fmt: skip
    return gift, joined


def _grant(
    session: Session, campaign: Campaign, who: Participant, reward_id: int, reason: str, now: int
) -> RewardClaim | None:
    try:
        return rewards.grant(session, campaign, who, reward_id, reason, now_us=now)
    except (rewards.OutOfStock, rewards.CapReached) as exc:
        log.warning("campaign %s: participant %s gets no %s: %s", campaign.id, who.id, reason, exc)
        return None


def redeem(
    session: Session, campaign: Campaign, friend: Participant, *, now_us: int | None = None
) -> Redeemed:
    """The friend used their gift: each side gets its reward, once (a second report answers the
    same claims). A reward out of stock is left out for that side (logged) without undoing the
    other's."""
    settings = _settings(campaign)
    now = clock.now_us() if now_us is None else now_us
    if friend.campaign_id != campaign.id:
        raise InvalidParameter(f"friend: participant {friend.id} is not in this campaign")
    gift = gift_of_friend(session, campaign, friend)
    if gift is None:
        raise NotFound(f"participant {friend.id} has not taken a gift in this campaign")
    if gift.status == "accepted":
        session.execute(
            update(Gift)
            .where(Gift.id == gift.id, Gift.status == "accepted")
            .values(status="redeemed", redeemed_at_us=now)
            .execution_options(synchronize_session=False)
        )
        session.refresh(gift)
        service.record_action(
            session, campaign, friend, "gift_redeem", f"gift:redeem:{gift.id}",
            other_id=gift.sender_id, detail={"gift": gift.id}, now_us=now,
        )  # fmt: skip
    if gift.status != "redeemed":
        raise InvalidParameter(f"gift: gift {gift.id} is {gift.status}")
    sender = session.get(Participant, gift.sender_id)
    friend_claim = _grant(
        session, campaign, friend, int(settings["friend_reward_id"]), FRIEND_REASON, now
    )
    sender_claim = None
    if sender is not None:
        sender_claim = _grant(
            session,
            campaign,
            sender,
            int(settings["sender_reward_id"]),
            sender_reason(gift.id),
            now,
        )
    return Redeemed(friend_claim, sender_claim)
