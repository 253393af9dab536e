"""Tag groups, tags and tagging members. Services take the session and never commit."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy.orm import Session

from quanzi.core.tags import repository as repo
from quanzi.core.tags.models import MemberTag, Tag, TagGroup
from quanzi.kit.clock import now_us
from quanzi.kit.errors import InvalidParameter, NotFound

NAME_MAX = 64
DEFAULT_COLOR = "blue"
_COLOR = re.compile(r"^(#[0-9a-fA-F]{6}|[a-z]{1,16})$")


@dataclass(frozen=True, slots=True)
class TagView:
    id: int
    tag_group_id: int
    name: str
    color: str
    members: int


@dataclass(frozen=True, slots=True)
class TagGroupView:
    id: int
    name: str
    tags: list[TagView]


def _name(what: str, name: str) -> str:
    clean = (name or "").strip() if isinstance(name, str) else ""
    if not 1 <= len(clean) <= NAME_MAX:
        raise InvalidParameter(f"{what} name must be 1–{NAME_MAX} characters, not {name!r}")
    return clean


def _color(color: str) -> str:
    if not isinstance(color, str) or not _COLOR.match(color):
        raise InvalidParameter(f"color must be a colour name (blue) or #rrggbb, not {color!r}")
    return color


def _tag_group(session: Session, ws_id: int, tag_group_id: int) -> TagGroup:
    found = repo.tag_group(session, ws_id, tag_group_id)
    if found is None:
        raise NotFound(f"no tag group {tag_group_id} in this workspace")
    return found


def _tag(session: Session, ws_id: int, tag_id: int) -> Tag:
    found = repo.tag(session, ws_id, tag_id)
    if found is None:
        raise NotFound(f"no tag {tag_id} in this workspace")
    return found


def _unique_group_name(session: Session, ws_id: int, name: str, keep_id: int | None) -> None:
    other = repo.tag_group_named(session, ws_id, name)
    if other is not None and other.id != keep_id:
        raise InvalidParameter(f"a tag group named {name!r} already exists")


def _unique_tag_name(session: Session, tag_group_id: int, name: str, keep_id: int | None) -> None:
    other = repo.tag_named(session, tag_group_id, name)
    if other is not None and other.id != keep_id:
        raise InvalidParameter(f"tag {name!r} already exists in this tag group")


def create_tag_group(session: Session, ws_id: int, name: str) -> TagGroup:
    clean = _name("tag group", name)
    _unique_group_name(session, ws_id, clean, None)
    group = TagGroup(workspace_id=ws_id, name=clean, created_at_us=now_us())
    session.add(group)
    session.flush()
    return group


def rename_tag_group(session: Session, ws_id: int, tag_group_id: int, name: str) -> TagGroup:
    group = _tag_group(session, ws_id, tag_group_id)
    clean = _name("tag group", name)
    _unique_group_name(session, ws_id, clean, group.id)
    group.name = clean
    session.flush()
    return group


def delete_tag_group(session: Session, ws_id: int, tag_group_id: int) -> None:
    """Delete a tag group with its tags and their links to members."""
    group = _tag_group(session, ws_id, tag_group_id)
    ids = [t.id for t in repo.tags(session, ws_id) if t.tag_group_id == group.id]
    for part in repo.chunks(ids):
        repo.unlink_tags(session, ws_id, part)
        for tag_id in part:
            session.delete(_tag(session, ws_id, tag_id))
    session.delete(group)
    session.flush()


def create_tag(
    session: Session, ws_id: int, tag_group_id: int, name: str, color: str = DEFAULT_COLOR
) -> Tag:
    group = _tag_group(session, ws_id, tag_group_id)
    clean = _name("tag", name)
    _unique_tag_name(session, group.id, clean, None)
    tag = Tag(
        workspace_id=ws_id,
        tag_group_id=group.id,
        name=clean,
        color=_color(color),
        created_at_us=now_us(),
    )
    session.add(tag)
    session.flush()
    return tag


def rename_tag(
    session: Session, ws_id: int, tag_id: int, name: str, color: str | None = None
) -> Tag:
    """Rename a tag (and recolour it when `color` is given)."""
    tag = _tag(session, ws_id, tag_id)
    clean = _name("tag", name)
    _unique_tag_name(session, tag.tag_group_id, clean, tag.id)
    tag.name = clean
    if color is not None:
        tag.color = _color(color)
    session.flush()
    return tag


def delete_tag(session: Session, ws_id: int, tag_id: int) -> None:
    tag = _tag(session, ws_id, tag_id)
    repo.unlink_tags(session, ws_id, [tag.id])
    session.delete(tag)
    session.flush()


def list_tag_groups(session: Session, ws_id: int) -> list[TagGroupView]:
    """Every tag group by name, with its tags by name and how many members carry each."""
    counts = repo.member_counts(session, ws_id)
    per_group: dict[int, list[TagView]] = {}
    for t in repo.tags(session, ws_id):
        per_group.setdefault(t.tag_group_id, []).append(
            TagView(t.id, t.tag_group_id, t.name, t.color, counts.get(t.id, 0))
        )
    return [
        TagGroupView(g.id, g.name, per_group.get(g.id, [])) for g in repo.tag_groups(session, ws_id)
    ]


def _checked_tags(session: Session, ws_id: int, tag_ids: Collection[int]) -> list[int]:
    wanted = set(tag_ids)
    missing = wanted - repo.existing_tag_ids(session, ws_id, wanted)
    if missing:
        raise NotFound(f"no tag {min(missing)} in this workspace")
    return sorted(wanted)


def tag_members(
    session: Session,
    ws_id: int,
    member_ids: Collection[int],
    tag_ids: Collection[int],
    *,
    by_user_id: int | None,
) -> int:
    """Put every tag on every member; returns the links made (existing ones are kept as
    they are). A tag of another workspace raises NotFound; member ids that are not this
    workspace's are passed over."""
    tags = _checked_tags(session, ws_id, tag_ids)
    if not tags:
        return 0
    at = now_us()
    made = 0
    for part in repo.chunks(repo.existing_member_ids(session, ws_id, member_ids)):
        have = repo.links(session, ws_id, part, tags)
        new = [
            MemberTag(
                member_id=m, tag_id=t, workspace_id=ws_id, tagged_by_user_id=by_user_id, at_us=at
            )
            for m in part
            for t in tags
            if (m, t) not in have
        ]
        session.add_all(new)
        made += len(new)
    session.flush()
    return made


def untag_members(
    session: Session, ws_id: int, member_ids: Collection[int], tag_ids: Collection[int]
) -> int:
    """Take the tags off the members; returns the links removed."""
    tags = _checked_tags(session, ws_id, tag_ids)
    if not tags:
        return 0
    return sum(repo.unlink(session, ws_id, part, tags) for part in repo.chunks(member_ids))


def tags_of_members(
    session: Session, ws_id: int, member_ids: Collection[int]
) -> dict[int, list[Tag]]:
    """The tags on each of the members (by tag name); members without tags are left out."""
    out: dict[int, list[Tag]] = {}
    for m, t in repo.tags_on(session, ws_id, member_ids):
        out.setdefault(m, []).append(t)
    return out
