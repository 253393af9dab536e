"""Projections about people: members, membership intervals, joins, leaves, daily activity, contacts.

Instants are integer UTC microseconds (`*_us`) and local days are integer day numbers since
1970-01-01 in the workspace's time zone (`*_day`): both compare and add the same way on SQLite
and PostgreSQL, and keep reports fast. See docs/architecture.md.
"""

from __future__ import annotations

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


class Member(Base):
    """A person on one platform, identified by (platform, member id). Identity rows survive a rebuild."""

    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("workspace_id", "platform", "member_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(64))
    member_key: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(Text)
    name_us: Mapped[int | None] = mapped_column(BigInteger)
    name_event: Mapped[str | None] = mapped_column(String(200))
    # Staff from any `is_staff: true` join (projection) or marked by an operator (kept on rebuild).
    is_staff_joined: Mapped[bool] = mapped_column(Boolean, default=False)
    staff_marked: Mapped[bool] = mapped_column(Boolean, default=False)
    is_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    # First join / first contact / first message, each by (ts, event id).
    first_join_us: Mapped[int | None] = mapped_column(BigInteger)
    first_join_event: Mapped[str | None] = mapped_column(String(200))
    first_join_channel: Mapped[str | None] = mapped_column(Text)
    first_join_day: Mapped[int | None] = mapped_column(Integer)
    first_contact_us: Mapped[int | None] = mapped_column(BigInteger)
    first_contact_event: Mapped[str | None] = mapped_column(String(200))
    first_contact_channel: Mapped[str | None] = mapped_column(Text)
    first_message_us: Mapped[int | None] = mapped_column(BigInteger)
    first_message_day: Mapped[int | None] = mapped_column(Integer)
    # Acquisition channel (first touch), "(none)" when the first touch carried none.
    channel: Mapped[str | None] = mapped_column(Text)
    # Profile fields from profile.updated: {field: [value, ts_us, event_id]}, last write wins.
    profile: Mapped[dict[str, list[object]] | None] = mapped_column(JSON)
    # Blind indexes (quanzi.kit.crypto) of the current phone and unionid, for exact search.
    phone_digest: Mapped[str | None] = mapped_column(String(64))
    unionid_digest: Mapped[str | None] = mapped_column(String(64))


Index("ix_members_ws_first_join", Member.workspace_id, Member.first_join_us)
Index("ix_members_ws_phone", Member.workspace_id, Member.phone_digest)
Index("ix_members_ws_unionid", Member.workspace_id, Member.unionid_digest)


class Membership(Base):
    """One interval of a member in a group: from a join to a leave (or dismissal), or open."""

    __tablename__ = "memberships"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    joined_us: Mapped[int] = mapped_column(BigInteger)
    left_us: Mapped[int | None] = mapped_column(BigInteger)
    ended_by: Mapped[str | None] = mapped_column(String(16))  # leave | dismissed


Index("ix_memberships_ws_group", Membership.workspace_id, Membership.group_id, Membership.member_id)
Index("ix_memberships_ws_member", Membership.workspace_id, Membership.member_id)


class Join(Base):
    """Every member.joined event (joins while already in count too), with its invite facts."""

    __tablename__ = "joins"
    __table_args__ = (UniqueConstraint("workspace_id", "event_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(200))
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    ts_us: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[int] = mapped_column(Integer)
    inviter_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    via: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(Text)
    is_staff: Mapped[bool] = mapped_column(Boolean, default=False)


Index("ix_joins_ws_day", Join.workspace_id, Join.day)
Index("ix_joins_ws_member", Join.workspace_id, Join.member_id, Join.group_id)
Index("ix_joins_ws_inviter", Join.workspace_id, Join.inviter_id)


class Leave(Base):
    """Every member.left event."""

    __tablename__ = "leaves"
    __table_args__ = (UniqueConstraint("workspace_id", "event_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(200))
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    ts_us: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[int] = mapped_column(Integer)
    via: Mapped[str] = mapped_column(String(16))
    by_key: Mapped[str | None] = mapped_column(String(255))


Index("ix_leaves_ws_day", Leave.workspace_id, Leave.day)
Index("ix_leaves_ws_member", Leave.workspace_id, Leave.member_id, Leave.group_id)


class DailyActivity(Base):
    """Messages of one member in one group on one local day, with the first and last instant."""

    __tablename__ = "daily_activity"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[int] = mapped_column(Integer, primary_key=True)
    messages: Mapped[int] = mapped_column(Integer)
    first_us: Mapped[int] = mapped_column(BigInteger)
    last_us: Mapped[int] = mapped_column(BigInteger)


Index("ix_daily_activity_ws_day", DailyActivity.workspace_id, DailyActivity.day)
Index(
    "ix_daily_activity_ws_member",
    DailyActivity.workspace_id,
    DailyActivity.member_id,
    DailyActivity.day,
)


class MemberWeek(Base):
    """A member posted at least once (anywhere) in the ISO week starting on local day `week`:
    what retention and lifecycle count, without a DISTINCT over daily activity."""

    __tablename__ = "member_weeks"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    week: Mapped[int] = mapped_column(Integer, primary_key=True)


Index("ix_member_weeks_ws_week", MemberWeek.workspace_id, MemberWeek.week)


class ContactEvent(Base):
    """contact.added / contact.removed between a member and a staff account."""

    __tablename__ = "contact_events"
    __table_args__ = (UniqueConstraint("workspace_id", "event_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(200))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    staff_key: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # added | removed
    ts_us: Mapped[int] = mapped_column(BigInteger)
    channel: Mapped[str | None] = mapped_column(Text)
    by: Mapped[str | None] = mapped_column(String(16))


class InviteFlag(Base):
    """An operator's confirmed fraud verdict on an invitee: their invites count as neither valid nor pending."""

    __tablename__ = "invite_flags"
    __table_args__ = (UniqueConstraint("workspace_id", "member_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    reason: Mapped[str | None] = mapped_column(Text)
    flagged_at_us: Mapped[int] = mapped_column(BigInteger)
