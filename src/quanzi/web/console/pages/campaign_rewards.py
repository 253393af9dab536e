"""Rewards and their claims in the console: create rewards (a coupon code pool pasted or
uploaded, membership days, points, a content link, a physical gift with stock), stock left, and
per campaign the claims with the fulfilment of physical rewards (pending → shipped with a
tracking number → delivered, or revoked).

Everyone who may view sees rewards and claims, with names and addresses masked. Owners and
admins (manage_team: fulfilment is managing the campaign) create rewards and move claims,
audited. A shipping address is sealed: one claim's address opens through an audited POST,
answered with the page itself so it is in no URL; the shipping list export is audited and
carries addresses in the clear only for roles that may reveal personal data, when asked.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from quanzi.analytics.exports import Cell, to_csv, to_xlsx
from quanzi.campaigns import rewards
from quanzi.campaigns import service as campaigns
from quanzi.campaigns.models import Participant, Reward, RewardClaim
from quanzi.kit.clock import day_date, from_us, zone
from quanzi.kit.errors import InvalidParameter, QuanziError
from quanzi.kit.masking import mask_name, mask_phone
from quanzi.team.errors import NotAllowed
from quanzi.team.roles import Perm
from quanzi.web.console.deps import Principal, need
from quanzi.web.console.pages.campaigns import (
    kind_labels,
    participant_labels,
    reward_kind_labels,
    yuan_fen,
)
from quanzi.web.console.render import render
from quanzi.web.i18n import current_locale, gettext, translate_error

router = APIRouter(include_in_schema=False)

Viewer = Annotated[Principal, Depends(need(Perm.VIEW))]
Manager = Annotated[Principal, Depends(need(Perm.MANAGE_TEAM))]

MAX_CODE_FILE = 2 * 1024 * 1024
CLAIMS_SHOWN = 500
EXPORT_LIMIT = 50_000
CODE_HEADERS = {"code", "codes", "coupon", "券码", "兑换码", "优惠码"}
# A reward form's fields by the name the engine gives them in its messages.
REWARD_FIELDS = {
    "name": "name",
    "kind": "kind",
    "unit_cost_fen": "unit_cost",
    "stock": "stock",
    "config.value_fen": "value",
    "config.days": "days",
    "config.points": "points",
    "config.url": "url",
    "config.sku": "sku",
    "config": "kind",
    "codes": "codes",
    "campaign_id": "campaign_id",
}


def claim_status_labels() -> dict[str, str]:
    return {
        "granted": gettext("Granted"),
        "pending": gettext("To ship"),
        "shipped": gettext("Shipped"),
        "delivered": gettext("Delivered"),
        "revoked": gettext("Revoked"),
    }


def reward_field_labels() -> dict[str, str]:
    return {
        "name": gettext("Reward name"),
        "kind": gettext("Reward kind"),
        "unit_cost": gettext("Unit cost (yuan)"),
        "stock": gettext("Stock"),
        "value": gettext("Coupon value (yuan)"),
        "days": gettext("Membership days"),
        "points": gettext("Points"),
        "url": gettext("Content link"),
        "sku": gettext("SKU"),
        "codes": gettext("Coupon codes"),
        "campaign_id": gettext("For campaign"),
    }


def explain(message: str) -> tuple[str, str]:
    """(the reward form field at fault, the message in the operator's language)."""
    where, sep, problem = message.partition(": ")
    name = REWARD_FIELDS.get(where.split("[")[0]) if sep else None
    if name is None:
        return "", translate_error(message)
    colon = "：" if current_locale.get() == "zh-CN" else ": "
    return name, f"{reward_field_labels()[name]}{colon}{translate_error(problem)}"


# --- code pools ----------------------------------------------------------------------------------


def codes_from_text(text: str) -> list[str]:
    """Codes, one per line; of a CSV line its first cell; a header line (code, 券码) skipped."""
    out: list[str] = []
    for i, row in enumerate(csv.reader(io.StringIO(text))):
        cell = row[0].strip() if row else ""
        if i == 0 and cell.lower() in CODE_HEADERS:
            continue
        out.append(cell)
    return out


async def posted_codes(form: Any) -> list[str]:
    """The codes pasted into `codes` and those of an uploaded text or CSV file `codes_file`
    (UTF-8, or GB18030 as Excel in Chinese saves it)."""
    found = codes_from_text(str(form.get("codes") or ""))
    upload = form.get("codes_file")
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read(MAX_CODE_FILE + 1)
        if len(data) > MAX_CODE_FILE:
            raise InvalidParameter("codes: the file is larger than 2 MB")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = data.decode("gb18030")
            except UnicodeDecodeError:
                raise InvalidParameter("codes: the file is not text (UTF-8 or GB18030)") from None
        found += codes_from_text(text)
    return found


# --- rewards -------------------------------------------------------------------------------------


def _rewards_page(
    p: Principal,
    values: dict[str, str] | None = None,
    error: tuple[str, str] | None = None,
    done: str = "",
    status_code: int = 200,
) -> Response:
    with p.read() as s:
        names = {c.id: c.name for c in campaigns.list_campaigns(s, p.ws.id)}
        choices = [
            (c.id, c.name)
            for c in campaigns.list_campaigns(s, p.ws.id)
            if c.status in ("draft", "live")
        ]
        rows = []
        for r in rewards.list_rewards(s, p.ws.id):
            rows.append(
                {
                    "r": r,
                    "left": None if r.stock is None else r.stock - r.claimed,
                    "codes_left": rewards.codes_left(s, r.id) if r.kind == "coupon_code" else None,
                    "campaign": names.get(r.campaign_id) if r.campaign_id else None,
                }
            )
    texts = {
        "created": gettext("Reward created."),
        "codes": gettext("Codes added to the pool."),
        "active": gettext("Reward saved."),
    }
    flashes = [("ok", texts[done])] if done in texts else []
    ctx = {
        "active": "campaigns",
        "rows": rows,
        "reward_kinds": reward_kind_labels(),
        "campaign_choices": choices,
        "labels": reward_field_labels(),
        "v": values or {"kind": "coupon_code", "unit_cost": "0"},
        "error_field": error[0] if error else "",
        "error_text": error[1] if error else "",
        "may_edit": p.may(Perm.MANAGE_TEAM),
        "flashes": flashes,
    }
    return render(p.request, "campaigns/rewards.html", ctx, principal=p, status_code=status_code)


@router.get("/w/{workspace}/rewards")
def rewards_page(p: Viewer, done: Annotated[str, Query(max_length=20)] = "") -> Response:
    return _rewards_page(p, done=done)


def _config(kind: str, v: dict[str, str]) -> dict[str, Any]:
    if kind == "coupon_code":
        value = v.get("value", "").strip()
        return {"value_fen": yuan_fen(value, "config.value_fen")} if value else {}
    field = {"membership_days": "days", "points": "points", "content_link": "url"}.get(kind)
    if field is not None:
        text = v.get(field, "").strip()
        return {field: text} if text else {}
    sku = v.get("sku", "").strip()
    return {"sku": sku} if kind == "physical" and sku else {}


def _stock(text: str) -> int | None:
    clean = text.strip()
    if not clean:
        return None
    if not clean.isdigit():
        raise InvalidParameter(f"stock: give a whole number, not {clean[:20]!r}")
    return int(clean)


@router.post("/w/{workspace}/rewards/create")
async def create_reward(p: Manager) -> Response:
    form = await p.request.form()
    v = {k: val for k, val in form.items() if isinstance(val, str)}
    try:
        kind = v.get("kind", "")
        codes = await posted_codes(form) if kind == "coupon_code" else []
        campaign = v.get("campaign_id", "").strip()
        with p.write() as s:
            reward = rewards.create_reward(
                s,
                p.ws.id,
                name=v.get("name", ""),
                kind=kind,
                unit_cost_fen=yuan_fen(v.get("unit_cost", "") or "0", "unit_cost_fen"),
                stock=None if kind == "coupon_code" else _stock(v.get("stock", "")),
                config=_config(kind, v),
                campaign_id=int(campaign) if campaign.isdigit() else None,
            )
            added = rewards.add_codes(s, p.ws.id, reward.id, codes) if codes else 0
            p.audit(
                s,
                "reward.created",
                target=reward.name,
                detail={"id": reward.id, "kind": kind, "codes": added, "stock": reward.stock},
            )
    except QuanziError as exc:
        return _rewards_page(p, v, explain(str(exc)), status_code=exc.status_code)
    return RedirectResponse(p.url("/rewards?done=created"), status_code=303)


@router.post("/w/{workspace}/rewards/{reward_id:int}/codes")
async def add_codes(reward_id: int, p: Manager) -> Response:
    """Grow a coupon pool by pasted or uploaded codes (codes already there are skipped)."""
    form = await p.request.form()
    with p.read() as s:
        rewards.get_reward(s, p.ws.id, reward_id)
    try:
        codes = await posted_codes(form)
        with p.write() as s:
            added = rewards.add_codes(s, p.ws.id, reward_id, codes)
            p.audit(
                s,
                "reward.codes_added",
                target=f"reward {reward_id}",
                detail={"id": reward_id, "given": len([c for c in codes if c]), "added": added},
            )
    except QuanziError as exc:
        return _rewards_page(p, None, explain(str(exc)), status_code=exc.status_code)
    return RedirectResponse(p.url("/rewards?done=codes"), status_code=303)


@router.post("/w/{workspace}/rewards/{reward_id:int}/active")
def set_active(
    reward_id: int, p: Manager, active: Annotated[str, Form(max_length=1)] = "0"
) -> Response:
    """Switch a reward off (no longer granted; claims made stay) or on again."""
    with p.write() as s:
        reward = rewards.set_active(s, p.ws.id, reward_id, active == "1")
        p.audit(
            s,
            "reward.updated",
            target=reward.name,
            detail={"id": reward.id, "active": reward.active},
        )
    return RedirectResponse(p.url("/rewards?done=active"), status_code=303)


# --- claims and fulfilment -----------------------------------------------------------------------


def masked_address(address: dict[str, str] | None) -> dict[str, str] | None:
    """An address as every role sees it: 王**, 138****5678, the region, the first characters
    of the street address."""
    if not address:
        return None
    detail = address.get("detail", "")
    return {
        "name": mask_name(address.get("name", "")),
        "phone": mask_phone(address.get("phone", "")),
        "region": address.get("region", ""),
        "detail": detail[:2] + "****" if detail else "",
    }


def _claims(
    s: Session, p: Principal, campaign_id: int, status: str, limit: int, physical_only: bool
) -> list[dict[str, Any]]:
    q = select(RewardClaim, Reward).join(Reward, Reward.id == RewardClaim.reward_id)
    q = q.where(RewardClaim.workspace_id == p.ws.id, RewardClaim.campaign_id == campaign_id)
    if status:
        q = q.where(RewardClaim.status == status)
    if physical_only:
        q = q.where(Reward.kind == "physical", RewardClaim.status != "revoked")
    found = [
        (claim, reward)
        for claim, reward in s.execute(q.order_by(RewardClaim.id.desc()).limit(limit))
    ]
    people = {
        x.id: x
        for x in s.scalars(
            select(Participant).where(
                Participant.workspace_id == p.ws.id,
                Participant.id.in_(sorted({claim.participant_id for claim, _r in found}) or [0]),
            )
        )
    }
    names = participant_labels(s, p, list(people.values()))
    out = []
    for claim, reward in found:
        who = people.get(claim.participant_id)
        address = (
            rewards.open_address(s, who) if who is not None and reward.kind == "physical" else None
        )
        out.append(
            {
                "claim": claim,
                "reward": reward,
                "who": names.get(claim.participant_id, f"#{claim.participant_id}"),
                "address": address,
                "masked": masked_address(address),
            }
        )
    return out


def _claims_page(
    p: Principal,
    campaign_id: int,
    status: str = "",
    revealed: dict[int, dict[str, str]] | None = None,
    error: str | None = None,
    done: str = "",
    status_code: int = 200,
) -> Response:
    if status and status not in rewards.CLAIM_STATUSES:
        raise InvalidParameter(f"status: one of {', '.join(rewards.CLAIM_STATUSES)}")
    with p.read() as s:
        c = campaigns.get_campaign(s, p.ws.id, campaign_id)
        rows = _claims(s, p, campaign_id, status, CLAIMS_SHOWN, physical_only=False)
        for row in rows:
            row.pop("address")
        s.expunge(c)
    texts = {
        "shipped": gettext("Marked as shipped."),
        "delivered": gettext("Marked as delivered."),
        "revoked": gettext("Claim revoked: the unit went back to stock."),
    }
    flashes = [("ok", texts[done])] if done in texts else []
    ctx = {
        "active": "campaigns",
        "c": c,
        "kinds": kind_labels(),
        "rows": rows,
        "statuses": claim_status_labels(),
        "reward_kinds": reward_kind_labels(),
        "status": status,
        "revealed": revealed or {},
        "may_edit": p.may(Perm.MANAGE_TEAM),
        "may_reveal": p.may(Perm.MANAGE_TEAM) and p.may(Perm.REVEAL),
        "flashes": flashes + ([("error", error)] if error else []),
    }
    return render(p.request, "campaigns/claims.html", ctx, principal=p, status_code=status_code)


@router.get("/w/{workspace}/campaigns/{campaign_id:int}/claims")
def claims_page(
    campaign_id: int,
    p: Viewer,
    status: Annotated[str, Query(max_length=12)] = "",
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    return _claims_page(p, campaign_id, status, done=done)


def _claim_of(s: Session, p: Principal, campaign_id: int, claim_id: str) -> RewardClaim:
    if not claim_id.strip().isdigit():
        raise InvalidParameter("claim_id: give a claim number")
    claim = rewards.get_claim(s, p.ws.id, int(claim_id))
    if claim.campaign_id != campaign_id:
        raise InvalidParameter(f"claim_id: claim {claim_id} is not of this campaign")
    return claim


def _fulfil(p: Principal, campaign_id: int, claim_id: str, step: str, tracking_no: str) -> Response:
    with p.read() as s:
        campaigns.get_campaign(s, p.ws.id, campaign_id)
    try:
        with p.write() as s:
            claim = _claim_of(s, p, campaign_id, claim_id)
            if step == "shipped":
                rewards.ship(s, p.ws.id, claim.id, tracking_no, p.user.email)
            elif step == "delivered":
                rewards.deliver(s, p.ws.id, claim.id, p.user.email)
            else:
                rewards.revoke(s, p.ws.id, claim.id, p.user.email)
            p.audit(
                s,
                f"claim.{step}",
                target=f"claim {claim.id}",
                detail={
                    "claim": claim.id,
                    "campaign": campaign_id,
                    "tracking_no": claim.tracking_no,
                },
            )
    except QuanziError as exc:
        return _claims_page(p, campaign_id, error=translate_error(str(exc)), status_code=400)
    return RedirectResponse(p.url(f"/campaigns/{campaign_id}/claims?done={step}"), status_code=303)


@router.post("/w/{workspace}/campaigns/{campaign_id:int}/claims/ship")
def ship(
    campaign_id: int,
    p: Manager,
    claim_id: Annotated[str, Form(max_length=12)] = "",
    tracking_no: Annotated[str, Form(max_length=80)] = "",
) -> Response:
    return _fulfil(p, campaign_id, claim_id, "shipped", tracking_no)


@router.post("/w/{workspace}/campaigns/{campaign_id:int}/claims/deliver")
def deliver(
    campaign_id: int, p: Manager, claim_id: Annotated[str, Form(max_length=12)] = ""
) -> Response:
    return _fulfil(p, campaign_id, claim_id, "delivered", "")


@router.post("/w/{workspace}/campaigns/{campaign_id:int}/claims/revoke")
def revoke(
    campaign_id: int, p: Manager, claim_id: Annotated[str, Form(max_length=12)] = ""
) -> Response:
    return _fulfil(p, campaign_id, claim_id, "revoked", "")


@router.post("/w/{workspace}/campaigns/{campaign_id:int}/claims/reveal")
def reveal(
    campaign_id: int, p: Manager, claim_id: Annotated[str, Form(max_length=12)] = ""
) -> Response:
    """Open the shipping address of one claim: audited, answered with the page itself."""
    if not p.may(Perm.REVEAL):
        raise NotAllowed(f"your role ({p.role}) may not see personal data")
    with p.read() as s:
        campaigns.get_campaign(s, p.ws.id, campaign_id)
    try:
        with p.write() as s:
            claim = _claim_of(s, p, campaign_id, claim_id)
            who = s.get(Participant, claim.participant_id)
            address = rewards.open_address(s, who) if who is not None else None
            p.audit(
                s,
                "claim.address_revealed",
                target=f"claim {claim.id}",
                detail={"claim": claim.id, "participant": claim.participant_id,
                        "found": address is not None},
            )  # fmt: skip
    except QuanziError as exc:
        return _claims_page(p, campaign_id, error=translate_error(str(exc)), status_code=400)
    revealed = {claim.id: address} if address else {}
    return _claims_page(p, campaign_id, revealed=revealed)


@router.get("/w/{workspace}/campaigns/{campaign_id:int}/claims/export")
def export_shipping(
    campaign_id: int,
    p: Manager,
    format: Annotated[str, Query(max_length=4)] = "csv",
    personal_data: Annotated[str, Query(alias="personal", max_length=10)] = "masked",
) -> Response:
    """The shipping list (physical claims not revoked) as CSV (UTF-8 with BOM) or Excel;
    addresses masked unless the role may reveal personal data and `personal=open` is asked."""
    if format not in ("csv", "xlsx"):
        raise InvalidParameter(f"format must be csv or xlsx, not {format!r}")
    reveal_all = personal_data == "open" and p.may(Perm.REVEAL)
    tz = zone(p.ws.timezone)
    statuses = claim_status_labels()
    out: list[list[Cell]] = []
    with p.read() as s:
        c = campaigns.get_campaign(s, p.ws.id, campaign_id)
        key = c.key
        for row in _claims(s, p, campaign_id, "", EXPORT_LIMIT, physical_only=True):
            claim: RewardClaim = row["claim"]
            address = (row["address"] if reveal_all else row["masked"]) or {}
            out.append(
                [
                    claim.id,
                    claim.participant_id,
                    row["who"],
                    row["reward"].name,
                    statuses.get(claim.status, claim.status),
                    claim.tracking_no,
                    from_us(claim.claimed_at_us).astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                    address.get("name"),
                    address.get("phone"),
                    address.get("region"),
                    address.get("detail"),
                ]
            )
    with p.write() as s:
        p.audit(
            s,
            "claims.export",
            target=f"{len(out)} claims of {key}",
            detail={
                "campaign": campaign_id,
                "format": format,
                "rows": len(out),
                "personal": "open" if reveal_all else "masked",
            },
        )
    labels = [
        gettext("Claim no."),
        gettext("Participant no."),
        gettext("Participant"),
        gettext("Reward"),
        gettext("Status"),
        gettext("Tracking no."),
        gettext("Claimed at"),
        gettext("Recipient"),
        gettext("Phone"),
        gettext("Region"),
        gettext("Street address"),
    ]
    stamp = day_date(p.calendar.today()).strftime("%Y%m%d")
    if format == "csv":
        body, media_type = to_csv(labels, out), "text/csv; charset=utf-8"
    else:
        body = to_xlsx(labels, out, gettext("Shipping list"))
        media_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="shipping-{key}-{stamp}.{format}"',
            "Cache-Control": "no-store",
        },
    )
