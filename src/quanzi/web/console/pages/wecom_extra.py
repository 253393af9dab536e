"""WeCom welcome messages (settings) and WeCom's group statistics next to Quanzi's."""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quanzi.connectors.wecom import statistics
from quanzi.connectors.wecom import welcome as welcomes
from quanzi.kit.clock import day_date
from quanzi.kit.errors import InvalidParameter, QuanziError
from quanzi.team.roles import Perm
from quanzi.web.auth import request_engine
from quanzi.web.console.deps import Principal, need
from quanzi.web.console.render import render
from quanzi.web.i18n import gettext, translate_error

router = APIRouter(include_in_schema=False)

# A welcome speaks for the company; fetching calls WeCom: owners and admins.
WecomAdmin = Annotated[Principal, Depends(need(Perm.MANAGE_TEAM))]
# Reading stored figures: anyone who reads reports (not operators, see _whole_workspace).
Viewer = Annotated[Principal, Depends(need(Perm.VIEW))]
EMPTY_CHANNEL_ROWS = 3


# --- welcome messages -------------------------------------------------------------------------


def _welcome_page(
    p: Principal,
    *,
    error: str | None = None,
    status_code: int = 200,
    text: str | None = None,
    channels: list[tuple[str, str]] | None = None,
) -> HTMLResponse:
    if text is None or channels is None:
        with p.read() as s:
            saved = welcomes.get_welcome(s, p.ws.id)
        text, channels = saved.text, list(saved.channels.items())
    flashes: list[tuple[str, str]] = []
    if error:
        flashes.append(("error", error))
    elif p.request.query_params.get("done") == "saved":
        flashes.append(("ok", gettext("Welcome messages saved.")))
    ctx: dict[str, Any] = {
        "active": "wecom",
        "flashes": flashes,
        "text": text,
        "channels": channels + [("", "")] * EMPTY_CHANNEL_ROWS,
        "max_text": welcomes.MAX_TEXT,
        "window": welcomes.WINDOW_S,
    }
    return render(p.request, "wecom_extra/welcome.html", ctx, principal=p, status_code=status_code)


@router.get("/w/{workspace}/settings/wecom/welcome")
def welcome_page(p: WecomAdmin) -> Response:
    return _welcome_page(p)


@router.post("/w/{workspace}/settings/wecom/welcome")
def save_welcome(
    p: WecomAdmin,
    text: Annotated[str, Form(max_length=20_000)] = "",
    channel_state: Annotated[list[str] | None, Form(max_length=200)] = None,
    channel_text: Annotated[list[str] | None, Form(max_length=20_000)] = None,
) -> Response:
    states, texts = channel_state or [], channel_text or []
    pairs = list(zip(states, texts + [""] * (len(states) - len(texts)), strict=False))
    try:
        if len(texts) > len(states):
            raise InvalidParameter("channel: give the channel code (state) of each channel text")
        rows: dict[str, str] = {}
        for state, value in pairs:
            if state.strip() in rows and state.strip():
                raise InvalidParameter(f"channel {state.strip()!r}: given twice")
            if state.strip() or value.strip():
                rows[state.strip()] = value
        with p.write() as s:
            saved = welcomes.set_welcome(s, p.ws.id, text, rows)
            p.audit(
                s,
                "wecom.welcome_saved",
                target="welcome",
                detail={"default": bool(saved.text), "channels": sorted(saved.channels)},
            )
    except QuanziError as exc:
        return _welcome_page(
            p,
            error=translate_error(str(exc)),
            status_code=exc.status_code,
            text=text,
            channels=[(s, t) for s, t in pairs if s.strip() or t.strip()],
        )
    return RedirectResponse(p.url("/settings/wecom/welcome?done=saved"), status_code=303)


# --- group statistics -------------------------------------------------------------------------


def metric_labels() -> dict[str, tuple[str, str]]:
    """key → (label, why the two may differ)."""
    return {
        "new_members": (
            gettext("New members"),
            gettext(
                "WeCom counts every join, staff included, once per group; Quanzi counts people "
                "whose first join ever was that day."
            ),
        ),
        "member_total": (
            gettext("Members (summed over groups)"),
            gettext("WeCom counts staff as members; Quanzi does not."),
        ),
        "groups": (
            gettext("Groups"),
            gettext("Only groups Quanzi has seen (by a sync or events)."),
        ),
        "new_groups": (gettext("New groups"), ""),
        "groups_with_messages": (
            gettext("Groups with messages"),
            gettext("Quanzi's message counts come from other sources than WeCom's."),
        ),
        "members_with_messages": (
            gettext("Members who posted"),
            gettext("WeCom counts staff who posted too."),
        ),
        "messages": (
            gettext("Messages"),
            gettext("Quanzi's message counts come from other sources than WeCom's."),
        ),
    }


def _day(p: Principal, raw: str) -> date:
    if not raw:
        return day_date(p.calendar.today()) - timedelta(days=1)
    try:
        if len(raw) != 10:
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidParameter(f"date: {raw!r} is not a date (use YYYY-MM-DD)") from None


def _statistics_page(
    p: Principal, day: date, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    with p.read() as s:
        found = statistics.compare(s, p.ws.id, day)
        owners = statistics.wecom_owners(s, p.ws.id)
    labels = metric_labels()
    rows = [
        {
            "key": m.key,
            "label": labels[m.key][0],
            "why": labels[m.key][1],
            "wecom": m.wecom,
            "quanzi": m.quanzi,
            "differs": m.differs,
            "diff": (m.quanzi - m.wecom) if m.wecom is not None else None,
        }
        for m in found.metrics
    ]
    flashes: list[tuple[str, str]] = []
    done = p.request.query_params.get("done")
    if error:
        flashes.append(("error", error))
    elif done == "fetched":
        flashes.append(("ok", gettext("WeCom's figures fetched.")))
    elif done == "later":
        flashes.append(
            ("error", gettext("WeCom did not answer yet; the request is retried (see Actions)."))
        )
    ctx: dict[str, Any] = {
        "active": "wecom",
        "flashes": flashes,
        "day": day.isoformat(),
        "found": found,
        "rows": rows,
        "owners": "\n".join(owners),
        "new_key": secrets.token_urlsafe(16),
    }
    return render(
        p.request, "wecom_extra/statistics.html", ctx, principal=p, status_code=status_code
    )


@router.get("/w/{workspace}/wecom/statistics")
def statistics_page(p: Viewer, date: Annotated[str, Query(max_length=10)] = "") -> Response:
    day = _day(p, date)
    if p.group_ids is not None:
        # WeCom's figures cover every group of the owners; an operator sees assigned groups.
        ctx = {"active": "wecom", "day": day.isoformat(), "scoped": True, "flashes": []}
        return render(p.request, "wecom_extra/statistics.html", ctx, principal=p)
    return _statistics_page(p, day)


@router.post("/w/{workspace}/wecom/statistics")
def fetch_statistics(
    p: WecomAdmin,
    day: Annotated[str, Form(max_length=10)] = "",
    owners: Annotated[str, Form(max_length=20_000)] = "",
    idempotency_key: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        chosen = _day(p, day)
        if not idempotency_key:
            raise InvalidParameter("idempotency_key: reload the page and submit the form again")
        wanted = [o.strip() for o in owners.replace(",", "\n").splitlines() if o.strip()]
        outcome = statistics.fetch(
            request_engine(p.request), p.ws.id, chosen, wanted, idempotency_key, p.user.email
        )
        if outcome.state != "skipped":  # skipped: the same form again, already run
            with p.write() as s:
                p.audit(
                    s,
                    "action.requested",
                    target="wecom.group_statistic",
                    detail={"action_id": outcome.action_id, "day": chosen.isoformat()},
                )
        if outcome.state == "failed":
            raise statistics.FetchFailed(outcome.error or "WeCom's figures could not be fetched")
    except QuanziError as exc:
        return _statistics_page(
            p, _safe_day(day), error=translate_error(str(exc)), status_code=exc.status_code
        )
    done = "fetched" if outcome.state in ("done", "skipped") else "later"
    return RedirectResponse(
        p.url(f"/wecom/statistics?date={chosen.isoformat()}&done={done}"), status_code=303
    )


def _safe_day(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return date.today() - timedelta(days=1)
