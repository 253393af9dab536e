"""A lead's personal contact code in public: /l/<token> (the thank-you page again, with the
code's progress) and /l/<token>.png (WeCom's QR image, fetched by the server: the visitor's
browser makes no third-party request). The token is personal_ways.lead_token: sealed ids."""

from __future__ import annotations

import logging
import time

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from quanzi.acquisition import landing, personal_ways
from quanzi.acquisition.models import LandingPage, Lead
from quanzi.acquisition.states import lead_state
from quanzi.connectors.actions import run_action
from quanzi.db.engine import session_scope
from quanzi.kit.errors import NotFound
from quanzi.web.auth import request_engine

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

# A way still pending when its image is asked for: run it here (the claim makes a run by the
# worker meanwhile a no-op), then look again for up to WAIT_S seconds.
WAIT_S = 3.0
POLL_S = 0.2
MAX_IMAGE_BYTES = 512 * 1024
MAX_IMAGES = 512
_IMAGES: dict[str, tuple[bytes, str]] = {}
CACHE = "private, max-age=86400"


def fetch_image(url: str) -> tuple[bytes, str]:
    """WeCom's QR image (bytes, content type); httpx errors propagate."""
    got = httpx.get(url, timeout=5.0, follow_redirects=True)
    got.raise_for_status()
    kind = got.headers.get("content-type", "").split(";")[0].strip()
    return got.content[:MAX_IMAGE_BYTES], kind if kind.startswith("image/") else "image/png"


def _lead_of(token: str) -> tuple[int, int]:
    ids = personal_ways.read_lead_token(token)
    if ids is None:
        raise NotFound("this code does not exist")
    return ids


def _way_url(request: Request, ws_id: int, lead_id: int, wait: bool) -> str | None:
    engine = request_engine(request)
    state = lead_state(lead_id)
    deadline = time.monotonic() + (WAIT_S if wait else 0)
    ran = False
    while True:
        with session_scope(engine, read_only=True) as s:
            action = personal_ways.way_of(s, ws_id, state)
            url = personal_ways.qr_image_url(action)
            pending = action is not None and action.state in ("pending", "running")
            action_id = action.id if action is not None else None
        if url is not None or not pending or action_id is None:
            return url
        if not ran:
            ran = True
            run_action(engine, action_id)
            continue
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL_S)


@router.get("/l/{token}.png")
def lead_code_image(request: Request, token: str) -> Response:
    ws_id, lead_id = _lead_of(token)
    url = _way_url(request, ws_id, lead_id, wait=True)
    if url is None:
        return Response("not ready", status_code=404, media_type="text/plain")
    hit = _IMAGES.get(url)
    if hit is None:
        try:
            hit = fetch_image(url)
        except httpx.HTTPError as exc:
            log.warning("lead %s: WeCom QR image not fetched: %s", lead_id, exc)
            return Response("QR image unavailable", status_code=502, media_type="text/plain")
        if len(_IMAGES) >= MAX_IMAGES:
            _IMAGES.clear()
        _IMAGES[url] = hit
    body, kind = hit
    return Response(body, media_type=kind, headers={"Cache-Control": CACHE})


@router.get("/l/{token}")
def lead_code_page(request: Request, token: str) -> HTMLResponse:
    """The landing page's thank-you state again, with the code as it is now."""
    ws_id, lead_id = _lead_of(token)
    with session_scope(request_engine(request), read_only=True) as s:
        lead = s.get(Lead, lead_id)
        page = s.get(LandingPage, lead.page_id) if lead and lead.page_id else None
        if lead is None or page is None or lead.workspace_id != ws_id:
            raise NotFound("this code does not exist")
        shown = landing.published_version(s, page.slug, lead.version_id)
        action = personal_ways.way_of(s, ws_id, lead_state(lead_id))
    personal = None
    if action is not None and action.state != "failed":
        ready = personal_ways.qr_image_url(action) is not None
        personal = personal_ways.LeadCode(token, ready)
    html = landing.render_page(page.slug, shown.content, thanks=True, personal=personal)
    response = HTMLResponse(html)
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
        "base-uri 'none'; frame-ancestors 'none'"
    )
    response.headers["Cache-Control"] = "no-store"
    return response
