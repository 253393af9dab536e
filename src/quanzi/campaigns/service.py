"""Campaigns: create, launch, end; who may join, the personal link, the action log, scores.

Every campaign kind shares this: a campaign (draft → live → ended, or cancelled), its
participants (a member and/or a phone number, once per campaign, each with a personal link
whose token only the participant holds; only its SHA-256 is stored), an action log that takes
each action once (its idempotency key), and a score the leaderboard ranks.

Services take the session and never commit; the caller commits once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quanzi.campaigns import rules as campaign_rules
from quanzi.campaigns.models import Campaign, CampaignAction, Participant, Reward
from quanzi.core.groups.models import Group
from quanzi.core.members.models import Member
from quanzi.core.tags.models import MemberTag, Tag
from quanzi.core.workspaces.service import workspace_key
from quanzi.db.base import Base
from quanzi.kit import clock
from quanzi.kit.errors import InvalidParameter, NotFound

KEY_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,30}$")
SLUG_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud from a poster
SLUG_LEN = 8
SLUG_RE = re.compile(r"^[a-z0-9]{1,32}$")
COPY_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,29}$")
MAX_COPY_KEYS = 20
MAX_COPY_CHARS = 5000
MAX_NAME = 30
ACTION_KIND_RE = re.compile(r"^[a-z_:]{1,16}$")
# Far enough apart for any campaign; keeps instants inside what datetime can show.
MAX_WINDOW_US = 366 * clock.DAY_US
FIRST_US = 0
LAST_US = 253_402_214_400 * clock.US  # 9999-12-31


class NotEligible(InvalidParameter):
    """The person may not take part in this campaign; the message says why."""


class CampaignClosed(InvalidParameter):
    """The campaign does not take part now: not live, not started or over."""


class CampaignFull(CampaignClosed):
    """The campaign has reached its participant cap."""


@dataclass(frozen=True)
class Joined:
    participant: Participant
    token: str | None  # the personal link's token, only when the participant is new


class _Keep:
    """A parameter left unchanged."""


KEEP: Final = _Keep()


# --- validation ------------------------------------------------------------------------------


def _name(name: str) -> str:
    name = (name or "").strip()
    if not 1 <= len(name) <= 100:
        raise InvalidParameter("name: give 1-100 characters")
    return name


def _key(key: str) -> str:
    key = (key or "").strip()
    if not KEY_RE.match(key):
        raise InvalidParameter("key: give 1-30 letters, digits, _ . or -")
    return key


def _instant(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not FIRST_US <= value <= LAST_US:
        raise InvalidParameter(f"{field}: give an instant in UTC microseconds")
    return value


def _window(starts_at_us: Any, ends_at_us: Any) -> tuple[int, int]:
    starts = _instant(starts_at_us, "starts_at_us")
    ends = _instant(ends_at_us, "ends_at_us")
    if ends <= starts:
        raise InvalidParameter("ends_at_us: the campaign must end after it starts")
    if ends - starts > MAX_WINDOW_US:
        raise InvalidParameter("ends_at_us: a campaign lasts at most 366 days")
    return starts, ends


def check_copy(copy: Any) -> dict[str, str]:
    """What the page and the posters say: {key: text}, keys like `title`, `share_text`."""
    if copy is None:
        return {}
    if not isinstance(copy, dict):
        raise InvalidParameter("copy: give an object of texts")
    if len(copy) > MAX_COPY_KEYS:
        raise InvalidParameter(f"copy: at most {MAX_COPY_KEYS} texts")
    out: dict[str, str] = {}
    for k, v in copy.items():
        if not isinstance(k, str) or not COPY_KEY_RE.match(k):
            raise InvalidParameter(f"copy.{k}: a key is a-z, 0-9 and _ (at most 30)")
        if not isinstance(v, str) or len(v) > MAX_COPY_CHARS:
            raise InvalidParameter(f"copy.{k}: give a text of at most {MAX_COPY_CHARS} characters")
        out[k] = v
    return out


def _check_refs(
    session: Session, ws_id: int, campaign_id: int | None, rules: dict[str, Any]
) -> None:
    """The rewards, tags and groups the rules name exist in this workspace."""
    wanted = campaign_rules.reward_ids(rules)
    if wanted:
        rows = session.execute(
            select(Reward.id, Reward.campaign_id).where(
                Reward.workspace_id == ws_id, Reward.id.in_(wanted)
            )
        ).all()
        ok = {rid for rid, cid in rows if cid is None or cid == campaign_id}
        missing = [r for r in wanted if r not in ok]
        if missing:
            raise InvalidParameter(f"rules: reward {missing[0]} does not exist in this workspace")
    tag_ids = rules["eligibility"]["tag_ids"]
    if tag_ids:
        found = set(
            session.scalars(select(Tag.id).where(Tag.workspace_id == ws_id, Tag.id.in_(tag_ids)))
        )
        missing = [t for t in tag_ids if t not in found]
        if missing:
            raise InvalidParameter(
                f"rules.eligibility.tag_ids: tag {missing[0]} does not exist in this workspace"
            )
    group_ids = rules["group_ids"]
    if group_ids:
        found = set(
            session.scalars(
                select(Group.id).where(Group.workspace_id == ws_id, Group.id.in_(group_ids))
            )
        )
        missing = [g for g in group_ids if g not in found]
        if missing:
            raise InvalidParameter(f"rules.group_ids: group {missing[0]} does not exist")


def _check_channel_code(session: Session, ws_id: int, code_id: int | None) -> int | None:
    if code_id is None:
        return None
    from quanzi.acquisition.channels import get_code

    try:
        return get_code(session, ws_id, code_id).id
    except NotFound:
        raise InvalidParameter(f"channel_code_id: channel code {code_id} does not exist") from None


def _check_poster_template(session: Session, ws_id: int, template_id: int | None) -> int | None:
    if template_id is None:
        return None
    from quanzi.acquisition.models import PosterTemplate

    found = session.get(PosterTemplate, template_id)
    if found is None or found.workspace_id != ws_id:
        raise InvalidParameter(f"poster_template_id: poster template {template_id} does not exist")
    return found.id


def _new_slug(session: Session) -> str:
    for _ in range(20):
        slug = "".join(secrets.choice(SLUG_ALPHABET) for _ in range(SLUG_LEN))
        if session.scalar(select(Campaign.id).where(Campaign.slug == slug)) is None:
            return slug
    raise RuntimeError("could not find a free campaign slug")  # pragma: no cover


def _key_taken(session: Session, ws_id: int, key: str, except_id: int | None = None) -> None:
    q = select(Campaign.id).where(Campaign.workspace_id == ws_id, Campaign.key == key)
    if except_id is not None:
        q = q.where(Campaign.id != except_id)
    if session.scalar(q) is not None:
        raise InvalidParameter(f"key: {key!r} is already used by another campaign")


# --- campaigns -------------------------------------------------------------------------------


def create_campaign(
    session: Session,
    ws_id: int,
    *,
    kind: str,
    name: str,
    key: str,
    starts_at_us: int,
    ends_at_us: int,
    rules: dict[str, Any],
    copy: dict[str, Any] | None,
    by: str | None,
    channel_code_id: int | None = None,
    poster_template_id: int | None = None,
) -> Campaign:
    """A draft campaign; raises InvalidParameter naming the first field that is wrong."""
    campaign_rules.check_kind(kind)
    clean_name = _name(name)
    clean_key = _key(key)
    starts, ends = _window(starts_at_us, ends_at_us)
    clean_rules = campaign_rules.check_rules(kind, rules)
    clean_copy = check_copy(copy)
    _check_refs(session, ws_id, None, clean_rules)
    code_id = _check_channel_code(session, ws_id, channel_code_id)
    template_id = _check_poster_template(session, ws_id, poster_template_id)
    _key_taken(session, ws_id, clean_key)
    now = clock.now_us()
    campaign = Campaign(
        workspace_id=ws_id,
        key=clean_key,
        slug=_new_slug(session),
        kind=kind,
        name=clean_name,
        status="draft",
        starts_at_us=starts,
        ends_at_us=ends,
        rules=clean_rules,
        copy_text=clean_copy,
        channel_code_id=code_id,
        poster_template_id=template_id,
        created_by=by,
        created_at_us=now,
        updated_at_us=now,
    )
    try:
        with session.begin_nested():
            session.add(campaign)
    except IntegrityError:
        raise InvalidParameter(f"key: {clean_key!r} is already used by another campaign") from None
    return campaign


def update_campaign(
    session: Session,
    ws_id: int,
    campaign_id: int,
    *,
    name: str | _Keep = KEEP,
    key: str | _Keep = KEEP,
    starts_at_us: int | _Keep = KEEP,
    ends_at_us: int | _Keep = KEEP,
    rules: dict[str, Any] | _Keep = KEEP,
    copy: dict[str, Any] | _Keep | None = KEEP,
    channel_code_id: int | _Keep | None = KEEP,
    poster_template_id: int | _Keep | None = KEEP,
    by: str | None = None,
) -> Campaign:
    """Change a campaign. A draft can change anything; a live one its name, copy, poster and end
    (not before now); an ended or cancelled one nothing."""
    campaign = get_campaign(session, ws_id, campaign_id)
    if campaign.status in ("ended", "cancelled"):
        raise InvalidParameter(f"status: an {campaign.status} campaign cannot be changed")
    live = campaign.status == "live"
    if live:
        for field, value in (
            ("key", key),
            ("starts_at_us", starts_at_us),
            ("rules", rules),
            ("channel_code_id", channel_code_id),
        ):
            if not isinstance(value, _Keep):
                raise InvalidParameter(f"{field}: cannot change once the campaign is live")
    new_name = campaign.name if isinstance(name, _Keep) else _name(name)
    new_key = campaign.key if isinstance(key, _Keep) else _key(key)
    starts, ends = _window(
        campaign.starts_at_us if isinstance(starts_at_us, _Keep) else starts_at_us,
        campaign.ends_at_us if isinstance(ends_at_us, _Keep) else ends_at_us,
    )
    if live and ends != campaign.ends_at_us and ends <= clock.now_us():
        raise InvalidParameter("ends_at_us: a live campaign cannot end in the past; end it instead")
    new_rules = (
        campaign.rules
        if isinstance(rules, _Keep)
        else campaign_rules.check_rules(campaign.kind, rules)
    )
    new_copy = campaign.copy_text if isinstance(copy, _Keep) else check_copy(copy)
    if not isinstance(rules, _Keep):
        _check_refs(session, ws_id, campaign.id, new_rules)
    code_id = (
        campaign.channel_code_id
        if isinstance(channel_code_id, _Keep)
        else _check_channel_code(session, ws_id, channel_code_id)
    )
    template_id = (
        campaign.poster_template_id
        if isinstance(poster_template_id, _Keep)
        else _check_poster_template(session, ws_id, poster_template_id)
    )
    if new_key != campaign.key:
        _key_taken(session, ws_id, new_key, except_id=campaign.id)
    campaign.name = new_name
    campaign.key = new_key
    campaign.starts_at_us = starts
    campaign.ends_at_us = ends
    campaign.rules = new_rules
    campaign.copy_text = new_copy
    campaign.channel_code_id = code_id
    campaign.poster_template_id = template_id
    campaign.updated_at_us = clock.now_us()
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise InvalidParameter(f"key: {new_key!r} is already used by another campaign") from None
    return campaign


def _moving(
    session: Session, ws_id: int, campaign_id: int, allowed: tuple[str, ...], what: str
) -> Campaign:
    campaign = get_campaign(session, ws_id, campaign_id)
    if campaign.status not in allowed:
        raise InvalidParameter(f"status: {what} (this one is {campaign.status})")
    return campaign


def _moved(session: Session, campaign: Campaign, status: str) -> Campaign:
    campaign.status = status
    campaign.updated_at_us = clock.now_us()
    session.flush()
    return campaign


def launch(session: Session, ws_id: int, campaign_id: int, by: str | None) -> Campaign:
    """draft → live. The references are checked again (a reward may have gone since)."""
    campaign = _moving(session, ws_id, campaign_id, ("draft",), "only a draft can be launched")
    if campaign.ends_at_us <= clock.now_us():
        raise InvalidParameter("ends_at_us: the campaign's end has passed; move it first")
    if campaign.rules.get("count") == "contact":
        raise InvalidParameter(
            "rules.count: counting staff contacts is not available yet (contact.added does not "
            "carry the inviter); use 'join'"
        )
    _check_refs(session, ws_id, campaign.id, campaign.rules)
    return _moved(session, campaign, "live")


def end(session: Session, ws_id: int, campaign_id: int, by: str | None) -> Campaign:
    """live → ended: nobody joins any more; what was earned stays."""
    campaign = _moving(session, ws_id, campaign_id, ("live",), "only a live campaign can be ended")
    return _moved(session, campaign, "ended")


def cancel(session: Session, ws_id: int, campaign_id: int, by: str | None) -> Campaign:
    """draft or live → cancelled."""
    campaign = _moving(
        session, ws_id, campaign_id, ("draft", "live"), "only a draft or live one can be cancelled"
    )
    return _moved(session, campaign, "cancelled")


_T = TypeVar("_T", bound=Base)


def owned(session: Session, model: type[_T], row_id: int, ws_id: int, what: str) -> _T:
    """The workspace's row of `model` with that id, or NotFound naming `what`."""
    row = session.get(model, row_id)
    if row is None or getattr(row, "workspace_id", None) != ws_id:
        raise NotFound(f"{what} {row_id} does not exist")
    return row


def get_campaign(session: Session, ws_id: int, campaign_id: int) -> Campaign:
    return owned(session, Campaign, campaign_id, ws_id, "campaign")


def campaign_by_slug(session: Session, slug: str) -> Campaign:
    """The campaign of a public page /k/<slug> (drafts too: the page says it has not started)."""
    if not slug or not SLUG_RE.match(slug):
        raise NotFound("no such campaign")
    found = session.scalar(select(Campaign).where(Campaign.slug == slug))
    if found is None:
        raise NotFound("no such campaign")
    return found


def list_campaigns(session: Session, ws_id: int, status: str | None = None) -> list[Campaign]:
    q = select(Campaign).where(Campaign.workspace_id == ws_id)
    if status is not None:
        q = q.where(Campaign.status == status)
    return list(session.scalars(q.order_by(Campaign.starts_at_us.desc(), Campaign.id.desc())))


def live_campaigns(session: Session, now_us: int | None = None) -> list[Campaign]:
    """Every live campaign (all workspaces) whose window has started."""
    now = clock.now_us() if now_us is None else now_us
    return list(
        session.scalars(
            select(Campaign)
            .where(Campaign.status == "live", Campaign.starts_at_us <= now)
            .order_by(Campaign.id)
        )
    )


def is_open(campaign: Campaign, now_us: int) -> bool:
    return campaign.status == "live" and campaign.starts_at_us <= now_us < campaign.ends_at_us


def _open(campaign: Campaign, now_us: int) -> None:
    if campaign.status != "live":
        raise CampaignClosed(f"campaign: not open (it is {campaign.status})")
    if now_us < campaign.starts_at_us:
        raise CampaignClosed("campaign: has not started yet")
    if now_us >= campaign.ends_at_us:
        raise CampaignClosed("campaign: is over")


# --- participants ----------------------------------------------------------------------------


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def eligibility_problem(session: Session, campaign: Campaign, member: Member | None) -> str | None:
    """Why this person may not take part, in words, or None when they may."""
    rules = campaign.rules.get("eligibility") or {}
    if member is not None and member.is_staff:
        return "staff accounts do not take part (their invites never count)"
    if rules.get("new_only") and member is not None and member.first_join_us is not None:
        if member.first_join_us <= campaign.starts_at_us:
            return "only people who join the community during the campaign can take part"
    tag_ids = rules.get("tag_ids") or []
    if tag_ids:
        tagged = member is not None and (
            session.scalar(
                select(MemberTag.tag_id)
                .where(MemberTag.member_id == member.id, MemberTag.tag_id.in_(tag_ids))
                .limit(1)
            )
            is not None
        )
        if not tagged:
            return "this campaign is for members with certain tags only"
    channels = rules.get("channels") or []
    if channels and (member is None or member.channel not in channels):
        return "this campaign is for people who came through certain channels only"
    return None


def _participant_of(
    session: Session, campaign_id: int, member_id: int | None, phone_digest: str | None
) -> Participant | None:
    if member_id is not None:
        found = session.scalar(
            select(Participant).where(
                Participant.campaign_id == campaign_id, Participant.member_id == member_id
            )
        )
        if found is not None:
            return found
    if phone_digest is not None:
        return session.scalar(
            select(Participant).where(
                Participant.campaign_id == campaign_id, Participant.phone_digest == phone_digest
            )
        )
    return None


def _member(session: Session, ws_id: int, member_id: int) -> Member:
    member = session.get(Member, member_id)
    if member is None or member.workspace_id != ws_id:
        raise NotFound(f"member_id: member {member_id} does not exist in this workspace")
    return member


def _member_by_phone(session: Session, ws_id: int, digest: str) -> Member | None:
    return session.scalar(
        select(Member)
        .where(Member.workspace_id == ws_id, Member.phone_digest == digest)
        .order_by(Member.is_staff, Member.id)
        .limit(1)
    )


def _below_cap(session: Session, campaign: Campaign) -> bool:
    cap = campaign.rules.get("campaign_cap")
    if cap is None:
        return True
    # Joins of a capped campaign queue on its row (PostgreSQL; SQLite writers queue anyway), so
    # the count below cannot be read by two joins at once.
    session.execute(select(Campaign.id).where(Campaign.id == campaign.id).with_for_update())
    joined = session.scalar(
        select(func.count()).select_from(Participant).where(Participant.campaign_id == campaign.id)
    )
    return int(joined or 0) < int(cap)


def join(
    session: Session,
    campaign: Campaign,
    *,
    member_id: int | None = None,
    phone: str | None = None,
    name: str | None = None,
    referrer_id: int | None = None,
    now_us: int | None = None,
) -> Joined:
    """Take part (once): a member, a phone number, or both. Returns the existing participant
    (token None) when they are already in; raises NotEligible / CampaignClosed / CampaignFull
    with the reason, InvalidParameter for bad input."""
    now = clock.now_us() if now_us is None else now_us
    _open(campaign, now)
    ws_id = campaign.workspace_id
    if member_id is None and not phone:
        raise InvalidParameter("phone: give a phone number (or a member)")
    clean_name = (name or "").strip()
    if len(clean_name) > MAX_NAME:
        raise InvalidParameter(f"name: at most {MAX_NAME} characters")
    member = _member(session, ws_id, member_id) if member_id is not None else None
    digest = sealed_phone = None
    key = None
    if phone:
        from quanzi.acquisition.landing import valid_phone

        normal = valid_phone(phone)
        if normal is None:
            raise InvalidParameter("phone: not a valid phone number")
        key = workspace_key(session, ws_id)
        digest = key.blind_index("phone", normal)
        sealed_phone = key.seal("phone", normal)
        if member is None:
            member = _member_by_phone(session, ws_id, digest)
    mid = member.id if member is not None else None
    existing = _participant_of(session, campaign.id, mid, digest)
    if existing is not None:
        return Joined(existing, None)
    problem = eligibility_problem(session, campaign, member)
    if problem is not None:
        raise NotEligible(f"eligibility: {problem}")
    if referrer_id is not None:
        referrer = session.get(Participant, referrer_id)
        if referrer is None or referrer.campaign_id != campaign.id:
            raise InvalidParameter(f"referrer_id: {referrer_id} is not in this campaign")
    if not _below_cap(session, campaign):
        raise CampaignFull("campaign: it is full (the participant cap is reached)")
    token = secrets.token_urlsafe(24)
    participant = Participant(
        workspace_id=ws_id,
        campaign_id=campaign.id,
        member_id=mid,
        phone_digest=digest,
        phone_sealed=sealed_phone,
        name_sealed=None,
        token_digest=token_digest(token),
        referrer_id=referrer_id,
        score=0,
        score_at_us=now,
        joined_at_us=now,
    )
    if clean_name:
        key = key or workspace_key(session, ws_id)
        participant.name_sealed = key.seal("name", clean_name)
    try:
        with session.begin_nested():
            session.add(participant)
    except IntegrityError:
        # The same person joined at the same moment (a double tap, two devices).
        again = _participant_of(session, campaign.id, mid, digest)
        if again is None:
            raise
        return Joined(again, None)
    record_action(
        session,
        campaign,
        participant,
        "join",
        f"join:{participant.id}",
        other_id=referrer_id,
        now_us=now,
    )
    return Joined(participant, token)


def participant_by_token(session: Session, campaign: Campaign, token: str) -> Participant:
    """The participant whose personal link carries `token`; NotFound otherwise."""
    if not token or len(token) > 100:
        raise NotFound("no such participant")
    found = session.scalar(
        select(Participant).where(Participant.token_digest == token_digest(token))
    )
    if found is None or found.campaign_id != campaign.id:
        raise NotFound("no such participant")
    return found


def get_participant(session: Session, campaign: Campaign, participant_id: int) -> Participant:
    found = session.get(Participant, participant_id)
    if found is None or found.campaign_id != campaign.id:
        raise NotFound(f"participant {participant_id} is not in this campaign")
    return found


def count_participants(session: Session, campaign: Campaign) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Participant)
            .where(Participant.campaign_id == campaign.id)
        )
        or 0
    )


# --- the action log and scores ---------------------------------------------------------------


def record_action(
    session: Session,
    campaign: Campaign,
    participant: Participant,
    kind: str,
    idem_key: str,
    *,
    other_id: int | None = None,
    amount_fen: int | None = None,
    detail: dict[str, Any] | None = None,
    now_us: int | None = None,
) -> CampaignAction | None:
    """Log one action of a participant, once per (campaign, idem_key); None when it was
    already recorded (by this call's twin, perhaps at the same moment)."""
    if not ACTION_KIND_RE.match(kind or ""):
        raise InvalidParameter("kind: give 1-16 letters (a-z, _ or :)")
    if not idem_key or len(idem_key) > 100:
        raise InvalidParameter("idem_key: give 1-100 characters")
    if participant.campaign_id != campaign.id:
        raise InvalidParameter("participant: not in this campaign")
    seen = session.scalar(
        select(CampaignAction.id).where(
            CampaignAction.campaign_id == campaign.id, CampaignAction.idem_key == idem_key
        )
    )
    if seen is not None:
        return None
    action = CampaignAction(
        workspace_id=campaign.workspace_id,
        campaign_id=campaign.id,
        participant_id=participant.id,
        other_id=other_id,
        kind=kind,
        amount_fen=amount_fen,
        detail=detail,
        idem_key=idem_key,
        at_us=clock.now_us() if now_us is None else now_us,
    )
    try:
        with session.begin_nested():
            session.add(action)
    except IntegrityError:
        return None
    return action


def set_score(session: Session, participant: Participant, score: int, at_us: int) -> None:
    """Set a participant's score; `score_at_us` (the tie-break: who reached it first) moves
    only when the score changes. The Redis board follows after the commit."""
    if score == participant.score:
        return
    participant.score = score
    participant.score_at_us = at_us
    session.flush()
    from quanzi.campaigns.leaderboard import follow_score

    follow_score(session, participant)
