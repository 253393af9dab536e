"""Background work of the campaign engine: every five minutes, refresh the scores and tier /
unlock rewards of the invite-based campaigns (任务宝, 助力, leaderboards).

A campaign is refreshed from its start until its hold window has passed after its end (an
invite made on the last day becomes valid `hold_hours` later). Each campaign is refreshed in
its own transaction, so one failing does not hold up the others; a refresh is safe to run
twice (progress.refresh_campaign)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

from huey import crontab  # type: ignore[import-untyped]
from sqlalchemy import Engine, select

from quanzi.campaigns import progress
from quanzi.campaigns.models import Campaign
from quanzi.db.engine import get_engine, session_scope
from quanzi.jobs.queue import huey
from quanzi.kit import clock
from quanzi.kit.errors import QuanziError

log = logging.getLogger(__name__)

REFRESHED_KINDS = ("invite_task", "help_unlock", "leaderboard")
# After the hold window, one more hour: a join ingested late still counts.
GRACE_US = clock.HOUR_US


@dataclass
class RefreshTick:
    campaigns: int = 0
    scores_changed: int = 0
    granted: int = 0
    failed: dict[int, str] = field(default_factory=dict)


def due_campaigns(engine: Engine, now: int) -> list[int]:
    """Ids of the campaigns a refresh still has work for."""
    with session_scope(engine, read_only=True) as session:
        rows = session.execute(
            select(Campaign.id, Campaign.ends_at_us, Campaign.rules).where(
                Campaign.status.in_(("live", "ended")),
                Campaign.kind.in_(REFRESHED_KINDS),
                Campaign.starts_at_us <= now,
            )
        ).all()
    out = []
    for cid, ends, rules in rows:
        hold = int((rules or {}).get("hold_hours", 72)) * clock.HOUR_US
        if now < int(ends) + hold + GRACE_US:
            out.append(int(cid))
    return sorted(out)


def refresh_due(engine: Engine, now: int | None = None) -> RefreshTick:
    """Refresh every campaign that is due; what was done."""
    now = clock.now_us() if now is None else now
    tick = RefreshTick()
    for cid in due_campaigns(engine, now):
        try:
            with session_scope(engine) as session:
                campaign = session.get(Campaign, cid)
                if campaign is None:
                    continue
                done = progress.refresh_campaign(session, campaign, now)
            tick.campaigns += 1
            tick.scores_changed += done.scores_changed
            tick.granted += done.granted
            for why in done.refused:
                log.warning("campaign %s: %s", cid, why)
        except QuanziError as exc:
            log.error("campaign %s: refresh failed: %s", cid, exc)
            tick.failed[cid] = str(exc)
    return tick


@huey.periodic_task(crontab(minute="*/5"), name="campaigns_refresh")  # type: ignore[untyped-decorator]
def campaigns_refresh() -> dict[str, object]:
    return asdict(refresh_due(get_engine()))
