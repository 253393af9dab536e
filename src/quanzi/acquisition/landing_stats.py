"""Landing-page figures for the console: views and leads per version, A/B results with
intervals, the funnel view → lead → contact → join, and per-day series.

Definitions (docs/acquisition.md, "Landing pages"):
- a **view** is one row of `landing_visits` (every load of /p/<slug>, not unique visitors);
- a **lead** is one row of `leads` (one per phone per workspace), counted for the page and
  version its first submission came from, on the local day it was created;
- **contact**: the lead is linked to a member (`leads.member_id`) who has added a staff
  member (`members.first_contact_us`, or a `contact.added` in `contact_events`);
- **join**: the lead's member has joined a group (`members.first_join_us`). Contact and join
  are both measured on leads: a visitor can join from the thank-you page's group QR code
  without adding staff, so join is not a subset of contact.

Intervals: the Wilson score interval for one proportion, Newcombe's hybrid score interval
(his method 10, 1998) for a difference of two, both at 95%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.orm import Session

from quanzi.acquisition.models import LandingPage, LandingPageVersion, LandingVisit, Lead
from quanzi.core.members.models import ContactEvent, Member
from quanzi.kit.clock import LocalCalendar
from quanzi.kit.errors import InvalidParameter

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile
Z80_POWER = 0.8416212335729143  # its 80th percentile: 80% power for the sample size
# An A/B verdict is given only once each variant has had this many views.
MIN_VIEWS_PER_VARIANT = 100
MAX_RANGE_DAYS = 3 * 366  # as the reports' longest window


# --- intervals --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def wilson(successes: int, trials: int, z: float = Z95) -> Interval:
    """The Wilson score interval of successes/trials (Newcombe 1998a, method 3); [0, 1] when
    there were no trials."""
    if trials <= 0:
        return Interval(0.0, 1.0)
    if not 0 <= successes <= trials:
        raise InvalidParameter("successes: between 0 and the number of trials")
    p = successes / trials
    z2 = z * z
    denom = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    # At 0 or all successes the bound is exactly 0 or 1; rounding must not push past it.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return Interval(low, high)


def newcombe_difference(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> Interval:
    """The interval of p1 − p2 by Newcombe's hybrid score method (1998b, method 10): each
    proportion's Wilson interval, combined by the square-and-add rule."""
    if n1 <= 0 or n2 <= 0:
        return Interval(-1.0, 1.0)
    p1, p2 = x1 / n1, x2 / n2
    w1, w2 = wilson(x1, n1, z), wilson(x2, n2, z)
    d = p1 - p2
    below = math.sqrt((p1 - w1.low) ** 2 + (w2.high - p2) ** 2)
    above = math.sqrt((w1.high - p1) ** 2 + (p2 - w2.low) ** 2)
    return Interval(max(-1.0, d - below), min(1.0, d + above))


def sample_size_per_variant(p_a: float, p_b: float) -> int | None:
    """Views per variant for a two-sided 5% test to find p_b − p_a with 80% power (the usual
    normal-approximation formula); None when the two are equal (no difference to find)."""
    if p_a == p_b:
        return None
    p_bar = (p_a + p_b) / 2
    top = Z95 * math.sqrt(2 * p_bar * (1 - p_bar)) + Z80_POWER * math.sqrt(
        p_a * (1 - p_a) + p_b * (1 - p_b)
    )
    return math.ceil(top * top / ((p_b - p_a) ** 2))


# --- per version and A/B ------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionFigures:
    version_id: int
    version: int
    variant: str
    published_by: str | None
    published_at_us: int
    live: bool
    views: int
    leads: int

    @property
    def rate(self) -> float | None:
        return self.leads / self.views if self.views else None

    @property
    def interval(self) -> Interval | None:
        return wilson(min(self.leads, self.views), self.views) if self.views else None


def version_figures(session: Session, ws_id: int, page: LandingPage) -> list[VersionFigures]:
    """Every published version of a page, newest first, with its views and leads (all time:
    a version is only seen while it is live)."""
    if page.workspace_id != ws_id:
        raise InvalidParameter("page: not in this workspace")
    views = dict(
        session.execute(
            select(LandingVisit.version_id, func.count())
            .where(LandingVisit.workspace_id == ws_id, LandingVisit.page_id == page.id)
            .group_by(LandingVisit.version_id)
        ).all()
    )
    leads = dict(
        session.execute(
            select(Lead.version_id, func.count())
            .where(Lead.workspace_id == ws_id, Lead.page_id == page.id)
            .group_by(Lead.version_id)
        ).all()
    )
    live = {page.published_version_id, page.published_b_version_id} - {None}
    rows = session.scalars(
        select(LandingPageVersion)
        .where(LandingPageVersion.workspace_id == ws_id, LandingPageVersion.page_id == page.id)
        .order_by(LandingPageVersion.version.desc())
    )
    return [
        VersionFigures(
            v.id,
            v.version,
            v.variant,
            v.published_by,
            v.published_at_us,
            v.id in live,
            int(views.get(v.id, 0)),
            int(leads.get(v.id, 0)),
        )
        for v in rows
    ]


@dataclass(frozen=True)
class ABResult:
    a: VersionFigures
    b: VersionFigures
    difference: float | None  # rate B − rate A
    interval: Interval | None  # of the difference, 95%
    verdict: str  # b_better | a_better | unclear | too_early
    # Views per variant still needed to tell the observed difference from chance (80% power);
    # None when no difference has been seen at all.
    views_needed: int | None


def ab_result(versions: list[VersionFigures]) -> ABResult | None:
    """Variant B's latest version against variant A's latest (the live ones while a test
    runs); None when the page never had a published B."""
    a = next((v for v in versions if v.variant == "A"), None)
    b = next((v for v in versions if v.variant == "B"), None)
    if a is None or b is None:
        return None
    if not a.views or not b.views:
        return ABResult(a, b, None, None, "too_early", MIN_VIEWS_PER_VARIANT)
    xa, xb = min(a.leads, a.views), min(b.leads, b.views)
    pa, pb = xa / a.views, xb / b.views
    interval = newcombe_difference(xb, b.views, xa, a.views)
    needed_total = sample_size_per_variant(pa, pb)
    seen = min(a.views, b.views)
    needed = None if needed_total is None else max(needed_total - seen, 0)
    if seen < MIN_VIEWS_PER_VARIANT:
        verdict = "too_early"
        needed = max(needed or 0, MIN_VIEWS_PER_VARIANT - seen)
    elif interval.low > 0:
        verdict, needed = "b_better", 0
    elif interval.high < 0:
        verdict, needed = "a_better", 0
    else:
        verdict = "unclear"
    return ABResult(a, b, pb - pa, interval, verdict, needed)


# --- funnel -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunnelStep:
    key: str  # view | lead | contact | join
    count: int
    base: str | None  # the step the rate is of: lead of views, contact and join of leads
    rate: float | None


@dataclass(frozen=True)
class ChannelFunnel:
    channel: str | None  # None: visits and leads without a channel (direct)
    steps: list[FunnelStep]


def _check_range(from_day: int, to_day: int) -> None:
    if to_day < from_day:
        raise InvalidParameter("to: the end of the range is before its start")
    if to_day - from_day >= MAX_RANGE_DAYS:
        raise InvalidParameter(f"from: at most {MAX_RANGE_DAYS} days at a time")


def _conditions(
    ws_id: int,
    calendar: LocalCalendar,
    from_day: int,
    to_day: int,
    page_id: int | None,
    channel: str | None,
) -> tuple[list[Any], list[Any]]:
    """The WHERE of visits (by their local day) and of leads (created within the local days)."""
    _check_range(from_day, to_day)
    visit_where: list[Any] = [
        LandingVisit.workspace_id == ws_id,
        LandingVisit.day >= from_day,
        LandingVisit.day <= to_day,
    ]
    lead_where: list[Any] = [
        Lead.workspace_id == ws_id,
        Lead.created_at_us >= calendar.day_start_us(from_day),
        Lead.created_at_us < calendar.day_start_us(to_day + 1),
    ]
    if page_id is not None:
        visit_where.append(LandingVisit.page_id == page_id)
        lead_where.append(Lead.page_id == page_id)
    if channel is not None:
        visit_where.append(LandingVisit.channel == channel)
        lead_where.append(Lead.channel == channel)
    return visit_where, lead_where


def _steps(views: int, leads: int, contacts: int, joins: int) -> list[FunnelStep]:
    def rate(n: int, of: int) -> float | None:
        return n / of if of else None

    return [
        FunnelStep("view", views, None, None),
        FunnelStep("lead", leads, "view", rate(leads, views)),
        FunnelStep("contact", contacts, "lead", rate(contacts, leads)),
        FunnelStep("join", joins, "lead", rate(joins, leads)),
    ]


def _funnel_counts(
    session: Session,
    ws_id: int,
    calendar: LocalCalendar,
    from_day: int,
    to_day: int,
    page_id: int | None,
    channel: str | None,
) -> dict[str | None, tuple[int, int, int, int]]:
    """channel → (views, leads, contacts, joins) over local days from_day..to_day."""
    visit_where, lead_where = _conditions(ws_id, calendar, from_day, to_day, page_id, channel)
    views = dict(
        session.execute(
            select(LandingVisit.channel, func.count())
            .where(*visit_where)
            .group_by(LandingVisit.channel)
        ).all()
    )
    added = exists().where(
        ContactEvent.workspace_id == ws_id,
        ContactEvent.member_id == Lead.member_id,
        ContactEvent.kind == "added",
    )
    contacted = and_(Member.id.is_not(None), or_(Member.first_contact_us.is_not(None), added))
    joined = and_(Member.id.is_not(None), Member.first_join_us.is_not(None))
    lead_rows = session.execute(
        select(
            Lead.channel,
            func.count(Lead.id),
            func.sum(case((contacted, 1), else_=0)),
            func.sum(case((joined, 1), else_=0)),
        )
        .outerjoin(Member, and_(Member.id == Lead.member_id, Member.workspace_id == ws_id))
        .where(*lead_where)
        .group_by(Lead.channel)
    ).all()
    out: dict[str | None, tuple[int, int, int, int]] = {
        ch: (int(n), 0, 0, 0) for ch, n in views.items()
    }
    for ch, leads, contacts, joins in lead_rows:
        out[ch] = (out.get(ch, (0, 0, 0, 0))[0], int(leads), int(contacts or 0), int(joins or 0))
    return out


def funnel(
    session: Session,
    ws_id: int,
    calendar: LocalCalendar,
    from_day: int,
    to_day: int,
    *,
    page_id: int | None = None,
    channel: str | None = None,
) -> list[FunnelStep]:
    """view → lead → contact → join over local days from_day..to_day, for one page (or all of
    the workspace's) and one channel (or all)."""
    counts = _funnel_counts(session, ws_id, calendar, from_day, to_day, page_id, channel)
    totals = [sum(c[i] for c in counts.values()) for i in range(4)]
    return _steps(*totals)


def funnel_by_channel(
    session: Session,
    ws_id: int,
    calendar: LocalCalendar,
    from_day: int,
    to_day: int,
    *,
    page_id: int | None = None,
) -> list[ChannelFunnel]:
    """The funnel per channel (most views first; None is the visits without a channel)."""
    counts = _funnel_counts(session, ws_id, calendar, from_day, to_day, page_id, None)
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0] or ""))
    return [ChannelFunnel(ch, _steps(*c)) for ch, c in ordered]


# --- per day and per page -----------------------------------------------------------------------


def daily(
    session: Session,
    ws_id: int,
    calendar: LocalCalendar,
    from_day: int,
    to_day: int,
    *,
    page_id: int | None = None,
    channel: str | None = None,
) -> list[tuple[int, int, int]]:
    """(local day, views, leads) for every day of the range, zeros included."""
    visit_where, lead_where = _conditions(ws_id, calendar, from_day, to_day, page_id, channel)
    views = dict(
        session.execute(
            select(LandingVisit.day, func.count()).where(*visit_where).group_by(LandingVisit.day)
        ).all()
    )
    leads: dict[int, int] = {}
    for (at,) in session.execute(select(Lead.created_at_us).where(*lead_where)):
        day = calendar.day_of(at)
        leads[day] = leads.get(day, 0) + 1
    return [(d, int(views.get(d, 0)), leads.get(d, 0)) for d in range(from_day, to_day + 1)]


def page_totals(session: Session, ws_id: int) -> dict[int, tuple[int, int]]:
    """page id → (views, leads), all time."""
    views = session.execute(
        select(LandingVisit.page_id, func.count())
        .where(LandingVisit.workspace_id == ws_id)
        .group_by(LandingVisit.page_id)
    ).all()
    leads = dict(
        session.execute(
            select(Lead.page_id, func.count())
            .where(Lead.workspace_id == ws_id, Lead.page_id.is_not(None))
            .group_by(Lead.page_id)
        ).all()
    )
    out = {int(pid): (int(n), int(leads.get(pid, 0))) for pid, n in views}
    for pid, n in leads.items():
        if pid is not None and pid not in out:
            out[int(pid)] = (0, int(n))
    return out


def channels_seen(session: Session, ws_id: int, page_id: int | None = None) -> list[str]:
    """The channels a page's (or the workspace's) visits and leads came with, for filters."""
    visits = select(LandingVisit.channel).where(
        LandingVisit.workspace_id == ws_id, LandingVisit.channel.is_not(None)
    )
    leads = select(Lead.channel).where(Lead.workspace_id == ws_id, Lead.channel.is_not(None))
    if page_id is not None:
        visits = visits.where(LandingVisit.page_id == page_id)
        leads = leads.where(Lead.page_id == page_id)
    found = set(session.scalars(visits.distinct())) | set(session.scalars(leads.distinct()))
    return sorted(c for c in found if c)


@dataclass(frozen=True)
class PageRow:
    id: int
    name: str
    slug: str
    live_version: int | None  # variant A's live version number; None: not published
    live_b_version: int | None
    versions: int  # published versions, both variants
    split_b: int
    has_b_draft: bool
    views: int
    leads: int

    @property
    def status(self) -> str:
        """published | offline (was published, taken down) | draft (never published)."""
        if self.live_version is not None:
            return "published"
        return "offline" if self.versions else "draft"

    @property
    def rate(self) -> float | None:
        return self.leads / self.views if self.views else None


def pages_overview(session: Session, ws_id: int) -> list[PageRow]:
    """The workspace's landing pages, newest first, with their status and all-time figures."""
    numbers = dict(
        session.execute(
            select(LandingPageVersion.id, LandingPageVersion.version).where(
                LandingPageVersion.workspace_id == ws_id
            )
        ).all()
    )
    counts = dict(
        session.execute(
            select(LandingPageVersion.page_id, func.count())
            .where(LandingPageVersion.workspace_id == ws_id)
            .group_by(LandingPageVersion.page_id)
        ).all()
    )
    totals = page_totals(session, ws_id)
    pages = session.scalars(
        select(LandingPage).where(LandingPage.workspace_id == ws_id).order_by(LandingPage.id.desc())
    )
    return [
        PageRow(
            pg.id,
            pg.name,
            pg.slug,
            numbers.get(pg.published_version_id) if pg.published_version_id else None,
            numbers.get(pg.published_b_version_id) if pg.published_b_version_id else None,
            int(counts.get(pg.id, 0)),
            pg.split_b,
            pg.draft_b is not None,
            *totals.get(pg.id, (0, 0)),
        )
        for pg in pages
    ]
