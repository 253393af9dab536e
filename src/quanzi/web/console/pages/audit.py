"""The audit log page: who did what, when, from where; filtered by action and actor."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse

from quanzi.team import service as team
from quanzi.team.roles import Perm
from quanzi.web.console.deps import Principal, need
from quanzi.web.console.render import render
from quanzi.web.i18n import gettext

router = APIRouter(include_in_schema=False)

PER_PAGE = 50


def action_labels() -> dict[str, str]:
    """Audit actions in the user's language (unknown ones are shown as they are stored)."""
    return {
        "login": gettext("Logged in"),
        "login.failed": gettext("Login failed"),
        "logout": gettext("Logged out"),
        "report.export": gettext("Exported a report"),
        "members.export": gettext("Exported members"),
        "member.reveal": gettext("Revealed personal data"),
        "member.erase": gettext("Erased a member's personal data"),
        "tag.created": gettext("Created a tag"),
        "tag.updated": gettext("Changed a tag"),
        "tag.deleted": gettext("Deleted a tag"),
        "tag.group_created": gettext("Created a tag group"),
        "tag.group_updated": gettext("Changed a tag group"),
        "tag.group_deleted": gettext("Deleted a tag group"),
        "tag.tagged": gettext("Tagged members"),
        "tag.untagged": gettext("Untagged members"),
        "tag.added": gettext("Tagged a member"),
        "tag.removed": gettext("Untagged a member"),
        "team.invited": gettext("Invited a colleague"),
        "team.invitation_revoked": gettext("Revoked an invitation"),
        "team.joined": gettext("Joined the team"),
        "team.user_created": gettext("Account created from the command line"),
        "team.role_changed": gettext("Changed a role"),
        "team.groups_assigned": gettext("Assigned groups"),
        "team.deactivated": gettext("Deactivated a colleague"),
        "team.reactivated": gettext("Reactivated a colleague"),
        "import.events": gettext("Imported events"),
        "action.requested": gettext("Requested a platform action"),
        "invite.confirmed": gettext("Confirmed an invite as fraud"),
        "invite.dismissed": gettext("Dismissed a suspected invite"),
        "invite.mode_changed": gettext("Changed the invite review mode"),
        "invite.rescanned": gettext("Re-scanned invites for fraud"),
        "channel.created": gettext("Created a channel code"),
        "channel.updated": gettext("Changed a channel code"),
        "poster.created": gettext("Created a poster template"),
        "poster.updated": gettext("Changed a poster template"),
        "poster.bulk_download": gettext("Downloaded members' share posters"),
        "landing.created": gettext("Created a landing page"),
        "landing.saved": gettext("Saved a landing page draft"),
        "landing.published": gettext("Published a landing page"),
        "landing.unpublished": gettext("Took a landing page offline"),
        "landing.variant_created": gettext("Created an A/B variant"),
        "landing.split": gettext("Changed an A/B split"),
        "landing.test_ended": gettext("Ended an A/B test"),
        "lead.reveal": gettext("Revealed a lead's personal data"),
        "leads.export": gettext("Exported leads"),
        "action.retried": gettext("Retried a platform action"),
        "campaign.created": gettext("Created a campaign"),
        "campaign.updated": gettext("Changed a campaign"),
        "campaign.launched": gettext("Launched a campaign"),
        "campaign.ended": gettext("Ended a campaign"),
        "campaign.cancelled": gettext("Cancelled a campaign"),
        "campaign.forecast": gettext("Made a campaign forecast"),
        "campaign.awarded": gettext("Awarded leaderboard prizes"),
        "campaign.leader": gettext("Made a participant a team leader"),
        "reward.created": gettext("Created a reward"),
        "reward.codes_added": gettext("Added coupon codes"),
        "reward.updated": gettext("Changed a reward"),
        "claim.shipped": gettext("Marked a reward as shipped"),
        "claim.delivered": gettext("Marked a reward as delivered"),
        "claim.revoked": gettext("Revoked a reward"),
        "claim.address_revealed": gettext("Revealed a shipping address"),
        "claims.export": gettext("Exported a shipping list"),
    }


_BROWSERS = (
    ("Edg/", "Edge"),
    ("MicroMessenger", "WeChat"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
    ("python-httpx", "httpx"),
    ("testclient", "test client"),
)
_SYSTEMS = (
    ("Windows", "Windows"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Android", "Android"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
)


def short_agent(agent: str | None) -> str:
    """'Chrome 131 · macOS' from a full user agent; the first 40 characters when unknown."""
    if not agent:
        return "—"
    browser = next((name for key, name in _BROWSERS if key in agent), None)
    system = next((name for key, name in _SYSTEMS if key in agent), None)
    if browser is None:
        return agent[:40] + ("…" if len(agent) > 40 else "")
    key = next(k for k, n in _BROWSERS if n == browser).rstrip("/")
    m = re.search(re.escape(key) + r"/(\d+)", agent)
    version = f" {m.group(1)}" if m else ""
    return f"{browser}{version}" + (f" · {system}" if system else "")


def _detail_items(action: str, detail: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The entry's details as (label, value) pairs; long lists are cut short."""
    if not detail:
        return []
    if action == "team.role_changed" and "old" in detail and "new" in detail:
        return [
            (
                gettext("Role"),
                f"{gettext(str(detail['old']).capitalize())} → "
                f"{gettext(str(detail['new']).capitalize())}",
            )
        ]
    out: list[tuple[str, str]] = []
    for key, value in detail.items():
        if key in ("errors", "warnings"):
            continue  # an import's refused lines are on its result page
        if isinstance(value, list):
            shown = ", ".join(str(v) for v in value[:10])
            text = shown + (f" … (+{len(value) - 10})" if len(value) > 10 else "")
        elif isinstance(value, dict):
            text = ", ".join(f"{k}={v}" for k, v in list(value.items())[:10])
        else:
            text = str(value)
        out.append((key, text[:300]))
    return out


@router.get("/w/{workspace}/audit")
def audit_page(
    p: Annotated[Principal, Depends(need(Perm.AUDIT))],
    action: Annotated[str, Query(max_length=64)] = "",
    actor: Annotated[str, Query(max_length=254)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    with p.read() as s:
        found = team.audit_log(
            s, p.ws.id, action=action or None, actor=actor or None, page=page, per_page=PER_PAGE
        )
        actions = team.audit_actions(s, p.ws.id)
    labels = action_labels()
    entries = [
        {
            "id": e.id,
            "at_us": e.at_us,
            "actor": e.actor,
            "action": e.action,
            "label": labels.get(e.action, e.action),
            "target": e.target,
            "ip": e.ip,
            "agent": short_agent(e.user_agent),
            "agent_full": e.user_agent or "",
            "details": _detail_items(e.action, e.detail),
            "import_result": e.action == "import.events",
        }
        for e in found.rows
    ]
    ctx = {
        "active": "audit",
        "entries": entries,
        "found": found,
        "actions": [(a, labels.get(a, a)) for a in actions],
        "action": action,
        "actor": actor,
    }
    return render(p.request, "audit/audit.html", ctx, principal=p)
