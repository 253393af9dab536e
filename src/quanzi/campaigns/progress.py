"""Progress of the invite-based kinds: 任务宝 (invite tasks), 助力 (help to unlock) and the
leaderboard's score, and the periodic refresh that keeps scores and tier rewards current.

**Invites of a participant** (任务宝, leaderboard `valid_invites`), read from the projections:

- a participant who is a member: joins whose `inviter` is that member (their personal code,
  state `m:<id>`);
- a participant who came through someone's share link (`referrer_id`) and is a member: their
  own joins that carry no inviter count for the referrer.

Only joins in the campaign's window [starts, ends) and, when `group_ids` is set, into those
groups count; staff on either side never count. Each invitee counts once per participant, by
the definitions of the `invites` report (shared/contracts/metrics.md): **raw** = joined;
**valid** = the invitee's first join in the workspace, not fraud-flagged, did not leave that
group within the hold window (`hold_hours`, default 72), and the window has passed;
**pending** = the same but the window has not passed yet. Fraud flags come from the invite
review (acquisition/fraud.py): in review mode only confirmed invites are flagged, in strict
mode every suspect at once, so both modes decide here through the same flags.

The **score** (what the leaderboard ranks) is the number of valid invites; it was reached at the
instant the score-th invite became valid (join + hold), so ties go to whoever got there first,
whenever the refresh runs.

**Tiers**: reaching a tier's `invites` grants its reward (reason `tier:<invites>`), once. A
participant who is a WeCom member is told through a `mass_message` action (one per tier).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session, aliased

from quanzi.campaigns import rewards, service
from quanzi.campaigns.models import Campaign, CampaignAction, Participant, RewardClaim
from quanzi.core.members.models import Join, Member
from quanzi.core.members.repository import invitee_flagged, left_within_hold
from quanzi.kit import clock
from quanzi.kit.errors import InvalidParameter

log = logging.getLogger(__name__)

INVITE_KINDS = ("invite_task", "leaderboard")
PROGRESS_BY = "campaign progress"


@dataclass(frozen=True)
class InviteFact:
    """One counted join of an invitee, attributed to a participant."""

    participant_id: int
    member_id: int
    joined_us: int
    is_new: bool
    left: bool
    flagged: bool

    def status(self, hold_us: int, as_of_us: int) -> str:
        """valid | pending | left | flagged | not_new."""
        if not self.is_new:
            return "not_new"
        if self.flagged:
            return "flagged"
        if self.left:
            return "left"
        return "valid" if self.joined_us + hold_us <= as_of_us else "pending"


@dataclass
class Progress:
    raw: int = 0
    valid: int = 0
    pending: int = 0
    # When each valid invite became valid (join + hold), ascending.
    valid_at: list[int] = field(default_factory=list)

    def reached_at(self, score: int) -> int | None:
        return self.valid_at[score - 1] if 0 < score <= len(self.valid_at) else None


@dataclass(frozen=True)
class Invitee:
    """An invitee as the participant's page lists them (the page masks the name)."""

    member_id: int
    name: str | None
    joined_us: int
    status: str  # valid | pending | left | flagged | not_new


def hold_us(campaign: Campaign) -> int:
    return int(campaign.rules.get("hold_hours", 72)) * clock.HOUR_US


def _scoped(q: Select[Any], campaign: Campaign) -> Select[Any]:
    q = q.where(
        Join.workspace_id == campaign.workspace_id,
        Join.ts_us >= campaign.starts_at_us,
        Join.ts_us < campaign.ends_at_us,
    )
    groups = campaign.rules.get("group_ids") or []
    return q.where(Join.group_id.in_(groups)) if groups else q


def invite_facts(
    session: Session, campaign: Campaign, participant_ids: Iterable[int] | None = None
) -> list[InviteFact]:
    """The counted joins of the campaign's invitees, attributed to participants."""
    ws, hold = campaign.workspace_id, hold_us(campaign)
    invitee, inviter = aliased(Member), aliased(Member)
    only = None if participant_ids is None else sorted(set(participant_ids))
    columns = (
        Join.member_id,
        Join.ts_us,
        (Join.event_id == invitee.first_join_event).label("is_new"),
        left_within_hold(ws, hold).label("left"),
        invitee_flagged(ws).label("flagged"),
    )
    # Their personal code: joins whose inviter is the participant's member.
    by_code = _scoped(
        select(Participant.id, *columns)
        .select_from(Join)
        .join(
            Participant,
            (Participant.member_id == Join.inviter_id) & (Participant.campaign_id == campaign.id),
        )
        .join(invitee, invitee.id == Join.member_id)
        .join(inviter, inviter.id == Join.inviter_id)
        .where(
            Join.inviter_id != Join.member_id,
            invitee.is_staff.is_(False),
            inviter.is_staff.is_(False),
        ),
        campaign,
    )
    # Their share link: participants they referred, by those members' own uninvited joins.
    referred = aliased(Participant)
    referrer = aliased(Participant)
    by_link = _scoped(
        select(referred.referrer_id, *columns)
        .select_from(referred)
        .join(referrer, referrer.id == referred.referrer_id)
        .join(Join, Join.member_id == referred.member_id)
        .join(invitee, invitee.id == Join.member_id)
        .where(
            referred.campaign_id == campaign.id,
            referred.member_id.is_not(None),
            Join.inviter_id.is_(None),
            (referrer.member_id.is_(None)) | (referrer.member_id != referred.member_id),
            invitee.is_staff.is_(False),
        ),
        campaign,
    )
    if only is not None:
        by_code = by_code.where(Participant.id.in_(only))
        by_link = by_link.where(referred.referrer_id.in_(only))
    out: list[InviteFact] = []
    for q in (by_code, by_link):
        for row in session.execute(q):
            out.append(
                InviteFact(
                    int(row[0]), int(row[1]), int(row[2]), bool(row[3]), bool(row[4]), bool(row[5])
                )
            )
    return out


_RANK = {"valid": 0, "pending": 1, "left": 2, "flagged": 3, "not_new": 4}


def _per_invitee(
    facts: Iterable[InviteFact], hold: int, as_of_us: int
) -> dict[tuple[int, int], tuple[str, InviteFact]]:
    """(participant, invitee) → the best status any of the invitee's joins has, with that join."""
    best: dict[tuple[int, int], tuple[str, InviteFact]] = {}
    for f in facts:
        status = f.status(hold, as_of_us)
        key = (f.participant_id, f.member_id)
        seen = best.get(key)
        if seen is None or (_RANK[status], f.joined_us) < (_RANK[seen[0]], seen[1].joined_us):
            best[key] = (status, f)
    return best


def invite_progress(
    session: Session,
    campaign: Campaign,
    as_of_us: int,
    participant_ids: Iterable[int] | None = None,
) -> dict[int, Progress]:
    """Raw, valid and pending invites per participant (those with at least one raw invite)."""
    hold = hold_us(campaign)
    out: dict[int, Progress] = defaultdict(Progress)
    for (pid, _member), (status, fact) in _per_invitee(
        invite_facts(session, campaign, participant_ids), hold, as_of_us
    ).items():
        p = out[pid]
        p.raw += 1
        if status == "valid":
            p.valid += 1
            p.valid_at.append(fact.joined_us + hold)
        elif status == "pending":
            p.pending += 1
    for p in out.values():
        p.valid_at.sort()
    return dict(out)


def progress_of(
    session: Session, campaign: Campaign, participant: Participant, as_of_us: int | None = None
) -> Progress:
    now = clock.now_us() if as_of_us is None else as_of_us
    return invite_progress(session, campaign, now, [participant.id]).get(participant.id, Progress())


def invitees_of(
    session: Session, campaign: Campaign, participant: Participant, as_of_us: int | None = None
) -> list[Invitee]:
    """The participant's invitees, newest first, each with their status."""
    now = clock.now_us() if as_of_us is None else as_of_us
    best = _per_invitee(invite_facts(session, campaign, [participant.id]), hold_us(campaign), now)
    names = dict(
        session.execute(
            select(Member.id, Member.name).where(Member.id.in_([m for _p, m in best]))
        ).all()
    )
    rows = [
        Invitee(member, names.get(member), fact.joined_us, status)
        for (_p, member), (status, fact) in best.items()
    ]
    return sorted(rows, key=lambda i: (-i.joined_us, i.member_id))


# --- tiers -----------------------------------------------------------------------------------


def tier_reason(invites: int) -> str:
    return f"tier:{invites}"


def tiers(campaign: Campaign) -> list[dict[str, int]]:
    return list(campaign.rules.get("tiers") or [])


def claim_tier(
    session: Session,
    campaign: Campaign,
    participant: Participant,
    invites: int,
    *,
    now_us: int | None = None,
) -> RewardClaim:
    """The participant claims the tier of `invites` (the page's button); the claim when it was
    already given. InvalidParameter when there is no such tier or it is not reached yet."""
    tier = next((t for t in tiers(campaign) if t["invites"] == invites), None)
    if tier is None:
        raise InvalidParameter(f"invites: this campaign has no tier of {invites} invites")
    now = clock.now_us() if now_us is None else now_us
    progress = progress_of(session, campaign, participant, now)
    if progress.valid < invites:
        raise InvalidParameter(
            f"invites: {progress.valid} valid invites so far; this tier needs {invites}"
        )
    return _grant_tier(session, campaign, participant, tier, progress.valid, now)


def _grant_tier(
    session: Session,
    campaign: Campaign,
    participant: Participant,
    tier: dict[str, int],
    valid: int,
    now: int,
) -> RewardClaim:
    reason = tier_reason(tier["invites"])
    existing = rewards.claim_for(session, campaign.id, participant.id, reason)
    if existing is not None:
        return existing
    claim = rewards.grant(
        session, campaign, participant, tier["reward_id"], reason, by=PROGRESS_BY, now_us=now
    )
    push_tier(session, campaign, participant, tier, valid)
    return claim


def _next_tier(campaign: Campaign, valid: int) -> dict[str, int] | None:
    return next((t for t in tiers(campaign) if t["invites"] > valid), None)


def push_tier(
    session: Session,
    campaign: Campaign,
    participant: Participant,
    tier: dict[str, int],
    valid: int,
) -> int | None:
    """Tell a WeCom member they reached a tier, through the connector's `mass_message` action
    (recorded, run by the job engine, once per tier). The action's id, or None when the
    participant is not a WeCom member or WeCom is not connected."""
    if participant.member_id is None:
        return None
    member = session.get(Member, participant.member_id)
    if member is None or member.platform != "wecom" or member.is_staff:
        return None
    from quanzi.acquisition.channels import wecom_connected
    from quanzi.connectors.actions import request_action

    if not wecom_connected(session, campaign.workspace_id):
        return None
    reward = rewards.get_reward(session, campaign.workspace_id, tier["reward_id"])
    text = f"【{campaign.name}】已有 {valid} 位好友接受你的邀请，达成「{reward.name}」！"
    upcoming = _next_tier(campaign, valid)
    if upcoming is not None:
        upcoming_reward = rewards.get_reward(session, campaign.workspace_id, upcoming["reward_id"])
        text += f"再邀请 {upcoming['invites'] - valid} 位可得「{upcoming_reward.name}」。"
    action = request_action(
        session,
        campaign.workspace_id,
        "wecom",
        "mass_message",
        {"chat_type": "single", "external_userid": [member.member_key], "text": text},
        f"campaign:{campaign.id}:tier:{tier['invites']}:{participant.id}",
        PROGRESS_BY,
    )
    return action.id


# --- 助力 (help to unlock) -------------------------------------------------------------------


@dataclass(frozen=True)
class Helped:
    counted: bool  # False: this helper had already helped in this campaign
    helps: int  # the participant's helps so far
    unlocked: RewardClaim | None  # the reward, once helpers_needed is reached


def _helper_key(helper: Participant | None, helper_member_id: int | None) -> str:
    if helper is not None and helper.member_id is not None:
        return f"m{helper.member_id}"
    if helper is not None:
        return f"p{helper.id}"
    return f"m{helper_member_id}"


def help_participant(
    session: Session,
    campaign: Campaign,
    participant: Participant,
    *,
    helper: Participant | None = None,
    helper_member_id: int | None = None,
    now_us: int | None = None,
) -> Helped:
    """A friend helps `participant` (助力): a participant of the same campaign or a member. Each
    helper counts once per campaign; nobody helps themselves; reaching `helpers_needed` grants
    the reward (reason `unlock`)."""
    if campaign.kind != "help_unlock":
        raise InvalidParameter("campaign: not a 助力 (help_unlock) campaign")
    now = clock.now_us() if now_us is None else now_us
    if not service.is_open(campaign, now):
        raise service.CampaignClosed("campaign: not open")
    if participant.campaign_id != campaign.id:
        raise InvalidParameter("participant: not in this campaign")
    if (helper is None) == (helper_member_id is None):
        raise InvalidParameter("helper: give the helping participant or member")
    if helper is not None and helper.campaign_id != campaign.id:
        raise InvalidParameter("helper: not in this campaign")
    if helper_member_id is not None:
        member = session.get(Member, helper_member_id)
        if member is None or member.workspace_id != campaign.workspace_id:
            raise InvalidParameter(f"helper: member {helper_member_id} does not exist")
        if member.is_staff:
            raise InvalidParameter("helper: staff accounts do not help")
    key = _helper_key(helper, helper_member_id)
    if (helper is not None and helper.id == participant.id) or (
        participant.member_id is not None and key == f"m{participant.member_id}"
    ):
        raise InvalidParameter("helper: you cannot help yourself")
    # Helps of one participant queue on their row, so the count below sees every earlier help.
    session.execute(
        select(Participant.id).where(Participant.id == participant.id).with_for_update()
    )
    done = service.record_action(
        session,
        campaign,
        participant,
        "help",
        f"help:{key}",
        other_id=helper.id if helper is not None else None,
        detail={"helper": key},
        now_us=now,
    )
    helps = _totals(session, campaign, "help", [participant.id]).get(participant.id, (0, 0, 0))[0]
    service.set_score(session, participant, helps, now)
    unlocked = _unlock(session, campaign, participant, helps, now)
    return Helped(done is not None, helps, unlocked)


def _totals(
    session: Session, campaign: Campaign, kind: str, participant_ids: list[int] | None = None
) -> dict[int, tuple[int, int, int]]:
    """participant → (actions of `kind`, the sum of their amounts, when the last one was)."""
    q = (
        select(
            CampaignAction.participant_id,
            func.count(),
            func.coalesce(func.sum(CampaignAction.amount_fen), 0),
            func.max(CampaignAction.at_us),
        )
        .where(CampaignAction.campaign_id == campaign.id, CampaignAction.kind == kind)
        .group_by(CampaignAction.participant_id)
    )
    if participant_ids is not None:
        q = q.where(CampaignAction.participant_id.in_(participant_ids))
    rows: list[Any] = list(session.execute(q).all())
    return {int(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in rows}


def _unlock(
    session: Session, campaign: Campaign, participant: Participant, helps: int, now: int
) -> RewardClaim | None:
    settings = campaign.rules["help"]
    if helps < int(settings["helpers_needed"]):
        return None
    try:
        return rewards.grant(
            session, campaign, participant, int(settings["reward_id"]), "unlock",
            by=PROGRESS_BY, now_us=now,
        )  # fmt: skip
    except (rewards.OutOfStock, rewards.CapReached) as exc:
        log.warning("campaign %s participant %s: %s", campaign.id, participant.id, exc)
        return None


# --- refresh ---------------------------------------------------------------------------------


@dataclass
class Refreshed:
    participants: int = 0
    scores_changed: int = 0
    granted: int = 0
    linked: int = 0
    refused: list[str] = field(default_factory=list)  # why a reward could not be given


def link_members(session: Session, campaign: Campaign) -> int:
    """Link phone-only participants to the member who has that phone number now (a profile
    arrived after they joined); a member already in the campaign is left alone."""
    rows = session.execute(
        select(Participant.id, Member.id)
        .join(
            Member,
            (Member.workspace_id == Participant.workspace_id)
            & (Member.phone_digest == Participant.phone_digest),
        )
        .where(
            Participant.campaign_id == campaign.id,
            Participant.member_id.is_(None),
            Participant.phone_digest.is_not(None),
            Member.is_staff.is_(False),
        )
        .order_by(Participant.id, Member.id)
    ).all()
    taken = set(
        session.scalars(
            select(Participant.member_id).where(
                Participant.campaign_id == campaign.id, Participant.member_id.is_not(None)
            )
        )
    )
    linked = 0
    done: set[int] = set()
    for pid, mid in rows:
        if pid in done or mid in taken:
            continue
        session.execute(
            update(Participant)
            .where(Participant.id == pid, Participant.member_id.is_(None))
            .values(member_id=mid)
            .execution_options(synchronize_session=False)
        )
        done.add(pid)
        taken.add(mid)
        linked += 1
    if linked:
        session.expire_all()
    return linked


def refresh_campaign(session: Session, campaign: Campaign, now_us: int) -> Refreshed:
    """Recompute every participant's score and give the tier / unlock rewards earned so far.
    Safe to run at any time and any number of times."""
    report = Refreshed()
    if campaign.status not in ("live", "ended"):
        return report
    report.linked = link_members(session, campaign)
    people = list(
        session.scalars(
            select(Participant)
            .where(Participant.campaign_id == campaign.id)
            .order_by(Participant.id)
        )
    )
    report.participants = len(people)
    claimed = {
        (p, r)
        for p, r in session.execute(
            select(RewardClaim.participant_id, RewardClaim.reason).where(
                RewardClaim.campaign_id == campaign.id
            )
        )
    }
    metric = (campaign.rules.get("board") or {}).get("metric", "valid_invites")
    if campaign.kind == "help_unlock":
        helps = _totals(session, campaign, "help")
        for p in people:
            n, _sum, at = helps.get(p.id, (0, 0, p.joined_at_us))
            report.scores_changed += _score(session, p, n, at)
            if (p.id, "unlock") not in claimed and _unlock(session, campaign, p, n, now_us):
                report.granted += 1
        return report
    if campaign.kind == "leaderboard" and metric == "points":
        points = _totals(session, campaign, "points")
        for p in people:
            _n, n, at = points.get(p.id, (0, 0, p.joined_at_us))
            report.scores_changed += _score(session, p, n, at)
        return report
    if campaign.kind not in INVITE_KINDS:
        return report
    progress = invite_progress(session, campaign, now_us)
    for p in people:
        got = progress.get(p.id, Progress())
        report.scores_changed += _score(
            session, p, got.valid, got.reached_at(got.valid) or p.joined_at_us
        )
        if campaign.kind != "invite_task":
            continue
        for tier in tiers(campaign):
            if got.valid < tier["invites"] or (p.id, tier_reason(tier["invites"])) in claimed:
                continue
            try:
                _grant_tier(session, campaign, p, tier, got.valid, now_us)
                report.granted += 1
            except (rewards.OutOfStock, rewards.CapReached) as exc:
                report.refused.append(f"participant {p.id} tier {tier['invites']}: {exc}")
    return report


def _score(session: Session, participant: Participant, score: int, at_us: int) -> int:
    if score == participant.score:
        return 0
    service.set_score(session, participant, score, at_us)
    return 1
