"""Share posters in the console: poster templates, a member's personal poster, bulk download.

Everyone who may view sees the templates and a member's poster (for members in their scope:
an operator only those of their groups, as on the member page). Owners and admins
(manage_team) create and edit templates, because a poster speaks for the company; the bulk
download of many members' posters is an export of member data (export_members, audited).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from quanzi.acquisition import channels, media
from quanzi.acquisition import poster_templates as service
from quanzi.core.groups import repository as group_repo
from quanzi.core.members import service as members
from quanzi.kit.clock import now_us
from quanzi.kit.errors import InvalidParameter, QuanziError
from quanzi.team.roles import Perm
from quanzi.web.console.deps import Principal, need, request_locale
from quanzi.web.console.pages.members import member_filter
from quanzi.web.console.render import render
from quanzi.web.i18n import current_locale, translate_error

router = APIRouter(include_in_schema=False)

Viewer = Annotated[Principal, Depends(need(Perm.VIEW))]
Manager = Annotated[Principal, Depends(need(Perm.MANAGE_TEAM))]
Exporter = Annotated[Principal, Depends(need(Perm.EXPORT_MEMBERS))]
PNG_HEADERS = {"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"}


def _png(data: bytes, filename: str | None = None) -> Response:
    headers = dict(PNG_HEADERS)
    if filename:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return Response(data, media_type="image/png", headers=headers)


def _base_url(p: Principal) -> str:
    return str(p.request.base_url).rstrip("/")


def _in_scope(s: Session, p: Principal, member_id: int) -> None:
    """NotFound unless the member is in the user's scope: the member page's own check (the
    invite tree's scoped read, one node deep)."""
    members.invite_tree(s, p.ws.id, member_id, group_ids=p.group_ids, depth=1, limit=1)


def _scope_groups(s: Session, p: Principal) -> list[tuple[int, str]]:
    found = group_repo.groups(s, p.ws.id, group_ids=p.group_ids, status="all", end_us=now_us())
    return sorted(((g.id, g.name or g.group_key) for g in found), key=lambda g: g[1])


# --- templates ---------------------------------------------------------------------------------


@router.get("/w/{workspace}/posters")
def templates_page(p: Viewer, done: Annotated[str, Query(max_length=20)] = "") -> Response:
    with p.read() as s:
        codes = {c.id: c for c in channels.list_codes(s, p.ws.id)}
        rows = []
        for t in service.list_templates(s, p.ws.id):
            code = codes.get(t.channel_code_id) if t.channel_code_id is not None else None
            rows.append(
                {
                    "id": t.id,
                    "name": t.name,
                    "copy": t.copy_text,
                    "code": code.code if code else None,
                    "code_name": code.name if code else None,
                    "updated_at_us": t.updated_at_us,
                }
            )
        groups = _scope_groups(s, p) if rows and p.may(Perm.EXPORT_MEMBERS) else []
    ctx = {
        "active": "posters",
        "rows": rows,
        "done": done,
        "groups": groups,
        "bulk_max": service.BULK_MAX,
        "may_edit": p.may(Perm.MANAGE_TEAM),
        "may_export": p.may(Perm.EXPORT_MEMBERS),
    }
    return render(p.request, "posters/list.html", ctx, principal=p)


def _edit(
    p: Principal, values: dict[str, Any], error: str | None = None, status_code: int = 200
) -> Response:
    with p.read() as s:
        codes = [(c.id, c.name, c.code) for c in channels.list_codes(s, p.ws.id)]
        backgrounds = [
            (m.id, m.name, media.media_url(m))
            for m in media.list_media(s, p.ws.id, purpose="poster")
        ]
    ctx = {
        "active": "posters",
        "v": values,
        "codes": codes,
        "backgrounds": backgrounds,
        "copy_max": service.COPY_MAX,
        "error": error,
    }
    return render(p.request, "posters/edit.html", ctx, principal=p, status_code=status_code)


@router.get("/w/{workspace}/posters/edit")
def edit_page(p: Manager, id: Annotated[int | None, Query(ge=1)] = None) -> Response:
    values: dict[str, Any] = {}
    if id is not None:
        with p.read() as s:
            t = service.get_template(s, p.ws.id, id)
            values = {
                "id": str(t.id),
                "name": t.name,
                "copy": t.copy_text,
                "channel_code_id": str(t.channel_code_id or ""),
                "background_media_id": str(t.background_media_id or ""),
            }
    return _edit(p, values)


def _int_or_none(value: str, field: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 12:
        raise InvalidParameter(f"{field}: {value[:20]!r} is not an id")
    return int(value)


def _save(p: Principal, values: dict[str, str], upload: tuple[str, bytes] | None) -> int:
    """Store the upload and the template in one transaction: an error stores nothing."""
    with p.write() as s:
        background = _int_or_none(values.get("background_media_id", ""), "background")
        if upload is not None:
            filename, data = upload
            try:
                m = media.store_image(
                    s, p.ws.id, data, name=filename, purpose="poster", by=p.user.email
                )
            except InvalidParameter as exc:
                raise InvalidParameter(f"background: {str(exc).removeprefix('image: ')}") from None
            s.flush()
            background = m.id
        fields = service.TemplateFields(
            name=values.get("name", ""),
            copy_text=values.get("copy", ""),
            channel_code_id=_int_or_none(values.get("channel_code_id", ""), "channel code"),
            background_media_id=background,
        )
        template_id = _int_or_none(values.get("id", ""), "id")
        tpl, changed = service.save_template(s, p.ws.id, template_id, fields)
        if template_id is None:
            p.audit(s, "poster.created", target=str(tpl.id), detail={"name": tpl.name})
        elif changed:
            p.audit(s, "poster.updated", target=str(tpl.id), detail={"changed": changed})
        return tpl.id


@router.post("/w/{workspace}/posters/save")
async def save(p: Manager) -> Response:
    form = await p.request.form(max_files=1, max_fields=20)
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    upload = None
    item = form.get("background_file")
    if isinstance(item, UploadFile) and item.filename:
        data = await item.read(media.MAX_UPLOAD_BYTES + 1)
        if data:
            upload = (item.filename, data)
    try:
        template_id = await run_in_threadpool(_save, p, values, upload)
    except QuanziError as exc:
        current_locale.set(request_locale(p.request, p.user))
        return await run_in_threadpool(_edit, p, values, translate_error(str(exc)), exc.status_code)
    return RedirectResponse(p.url(f"/posters?done=saved#t{template_id}"), status_code=303)


@router.get("/w/{workspace}/posters/{template_id}/preview.png")
def preview(template_id: int, p: Viewer) -> Response:
    """The template with a sample name; its QR code opens the channel code (no referrer)."""
    with p.read() as s:
        return _png(service.sample_poster(s, p.ws.id, template_id, _base_url(p)))


@router.get("/w/{workspace}/posters/{template_id}/bulk.zip")
def bulk_download(template_id: int, p: Exporter) -> Response:
    """The posters of the members the member list's filter matches (in scope), zipped."""
    filt, kept = member_filter(p.request.query_params)
    with p.read() as s:
        service.get_template(s, p.ws.id, template_id)
        ids = members.member_ids_matching(
            s, p.ws.id, filt, group_ids=p.group_ids, limit=service.BULK_MAX + 1
        )
        data = service.posters_zip(s, p.ws.id, template_id, ids, _base_url(p))
    with p.write() as s:
        p.audit(
            s,
            "poster.bulk_download",
            target=str(template_id),
            detail={"members": len(ids), "filter": dict(kept)},
        )
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="posters-{template_id}.zip"'},
    )


# --- a member's poster -------------------------------------------------------------------------


@router.get("/w/{workspace}/members/{member_id}/poster")
def member_poster_page(
    member_id: int, p: Viewer, template: Annotated[int | None, Query(ge=1)] = None
) -> Response:
    with p.read() as s:
        _in_scope(s, p, member_id)
        m = service.member_of(s, p.ws.id, member_id)
        member = {"id": m.id, "name": m.name, "key": m.member_key}
        templates = [(t.id, t.name) for t in service.list_templates(s, p.ws.id)]
    chosen = template if template in {t for t, _n in templates} else None
    if chosen is None and templates:
        chosen = templates[0][0]
    ctx = {
        "active": "members",
        "member": member,
        "templates": templates,
        "chosen": chosen,
        "may_edit": p.may(Perm.MANAGE_TEAM),
    }
    return render(p.request, "posters/member.html", ctx, principal=p)


@router.get("/w/{workspace}/members/{member_id}/poster/{template_id}.png")
def member_poster(
    member_id: int,
    template_id: int,
    p: Viewer,
    download: Annotated[int, Query(ge=0, le=1)] = 0,
) -> Response:
    with p.read() as s:
        _in_scope(s, p, member_id)
        data = service.member_poster(s, p.ws.id, template_id, member_id, _base_url(p))
    return _png(data, f"poster-{member_id}-{template_id}.png" if download else None)
