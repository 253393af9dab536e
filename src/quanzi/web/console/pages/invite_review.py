"""The invite fraud review queue: suspected invites with their signals, confirm or dismiss."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form
from fastapi.responses import RedirectResponse, Response

from quanzi.acquisition import fraud
from quanzi.team.roles import Perm
from quanzi.web.console.deps import Principal, need
from quanzi.web.console.render import render
from quanzi.web.i18n import gettext

router = APIRouter(include_in_schema=False)

Viewer = Annotated[Principal, Depends(need(Perm.VIEW))]
# Verdicts and the mode change what the invite leaderboard pays out on: owners and admins
# (MANAGE_TEAM; no new permission was added for this).
Reviewer = Annotated[Principal, Depends(need(Perm.MANAGE_TEAM))]
PAGE = 50


def _explain(sig: dict[str, object]) -> str:
    """A suspect's signal in plain words, in the visitor's language."""
    kind = sig.get("kind")
    d = sig.get("detail")
    detail = d if isinstance(d, dict) else {}
    if kind == "self_invite":
        if detail.get("how") == "mutual":
            return gettext(
                "The inviter itself first joined through this member: they invite each other."
            )
        return gettext("The member is named as their own inviter.")
    if kind == "quick_leave":
        return gettext(
            "Left the group %(hours)s hours after being invited, inside the hold window; "
            "%(quick)s of the inviter's %(total)s invitees left as fast."
        ) % {
            "hours": detail.get("hours"),
            "quick": detail.get("inviter_quick"),
            "total": detail.get("inviter_invites"),
        }
    if kind == "sybil_burst":
        text = gettext(
            "One of %(n)s brand-new members the same inviter brought in within 10 minutes; none posted within 72 hours."
        ) % {"n": detail.get("ring")}
        if detail.get("young_leader"):
            text += " " + gettext("The inviter had joined less than 7 days before.")
        return text
    if kind == "shared_device":
        return _explain_shared(detail)
    return str(kind)


def _explain_shared(detail: dict[str, object]) -> str:
    values = {
        "n": detail.get("invitees"),
        "span": detail.get("span_min"),
        "visits": detail.get("visits"),
    }
    if detail.get("via") == "poster":
        text = gettext(
            "The inviter's poster was opened %(visits)s times from one device within %(span)s minutes; "
            "that device sent the leads of %(n)s of their invitees, this one included."
        )
    elif detail.get("via") == "network":
        text = gettext(
            "One of %(n)s invitees of the same inviter whose leads came from one network within %(span)s minutes."
        )
    else:
        text = gettext(
            "One of %(n)s invitees of the same inviter whose leads came from one device within %(span)s minutes."
        )
    return text % values


@router.get("/w/{workspace}/invites/review")
def review_page(p: Viewer, status: str = "suspected", kind: str = "", page: int = 1) -> Response:
    status = status if status in (*fraud.STATUSES, "all") else "suspected"
    kind = kind if kind in fraud.KINDS else ""
    page = max(1, page)
    with p.read() as s:
        rows, total = fraud.list_suspects(
            s,
            p.ws.id,
            status=None if status == "all" else status,
            kind=kind or None,
            group_ids=p.group_ids,
            limit=PAGE,
            offset=(page - 1) * PAGE,
        )
        counts = fraud.counts(s, p.ws.id) if p.group_ids is None else None
        mode = fraud.review_mode(s, p.ws.id)
    done = p.request.query_params.get("done", "")
    n = p.request.query_params.get("n", "0")
    message = {
        "confirmed": gettext("%(n)s invites marked as fraud: they no longer count as valid.")
        % {"n": n},
        "dismissed": gettext("%(n)s invites dismissed: they count again.") % {"n": n},
        "mode": gettext("Review mode saved."),
        "rescanned": gettext("Re-scan finished: %(n)s new suspects.") % {"n": n},
    }.get(done)
    ctx = {
        "active": "invites",
        "flashes": [("ok", message)] if message else [],
        "rows": [(r, [_explain(sig) for sig in r.signals]) for r in rows],
        "total": total,
        "page": page,
        "pages": max(1, (total + PAGE - 1) // PAGE),
        "status": status,
        "kind": kind,
        "counts": counts,
        "mode": mode,
        "statuses": fraud.STATUSES,
        "kinds": fraud.KINDS,
        "can_review": p.may(Perm.MANAGE_TEAM),
    }
    return render(p.request, "invite_review/review.html", ctx, principal=p)


def _back(p: Principal, done: str, extra: str = "") -> Response:
    return RedirectResponse(p.url(f"/invites/review?done={done}{extra}"), status_code=303)


Members = Annotated[list[int], Form()]
Note = Annotated[str, Form(max_length=500)]


def _verdicts(p: Principal, verdict: str, member: list[int], note: str) -> Response:
    """Confirm or dismiss the ticked suspects (one audit entry each)."""
    act = fraud.confirm if verdict == "confirmed" else fraud.dismiss
    with p.write() as s:
        for member_id in dict.fromkeys(member):
            row = act(s, p.ws.id, member_id, p.user.email, note or None)
            kinds = [str(sig["kind"]) for sig in row.signals]
            p.audit(s, f"invite.{verdict}", target=str(member_id), detail={"signals": kinds})
    return _back(p, verdict, f"&n={len(set(member))}")


@router.post("/w/{workspace}/invites/review/confirm")
def confirm(p: Reviewer, member: Members = [], note: Note = "") -> Response:  # noqa: B006
    return _verdicts(p, "confirmed", member, note)


@router.post("/w/{workspace}/invites/review/dismiss")
def dismiss(p: Reviewer, member: Members = [], note: Note = "") -> Response:  # noqa: B006
    return _verdicts(p, "dismissed", member, note)


@router.post("/w/{workspace}/invites/review/mode")
def set_mode(p: Reviewer, mode: Annotated[str, Form(max_length=16)] = "") -> Response:
    with p.write() as s:
        before = fraud.review_mode(s, p.ws.id)
        fraud.set_review_mode(s, p.ws.id, mode)
        p.audit(s, "invite.mode_changed", target=mode, detail={"from": before})
    return _back(p, "mode")


@router.post("/w/{workspace}/invites/review/rescan")
def rescan(p: Reviewer) -> Response:
    with p.write() as s:
        res = fraud.refresh_suspects(s, p.ws.id, p.calendar)
        p.audit(s, "invite.rescanned", detail={"found": res.found, "added": res.added})
    return _back(p, "rescanned", f"&n={res.added}")
