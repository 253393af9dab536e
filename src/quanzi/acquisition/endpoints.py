"""The public side of channel codes: /c/<code> (record, rotate, answer) and its QR images."""

from __future__ import annotations

import io
import logging
from typing import Annotated
from urllib.parse import quote

import httpx
import segno
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from quanzi.acquisition import channels as service
from quanzi.acquisition.models import ChannelCode
from quanzi.acquisition.visitors import Visitor, visitor_of
from quanzi.acquisition.writers import flush_visits_on_shutdown
from quanzi.core.workspaces.models import Workspace
from quanzi.db.engine import session_scope
from quanzi.web.auth import request_engine
from quanzi.web.console.render import render

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False, lifespan=flush_visits_on_shutdown)

QR_CACHE = "public, max-age=86400"


def _not_found(request: Request) -> Response:
    return render(request, "channels/public_missing.html", {}, status_code=404)


async def visit(request: Request) -> Response:
    """GET /c/<code>: record the visit (scan when ?s=qr; `?m=` a member's invite state), then
    redirect or show the assigned QR. Link and landing targets are answered from memory (the
    visit goes to the visit log); the WeCom targets rotate, in one transaction. A plain
    Starlette route: a printed code must answer whatever its query holds."""
    code = str(request.path_params["code"])
    s, m = request.query_params.get("s"), request.query_params.get("m")
    engine = request_engine(request)
    codes = service.public_codes(engine)
    known, found = codes.get(code)
    if not known:
        found = await run_in_threadpool(codes.load, code)
    if found is None:
        return _not_found(request)
    location = found.location()
    visitor = visitor_of(request)
    ref = service.member_ref(m)
    if location is not None:
        service.log_visit(engine, found, scan=s == "qr", visitor=visitor, ref=ref)
        return RedirectResponse(location, status_code=302)
    return await run_in_threadpool(_rotating_visit, request, code, s == "qr", visitor, ref)


router.add_route("/c/{code}", visit, methods=["GET"], include_in_schema=False)


def _rotating_visit(
    request: Request, code: str, scan: bool, visitor: Visitor, ref: str | None
) -> Response:
    with session_scope(request_engine(request)) as db:
        found = service.code_by_slug(db, code)
        if found is None or not found.active:
            return _not_found(request)
        ws = db.get(Workspace, found.workspace_id)
        got = service.record_visit(
            db,
            found,
            scan=scan,
            user_agent=visitor.user_agent,
            timezone=ws.timezone if ws else None,
            visitor=visitor,
            ref=ref,
        )
        kind, slug = found.target_kind, found.code
        image = service.qr_image(db, found, got.assigned)
        connected = service.wecom_connected(db, found.workspace_id)
        name = found.name
    return render(
        request,
        "channels/public_code.html",
        {
            "name": name,
            "image": f"/c/{quote(slug)}/way/{quote(got.assigned or '')}.png" if image else None,
            "kind": kind,
            "connected": connected,
        },
    )


def _qr(request: Request, code: str) -> segno.QRCode | None:
    with session_scope(request_engine(request), read_only=True) as db:
        found: ChannelCode | None = service.code_by_slug(db, code)
        if found is None or not found.active:
            return None
        slug = found.code
    return segno.make(scan_url(str(request.base_url), slug), error="m")


def scan_url(base_url: str, slug: str) -> str:
    """The absolute address a printed QR carries: /c/<code>?s=qr (counted as a scan)."""
    return f"{base_url.rstrip('/')}/c/{quote(slug)}?s=qr"


@router.get("/c/{code}/qr.svg")
def qr_svg(request: Request, code: str) -> Response:
    qr = _qr(request, code)
    if qr is None:
        return _not_found(request)
    buf = io.BytesIO()
    qr.save(buf, kind="svg", scale=10, border=4, xmldecl=False)
    return Response(
        buf.getvalue(),
        media_type="image/svg+xml",
        headers={
            "Cache-Control": QR_CACHE,
            "Content-Disposition": f'inline; filename="channel-{code}.svg"',
        },
    )


@router.get("/c/{code}/qr.png")
def qr_png(request: Request, code: str, scale: Annotated[int, Query(ge=1, le=40)] = 10) -> Response:
    qr = _qr(request, code)
    if qr is None:
        return _not_found(request)
    buf = io.BytesIO()
    qr.save(buf, kind="png", scale=scale, border=4)
    return Response(
        buf.getvalue(),
        media_type="image/png",
        headers={
            "Cache-Control": QR_CACHE,
            "Content-Disposition": f'inline; filename="channel-{code}.png"',
        },
    )


# WeCom's QR images, fetched once by the server: the visitor's browser makes no third-party
# request (and the CSP allows images from this site only).
_IMAGES: dict[str, bytes] = {}
MAX_IMAGES = 512
MAX_IMAGE_BYTES = 512 * 1024


@router.get("/c/{code}/way/{assignee}.png")
def way_image(request: Request, code: str, assignee: str) -> Response:
    with session_scope(request_engine(request)) as db:
        found = service.code_by_slug(db, code)
        if found is None or not found.active:
            return _not_found(request)
        url = service.qr_image(db, found, assignee)
    if url is None:
        return _not_found(request)
    body = _IMAGES.get(url)
    if body is None:
        try:
            got = httpx.get(url, timeout=5.0, follow_redirects=True)
            got.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("channel code %s: WeCom QR image not fetched: %s", code, exc)
            return Response("QR image unavailable", status_code=502, media_type="text/plain")
        body = got.content[:MAX_IMAGE_BYTES]
        if len(_IMAGES) >= MAX_IMAGES:
            _IMAGES.clear()
        _IMAGES[url] = body
    return Response(body, media_type="image/png", headers={"Cache-Control": QR_CACHE})
