"""Projection: groups and the history of their names, notices and owners."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from quanzi.db.base import Base


class Group(Base):
    """A chat group, identified by (platform, group id). Identity rows survive a rebuild."""

    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("workspace_id", "platform", "group_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(64))
    group_key: Mapped[str] = mapped_column(String(255))
    # Exists from the earliest group.created or member.joined; null until one is seen.
    created_at_us: Mapped[int | None] = mapped_column(BigInteger)
    # The earliest group.dismissed.
    dismissed_at_us: Mapped[int | None] = mapped_column(BigInteger)
    # Current name/notice/owner: the last value set, by (ts, event id) (see GroupChange).
    name: Mapped[str | None] = mapped_column(Text)
    notice: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(255))


class GroupChange(Base):
    """Each name, notice or owner a group was given, so a report can ask for the value at a past instant."""

    __tablename__ = "group_changes"
    __table_args__ = (UniqueConstraint("workspace_id", "event_id", "field"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[str] = mapped_column(String(200))
    ts_us: Mapped[int] = mapped_column(BigInteger)
    field: Mapped[str] = mapped_column(String(16))  # name | notice | owner
    value: Mapped[str] = mapped_column(Text)
