"""Public campaign pages (no login): GET /k/<slug> with its join form, the participant's own
page /k/<slug>/me/<token> (progress, invitees masked, rewards to claim, shipping address).

- The personal token is a secret (only its SHA-256 is stored); share links carry a **public
  ref** instead: `<participant id, hex>.<10 hex of HMAC-SHA256(secret key, id)>`, so a
  friend's link names the referrer without letting anyone open their page or guess others'.
- Server-rendered, mobile first, no scripts (strict CSP); the visitor's language from
  Accept-Language (English, else Chinese). Bad input is a 400 page with the message, never 500.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from quanzi.acquisition import landing
from quanzi.acquisition.visitors import visitor_of
from quanzi.campaigns import leaderboard, lottery, progress, rewards, service
from quanzi.campaigns.models import Campaign, Participant, Reward, RewardClaim
from quanzi.campaigns.rules import reward_ids
from quanzi.config import get_settings
from quanzi.core.workspaces.service import workspace_key
from quanzi.db.engine import session_scope
from quanzi.kit import clock
from quanzi.kit.errors import InvalidParameter, NotFound, QuanziError
from quanzi.kit.masking import mask_name
from quanzi.web.auth import request_engine
from quanzi.web.i18n import current_locale, gettext, money, translate_error

router = APIRouter(include_in_schema=False)

TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
COOKIE = "qzk"
COOKIE_MAX_AGE = 90 * 86400
MAX_FORM_BYTES = 8 * 1024
REF_RE = re.compile(r"^([0-9a-f]{1,8})\.([0-9a-f]{10})$")
TOP_SHOWN = 10
DEFAULT_CONSENT = (
    "I agree that the organiser stores my phone number and name to run this campaign "
    "and to contact me about my rewards."
)


def _visitor_locale(request: Request) -> None:
    wanted = request.headers.get("accept-language", "").strip().lower()
    current_locale.set("en" if wanted.startswith("en") else "zh-CN")


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["_"] = gettext
    return env


def _page(template: str, status: int = 200, **context: Any) -> Response:
    html = (
        _env()
        .get_template(f"public/{template}")
        .render(lang="en" if current_locale.get() == "en" else "zh-CN", **context)
    )
    return Response(
        html,
        status_code=status,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store"},
    )


def _problem(exc: QuanziError) -> Response:
    return _page("campaign_error.html", exc.status_code, error=translate_error(str(exc)))


# --- public refs ------------------------------------------------------------------------------


def _sig(participant_id: int) -> str:
    secret = get_settings().resolved_secret_key().encode()
    mac = hmac.new(secret, f"campaign-ref\0{participant_id}".encode(), hashlib.sha256)
    return mac.hexdigest()[:10]


def public_ref(participant_id: int) -> str:
    """The participant's id for share links: not their token, not guessable for others."""
    return f"{participant_id:x}.{_sig(participant_id)}"


def ref_id(ref: str) -> int:
    """The participant id of a public ref; InvalidParameter when it is not a genuine one."""
    m = REF_RE.fullmatch(ref or "")
    if m is not None:
        pid = int(m.group(1), 16)
        if hmac.compare_digest(_sig(pid), m.group(2)):
            return pid
    raise InvalidParameter("r: the share link is not valid")


def share_url(request: Request, slug: str, participant_id: int) -> str:
    return f"{str(request.base_url).rstrip('/')}/k/{slug}?r={public_ref(participant_id)}"


# --- what the pages show ----------------------------------------------------------------------


@dataclass(frozen=True)
class Prize:
    label: str  # "3" invites, "#1" rank, ...
    reward: str
    left: int | None  # stock left, None when unlimited


def _remaining(campaign: Campaign, now: int) -> str:
    """The countdown, server-rendered: 2天3小时 / 2 d 3 h."""
    if now < campaign.starts_at_us:
        return gettext("not started yet")
    left = max(0, campaign.ends_at_us - now) // clock.US
    if left == 0:
        return gettext("ended")
    days, rest = divmod(left, 86400)
    hours, rest = divmod(rest, 3600)
    return gettext("%(d)s d %(h)s h %(m)s min left") % {"d": days, "h": hours, "m": rest // 60}


def _rewards(session: Session, campaign: Campaign) -> dict[int, Reward]:
    wanted = reward_ids(campaign.rules)
    rows = session.scalars(
        select(Reward).where(Reward.id.in_(wanted), Reward.workspace_id == campaign.workspace_id)
    )
    return {r.id: r for r in rows}


def _prizes(session: Session, campaign: Campaign) -> list[Prize]:
    """What can be won: tiers (by invites) and the board's prizes (by rank)."""
    by_id = _rewards(session, campaign)
    out = []
    for t in progress.tiers(campaign):
        r = by_id.get(t["reward_id"])
        if r is not None:
            left = None if r.stock is None else max(0, r.stock - r.claimed)
            out.append(Prize(str(t["invites"]), r.name, left))
    for p in (campaign.rules.get("board") or {}).get("prizes", []):
        r = by_id.get(p["reward_id"])
        if r is not None:
            span = p["rank_from"], p["rank_to"]
            label = f"#{span[0]}" if span[0] == span[1] else f"#{span[0]}-{span[1]}"
            out.append(Prize(label, r.name, None))
    return out


def _name_of(session: Session, participant: Participant) -> str:
    if not participant.name_sealed:
        return gettext("Participant")
    key = workspace_key(session, participant.workspace_id)
    return mask_name(key.open("name", participant.name_sealed))


def _board(session: Session, campaign: Campaign) -> list[tuple[int, str, int]]:
    """The live top 10: (rank, masked name, score)."""
    ranked = leaderboard.top(session, campaign, TOP_SHOWN, backend="sql")
    people = {
        p.id: p
        for p in session.scalars(
            select(Participant).where(Participant.id.in_([r.participant_id for r in ranked]))
        )
    }
    return [(r.rank, _name_of(session, people[r.participant_id]), r.score) for r in ranked]


def _campaign_context(session: Session, campaign: Campaign, now: int) -> dict[str, Any]:
    copy = campaign.copy_text or {}
    return {
        "camp": campaign,
        "title": copy.get("title") or campaign.name,
        "description": copy.get("description", ""),
        "rules_text": copy.get("rules", ""),
        "countdown": _remaining(campaign, now),
        "open": service.is_open(campaign, now),
        "prizes": _prizes(session, campaign),
        "consent_text": copy.get("consent") or gettext(DEFAULT_CONSENT),
        "board": _board(session, campaign) if campaign.kind == "leaderboard" else [],
        "participants": service.count_participants(session, campaign),
        "prices": _prices(campaign),
        "lottery": _lottery(session, campaign) if campaign.kind == "lottery" else None,
    }


def _lottery(session: Session, campaign: Campaign) -> dict[str, Any]:
    """The draw as the page shows it: the commitment before, the seed and winners after, and
    the command that recomputes them from the published list."""
    published = lottery.published_list(session, campaign)
    names = {e.participant_id: e.name for e in published.entries}
    winners = [names.get(pid, "") for pid in lottery.winner_ids(session, campaign)]
    verify = None
    if published.seed and published.commitment:
        verify = (
            f"quanzi campaign verify-draw --seed {published.seed} --commitment "
            f"{published.commitment} --participants participants.json "
            f"--winners {published.winners}"
        )
    return {"list": published, "winners": winners, "verify": verify}


def _prices(campaign: Campaign) -> list[tuple[str, str]]:
    """The money a 拼团 or 砍价 page names: (what, ¥ amount)."""
    team = campaign.rules.get("team") or {}
    cut = campaign.rules.get("bargain") or {}
    shown = [
        (gettext("Price"), team.get("price_fen", cut.get("price_fen"))),
        (gettext("Group price"), team.get("group_price_fen")),
        (gettext("Lowest price after bargaining"), cut.get("floor_fen")),
    ]
    return [(what, money(fen)) for what, fen in shown if fen is not None]


# --- GET /k/<slug> and the join form ----------------------------------------------------------


@router.get("/k/{slug}")
def campaign_page(request: Request, slug: str) -> Response:
    """The campaign for a visitor: what it is, what can be won, the countdown and the form."""
    _visitor_locale(request)
    raw_ref = request.query_params.get("r", "")
    with session_scope(request_engine(request), read_only=True) as s:
        try:
            campaign = service.campaign_by_slug(s, slug)
            if raw_ref:
                ref_id(raw_ref)
        except QuanziError as exc:
            return _problem(exc)
        context = _campaign_context(s, campaign, clock.now_us())
        mine = _returning(s, campaign, request.cookies.get(COOKIE, ""))
    return _page("campaign.html", ref=raw_ref, values={}, error=None, mine=mine, **context)


def _returning(session: Session, campaign: Campaign, token: str) -> str | None:
    """The visitor's own page when their cookie names a participant of this campaign."""
    try:
        service.participant_by_token(session, campaign, token)
    except NotFound:
        return None
    return f"/k/{campaign.slug}/me/{token}"


async def _form(request: Request) -> dict[str, str]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise InvalidParameter("form: please send the form from the page")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidParameter("form: too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except UnicodeDecodeError:
        raise InvalidParameter("form: not valid UTF-8") from None
    except ValueError:
        raise InvalidParameter("form: too many fields") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value[:500])
    return form


@dataclass(frozen=True)
class JoinForm:
    name: str
    phone: str
    consent: bool
    honeypot: str
    ref: str


def _check_join(form: JoinForm, client: str) -> str:
    """The E.164 phone of a join form, checked without the database."""
    if not landing.PER_IP.hit(f"k:{client}"):
        raise landing.TooManyLeads("too many submissions from your network; please try again later")
    if len(form.name.strip()) > service.MAX_NAME:
        raise InvalidParameter("name: at most 30 characters")
    phone = landing.valid_phone(form.phone)
    if phone is None:
        raise InvalidParameter("phone: not a valid phone number")
    if not form.consent:
        raise InvalidParameter("consent: please agree to the terms to continue")
    if not landing.PER_PHONE.hit(f"k:{phone}"):
        raise landing.TooManyLeads("too many submissions from your network; please try again later")
    return phone


def _join(request: Request, slug: str, form: JoinForm) -> str:
    """Join (or find the visitor's existing participation); the personal page's URL, or the
    campaign page when an existing participant joins again from another device (their token
    is not stored, so it cannot be shown again)."""
    now = clock.now_us()
    with session_scope(request_engine(request)) as s:
        campaign = service.campaign_by_slug(s, slug)
        phone = _check_join(form, visitor_of(request).rate_key)
        referrer = ref_id(form.ref) if form.ref else None
        if referrer is not None:
            service.get_participant(s, campaign, referrer)
        joined = service.join(
            s, campaign, phone=phone, name=form.name, referrer_id=referrer, now_us=now
        )
        if joined.token is None:
            raise InvalidParameter(
                "phone: this number already takes part; open the link you were given then"
            )
        consent = (campaign.copy_text or {}).get("consent") or DEFAULT_CONSENT
        p = joined.participant
        service.record_action(
            s, campaign, p, "consent", f"consent:{p.id}", detail={"text": consent}, now_us=now
        )
        return f"/k/{slug}/me/{joined.token}"


@router.post("/k/{slug}/join")
async def join_campaign(request: Request, slug: str) -> Response:
    """The join form: a participant with a phone (and name), then their personal page."""
    from starlette.concurrency import run_in_threadpool

    _visitor_locale(request)
    values: dict[str, str] = {}
    try:
        raw = await _form(request)
        values = {k: raw.get(k, "") for k in ("name", "phone")}
        form = JoinForm(
            raw.get("name", ""),
            raw.get("phone", ""),
            raw.get("consent", "") in ("1", "on", "true"),
            raw.get("website", ""),
            raw.get("r", ""),
        )
        if form.honeypot:  # a bot: answered like a success, stored nowhere
            return RedirectResponse(f"/k/{slug}", status_code=303)
        target = await run_in_threadpool(_join, request, slug, form)
    except QuanziError as exc:
        return await run_in_threadpool(_join_problem, request, slug, exc, values)
    response = RedirectResponse(target, status_code=303)
    token = target.rsplit("/", 1)[1]
    response.set_cookie(
        COOKIE, token, max_age=COOKIE_MAX_AGE, path=f"/k/{slug}", httponly=True, samesite="lax"
    )
    return response


def _join_problem(
    request: Request, slug: str, exc: QuanziError, values: dict[str, str]
) -> Response:
    with session_scope(request_engine(request), read_only=True) as s:
        try:
            campaign = service.campaign_by_slug(s, slug)
        except NotFound as missing:
            return _problem(missing)
        context = _campaign_context(s, campaign, clock.now_us())
    return _page(
        "campaign.html",
        exc.status_code,
        ref=request.query_params.get("r", ""),
        values=values,
        error=translate_error(str(exc)),
        mine=None,
        **context,
    )


# --- the participant's own page ---------------------------------------------------------------


@dataclass(frozen=True)
class TierView:
    invites: int
    reward: str
    reached: bool
    claim: RewardClaim | None


def _tiers(
    session: Session, campaign: Campaign, participant: Participant, valid: int
) -> list[TierView]:
    by_id = _rewards(session, campaign)
    claims = {c.reason: c for c in rewards.claims_of(session, participant)}
    out = []
    for t in progress.tiers(campaign):
        r = by_id.get(t["reward_id"])
        out.append(
            TierView(
                t["invites"],
                r.name if r is not None else "",
                valid >= t["invites"],
                claims.get(progress.tier_reason(t["invites"])),
            )
        )
    return out


def _me_context(
    request: Request, session: Session, campaign: Campaign, participant: Participant
) -> dict[str, Any]:
    now = clock.now_us()
    context = _campaign_context(session, campaign, now)
    got = progress.progress_of(session, campaign, participant, now)
    invitees = [
        (mask_name(i.name or "") or "*", i.status)
        for i in progress.invitees_of(session, campaign, participant, now)
    ]
    claims = rewards.claims_of(session, participant)
    names = {r.id: r.name for r in session.scalars(select(Reward).where(
        Reward.id.in_([c.reward_id for c in claims])
    ))}  # fmt: skip
    physical = any(r.kind == "physical" for r in _rewards(session, campaign).values()) or bool(
        participant.address_sealed
    )
    return context | {
        "me": participant,
        "my_name": _name_of(session, participant),
        "progress": got,
        "tier_views": _tiers(session, campaign, participant, got.valid),
        "invitees": invitees,
        "claims": [(names.get(c.reward_id, ""), c) for c in claims],
        "rank": leaderboard.rank_of(session, campaign, participant, backend="sql"),
        "share": share_url(request, campaign.slug, participant.id),
        "physical": physical,
        "has_address": bool(participant.address_sealed),
        "base": f"/k/{campaign.slug}/me/{request.path_params['token']}",
    }


@router.get("/k/{slug}/me/{token}")
def my_page(request: Request, slug: str, token: str) -> Response:
    """The participant's page: progress, share link, invitees (masked), rewards."""
    _visitor_locale(request)
    with session_scope(request_engine(request), read_only=True) as s:
        try:
            campaign = service.campaign_by_slug(s, slug)
            participant = service.participant_by_token(s, campaign, token)
        except QuanziError as exc:
            return _problem(exc)
        context = _me_context(request, s, campaign, participant)
    return _page("campaign_me.html", error=None, done=request.query_params.get("ok"), **context)


def _me_action(request: Request, slug: str, token: str, form: dict[str, str]) -> None:
    with session_scope(request_engine(request)) as s:
        campaign = service.campaign_by_slug(s, slug)
        participant = service.participant_by_token(s, campaign, token)
        what = form.get("do", "")
        if what == "claim":
            raw = form.get("invites", "")
            if not raw.isascii() or not raw.isdigit() or len(raw) > 7:
                raise InvalidParameter("invites: not a tier of this campaign")
            progress.claim_tier(s, campaign, participant, int(raw))
        elif what == "address":
            rewards.set_address(
                s,
                participant,
                {k: form.get(k, "") for k in ("name", "phone", "region", "detail")},
            )
        else:
            raise InvalidParameter("do: not an action of this page")


@router.post("/k/{slug}/me/{token}")
async def my_page_action(request: Request, slug: str, token: str) -> Response:
    """The personal page's buttons: claim a reached tier (once), save the shipping address."""
    from starlette.concurrency import run_in_threadpool

    _visitor_locale(request)
    try:
        form = await _form(request)
        await run_in_threadpool(_me_action, request, slug, token, form)
    except QuanziError as exc:
        return await run_in_threadpool(_me_problem, request, slug, token, exc)
    return RedirectResponse(f"/k/{slug}/me/{token}?ok={form.get('do')}", status_code=303)


def _me_problem(request: Request, slug: str, token: str, exc: QuanziError) -> Response:
    with session_scope(request_engine(request), read_only=True) as s:
        try:
            campaign = service.campaign_by_slug(s, slug)
            participant = service.participant_by_token(s, campaign, token)
        except NotFound as missing:
            return _problem(missing)
        context = _me_context(request, s, campaign, participant)
    return _page(
        "campaign_me.html", exc.status_code, error=translate_error(str(exc)), done=None, **context
    )


@router.get("/k/{slug}/participants.json")
def lottery_participants(request: Request, slug: str) -> Response:
    """A lottery's published list (masked names, ids in draw order) for `verify-draw`."""
    _visitor_locale(request)
    with session_scope(request_engine(request), read_only=True) as s:
        try:
            campaign = service.campaign_by_slug(s, slug)
            if campaign.kind != "lottery":
                raise NotFound("no such campaign")
        except QuanziError as exc:
            return _problem(exc)
        body = lottery.published_list(s, campaign).as_json()
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})
