"""Queries behind the reports: they read projections only, never the raw event log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Integer,
    and_,
    case,
    distinct,
    exists,
    func,
    literal,
    or_,
    select,
    union,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from quanzi.commerce.models import Order, Refund
from quanzi.core.events.models import EventRecord
from quanzi.core.groups.models import Group, GroupChange
from quanzi.core.members.models import (
    DailyActivity,
    InviteFlag,
    Join,
    Leave,
    Member,
    Membership,
    MemberWeek,
)
from quanzi.core.members.repository import invitee_flagged, left_within_hold
from quanzi.core.workspaces.models import Workspace

# Monday of the ISO week of a day number, in SQL; the offset keeps `%` non-negative for any
# day back to year 1 (SQL's % keeps the sign of the dividend).
_WEEK_SHIFT = 7_000_003
NONE_CHANNEL = "(none)"


def week_expr(day: Any) -> Any:
    return day - ((day + _WEEK_SHIFT) % 7)


def _in_at(ms: Any, instant_us: int) -> Any:
    """Membership interval `ms` holds at the instant just before `instant_us`."""
    return and_(ms.joined_us < instant_us, or_(ms.left_us.is_(None), ms.left_us >= instant_us))


def last_event_seq(s: Session, ws: int) -> int:
    """The seq of the workspace's latest logged event (0 when none): every ingest that applies
    something raises it (ingests of a workspace are serialised by its lock, so it grows in
    commit order). Read backwards along the primary key, so it is immediate when the log's
    latest events are this workspace's (the usual case: under 1 ms at 1,000,000 events);
    max() scans the workspace's rows of the (workspace, event id) index (~40-90 ms)."""
    return int(
        s.scalar(
            select(EventRecord.seq)
            # "+ 0" keeps the planner off the (workspace, event id) index, which would
            # visit every row of the workspace before sorting.
            .where(EventRecord.workspace_id + 0 == ws)
            .order_by(EventRecord.seq.desc())
            .limit(1)
        )
        or 0
    )


def data_version(s: Session, ws: int) -> tuple[object, ...]:
    """What every projection-derived figure of the workspace depends on besides the
    question: the database, the workspace (and its creation, should an id be reused), its
    time zone, its latest logged event, its staff and its fraud flags (operator data outside
    the log). Equal versions give equal answers: a key for caches, never stale."""
    created, tz = s.execute(
        select(Workspace.created_at_us, Workspace.timezone).where(Workspace.id == ws)
    ).one()
    return (
        str(s.get_bind().engine.url),
        ws,
        created,
        tz,
        last_event_seq(s, ws),
        tuple(sorted(staff_ids(s, ws))),
        tuple(invite_flag_ids(s, ws)),
    )


def invite_flag_ids(s: Session, ws: int) -> list[int]:
    """The members whose invites are flagged as fraud (operator data, not in the event log)."""
    q = select(InviteFlag.member_id).where(InviteFlag.workspace_id == ws)
    return sorted(int(m) for (m,) in s.execute(q))


def next_invite_maturity(
    s: Session, ws: int, lo: int, hi: int, hold_us: int, as_of_us: int
) -> int | None:
    """The first instant after `as_of_us` at which a join with an inviter on days lo..hi
    reaches the end of its hold window (a pending invite may turn valid then), or None."""
    q = select(func.min(Join.ts_us)).where(
        Join.workspace_id == ws,
        Join.day >= lo,
        Join.day <= hi,
        Join.inviter_id.is_not(None),
        Join.ts_us + hold_us > as_of_us,
    )
    first = s.scalar(q)
    return None if first is None else int(first) + hold_us


def staff_ids(s: Session, ws: int) -> list[int]:
    """The workspace's staff (few): excluding them by id spares a join to members per row."""
    return [
        int(m)
        for (m,) in s.execute(
            select(Member.id).where(Member.workspace_id == ws, Member.is_staff.is_(True))
        )
    ]


def _not_staff(m: Any = Member) -> Any:
    return m.is_staff.is_(False)


# A report's scope: the Group.id values it may see, or None for the whole workspace.
Scope = frozenset[int] | None


def _in_scope(group_col: Any, scope: Scope) -> list[Any]:
    """Where-clauses keeping rows of the scope's groups; none when unscoped, so the
    workspace-wide queries stay exactly as they were."""
    return [] if scope is None else [group_col.in_(sorted(scope))]


def _code_point(s: Session, col: Any) -> Any:
    """Order strings by Unicode code point, as Python does (PostgreSQL may use a locale)."""
    return col.collate("C") if s.get_bind().dialect.name == "postgresql" else col


def member_view(s: Session, ws: int, scope: Scope, alias: bool = True) -> Any:
    """Members as the reports read them: the `members` table itself (`alias`: a fresh alias of
    it) when unscoped; within a scope, the members who joined or posted in one of its groups,
    with their first join and first message taken within the scope (null when none there) and
    their channel the first touch among that first join and their first contact (contacts
    belong to no group)."""
    if scope is None:
        return aliased(Member) if alias else Member
    groups = sorted(scope)
    da = DailyActivity
    # Who: anyone with a join or a message in the scope's groups. Their first join and first
    # message there are looked up per member through the (workspace, member, …) indexes.
    who = union(
        select(Join.member_id).where(Join.workspace_id == ws, Join.group_id.in_(groups)),
        select(da.member_id).where(da.workspace_id == ws, da.group_id.in_(groups)),
    ).subquery()
    first_join = (
        select(Join.id)
        .where(Join.workspace_id == ws, Join.member_id == Member.id, Join.group_id.in_(groups))
        .order_by(Join.ts_us, _code_point(s, Join.event_id))
        .limit(1)
        .scalar_subquery()
    )

    def first_message(col: Any) -> Any:
        return (
            select(func.min(col))
            .where(da.workspace_id == ws, da.member_id == Member.id, da.group_id.in_(groups))
            .scalar_subquery()
        )

    people = (
        select(
            Member.id,
            Member.workspace_id,
            Member.platform,
            Member.member_key,
            Member.is_staff,
            Member.first_contact_us,
            Member.first_contact_event,
            Member.first_contact_channel,
            first_join.label("first_join_id"),
            first_message(da.first_us).label("first_message_us"),
            first_message(da.day).label("first_message_day"),
        )
        .where(Member.workspace_id == ws, Member.id.in_(select(who.c.member_id)))
        .subquery()
    )
    fj = aliased(Join)
    fc_us, fc_event = people.c.first_contact_us, _code_point(s, people.c.first_contact_event)
    contact_first = and_(
        fc_us.is_not(None),
        or_(
            fc_us < fj.ts_us,
            and_(fc_us == fj.ts_us, fc_event < _code_point(s, fj.event_id)),
        ),
    )
    channel = case(
        (contact_first, func.coalesce(people.c.first_contact_channel, NONE_CHANNEL)),
        else_=func.coalesce(fj.channel, NONE_CHANNEL),
    )
    view = (
        select(
            people.c.id,
            people.c.workspace_id,
            people.c.platform,
            people.c.member_key,
            people.c.is_staff,
            fj.ts_us.label("first_join_us"),
            fj.event_id.label("first_join_event"),
            fj.day.label("first_join_day"),
            fj.channel.label("first_join_channel"),
            channel.label("channel"),
            people.c.first_message_us,
            people.c.first_message_day,
        )
        .select_from(people)
        .outerjoin(fj, fj.id == people.c.first_join_id)
        .subquery()
    )
    return aliased(Member, view, adapt_on_names=True)


def member_week_view(ws: int, scope: Scope, alias: bool = False) -> Any:
    """Member-weeks: the table when unscoped; within a scope, the weeks a member posted in
    one of its groups (from daily activity)."""
    if scope is None:
        return aliased(MemberWeek) if alias else MemberWeek
    da = DailyActivity
    view = (
        select(da.workspace_id, da.member_id, week_expr(da.day).label("week"))
        .where(da.workspace_id == ws, da.group_id.in_(sorted(scope)))
        .distinct()
        .subquery()
    )
    return aliased(MemberWeek, view, adapt_on_names=True)


def members_at(s: Session, ws: int, end_us: int, scope: Scope = None) -> int:
    q = select(func.count(distinct(Membership.member_id))).where(
        Membership.workspace_id == ws,
        Membership.member_id.not_in(staff_ids(s, ws)),
        _in_at(Membership, end_us),
        *_in_scope(Membership.group_id, scope),
    )
    return int(s.scalar(q) or 0)


def members_at_each(
    s: Session, ws: int, ends_us: Sequence[int], scope: Scope, staff: list[int]
) -> list[int]:
    """members_at for each instant of `ends_us`, in one pass over the memberships; `staff`:
    the workspace's staff_ids."""
    if not ends_us:
        return []
    q = select(
        *[
            func.count(distinct(case((_in_at(Membership, e), Membership.member_id), else_=None)))
            for e in ends_us
        ]
    ).where(
        Membership.workspace_id == ws,
        Membership.member_id.not_in(staff),
        Membership.joined_us < max(ends_us),
        *_in_scope(Membership.group_id, scope),
    )
    row = s.execute(q).one()
    return [int(n or 0) for n in row]


def active_members_each(
    s: Session, ws: int, windows: Sequence[tuple[int, int]], scope: Scope, staff: list[int]
) -> list[int]:
    """Distinct members (not staff) with a message over each window (lo, hi) of days, as
    message_counts(…, by_day=False) counts them, in one pass; `staff`: the staff_ids."""
    if not windows:
        return []
    da = DailyActivity
    q = select(
        *[
            func.count(distinct(case((and_(da.day >= lo, da.day <= hi), da.member_id), else_=None)))
            for lo, hi in windows
        ]
    ).where(
        da.workspace_id == ws,
        da.day >= min(lo for lo, _hi in windows),
        da.day <= max(hi for _lo, hi in windows),
        da.member_id.not_in(staff),
        *_in_scope(da.group_id, scope),
    )
    row = s.execute(q).one()
    return [int(n or 0) for n in row]


def group_size_active_each(
    s: Session, ws: int, points: Sequence[tuple[int, int]], scope: Scope, staff: list[int]
) -> list[dict[int, tuple[int, int]]]:
    """For each (end_us, day) of `points`, per group: (size at end_us, of them posted in it in
    the 7 days ending `day`) — group_presence's first two figures, without its 30-day
    lookup per member, in two queries for all points; `staff`: the workspace's staff_ids."""
    if not points:
        return []
    ms, da = Membership, DailyActivity
    sizes = select(
        ms.group_id,
        *[
            func.count(distinct(case((_in_at(ms, e), ms.member_id), else_=None)))
            for e, _d in points
        ],
    ).where(
        ms.workspace_id == ws,
        ms.member_id.not_in(staff),
        ms.joined_us < max(e for e, _d in points),
        *_in_scope(ms.group_id, scope),
    )
    # Posts in the windows, each (group, member) looked up in the memberships by the
    # (workspace, group, member) index: the member counts when in the group at the end.
    active = (
        select(
            da.group_id,
            *[
                func.count(
                    distinct(
                        case(
                            (and_(da.day >= d - 6, da.day <= d, _in_at(ms, e)), da.member_id),
                            else_=None,
                        )
                    )
                )
                for e, d in points
            ],
        )
        .join(
            ms,
            and_(ms.workspace_id == ws, ms.group_id == da.group_id, ms.member_id == da.member_id),
        )
        .where(
            da.workspace_id == ws,
            da.day >= min(d for _e, d in points) - 6,
            da.day <= max(d for _e, d in points),
            da.member_id.not_in(staff),
            *_in_scope(da.group_id, scope),
        )
    )
    out: list[dict[int, tuple[int, int]]] = [{} for _p in points]
    for row in s.execute(sizes.group_by(ms.group_id)):
        for i, n in enumerate(row[1:]):
            if n:
                out[i][int(row[0])] = (int(n), 0)
    for row in s.execute(active.group_by(da.group_id)):
        for i, n in enumerate(row[1:]):
            if n:
                size, _a = out[i][int(row[0])]
                out[i][int(row[0])] = (size, int(n))
    return out


def groups_existing_at(s: Session, ws: int, end_us: int, scope: Scope = None) -> list[Any]:
    q = select(Group.id, Group.platform, Group.group_key).where(
        Group.workspace_id == ws,
        Group.created_at_us.is_not(None),
        Group.created_at_us < end_us,
        or_(Group.dismissed_at_us.is_(None), Group.dismissed_at_us >= end_us),
        *_in_scope(Group.id, scope),
    )
    return list(s.execute(q))


def group_names_at(s: Session, ws: int, end_us: int, scope: Scope = None) -> dict[int, str]:
    """The last name set before `end_us`, per group, by (ts, event id)."""
    best: dict[int, tuple[tuple[int, str], str]] = {}
    q = select(
        GroupChange.group_id, GroupChange.ts_us, GroupChange.event_id, GroupChange.value
    ).where(
        GroupChange.workspace_id == ws,
        GroupChange.field == "name",
        GroupChange.ts_us < end_us,
        *_in_scope(GroupChange.group_id, scope),
    )
    for gid, ts, eid, value in s.execute(q):
        if gid not in best or (ts, eid) > best[gid][0]:
            best[gid] = ((ts, eid), value)
    return {gid: v for gid, (_o, v) in best.items()}


def new_members_on(s: Session, ws: int, day: int, scope: Scope = None) -> int:
    return new_members_by_day(s, ws, day, day, scope).get(day, 0)


def new_members_by_day(
    s: Session, ws: int, lo: int, hi: int, scope: Scope = None
) -> dict[int, int]:
    """Members (not staff) whose first join falls on each of days lo..hi."""
    m = member_view(s, ws, scope, alias=False)
    q = (
        select(m.first_join_day, func.count())
        .select_from(m)
        .where(m.workspace_id == ws, _not_staff(m), m.first_join_day >= lo, m.first_join_day <= hi)
        .group_by(m.first_join_day)
    )
    return {int(d): int(n) for d, n in s.execute(q)}


def leaves_on(s: Session, ws: int, day: int, scope: Scope = None) -> int:
    return leaves_by_day(s, ws, day, day, scope).get(day, 0)


def leaves_by_day(s: Session, ws: int, lo: int, hi: int, scope: Scope = None) -> dict[int, int]:
    """Leave events of members (not staff) on each of days lo..hi."""
    q = (
        select(Leave.day, func.count())
        .join(Member, Member.id == Leave.member_id)
        .where(
            Leave.workspace_id == ws,
            Leave.day >= lo,
            Leave.day <= hi,
            _not_staff(),
            *_in_scope(Leave.group_id, scope),
        )
        .group_by(Leave.day)
    )
    return {int(d): int(n) for d, n in s.execute(q)}


def messages_on(s: Session, ws: int, day: int, scope: Scope = None) -> tuple[int, int, int]:
    """(member messages, staff messages, active members) on a day."""
    return message_counts(s, ws, day, day, scope).get(day, (0, 0, 0))


def message_counts(
    s: Session,
    ws: int,
    lo: int,
    hi: int,
    scope: Scope = None,
    by_day: bool = True,
    staff: list[int] | None = None,
) -> dict[int, tuple[int, int, int]]:
    """(member messages, staff messages, active members) on each of days lo..hi; with
    `by_day` false, over the whole window (active: distinct), under key `lo`. With `staff`
    (the workspace's staff_ids, already read) staff are told by id, sparing the join to
    members per row; the answer is the same."""
    da = DailyActivity
    key = da.day if by_day else literal(lo, Integer)
    not_staff = _not_staff() if staff is None else da.member_id.not_in(staff)
    q = select(
        key,
        func.coalesce(func.sum(case((not_staff, da.messages), else_=0)), 0),
        func.coalesce(func.sum(case((not_staff, 0), else_=da.messages)), 0),
        func.count(distinct(case((not_staff, da.member_id), else_=None))),
    )
    if staff is None:
        q = q.join(Member, Member.id == da.member_id)
    q = q.where(da.workspace_id == ws, da.day >= lo, da.day <= hi, *_in_scope(da.group_id, scope))
    if by_day:
        q = q.group_by(da.day)
    return {int(d): (int(mm), int(sm), int(a)) for d, mm, sm, a in s.execute(q) if d is not None}


def _with_membership_in(member_col: Any, ws: int, scope: Scope) -> list[Any]:
    """Where-clauses keeping members who ever had a membership in one of the scope's groups."""
    if scope is None:
        return []
    return [
        exists().where(
            Membership.workspace_id == ws,
            Membership.member_id == member_col,
            Membership.group_id.in_(sorted(scope)),
        )
    ]


def revenue_by_day(s: Session, ws: int, lo: int, hi: int, scope: Scope = None) -> dict[int, int]:
    """Revenue in fen on each of days lo..hi: amounts paid that day minus refunds made that
    day. Within a scope, orders (and their refunds) of members who were ever in its groups."""
    paid = (
        select(Order.paid_day, func.sum(Order.amount_fen))
        .where(
            Order.workspace_id == ws,
            Order.paid_day >= lo,
            Order.paid_day <= hi,
            *_with_membership_in(Order.member_id, ws, scope),
        )
        .group_by(Order.paid_day)
    )
    refunds = select(Refund.day, func.sum(Refund.amount_fen)).where(
        Refund.workspace_id == ws, Refund.day >= lo, Refund.day <= hi
    )
    if scope is not None:
        refunds = refunds.where(
            exists().where(
                Order.workspace_id == ws,
                Order.platform == Refund.platform,
                Order.order_key == Refund.order_key,
                *_with_membership_in(Order.member_id, ws, scope),
            )
        )
    out: dict[int, int] = {}
    for d, fen in s.execute(paid):
        out[int(d)] = int(fen or 0)
    for d, fen in s.execute(refunds.group_by(Refund.day)):
        out[int(d)] = out.get(int(d), 0) - int(fen or 0)
    return out


@dataclass(frozen=True, slots=True)
class Poster:
    """A member and how many messages they posted in a window."""

    member_id: int
    platform: str
    member_key: str
    name: str | None
    messages: int


def top_posters(
    s: Session,
    ws: int,
    lo: int,
    hi: int,
    limit: int,
    scope: Scope = None,
    staff: list[int] | None = None,
) -> list[Poster]:
    """The members (not staff) with the most messages over days lo..hi, then by id.
    `staff`: the workspace's staff_ids when already read."""
    da = DailyActivity
    total = func.sum(da.messages)
    per = (
        select(da.member_id, total.label("n"))
        .where(
            da.workspace_id == ws,
            da.day >= lo,
            da.day <= hi,
            da.member_id.not_in(staff_ids(s, ws) if staff is None else staff),
            *_in_scope(da.group_id, scope),
        )
        .group_by(da.member_id)
        .subquery()
    )
    q = (
        select(Member.id, Member.platform, Member.member_key, Member.name, per.c.n)
        .join(per, per.c.member_id == Member.id)
        .order_by(
            per.c.n.desc(),
            _code_point(s, Member.member_key),
            _code_point(s, Member.platform),
        )
        .limit(limit)
    )
    return [Poster(int(i), p, k, name, int(n)) for i, p, k, name, n in s.execute(q)]


def group_counts(
    s: Session, ws: int, model: Any, lo: int, hi: int, scope: Scope = None
) -> dict[int, int]:
    """Join or leave events of members (not staff) per group over days lo..hi."""
    q = (
        select(model.group_id, func.count())
        .where(
            model.workspace_id == ws,
            model.day >= lo,
            model.day <= hi,
            model.member_id.not_in(staff_ids(s, ws)),
            *_in_scope(model.group_id, scope),
        )
        .group_by(model.group_id)
    )
    return {g: int(n) for g, n in s.execute(q)}


def group_messages(
    s: Session, ws: int, lo: int, hi: int, scope: Scope = None, staff: list[int] | None = None
) -> dict[int, tuple[int, int]]:
    """(all messages, member messages) per group over days lo..hi. `staff`: the workspace's
    staff_ids when already read."""
    staff = staff_ids(s, ws) if staff is None else staff
    q = (
        select(
            DailyActivity.group_id,
            func.sum(DailyActivity.messages),
            func.coalesce(
                func.sum(
                    case(
                        (DailyActivity.member_id.not_in(staff), DailyActivity.messages),
                        else_=0,
                    )
                ),
                0,
            ),
        )
        .where(
            DailyActivity.workspace_id == ws,
            DailyActivity.day >= lo,
            DailyActivity.day <= hi,
            *_in_scope(DailyActivity.group_id, scope),
        )
        .group_by(DailyActivity.group_id)
    )
    return {g: (int(a), int(m)) for g, a, m in s.execute(q)}


def group_presence(
    s: Session, ws: int, end_us: int, day: int, scope: Scope = None
) -> dict[int, tuple[int, int, int]]:
    """Per group: (size at end_us, of them posted in it in the 7 days ending `day`,
    of them posted nothing in it in the 30 days ending `day`)."""
    cur = (
        select(Membership.group_id, Membership.member_id)
        .where(
            Membership.workspace_id == ws,
            Membership.member_id.not_in(staff_ids(s, ws)),
            _in_at(Membership, end_us),
            *_in_scope(Membership.group_id, scope),
        )
        .distinct()
        .subquery("cur")
    )
    # The member's last day with a post in that group within the 30 days: one lookup in
    # daily_activity's primary key per current member.
    da = DailyActivity
    last_day = (
        select(func.max(da.day))
        .where(
            da.workspace_id == ws,
            da.group_id == cur.c.group_id,
            da.member_id == cur.c.member_id,
            da.day >= day - 29,
            da.day <= day,
        )
        .scalar_subquery()
    )
    per_member = select(cur.c.group_id, last_day.label("ld")).subquery("per_member")
    ld = per_member.c.ld
    q = select(
        per_member.c.group_id,
        func.count(),
        func.sum(case((ld >= day - 6, 1), else_=0)),
        func.sum(case((ld.is_(None), 1), else_=0)),
    ).group_by(per_member.c.group_id)
    return {int(g): (int(n), int(a or 0), int(sl or 0)) for g, n, a, sl in s.execute(q)}


@dataclass(frozen=True, slots=True)
class InviteFact:
    """One raw invite (a join with an inviter who is not the invitee, neither of them staff)."""

    inviter_id: int
    inviter_key: str
    inviter_platform: str
    invitee_id: int
    joined_us: int
    is_new: bool
    left_within_hold: bool
    flagged: bool

    def valid(self, hold_us: int, as_of_us: int) -> bool:
        return (
            self.is_new
            and not self.flagged
            and not self.left_within_hold
            and self.joined_us + hold_us <= as_of_us
        )

    def pending(self, hold_us: int, as_of_us: int) -> bool:
        return (
            self.is_new
            and not self.flagged
            and not self.left_within_hold
            and self.joined_us + hold_us > as_of_us
        )


def invite_facts(
    s: Session,
    ws: int,
    lo_day: int,
    hi_day: int,
    hold_us: int,
    scope: Scope = None,
) -> list[InviteFact]:
    """Raw invites whose join falls on local days lo..hi; within a scope, joins into its groups
    (by inviters from anywhere), "new" meaning the invitee's first join within the scope."""
    invitee = member_view(s, ws, scope)
    inviter = aliased(Member)
    left = left_within_hold(ws, hold_us)
    flagged = invitee_flagged(ws)
    q = (
        select(
            Join.inviter_id,
            inviter.member_key,
            inviter.platform,
            Join.member_id,
            Join.ts_us,
            (Join.event_id == invitee.first_join_event).label("is_new"),
            left.label("left"),
            flagged.label("flagged"),
        )
        .join(invitee, invitee.id == Join.member_id)
        .join(inviter, inviter.id == Join.inviter_id)
        .where(
            Join.workspace_id == ws,
            Join.day >= lo_day,
            Join.day <= hi_day,
            Join.inviter_id.is_not(None),
            Join.inviter_id != Join.member_id,
            invitee.is_staff.is_(False),
            inviter.is_staff.is_(False),
            *_in_scope(Join.group_id, scope),
        )
    )
    out: list[InviteFact] = []
    for row in s.execute(q):
        inviter_id = int(row[0] or 0)
        out.append(
            InviteFact(
                inviter_id,
                row[1],
                row[2],
                int(row[3]),
                int(row[4]),
                bool(row[5]),
                bool(row[6]),
                bool(row[7]),
            )
        )
    return out


def referrers(
    s: Session, ws: int, lo_day: int, hi_day: int, hold_us: int, as_of_us: int, scope: Scope = None
) -> set[int]:
    """Members (not staff) whose first join is on days lo..hi and who have at least one valid
    invite whose invitee joined within 30 × 24 h after that first join (the funnel's referral)."""
    day30 = 30 * 86_400 * 1_000_000
    invitee = member_view(s, ws, scope)
    inviter = member_view(s, ws, scope)
    q = (
        select(Join.inviter_id)
        .join(inviter, inviter.id == Join.inviter_id)
        .join(invitee, invitee.id == Join.member_id)
        .where(
            Join.workspace_id == ws,
            Join.day >= lo_day - 1,
            Join.day <= hi_day + 31,
            inviter.is_staff.is_(False),
            inviter.first_join_day >= lo_day,
            inviter.first_join_day <= hi_day,
            Join.ts_us >= inviter.first_join_us,
            Join.ts_us <= inviter.first_join_us + day30,
            Join.member_id != Join.inviter_id,
            invitee.is_staff.is_(False),
            Join.event_id == invitee.first_join_event,
            Join.ts_us + hold_us <= as_of_us,
            ~exists().where(InviteFlag.workspace_id == ws, InviteFlag.member_id == Join.member_id),
            ~exists().where(
                Leave.workspace_id == ws,
                Leave.member_id == Join.member_id,
                Leave.group_id == Join.group_id,
                Leave.ts_us >= Join.ts_us,
                Leave.ts_us <= Join.ts_us + hold_us,
            ),
            *_in_scope(Join.group_id, scope),
        )
        .distinct()
    )
    return {int(m) for (m,) in s.execute(q) if m is not None}


def acquired_by_channel(
    s: Session, ws: int, lo_day: int, hi_day: int, scope: Scope = None
) -> dict[str | None, tuple[int, int, int]]:
    """Per acquisition channel, over members (not staff) whose first join falls on local days
    lo..hi: (acquired, activated: a message in [fj, fj + 7 d], retained: activated and a
    message in (fj + 7 d, fj + 30 d])."""
    m = member_view(s, ws, scope, alias=False)
    day7 = 7 * 86_400 * 1_000_000
    day30 = 30 * 86_400 * 1_000_000
    da = DailyActivity
    fj = m.first_join_us
    activated = exists().where(
        da.workspace_id == ws,
        da.member_id == m.id,
        *_in_scope(da.group_id, scope),
        da.day >= m.first_join_day,
        da.day <= m.first_join_day + 8,
        da.last_us >= fj,
        da.first_us <= fj + day7,
    )
    retained = exists().where(
        da.workspace_id == ws,
        da.member_id == m.id,
        *_in_scope(da.group_id, scope),
        da.day >= m.first_join_day + 6,
        da.day <= m.first_join_day + 31,
        da.last_us > fj + day7,
        da.first_us <= fj + day30,
    )
    # The member's first message settles "activated" without a lookup unless it came before
    # the first join; "retained" is looked up only for the activated.
    fm = m.first_message_us
    act = case(
        (fm.is_(None), False),
        (and_(fm >= fj, fm <= fj + day7), True),
        (fm > fj + day7, False),
        else_=activated,
    )
    flags = (
        select(
            m.channel.label("channel"),
            act.label("act"),
            case((act, retained), else_=False).label("ret"),
        )
        .where(
            m.workspace_id == ws,
            _not_staff(m),
            m.first_join_day >= lo_day,
            m.first_join_day <= hi_day,
        )
        .subquery("flags")
    )
    q = select(
        flags.c.channel,
        func.count(),
        func.sum(case((flags.c.act, 1), else_=0)),
        func.sum(case((flags.c.ret, 1), else_=0)),
    ).group_by(flags.c.channel)
    return {ch: (int(n), int(a or 0), int(r or 0)) for ch, n, a, r in s.execute(q)}


def revenue_by_channel(
    s: Session, ws: int, lo_day: int, hi_day: int, scope: Scope = None
) -> dict[str | None, tuple[int, int]]:
    """Per acquisition channel, over the same members: (members with an order paid within
    [fj, fj + 30 d] that is not fully refunded, the sum of those orders' amount − refunds)."""
    m = member_view(s, ws, scope, alias=False)
    day30 = 30 * 86_400 * 1_000_000
    refunded = (
        select(Refund.platform, Refund.order_key, func.sum(Refund.amount_fen).label("total"))
        .where(Refund.workspace_id == ws)
        .group_by(Refund.platform, Refund.order_key)
        .subquery("refunded")
    )
    total = func.coalesce(refunded.c.total, 0)
    q = (
        select(m.channel, func.count(distinct(m.id)), func.sum(Order.amount_fen - total))
        .select_from(Order)
        .join(m, m.id == Order.member_id)
        .outerjoin(
            refunded,
            and_(refunded.c.platform == Order.platform, refunded.c.order_key == Order.order_key),
        )
        .where(
            Order.workspace_id == ws,
            _not_staff(m),
            m.first_join_day >= lo_day,
            m.first_join_day <= hi_day,
            Order.paid_us >= m.first_join_us,
            Order.paid_us <= m.first_join_us + day30,
            total < Order.amount_fen,
        )
        .group_by(m.channel)
    )
    return {ch: (int(n), int(fen or 0)) for ch, n, fen in s.execute(q)}


def referrers_by_channel(
    s: Session, ws: int, lo_day: int, hi_day: int, hold_us: int, as_of_us: int, scope: Scope = None
) -> dict[str | None, int]:
    """Per acquisition channel: how many of `referrers` there are."""
    m = member_view(s, ws, scope, alias=False)
    out: dict[str | None, int] = {}
    ids = sorted(referrers(s, ws, lo_day, hi_day, hold_us, as_of_us, scope))
    for i in range(0, len(ids), 500):
        q = select(m.channel, func.count()).where(m.id.in_(ids[i : i + 500])).group_by(m.channel)
        for ch, n in s.execute(q):
            out[ch] = out.get(ch, 0) + int(n)
    return out


def cohorts(s: Session, ws: int, lo_day: int, hi_day: int, scope: Scope = None) -> dict[int, int]:
    """Cohort size per ISO-week Monday, for members whose first join is on days lo..hi."""
    m = member_view(s, ws, scope, alias=False)
    wk = week_expr(m.first_join_day)
    q = (
        select(wk, func.count())
        .where(
            m.workspace_id == ws,
            _not_staff(m),
            m.first_join_day >= lo_day,
            m.first_join_day <= hi_day,
        )
        .group_by(wk)
    )
    return {int(w): int(n) for w, n in s.execute(q)}


def activity_retention(
    s: Session, ws: int, lo_day: int, hi_day: int, last_day: int, scope: Scope = None
) -> dict[tuple[int, int], int]:
    """Members active (anywhere) per (cohort Monday, activity Monday)."""
    m = member_view(s, ws, scope, alias=False)
    mw = member_week_view(ws, scope)
    cw = week_expr(m.first_join_day)
    q = (
        select(cw, mw.week, func.count())
        .join(
            mw,
            and_(mw.member_id == m.id, mw.workspace_id == ws),
        )
        .where(
            m.workspace_id == ws,
            _not_staff(m),
            m.first_join_day >= lo_day,
            m.first_join_day <= hi_day,
            mw.week >= lo_day,
            mw.week <= last_day,
        )
        .group_by(cw, mw.week)
    )
    return {(int(c), int(a)): int(n) for c, a, n in s.execute(q)}


def membership_retention(
    s: Session,
    ws: int,
    lo_day: int,
    hi_day: int,
    ends: list[tuple[int, int, int]],
    scope: Scope = None,
) -> dict[tuple[int, int], int]:
    """Members in at least one group per (cohort Monday, k) at the given week-end instants."""
    if not ends:
        return {}
    m = member_view(s, ws, scope, alias=False)
    cw = week_expr(m.first_join_day)
    weeks = union_all(
        *[
            select(
                literal(c, Integer).label("cw"),
                literal(k, Integer).label("k"),
                literal(e).label("end_us"),
            )
            for c, k, e in ends
        ]
    ).subquery("weeks")
    q = (
        select(weeks.c.cw, weeks.c.k, func.count(distinct(m.id)))
        .select_from(m)
        .join(
            Membership,
            and_(
                Membership.member_id == m.id,
                Membership.workspace_id == ws,
                *_in_scope(Membership.group_id, scope),
            ),
        )
        .join(
            weeks,
            and_(
                weeks.c.cw == cw,
                Membership.joined_us < weeks.c.end_us,
                or_(Membership.left_us.is_(None), Membership.left_us >= weeks.c.end_us),
            ),
        )
        .where(
            m.workspace_id == ws,
            _not_staff(m),
            m.first_join_day >= lo_day,
            m.first_join_day <= hi_day,
        )
        .group_by(weeks.c.cw, weeks.c.k)
    )
    return {(int(c), int(k)): int(n) for c, k, n in s.execute(q)}


def lifecycle_counts(
    s: Session, ws: int, first_week: int, last_week: int, scope: Scope = None
) -> tuple[dict[int, int], dict[int, int], dict[int, int]]:
    """Per week (Monday), over members (not staff): how many were active; how many were
    active that week and the week before; how many posted their first message that week."""
    if scope is not None:
        return _scoped_lifecycle_counts(s, ws, first_week, last_week, scope)
    m = member_view(s, ws, scope, alias=False)
    mw = member_week_view(ws, scope)
    active_q = (
        select(mw.week, func.count())
        .join(m, m.id == mw.member_id)
        .where(
            mw.workspace_id == ws,
            _not_staff(m),
            mw.week >= first_week - 7,
            mw.week <= last_week,
        )
        .group_by(mw.week)
    )
    prev = member_week_view(ws, scope, alias=True)
    both_q = (
        select(mw.week, func.count())
        .join(
            prev,
            and_(
                prev.workspace_id == ws,
                prev.member_id == mw.member_id,
                prev.week == mw.week - 7,
            ),
        )
        .join(m, m.id == mw.member_id)
        .where(
            mw.workspace_id == ws,
            _not_staff(m),
            mw.week >= first_week,
            mw.week <= last_week,
        )
        .group_by(mw.week)
    )
    fw = week_expr(m.first_message_day)
    new_q = (
        select(fw, func.count())
        .where(
            m.workspace_id == ws,
            _not_staff(m),
            m.first_message_day >= first_week,
            m.first_message_day <= last_week + 6,
        )
        .group_by(fw)
    )

    def counts(q: Any) -> dict[int, int]:
        return {int(w): int(n) for w, n in s.execute(q)}

    return counts(active_q), counts(both_q), counts(new_q)


def _scoped_lifecycle_counts(
    s: Session, ws: int, first_week: int, last_week: int, scope: frozenset[int]
) -> tuple[dict[int, int], dict[int, int], dict[int, int]]:
    """lifecycle_counts within a scope, in one pass over the weeks members (not staff) posted
    in its groups: the previous active week (LAG) and the first one (MIN) per member."""
    da = DailyActivity
    weeks = (
        select(da.member_id, week_expr(da.day).label("week"))
        .where(
            da.workspace_id == ws,
            da.group_id.in_(sorted(scope)),
            da.day <= last_week + 6,
            da.member_id.not_in(staff_ids(s, ws)),
        )
        .distinct()
        .subquery()
    )
    ranked = select(
        weeks.c.week,
        func.lag(weeks.c.week)
        .over(partition_by=weeks.c.member_id, order_by=weeks.c.week)
        .label("prev"),
        func.min(weeks.c.week).over(partition_by=weeks.c.member_id).label("first"),
    ).subquery()
    wk = ranked.c.week
    q = (
        select(
            wk,
            func.count(),
            func.sum(case((ranked.c.prev == wk - 7, 1), else_=0)),
            func.sum(case((ranked.c.first == wk, 1), else_=0)),
        )
        .where(wk >= first_week - 7, wk <= last_week)
        .group_by(wk)
    )
    active: dict[int, int] = {}
    both: dict[int, int] = {}
    new: dict[int, int] = {}
    for w, n, b, f in s.execute(q):
        active[int(w)], both[int(w)], new[int(w)] = int(n), int(b or 0), int(f or 0)
    return active, both, new
