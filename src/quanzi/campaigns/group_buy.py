"""拼团 (group buying): a team of `size` pays the group price within `limit_hours`, or everyone
in it is refunded.

- `open_team`: anyone opens a team, or, with `leader_only`, only a participant the organiser
  marked as a leader (`mark_leader`; the mark is an entry of the action log).
- `pay`: takes a seat at the group price. One conditional UPDATE (`filled < size`, open, before
  the deadline) takes it, so a team never has more seats than its size, however many pay at
  the same moment; the seat that fills the team completes it.
- `expire_due_teams` (the periodic job): a team past its deadline (or of a cancelled campaign)
  is marked expired and every seat refunded (`refunded_at_us`), in one transaction.

Orders the engine causes go to the event log as `order.paid` / `order.refunded` events. Their
source of truth is the action log (a `team_pay`, `bargain_pay` or `refund` action per order),
written in the same transaction as the seat; after the commit a job logs the events
(`log_orders`), and the periodic sweep logs any that a crash left out (`log_missing_orders`).
Event ids come from the action's idempotency key, so an order is in the log exactly once,
however often either runs.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quanzi.campaigns import service
from quanzi.campaigns.models import Campaign, CampaignAction, CampaignTeam, Participant, TeamSeat
from quanzi.core.events.models import EventRecord
from quanzi.core.events.service import ingest_lines
from quanzi.core.members.models import Member
from quanzi.db.engine import session_scope
from quanzi.kit import clock
from quanzi.kit.errors import InvalidParameter, NotFound

log = logging.getLogger(__name__)

# The platform and member id of an order paid by a participant who is not (yet) a known member:
# the campaign page is where they paid, and the participant is who paid.
PAGE_PLATFORM = "campaign"
ORDER_KINDS = ("team_pay", "bargain_pay", "refund")
MAX_ORDER_KEY = 255
EXPIRE_BATCH = 200
# How far back the sweep looks for orders whose events a crash left out of the log.
ORDER_LOOKBACK_US = 7 * clock.DAY_US


class TeamClosed(service.CampaignClosed):
    """The team takes no more seats: complete, expired, or past its deadline."""


class TeamFull(TeamClosed):
    """Every seat of the team is paid."""


# The kinds built here: their name on the page and the section of the rules holding their settings.
KINDS = {
    "group_buy": ("拼团", "team"),
    "bargain": ("砍价", "bargain"),
    "gift_coupon": ("送券", "gift"),
    "lottery": ("抽奖", "lottery"),
}


def kind_settings(campaign: Campaign, kind: str) -> dict[str, Any]:
    """The campaign's settings of `kind` (its rules section); InvalidParameter for another kind."""
    label, section = KINDS[kind]
    if campaign.kind != kind:
        raise InvalidParameter(f"campaign: {campaign.key} is not a {label} ({kind}) campaign")
    settings: dict[str, Any] = campaign.rules[section]
    return settings


def require_open(campaign: Campaign, now: int) -> None:
    """CampaignClosed unless the campaign is live and `now` is inside its window."""
    if not service.is_open(campaign, now):
        raise service.CampaignClosed(f"campaign: {campaign.key} is not open now")


def _mine(campaign: Campaign, participant: Participant) -> None:
    if participant.campaign_id != campaign.id:
        raise InvalidParameter(f"participant: {participant.id} is not in this campaign")


def get_team(session: Session, campaign: Campaign, team_id: int) -> CampaignTeam:
    team = session.get(CampaignTeam, team_id)
    if team is None or team.campaign_id != campaign.id:
        raise NotFound(f"team {team_id} is not in this campaign")
    return team


# --- leaders ---------------------------------------------------------------------------------


def _leader_key(participant_id: int) -> str:
    return f"leader:{participant_id}"


def mark_leader(
    session: Session, campaign: Campaign, participant: Participant, by: str | None
) -> bool:
    """Let a participant open teams of a `leader_only` campaign (团长); False if already one."""
    kind_settings(campaign, "group_buy")
    _mine(campaign, participant)
    done = service.record_action(
        session, campaign, participant, "leader", _leader_key(participant.id), detail={"by": by}
    )
    return done is not None


def is_leader(session: Session, campaign: Campaign, participant: Participant) -> bool:
    return (
        session.scalar(
            select(CampaignAction.id).where(
                CampaignAction.campaign_id == campaign.id,
                CampaignAction.idem_key == _leader_key(participant.id),
            )
        )
        is not None
    )


# --- teams -----------------------------------------------------------------------------------


def open_team(
    session: Session, campaign: Campaign, leader: Participant, *, now_us: int | None = None
) -> CampaignTeam:
    """Open a team led by `leader` (their open team, if they already lead one). Its deadline is
    `limit_hours` from now, or the campaign's end if that comes first."""
    settings = kind_settings(campaign, "group_buy")
    now = clock.now_us() if now_us is None else now_us
    require_open(campaign, now)
    _mine(campaign, leader)
    if settings["leader_only"] and not is_leader(session, campaign, leader):
        raise service.NotEligible("team: only leaders chosen by the organiser can open a team")
    current = session.scalar(
        select(CampaignTeam).where(
            CampaignTeam.campaign_id == campaign.id,
            CampaignTeam.leader_id == leader.id,
            CampaignTeam.status == "open",
            CampaignTeam.deadline_us > now,
        )
    )
    if current is not None:
        return current
    team = CampaignTeam(
        workspace_id=campaign.workspace_id,
        campaign_id=campaign.id,
        leader_id=leader.id,
        size=settings["size"],
        filled=0,
        price_fen=settings["group_price_fen"],
        status="open",
        opened_at_us=now,
        deadline_us=min(now + settings["limit_hours"] * clock.HOUR_US, campaign.ends_at_us),
        closed_at_us=None,
    )
    session.add(team)
    session.flush()
    service.record_action(
        session, campaign, leader, "team_open", f"team:open:{team.id}",
        detail={"team": team.id}, now_us=now,
    )  # fmt: skip
    return team


def _check_seat_free(team: CampaignTeam, now: int) -> None:
    if team.filled >= team.size:
        raise TeamFull(f"team: team {team.id} is full")
    if team.status != "open":
        raise TeamClosed(f"team: team {team.id} is {team.status}")
    if team.deadline_us <= now:
        raise TeamClosed(f"team: team {team.id} is past its deadline")


def seat_of(session: Session, team: CampaignTeam, participant: Participant) -> TeamSeat | None:
    return session.scalar(
        select(TeamSeat).where(
            TeamSeat.team_id == team.id, TeamSeat.participant_id == participant.id
        )
    )


def join_team(
    session: Session,
    campaign: Campaign,
    team: CampaignTeam,
    participant: Participant,
    *,
    now_us: int | None = None,
) -> int:
    """Someone opens the team's link and means to join: checks a seat can still be had and
    records it; returns the price to pay (fen). The seat itself is taken by `pay`."""
    kind_settings(campaign, "group_buy")
    now = clock.now_us() if now_us is None else now_us
    require_open(campaign, now)
    _mine(campaign, participant)
    if team.campaign_id != campaign.id:
        raise NotFound(f"team {team.id} is not in this campaign")
    if seat_of(session, team, participant) is None:
        _check_seat_free(team, now)
        service.record_action(
            session, campaign, participant, "team_join", f"team:join:{team.id}:{participant.id}",
            other_id=team.leader_id, detail={"team": team.id}, now_us=now,
        )  # fmt: skip
    return team.price_fen


def check_order_key(order_key: str) -> str:
    key = (order_key or "").strip() if isinstance(order_key, str) else ""
    if not key or len(key) > MAX_ORDER_KEY or any(ch.isspace() or ord(ch) < 32 for ch in key):
        raise InvalidParameter(f"order_key: give 1-{MAX_ORDER_KEY} characters without spaces")
    return key


def _order_used(session: Session, campaign: Campaign, order_key: str) -> bool:
    """Whether an order of this campaign's engine already carries `order_key`."""
    return (
        session.scalar(
            select(TeamSeat.id)
            .join(CampaignTeam, CampaignTeam.id == TeamSeat.team_id)
            .where(CampaignTeam.campaign_id == campaign.id, TeamSeat.order_key == order_key)
            .limit(1)
        )
        is not None
    )


def pay(
    session: Session,
    campaign: Campaign,
    team: CampaignTeam,
    participant: Participant,
    order_key: str,
    amount_fen: int,
    *,
    now_us: int | None = None,
) -> TeamSeat:
    """A seat paid at the group price by the order `order_key` (the same call again returns the
    same seat). The seat that fills the team completes it. Raises TeamFull / TeamClosed."""
    kind_settings(campaign, "group_buy")
    now = clock.now_us() if now_us is None else now_us
    _mine(campaign, participant)
    if team.campaign_id != campaign.id:
        raise NotFound(f"team {team.id} is not in this campaign")
    key = check_order_key(order_key)
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int):
        raise InvalidParameter("amount_fen: give a whole number of fen")
    if amount_fen != team.price_fen:
        raise InvalidParameter(
            f"amount_fen: the group price is {team.price_fen} fen, not {amount_fen}"
        )
    existing = seat_of(session, team, participant)
    if existing is not None:
        if existing.order_key == key:
            return existing
        raise InvalidParameter(
            f"participant: {participant.id} already has a seat in team {team.id}"
        )
    if campaign.status != "live":
        raise service.CampaignClosed(f"campaign: {campaign.key} is {campaign.status}")
    if _order_used(session, campaign, key):
        raise InvalidParameter(f"order_key: {key!r} already paid another seat")
    try:
        with session.begin_nested():
            taken = session.execute(
                update(CampaignTeam)
                .where(
                    CampaignTeam.id == team.id,
                    CampaignTeam.status == "open",
                    CampaignTeam.filled < CampaignTeam.size,
                    CampaignTeam.deadline_us > now,
                )
                .values(filled=CampaignTeam.filled + 1)
                .execution_options(synchronize_session=False)
            )
            if getattr(taken, "rowcount", 0) != 1:
                session.refresh(team)
                _check_seat_free(team, now)
                raise TeamClosed(f"team: team {team.id} takes no more seats")
            seat = TeamSeat(
                team_id=team.id,
                participant_id=participant.id,
                order_key=key,
                paid_fen=amount_fen,
                paid_at_us=now,
                refunded_at_us=None,
            )
            session.add(seat)
            session.flush()
    except IntegrityError:
        # The same participant paying twice at the same moment; the first seat stands.
        again = seat_of(session, team, participant)
        if again is not None and again.order_key == key:
            return again
        raise InvalidParameter(
            f"participant: {participant.id} already has a seat in team {team.id}"
        ) from None
    session.execute(
        update(CampaignTeam)
        .where(
            CampaignTeam.id == team.id,
            CampaignTeam.status == "open",
            CampaignTeam.filled >= CampaignTeam.size,
        )
        .values(status="complete", closed_at_us=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(team)
    action = service.record_action(
        session, campaign, participant, "team_pay", f"team:pay:{team.id}:{participant.id}",
        other_id=team.leader_id, amount_fen=amount_fen,
        detail={"team": team.id, "order": key}, now_us=now,
    )  # fmt: skip
    if team.status == "complete":
        leader = session.get(Participant, team.leader_id)
        if leader is not None:
            service.record_action(
                session, campaign, leader, "team_done", f"team:done:{team.id}",
                detail={"team": team.id}, now_us=now,
            )  # fmt: skip
    if action is not None:
        log_orders_after_commit(session, [action.id])
    return seat


def seats(session: Session, team: CampaignTeam) -> list[TeamSeat]:
    return list(
        session.scalars(select(TeamSeat).where(TeamSeat.team_id == team.id).order_by(TeamSeat.id))
    )


def _expire(session: Session, campaign: Campaign, team: CampaignTeam, now: int) -> list[int]:
    """Expire one team and refund its seats; the refund actions' ids (none if it was not ours
    to expire: completed or expired by a concurrent run)."""
    done = session.execute(
        update(CampaignTeam)
        .where(CampaignTeam.id == team.id, CampaignTeam.status == "open")
        .values(status="expired", closed_at_us=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(done, "rowcount", 0) != 1:
        return []
    refunds: list[int] = []
    for seat in seats(session, team):
        if seat.refunded_at_us is not None:
            continue
        seat.refunded_at_us = now
        payer = session.get(Participant, seat.participant_id)
        if payer is None:
            continue
        action = service.record_action(
            session, campaign, payer, "refund", f"team:refund:{team.id}:{payer.id}",
            other_id=team.leader_id, amount_fen=seat.paid_fen,
            detail={"team": team.id, "order": seat.order_key}, now_us=now,
        )  # fmt: skip
        if action is not None:
            refunds.append(action.id)
    session.flush()
    session.refresh(team)
    return refunds


@dataclass(frozen=True)
class Expired:
    """What one expiry pass did: the teams it looked at, and the refund actions it recorded."""

    teams: int
    refunds: list[int]


def expire_due_teams(
    session: Session, *, now_us: int | None = None, limit: int = EXPIRE_BATCH
) -> Expired:
    """Expire up to `limit` open teams past their deadline, or of cancelled campaigns, refunding
    every seat. The caller logs the refunds' events (`log_orders`) once this has committed."""
    now = clock.now_us() if now_us is None else now_us
    due = session.execute(
        select(CampaignTeam, Campaign)
        .join(Campaign, Campaign.id == CampaignTeam.campaign_id)
        .where(
            CampaignTeam.status == "open",
            or_(CampaignTeam.deadline_us <= now, Campaign.status == "cancelled"),
        )
        .order_by(CampaignTeam.deadline_us, CampaignTeam.id)
        .limit(limit)
    ).all()
    refunds: list[int] = []
    for team, campaign in due:
        refunds.extend(_expire(session, campaign, team, now))
    return Expired(len(due), refunds)


# --- orders in the event log -----------------------------------------------------------------


def order_event_id(action: CampaignAction) -> str:
    """The event id of an order action: the same every time, so it is logged once."""
    return f"campaign:{action.campaign_id}:{action.idem_key}"


def _buyer(session: Session, participant: Participant | None) -> tuple[str, str]:
    if participant is not None and participant.member_id is not None:
        member = session.get(Member, participant.member_id)
        if member is not None:
            return member.platform, member.member_key
    return PAGE_PLATFORM, f"p{participant.id if participant is not None else 0}"


def order_line(session: Session, campaign: Campaign, action: CampaignAction) -> str:
    """The order.paid / order.refunded event of an order action, as a JSON line."""
    if action.kind not in ORDER_KINDS:
        raise ValueError(f"action {action.id} ({action.kind}) is not an order")
    payer = session.get(Participant, action.participant_id)
    platform, member = _buyer(session, payer)
    detail = action.detail or {}
    ev: dict[str, Any] = {
        "id": order_event_id(action),
        "ts": clock.from_us(action.at_us).isoformat(),
        "platform": platform,
        "order": detail["order"],
        "amount": action.amount_fen or 0,
    }
    if action.kind == "refund":
        ev["type"] = "order.refunded"
    else:
        ev["type"] = "order.paid"
        ev["member"] = member
        ev["campaign"] = campaign.key
        referrer = (
            session.get(Participant, payer.referrer_id) if payer and payer.referrer_id else None
        )
        if referrer is not None:
            ref_platform, ref_member = _buyer(session, referrer)
            if ref_platform == platform:
                ev["referrer"] = ref_member
    return orjson.dumps(ev).decode()


def log_orders_after_commit(session: Session, action_ids: Sequence[int]) -> None:
    """Queue the logging of these order actions' events for when the transaction commits."""
    from quanzi.campaigns.jobs_kinds import log_campaign_orders
    from quanzi.jobs import enqueue_after_commit

    enqueue_after_commit(session, log_campaign_orders, list(action_ids))


def _lines(session: Session, actions: Iterable[CampaignAction]) -> dict[int, list[str]]:
    by_ws: dict[int, list[str]] = defaultdict(list)
    campaigns: dict[int, Campaign | None] = {}
    for action in actions:
        if action.campaign_id not in campaigns:
            campaigns[action.campaign_id] = session.get(Campaign, action.campaign_id)
        campaign = campaigns[action.campaign_id]
        if campaign is not None and action.kind in ORDER_KINDS:
            by_ws[campaign.workspace_id].append(order_line(session, campaign, action))
    return by_ws


def _ingest(engine: Engine, by_ws: dict[int, list[str]]) -> int:
    applied = 0
    for ws_id, lines in by_ws.items():
        report = ingest_lines(engine, ws_id, lines)
        for n, reason in report.refused:
            log.error("workspace %s: campaign order event refused: line %s: %s", ws_id, n, reason)
        applied += report.applied
    return applied


def log_orders(engine: Engine, action_ids: Sequence[int]) -> int:
    """Log the events of these order actions (those already logged are duplicates: no effect);
    returns how many were new."""
    with session_scope(engine, read_only=True) as session:
        actions = session.scalars(
            select(CampaignAction).where(CampaignAction.id.in_(list(action_ids)))
        ).all()
        by_ws = _lines(session, actions)
    return _ingest(engine, by_ws)


def log_missing_orders(engine: Engine, *, now_us: int | None = None) -> int:
    """Log the order events that the last `ORDER_LOOKBACK_US` of order actions should have put
    in the log and did not (the process died between the commit and the job)."""
    since = (clock.now_us() if now_us is None else now_us) - ORDER_LOOKBACK_US
    with session_scope(engine, read_only=True) as session:
        # Per campaign, so the lookup uses the action log's (campaign, kind) index: only kinds
        # that cause orders, still running or changed within the look-back.
        campaign_ids = session.scalars(
            select(Campaign.id).where(
                Campaign.kind.in_(("group_buy", "bargain")),
                Campaign.status != "draft",
                or_(Campaign.ends_at_us >= since, Campaign.updated_at_us >= since),
            )
        ).all()
        actions = [
            action
            for cid in campaign_ids
            for action in session.scalars(
                select(CampaignAction)
                .where(
                    CampaignAction.campaign_id == cid,
                    CampaignAction.kind.in_(ORDER_KINDS),
                    CampaignAction.at_us >= since,
                )
                .order_by(CampaignAction.id)
            )
        ]
        missing: list[CampaignAction] = []
        by_ws: dict[int, list[CampaignAction]] = defaultdict(list)
        for action in actions:
            by_ws[action.workspace_id].append(action)
        for ws_id, group in by_ws.items():
            for start in range(0, len(group), 500):
                chunk = group[start : start + 500]
                logged = set(
                    session.scalars(
                        select(EventRecord.event_id).where(
                            EventRecord.workspace_id == ws_id,
                            EventRecord.event_id.in_([order_event_id(a) for a in chunk]),
                        )
                    )
                )
                missing.extend(a for a in chunk if order_event_id(a) not in logged)
        lines = _lines(session, missing)
    return _ingest(engine, lines) if lines else 0
