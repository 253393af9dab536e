"""Fission campaigns (裂变): one participant model for every kind, rewards with stock, teams,
bargains, gifts and verifiable lottery draws. Money is integer fen; times are UTC microseconds.

Kinds: invite_task (任务宝), group_buy (拼团), help_unlock (助力), bargain (砍价),
gift_coupon (送券), leaderboard (比), lottery (抽奖).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from quanzi.db.base import Base

CAMPAIGN_KINDS = (
    "invite_task",
    "group_buy",
    "help_unlock",
    "bargain",
    "gift_coupon",
    "leaderboard",
    "lottery",
)
CAMPAIGN_STATUSES = ("draft", "live", "ended", "cancelled")


class Campaign(Base):
    """A campaign: its kind, window, rules (who, which groups, caps, hold window, the kind's own
    settings) and copy. Public page /k/<slug>; events' `campaign` is `key`."""

    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("slug"), UniqueConstraint("workspace_id", "key"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(30))  # the events' `campaign`, like a channel key
    slug: Mapped[str] = mapped_column(String(32))  # /k/<slug>, unique everywhere
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(12), default="draft")
    starts_at_us: Mapped[int] = mapped_column(BigInteger)
    ends_at_us: Mapped[int] = mapped_column(BigInteger)
    # Common rules and the kind's settings, validated by the campaign service:
    # {"eligibility": {"new_only", "tag_ids", "channels"}, "group_ids", "hold_hours",
    #  "per_person_cap", "campaign_cap", "tiers"/"team"/"bargain"/"prizes"/"lottery"/...}
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Title, description, rules text, share copy: what the public page and posters say.
    copy_text: Mapped[dict[str, Any]] = mapped_column(JSON)
    channel_code_id: Mapped[int | None] = mapped_column(
        ForeignKey("channel_codes.id", ondelete="SET NULL")
    )
    poster_template_id: Mapped[int | None] = mapped_column(
        ForeignKey("poster_templates.id", ondelete="SET NULL")
    )
    # The forecast made before launch (branching process over the workspace's own history),
    # kept to compare with what happened.
    forecast: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Lottery: sha256 hex of the seed, published before the draw; the seed after it.
    draw_commitment: Mapped[str | None] = mapped_column(String(64))
    draw_seed: Mapped[str | None] = mapped_column(String(64))
    drawn_at_us: Mapped[int | None] = mapped_column(BigInteger)
    created_by: Mapped[str | None] = mapped_column(String(254))
    created_at_us: Mapped[int] = mapped_column(BigInteger)
    updated_at_us: Mapped[int] = mapped_column(BigInteger)


class Participant(Base):
    """Someone taking part: a member (known from the community) and/or a phone (from the public
    page), once per campaign. Their score is what the leaderboard ranks, ties going to whoever
    reached it first (`score_at_us`)."""

    __tablename__ = "campaign_participants"
    __table_args__ = (
        UniqueConstraint("campaign_id", "member_id"),
        UniqueConstraint("campaign_id", "phone_digest"),
        UniqueConstraint("token_digest"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    phone_digest: Mapped[str | None] = mapped_column(String(64))
    phone_sealed: Mapped[str | None] = mapped_column(Text)
    name_sealed: Mapped[str | None] = mapped_column(Text)
    # SHA-256 of the personal link's token (/k/<slug>/me/<token>); the token itself is not kept.
    token_digest: Mapped[str] = mapped_column(String(64))
    # Who brought them in (a participant of the same campaign), when they came via a share.
    referrer_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaign_participants.id", ondelete="SET NULL")
    )
    score: Mapped[int] = mapped_column(Integer, default=0)
    score_at_us: Mapped[int] = mapped_column(BigInteger)  # when the score was reached
    joined_at_us: Mapped[int] = mapped_column(BigInteger)
    # Shipping address for physical rewards, sealed.
    address_sealed: Mapped[str | None] = mapped_column(Text)


Index(
    "ix_campaign_participants_rank",
    Participant.campaign_id,
    Participant.score.desc(),
    Participant.score_at_us,
    Participant.id,
)
Index("ix_campaign_participants_referrer", Participant.referrer_id)


class CampaignAction(Base):
    """Every participant action, once (idempotency key): join, invite credited, help, cut,
    team join/pay, gift sent/redeemed, claim. The log the figures and the load test count."""

    __tablename__ = "campaign_actions"
    __table_args__ = (UniqueConstraint("campaign_id", "idem_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("campaign_participants.id", ondelete="CASCADE")
    )
    # The other side: the helper / invitee / friend, when there is one.
    other_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaign_participants.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    idem_key: Mapped[str] = mapped_column(String(100))
    at_us: Mapped[int] = mapped_column(BigInteger)


Index("ix_campaign_actions_participant", CampaignAction.participant_id, CampaignAction.kind)
Index(
    "ix_campaign_actions_other",
    CampaignAction.campaign_id,
    CampaignAction.kind,
    CampaignAction.other_id,
)


class CampaignTeam(Base):
    """A 拼团 team: complete when `size` members paid before `deadline_us`, else refunded."""

    __tablename__ = "campaign_teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    leader_id: Mapped[int] = mapped_column(
        ForeignKey("campaign_participants.id", ondelete="CASCADE")
    )
    size: Mapped[int] = mapped_column(Integer)
    filled: Mapped[int] = mapped_column(Integer, default=0)  # members who paid
    price_fen: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10))  # open | complete | expired
    opened_at_us: Mapped[int] = mapped_column(BigInteger)
    deadline_us: Mapped[int] = mapped_column(BigInteger)
    closed_at_us: Mapped[int | None] = mapped_column(BigInteger)


Index("ix_campaign_teams_due", CampaignTeam.status, CampaignTeam.deadline_us)


class TeamSeat(Base):
    """A paid seat in a team, with the order it was paid by (refunded if the team expires)."""

    __tablename__ = "campaign_team_members"
    __table_args__ = (UniqueConstraint("team_id", "participant_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("campaign_teams.id", ondelete="CASCADE"))
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("campaign_participants.id", ondelete="CASCADE")
    )
    order_key: Mapped[str] = mapped_column(String(255))
    paid_fen: Mapped[int] = mapped_column(BigInteger)
    paid_at_us: Mapped[int] = mapped_column(BigInteger)
    refunded_at_us: Mapped[int | None] = mapped_column(BigInteger)


class Bargain(Base):
    """A participant's 砍价: the cuts are drawn when it starts, so they add up to exactly
    price − floor over `helpers` cuts; each helper takes the next one."""

    __tablename__ = "campaign_bargains"
    __table_args__ = (UniqueConstraint("campaign_id", "participant_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("campaign_participants.id", ondelete="CASCADE")
    )
    price_fen: Mapped[int] = mapped_column(BigInteger)
    floor_fen: Mapped[int] = mapped_column(BigInteger)
    cuts: Mapped[list[int]] = mapped_column(JSON)  # fen, each > 0, sum = price − floor
    taken: Mapped[int] = mapped_column(Integer, default=0)  # cuts used so far
    current_fen: Mapped[int] = mapped_column(BigInteger)  # price − the cuts taken
    started_at_us: Mapped[int] = mapped_column(BigInteger)
    completed_at_us: Mapped[int | None] = mapped_column(BigInteger)


class Reward(Base):
    """What can be won: virtual (coupon codes from a pool, membership days, points, a content
    link) or physical (stock, shipped). `stock` None is unlimited; `claimed` never exceeds it."""

    __tablename__ = "rewards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    # coupon_code | membership_days | points | content_link | physical
    kind: Mapped[str] = mapped_column(String(16))
    unit_cost_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    stock: Mapped[int | None] = mapped_column(Integer)
    claimed: Mapped[int] = mapped_column(Integer, default=0)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)  # days / points / url / value_fen
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at_us: Mapped[int] = mapped_column(BigInteger)


class RewardCode(Base):
    """One code of a coupon pool; handed out once (claim_id set)."""

    __tablename__ = "reward_codes"
    __table_args__ = (UniqueConstraint("reward_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(100))
    claim_id: Mapped[int | None] = mapped_column(Integer, unique=True)


Index("ix_reward_codes_free", RewardCode.reward_id, RewardCode.claim_id)


class RewardClaim(Base):
    """A reward given to a participant for one reason (a tier, a rank, a draw, a team, a gift),
    once: the unique key makes a second claim for the same reason impossible."""

    __tablename__ = "reward_claims"
    __table_args__ = (UniqueConstraint("campaign_id", "participant_id", "reason"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("campaign_participants.id", ondelete="CASCADE")
    )
    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(40))  # e.g. tier:3, rank:1, draw, team:12, gift
    # granted (virtual, done) | pending | shipped | delivered (physical) | revoked
    status: Mapped[str] = mapped_column(String(10))
    code: Mapped[str | None] = mapped_column(String(100))  # the pool code handed out
    tracking_no: Mapped[str | None] = mapped_column(String(64))
    cost_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    claimed_at_us: Mapped[int] = mapped_column(BigInteger)
    updated_at_us: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[str | None] = mapped_column(String(254))


Index("ix_reward_claims_reward", RewardClaim.reward_id, RewardClaim.status)


class Gift(Base):
    """送券: a participant sends a coupon to a friend; both get theirs when the friend redeems."""

    __tablename__ = "campaign_gifts"
    __table_args__ = (
        UniqueConstraint("token_digest"),
        UniqueConstraint("campaign_id", "friend_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    sender_id: Mapped[int] = mapped_column(
        ForeignKey("campaign_participants.id", ondelete="CASCADE")
    )
    friend_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaign_participants.id", ondelete="SET NULL")
    )
    token_digest: Mapped[str] = mapped_column(String(64))  # the gift link's token, hashed
    status: Mapped[str] = mapped_column(String(10))  # sent | accepted | redeemed | expired
    sent_at_us: Mapped[int] = mapped_column(BigInteger)
    redeemed_at_us: Mapped[int | None] = mapped_column(BigInteger)
