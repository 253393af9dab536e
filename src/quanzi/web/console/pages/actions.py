"""The actions page: what Quanzi asked a platform to do, its delivery state; request and retry."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quanzi.connectors import actions as service
from quanzi.connectors.models import ACTION_STATES
from quanzi.kit.errors import InvalidParameter, QuanziError
from quanzi.team.roles import Perm
from quanzi.web.console.deps import Principal, need
from quanzi.web.console.render import render
from quanzi.web.i18n import gettext, translate_error

router = APIRouter(include_in_schema=False)

# Owners and admins for now: an action speaks for the company in WeCom.
ActionsUser = Annotated[Principal, Depends(need(Perm.MANAGE_TEAM))]
PLATFORM = "wecom"
RESULT_CHARS = 600


@dataclass(frozen=True)
class FormField:
    name: str
    kind: str  # text | list | int | bool | date | textarea | choice
    label: str
    choices: tuple[tuple[str, str], ...] = ()
    required: bool = False
    hint: str = ""


def form_fields() -> dict[str, list[FormField]]:
    """The fields of each WeCom action's form, in the user's language (lists: one per line)."""
    one_per_line = gettext("One per line, or separated by commas.")
    return {
        "contact_way": [
            FormField(
                "state", "text", gettext("Channel code (state, up to 30 characters)"), required=True
            ),
            FormField("user", "list", gettext("Staff user ids"), required=True, hint=one_per_line),
            FormField(
                "type",
                "choice",
                gettext("Type"),
                (("1", gettext("One staff member")), ("2", gettext("Several staff members"))),
            ),
            FormField("skip_verify", "bool", gettext("Add without verification")),
            FormField("remark", "text", gettext("Remark")),
        ],
        "join_way": [
            FormField(
                "chat_id_list",
                "list",
                gettext("Group chat ids (up to 5)"),
                required=True,
                hint=one_per_line,
            ),
            FormField(
                "state", "text", gettext("Channel code (state, up to 30 characters)"), required=True
            ),
            FormField("remark", "text", gettext("Remark")),
        ],
        "welcome": [
            FormField(
                "welcome_code",
                "text",
                gettext("Welcome code (from the add-contact event)"),
                required=True,
            ),
            FormField("text", "textarea", gettext("Text")),
        ],
        "mass_message": [
            FormField(
                "chat_type",
                "choice",
                gettext("Send to"),
                (("single", gettext("Customers")), ("group", gettext("Customer groups"))),
            ),
            FormField("sender", "text", gettext("Sender (staff user id)")),
            FormField("text", "textarea", gettext("Text"), required=True),
            FormField(
                "external_userid",
                "list",
                gettext("Customer ids (external_userid)"),
                hint=one_per_line,
            ),
            FormField("chat_id_list", "list", gettext("Group chat ids"), hint=one_per_line),
        ],
        "mark_tag": [
            FormField("userid", "text", gettext("Staff user id"), required=True),
            FormField(
                "external_userid", "text", gettext("Customer id (external_userid)"), required=True
            ),
            FormField("add_tag", "list", gettext("Tag ids to add"), hint=one_per_line),
            FormField("remove_tag", "list", gettext("Tag ids to remove"), hint=one_per_line),
        ],
        "group_statistic": [
            FormField("day_begin", "date", gettext("First day"), required=True),
            FormField("day_end", "date", gettext("Last day")),
            FormField(
                "owners",
                "list",
                gettext("Group owners (staff user ids)"),
                required=True,
                hint=one_per_line,
            ),
        ],
    }


def kind_titles() -> dict[str, str]:
    return {
        "contact_way": gettext("Contact way (联系我)"),
        "join_way": gettext("Group join way (加入群聊)"),
        "welcome": gettext("Welcome message"),
        "mass_message": gettext("Mass message (群发)"),
        "mark_tag": gettext("Mark tags"),
        "group_statistic": gettext("Group statistics"),
    }


def state_labels() -> dict[str, str]:
    return {
        "pending": gettext("Waiting"),
        "running": gettext("Running"),
        "done": gettext("Done"),
        "failed": gettext("Failed"),
    }


def payload_from_form(kind: str, form: dict[str, str]) -> dict[str, Any]:
    """The action's payload from its form: empty fields left out, lists split, numbers read."""
    fields = form_fields().get(kind)
    if fields is None:
        raise InvalidParameter(f"kind: {PLATFORM} has no action {kind!r}")
    payload: dict[str, Any] = {}
    for f in fields:
        raw = (form.get(f.name) or "").strip()
        if f.kind == "bool":
            payload[f.name] = raw in ("1", "on", "true")
        elif not raw:
            continue
        elif f.kind == "list":
            payload[f.name] = [x.strip() for x in raw.replace(",", "\n").splitlines() if x.strip()]
        elif f.kind == "choice" and raw.isdigit():
            payload[f.name] = int(raw)
        else:
            payload[f.name] = raw
    return payload


def _shown(value: dict[str, Any] | None) -> str:
    if not value:
        return ""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= RESULT_CHARS else text[:RESULT_CHARS] + "…"


def _page(
    p: Principal,
    state: str | None,
    page: int,
    *,
    error: str | None = None,
    status_code: int = 200,
    open_kind: str | None = None,
    values: dict[str, str] | None = None,
) -> HTMLResponse:
    chosen = state if state in ACTION_STATES else None
    with p.read() as s:
        found = service.list_actions(s, p.ws.id, chosen, page)
    labels = state_labels()
    titles = kind_titles()
    rows = [
        {
            "id": a.id,
            "kind": titles.get(a.kind, a.kind),
            "state": a.state,
            "state_label": labels.get(a.state, a.state),
            "attempts": a.attempts,
            "next_at": a.next_attempt_at_us,
            "error": translate_error(a.last_error) if a.last_error else "",
            "result": _shown(a.result),
            "payload": _shown(a.payload),
            "created_by": a.created_by or "—",
            "created_at": a.created_at_us,
            "updated_at": a.updated_at_us,
        }
        for a in found.rows
    ]
    flashes: list[tuple[str, str]] = []
    done = p.request.query_params.get("done")
    if error:
        flashes.append(("error", error))
    elif done == "requested":
        flashes.append(("ok", gettext("Action requested; it runs in the background.")))
    elif done == "retried":
        flashes.append(("ok", gettext("Action queued again.")))
    ctx: dict[str, Any] = {
        "active": "actions",
        "flashes": flashes,
        "rows": rows,
        "found": found,
        "state": chosen or "",
        "states": [(s, labels[s]) for s in ACTION_STATES],
        "forms": form_fields(),
        "titles": titles,
        "open_kind": open_kind,
        "values": values or {},
        "new_key": lambda: secrets.token_urlsafe(16),
        "max_attempts": service.MAX_ATTEMPTS,
    }
    return render(p.request, "actions/actions.html", ctx, principal=p, status_code=status_code)


@router.get("/w/{workspace}/actions")
def actions_page(
    p: ActionsUser,
    state: Annotated[str, Query(max_length=16)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    if state and state not in ACTION_STATES:
        raise InvalidParameter(f"state: {state!r} is not one of {', '.join(ACTION_STATES)}")
    return _page(p, state or None, page)


@router.post("/w/{workspace}/actions/request")
async def request_action(
    p: ActionsUser,
    kind: Annotated[str, Form(max_length=64)] = "",
    idempotency_key: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    form = {k: v for k, v in (await p.request.form()).items() if isinstance(v, str)}
    try:
        if not idempotency_key:
            raise InvalidParameter("idempotency_key: reload the page and submit the form again")
        payload = payload_from_form(kind, form)
        with p.write() as s:
            repeat = service.action_by_key(s, p.ws.id, idempotency_key.strip()) is not None
            action = service.request_action(
                s, p.ws.id, PLATFORM, kind, payload, idempotency_key, p.user.email
            )
            s.flush()
            if not repeat:  # a form sent twice is one request
                p.audit(
                    s,
                    "action.requested",
                    target=f"{PLATFORM}.{kind}",
                    detail={"action_id": action.id},
                )
    except QuanziError as exc:
        return _page(
            p,
            None,
            1,
            error=translate_error(str(exc)),
            status_code=exc.status_code,
            open_kind=kind,
            values=form,
        )
    return RedirectResponse(p.url("/actions?done=requested"), status_code=303)


@router.post("/w/{workspace}/actions/retry")
def retry_action(p: ActionsUser, action_id: Annotated[int, Form(ge=1)] = 0) -> Response:
    try:
        if not action_id:
            raise InvalidParameter("action_id: choose a failed action to retry")
        with p.write() as s:
            action = service.retry_action(s, p.ws.id, action_id)
            p.audit(
                s,
                "action.retried",
                target=f"{action.platform}.{action.kind}",
                detail={"action_id": action_id},
            )
    except QuanziError as exc:
        return _page(p, None, 1, error=translate_error(str(exc)), status_code=exc.status_code)
    return RedirectResponse(p.url("/actions?state=pending&done=retried"), status_code=303)
