"""Background work of the campaign kinds: log the orders they cause, and every minute settle
what time has decided (拼团 teams past their deadline, bargains out of time, lottery
commitments and draws). Each step is safe to run twice or to be killed midway."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from huey import crontab  # type: ignore[import-untyped]
from sqlalchemy import Engine, select

from quanzi.campaigns import bargain, group_buy, lottery
from quanzi.campaigns.models import Campaign
from quanzi.db.engine import get_engine, session_scope
from quanzi.jobs.queue import huey
from quanzi.kit import clock
from quanzi.kit.errors import QuanziError

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    teams_refunded: int = 0  # refund actions recorded (one per seat)
    bargains_expired: int = 0
    lotteries_committed: int = 0
    lotteries_drawn: int = 0
    orders_logged: int = 0  # order events new to the log


def _lottery_campaigns(engine: Engine, now: int) -> list[tuple[int, bool]]:
    """(id, due) of lotteries that need a commitment (live, none yet) or a draw (due)."""
    with session_scope(engine, read_only=True) as session:
        rows = session.scalars(
            select(Campaign).where(
                Campaign.kind == "lottery",
                Campaign.status.in_(("live", "ended")),
                Campaign.drawn_at_us.is_(None),
            )
        ).all()
        return [(c.id, int(c.rules["lottery"]["draw_at_us"]) <= now) for c in rows]


def _settle_lotteries(engine: Engine, now: int, report: SweepReport) -> None:
    for campaign_id, due in _lottery_campaigns(engine, now):
        try:
            with session_scope(engine) as session:
                campaign = session.get(Campaign, campaign_id)
                if campaign is None:
                    continue
                if campaign.draw_commitment is None and campaign.status == "live" and not due:
                    lottery.commit(session, campaign, now_us=now)
                    report.lotteries_committed += 1
                elif due and campaign.draw_commitment is not None:
                    lottery.draw(session, campaign, now_us=now)
                    report.lotteries_drawn += 1
        except QuanziError as exc:
            log.error("lottery campaign %s: %s", campaign_id, exc)


def sweep(engine: Engine, *, now_us: int | None = None) -> SweepReport:
    """Settle everything due at `now_us` (default now)."""
    now = clock.now_us() if now_us is None else now_us
    report = SweepReport()
    while True:
        with session_scope(engine) as session:
            expired = group_buy.expire_due_teams(session, now_us=now)
        # Committed: the refunds are decided. Their events are logged now; if this process
        # dies first, `log_missing_orders` below (in this run or the next) logs them.
        if expired.refunds:
            report.teams_refunded += len(expired.refunds)
            report.orders_logged += group_buy.log_orders(engine, expired.refunds)
        if expired.teams < group_buy.EXPIRE_BATCH:
            break
    with session_scope(engine) as session:
        report.bargains_expired = bargain.expire_due_bargains(session, now_us=now)
    _settle_lotteries(engine, now, report)
    report.orders_logged += group_buy.log_missing_orders(engine, now_us=now)
    return report


@huey.task(retries=3, retry_delay=10, name="log_campaign_orders")  # type: ignore[untyped-decorator]
def log_campaign_orders(action_ids: list[int]) -> dict[str, int]:
    """Log the order events of campaign order actions (queued after their commit)."""
    return {"logged": group_buy.log_orders(get_engine(), action_ids)}


@huey.periodic_task(crontab(minute="*"), name="sweep_campaign_kinds")  # type: ignore[untyped-decorator]
def sweep_campaign_kinds() -> dict[str, int]:
    """Every minute: expire and refund teams, expire bargains, commit and draw lotteries, and
    log any campaign order a crash left out of the event log."""
    return asdict(sweep(get_engine()))
