"""Groups for the operator console: the list, one group's page, its members, the dashboard's picks.

Every figure over 7 days is the `groups` report's (contracts/metrics.md) for the same day:
staff left out of sizes, joins, leaves and active members; `messages_7d` counts everyone.
`group_ids` scopes an operator to their groups (None: the whole workspace); a group outside
the scope answers NotFound, like one that does not exist.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from quanzi.analytics import repository as reports
from quanzi.core.groups import repository as repo
from quanzi.core.groups.models import Group
from quanzi.core.members.models import Join, Leave
from quanzi.kit.clock import DAY_US, LocalCalendar
from quanzi.kit.datacache import DataCache
from quanzi.kit.errors import InvalidParameter, NotFound

GROUP_SORTS = (
    "size",
    "name",
    "joins_7d",
    "leaves_7d",
    "activity_rate_7d",
    "ugc_share_7d",
    "silent",
    "messages_7d",
)
GROUP_STATUSES = ("active", "dismissed", "all")
MAX_PER_PAGE = 500
# Above this many groups in scope, the workspace-wide report queries are cheaper than
# per-group lookups.
_FEW_GROUPS = 40


def check_paging(page: int, per_page: int) -> None:
    """Pages count from 1; a page holds 1..MAX_PER_PAGE rows."""
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise InvalidParameter(f"page must be a whole number ≥ 1, not {page!r}")
    if (
        isinstance(per_page, bool)
        or not isinstance(per_page, int)
        or not 1 <= per_page <= MAX_PER_PAGE
    ):
        raise InvalidParameter(
            f"per_page must be a whole number in 1..{MAX_PER_PAGE}, not {per_page!r}"
        )


def page_count(total: int, per_page: int) -> int:
    return max(1, -(-total // per_page))


def _choice(name: str, value: str, allowed: Collection[str]) -> str:
    if value not in allowed:
        raise InvalidParameter(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _rate(num: int, den: int) -> float:
    return round(num / den, 4) if den else 0.0


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True, slots=True)
class GroupRow:
    """One line of the groups list: the `groups` report's figures for the chosen day."""

    id: int
    key: str
    platform: str
    name: str
    size: int
    joins_7d: int
    leaves_7d: int
    messages_7d: int
    active_7d: int
    activity_rate_7d: float
    ugc_share_7d: float | None
    silent: int
    dismissed: bool


@dataclass(frozen=True, slots=True)
class GroupPage:
    rows: list[GroupRow]
    total: int
    page: int
    per_page: int
    pages: int


@dataclass(frozen=True, slots=True)
class WeekFigures:
    """A group's 7 days ending on `day` (size and silent at that day's end)."""

    day: int
    size: int
    joins_7d: int
    leaves_7d: int
    messages_7d: int
    member_messages_7d: int
    active_7d: int
    activity_rate_7d: float
    ugc_share_7d: float | None
    silent: int


@dataclass(frozen=True, slots=True)
class DayPoint:
    """One local day of a group: joins and leaves of members (events), messages of members
    and of staff, members who posted, and the size at the day's end."""

    day: int
    joins: int
    leaves: int
    member_messages: int
    staff_messages: int
    active: int
    size: int


@dataclass(frozen=True, slots=True)
class TopPoster:
    member_id: int
    key: str
    name: str | None
    messages_30d: int


@dataclass(frozen=True, slots=True)
class GroupChangeView:
    at_us: int
    field: str  # name | notice | owner
    value: str


@dataclass(frozen=True, slots=True)
class HealthReason:
    """One fact behind a health verdict. `code` says which; `value` is this week's figure,
    `previous` last week's (or the comparison base), `threshold` the rule's bound, and
    `triggered` whether this fact decided the verdict."""

    code: str
    value: float | int | None
    previous: float | int | None = None
    threshold: float | int | None = None
    triggered: bool = False


@dataclass(frozen=True, slots=True)
class Health:
    code: str  # healthy | quiet | declining | dormant | new | dismissed
    reasons: list[HealthReason]


@dataclass(frozen=True, slots=True)
class GroupDetail:
    id: int
    key: str
    platform: str
    name: str
    notice: str | None
    owner: str | None
    created_at_us: int | None
    dismissed_at_us: int | None
    day: int
    size: int
    week: WeekFigures
    previous_week: WeekFigures
    series: list[DayPoint]
    top_posters: list[TopPoster]
    messages_30d: int
    staff_messages_30d: int
    staff_message_share_30d: float | None
    silent: int
    changes: list[GroupChangeView]
    health: Health


@dataclass(frozen=True, slots=True)
class GroupMemberRow:
    member_id: int
    key: str
    name: str | None
    is_staff: bool
    joined_at_us: int
    messages_30d: int
    last_message_day: int | None


@dataclass(frozen=True, slots=True)
class GroupMembersPage:
    rows: list[GroupMemberRow]
    total: int
    page: int
    per_page: int
    pages: int


@dataclass(frozen=True, slots=True)
class GroupTrend:
    """A group's activity rate this week (7 days ending `day`) against the 7 days before."""

    id: int
    key: str
    platform: str
    name: str
    size: int
    messages_7d: int
    activity_rate_7d: float
    activity_rate_prev_7d: float
    change: float = field(default=0.0)


# --- the list --------------------------------------------------------------------------------


_FIGURES: DataCache[dict[int, GroupRow]] = DataCache(32)


def _figures(
    s: Session, ws: int, cal: LocalCalendar, day: int, gids: Collection[int]
) -> dict[int, GroupRow]:
    """The report's figures for `day` of the given groups, keyed by group id (rows without
    names or identity filled: the caller has the Group). Kept while the workspace's data
    is unchanged, so sorting and paging the list do not recompute it."""
    key = (reports.data_version(s, ws), day, tuple(sorted(gids)))
    return dict(_FIGURES.get_or_compute(key, lambda: _compute_figures(s, ws, cal, day, gids)))


def clear_figures() -> None:
    """Forget the kept figures (to measure the uncached list)."""
    _FIGURES.clear()


def _compute_figures(
    s: Session, ws: int, cal: LocalCalendar, day: int, gids: Collection[int]
) -> dict[int, GroupRow]:
    end = cal.day_start_us(day + 1)
    joins = reports.group_counts(s, ws, Join, day - 6, day)
    leaves = reports.group_counts(s, ws, Leave, day - 6, day)
    messages = reports.group_messages(s, ws, day - 6, day)
    if len(gids) > _FEW_GROUPS:
        pres = reports.group_presence(s, ws, end, day)
    else:
        pres = repo.presence(s, ws, gids, end, day, repo.staff_member_ids(s, ws)) if gids else {}
    out: dict[int, GroupRow] = {}
    for g in gids:
        size, active, silent = pres.get(g, (0, 0, 0))
        all_msgs, member_msgs = messages.get(g, (0, 0))
        out[g] = GroupRow(
            g,
            "",
            "",
            "",
            size,
            joins.get(g, 0),
            leaves.get(g, 0),
            all_msgs,
            active,
            _rate(active, size),
            _share(member_msgs, all_msgs),
            silent,
            False,
        )
    return out


def _rows(s: Session, ws: int, cal: LocalCalendar, day: int, found: list[Group]) -> list[GroupRow]:
    end = cal.day_start_us(day + 1)
    figures = _figures(s, ws, cal, day, [g.id for g in found])
    rows = []
    for g in found:
        f = figures[g.id]
        dismissed = g.dismissed_at_us is not None and g.dismissed_at_us < end
        rows.append(
            GroupRow(
                g.id,
                g.group_key,
                g.platform,
                g.name or g.group_key,
                f.size,
                f.joins_7d,
                f.leaves_7d,
                f.messages_7d,
                f.active_7d,
                f.activity_rate_7d,
                f.ugc_share_7d,
                f.silent,
                dismissed,
            )
        )
    return rows


def _sort_key(sort: str) -> Any:
    if sort == "name":
        return lambda r: (r.name, r.key, r.id)
    if sort == "ugc_share_7d":
        return lambda r: (-1.0 if r.ugc_share_7d is None else r.ugc_share_7d, r.key, r.id)
    return lambda r: (getattr(r, sort), r.key, r.id)


def list_groups(
    session: Session,
    ws_id: int,
    cal: LocalCalendar,
    *,
    group_ids: frozenset[int] | None,
    day: int,
    q: str | None = None,
    status: str = "active",
    sort: str = "size",
    desc: bool = True,
    page: int = 1,
    per_page: int = 50,
) -> GroupPage:
    """The groups (in scope) with the `groups` report's figures for `day`, filtered by `q`
    (name or group id, case-insensitive substring) and status, sorted and paginated.
    "active": groups that exist and are not dismissed at the end of `day` (the report's
    rows); "dismissed": dismissed by then; "all": every group seen."""
    _choice("status", status, GROUP_STATUSES)
    _choice("sort", sort, GROUP_SORTS)
    check_paging(page, per_page)
    end = cal.day_start_us(day + 1)
    found = repo.groups(
        session, ws_id, group_ids=group_ids, status=status, end_us=end, q=(q or "").strip()
    )
    rows = _rows(session, ws_id, cal, day, found)
    rows.sort(key=_sort_key(sort), reverse=desc)
    lo = (page - 1) * per_page
    return GroupPage(
        rows[lo : lo + per_page], len(rows), page, per_page, page_count(len(rows), per_page)
    )


def _trends(
    session: Session, ws_id: int, cal: LocalCalendar, group_ids: frozenset[int] | None, day: int
) -> list[GroupTrend]:
    end = cal.day_start_us(day + 1)
    found = repo.groups(session, ws_id, group_ids=group_ids, status="active", end_us=end)
    now = _figures(session, ws_id, cal, day, [g.id for g in found])
    before = _figures(session, ws_id, cal, day - 7, [g.id for g in found])
    out = []
    for g in found:
        a, b = now[g.id], before[g.id]
        out.append(
            GroupTrend(
                g.id,
                g.group_key,
                g.platform,
                g.name or g.group_key,
                a.size,
                a.messages_7d,
                a.activity_rate_7d,
                b.activity_rate_7d,
                round(a.activity_rate_7d - b.activity_rate_7d, 4),
            )
        )
    return out


def quiet_groups(
    session: Session,
    ws_id: int,
    cal: LocalCalendar,
    *,
    group_ids: frozenset[int] | None,
    day: int,
    limit: int = 10,
) -> list[GroupTrend]:
    """Active groups whose activity rate fell from the previous 7 days to the 7 days ending
    `day`, the largest fall first."""
    trends = [t for t in _trends(session, ws_id, cal, group_ids, day) if t.change < 0]
    trends.sort(key=lambda t: (t.change, t.key, t.id))
    return trends[:limit]


def top_groups(
    session: Session,
    ws_id: int,
    cal: LocalCalendar,
    *,
    group_ids: frozenset[int] | None,
    day: int,
    limit: int = 10,
) -> list[GroupTrend]:
    """Active groups with the most messages over the 7 days ending `day`."""
    trends = _trends(session, ws_id, cal, group_ids, day)
    trends.sort(key=lambda t: (-t.messages_7d, t.key, t.id))
    return trends[:limit]


# --- one group -------------------------------------------------------------------------------


def _group_in_scope(
    session: Session, ws_id: int, group_id: int, group_ids: frozenset[int] | None
) -> Group:
    g = repo.group(session, ws_id, group_id)
    if g is None or (group_ids is not None and group_id not in group_ids):
        raise NotFound(f"no group {group_id} in this workspace")
    return g


def _sizes(
    intervals: list[tuple[int, int, int | None]], staff: set[int], ends: list[int]
) -> list[int]:
    """Members (not staff) at each instant of `ends` (ascending)."""
    diff = [0] * (len(ends) + 1)
    for m, joined, left in intervals:
        if m in staff:
            continue
        first = bisect_right(ends, joined)  # first end after the join
        last = len(ends) if left is None else bisect_right(ends, left)  # ends ≤ left
        if first < last:
            diff[first] += 1
            diff[last] -= 1
    out, run = [], 0
    for i in range(len(ends)):
        run += diff[i]
        out.append(run)
    return out


HEALTH_NEW_DAYS = 14
HEALTH_DORMANT_DAYS = 14
HEALTH_FALL = 0.3  # activity rate down by ≥ 30 % of last week's …
HEALTH_FALL_MIN = 0.02  # … and by ≥ 2 points
HEALTH_NET_LOSS = 0.05  # lost ≥ 5 % of last week's size (leaves − joins) …
HEALTH_NET_LOSS_MIN = 3  # … and ≥ 3 members
HEALTH_QUIET_RATE = 0.05
HEALTH_QUIET_UGC = 0.5


def health(
    g: Group, end_us: int, week: WeekFigures, prev: WeekFigures, member_messages_14d: int
) -> Health:
    """The verdict on a group at the end of `week.day`, first rule that holds:

    - dismissed: dismissed by then;
    - new: created less than 14 days before (too young to compare weeks);
    - dormant: no member (non-staff) message in the last 14 days;
    - declining: the activity rate fell by ≥ 30 % of last week's and by ≥ 2 points, or the
      group lost (leaves − joins over 7 days) ≥ 5 % of last week's size and ≥ 3 members;
    - quiet: fewer than 5 % of members posted this week, or members wrote under half of the
      messages (UGC share < 0.5: staff do the talking);
    - healthy otherwise.

    `reasons` always carries the facts (age, activity rate vs last week, net growth, UGC
    share, 14-day member messages), each marked `triggered` when it decided the verdict.
    """
    age_days = None if g.created_at_us is None else (end_us - g.created_at_us) // DAY_US
    rate, prev_rate = week.activity_rate_7d, prev.activity_rate_7d
    net = week.joins_7d - week.leaves_7d
    fell = (
        prev_rate > 0
        and rate <= prev_rate * (1 - HEALTH_FALL)
        and prev_rate - rate >= HEALTH_FALL_MIN
    )
    lost = prev.size > 0 and -net >= HEALTH_NET_LOSS * prev.size and -net >= HEALTH_NET_LOSS_MIN
    low_rate = rate < HEALTH_QUIET_RATE
    low_ugc = week.ugc_share_7d is not None and week.ugc_share_7d < HEALTH_QUIET_UGC
    dismissed = g.dismissed_at_us is not None and g.dismissed_at_us < end_us
    young = age_days is None or age_days < HEALTH_NEW_DAYS
    dormant = member_messages_14d == 0
    if dismissed:
        code = "dismissed"
    elif young:
        code = "new"
    elif dormant:
        code = "dormant"
    elif fell or lost:
        code = "declining"
    elif low_rate or low_ugc:
        code = "quiet"
    else:
        code = "healthy"
    reasons = [
        HealthReason("age_days", age_days, None, HEALTH_NEW_DAYS, code == "new"),
        HealthReason("member_messages_14d", member_messages_14d, None, 0, code == "dormant"),
        HealthReason(
            "activity_rate_7d", rate, prev_rate, HEALTH_FALL, code == "declining" and fell
        ),
        HealthReason(
            "net_growth_7d", net, prev.size, HEALTH_NET_LOSS, code == "declining" and lost
        ),
        HealthReason(
            "low_activity_rate_7d", rate, None, HEALTH_QUIET_RATE, code == "quiet" and low_rate
        ),
        HealthReason(
            "ugc_share_7d",
            week.ugc_share_7d,
            prev.ugc_share_7d,
            HEALTH_QUIET_UGC,
            code == "quiet" and low_ugc,
        ),
    ]
    if dismissed:
        reasons.insert(0, HealthReason("dismissed", g.dismissed_at_us, None, None, True))
    return Health(code, reasons)


def group_detail(
    session: Session,
    ws_id: int,
    cal: LocalCalendar,
    group_id: int,
    *,
    group_ids: frozenset[int] | None,
    day: int,
    days: int = 90,
) -> GroupDetail:
    """One group's page for `day`: identity, this and last week's figures (the report's),
    a daily series over `days` days ending `day`, top posters and staff share over 30 days,
    the history of name/notice/owner, and the health verdict."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 366:
        raise InvalidParameter(f"days must be a whole number in 1..366, not {days!r}")
    g = _group_in_scope(session, ws_id, group_id, group_ids)
    staff = repo.staff_member_ids(session, ws_id)
    lo = day - days + 1
    span_lo = min(lo, day - 29)  # the 30-day figures and last week's need this far back
    n = day - span_lo + 1
    joins, leaves = [0] * n, [0] * n
    member_msgs, staff_msgs, active = [0] * n, [0] * n, [0] * n
    for d, m in repo.events_per_day(session, ws_id, "joins", group_id, span_lo, day):
        if m not in staff:
            joins[d - span_lo] += 1
    for d, m in repo.events_per_day(session, ws_id, "leaves", group_id, span_lo, day):
        if m not in staff:
            leaves[d - span_lo] += 1
    per_member: dict[int, int] = {}
    for d, m, count in repo.activity_of_group(session, ws_id, group_id, span_lo, day):
        i = d - span_lo
        if m in staff:
            staff_msgs[i] += count
        else:
            member_msgs[i] += count
            active[i] += 1
            if d >= day - 29:
                per_member[m] = per_member.get(m, 0) + count
    ends = [cal.day_start_us(d + 1) for d in range(span_lo, day + 1)]
    sizes = _sizes(repo.intervals_of_group(session, ws_id, group_id), staff, ends)

    def window(lo_d: int, hi_d: int, arr: list[int]) -> int:
        return sum(arr[lo_d - span_lo : hi_d - span_lo + 1])

    def week(d: int) -> WeekFigures:
        end = cal.day_start_us(d + 1)
        size, act, silent = repo.presence(session, ws_id, [group_id], end, d, staff)[group_id]
        mm = window(d - 6, d, member_msgs)
        allm = mm + window(d - 6, d, staff_msgs)
        return WeekFigures(
            d,
            size,
            window(d - 6, d, joins),
            window(d - 6, d, leaves),
            allm,
            mm,
            act,
            _rate(act, size),
            _share(mm, allm),
            silent,
        )

    this_week, prev_week = week(day), week(day - 7)
    series = [
        DayPoint(
            d,
            joins[d - span_lo],
            leaves[d - span_lo],
            member_msgs[d - span_lo],
            staff_msgs[d - span_lo],
            active[d - span_lo],
            sizes[d - span_lo],
        )
        for d in range(lo, day + 1)
    ]
    top = sorted(per_member.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    names = repo.member_names(session, ws_id, [m for m, _n in top])
    posters = [
        TopPoster(m, names.get(m, ("", None))[0], names.get(m, ("", None))[1], c) for m, c in top
    ]
    msgs30 = window(day - 29, day, member_msgs)
    staff30 = window(day - 29, day, staff_msgs)
    end = cal.day_start_us(day + 1)
    return GroupDetail(
        id=g.id,
        key=g.group_key,
        platform=g.platform,
        name=g.name or g.group_key,
        notice=g.notice,
        owner=g.owner,
        created_at_us=g.created_at_us,
        dismissed_at_us=g.dismissed_at_us,
        day=day,
        size=this_week.size,
        week=this_week,
        previous_week=prev_week,
        series=series,
        top_posters=posters,
        messages_30d=msgs30 + staff30,
        staff_messages_30d=staff30,
        staff_message_share_30d=_share(staff30, msgs30 + staff30),
        silent=this_week.silent,
        changes=[
            GroupChangeView(c.ts_us, c.field, c.value)
            for c in repo.changes(session, ws_id, group_id)
        ],
        health=health(g, end, this_week, prev_week, window(day - 13, day, member_msgs)),
    )


GROUP_MEMBER_SORTS = tuple(repo.GROUP_MEMBER_SORTS)


def group_members(
    session: Session,
    ws_id: int,
    group_id: int,
    *,
    group_ids: frozenset[int] | None,
    day: int,
    page: int = 1,
    per_page: int = 50,
    sort: str = "joined",
    desc: bool = True,
) -> GroupMembersPage:
    """The group's current members (staff included, marked), one page; sort by "joined",
    "name", "messages_30d" (in this group, 30 days ending `day`) or "last_message"."""
    _choice("sort", sort, GROUP_MEMBER_SORTS)
    check_paging(page, per_page)
    _group_in_scope(session, ws_id, group_id, group_ids)
    total, found = repo.current_members(
        session,
        ws_id,
        group_id,
        day=day,
        sort=sort,
        desc=desc,
        offset=(page - 1) * per_page,
        limit=per_page,
    )
    rows = [
        GroupMemberRow(
            int(r.id),
            r.member_key,
            r.name,
            bool(r.is_staff),
            int(r.joined_us),
            int(r.messages_30d or 0),
            None if r.last_day is None else int(r.last_day),
        )
        for r in found
    ]
    return GroupMembersPage(rows, total, page, per_page, page_count(total, per_page))
