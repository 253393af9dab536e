"""Members: the filtered list with bulk tagging and export, and one member's profile.

Personal data (phone, unionid, real name) is shown masked everywhere. A role with
Perm.REVEAL opens one field of one member at a time (POST, audited "member.reveal"); the
opened value is in that one response only, never in a URL, a cookie or a redirect.
Exports are masked too unless the role may reveal and asks for `personal=open` (audited with
what was opened).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import ImmutableMultiDict

from quanzi.analytics.exports import Cell, to_csv, to_xlsx
from quanzi.core.groups import repository as group_repo
from quanzi.core.members import personal
from quanzi.core.members import service as members
from quanzi.core.tags import service as tags
from quanzi.core.workspaces.service import workspace_key
from quanzi.kit.clock import HOUR_US, day_date, day_number, from_us, now_us, zone
from quanzi.kit.crypto import DecryptionFailed, WorkspaceKey
from quanzi.kit.errors import InvalidParameter
from quanzi.team.roles import Perm
from quanzi.web.console.deps import Principal, need
from quanzi.web.console.pages.groups import Desc, PageNo, Word
from quanzi.web.console.render import render
from quanzi.web.i18n import current_locale, gettext, money, number

router = APIRouter(include_in_schema=False)

PER_PAGE = 50
# The query parameters that make up a member filter (kept across sorting, paging, bulk
# actions and exports).
FILTER_PARAMS = ("q", "pref", "tag", "group", "channel", "staff", "from", "to")
REVEALABLE = personal.PERSONAL_FIELDS  # phone, unionid, name (real name)
BULK_LIMIT = 50_000


# A query string (QueryParams) or a posted form (FormData).
MultiDict = ImmutableMultiDict[str, Any]


def _text(params: MultiDict, name: str, limit: int = 200) -> str | None:
    value = params.get(name)
    if not isinstance(value, str) or not value.strip():
        return None
    if len(value) > limit:
        raise InvalidParameter(f"{name} must be at most {limit} characters")
    return value.strip()


def _day(params: MultiDict, name: str) -> int | None:
    value = _text(params, name, 10)
    if value is None:
        return None
    try:
        return day_number(date.fromisoformat(value))
    except ValueError:
        raise InvalidParameter(f"{name}: {value!r} is not a date (use YYYY-MM-DD)") from None


def _int(name: str, value: Any) -> int:
    text = str(value).strip()
    if not text.isdigit() or len(text) > 18:
        raise InvalidParameter(f"{name}: {value!r} is not a whole number")
    return int(text)


PHONE_REF_FIELD = "phone_filter"
PHONE_REF_HOURS = 12


def seal_phone(key: WorkspaceKey, phone: str) -> str:
    """A searched phone number as an opaque, expiring token for URLs (never the number)."""
    return key.seal(PHONE_REF_FIELD, f"{now_us()}|{phone}")


def _open_phone(key: WorkspaceKey, ref: str) -> str:
    try:
        stamp, _, phone = key.open(PHONE_REF_FIELD, ref).partition("|")
    except (DecryptionFailed, ValueError):
        raise InvalidParameter("the phone search has expired; search again") from None
    if not stamp.isdigit() or now_us() - int(stamp) > PHONE_REF_HOURS * HOUR_US:
        raise InvalidParameter("the phone search has expired; search again")
    return phone


def member_filter(
    params: MultiDict, key_of: Callable[[], WorkspaceKey] | None = None
) -> tuple[members.MemberFilter, list[tuple[str, str]]]:
    """The filter of a query string or form, and its parameters as given (to carry along).
    A phone number arrives plain from the search form and travels on as `pref`, sealed."""
    group = _text(params, "group", 20)
    phone = _text(params, "phone", 40)
    ref = _text(params, "pref", 400)
    if phone is None and ref is not None and key_of is not None:
        phone = _open_phone(key_of(), ref)
    filt = members.MemberFilter(
        q=_text(params, "q"),
        phone=phone,
        tag_ids=tuple(sorted({_int("tag", t) for t in params.getlist("tag") if str(t).strip()})),
        group_id=_int("group", group) if group else None,
        channel=_text(params, "channel", 100),
        staff=_text(params, "staff", 10),
        joined_from=_day(params, "from"),
        joined_to=_day(params, "to"),
    )
    kept = [
        (k, str(v))
        for k in FILTER_PARAMS
        for v in params.getlist(k)
        if isinstance(v, str) and v.strip()
    ]
    return filt, kept


def _audit_filter(kept: list[tuple[str, str]]) -> dict[str, Any]:
    """The filter as the audit log keeps it: a searched phone number masked."""
    out: dict[str, Any] = {}
    for k, v in kept:
        value = "(a phone number)" if k == "pref" else v
        if k == "tag":
            out.setdefault("tag", []).append(value)
        else:
            out[k] = value
    return out


def _flashes(params: Mapping[str, str]) -> list[tuple[str, str]]:
    done = params.get("done")
    n = params.get("n", "0")
    n_text = number(int(n)) if n.isdigit() else "0"
    messages = {
        "tagged": gettext("Tags added: %(n)s new tag links.") % {"n": n_text},
        "untagged": gettext("Tags removed: %(n)s tag links.") % {"n": n_text},
        "nothing": gettext("No members were selected."),
        "tag_added": gettext("Tag added."),
        "tag_removed": gettext("Tag removed."),
        "erased": gettext("The member's personal data was erased."),
    }
    return [("ok" if done != "nothing" else "info", messages[done])] if done in messages else []


def _scope_groups(s: Session, p: Principal) -> list[tuple[int, str]]:
    found = group_repo.groups(s, p.ws.id, group_ids=p.group_ids, status="all", end_us=now_us())
    return sorted(((g.id, g.name or g.group_key) for g in found), key=lambda g: g[1])


@router.get("/w/{workspace}/members")
def member_list(
    p: Annotated[Principal, Depends(need(Perm.VIEW))],
    sort: Word = "first_join",
    desc: Desc = 1,
    page: PageNo = 1,
) -> Response:
    query = p.request.query_params
    if _text(query, "phone", 40):
        # A phone number typed into the URL: carried on sealed, like the search form does.
        return _search_redirect(p, query)
    with p.read() as s:
        filt, kept = member_filter(query, lambda: workspace_key(s, p.ws.id))
        found = members.search_members(
            s,
            p.ws.id,
            filt,
            group_ids=p.group_ids,
            page=page,
            per_page=PER_PAGE,
            sort=sort,
            desc=bool(desc),
            today_day=p.calendar.today(),
        )
        tag_groups = tags.list_tag_groups(s, p.ws.id)
        scope_groups = _scope_groups(s, p)
    return render(
        p.request,
        "members/list.html",
        {
            "active": "members",
            "result": found,
            "filt": filt,
            "kept": kept,
            "filter_query": urlencode(kept),
            "tag_groups": tag_groups,
            "scope_groups": scope_groups,
            "sort": sort,
            "desc": bool(desc),
            "flashes": _flashes(p.request.query_params),
            "from_day": p.request.query_params.get("from", ""),
            "to_day": p.request.query_params.get("to", ""),
        },
    )


def _search_redirect(p: Principal, params: MultiDict) -> RedirectResponse:
    """The list for a filter, with a phone number sealed into `pref`."""
    phone = _text(params, "phone", 40)
    kept = [(k, v) for k, v in member_filter(params)[1] if k != "pref"]
    for extra in ("sort", "desc"):
        if _text(params, extra, 40):
            kept.append((extra, str(params.get(extra))))
    if phone:
        with p.write() as s:
            kept.insert(1, ("pref", seal_phone(workspace_key(s, p.ws.id), phone)))
    return RedirectResponse(p.url("/members") + ("?" + urlencode(kept) if kept else ""), 303)


@router.post("/w/{workspace}/members/search")
async def search(p: Annotated[Principal, Depends(need(Perm.VIEW))]) -> Response:
    """The filter form posts here so a searched phone number never appears in a URL."""
    return _search_redirect(p, await p.request.form())


@router.post("/w/{workspace}/members/bulk-tag")
async def bulk_tag(
    p: Annotated[Principal, Depends(need(Perm.TAG))],
    action: Annotated[str, Form(max_length=10)],
    target: Annotated[str, Form(max_length=10)] = "selected",
) -> Response:
    """Tag or untag the selected members of the filtered list, or every member matching it."""
    form = await p.request.form()
    if action not in ("tag", "untag"):
        raise InvalidParameter(f"action must be tag or untag, not {action!r}")
    if target not in ("selected", "all"):
        raise InvalidParameter(f"target must be selected or all, not {target!r}")
    tag_ids = sorted({_int("tag_ids", t) for t in form.getlist("tag_ids") if str(t).strip()})
    selected = {_int("member_ids", m) for m in form.getlist("member_ids") if str(m).strip()}
    with p.write() as s:
        filt, kept = member_filter(form, lambda: workspace_key(s, p.ws.id))
        # Only members matching the filter in the user's scope are touched, whatever was sent.
        matching = members.member_ids_matching(
            s, p.ws.id, filt, group_ids=p.group_ids, limit=BULK_LIMIT
        )
        ids = matching if target == "all" else [m for m in matching if m in selected]
        if not ids or not tag_ids:
            return RedirectResponse(
                p.url("/members") + "?" + urlencode([*kept, ("done", "nothing")]), 303
            )
        if action == "tag":
            changed = tags.tag_members(s, p.ws.id, ids, tag_ids, by_user_id=p.user.id)
        else:
            changed = tags.untag_members(s, p.ws.id, ids, tag_ids)
        p.audit(
            s,
            "tag.tagged" if action == "tag" else "tag.untagged",
            target=f"{len(ids)} members",
            detail={
                "members": len(ids),
                "links": changed,
                "tags": tag_ids,
                "target": target,
                "filter": _audit_filter(kept),
            },
        )
    done = "tagged" if action == "tag" else "untagged"
    return RedirectResponse(
        p.url("/members") + "?" + urlencode([*kept, ("done", done), ("n", str(changed))]), 303
    )


# --- export ----------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "id",
    "platform",
    "key",
    "name",
    "is_staff",
    "channel",
    "first_join",
    "groups_now",
    "messages_30d",
    "last_active",
    "tags",
    "phone",
    "unionid",
    "real_name",
)


def _export_labels() -> list[str]:
    labels = {
        "id": gettext("Member no."),
        "platform": gettext("Platform"),
        "key": gettext("Member ID"),
        "name": gettext("Nickname"),
        "is_staff": gettext("Staff"),
        "channel": gettext("Channel"),
        "first_join": gettext("First joined"),
        "groups_now": gettext("Groups now"),
        "messages_30d": gettext("Messages (30d)"),
        "last_active": gettext("Last active"),
        "tags": gettext("Tags"),
        "phone": gettext("Phone"),
        "unionid": gettext("UnionID"),
        "real_name": gettext("Real name"),
    }
    return [labels[c] for c in EXPORT_COLUMNS]


@router.get("/w/{workspace}/members/export")
def export_members(
    p: Annotated[Principal, Depends(need(Perm.EXPORT_MEMBERS))],
    format: Annotated[str, Query(max_length=4)] = "csv",
    personal_data: Annotated[str, Query(alias="personal", max_length=10)] = "masked",
) -> Response:
    """The filtered list as CSV (UTF-8 with BOM) or XLSX. Personal fields masked, unless the
    role may reveal and `personal=open` is asked for."""
    if format not in ("csv", "xlsx"):
        raise InvalidParameter(f"format must be csv or xlsx, not {format!r}")
    reveal = personal_data == "open" and p.may(Perm.REVEAL)
    tz = zone(p.ws.timezone)
    yes, no = gettext("Yes"), gettext("No")
    sep = "、" if current_locale.get() == "zh-CN" else ", "
    rows: list[list[Cell]] = []
    with p.read() as s:
        filt, kept = member_filter(p.request.query_params, lambda: workspace_key(s, p.ws.id))
        key: WorkspaceKey | None = None
        for r in members.export_rows(
            s, p.ws.id, filt, group_ids=p.group_ids, today_day=p.calendar.today()
        ):
            shown: dict[str, Cell] = {}
            for col, fld in (("phone", "phone"), ("unionid", "unionid"), ("real_name", "name")):
                value = r[col]
                if value is None:
                    shown[col] = None
                    continue
                key = key or workspace_key(s, p.ws.id)
                shown[col] = personal.shown_value(key, fld, value, reveal)
            rows.append(
                [
                    r["id"],
                    r["platform"],
                    r["key"],
                    r["name"],
                    yes if r["is_staff"] else no,
                    r["channel"],
                    None
                    if r["first_join_us"] is None
                    else from_us(r["first_join_us"]).astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                    r["groups_now"],
                    r["messages_30d"],
                    None
                    if r["last_active_day"] is None
                    else day_date(r["last_active_day"]).isoformat(),
                    sep.join(r["tags"]),
                    shown["phone"],
                    shown["unionid"],
                    shown["real_name"],
                ]
            )
    with p.write() as s:
        p.audit(
            s,
            "members.export",
            target=f"{len(rows)} members",
            detail={
                "format": format,
                "rows": len(rows),
                "personal": "open" if reveal else "masked",
                "filter": _audit_filter(kept),
            },
        )
    stamp = day_date(p.calendar.today()).strftime("%Y%m%d")
    if format == "csv":
        body, media = to_csv(_export_labels(), rows), "text/csv; charset=utf-8"
    else:
        body = to_xlsx(_export_labels(), rows, gettext("Members"))
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(
        body,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="members-{stamp}.{format}"',
            "Cache-Control": "no-store",
        },
    )


# --- one member ------------------------------------------------------------------------------


def _check_member(s: Session, p: Principal, member_id: int) -> None:
    """NotFound unless the member is in the user's scope (the invite tree's scope check, one
    level deep and one node: the cheapest scoped read of a member)."""
    members.invite_tree(s, p.ws.id, member_id, group_ids=p.group_ids, depth=1, limit=1)


def _chart_label(name: str | None, key: str) -> str:
    # Plotly reads a few HTML tags in labels; a member's name is text, so no tags at all.
    text = name or key
    return text.replace("<", "‹").replace(">", "›").replace("&", "＆")


def _tree_chart(root: str, tree: members.InviteTree) -> dict[str, Any]:
    ids, labels, parents = ["root"], [root], [""]

    def walk(nodes: list[members.InviteNode], parent: str) -> None:
        for n in nodes:
            ids.append(str(n.member_id))
            labels.append(_chart_label(n.name, n.key))
            parents.append(parent)
            walk(n.children, str(n.member_id))

    walk(tree.children, "root")
    return {
        "data": [
            {
                "type": "sunburst",
                "ids": ids,
                "labels": labels,
                "parents": parents,
                "hoverinfo": "label",
            }
        ],
        "layout": {"margin": {"l": 0, "r": 0, "t": 0, "b": 0}},
    }


def _profile_page(
    s: Session, p: Principal, member_id: int, revealed: dict[str, str] | None = None
) -> HTMLResponse:
    prof = members.member_profile(s, p.ws.id, p.calendar, member_id, group_ids=p.group_ids)
    tree = members.invite_tree(s, p.ws.id, member_id, group_ids=p.group_ids)
    has_personal = any(k.startswith("p:") for k in prof.profile)
    key = workspace_key(s, p.ws.id) if has_personal else None
    fields = personal.masked_profile(prof.profile, key, False) if key else {}
    tag_groups = tags.list_tag_groups(s, p.ws.id)
    weeks = {
        "data": [
            {
                "type": "bar",
                "name": gettext("Messages"),
                "x": [w.week for w in prof.weeks],
                "y": [w.messages for w in prof.weeks],
                "marker": {"color": "#0b5cad"},
            }
        ],
        "layout": {"showlegend": False},
    }
    return render(
        p.request,
        "members/profile.html",
        {
            "active": "members",
            "charts": True,
            "m": prof,
            "tree": tree,
            "tree_chart": _tree_chart(_chart_label(prof.name, prof.key), tree)
            if tree.children
            else None,
            "fields": fields,
            "revealed": revealed or {},
            "personal_fields": [
                ("phone", gettext("Phone")),
                ("unionid", gettext("UnionID")),
                ("name", gettext("Real name")),
            ],
            "weeks_chart": weeks,
            "tag_groups": tag_groups,
            "own_tags": {t[0] for t in prof.tags},
            "money": money,
            "flashes": _flashes(p.request.query_params),
        },
    )


@router.get("/w/{workspace}/members/{member_id}")
def member_page(member_id: int, p: Annotated[Principal, Depends(need(Perm.VIEW))]) -> Response:
    with p.read() as s:
        return _profile_page(s, p, member_id)


@router.post("/w/{workspace}/members/{member_id}/reveal")
def reveal(
    member_id: int,
    p: Annotated[Principal, Depends(need(Perm.REVEAL))],
    field: Annotated[str, Form(max_length=20)],
) -> Response:
    """Open one personal field once: audited, answered with the page itself (no redirect, so
    the value is in no URL and no later page)."""
    if field not in REVEALABLE:
        raise InvalidParameter(f"field must be one of {', '.join(REVEALABLE)}, not {field!r}")
    with p.write() as s:
        prof = members.member_profile(s, p.ws.id, p.calendar, member_id, group_ids=p.group_ids)
        stored = (prof.profile.get("p:" + field) or [None])[0]
        value = (
            personal.open_value(workspace_key(s, p.ws.id), field, stored)
            if stored is not None
            else None
        )
        p.audit(
            s,
            "member.reveal",
            target=f"member {member_id}",
            detail={
                "member": member_id,
                "key": prof.key,
                "field": field,
                "found": value is not None,
            },
        )
    with p.read() as s:
        return _profile_page(s, p, member_id, {field: value} if value is not None else {})


@router.post("/w/{workspace}/members/{member_id}/tags")
async def member_tags(
    member_id: int,
    p: Annotated[Principal, Depends(need(Perm.TAG))],
    action: Annotated[str, Form(max_length=10)],
) -> Response:
    form = await p.request.form()
    tag_ids = sorted({_int("tag_id", t) for t in form.getlist("tag_id") if str(t).strip()})
    if action not in ("add", "remove"):
        raise InvalidParameter(f"action must be add or remove, not {action!r}")
    with p.write() as s:
        _check_member(s, p, member_id)
        if tag_ids:
            if action == "add":
                n = tags.tag_members(s, p.ws.id, [member_id], tag_ids, by_user_id=p.user.id)
            else:
                n = tags.untag_members(s, p.ws.id, [member_id], tag_ids)
            p.audit(
                s,
                "tag.added" if action == "add" else "tag.removed",
                target=f"member {member_id}",
                detail={"member": member_id, "tags": tag_ids, "links": n},
            )
    done = "tag_added" if action == "add" else "tag_removed"
    return RedirectResponse(p.url(f"/members/{member_id}?done={done}"), 303)


@router.post("/w/{workspace}/members/{member_id}/erase")
def erase(member_id: int, p: Annotated[Principal, Depends(need(Perm.ERASE))]) -> Response:
    """Erase the member's personal data for good (PIPL), audited."""
    with p.write() as s:
        _check_member(s, p, member_id)
        rewritten = personal.erase_personal_data(s, p.ws.id, member_id)
        p.audit(
            s,
            "member.erase",
            target=f"member {member_id}",
            detail={"member": member_id, "log_events_rewritten": rewritten},
        )
    return RedirectResponse(p.url(f"/members/{member_id}?done=erased"), 303)
