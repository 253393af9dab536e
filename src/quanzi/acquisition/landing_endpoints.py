"""Public landing pages: GET /p/<slug> (a published version, from memory) and its lead form.

- GET: the page's live versions come from memory (`landing.PublicPages`, re-read at most every
  `landing.LIVE_S`), the encoded HTML per version and channel too; the view goes to the visit
  log (`writers.VISITS`). No database transaction per view.
- POST /p/<slug>/lead: the form is read here with hard limits (size, fields, UTF-8), checked
  without the database, then stored through the group commit (`writers.GroupCommit`): the
  thank-you answer is sent only after the lead's transaction committed.

Garbage never gets a 500 or FastAPI's 422 JSON: it is a 400 with the page and a message in the
visitor's language (Accept-Language: English, else Chinese).
"""

from __future__ import annotations

import asyncio
import base64
import random
import re
import secrets
from functools import partial
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from quanzi.acquisition import landing, lead_links, personal_ways
from quanzi.acquisition.channels import CHANNEL_RE
from quanzi.acquisition.models import Lead
from quanzi.acquisition.personal_endpoints import router as personal_router
from quanzi.acquisition.personal_ways import LeadCode
from quanzi.acquisition.serving import PerDatabase
from quanzi.acquisition.visitors import Visitor, visitor_of
from quanzi.acquisition.writers import GroupCommit, flush_visits_on_shutdown
from quanzi.kit.errors import InvalidParameter, NotFound
from quanzi.web.auth import request_engine
from quanzi.web.i18n import current_locale, translate_error

router = APIRouter(include_in_schema=False, lifespan=flush_visits_on_shutdown)
router.include_router(personal_router)  # /l/<token>: a lead's personal contact code

VISITOR_COOKIE = "qzv"
VISITOR_RE = re.compile(r"^[A-Za-z0-9_-]{16,32}$")
VERSION_RE = re.compile(r"^[0-9]{1,10}$")

MAX_FORM_BYTES = 32 * 1024  # the form's fields, percent-encoded (5 extra fields of 200 CJK)
MAX_FORM_FIELDS = 40
# Longest value accepted per field, before the service's own checks (which name the field).
FIELD_LIMITS = {"name": 100, "phone": 40, "consent": 10, "website": 200, "v": 12}
EXTRA_LIMIT = 1000

# The page has inline styles and no scripts at all.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HTML = "text/html; charset=utf-8"


def _visitor_locale(request: Request) -> None:
    wanted = request.headers.get("accept-language", "").strip().lower()
    current_locale.set("en" if wanted.startswith("en") else "zh-CN")


def _page(body: bytes | str, status: int = 200, *, gzipped: bool = False) -> Response:
    headers = {"Content-Security-Policy": CSP, "Vary": "Accept-Encoding"}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return Response(body, status_code=status, media_type=HTML, headers=headers)


def _channel(raw: str | None) -> str | None:
    """The visitor's channel (`?c=`), a channel key; InvalidParameter when it is not one."""
    if raw is None or raw == "":
        return None
    if not CHANNEL_RE.fullmatch(raw):
        raise InvalidParameter("c: the link's channel is not valid")
    return raw


async def _live(request: Request, slug: str) -> tuple[landing.PublicPages, landing.LivePage]:
    pages = landing.public_pages(request_engine(request))
    live = None
    if landing.SLUG_RE.fullmatch(slug):
        known, live = pages.fresh(slug)
        if not known:
            live = await run_in_threadpool(pages.load, slug)
    if live is None:
        raise NotFound("this page does not exist or is no longer published")
    return pages, live


async def _version(pages: landing.PublicPages, version_id: int, slug: str) -> landing.Published:
    found = pages.version(version_id)
    if found is None:
        found = await run_in_threadpool(pages.load_version, version_id, slug)
    return found


def _problem(
    page: landing.Published, exc: InvalidParameter | landing.TooManyLeads, values: dict[str, str]
) -> Response:
    html = landing.render_page(
        page.slug,
        page.content,
        error=translate_error(str(exc)),
        values=values,
        version_id=page.version_id,
    )
    return _page(html, exc.status_code)


def _new_visitor_id() -> str:
    # An A/B bucket, not a secret: a per-process generator seeded from the OS is enough, and
    # much cheaper than os.urandom per first visit.
    return base64.urlsafe_b64encode(_IDS.getrandbits(96).to_bytes(12, "big")).decode()


_IDS = random.Random(secrets.token_bytes(32))
VISITOR_MAX_AGE = 90 * 86400


async def landing_page(request: Request) -> Response:
    """GET /p/<slug>: a plain Starlette route (no FastAPI parameter machinery: it is the
    hottest public route); the slug is checked here."""
    slug = str(request.path_params["slug"])
    pages, live = await _live(request, slug)
    visitor_id = request.cookies.get(VISITOR_COOKIE, "")
    fresh = not VISITOR_RE.fullmatch(visitor_id)
    if fresh:
        visitor_id = _new_visitor_id()
    page = await _version(pages, live.version_for(visitor_id), slug)
    try:
        channel = _channel(request.query_params.get("c"))
    except InvalidParameter as exc:
        _visitor_locale(request)
        return _problem(page, exc, {})
    landing.record_visit(pages.engine, page, channel, visitor_of(request))
    gzipped = "gzip" in request.headers.get("accept-encoding", "")
    response = _page(page.body(channel, gzipped), gzipped=gzipped)
    if fresh:  # keeps an A/B visitor on their variant; nothing else is read from it
        response.headers.append(
            "set-cookie",
            f"{VISITOR_COOKIE}={visitor_id}; HttpOnly; Max-Age={VISITOR_MAX_AGE}; Path=/; "
            "SameSite=lax",
        )
    return response


router.add_route("/p/{slug}", landing_page, methods=["GET"], include_in_schema=False)


async def _read_form(request: Request) -> dict[str, str]:
    """The urlencoded form (first value of each field), within the limits; InvalidParameter
    saying what is wrong with it otherwise."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise InvalidParameter("form: please send the form from the page")
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise InvalidParameter("form: too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise InvalidParameter("form: too large")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except UnicodeDecodeError:
        raise InvalidParameter("form: not valid UTF-8") from None
    except ValueError:
        raise InvalidParameter("form: too many fields") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    for key, value in form.items():
        limit = FIELD_LIMITS.get(key, EXTRA_LIMIT)
        if len(value) > limit:
            raise InvalidParameter(_too_long(key))
    return form


def _too_long(key: str) -> str:
    """The message for an over-long field: the one the service gives for it."""
    if key == "name":
        return "name: at most 30 characters"
    if key == "phone":
        return "phone: not a valid phone number"
    if key == "consent":
        return "consent: please agree to the terms to continue"
    if key.startswith("f_"):
        return f"{key[2:]}: at most 200 characters"
    return "form: a field is too long"


def _form_version(form: dict[str, str]) -> int | None:
    raw = form.get("v", "")
    if not raw:
        return None
    if not VERSION_RE.fullmatch(raw) or not 1 <= int(raw) < 2**31:  # an INTEGER column
        raise InvalidParameter("v: not a version of this page")
    return int(raw)


def _store(
    page: landing.Published,
    checked: landing.CheckedLead,
    channel: str | None,
    visitor: Visitor,
    session: Session,
) -> Lead:
    """Run in the group commit, in the submission's own savepoint: the lead."""
    return landing.store_lead(session, page, checked, channel=channel, visitor=visitor)


def _finish(session: Session, leads: list[Lead]) -> list[LeadCode | None]:
    """Once per group commit: link the batch's leads to members with their phones (one UPDATE
    per workspace) and give each its personal contact code when its channel is a WeCom
    contact code (looked up once per channel)."""
    by_ws: dict[int, list[int]] = {}
    for lead in leads:
        by_ws.setdefault(lead.workspace_id, []).append(lead.id)
    for ws_id, ids in by_ws.items():
        lead_links.link_stored_leads(session, ws_id, ids)
    contact: dict[tuple[int, str | None], bool] = {}
    out: list[LeadCode | None] = []
    for lead in leads:
        seen = (lead.workspace_id, lead.channel)
        if seen not in contact:
            contact[seen] = personal_ways.contact_code_for(session, lead) is not None
        out.append(personal_ways.for_lead(session, lead) if contact[seen] else None)
    return out


lead_commit = PerDatabase(partial(GroupCommit, finish=_finish))


async def submit_lead(request: Request) -> Response:
    """POST /p/<slug>/lead (a plain Starlette route, like the page: the form is read here)."""
    slug = str(request.path_params["slug"])
    _visitor_locale(request)
    pages, live = await _live(request, slug)
    form: dict[str, str] = {}
    try:
        channel = _channel(request.query_params.get("c"))
        form = await _read_form(request)
        version_id = _form_version(form)
    except InvalidParameter as exc:
        shown = await _version(pages, live.version_a, slug)
        return _problem(shown, exc, _values(form, None))
    page = pages.form_version(live, version_id)
    if page is None:
        page = await run_in_threadpool(pages.load_form_version, live, version_id)
    extra = {k[2:]: v for k, v in form.items() if k.startswith("f_")}
    lead_form = landing.LeadForm(
        form.get("name", ""),
        form.get("phone", ""),
        form.get("consent", "") in ("1", "on", "true"),
        form.get("website", ""),
        extra,
    )
    visitor = visitor_of(request)
    personal = None
    try:
        checked = landing.check_lead(page, lead_form, client=visitor.rate_key)
        if checked is not None:
            stored = lead_commit(pages.engine).submit(
                partial(_store, page, checked, channel, visitor)
            )
            personal = await asyncio.wrap_future(stored)
    except IntegrityError:
        # The same phone submitted at the same instant through another process: it is stored.
        personal = None
    except (InvalidParameter, landing.TooManyLeads) as exc:
        return _problem(page, exc, _values(form, channel))
    if personal is None:
        return _page(page.thanks_html())
    return _page(landing.render_page(slug, page.content, thanks=True, personal=personal))


router.add_route("/p/{slug}/lead", submit_lead, methods=["POST"], include_in_schema=False)


def _values(form: dict[str, str], channel: str | None) -> dict[str, str]:
    """What the visitor typed, shown again in the form (the template escapes it)."""
    shown = {k: v for k, v in form.items() if k in ("name", "phone") or k.startswith("f_")}
    return {**shown, "c": channel or ""}
