"""The reports of contracts/metrics.md; one implementation for CLI, API and console.

Each report answers exactly the contract's JSON shape, from projections only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from quanzi.analytics import repository as repo
from quanzi.analytics.params import ReportParams, iso, parse_params
from quanzi.analytics.repository import Scope
from quanzi.core.members.models import Join, Leave
from quanzi.core.workspaces.models import Workspace
from quanzi.kit.clock import HOUR_US, LocalCalendar, week_label, week_start
from quanzi.kit.errors import NotFound

NONE_CHANNEL = repo.NONE_CHANNEL

REPORT_NAMES = ("overview", "groups", "invites", "retention", "lifecycle", "funnel", "channels")


def rate(num: int, den: int) -> float:
    """num / den rounded to 4 places (metrics.md), 0.0 over an empty denominator."""
    return round(num / den, 4) if den else 0.0


def run_report(
    session: Session,
    workspace: Workspace,
    name: str,
    raw_params: dict[str, Any],
    group_ids: frozenset[int] | None = None,
) -> dict[str, Any]:
    """Answer report `name` with parameters given as strings (date, from, to, hold_hours, as_of,
    kind, weeks; absent or None = default). Raises InvalidParameter with a clear message.

    `group_ids` (Group.id values) answers as if the workspace held only those groups (an
    operator's assigned groups; docs/contract-readings.md); None = the whole workspace."""
    fn = _REPORTS.get(name)
    if fn is None:
        raise NotFound(f"unknown report {name!r} (reports: {', '.join(REPORT_NAMES)})")
    cal = LocalCalendar(workspace.timezone)
    params = parse_params(raw_params, cal)
    return fn(session, workspace.id, cal, params, group_ids)


def overview(
    s: Session, ws: int, cal: LocalCalendar, p: ReportParams, scope: Scope = None
) -> dict[str, Any]:
    d = p.day
    end = cal.day_start_us(d + 1)
    member_msgs, staff_msgs, active = repo.messages_on(s, ws, d, scope)
    return {
        "date": iso(d),
        "members": repo.members_at(s, ws, end, scope),
        "new_members": repo.new_members_on(s, ws, d, scope),
        "leaves": repo.leaves_on(s, ws, d, scope),
        "messages": member_msgs + staff_msgs,
        "member_messages": member_msgs,
        "staff_messages": staff_msgs,
        "active_members": active,
        "groups": len(repo.groups_existing_at(s, ws, end, scope)),
    }


def groups(
    s: Session, ws: int, cal: LocalCalendar, p: ReportParams, scope: Scope = None
) -> dict[str, Any]:
    d = p.day
    end = cal.day_start_us(d + 1)
    existing = repo.groups_existing_at(s, ws, end, scope)
    names = repo.group_names_at(s, ws, end, scope)
    joins = repo.group_counts(s, ws, Join, d - 6, d, scope)
    leaves = repo.group_counts(s, ws, Leave, d - 6, d, scope)
    messages = repo.group_messages(s, ws, d - 6, d, scope)
    presence = repo.group_presence(s, ws, end, d, scope)
    rows = []
    for gid, _platform, key in sorted(existing, key=lambda r: (r.group_key, r.platform)):
        size, active, silent = presence.get(gid, (0, 0, 0))
        all_msgs, member_msgs = messages.get(gid, (0, 0))
        rows.append(
            {
                "group": key,
                "name": names.get(gid, key),
                "size": size,
                "joins_7d": joins.get(gid, 0),
                "leaves_7d": leaves.get(gid, 0),
                "messages_7d": all_msgs,
                "active_7d": active,
                "activity_rate_7d": rate(active, size),
                "ugc_share_7d": round(member_msgs / all_msgs, 4) if all_msgs else None,
                "silent": silent,
            }
        )
    return {"date": iso(d), "groups": rows}


def invites(
    s: Session, ws: int, cal: LocalCalendar, p: ReportParams, scope: Scope = None
) -> dict[str, Any]:
    hold = p.hold_hours * HOUR_US
    per: dict[tuple[str, str], list[int]] = {}
    for f in repo.invite_facts(s, ws, p.from_day, p.to_day, hold, scope):
        c = per.setdefault((f.inviter_key, f.inviter_platform), [0, 0, 0, 0])
        c[0] += 1
        if f.is_new:
            c[1] += 1
            if f.valid(hold, p.as_of_us):
                c[2] += 1
            elif f.pending(hold, p.as_of_us):
                c[3] += 1
    ordered = sorted(per.items(), key=lambda kv: (-kv[1][2], kv[0][0], kv[0][1]))
    return {
        "inviters": [
            {"inviter": key, "raw": c[0], "new": c[1], "valid": c[2], "pending": c[3]}
            for (key, _platform), c in ordered
        ]
    }


def _cohort_bounds(p: ReportParams) -> tuple[int, int]:
    """First-join days of the cohorts whose week (Monday) starts in from..to."""
    first_monday = week_start(p.from_day)
    if first_monday < p.from_day:
        first_monday += 7
    return first_monday, week_start(p.to_day) + 6


def retention(
    s: Session, ws: int, cal: LocalCalendar, p: ReportParams, scope: Scope = None
) -> dict[str, Any]:
    lo, hi = _cohort_bounds(p)
    if lo > hi:
        return {"kind": p.kind, "cohorts": []}
    sizes = repo.cohorts(s, ws, lo, hi, scope)
    # Week k of a cohort is reported only when it is complete: its end is at or before as_of.
    complete: dict[int, int] = {}
    for cw in sizes:
        k = 0
        while k < p.weeks and cal.day_start_us(cw + 7 * (k + 1)) <= p.as_of_us:
            k += 1
        complete[cw] = k
    if p.kind == "activity":
        last_day = max((cw + 7 * complete[cw] - 1 for cw in sizes), default=lo)
        counts = repo.activity_retention(s, ws, lo, hi, last_day, scope)
        retained = {
            cw: [counts.get((cw, cw + 7 * k), 0) for k in range(complete[cw])] for cw in sizes
        }
    else:
        ends = [
            (cw, k, cal.day_start_us(cw + 7 * (k + 1))) for cw in sizes for k in range(complete[cw])
        ]
        counts = repo.membership_retention(s, ws, lo, hi, ends, scope)
        retained = {cw: [counts.get((cw, k), 0) for k in range(complete[cw])] for cw in sizes}
    return {
        "kind": p.kind,
        "cohorts": [
            {"week": week_label(cw), "size": sizes[cw], "retained": retained[cw]}
            for cw in sorted(sizes)
        ],
    }


def lifecycle(
    s: Session, ws: int, cal: LocalCalendar, p: ReportParams, scope: Scope = None
) -> dict[str, Any]:
    first_week = week_start(p.from_day)
    last_week = week_start(p.to_day)
    active, both, new = repo.lifecycle_counts(s, ws, first_week, last_week, scope)
    weeks = []
    for wk in range(first_week, last_week + 1, 7):
        returning = both.get(wk, 0)
        # Active this week and not the previous: new if it is their first message, else
        # resurrecting (they were active in some earlier week).
        fresh = new.get(wk, 0)
        weeks.append(
            {
                "week": week_label(wk),
                "new": fresh,
                "returning": returning,
                "resurrecting": active.get(wk, 0) - returning - fresh,
                "dormant": active.get(wk - 7, 0) - returning,
            }
        )
    return {"weeks": weeks}


def _acquisition(
    s: Session, ws: int, p: ReportParams, by_channel: bool, scope: Scope
) -> dict[str, list[int]]:
    """The funnel over acquired members, summed per channel (or all under ""): [acquired,
    activated, retained, revenue members, referral members, 30-day net revenue in fen]."""
    out: dict[str, list[int]] = {}

    def row(channel: str | None) -> list[int]:
        key = (channel or NONE_CHANNEL) if by_channel else ""
        return out.setdefault(key, [0, 0, 0, 0, 0, 0])

    for ch, (n, act, ret) in repo.acquired_by_channel(s, ws, p.from_day, p.to_day, scope).items():
        c = row(ch)
        c[0] += n
        c[1] += act
        c[2] += ret
    for ch, (n, fen) in repo.revenue_by_channel(s, ws, p.from_day, p.to_day, scope).items():
        c = row(ch)
        c[3] += n
        c[5] += fen
    hold = p.hold_hours * HOUR_US
    for ch, n in repo.referrers_by_channel(
        s, ws, p.from_day, p.to_day, hold, p.as_of_us, scope
    ).items():
        row(ch)[4] += n
    return out


def funnel(
    s: Session, ws: int, cal: LocalCalendar, p: ReportParams, scope: Scope = None
) -> dict[str, Any]:
    c = _acquisition(s, ws, p, False, scope).get("", [0] * 6)
    return {
        "acquired": c[0],
        "activated": c[1],
        "retained": c[2],
        "revenue": c[3],
        "referral": c[4],
    }


def channels(
    s: Session, ws: int, cal: LocalCalendar, p: ReportParams, scope: Scope = None
) -> dict[str, Any]:
    per = _acquisition(s, ws, p, True, scope)
    ordered = sorted(per.items(), key=lambda kv: (-kv[1][0], kv[0]))
    return {
        "channels": [
            {
                "channel": ch,
                "acquired": c[0],
                "activated": c[1],
                "revenue_members": c[3],
                "revenue": c[5],
            }
            for ch, c in ordered
        ]
    }


_REPORTS = {
    "overview": overview,
    "groups": groups,
    "invites": invites,
    "retention": retention,
    "lifecycle": lifecycle,
    "funnel": funnel,
    "channels": channels,
}
