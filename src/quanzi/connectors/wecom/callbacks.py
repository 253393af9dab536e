"""The WeCom callback hook, `/hooks/wecom/{workspace}`: verify, store, answer; process after.

GET answers WeCom's URL check with the bare decrypted echostr. POST verifies the signature and
timestamp, decrypts, stores the event in the workspace's inbox (a retried delivery counts on
the same row), commits, answers `success` and queues the processing job after the commit.
Anything that is not WeCom's, or not for this workspace, is refused with 4xx and logged
(never with the payload or a secret), and nothing is stored.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from quanzi.connectors.wecom import service
from quanzi.connectors.wecom.crypto import (
    MAX_BODY_BYTES,
    BadCallback,
    CallbackTooLarge,
    xml_fields,
)
from quanzi.connectors.wecom.jobs import process_wecom_callbacks
from quanzi.core.workspaces.service import get_workspace
from quanzi.db.engine import session_scope
from quanzi.jobs import enqueue_after_commit
from quanzi.kit.errors import QuanziError
from quanzi.web.auth import request_engine

log = logging.getLogger(__name__)

router = APIRouter(tags=["hooks"])

Param = Annotated[str, Query(min_length=1, max_length=1024)]


def _secrets(engine: Engine, workspace: str) -> tuple[int, service.WecomSecrets]:
    # Read-only: a flood of forged requests never takes SQLite's write lock.
    with session_scope(engine, read_only=True) as s:
        ws = get_workspace(s, workspace)
        return ws.id, service.secrets(s, ws.id)


def _refused(workspace: str, request: Request, exc: QuanziError) -> None:
    client = request.client.host if request.client else "unknown"
    log.warning(
        "WeCom callback for %r refused (%s %s from %s): %s",
        workspace,
        request.method,
        exc.status_code,
        client,
        exc,
    )


@router.get("/hooks/wecom/{workspace}", response_class=PlainTextResponse, summary="WeCom URL check")
def verify_url(
    request: Request,
    workspace: str,
    msg_signature: Param,
    timestamp: Param,
    nonce: Param,
    echostr: Param,
) -> PlainTextResponse:
    """Answer WeCom's URL verification with the decrypted echostr (bare plaintext)."""
    try:
        _ws_id, secrets = _secrets(request_engine(request), workspace)
        plain = secrets.callback_crypto().verify_url(msg_signature, timestamp, nonce, echostr)
    except QuanziError as exc:
        _refused(workspace, request, exc)
        raise
    return PlainTextResponse(plain)


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise CallbackTooLarge(f"body larger than {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise CallbackTooLarge(f"body larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _receive(
    engine: Engine, workspace: str, body: bytes, msg_signature: str, timestamp: str, nonce: str
) -> bool:
    """Verify and store one delivery; True when it was new (or still unprocessed)."""
    ws_id, secrets = _secrets(engine, workspace)
    xml = secrets.callback_crypto().open_delivery(body, msg_signature, timestamp, nonce)
    fields = xml_fields(xml)  # refuses a hostile plaintext before anything is stored
    event = fields.get("Event") or fields.get("MsgType") or ""
    if not isinstance(event, str):
        raise BadCallback("the callback has no event type")
    change = fields.get("ChangeType")
    with session_scope(engine) as s:
        row, _new = service.store_callback(
            s, ws_id, xml, event, change if isinstance(change, str) else None
        )
        service.record_callback(s, ws_id)
        queue = row.processed_at_us is None
        if queue:
            enqueue_after_commit(s, process_wecom_callbacks, ws_id)
    return queue


@router.post("/hooks/wecom/{workspace}", response_class=PlainTextResponse, summary="WeCom events")
async def receive(
    request: Request,
    workspace: str,
    msg_signature: Param,
    timestamp: Param,
    nonce: Param,
) -> PlainTextResponse:
    """Store a WeCom event durably, then answer `success` (processing runs as a job)."""
    try:
        body = await _body(request)
        await run_in_threadpool(
            _receive, request_engine(request), workspace, body, msg_signature, timestamp, nonce
        )
    except QuanziError as exc:
        _refused(workspace, request, exc)
        raise
    return PlainTextResponse("success")
