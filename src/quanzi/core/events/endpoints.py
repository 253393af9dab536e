"""HTTP API of the event log: POST /api/v1/events (JSON Lines in) and POST /api/v1/rebuild."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO, Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from quanzi.config import get_settings
from quanzi.core.events.service import ingest_lines
from quanzi.db.engine import session_scope
from quanzi.jobs import enqueue_after_commit
from quanzi.jobs.tasks import rebuild_workspace
from quanzi.web.auth import CurrentWorkspace, request_engine

router = APIRouter(prefix="/api/v1", tags=["events"])

JSON_LINES_TYPES = ("application/x-ndjson", "application/jsonl", "text/plain", "application/json")
# Bodies up to this size stay in memory; larger ones spill to a temporary file.
SPOOL_IN_MEMORY = 1024 * 1024


class IngestResult(BaseModel):
    """What an ingest did; `errors` lists every refused line as `line N: reason`."""

    applied: int
    duplicates: int
    refused: int
    errors: list[str]
    warnings: list[str]


class ErrorDetail(BaseModel):
    """A request refused as a whole (auth, size, media type, parameters)."""

    detail: str


class JobAccepted(BaseModel):
    """A background job queued; it runs once the request's transaction has committed."""

    task_id: str
    task: str
    status: Literal["queued"] = "queued"


_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "One event (contracts/events.md); the body may also hold many, one per line.",
    "required": ["id", "type", "ts", "platform"],
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 200},
        "type": {"type": "string", "example": "member.joined"},
        "ts": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "platform": {"type": "string", "minLength": 1},
    },
    "additionalProperties": True,
}
_LINES_SCHEMA: dict[str, Any] = {
    "type": "string",
    "format": "binary",
    "description": "JSON Lines: one event object per line, UTF-8; blank lines are ignored.",
}
_TEXT_SCHEMA: dict[str, Any] = {k: v for k, v in _LINES_SCHEMA.items() if k != "format"}

INGEST_DESCRIPTION = """\
Ingest events in the platform's event format (contracts/events.md) as **JSON Lines**:
one JSON object per line, UTF-8. Send it as `application/x-ndjson`, `application/jsonl`,
`text/plain` or `application/json` (the body is read as JSON Lines in every case).

- Every line is checked on its own. A bad line is **refused with its reason** and not
  applied; **the good lines of the same body are still applied** (and stay applied), unless
  `strict=true`, which applies nothing when any line is bad.
- The answer is **200** when no line was refused, **400** with the same counts and every
  refused line as `"line N: reason"` in `errors` when any was.
- Re-sending an event id changes nothing: it counts as a duplicate (a warning says when its
  content differs from the stored one). Order does not matter.
- A 2xx/400 answer is sent only after the applied lines are committed to disk.
- Bodies over the configured limit (`QUANZI_MAX_INGEST_BODY`) get **413**; split the file,
  order does not matter.
"""


def _check_media_type(request: Request) -> None:
    header = request.headers.get("content-type")
    if header is None:
        return  # curl --data-binary without -H: take it as JSON Lines
    media_type, _, params = header.partition(";")
    media_type = media_type.strip().lower()
    if media_type not in JSON_LINES_TYPES:
        raise HTTPException(
            status_code=415,
            detail=f"unsupported Content-Type {media_type or header!r}: send JSON Lines as "
            + ", ".join(JSON_LINES_TYPES),
        )
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
            if charset not in ("utf-8", "utf8"):
                raise HTTPException(
                    status_code=415, detail=f"charset {charset!r} is not supported: send UTF-8"
                )


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        status_code=413,
        detail=f"body larger than {limit} bytes (QUANZI_MAX_INGEST_BODY): split it into several "
        "requests; the order of events does not matter",
    )


async def _spool_body(request: Request, limit: int) -> IO[bytes]:
    """The body in a spooled file, refused with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise _too_large(limit)
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    size = 0
    has_content = False
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            has_content = has_content or bool(chunk.strip())
            spool.write(chunk)
    except ClientDisconnect:
        spool.close()
        raise HTTPException(
            status_code=400, detail="the client went away before the body ended"
        ) from None
    except BaseException:
        spool.close()
        raise
    if not has_content:
        spool.close()
        raise HTTPException(
            status_code=400, detail="empty body: send one JSON event per line (JSON Lines)"
        )
    spool.seek(0)
    return spool


def _lines(spool: IO[bytes]) -> Iterator[bytes]:
    # Split on b"\n" only: that is what numbers the lines for `line N:` reasons.
    yield from spool


@router.post(
    "/events",
    summary="Ingest events (JSON Lines)",
    description=INGEST_DESCRIPTION,
    response_model=IngestResult,
    responses={
        400: {
            "model": IngestResult | ErrorDetail,
            "description": "Some lines were refused (the others are applied unless strict), "
            "or the body was empty",
        },
        401: {"model": ErrorDetail, "description": "Missing, invalid or revoked API token"},
        413: {"model": ErrorDetail, "description": "Body over the size limit"},
        415: {"model": ErrorDetail, "description": "Not a JSON Lines media type, or not UTF-8"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-ndjson": {"schema": _LINES_SCHEMA},
                "application/jsonl": {"schema": _LINES_SCHEMA},
                "text/plain": {"schema": _TEXT_SCHEMA},
                "application/json": {"schema": _EVENT_SCHEMA},
            },
        }
    },
)
async def post_events(
    request: Request,
    workspace: CurrentWorkspace,
    strict: Annotated[
        bool,
        Query(
            description="Apply nothing if any line is refused (all bad lines are still reported)."
        ),
    ] = False,
) -> JSONResponse:
    _check_media_type(request)
    engine = request_engine(request)
    spool = await _spool_body(request, get_settings().max_ingest_body)
    try:
        # Synchronous SQLAlchemy: a worker thread, so the event loop keeps serving; the
        # answer waits for it, so a 2xx always means committed.
        report = await run_in_threadpool(
            ingest_lines, engine, workspace.id, _lines(spool), strict=strict
        )
    finally:
        spool.close()
    body = report.as_dict()
    return JSONResponse(status_code=400 if body["refused"] else 200, content=body)


@router.post(
    "/rebuild",
    summary="Rebuild the projections from the event log (background job)",
    description="Queues a job that recomputes every projection of the token's workspace from "
    "its event log; the result is identical to the incrementally kept one. Answers 202 with "
    "the job id at once.",
    status_code=202,
    response_model=JobAccepted,
    responses={401: {"model": ErrorDetail, "description": "Missing, invalid or revoked API token"}},
)
def post_rebuild(request: Request, workspace: CurrentWorkspace) -> JobAccepted:
    # A session even though nothing is written yet: the job is queued by its commit, and
    # this transaction is where the request's own record (audit log) will go.
    with session_scope(request_engine(request)) as session:
        task_id = enqueue_after_commit(session, rebuild_workspace, workspace.id)
    return JobAccepted(task_id=task_id, task="rebuild_workspace")
