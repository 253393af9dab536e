"""What a campaign returned: participants, invites, depth, K-factor, cost, acquired and activated
members, their retention beside the other new members, attributed orders and ROI.

Every figure is defined in docs/campaign-metrics.md; they reuse the definitions of
contracts/metrics.md (valid invites, activation, money) scoped to the campaign.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, astuple, dataclass
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.orm import Session

from quanzi.acquisition.channels import get_code
from quanzi.analytics.repository import InviteFact, invite_facts
from quanzi.campaigns.models import Campaign, Participant, RewardClaim
from quanzi.campaigns.service import get_campaign
from quanzi.commerce.models import Order, Refund
from quanzi.core.members.models import DailyActivity, Member, Membership
from quanzi.core.workspaces.models import Workspace
from quanzi.kit.clock import DAY_US, HOUR_US, LocalCalendar, now_us
from quanzi.kit.errors import NotFound

DEFAULT_HOLD_HOURS = 72
CHUNK = 500


def rate(num: int, den: int) -> float:
    """num / den rounded to 4 places, 0.0 over an empty denominator (metrics.md)."""
    return round(num / den, 4) if den else 0.0


def hold_hours(c: Campaign) -> int:
    raw = (c.rules or {}).get("hold_hours")
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0 else 72


def counted_groups(c: Campaign) -> frozenset[int] | None:
    """The groups whose joins count (rules `group_ids`); None = every group."""
    ids = (c.rules or {}).get("group_ids") or []
    return frozenset(int(g) for g in ids) or None


def calendar(s: Session, ws_id: int) -> LocalCalendar:
    tz = s.scalar(select(Workspace.timezone).where(Workspace.id == ws_id))
    return LocalCalendar(tz or "Asia/Shanghai")


def participant_members(s: Session, c: Campaign) -> Any:
    """A subquery: the member ids of the campaign's participants."""
    return select(Participant.member_id).where(
        Participant.campaign_id == c.id, Participant.member_id.is_not(None)
    )


def invites_between(
    s: Session,
    ws_id: int,
    lo_us: int,
    hi_us: int,
    hold_us: int,
    scope: frozenset[int] | None,
    cal: LocalCalendar,
) -> list[InviteFact]:
    """The invites report's raw invites (contracts/metrics.md) whose join is in [lo_us, hi_us)
    and, with a scope, into one of its groups ("new" then means first join within it)."""
    if hi_us <= lo_us:
        return []
    facts = invite_facts(s, ws_id, cal.day_of(lo_us), cal.day_of(hi_us - 1), hold_us, scope)
    return [f for f in facts if lo_us <= f.joined_us < hi_us]


def campaign_invites(s: Session, c: Campaign, cal: LocalCalendar) -> list[InviteFact]:
    """Raw invites made by the participants' members in the window, into the counted groups."""
    inviters = {int(m) for (m,) in s.execute(participant_members(s, c))}
    if not inviters:
        return []
    facts = invites_between(
        s,
        c.workspace_id,
        c.starts_at_us,
        c.ends_at_us,
        hold_hours(c) * HOUR_US,
        counted_groups(c),
        cal,
    )
    return [f for f in facts if f.inviter_id in inviters]


@dataclass(frozen=True, slots=True)
class Cohort:
    """Members and how they stayed: activated (a message within 7 × 24 h of first join), in at
    least one group at first join + 7 × 24 h and + 30 × 24 h, over those for whom that instant
    is at or before `as_of` (`base_7d`, `base_30d`)."""

    members: int
    activated: int
    base_7d: int
    retained_7d: int
    base_30d: int
    retained_30d: int

    @property
    def activation_rate(self) -> float:
        return rate(self.activated, self.members)

    @property
    def retention_7d(self) -> float:
        return rate(self.retained_7d, self.base_7d)

    @property
    def retention_30d(self) -> float:
        return rate(self.retained_30d, self.base_30d)

    def plus(self, other: Cohort, sign: int = 1) -> Cohort:
        a, b = astuple(self), astuple(other)
        return Cohort(*(x + sign * y for x, y in zip(a, b, strict=True)))

    def minus(self, other: Cohort) -> Cohort:
        return self.plus(other, -1)

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "activation_rate": self.activation_rate,
            "retention_7d": self.retention_7d,
            "retention_30d": self.retention_30d,
        }


@dataclass(frozen=True, slots=True)
class CampaignMetrics:
    """A campaign's dashboard figures (docs/campaign-metrics.md). Money in fen."""

    campaign_id: int
    key: str
    as_of_us: int
    hold_hours: int
    participants: int
    invites_raw: int
    invites_new: int
    invites_valid: int
    invites_pending: int
    converted: int  # valid invitees who became participants themselves
    invites_per_participant: float
    conversion: float
    k_factor: float
    generations: int
    cycle_time_hours: float | None
    acquired: int
    activated: int
    reward_cost_fen: int
    campaign_cost_fen: int
    cost_per_acquired_fen: int | None
    cost_per_activated_fen: int | None
    campaign_cohort: Cohort
    other_cohort: Cohort
    orders: int
    revenue_fen: int
    roi: float | None

    @property
    def total_cost_fen(self) -> int:
        return self.reward_cost_fen + self.campaign_cost_fen

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["campaign_cohort"] = self.campaign_cohort.as_dict()
        out["other_cohort"] = self.other_cohort.as_dict()
        out["total_cost_fen"] = self.total_cost_fen
        return out


def _parents(
    people: list[tuple[int, int | None, int | None, int]], facts: list[InviteFact]
) -> dict[int, int]:
    """Each participant's parent: their `referrer_id`, else the participant whose member made
    the earliest campaign invite of their member that is not fraud-flagged."""
    by_member = {m: pid for pid, m, _r, _t in people if m is not None}
    invited_by: dict[int, tuple[int, int]] = {}
    for f in facts:
        if f.flagged or f.inviter_id not in by_member:
            continue
        seen = invited_by.get(f.invitee_id)
        if seen is None or f.joined_us < seen[0]:
            invited_by[f.invitee_id] = (f.joined_us, by_member[f.inviter_id])
    ids = {pid for pid, _m, _r, _t in people}
    out: dict[int, int] = {}
    for pid, member, referrer, _t in people:
        if referrer is not None and referrer in ids and referrer != pid:
            out[pid] = referrer
        elif member is not None and member in invited_by and invited_by[member][1] != pid:
            out[pid] = invited_by[member][1]
    return out


def generations(parents: dict[int, int], ids: list[int]) -> dict[int, int]:
    """Generation of each participant: 1 without a parent, else the parent's + 1. A loop of
    parents (possible only with inconsistent data) is cut where it closes."""
    gen: dict[int, int] = {}
    for start in ids:
        path: list[int] = []
        on_path: set[int] = set()
        node: int | None = start
        while node is not None and node not in gen and node not in on_path:
            path.append(node)
            on_path.add(node)
            node = parents.get(node)
        base = gen[node] if node is not None and node in gen else 0
        for n in reversed(path):
            base += 1
            gen[n] = base
    return gen


def _cohort(s: Session, ws_id: int, where: list[Any], as_of_us: int) -> Cohort:
    """Cohort figures over the members (not staff) with a first join matching `where`."""
    fj = Member.first_join_us
    da, ms = DailyActivity, Membership

    def in_group_at(after_us: int) -> Any:
        at = fj + after_us
        return exists().where(
            ms.workspace_id == ws_id,
            ms.member_id == Member.id,
            ms.joined_us < at,
            or_(ms.left_us.is_(None), ms.left_us >= at),
        )

    activated = exists().where(
        da.workspace_id == ws_id,
        da.member_id == Member.id,
        da.last_us >= fj,
        da.first_us <= fj + 7 * DAY_US,
    )

    def n(cond: Any) -> Any:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    due7 = fj + 7 * DAY_US <= as_of_us
    due30 = fj + 30 * DAY_US <= as_of_us
    q = select(
        func.count(),
        n(activated),
        n(due7),
        n(and_(due7, in_group_at(7 * DAY_US))),
        n(due30),
        n(and_(due30, in_group_at(30 * DAY_US))),
    ).where(
        Member.workspace_id == ws_id,
        Member.is_staff.is_(False),
        fj.is_not(None),
        *where,
    )
    row = s.execute(q).one()
    return Cohort(*(int(v or 0) for v in row))


def _cohort_of(s: Session, ws_id: int, ids: list[int], as_of_us: int) -> Cohort:
    total = Cohort(0, 0, 0, 0, 0, 0)
    for i in range(0, len(ids), CHUNK):
        part = _cohort(s, ws_id, [Member.id.in_(ids[i : i + CHUNK])], as_of_us)
        total = total.plus(part)
    return total


def _attributed_orders(s: Session, c: Campaign) -> tuple[int, int]:
    """(orders, net revenue in fen) attributed to the campaign: orders whose `campaign` is the
    campaign's key, or paid in its window with a participant's member as `referrer`; each order
    once, its refunds (whenever made) netted, fully refunded orders left out."""
    ws = c.workspace_id
    refunded = (
        select(Refund.platform, Refund.order_key, func.sum(Refund.amount_fen).label("total"))
        .where(Refund.workspace_id == ws)
        .group_by(Refund.platform, Refund.order_key)
        .subquery("refunded")
    )
    total = func.coalesce(refunded.c.total, 0)
    q = (
        select(func.count(), func.coalesce(func.sum(Order.amount_fen - total), 0))
        .select_from(Order)
        .outerjoin(
            refunded,
            and_(refunded.c.platform == Order.platform, refunded.c.order_key == Order.order_key),
        )
        .where(
            Order.workspace_id == ws,
            or_(
                Order.campaign == c.key,
                and_(
                    Order.referrer_id.in_(participant_members(s, c)),
                    Order.paid_us >= c.starts_at_us,
                    Order.paid_us < c.ends_at_us,
                ),
            ),
            total < Order.amount_fen,
        )
    )
    n, fen = s.execute(q).one()
    return int(n or 0), int(fen or 0)


def campaign_cost_fen(s: Session, c: Campaign) -> int:
    """Cost besides rewards: the cost of the campaign's channel code, when it has one."""
    if c.channel_code_id is None:
        return 0
    try:
        return int(get_code(s, c.workspace_id, c.channel_code_id).cost_fen or 0)
    except NotFound:
        return 0


def reward_cost_fen(s: Session, c: Campaign) -> int:
    q = select(func.coalesce(func.sum(RewardClaim.cost_fen), 0)).where(
        RewardClaim.workspace_id == c.workspace_id,
        RewardClaim.campaign_id == c.id,
        RewardClaim.status != "revoked",
    )
    return int(s.scalar(q) or 0)


def acquired_members(
    s: Session, ws_id: int, facts: list[InviteFact], as_of_us: int, hold_us: int
) -> list[int]:
    """Invitees of valid invites whose first join in the workspace is that invite's join."""
    valid = {f.invitee_id: f.joined_us for f in facts if f.valid(hold_us, as_of_us)}
    ids = sorted(valid)
    out: list[int] = []
    for i in range(0, len(ids), CHUNK):
        q = select(Member.id, Member.first_join_us).where(
            Member.workspace_id == ws_id, Member.id.in_(ids[i : i + CHUNK])
        )
        out.extend(int(m) for m, fj in s.execute(q) if fj == valid[int(m)])
    return sorted(out)


def _per(cost: int, n: int) -> int | None:
    return cost // n if n else None


def campaign_metrics(
    session: Session, ws_id: int, campaign_id: int, as_of_us: int | None = None
) -> CampaignMetrics:
    """The campaign's figures as of `as_of_us` (default now), which decides only whether hold
    windows and the 7- and 30-day retention windows have passed (contracts/metrics.md)."""
    s = session
    c = get_campaign(s, ws_id, campaign_id)
    as_of = now_us() if as_of_us is None else as_of_us
    cal = calendar(s, ws_id)
    hold = hold_hours(c) * HOUR_US
    facts = campaign_invites(s, c, cal)
    people = [
        (int(pid), None if m is None else int(m), None if r is None else int(r), int(t))
        for pid, m, r, t in s.execute(
            select(
                Participant.id,
                Participant.member_id,
                Participant.referrer_id,
                Participant.joined_at_us,
            ).where(Participant.workspace_id == ws_id, Participant.campaign_id == c.id)
        )
    ]
    participant_of = {m: pid for pid, m, _r, _t in people if m is not None}
    joined_at = {pid: t for pid, _m, _r, t in people}

    valid = [f for f in facts if f.valid(hold, as_of)]
    pending = [f for f in facts if f.pending(hold, as_of)]
    converted = len({f.invitee_id for f in valid if f.invitee_id in participant_of})

    parents = _parents(people, facts)
    gen = generations(parents, [pid for pid, _m, _r, _t in people])
    spans = [max(0, joined_at[child] - joined_at[p]) for child, p in parents.items()]
    cycle = round(statistics.median(spans) / HOUR_US, 2) if spans else None

    acquired = acquired_members(s, ws_id, facts, as_of, hold)
    ours = _cohort_of(s, ws_id, acquired, as_of)
    window = _cohort(
        s,
        ws_id,
        [Member.first_join_us >= c.starts_at_us, Member.first_join_us < c.ends_at_us],
        as_of,
    )
    rewards = reward_cost_fen(s, c)
    other = campaign_cost_fen(s, c)
    cost = rewards + other
    orders, revenue = _attributed_orders(s, c)
    n = len(people)
    return CampaignMetrics(
        campaign_id=c.id,
        key=c.key,
        as_of_us=as_of,
        hold_hours=hold_hours(c),
        participants=n,
        invites_raw=len(facts),
        invites_new=sum(1 for f in facts if f.is_new),
        invites_valid=len(valid),
        invites_pending=len(pending),
        converted=converted,
        invites_per_participant=rate(len(valid), n),
        conversion=rate(converted, len(valid)),
        k_factor=rate(converted, n),
        generations=max(gen.values(), default=0),
        cycle_time_hours=cycle,
        acquired=ours.members,
        activated=ours.activated,
        reward_cost_fen=rewards,
        campaign_cost_fen=other,
        cost_per_acquired_fen=_per(cost, ours.members),
        cost_per_activated_fen=_per(cost, ours.activated),
        campaign_cohort=ours,
        other_cohort=window.minus(ours),
        orders=orders,
        revenue_fen=revenue,
        roi=round((revenue - cost) / cost, 4) if cost else None,
    )
