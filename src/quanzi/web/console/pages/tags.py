"""Tags: tag groups and their tags with member counts; create, rename and delete (audited)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from quanzi.core.tags import service as tags
from quanzi.kit.errors import InvalidParameter
from quanzi.team.roles import Perm
from quanzi.web.console.deps import Principal, need
from quanzi.web.console.render import render
from quanzi.web.i18n import gettext, translate_error

router = APIRouter(include_in_schema=False)

Name = Annotated[str, Form(max_length=200)]


def _page(
    p: Principal,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    with p.read() as s:
        groups = tags.list_tag_groups(s, p.ws.id)
    done = {
        "created": gettext("Saved."),
        "renamed": gettext("Renamed."),
        "deleted": gettext("Deleted."),
    }.get(p.request.query_params.get("done", ""))
    return render(
        p.request,
        "tags/tags.html",
        {
            "active": "tags",
            "tag_groups": groups,
            "errors": errors or {},
            "values": values or {},
            "flashes": [("ok", done)] if done and not errors else [],
        },
        status_code=status_code,
    )


def _change(
    p: Principal,
    form: str,
    name: str,
    change: Callable[[Session], tuple[str, str, dict[str, Any]]],
    done: str,
) -> Response:
    """Run one change (it returns the audit action, target and detail); a refused name is
    shown in its form, in the user's language, with status 400."""
    try:
        with p.write() as s:
            action, target, detail = change(s)
            p.audit(s, action, target=target, detail=detail)
    except InvalidParameter as exc:
        return _page(p, {form: translate_error(str(exc))}, {form: name}, 400)
    return RedirectResponse(p.url(f"/tags?done={done}"), 303)


@router.get("/w/{workspace}/tags")
def tag_list(p: Annotated[Principal, Depends(need(Perm.VIEW))]) -> HTMLResponse:
    return _page(p)


@router.post("/w/{workspace}/tags/groups")
def create_group(p: Annotated[Principal, Depends(need(Perm.TAG))], name: Name = "") -> Response:
    def change(s: Session) -> tuple[str, str, dict[str, Any]]:
        g = tags.create_tag_group(s, p.ws.id, name)
        return "tag.group_created", g.name, {"tag_group": g.id}

    return _change(p, "new-group", name, change, "created")


@router.post("/w/{workspace}/tags/groups/{tag_group_id}/rename")
def rename_group(
    tag_group_id: int, p: Annotated[Principal, Depends(need(Perm.TAG))], name: Name = ""
) -> Response:
    def change(s: Session) -> tuple[str, str, dict[str, Any]]:
        g = tags.rename_tag_group(s, p.ws.id, tag_group_id, name)
        return "tag.group_updated", g.name, {"tag_group": g.id}

    return _change(p, f"group-{tag_group_id}", name, change, "renamed")


@router.post("/w/{workspace}/tags/groups/{tag_group_id}/delete")
def delete_group(tag_group_id: int, p: Annotated[Principal, Depends(need(Perm.TAG))]) -> Response:
    def change(s: Session) -> tuple[str, str, dict[str, Any]]:
        tags.delete_tag_group(s, p.ws.id, tag_group_id)
        return "tag.group_deleted", f"tag group {tag_group_id}", {"tag_group": tag_group_id}

    return _change(p, f"group-{tag_group_id}", "", change, "deleted")


@router.post("/w/{workspace}/tags/groups/{tag_group_id}/tags")
def create_tag(
    tag_group_id: int, p: Annotated[Principal, Depends(need(Perm.TAG))], name: Name = ""
) -> Response:
    def change(s: Session) -> tuple[str, str, dict[str, Any]]:
        t = tags.create_tag(s, p.ws.id, tag_group_id, name)
        return "tag.created", t.name, {"tag": t.id, "tag_group": tag_group_id}

    return _change(p, f"new-tag-{tag_group_id}", name, change, "created")


@router.post("/w/{workspace}/tags/{tag_id}/rename")
def rename_tag(
    tag_id: int, p: Annotated[Principal, Depends(need(Perm.TAG))], name: Name = ""
) -> Response:
    def change(s: Session) -> tuple[str, str, dict[str, Any]]:
        t = tags.rename_tag(s, p.ws.id, tag_id, name)
        return "tag.updated", t.name, {"tag": t.id}

    return _change(p, f"tag-{tag_id}", name, change, "renamed")


@router.post("/w/{workspace}/tags/{tag_id}/delete")
def delete_tag(tag_id: int, p: Annotated[Principal, Depends(need(Perm.TAG))]) -> Response:
    def change(s: Session) -> tuple[str, str, dict[str, Any]]:
        tags.delete_tag(s, p.ws.id, tag_id)
        return "tag.deleted", f"tag {tag_id}", {"tag": tag_id}

    return _change(p, f"tag-{tag_id}", "", change, "deleted")
