"""Tags: operator-defined labels on members, organised in tag groups."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from quanzi.db.base import Base


class TagGroup(Base):
    """A family of tags, e.g. 「宝宝月龄」 or 「意向」."""

    __tablename__ = "tag_groups"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    created_at_us: Mapped[int] = mapped_column(BigInteger)


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("tag_group_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    tag_group_id: Mapped[int] = mapped_column(ForeignKey("tag_groups.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    color: Mapped[str] = mapped_column(String(16), default="blue")
    created_at_us: Mapped[int] = mapped_column(BigInteger)


class MemberTag(Base):
    """A tag on a member, with who put it there and when."""

    __tablename__ = "member_tags"

    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    tagged_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    at_us: Mapped[int] = mapped_column(BigInteger)


Index("ix_member_tags_tag", MemberTag.tag_id, MemberTag.member_id)
