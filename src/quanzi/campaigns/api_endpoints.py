"""The campaigns API (workspace API token): list and read campaigns, join participants, record
their actions (help, cut, team_open, team_pay, gift_send, gift_redeem, claim) and read the
leaderboard. Each request is one short transaction.

`Idempotency-Key` on POST .../actions: the first answer is stored with the action in the same
transaction (a `campaign_actions` row `api:<key>`), and a retry with the same key gets that
answer back without doing anything again. Errors are 4xx JSON `{"detail", "field"}`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from quanzi.campaigns import bargain, gift, group_buy, leaderboard, progress, service
from quanzi.campaigns.models import Campaign, CampaignAction, Participant
from quanzi.campaigns.public_endpoints import public_ref, ref_id
from quanzi.core.members.service import find_member
from quanzi.db.engine import session_scope
from quanzi.kit.errors import InvalidParameter, NotFound, QuanziError
from quanzi.web.auth import CurrentWorkspace, request_engine

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])

IDEM_MAX = 80
ACTION_KINDS = ("help", "cut", "team_open", "team_pay", "gift_send", "gift_redeem", "claim")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JoinIn(_Body):
    """Who joins: a member (platform + member key) and/or a phone number."""

    platform: str | None = Field(default=None, max_length=20, examples=["wecom"])
    member_key: str | None = Field(default=None, max_length=100, examples=["wm_abc123"])
    phone: str | None = Field(default=None, max_length=40, examples=["13812345678"])
    name: str | None = Field(default=None, max_length=30, examples=["张三"])
    referrer: str | None = Field(
        default=None, max_length=30, description="the referrer's public ref (share link `r`)"
    )


class ActionIn(_Body):
    """One action of `participant` (an id); `other` is the helper for help / cut."""

    kind: Literal["help", "cut", "team_open", "team_pay", "gift_send", "gift_redeem", "claim"]
    participant: int = Field(ge=1, le=2**31 - 1, examples=[12])
    other: int | None = Field(default=None, ge=1, le=2**31 - 1, examples=[13])
    team: int | None = Field(default=None, ge=1, le=2**31 - 1)
    order_key: str | None = Field(default=None, max_length=255, examples=["shop-order-991"])
    amount_fen: int | None = Field(default=None, ge=1, le=10**11, examples=[9900])
    invites: int | None = Field(default=None, ge=1, le=100_000, examples=[3])


def _problem(exc: QuanziError) -> JSONResponse:
    message = str(exc)
    field = message.split(":", 1)[0] if ":" in message else None
    return JSONResponse(status_code=exc.status_code, content={"detail": message, "field": field})


def _campaign(session: Session, ws_id: int, key: str) -> Campaign:
    found = session.scalar(
        select(Campaign).where(Campaign.workspace_id == ws_id, Campaign.key == key[:30])
    )
    if found is None:
        raise NotFound(f"key: no campaign {key[:30]!r} in this workspace")
    return found


def _campaign_json(c: Campaign) -> dict[str, Any]:
    return {
        "key": c.key, "slug": c.slug, "kind": c.kind, "name": c.name, "status": c.status,
        "starts_at_us": c.starts_at_us, "ends_at_us": c.ends_at_us, "rules": c.rules,
        "page": f"/k/{c.slug}", "draw_commitment": c.draw_commitment, "draw_seed": c.draw_seed,
    }  # fmt: skip


@router.get("", summary="List the workspace's campaigns")
def list_campaigns(request: Request, ws: CurrentWorkspace) -> JSONResponse:
    with session_scope(request_engine(request), read_only=True) as s:
        rows = [_campaign_json(c) for c in service.list_campaigns(s, ws.id)]
    return JSONResponse({"campaigns": rows})


@router.get("/{key}", summary="One campaign")
def get_campaign(request: Request, key: str, ws: CurrentWorkspace) -> JSONResponse:
    try:
        with session_scope(request_engine(request), read_only=True) as s:
            c = _campaign(s, ws.id, key)
            out = _campaign_json(c) | {"participants": service.count_participants(s, c)}
    except QuanziError as exc:
        return _problem(exc)
    return JSONResponse(out)


@router.post(
    "/{key}/participants",
    summary="Join a participant (a member or a phone number); the same person again is 200",
)
def join_participant(
    request: Request, key: str, body: JoinIn, ws: CurrentWorkspace
) -> JSONResponse:
    try:
        with session_scope(request_engine(request)) as s:
            c = _campaign(s, ws.id, key)
            member_id = None
            if body.member_key is not None:
                member_id = find_member(s, ws.id, body.platform or "wecom", body.member_key).id
            referrer = ref_id(body.referrer) if body.referrer else None
            joined = service.join(
                s, c, member_id=member_id, phone=body.phone, name=body.name, referrer_id=referrer
            )
            p = joined.participant
            out = {
                "participant": p.id, "ref": public_ref(p.id), "new": joined.token is not None,
                "page": f"/k/{c.slug}/me/{joined.token}" if joined.token else None,
            }  # fmt: skip
    except QuanziError as exc:
        return _problem(exc)
    return JSONResponse(out, status_code=201 if out["new"] else 200)


def _other(session: Session, c: Campaign, body: ActionIn) -> Participant:
    if body.other is None:
        raise InvalidParameter("other: give the helper's participant id")
    return service.get_participant(session, c, body.other)


def _act(session: Session, c: Campaign, p: Participant, body: ActionIn) -> dict[str, Any]:
    """Do the action; its answer."""
    if body.kind == "help":
        helped = progress.help_participant(session, c, p, helper=_other(session, c, body))
        return {"counted": helped.counted, "helps": helped.helps}
    if body.kind == "cut":
        helper = _other(session, c, body)
        mine = bargain.bargain_of(session, c, p) or bargain.start_bargain(session, c, p)
        step = bargain.cut(session, c, mine, helper)
        return {
            "counted": step is not None,
            "cut_fen": step.cut_fen if step is not None else None,
            "current_fen": mine.current_fen,
        }
    if body.kind == "team_open":
        return {"team": group_buy.open_team(session, c, p).id}
    if body.kind == "team_pay":
        if body.team is None or body.order_key is None or body.amount_fen is None:
            raise InvalidParameter("team: give team, order_key and amount_fen")
        team = group_buy.get_team(session, c, body.team)
        group_buy.join_team(session, c, team, p)
        group_buy.pay(session, c, team, p, body.order_key, body.amount_fen)
        return {"team": team.id, "filled": team.filled, "status": team.status}
    if body.kind == "gift_send":
        sent = gift.send_gift(session, c, p)
        return {"gift": sent.gift.id, "token": sent.token}
    if body.kind == "gift_redeem":
        done = gift.redeem(session, c, p)
        return {
            "friend_claim": done.friend_claim.id if done.friend_claim else None,
            "sender_claim": done.sender_claim.id if done.sender_claim else None,
        }
    if body.invites is None:
        raise InvalidParameter("invites: give the tier (its number of invites)")
    claim = progress.claim_tier(session, c, p, body.invites)
    return {"claim": claim.id, "status": claim.status, "code": claim.code}


def _stored(session: Session, c: Campaign, idem: str) -> dict[str, Any] | None:
    found = session.scalar(
        select(CampaignAction.detail).where(
            CampaignAction.campaign_id == c.id, CampaignAction.idem_key == f"api:{idem}"
        )
    )
    return dict(found) if found is not None else None


@router.post("/{key}/actions", summary="Record a participant's action (idempotent by key)")
def record_action(
    request: Request,
    key: str,
    body: ActionIn,
    ws: CurrentWorkspace,
    idempotency_key: Annotated[str | None, Header(max_length=IDEM_MAX)] = None,
) -> JSONResponse:
    try:
        with session_scope(request_engine(request)) as s:
            c = _campaign(s, ws.id, key)
            if idempotency_key:
                seen = _stored(s, c, idempotency_key)
                if seen is not None:
                    return JSONResponse(seen["answer"], headers={"Idempotent-Replayed": "true"})
            p = service.get_participant(s, c, body.participant)
            answer = {"kind": body.kind, "participant": p.id} | _act(s, c, p, body)
            if idempotency_key:
                service.record_action(
                    s, c, p, "api", f"api:{idempotency_key}", detail={"answer": answer}
                )
    except QuanziError as exc:
        return _problem(exc)
    return JSONResponse(answer)


@router.get("/{key}/leaderboard", summary="The leaderboard's first n (ties: first to reach)")
def get_leaderboard(request: Request, key: str, ws: CurrentWorkspace, n: int = 100) -> JSONResponse:
    try:
        with session_scope(request_engine(request), read_only=True) as s:
            c = _campaign(s, ws.id, key)
            rows = [
                {"rank": r.rank, "participant": r.participant_id, "score": r.score,
                 "score_at_us": r.score_at_us}
                for r in leaderboard.top(s, c, n)
            ]  # fmt: skip
    except QuanziError as exc:
        return _problem(exc)
    return JSONResponse({"top": rows})
