"""Public landing pages: GET /p/<slug> (a published version, from memory) and its lead form."""

from __future__ import annotations

import re
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import IntegrityError

from quanzi.acquisition import landing, lead_links, personal_ways
from quanzi.acquisition.personal_endpoints import router as personal_router
from quanzi.db.engine import session_scope
from quanzi.kit.errors import InvalidParameter, NotFound
from quanzi.web.auth import request_engine
from quanzi.web.i18n import current_locale, translate_error

router = APIRouter(include_in_schema=False)
router.include_router(personal_router)  # /l/<token>: a lead's personal contact code

Channel = Annotated[str | None, Query(alias="c", max_length=30, pattern=r"^[A-Za-z0-9_-]*$")]


def ua_class(user_agent: str) -> str:
    """A coarse device class; the User-Agent itself is not kept."""
    ua = user_agent.lower()
    if "wxwork" in ua:
        return "wecom"
    if "micromessenger" in ua:
        return "wechat"
    if any(b in ua for b in ("bot", "spider", "crawl", "curl", "python", "wget")):
        return "bot"
    if "iphone" in ua or "ipad" in ua:
        return "ios"
    if "android" in ua:
        return "android"
    if "windows" in ua or "macintosh" in ua or "x11" in ua:
        return "desktop"
    return "other"


def _visitor_locale(request: Request) -> None:
    wanted = request.headers.get("accept-language", "").lower()
    current_locale.set("en" if wanted.startswith("en") else "zh-CN")


def _page_headers(response: HTMLResponse) -> HTMLResponse:
    # The page has inline styles and no scripts at all.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
    return response


VISITOR_COOKIE = "qzv"
VISITOR_RE = re.compile(r"^[A-Za-z0-9_-]{16,32}$")


@router.get("/p/{slug}")
def landing_page(slug: str, request: Request, channel: Channel = None) -> HTMLResponse:
    engine = request_engine(request)
    visitor = request.cookies.get(VISITOR_COOKIE, "")
    fresh = not VISITOR_RE.match(visitor)
    if fresh:
        visitor = secrets.token_urlsafe(12)
    with session_scope(engine, read_only=True) as s:
        page = landing.published(s, slug, visitor)
    with session_scope(engine) as s:
        landing.record_visit(s, page, channel, ua_class(request.headers.get("user-agent", "")))
    response = _page_headers(HTMLResponse(page.html))
    if fresh:  # keeps an A/B visitor on their variant; nothing else is read from it
        response.set_cookie(
            VISITOR_COOKIE, visitor, max_age=90 * 86400, httponly=True, samesite="lax"
        )
    return response


@router.post("/p/{slug}/lead")
async def submit_lead(
    slug: str,
    request: Request,
    channel: Channel = None,
    name: Annotated[str, Form(max_length=100)] = "",
    phone: Annotated[str, Form(max_length=40)] = "",
    consent: Annotated[str, Form(max_length=10)] = "",
    website: Annotated[str, Form(max_length=200)] = "",
    v: Annotated[int | None, Form(ge=1, le=2**31)] = None,
) -> HTMLResponse:
    _visitor_locale(request)
    form = await request.form()
    extra = {k[2:]: v[:1000] for k, v in form.items() if k.startswith("f_") and isinstance(v, str)}
    engine = request_engine(request)
    with session_scope(engine, read_only=True) as s:
        page = landing.published_version(s, slug, v)
    values = {
        "name": name,
        "phone": phone,
        "c": channel or "",
        **{f"f_{k}": v for k, v in extra.items()},
    }
    client = request.client.host if request.client else "unknown"
    lead_form = landing.LeadForm(name, phone, consent in ("1", "on", "true"), website, extra)
    personal = None
    try:
        with session_scope(engine) as s:
            lead = landing.submit_lead(s, page, lead_form, channel=channel, client=client)
            if lead is not None:  # a member with this phone already? its personal code
                lead_links.link_lead(s, lead)
                personal = personal_ways.for_lead(s, lead)
    except IntegrityError:
        # The same phone submitted twice at the same instant: the other request stored it.
        personal = None
    except (InvalidParameter, landing.TooManyLeads) as exc:
        html = landing.render_page(
            slug,
            page.content,
            error=translate_error(str(exc)),
            values=values,
            version_id=page.version_id,
        )
        return _page_headers(HTMLResponse(html, status_code=exc.status_code))
    except NotFound:
        raise
    html = landing.render_page(slug, page.content, thanks=True, personal=personal)
    return _page_headers(HTMLResponse(html))
