"""Queries behind the console's member pages: the filtered list, one member's facts, invites.

`group_ids` scopes an operator to some groups (None: the whole workspace): a scoped query
sees only members who ever had a membership in one of them, and only facts in them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

from sqlalchemy import and_, case, exists, func, literal, select
from sqlalchemy.orm import Session, aliased

from quanzi.commerce.models import Order, Refund
from quanzi.core.groups.models import Group
from quanzi.core.members.models import (
    ContactEvent,
    DailyActivity,
    InviteFlag,
    Join,
    Leave,
    Member,
    Membership,
)
from quanzi.core.tags.models import MemberTag, Tag

CHUNK = 500


def _in_scope(column: Any, group_ids: Collection[int] | None) -> Any:
    return literal(True) if group_ids is None else column.in_(sorted(group_ids))


def scope_condition(ws: int, group_ids: Collection[int] | None) -> Any:
    """Members who ever had a membership in one of the groups (always true unscoped)."""
    if group_ids is None:
        return literal(True)
    return Member.id.in_(
        select(Membership.member_id).where(
            Membership.workspace_id == ws, Membership.group_id.in_(sorted(group_ids))
        )
    )


def has_tag(ws: int, tag_id: int) -> Any:
    return exists().where(
        MemberTag.member_id == Member.id, MemberTag.tag_id == tag_id, MemberTag.workspace_id == ws
    )


def in_group_now(ws: int, group_id: int) -> Any:
    return exists().where(
        Membership.workspace_id == ws,
        Membership.member_id == Member.id,
        Membership.group_id == group_id,
        Membership.left_us.is_(None),
    )


def name_matches(q: str) -> Any:
    return func.lower(Member.name).contains(q.lower(), autoescape=True)


def messages_since(ws: int, lo: int, hi: int, group_ids: Collection[int] | None) -> Any:
    """A member's messages on days lo..hi (in scope), as a correlated subquery."""
    da = DailyActivity
    return (
        select(func.coalesce(func.sum(da.messages), 0))
        .where(
            da.workspace_id == ws,
            da.member_id == Member.id,
            da.day >= lo,
            da.day <= hi,
            _in_scope(da.group_id, group_ids),
        )
        .scalar_subquery()
    )


def last_active(ws: int, group_ids: Collection[int] | None) -> Any:
    da = DailyActivity
    return (
        select(func.max(da.day))
        .where(da.workspace_id == ws, da.member_id == Member.id, _in_scope(da.group_id, group_ids))
        .scalar_subquery()
    )


def page_of_members(
    s: Session, conds: list[Any], order: list[Any], offset: int, limit: int
) -> list[Member]:
    return list(
        s.scalars(select(Member).where(*conds).order_by(*order).offset(offset).limit(limit))
    )


def count_members(s: Session, conds: list[Any], cap: int) -> int:
    """How many members match, counting no further than `cap`."""
    sub = select(Member.id).where(*conds).limit(cap).subquery()
    return int(s.scalar(select(func.count()).select_from(sub)) or 0)


def matching_ids(s: Session, conds: list[Any], limit: int | None) -> list[int]:
    q = select(Member.id).where(*conds).order_by(Member.id)
    if limit is not None:
        q = q.limit(limit)
    return [int(m) for m in s.scalars(q)]


def members_by_id(s: Session, ws: int, ids: list[int]) -> list[Member]:
    return list(s.scalars(select(Member).where(Member.workspace_id == ws, Member.id.in_(ids))))


def groups_now(
    s: Session, ws: int, ids: list[int], group_ids: Collection[int] | None
) -> dict[int, int]:
    q = (
        select(Membership.member_id, func.count(func.distinct(Membership.group_id)))
        .where(
            Membership.workspace_id == ws,
            Membership.member_id.in_(ids),
            Membership.left_us.is_(None),
            _in_scope(Membership.group_id, group_ids),
        )
        .group_by(Membership.member_id)
    )
    return {int(m): int(n) for m, n in s.execute(q)}


def activity(
    s: Session, ws: int, ids: list[int], lo: int, hi: int, group_ids: Collection[int] | None
) -> dict[int, tuple[int, int]]:
    """(messages on days lo..hi, last day with a message at all) per member, in scope."""
    da = DailyActivity
    q = (
        select(
            da.member_id,
            func.sum(case((and_(da.day >= lo, da.day <= hi), da.messages), else_=0)),
            func.max(da.day),
        )
        .where(da.workspace_id == ws, da.member_id.in_(ids), _in_scope(da.group_id, group_ids))
        .group_by(da.member_id)
    )
    return {int(m): (int(n or 0), int(d)) for m, n, d in s.execute(q)}


def tags_of(s: Session, ws: int, ids: list[int]) -> dict[int, list[tuple[int, str, str]]]:
    q = (
        select(MemberTag.member_id, Tag.id, Tag.name, Tag.color)
        .join(Tag, Tag.id == MemberTag.tag_id)
        .where(MemberTag.workspace_id == ws, MemberTag.member_id.in_(ids))
        .order_by(Tag.name, Tag.id)
    )
    out: dict[int, list[tuple[int, str, str]]] = {}
    for m, t, name, color in s.execute(q):
        out.setdefault(int(m), []).append((int(t), name, color))
    return out


def member(s: Session, ws: int, member_id: int) -> Member | None:
    return s.scalar(select(Member).where(Member.workspace_id == ws, Member.id == member_id))


def ever_in(s: Session, ws: int, member_id: int, group_ids: Collection[int]) -> bool:
    q = select(Membership.id).where(
        Membership.workspace_id == ws,
        Membership.member_id == member_id,
        Membership.group_id.in_(sorted(group_ids)),
    )
    return s.scalar(q.limit(1)) is not None


def intervals(s: Session, ws: int, member_id: int, group_ids: Collection[int] | None) -> list[Any]:
    """The member's membership intervals with their group, oldest first."""
    q = (
        select(
            Membership.group_id,
            Group.group_key,
            Group.name,
            Membership.joined_us,
            Membership.left_us,
            Membership.ended_by,
        )
        .join(Group, Group.id == Membership.group_id)
        .where(
            Membership.workspace_id == ws,
            Membership.member_id == member_id,
            _in_scope(Membership.group_id, group_ids),
        )
        .order_by(Membership.joined_us, Membership.id)
    )
    return list(s.execute(q))


def joins_of(s: Session, ws: int, member_id: int, group_ids: Collection[int] | None) -> list[Any]:
    inviter = aliased(Member)
    q = (
        select(
            Join.ts_us,
            Join.group_id,
            Group.name,
            Group.group_key,
            Join.via,
            Join.channel,
            Join.inviter_id,
            inviter.member_key,
            inviter.name,
        )
        .join(Group, Group.id == Join.group_id)
        .outerjoin(inviter, inviter.id == Join.inviter_id)
        .where(
            Join.workspace_id == ws,
            Join.member_id == member_id,
            _in_scope(Join.group_id, group_ids),
        )
    )
    return list(s.execute(q))


def leaves_of(s: Session, ws: int, member_id: int, group_ids: Collection[int] | None) -> list[Any]:
    q = (
        select(Leave.ts_us, Leave.group_id, Group.name, Group.group_key, Leave.via, Leave.by_key)
        .join(Group, Group.id == Leave.group_id)
        .where(
            Leave.workspace_id == ws,
            Leave.member_id == member_id,
            _in_scope(Leave.group_id, group_ids),
        )
    )
    return list(s.execute(q))


def contacts_of(s: Session, ws: int, member_id: int) -> list[ContactEvent]:
    q = select(ContactEvent).where(
        ContactEvent.workspace_id == ws, ContactEvent.member_id == member_id
    )
    return list(s.scalars(q))


def orders_of(s: Session, ws: int, member_id: int) -> list[tuple[Order, list[Refund]]]:
    found = list(
        s.scalars(
            select(Order)
            .where(Order.workspace_id == ws, Order.member_id == member_id)
            .order_by(Order.paid_us.desc(), Order.id.desc())
        )
    )
    out = []
    for o in found:
        refunds = list(
            s.scalars(
                select(Refund)
                .where(
                    Refund.workspace_id == ws,
                    Refund.platform == o.platform,
                    Refund.order_key == o.order_key,
                )
                .order_by(Refund.ts_us)
            )
        )
        out.append((o, refunds))
    return out


def messages_per_day(
    s: Session, ws: int, member_id: int, lo: int, group_ids: Collection[int] | None
) -> list[tuple[int, int]]:
    da = DailyActivity
    q = (
        select(da.day, func.sum(da.messages))
        .where(
            da.workspace_id == ws,
            da.member_id == member_id,
            da.day >= lo,
            _in_scope(da.group_id, group_ids),
        )
        .group_by(da.day)
    )
    return [(int(d), int(n)) for d, n in s.execute(q)]


def left_within_hold(ws: int, hold_us: int) -> Any:
    """The joined member left that group within the hold window after the join (metrics.md:
    such an invite is not valid). Correlated with the query's `Join`."""
    return exists().where(
        Leave.workspace_id == ws,
        Leave.member_id == Join.member_id,
        Leave.group_id == Join.group_id,
        Leave.ts_us >= Join.ts_us,
        Leave.ts_us <= Join.ts_us + hold_us,
    )


def invitee_flagged(ws: int) -> Any:
    """An operator confirmed the joined member's invite as fraud (InviteFlag)."""
    return exists().where(InviteFlag.workspace_id == ws, InviteFlag.member_id == Join.member_id)


def invitees(
    s: Session, ws: int, inviter_ids: list[int], group_ids: Collection[int] | None, hold_us: int
) -> Iterator[Any]:
    """Joins with one of the inviters (not self-invites, invitee not staff), oldest first,
    with what decides validity: a new member's first join, left that group within the hold
    window, fraud-flagged."""
    invitee = aliased(Member)
    left = left_within_hold(ws, hold_us)
    flagged = invitee_flagged(ws)
    q = (
        select(
            Join.inviter_id,
            Join.member_id,
            invitee.member_key,
            invitee.name,
            Join.ts_us,
            Join.group_id,
            Group.name.label("group_name"),
            Group.group_key,
            (Join.event_id == invitee.first_join_event).label("is_new"),
            left.label("left"),
            flagged.label("flagged"),
        )
        .join(invitee, invitee.id == Join.member_id)
        .join(Group, Group.id == Join.group_id)
        .where(
            Join.workspace_id == ws,
            Join.inviter_id.in_(inviter_ids),
            Join.member_id != Join.inviter_id,
            invitee.is_staff.is_(False),
            _in_scope(Join.group_id, group_ids),
        )
        .order_by(Join.ts_us, Join.event_id)
    )
    yield from s.execute(q)
