"""Public images: GET /m/<id>-<sha8>.<jpg|png>, immutable (a new image gets a new name)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from quanzi.acquisition.media import media_by_name
from quanzi.db.engine import session_scope
from quanzi.web.auth import request_engine

router = APIRouter(include_in_schema=False)

IMMUTABLE = "public, max-age=31536000, immutable"


@router.get("/m/{name}")
def media_file(name: str, request: Request) -> Response:
    with session_scope(request_engine(request), read_only=True) as s:
        found = media_by_name(s, name)
    if found is None:
        return PlainTextResponse("no such image", status_code=404)
    data, content_type = found
    return Response(
        data,
        media_type=content_type,
        headers={
            "Cache-Control": IMMUTABLE,
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'",
        },
    )
