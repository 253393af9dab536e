"""Queries behind the console's group pages: every `select(...)` over groups lives here.

The 7-day figures of the whole workspace come from `quanzi.analytics.repository` (the same
functions the `groups` report uses, so the console and the report never disagree); the
queries below answer for one group or a few, through the indexes that start with the group.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from quanzi.core.groups.models import Group, GroupChange
from quanzi.core.members.models import DailyActivity, Join, Leave, Member, Membership


def groups(
    s: Session,
    ws: int,
    *,
    group_ids: Collection[int] | None,
    status: str,
    end_us: int,
    q: str | None = None,
) -> list[Group]:
    """Groups of the workspace by status at `end_us`: "active" are the groups the `groups`
    report lists (they exist and are not dismissed by then), "dismissed" those dismissed by
    then, "all" every group ever seen."""
    cond: list[Any] = [Group.workspace_id == ws]
    if group_ids is not None:
        cond.append(Group.id.in_(sorted(group_ids)))
    if status == "active":
        cond += [
            Group.created_at_us.is_not(None),
            Group.created_at_us < end_us,
            or_(Group.dismissed_at_us.is_(None), Group.dismissed_at_us >= end_us),
        ]
    elif status == "dismissed":
        cond += [Group.dismissed_at_us.is_not(None), Group.dismissed_at_us < end_us]
    if q:
        needle = q.lower()
        cond.append(
            or_(
                func.lower(Group.name).contains(needle, autoescape=True),
                func.lower(Group.group_key).contains(needle, autoescape=True),
            )
        )
    return list(s.scalars(select(Group).where(*cond)))


def group(s: Session, ws: int, group_id: int) -> Group | None:
    return s.scalar(select(Group).where(Group.workspace_id == ws, Group.id == group_id))


def staff_member_ids(s: Session, ws: int) -> set[int]:
    return set(s.scalars(select(Member.id).where(Member.workspace_id == ws, Member.is_staff)))


def presence(
    s: Session, ws: int, gids: Collection[int], end_us: int, day: int, staff: set[int]
) -> dict[int, tuple[int, int, int]]:
    """Per group of `gids`: (members at `end_us`, of them posted in it on days day-6..day,
    of them posted nothing in it on days day-29..day); staff left out. For a few groups:
    their memberships and 30 days of their activity, read through the group's indexes."""
    ids = sorted(gids)
    current: dict[int, set[int]] = {g: set() for g in ids}
    q = select(Membership.group_id, Membership.member_id).where(
        Membership.workspace_id == ws,
        Membership.group_id.in_(ids),
        Membership.joined_us < end_us,
        or_(Membership.left_us.is_(None), Membership.left_us >= end_us),
    )
    for g, m in s.execute(q):
        if m not in staff:
            current[g].add(m)
    last: dict[tuple[int, int], int] = {}
    da = DailyActivity
    q2 = (
        select(da.group_id, da.member_id, func.max(da.day))
        .where(
            da.workspace_id == ws,
            da.group_id.in_(ids),
            da.day >= day - 29,
            da.day <= day,
        )
        .group_by(da.group_id, da.member_id)
    )
    for g, m, d in s.execute(q2):
        last[(g, m)] = int(d)
    out: dict[int, tuple[int, int, int]] = {}
    for g, members in current.items():
        days = [last.get((g, m)) for m in members]
        active = sum(1 for d in days if d is not None and d >= day - 6)
        silent = sum(1 for d in days if d is None)
        out[g] = (len(members), active, silent)
    return out


def intervals_of_group(s: Session, ws: int, group_id: int) -> list[tuple[int, int, int | None]]:
    """(member id, joined, left) of every membership interval of the group."""
    q = select(Membership.member_id, Membership.joined_us, Membership.left_us).where(
        Membership.workspace_id == ws, Membership.group_id == group_id
    )
    return [(int(m), int(j), None if left is None else int(left)) for m, j, left in s.execute(q)]


def events_per_day(
    s: Session, ws: int, kind: str, group_id: int, lo: int, hi: int
) -> list[tuple[int, int]]:
    """(day, member id) of the group's "joins" or "leaves" on days lo..hi."""
    model: Any = Join if kind == "joins" else Leave
    q = select(model.day, model.member_id).where(
        model.workspace_id == ws, model.group_id == group_id, model.day >= lo, model.day <= hi
    )
    return [(int(d), int(m)) for d, m in s.execute(q)]


def activity_of_group(
    s: Session, ws: int, group_id: int, lo: int, hi: int
) -> list[tuple[int, int, int]]:
    """(day, member id, messages) of the group on days lo..hi."""
    da = DailyActivity
    q = select(da.day, da.member_id, da.messages).where(
        da.workspace_id == ws, da.group_id == group_id, da.day >= lo, da.day <= hi
    )
    return [(int(d), int(m), int(n)) for d, m, n in s.execute(q)]


def member_names(s: Session, ws: int, ids: Collection[int]) -> dict[int, tuple[str, str | None]]:
    """(member key, name) per member id."""
    out: dict[int, tuple[str, str | None]] = {}
    ordered = sorted(ids)
    for i in range(0, len(ordered), 500):
        q = select(Member.id, Member.member_key, Member.name).where(
            Member.workspace_id == ws, Member.id.in_(ordered[i : i + 500])
        )
        for mid, key, name in s.execute(q):
            out[int(mid)] = (key, name)
    return out


def changes(s: Session, ws: int, group_id: int) -> list[GroupChange]:
    q = (
        select(GroupChange)
        .where(GroupChange.workspace_id == ws, GroupChange.group_id == group_id)
        .order_by(GroupChange.ts_us.desc(), GroupChange.event_id.desc(), GroupChange.field)
    )
    return list(s.scalars(q))


GROUP_MEMBER_SORTS = {
    "joined": "joined",
    "name": "name",
    "messages_30d": "messages_30d",
    "last_message": "last_message",
}


def current_members(
    s: Session,
    ws: int,
    group_id: int,
    *,
    day: int,
    sort: str,
    desc: bool,
    offset: int,
    limit: int,
) -> tuple[int, list[Any]]:
    """The group's members now (open intervals), one page: (total, rows of id, key, name,
    is_staff, joined_us, messages in the 30 days ending `day`, last message day)."""
    da = DailyActivity
    base = (
        Membership.workspace_id == ws,
        Membership.group_id == group_id,
        Membership.left_us.is_(None),
    )
    total = int(s.scalar(select(func.count()).select_from(Membership).where(*base)) or 0)
    msgs = (
        select(func.coalesce(func.sum(da.messages), 0))
        .where(
            da.workspace_id == ws,
            da.group_id == group_id,
            da.member_id == Membership.member_id,
            da.day >= day - 29,
            da.day <= day,
        )
        .scalar_subquery()
    )
    last = (
        select(func.max(da.day))
        .where(
            da.workspace_id == ws,
            da.group_id == group_id,
            da.member_id == Membership.member_id,
            da.day <= day,
        )
        .scalar_subquery()
    )
    key: Any = {
        "joined": Membership.joined_us,
        "name": func.coalesce(Member.name, Member.member_key),
        "messages_30d": msgs,
        "last_message": func.coalesce(last, -1_000_000_000),
    }[sort]
    order = [key.desc() if desc else key.asc(), Member.id.desc() if desc else Member.id.asc()]
    q = (
        select(
            Member.id,
            Member.member_key,
            Member.name,
            Member.is_staff,
            Membership.joined_us,
            msgs.label("messages_30d"),
            last.label("last_day"),
        )
        .join(Member, Member.id == Membership.member_id)
        .where(*base)
        .order_by(*order)
        .offset(offset)
        .limit(limit)
    )
    return total, list(s.execute(q))
