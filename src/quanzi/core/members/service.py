"""Operator decisions about members that the event log does not carry: staff marks, fraud flags."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from quanzi.core.events.projections import lock_workspace
from quanzi.core.groups.service import check_paging, page_count
from quanzi.core.members import repository as mrepo
from quanzi.core.members.models import InviteFlag, Member
from quanzi.core.members.personal import phone_digest
from quanzi.core.workspaces.service import workspace_key
from quanzi.kit.clock import HOUR_US, LocalCalendar, now_us, week_label, week_start
from quanzi.kit.errors import InvalidParameter, NotFound


def find_member(session: Session, workspace_id: int, platform: str, member_key: str) -> Member:
    member = session.scalar(
        select(Member).where(
            Member.workspace_id == workspace_id,
            Member.platform == platform,
            Member.member_key == member_key,
        )
    )
    if member is None:
        raise NotFound(f"no member {member_key!r} on platform {platform!r} in this workspace")
    return member


def mark_staff(
    session: Session, workspace_id: int, platform: str, member_key: str, staff: bool = True
) -> Member:
    """Mark (or unmark) a member as staff; staff is left out of every member figure."""
    lock_workspace(session.connection(), workspace_id)
    member = find_member(session, workspace_id, platform, member_key)
    member.staff_marked = staff
    member.is_staff = staff or member.is_staff_joined
    session.flush()
    return member


def flag_invite_fraud(
    session: Session, workspace_id: int, platform: str, member_key: str, reason: str | None = None
) -> None:
    """Record an operator's confirmed fraud verdict: this invitee's invites are neither valid nor pending."""
    member = find_member(session, workspace_id, platform, member_key)
    exists = session.scalar(
        select(InviteFlag.id).where(
            InviteFlag.workspace_id == workspace_id, InviteFlag.member_id == member.id
        )
    )
    if exists is None:
        session.add(
            InviteFlag(
                workspace_id=workspace_id,
                member_id=member.id,
                reason=reason,
                flagged_at_us=now_us(),
            )
        )
        session.flush()


def unflag_invite_fraud(
    session: Session, workspace_id: int, platform: str, member_key: str
) -> None:
    member = find_member(session, workspace_id, platform, member_key)
    session.execute(
        delete(InviteFlag).where(
            InviteFlag.workspace_id == workspace_id, InviteFlag.member_id == member.id
        )
    )


# --- the console's member pages ------------------------------------------------------------
# Scoping: `group_ids` None is the whole workspace; a set limits an operator to members who
# ever had a membership in one of those groups (others answer NotFound) and to facts in them.

MEMBER_SORTS = ("first_join", "name", "messages_30d", "last_active")
STAFF_CHOICES = ("only", "exclude")
# Counting every match of a filter costs a scan; the list says "10,000+" beyond this.
COUNT_CAP = 10_000
TIMELINE_LIMIT = 200
WEEKS_SHOWN = 26
DEFAULT_HOLD_HOURS = 72


@dataclass(frozen=True)
class MemberFilter:
    """What the member list is filtered by; every given field must hold (AND).

    q: a name substring (case-insensitive), or exactly a member id (platform's) or row id;
    phone: exactly this phone number (searched by its blind index); tag_ids: members having
    ALL these tags; group_id: in this group now; channel: acquisition channel; staff: "only"
    or "exclude"; joined_from / joined_to: first-join local days (inclusive)."""

    q: str | None = None
    phone: str | None = None
    tag_ids: tuple[int, ...] = ()
    group_id: int | None = None
    channel: str | None = None
    staff: str | None = None
    joined_from: int | None = None
    joined_to: int | None = None


def _member_conditions(
    session: Session, ws_id: int, filt: MemberFilter, group_ids: frozenset[int] | None
) -> list[Any]:
    if filt.staff is not None and filt.staff not in STAFF_CHOICES:
        raise InvalidParameter(f"staff must be only or exclude, not {filt.staff!r}")
    if (
        filt.joined_from is not None
        and filt.joined_to is not None
        and filt.joined_from > filt.joined_to
    ):
        raise InvalidParameter("joined_from must not be after joined_to")
    if any(isinstance(t, bool) or not isinstance(t, int) for t in filt.tag_ids):
        raise InvalidParameter(f"tag_ids must be whole numbers, not {filt.tag_ids!r}")
    conds: list[Any] = [Member.workspace_id == ws_id, mrepo.scope_condition(ws_id, group_ids)]
    q = (filt.q or "").strip()
    if len(q) > 200:
        raise InvalidParameter("q must be at most 200 characters")
    if q:
        either = [mrepo.name_matches(q), Member.member_key == q]
        if q.isdigit() and len(q) < 19:
            either.append(Member.id == int(q))
        conds.append(or_(*either))
    if filt.phone is not None and filt.phone.strip():
        digest = phone_digest(workspace_key(session, ws_id), filt.phone)
        if digest is None:
            raise InvalidParameter(f"phone: {filt.phone!r} is not a phone number")
        conds.append(Member.phone_digest == digest)
    for tag_id in sorted(set(filt.tag_ids)):
        conds.append(mrepo.has_tag(ws_id, tag_id))
    if filt.group_id is not None:
        conds.append(mrepo.in_group_now(ws_id, filt.group_id))
    if filt.channel:
        conds.append(Member.channel == filt.channel)
    if filt.staff == "only":
        conds.append(Member.is_staff.is_(True))
    elif filt.staff == "exclude":
        conds.append(Member.is_staff.is_(False))
    if filt.joined_from is not None:
        conds.append(Member.first_join_day >= filt.joined_from)
    if filt.joined_to is not None:
        conds.append(Member.first_join_day <= filt.joined_to)
    return conds


@dataclass(frozen=True, slots=True)
class MemberRow:
    id: int
    key: str
    platform: str
    name: str | None
    is_staff: bool
    channel: str | None
    first_join_us: int | None
    groups_now: int
    messages_30d: int
    last_active_day: int | None
    tags: list[tuple[int, str, str]]  # (tag id, name, color)


@dataclass(frozen=True, slots=True)
class MemberPage:
    """One page of members. `total` is exact unless `total_capped`: then more than
    `total` (= COUNT_CAP) members match and the page says "10,000+"."""

    rows: list[MemberRow]
    total: int
    total_capped: bool
    page: int
    per_page: int
    pages: int


def _rows_for(
    session: Session,
    ws_id: int,
    members: list[Member],
    group_ids: frozenset[int] | None,
    today_day: int,
) -> list[MemberRow]:
    ids = [m.id for m in members]
    if not ids:
        return []
    now = mrepo.groups_now(session, ws_id, ids, group_ids)
    act = mrepo.activity(session, ws_id, ids, today_day - 29, today_day, group_ids)
    tags = mrepo.tags_of(session, ws_id, ids)
    return [
        MemberRow(
            m.id,
            m.member_key,
            m.platform,
            m.name,
            m.is_staff,
            m.channel,
            m.first_join_us,
            now.get(m.id, 0),
            act.get(m.id, (0, 0))[0],
            act[m.id][1] if m.id in act else None,
            tags.get(m.id, []),
        )
        for m in members
    ]


def _order(
    session: Session, ws_id: int, sort: str, desc: bool, group_ids: Any, today: int
) -> list[Any]:
    key: Any = {
        "first_join": Member.first_join_us,
        "name": func.coalesce(Member.name, Member.member_key),
        "messages_30d": mrepo.messages_since(ws_id, today - 29, today, group_ids),
        "last_active": mrepo.last_active(ws_id, group_ids),
    }[sort]
    # Members without a value go last either way, on both stores (SQLite sorts NULL lowest,
    # PostgreSQL highest); spelled out only where needed so SQLite can walk its index.
    nulls_low = session.get_bind().dialect.name == "sqlite"
    ordered = key.desc() if desc else key.asc()
    if desc != nulls_low:
        ordered = ordered.nulls_last()
    return [ordered, Member.id.desc() if desc else Member.id.asc()]


def search_members(
    session: Session,
    ws_id: int,
    filt: MemberFilter,
    *,
    group_ids: frozenset[int] | None,
    page: int = 1,
    per_page: int = 50,
    sort: str = "first_join",
    desc: bool = True,
    today_day: int,
) -> MemberPage:
    """Members matching `filt` (in scope), one page, sorted by first join (default), name,
    messages in the 30 days ending `today_day`, or last day with a message; members without
    the value sort last. Per row: groups now, 30-day messages, last active day (all in
    scope) and tags."""
    if sort not in MEMBER_SORTS:
        raise InvalidParameter(f"sort must be one of {', '.join(MEMBER_SORTS)}, not {sort!r}")
    check_paging(page, per_page)
    conds = _member_conditions(session, ws_id, filt, group_ids)
    order = _order(session, ws_id, sort, desc, group_ids, today_day)
    found = mrepo.page_of_members(session, conds, order, (page - 1) * per_page, per_page)
    counted = mrepo.count_members(session, conds, COUNT_CAP + 1)
    capped = counted > COUNT_CAP
    total = min(counted, COUNT_CAP)
    return MemberPage(
        _rows_for(session, ws_id, found, group_ids, today_day),
        total,
        capped,
        page,
        per_page,
        page_count(total, per_page),
    )


def member_ids_matching(
    session: Session,
    ws_id: int,
    filt: MemberFilter,
    *,
    group_ids: frozenset[int] | None,
    limit: int = 50_000,
) -> list[int]:
    """Ids of the members matching `filt` (in scope), ascending, at most `limit`: for bulk
    operations (tagging, export)."""
    return mrepo.matching_ids(session, _member_conditions(session, ws_id, filt, group_ids), limit)


def export_rows(
    session: Session,
    ws_id: int,
    filt: MemberFilter,
    *,
    group_ids: frozenset[int] | None,
    today_day: int,
) -> Iterator[dict[str, Any]]:
    """The member list's columns for every match (by id), for CSV/Excel. The personal fields
    phone, unionid and real_name are given as stored (sealed): the caller opens or masks them."""
    ids = mrepo.matching_ids(session, _member_conditions(session, ws_id, filt, group_ids), None)
    for i in range(0, len(ids), mrepo.CHUNK):
        members = mrepo.members_by_id(session, ws_id, ids[i : i + mrepo.CHUNK])
        members.sort(key=lambda m: m.id)
        for m, row in zip(
            members, _rows_for(session, ws_id, members, group_ids, today_day), strict=True
        ):
            profile = m.profile or {}
            yield {
                "id": row.id,
                "platform": row.platform,
                "key": row.key,
                "name": row.name,
                "is_staff": row.is_staff,
                "channel": row.channel,
                "first_join_us": row.first_join_us,
                "groups_now": row.groups_now,
                "messages_30d": row.messages_30d,
                "last_active_day": row.last_active_day,
                "tags": [name for _t, name, _c in row.tags],
                "phone": (profile.get("p:phone") or [None])[0],
                "unionid": (profile.get("p:unionid") or [None])[0],
                "real_name": (profile.get("p:name") or [None])[0],
            }


@dataclass(frozen=True, slots=True)
class MembershipInterval:
    joined_at_us: int
    left_at_us: int | None
    ended_by: str | None  # leave | dismissed | None (still in)
    join_via: str | None
    join_channel: str | None
    inviter_id: int | None
    inviter_name: str | None
    leave_via: str | None
    left_by: str | None


@dataclass(frozen=True, slots=True)
class MemberGroup:
    group_id: int
    key: str
    name: str
    current: bool
    intervals: list[MembershipInterval]


@dataclass(frozen=True, slots=True)
class WeekMessages:
    week: str  # ISO week label, 2026-W47
    monday: int
    messages: int


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One fact about the member: kind is join | leave | contact_added | contact_removed |
    order | refund | profile; detail holds the kind's fields (no personal values)."""

    at_us: int
    kind: str
    group_id: int | None
    group_name: str | None
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OrderView:
    id: int
    order_key: str
    amount_fen: int
    currency: str
    paid_at_us: int
    refunded_fen: int


@dataclass(frozen=True, slots=True)
class InvitedBy:
    group_id: int
    group_name: str
    joined_at_us: int
    inviter_id: int
    inviter_key: str | None
    inviter_name: str | None


@dataclass(frozen=True, slots=True)
class MemberProfile:
    id: int
    platform: str
    key: str
    name: str | None
    is_staff: bool
    channel: str | None
    first_join_us: int | None
    first_contact_us: int | None
    first_message_us: int | None
    # As stored: {"p:phone": [sealed value, ts_us, event id], "a:attr": [...], ...}.
    profile: dict[str, list[object]]
    groups: list[MemberGroup]
    weeks: list[WeekMessages]
    timeline: list[TimelineEntry]
    orders: list[OrderView]
    invited_by: list[InvitedBy]
    tags: list[tuple[int, str, str]]


def _member_in_scope(
    session: Session, ws_id: int, member_id: int, group_ids: frozenset[int] | None
) -> Member:
    m = mrepo.member(session, ws_id, member_id)
    if m is None or (group_ids is not None and not mrepo.ever_in(session, ws_id, m.id, group_ids)):
        raise NotFound(f"no member {member_id} in this workspace")
    return m


def _groups_of(rows: list[Any], joins: list[Any], leaves: list[Any]) -> list[MemberGroup]:
    by_join = {(j.group_id, j.ts_us): j for j in joins}
    by_leave = {(lv.group_id, lv.ts_us): lv for lv in leaves}
    out: dict[int, MemberGroup] = {}
    for r in rows:
        j = by_join.get((r.group_id, r.joined_us))
        lv = by_leave.get((r.group_id, r.left_us))
        g = out.setdefault(
            r.group_id, MemberGroup(r.group_id, r.group_key, r.name or r.group_key, False, [])
        )
        g.intervals.append(
            MembershipInterval(
                r.joined_us,
                r.left_us,
                r.ended_by,
                j.via if j else None,
                j.channel if j else None,
                j.inviter_id if j else None,
                (j[8] or j[7]) if j and j.inviter_id else None,
                lv.via if lv else None,
                lv.by_key if lv else None,
            )
        )
    return [
        MemberGroup(g.group_id, g.key, g.name, g.intervals[-1].left_at_us is None, g.intervals)
        for g in out.values()
    ]


def _timeline(
    m: Member, joins: list[Any], leaves: list[Any], contacts: list[Any], orders: list[Any]
) -> list[TimelineEntry]:
    out = [
        TimelineEntry(
            j.ts_us,
            "join",
            j.group_id,
            j.name or j.group_key,
            {"via": j.via, "channel": j.channel, "inviter_id": j.inviter_id},
        )
        for j in joins
    ]
    out += [
        TimelineEntry(
            lv.ts_us,
            "leave",
            lv.group_id,
            lv.name or lv.group_key,
            {"via": lv.via, "by": lv.by_key},
        )
        for lv in leaves
    ]
    out += [
        TimelineEntry(
            c.ts_us,
            f"contact_{c.kind}",
            None,
            None,
            {"staff": c.staff_key, "channel": c.channel, "by": c.by},
        )
        for c in contacts
    ]
    for o, refunds in orders:
        out.append(
            TimelineEntry(
                o.paid_us,
                "order",
                None,
                None,
                {"order": o.order_key, "amount_fen": o.amount_fen, "currency": o.currency},
            )
        )
        out += [
            TimelineEntry(
                r.ts_us, "refund", None, None, {"order": o.order_key, "amount_fen": r.amount_fen}
            )
            for r in refunds
        ]
    for field_name, value in (m.profile or {}).items():
        if len(value) >= 2 and isinstance(value[1], int):
            out.append(TimelineEntry(value[1], "profile", None, None, {"field": field_name}))
    out.sort(key=lambda e: (e.at_us, e.kind), reverse=True)
    return out[:TIMELINE_LIMIT]


def member_profile(
    session: Session,
    ws_id: int,
    cal: LocalCalendar,
    member_id: int,
    *,
    group_ids: frozenset[int] | None,
    today_day: int | None = None,
) -> MemberProfile:
    """One member's page: identity, the stored profile (sealed fields as stored), groups
    with every membership interval, messages per ISO week (26, ending with the week of
    `today_day`, default today, or with the member's last message when that is older), a timeline (newest first, at most 200), orders with
    refunds, who invited them, tags. Scoped: only groups, messages and joins/leaves in scope
    (contacts, orders and profile changes are the member's own and always shown)."""
    m = _member_in_scope(session, ws_id, member_id, group_ids)
    today = cal.today() if today_day is None else today_day
    joins = mrepo.joins_of(session, ws_id, m.id, group_ids)
    leaves = mrepo.leaves_of(session, ws_id, m.id, group_ids)
    groups = _groups_of(mrepo.intervals(session, ws_id, m.id, group_ids), joins, leaves)
    days = [
        (d, n)
        for d, n in mrepo.messages_per_day(session, ws_id, m.id, -(10**6), group_ids)
        if d <= today
    ]
    # A member silent for longer than the chart shows their last active weeks instead of
    # 26 empty ones (the profile's "last message" says how long ago that was).
    last_week = week_start(today)
    if days and max(d for d, _n in days) < last_week - 7 * (WEEKS_SHOWN - 1):
        last_week = week_start(max(d for d, _n in days))
    first_monday = last_week - 7 * (WEEKS_SHOWN - 1)
    per_week: dict[int, int] = {}
    for d, n in days:
        if first_monday <= d < last_week + 7:
            per_week[week_start(d)] = per_week.get(week_start(d), 0) + n
    weeks = [
        WeekMessages(week_label(w), w, per_week.get(w, 0))
        for w in range(first_monday, last_week + 1, 7)
    ]
    orders = mrepo.orders_of(session, ws_id, m.id)
    invited_by = [
        InvitedBy(j.group_id, j.name or j.group_key, j.ts_us, j.inviter_id, j[7], j[8])
        for j in sorted(joins, key=lambda j: j.ts_us)
        if j.inviter_id is not None and j.inviter_id != m.id
    ]
    return MemberProfile(
        id=m.id,
        platform=m.platform,
        key=m.member_key,
        name=m.name,
        is_staff=m.is_staff,
        channel=m.channel,
        first_join_us=m.first_join_us,
        first_contact_us=m.first_contact_us,
        first_message_us=m.first_message_us,
        profile=dict(m.profile or {}),
        groups=groups,
        weeks=weeks,
        timeline=_timeline(m, joins, leaves, mrepo.contacts_of(session, ws_id, m.id), orders),
        orders=[
            OrderView(
                o.id,
                o.order_key,
                o.amount_fen,
                o.currency,
                o.paid_us,
                sum(r.amount_fen for r in refunds),
            )
            for o, refunds in orders
        ],
        invited_by=invited_by,
        tags=mrepo.tags_of(session, ws_id, [m.id]).get(m.id, []),
    )


@dataclass(slots=True)
class InviteNode:
    """Someone the parent invited (their first invited join in scope). `valid`: a new
    member's first join, not fraud-flagged, not left that group within the hold window, and
    the window has passed (the invites report's rule)."""

    member_id: int
    key: str
    name: str | None
    joined_at_us: int
    group_id: int
    group: str
    valid: bool
    children: list[InviteNode]


@dataclass(frozen=True, slots=True)
class InviteTree:
    member_id: int
    children: list[InviteNode]
    nodes: int
    truncated: bool  # the depth or node limit cut it short


def invite_tree(
    session: Session,
    ws_id: int,
    member_id: int,
    *,
    group_ids: frozenset[int] | None,
    depth: int = 3,
    limit: int = 200,
    hold_hours: int = DEFAULT_HOLD_HOURS,
    as_of_us: int | None = None,
) -> InviteTree:
    """Whom the member invited, and whom they invited, down to `depth` levels and at most
    `limit` people. A person appears once (at their first invited join); invites back up
    the tree (cycles) are passed over."""
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 10:
        raise InvalidParameter(f"depth must be a whole number in 1..10, not {depth!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 5000:
        raise InvalidParameter(f"limit must be a whole number in 1..5000, not {limit!r}")
    root = _member_in_scope(session, ws_id, member_id, group_ids)
    hold = hold_hours * HOUR_US
    as_of = now_us() if as_of_us is None else as_of_us
    seen = {root.id}
    children: dict[int, list[InviteNode]] = {root.id: []}
    frontier = [root.id]
    count, truncated = 0, False
    for level in range(depth):
        nxt: list[int] = []
        for part in range(0, len(frontier), mrepo.CHUNK):
            for r in mrepo.invitees(
                session, ws_id, frontier[part : part + mrepo.CHUNK], group_ids, hold
            ):
                if r.member_id in seen:
                    continue
                if count >= limit:
                    truncated = True
                    break
                seen.add(r.member_id)
                valid = bool(r.is_new) and not r.flagged and not r.left and r.ts_us + hold <= as_of
                node = InviteNode(
                    r.member_id,
                    r.member_key,
                    r.name,
                    r.ts_us,
                    r.group_id,
                    r.group_name or r.group_key,
                    valid,
                    [],
                )
                children[r.inviter_id].append(node)
                children[r.member_id] = node.children
                nxt.append(r.member_id)
                count += 1
        if not nxt or truncated:
            break
        if level == depth - 1:
            truncated = any(True for _ in mrepo.invitees(session, ws_id, nxt[:1], group_ids, hold))
        frontier = nxt
    return InviteTree(root.id, children[root.id], count, truncated)
