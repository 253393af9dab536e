"""Channel codes (活码) and their scans, and the invite fraud review queue."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from quanzi.db.base import Base

TARGET_KINDS = ("wecom_contact", "wecom_group", "link", "landing")


class ChannelCode(Base):
    """A trackable code: a stable short link /c/<code> and its QR, attributed to `channel`."""

    __tablename__ = "channel_codes"
    __table_args__ = (UniqueConstraint("code"), UniqueConstraint("workspace_id", "channel"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(16))  # the short link's slug, unique everywhere
    name: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(30))  # the events' `channel` / WeCom `state`
    target_kind: Mapped[str] = mapped_column(String(16))
    # wecom_contact: {"staff": [...], "rotation": "round_robin"|"least_loaded", "daily_cap": n}
    # wecom_group: {"chat_ids": [...], "capacity": 200}; link: {"url": ...}; landing: {"page": slug}
    target: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Set when the platform side exists (e.g. the WeCom contact way's config_id and qr_code).
    platform_ref: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    cost_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str | None] = mapped_column(String(254))
    created_at_us: Mapped[int] = mapped_column(BigInteger)
    updated_at_us: Mapped[int] = mapped_column(BigInteger)


class ChannelVisit(Base):
    """One scan or visit of a channel code: when, which kind of device; never the raw IP."""

    __tablename__ = "channel_visits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    code_id: Mapped[int] = mapped_column(ForeignKey("channel_codes.id", ondelete="CASCADE"))
    at_us: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[int] = mapped_column(Integer)  # local day in the workspace's time zone
    kind: Mapped[str] = mapped_column(String(8))  # scan | visit
    ua_class: Mapped[str] = mapped_column(
        String(16)
    )  # wechat | wecom | ios | android | desktop | bot | other
    # Which staff or group the rotation handed this visit to, when the target rotates.
    assigned: Mapped[str | None] = mapped_column(String(64))
    # A member's personal invite state (?m=m:<b36>) when the visit came through their poster.
    ref: Mapped[str | None] = mapped_column(String(32))
    # Keyed blind indexes (workspace key) of the visitor's network (/24, /48) and of network +
    # User-Agent, for the shared-device fraud signal. Never the address itself.
    net_digest: Mapped[str | None] = mapped_column(String(64))
    device_digest: Mapped[str | None] = mapped_column(String(64))


Index("ix_channel_visits_code_day", ChannelVisit.code_id, ChannelVisit.day)


class ChannelRotation(Base):
    """How many visits a rotating target handed to each staff member or group per day."""

    __tablename__ = "channel_rotations"

    code_id: Mapped[int] = mapped_column(
        ForeignKey("channel_codes.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignee: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class InviteSuspect(Base):
    """An invite the fraud signals flagged, waiting for (or after) an operator's review."""

    __tablename__ = "invite_suspects"
    __table_args__ = (UniqueConstraint("workspace_id", "member_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))  # invitee
    inviter_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    # [{"kind": "self_invite"|"quick_leave"|"sybil_burst"|"shared_device", "detail": {...}}]
    signals: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # suspected | confirmed | dismissed
    detected_at_us: Mapped[int] = mapped_column(BigInteger)
    reviewed_by: Mapped[str | None] = mapped_column(String(254))
    reviewed_at_us: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(Text)


Index("ix_invite_suspects_ws_status", InviteSuspect.workspace_id, InviteSuspect.status)


class LandingPage(Base):
    """A mobile landing page (H5): top (hook), middle (proof), bottom (lead form / group QR)."""

    __tablename__ = "landing_pages"
    __table_args__ = (UniqueConstraint("slug"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(32))  # /p/<slug>, unique everywhere
    name: Mapped[str] = mapped_column(String(100))
    draft: Mapped[dict[str, Any]] = mapped_column(JSON)  # the builder's blocks, unpublished
    published_version_id: Mapped[int | None] = mapped_column(Integer)  # None: unpublished
    # A/B test: variant B's draft and published version, and the share of traffic it gets
    # (0 = no test, every visitor sees A). A visitor keeps their variant (cookie).
    draft_b: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    published_b_version_id: Mapped[int | None] = mapped_column(Integer)
    split_b: Mapped[int] = mapped_column(Integer, default=0)
    created_at_us: Mapped[int] = mapped_column(BigInteger)
    updated_at_us: Mapped[int] = mapped_column(BigInteger)


class LandingPageVersion(Base):
    """A published version, kept for ever: its blocks and the HTML rendered once at publish."""

    __tablename__ = "landing_page_versions"
    __table_args__ = (UniqueConstraint("page_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    page_id: Mapped[int] = mapped_column(ForeignKey("landing_pages.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    variant: Mapped[str] = mapped_column(String(1), default="A")  # A | B
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    html: Mapped[str] = mapped_column(Text)
    consent_text: Mapped[str] = mapped_column(Text)
    published_by: Mapped[str | None] = mapped_column(String(254))
    published_at_us: Mapped[int] = mapped_column(BigInteger)


class LandingVisit(Base):
    """A view of a published page: which version, from which channel code, which device class."""

    __tablename__ = "landing_visits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    page_id: Mapped[int] = mapped_column(ForeignKey("landing_pages.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(
        ForeignKey("landing_page_versions.id", ondelete="CASCADE")
    )
    channel: Mapped[str | None] = mapped_column(String(30))
    ua_class: Mapped[str] = mapped_column(String(16))
    at_us: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[int] = mapped_column(Integer)
    net_digest: Mapped[str | None] = mapped_column(String(64))  # as ChannelVisit
    device_digest: Mapped[str | None] = mapped_column(String(64))


Index("ix_landing_visits_page_day", LandingVisit.page_id, LandingVisit.day)


class Lead(Base):
    """A visitor who left a phone number: one per phone per workspace, personal data sealed."""

    __tablename__ = "leads"
    __table_args__ = (UniqueConstraint("workspace_id", "phone_digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    page_id: Mapped[int | None] = mapped_column(ForeignKey("landing_pages.id", ondelete="SET NULL"))
    version_id: Mapped[int | None] = mapped_column(
        ForeignKey("landing_page_versions.id", ondelete="SET NULL")
    )
    channel: Mapped[str | None] = mapped_column(String(30))
    phone_digest: Mapped[str] = mapped_column(String(64))  # quanzi.core.members.personal
    phone_sealed: Mapped[str] = mapped_column(Text)
    name_sealed: Mapped[str | None] = mapped_column(Text)
    # The operator's optional fields, sealed as one JSON object.
    fields_sealed: Mapped[str | None] = mapped_column(Text)
    # What the visitor agreed to (PIPL): the exact text and the page version it came with.
    consent_text: Mapped[str] = mapped_column(Text)
    consent_version: Mapped[int] = mapped_column(Integer)
    submissions: Mapped[int] = mapped_column(Integer, default=1)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    linked_by: Mapped[str | None] = mapped_column(String(8))  # phone | state
    linked_at_us: Mapped[int | None] = mapped_column(BigInteger)
    net_digest: Mapped[str | None] = mapped_column(String(64))  # as ChannelVisit
    device_digest: Mapped[str | None] = mapped_column(String(64))
    created_at_us: Mapped[int] = mapped_column(BigInteger)
    updated_at_us: Mapped[int] = mapped_column(BigInteger)


Index("ix_leads_ws_device", Lead.workspace_id, Lead.device_digest)
Index("ix_leads_ws_member", Lead.workspace_id, Lead.member_id)


class Media(Base):
    """An uploaded image, resized and compressed on upload (Pillow), served at /m/<id>-<sha8>."""

    __tablename__ = "media"
    __table_args__ = (UniqueConstraint("workspace_id", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))  # of the stored (re-encoded) bytes
    name: Mapped[str] = mapped_column(String(100))  # the uploaded file's name, for people
    purpose: Mapped[str] = mapped_column(String(16))  # banner | proof | qr | poster | avatar
    content_type: Mapped[str] = mapped_column(String(32))  # image/jpeg | image/png
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)  # bytes stored
    original_size: Mapped[int] = mapped_column(Integer)  # bytes uploaded
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_by: Mapped[str | None] = mapped_column(String(254))
    created_at_us: Mapped[int] = mapped_column(BigInteger)


class PosterTemplate(Base):
    """How a workspace's share posters look: background, copy, and the channel code they join."""

    __tablename__ = "poster_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    background_media_id: Mapped[int | None] = mapped_column(
        ForeignKey("media.id", ondelete="SET NULL")
    )
    copy_text: Mapped[str] = mapped_column(Text)
    channel_code_id: Mapped[int | None] = mapped_column(
        ForeignKey("channel_codes.id", ondelete="SET NULL")
    )
    created_at_us: Mapped[int] = mapped_column(BigInteger)
    updated_at_us: Mapped[int] = mapped_column(BigInteger)
