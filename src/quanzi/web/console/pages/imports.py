"""The import page: upload a JSON Lines events file and see what happened to each line."""

from __future__ import annotations

import codecs
import time
from collections.abc import Iterator
from typing import IO, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from quanzi.config import get_settings
from quanzi.core.events.service import ingest_lines
from quanzi.kit.errors import InvalidParameter, NotFound, QuanziError
from quanzi.team.models import AuditEntry
from quanzi.team.roles import Perm
from quanzi.web.auth import request_engine
from quanzi.web.console.deps import Principal, need
from quanzi.web.console.render import render
from quanzi.web.i18n import translate_error

router = APIRouter(include_in_schema=False)

SUFFIXES = (".jsonl", ".ndjson", ".json", ".txt")
SHOWN_LINES = 200  # refused lines (and warnings) kept for the result page
# Room for the multipart envelope around the file when the declared length is checked.
ENVELOPE = 64 * 1024
CHUNK = 1024 * 1024


class FileTooLarge(QuanziError):
    status_code = 413


class NotJsonLines(QuanziError):
    status_code = 415


def _mib(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:.0f} MB"
    return f"{-(-n // 1024)} KB"


def _too_large(limit: int) -> FileTooLarge:
    return FileTooLarge(
        f"the file is larger than {_mib(limit)}: split it into several files "
        "(the order of events does not matter)"
    )


async def declared_size(request: Request) -> None:
    """Refuse an upload whose declared length is over the limit before reading it."""
    declared = request.headers.get("content-length", "")
    limit = get_settings().max_ingest_body
    if declared.strip().isdigit() and int(declared) > limit + ENVELOPE:
        raise _too_large(limit)


async def upload_form(request: Request) -> FormData:
    """The multipart form (need() has already read it to check the CSRF token)."""
    return await request.form(max_files=1, max_fields=10)


def _check_utf8(fh: IO[bytes]) -> int:
    """The file's size; InvalidParameter naming the line when it is not UTF-8 text."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    size, line = 0, 1
    fh.seek(0)
    while chunk := fh.read(CHUNK):
        try:
            decoder.decode(chunk)
            if b"\x00" in chunk:
                raise UnicodeDecodeError("utf-8", chunk, 0, 1, "NUL byte")
        except UnicodeDecodeError as exc:
            line += chunk[: exc.start].count(b"\n")
            raise InvalidParameter(
                f"the file is not UTF-8 text (line {line}): save it as UTF-8 and upload it again"
            ) from None
        line += chunk.count(b"\n")
        size += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise InvalidParameter(
            f"the file is not UTF-8 text (line {line}): save it as UTF-8 and upload it again"
        ) from None
    fh.seek(0)
    return size


def _lines(fh: IO[bytes]) -> Iterator[bytes]:
    """The file's lines, numbered like the CLI's; a UTF-8 byte order mark is dropped."""
    first = True
    for line in fh:
        if first:
            first = False
            line = line.removeprefix(codecs.BOM_UTF8)
        yield line


def _import_page(
    p: Principal,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    limit = get_settings().max_ingest_body
    ctx = {
        "active": "import",
        "flashes": [("error", error)] if error else [],
        "result": result,
        "limit": _mib(limit),
        "suffixes": ", ".join(SUFFIXES),
        "shown_lines": SHOWN_LINES,
    }
    return render(p.request, "imports/import.html", ctx, principal=p, status_code=status_code)


@router.get("/w/{workspace}/import")
def import_page(
    p: Annotated[Principal, Depends(need(Perm.IMPORT))],
    result: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    shown: dict[str, Any] | None = None
    if result is not None:
        with p.read() as s:
            entry = s.get(AuditEntry, result)
            if entry is None or entry.workspace_id != p.ws.id or entry.action != "import.events":
                raise NotFound(f"import {result} does not exist")
            shown = {**(entry.detail or {}), "at_us": entry.at_us, "actor": entry.actor}
    return _import_page(p, result=shown)


@router.post("/w/{workspace}/import")
def import_events(
    _size: Annotated[None, Depends(declared_size)],
    p: Annotated[Principal, Depends(need(Perm.IMPORT))],
    form: Annotated[FormData, Depends(upload_form)],
) -> Response:
    upload = form.get("file")
    strict = form.get("strict") in ("1", "on", "true")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise InvalidParameter("choose a JSON Lines file to import")
        name = upload.filename[-200:]
        if not name.lower().endswith(SUFFIXES):
            raise NotJsonLines(
                f"only JSON Lines files can be imported ({', '.join(SUFFIXES)}), not {name}"
            )
        limit = get_settings().max_ingest_body
        if upload.size is not None and upload.size > limit:
            raise _too_large(limit)
        size = _check_utf8(upload.file)
        if size > limit:
            raise _too_large(limit)
        if not upload.file.read(CHUNK).strip():
            raise InvalidParameter("the file is empty: it needs one JSON event per line")
        upload.file.seek(0)
    except QuanziError as exc:
        return _import_page(p, error=translate_error(str(exc)), status_code=exc.status_code)
    started = time.perf_counter()
    report = ingest_lines(request_engine(p.request), p.ws.id, _lines(upload.file), strict=strict)
    seconds = round(time.perf_counter() - started, 3)
    detail = {
        "file": name,
        "size": size,
        "strict": strict,
        "applied": report.applied,
        "duplicates": report.duplicates,
        "refused": len(report.refused),
        "warned": len(report.warnings),
        "seconds": seconds,
        "errors": [f"line {n}: {reason}"[:500] for n, reason in report.refused[:SHOWN_LINES]],
        "warnings": [f"line {n}: {text}"[:500] for n, text in report.warnings[:SHOWN_LINES]],
    }
    with p.write() as s:
        p.audit(s, "import.events", target=name, detail=detail)
        entry = next(o for o in s.new if isinstance(o, AuditEntry))
        s.flush()
        entry_id = entry.id
    return RedirectResponse(p.url(f"/import?result={entry_id}"), status_code=303)
