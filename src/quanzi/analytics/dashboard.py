"""The console's dashboard: KPI cards, a 90-day series and short top lists, from the reports.

Every figure is one of contracts/metrics.md's: the day card is the `overview` report of that
day, the lists come from the `groups`, `invites` and `channels` reports, and the series uses
the same definitions per day in a few grouped queries. `group_ids` scopes everything as
run_report does (docs/contract-readings.md, "Reports scoped to an operator's groups").
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session

from quanzi.analytics import repository as repo
from quanzi.analytics import service
from quanzi.analytics.params import DEFAULT_HOLD_HOURS, DEFAULT_WEEKS, ReportParams, iso
from quanzi.kit.clock import HOUR_US, LocalCalendar, now_us

SERIES_DAYS = 90
TOP_N = 10
KPI_KEYS = (
    "members",
    "new_members",
    "leaves",
    "messages",
    "ugc_share",
    "active_members",
    "revenue_fen",
)


@dataclass(frozen=True)
class Kpi:
    """One figure of a period beside the previous period's: `change` = value − previous,
    `change_pct` = change / previous (rounded to 4 places; None when previous is 0 or None).
    `ugc_share` is a rate (None without messages); the others are integers."""

    key: str
    value: int | float | None
    previous: int | float | None
    change: int | float | None
    change_pct: float | None


@dataclass(frozen=True)
class KpiCard:
    """A period (`day` = one day, `7d` = the 7 days ending on it) and the one before it."""

    period: str
    from_date: str
    to_date: str
    previous_from_date: str
    previous_to_date: str
    kpis: list[Kpi]

    def kpi(self, key: str) -> Kpi:
        return next(k for k in self.kpis if k.key == key)


@dataclass(frozen=True)
class DayPoint:
    """One day of the series; each figure is the `overview` report's for that day, plus
    revenue (metrics.md Money)."""

    date: str
    new_members: int
    leaves: int
    messages: int
    member_messages: int
    staff_messages: int
    active_members: int
    revenue_fen: int


@dataclass(frozen=True)
class GroupActivity:
    """A group's row of the `groups` report at the dashboard's day (7 days ending on it)."""

    group: str
    name: str
    size: int
    messages_7d: int
    active_7d: int
    activity_rate_7d: float
    ugc_share_7d: float | None


@dataclass(frozen=True)
class QuietGroup:
    """A group whose 7-day activity rate fell: now (7 days ending on the day) and before
    (the 7 days before those); `drop` = before − now."""

    group: str
    name: str
    size: int
    activity_rate_7d: float
    previous_activity_rate_7d: float
    drop: float


@dataclass(frozen=True)
class TopMember:
    """A member (not staff) and their messages over the 30 days ending on the day."""

    member_id: int
    platform: str
    member: str
    name: str | None
    messages: int


@dataclass(frozen=True)
class Dashboard:
    date: str
    scoped: bool
    day: KpiCard
    week: KpiCard
    series: list[DayPoint]
    top_groups: list[GroupActivity]
    quiet_groups: list[QuietGroup]
    top_members: list[TopMember]
    # Rows of the `invites` report (last 30 days, by valid) and of the `channels` report (30 days).
    top_inviters: list[dict[str, Any]] = field(default_factory=list)
    channels: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return asdict(self)


def _kpi(key: str, value: int | float | None, previous: int | float | None) -> Kpi:
    if value is None or previous is None:
        return Kpi(key, value, previous, None, None)
    change = value - previous
    if isinstance(change, float):
        change = round(change, 4)
    pct = round((value - previous) / previous, 4) if previous else None
    return Kpi(key, value, previous, change, pct)


def _share(member_messages: int, messages: int) -> float | None:
    return round(member_messages / messages, 4) if messages else None


def _params(day: int, from_day: int) -> ReportParams:
    return ReportParams(
        day=day,
        from_day=from_day,
        to_day=day,
        hold_hours=DEFAULT_HOLD_HOURS,
        as_of_us=now_us(),
        kind="activity",
        weeks=DEFAULT_WEEKS,
    )


def _figures(days: list[DayPoint], members: int, active: int) -> dict[str, int | float | None]:
    """A period's card figures: the days' sums (each day is the `overview` report's), with
    `members` at the period's end and `active` the distinct posters over the period."""
    messages = sum(p.messages for p in days)
    return {
        "members": members,
        "new_members": sum(p.new_members for p in days),
        "leaves": sum(p.leaves for p in days),
        "messages": messages,
        "ugc_share": _share(sum(p.member_messages for p in days), messages),
        "active_members": active,
        "revenue_fen": sum(p.revenue_fen for p in days),
    }


def _card(
    period: str,
    lo: int,
    hi: int,
    prev_lo: int,
    prev_hi: int,
    now: dict[str, int | float | None],
    before: dict[str, int | float | None],
) -> KpiCard:
    return KpiCard(
        period,
        iso(lo),
        iso(hi),
        iso(prev_lo),
        iso(prev_hi),
        [_kpi(k, now[k], before[k]) for k in KPI_KEYS],
    )


def daily_series(
    s: Session,
    ws: int,
    lo: int,
    hi: int,
    *,
    group_ids: frozenset[int] | None = None,
    staff: list[int] | None = None,
) -> list[DayPoint]:
    """Days lo..hi (local day numbers), each with the `overview` figures of that day.
    `staff`: the workspace's staff_ids when already read."""
    staff = repo.staff_ids(s, ws) if staff is None else staff
    joins = repo.new_members_by_day(s, ws, lo, hi, group_ids)
    leaves = repo.leaves_by_day(s, ws, lo, hi, group_ids)
    messages = repo.message_counts(s, ws, lo, hi, group_ids, staff=staff)
    revenue = repo.revenue_by_day(s, ws, lo, hi, group_ids)
    out = []
    for d in range(lo, hi + 1):
        member_msgs, staff_msgs, active = messages.get(d, (0, 0, 0))
        out.append(
            DayPoint(
                iso(d),
                joins.get(d, 0),
                leaves.get(d, 0),
                member_msgs + staff_msgs,
                member_msgs,
                staff_msgs,
                active,
                revenue.get(d, 0),
            )
        )
    return out


def _group_lists(
    s: Session, ws: int, cal: LocalCalendar, day: int, scope: repo.Scope, staff: list[int]
) -> tuple[list[GroupActivity], list[QuietGroup]]:
    """The busiest groups and those going quiet, with the `groups` report's figures (keyed by
    Group.id here, as two platforms may print the same group id)."""
    end = cal.day_start_us(day + 1)
    existing = repo.groups_existing_at(s, ws, end, scope)
    names = repo.group_names_at(s, ws, end, scope)
    messages = repo.group_messages(s, ws, day - 6, day, scope, staff=staff)
    before_end = cal.day_start_us(day - 6)
    existed_before = {int(g.id) for g in repo.groups_existing_at(s, ws, before_end, scope)}
    presence, presence_before = repo.group_size_active_each(
        s, ws, [(end, day), (before_end, day - 7)], scope, staff
    )
    top: list[tuple[tuple[int, str, str], GroupActivity]] = []
    quiet: list[tuple[tuple[float, str, str], QuietGroup]] = []
    for gid, platform, key in existing:
        size, active = presence.get(gid, (0, 0))
        all_msgs, member_msgs = messages.get(gid, (0, 0))
        rate = service.rate(active, size)
        name = names.get(gid, key)
        top.append(
            (
                (-all_msgs, key, platform),
                GroupActivity(
                    key, name, size, all_msgs, active, rate, _share(member_msgs, all_msgs)
                ),
            )
        )
        if gid in existed_before:
            size_b, active_b = presence_before.get(gid, (0, 0))
            rate_b = service.rate(active_b, size_b)
            drop = round(rate_b - rate, 4)
            if drop > 0:
                quiet.append(
                    ((-drop, key, platform), QuietGroup(key, name, size, rate, rate_b, drop))
                )
    top.sort(key=lambda r: r[0])
    quiet.sort(key=lambda r: r[0])
    return [g for _k, g in top[:TOP_N]], [q for _k, q in quiet[:TOP_N]]


# The last dashboards computed in this process, by what their figures depend on (see _key),
# with the instant their invite counts may change (None: never).
_CACHE_SIZE = 16
_cache: OrderedDict[tuple[Any, ...], tuple[Dashboard, int | None]] = OrderedDict()
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget the dashboards computed so far (for measuring the uncached time)."""
    with _cache_lock:
        _cache.clear()


def _key(s: Session, ws: int, scope: repo.Scope, d: int) -> tuple[Any, ...]:
    """Everything a dashboard's figures depend on besides the time: the workspace's data
    version (its latest event, staff marks, fraud flags, time zone), the scope and the day."""
    return (
        repo.data_version(s, ws),
        None if scope is None else tuple(sorted(scope)),
        d,
    )


def _inviters(
    s: Session, ws: int, cal: LocalCalendar, d: int, scope: repo.Scope
) -> tuple[list[dict[str, Any]], int | None]:
    """The `invites` report's first rows over the 30 days ending on d, as of now, and the
    first instant after now when a pending invite among them may turn valid."""
    month = _params(d, d - 29)
    rows = service.invites(s, ws, cal, month, scope)["inviters"][:TOP_N]
    hold = month.hold_hours * HOUR_US
    return rows, repo.next_invite_maturity(s, ws, d - 29, d, hold, month.as_of_us)


def dashboard(
    session: Session,
    ws_id: int,
    cal: LocalCalendar,
    *,
    group_ids: frozenset[int] | None = None,
    day: int | None = None,
) -> Dashboard:
    """The dashboard of local day `day` (default yesterday), limited to `group_ids` if given.

    Answers from a small per-process cache while the workspace's data has not changed: a
    new ingest, staff mark or fraud flag shows at once; the invite counts, which also depend
    on the time (a pending invite turns valid when its hold window ends), are recomputed when
    one may have changed."""
    s, ws, scope = session, ws_id, group_ids
    d = cal.today() - 1 if day is None else day
    staff = repo.staff_ids(s, ws)
    key = _key(s, ws, scope, d)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
    if hit is not None:
        board, expires = hit
        if expires is not None and now_us() >= expires:
            inviters, expires = _inviters(s, ws, cal, d, scope)
            board = replace(board, top_inviters=inviters)
    else:
        board, expires = _compute(s, ws, cal, scope, d, staff)
    with _cache_lock:
        _cache[key] = (board, expires)
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return copy.deepcopy(board)


def _compute(
    s: Session, ws: int, cal: LocalCalendar, scope: repo.Scope, d: int, staff: list[int]
) -> tuple[Dashboard, int | None]:
    lo = d - (SERIES_DAYS - 1)
    series = daily_series(s, ws, lo, d, group_ids=scope, staff=staff)
    points = {lo + i: p for i, p in enumerate(series)}
    # Members at the end of d, d − 1 and d − 7; distinct posters over the two 7-day periods.
    members, members_before, members_week_before = repo.members_at_each(
        s, ws, [cal.day_start_us(d + 1), cal.day_start_us(d), cal.day_start_us(d - 6)], scope, staff
    )
    active_week, active_week_before = repo.active_members_each(
        s, ws, [(d - 6, d), (d - 13, d - 7)], scope, staff
    )
    day_card = _card(
        "day",
        d,
        d,
        d - 1,
        d - 1,
        _figures([points[d]], members, points[d].active_members),
        _figures([points[d - 1]], members_before, points[d - 1].active_members),
    )
    week_card = _card(
        "7d",
        d - 6,
        d,
        d - 13,
        d - 7,
        _figures([points[x] for x in range(d - 6, d + 1)], members, active_week),
        _figures(
            [points[x] for x in range(d - 13, d - 6)], members_week_before, active_week_before
        ),
    )
    top_groups, quiet_groups = _group_lists(s, ws, cal, d, scope, staff)
    inviters, expires = _inviters(s, ws, cal, d, scope)
    month = _params(d, d - 29)
    posters = repo.top_posters(s, ws, d - 29, d, TOP_N, scope, staff=staff)
    board = Dashboard(
        date=iso(d),
        scoped=scope is not None,
        day=day_card,
        week=week_card,
        series=series,
        top_groups=top_groups,
        quiet_groups=quiet_groups,
        top_members=[
            TopMember(p.member_id, p.platform, p.member_key, p.name, p.messages) for p in posters
        ],
        top_inviters=inviters,
        channels=service.channels(s, ws, cal, month, scope)["channels"],
    )
    return board, expires
