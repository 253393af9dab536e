"""Queries over tag groups, tags and the tags on members."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from quanzi.core.members.models import Member
from quanzi.core.tags.models import MemberTag, Tag, TagGroup

CHUNK = 500


def chunks(ids: Collection[int]) -> list[list[int]]:
    ordered = sorted(set(ids))
    return [ordered[i : i + CHUNK] for i in range(0, len(ordered), CHUNK)]


def tag_group(s: Session, ws: int, tag_group_id: int) -> TagGroup | None:
    return s.scalar(
        select(TagGroup).where(TagGroup.workspace_id == ws, TagGroup.id == tag_group_id)
    )


def tag_group_named(s: Session, ws: int, name: str) -> TagGroup | None:
    return s.scalar(select(TagGroup).where(TagGroup.workspace_id == ws, TagGroup.name == name))


def tag(s: Session, ws: int, tag_id: int) -> Tag | None:
    return s.scalar(select(Tag).where(Tag.workspace_id == ws, Tag.id == tag_id))


def tag_named(s: Session, tag_group_id: int, name: str) -> Tag | None:
    return s.scalar(select(Tag).where(Tag.tag_group_id == tag_group_id, Tag.name == name))


def tag_groups(s: Session, ws: int) -> list[TagGroup]:
    q = select(TagGroup).where(TagGroup.workspace_id == ws).order_by(TagGroup.name, TagGroup.id)
    return list(s.scalars(q))


def tags(s: Session, ws: int) -> list[Tag]:
    return list(s.scalars(select(Tag).where(Tag.workspace_id == ws).order_by(Tag.name, Tag.id)))


def member_counts(s: Session, ws: int) -> dict[int, int]:
    q = (
        select(MemberTag.tag_id, func.count())
        .where(MemberTag.workspace_id == ws)
        .group_by(MemberTag.tag_id)
    )
    return {int(t): int(n) for t, n in s.execute(q)}


def existing_tag_ids(s: Session, ws: int, ids: Collection[int]) -> set[int]:
    out: set[int] = set()
    for part in chunks(ids):
        out.update(s.scalars(select(Tag.id).where(Tag.workspace_id == ws, Tag.id.in_(part))))
    return out


def existing_member_ids(s: Session, ws: int, ids: Collection[int]) -> set[int]:
    out: set[int] = set()
    for part in chunks(ids):
        out.update(
            s.scalars(select(Member.id).where(Member.workspace_id == ws, Member.id.in_(part)))
        )
    return out


def links(s: Session, ws: int, member_ids: list[int], tag_ids: list[int]) -> set[tuple[int, int]]:
    """(member id, tag id) pairs already linked among the given ones."""
    q = select(MemberTag.member_id, MemberTag.tag_id).where(
        MemberTag.workspace_id == ws,
        MemberTag.member_id.in_(member_ids),
        MemberTag.tag_id.in_(tag_ids),
    )
    return {(int(m), int(t)) for m, t in s.execute(q)}


def unlink(s: Session, ws: int, member_ids: list[int], tag_ids: list[int]) -> int:
    q = delete(MemberTag).where(
        MemberTag.workspace_id == ws,
        MemberTag.member_id.in_(member_ids),
        MemberTag.tag_id.in_(tag_ids),
    )
    return int(s.execute(q).rowcount)  # type: ignore[attr-defined]


def unlink_tags(s: Session, ws: int, tag_ids: list[int]) -> None:
    s.execute(delete(MemberTag).where(MemberTag.workspace_id == ws, MemberTag.tag_id.in_(tag_ids)))


def tags_on(s: Session, ws: int, member_ids: Collection[int]) -> list[tuple[int, Tag]]:
    """(member id, tag) for the given members, by tag name."""
    out: list[tuple[int, Tag]] = []
    for part in chunks(member_ids):
        q = (
            select(MemberTag.member_id, Tag)
            .join(Tag, Tag.id == MemberTag.tag_id)
            .where(MemberTag.workspace_id == ws, MemberTag.member_id.in_(part))
            .order_by(Tag.name, Tag.id)
        )
        out.extend((int(m), t) for m, t in s.execute(q))
    return out
