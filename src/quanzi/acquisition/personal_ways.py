"""Personal codes: one person's own WeCom QR code, and what its state means when it comes back.

A personal code is a WeCom contact way (「联系我」) or group join way whose `state` names one
person (states.py): `m:<member>` on a member's share poster, `l:<lead>` on the code a
landing-page lead sees after the form. `request` asks WeCom for one through the connector
action of a channel code's target (`contact_way` / `join_way`, run by the job engine);
`qr_for` gives its QR image once WeCom answered.

When WeCom echoes such a state on an add or a join, `StateResolver` (given to the WeCom
mapping by the callback job and the sync) says what it means: a member's code makes the join
an invite by that member (channel `referral`), a lead's code takes the lead's channel and
links the lead to the member once the event is in. An id that is not a member (same
platform) or a lead of the workspace counts as no state at all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from quanzi.acquisition import lead_links
from quanzi.acquisition.models import ChannelCode, Lead
from quanzi.acquisition.states import MAX_STATE, REFERRAL_CHANNEL, lead_state, parse_state
from quanzi.config import get_settings
from quanzi.connectors.models import ConnectorAction
from quanzi.connectors.wecom.mapping import StateMeaning, plain_states
from quanzi.core.members.models import Member
from quanzi.db.engine import session_scope
from quanzi.kit.errors import InvalidParameter, NotFound

log = logging.getLogger(__name__)

KEY_PREFIX = "personal-way:"
WAY_KINDS = {"wecom_contact": "contact_way", "wecom_group": "join_way"}
MAX_JOIN_GROUPS = 5  # groupchat/add_join_way takes at most 5 chat ids
CACHE_MAX = 10_000
MAX_ID = 2**31 - 1  # ids are INTEGER columns: a larger one names nobody


# --- asking WeCom ------------------------------------------------------------------------------


def _person_exists(session: Session, ws_id: int, state: str) -> None:
    parsed = parse_state(state)
    if parsed.kind not in ("member", "lead") or len(state) > MAX_STATE or parsed.id is None:
        raise InvalidParameter(
            f"state: {state[:40]!r} is not a personal state (m:<member> or l:<lead>)"
        )
    model: Any = Member if parsed.kind == "member" else Lead
    if parsed.id > MAX_ID:
        raise NotFound(f"{parsed.kind} {parsed.id} does not exist")
    found = session.scalar(
        select(model.id).where(model.id == parsed.id, model.workspace_id == ws_id)
    )
    if found is None:
        raise NotFound(f"{parsed.kind} {parsed.id} does not exist")


def _fingerprint(code: ChannelCode) -> str:
    """Changes when the code's target does: a new target gets a new way."""
    raw = json.dumps([code.target_kind, code.target], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def _key(state: str, code: ChannelCode | None = None) -> str:
    prefix = f"{KEY_PREFIX}{state}:"
    return prefix if code is None else f"{prefix}{code.id}:{_fingerprint(code)}"


def request(
    session: Session, ws_id: int, code: ChannelCode, state: str, by: str | None
) -> ConnectorAction | None:
    """Ask WeCom for `state`'s own way on `code`'s target: a contact way to the code's staff
    (with several, WeCom shares the adds among them: type 2) or a join way to its first five
    groups. One per (code, target, state): asking again returns the same action. None when
    WeCom is not connected. The caller commits (the action runs after the commit)."""
    if code.workspace_id != ws_id:
        raise NotFound(f"channel code {code.id} does not exist")
    _person_exists(session, ws_id, state)
    kind = WAY_KINDS.get(code.target_kind)
    if kind is None:
        raise InvalidParameter(
            f"code: {code.name!r} leads to a {code.target_kind}; personal QR codes need a WeCom"
            " contact or group code"
        )
    from quanzi.acquisition.channels import wecom_connected
    from quanzi.connectors.actions import request_action

    if not wecom_connected(session, ws_id):
        return None
    remark = f"{state} {code.name}"[:30]
    payload: dict[str, Any]
    if kind == "contact_way":
        staff = list(code.target["staff"])
        payload = {"type": 1 if len(staff) == 1 else 2, "state": state, "user": staff}
    else:
        payload = {"state": state, "chat_id_list": list(code.target["chat_ids"])[:MAX_JOIN_GROUPS]}
    return request_action(
        session, ws_id, "wecom", kind, {**payload, "remark": remark}, _key(state, code), by
    )


def way_of(
    session: Session, ws_id: int, state: str, code: ChannelCode | None = None
) -> ConnectorAction | None:
    """The latest way asked for `state` (on `code`, when given), whatever its progress."""
    prefix = _key(state) if code is None else f"{_key(state)}{code.id}:"
    return session.scalar(
        select(ConnectorAction)
        .where(
            ConnectorAction.workspace_id == ws_id,
            ConnectorAction.idempotency_key.startswith(prefix, autoescape=True),
        )
        .order_by(ConnectorAction.id.desc())
        .limit(1)
    )


def qr_image_url(action: ConnectorAction | None) -> str | None:
    """WeCom's QR image address from a done way (http or https: WeCom's own examples use
    http://p.qpic.cn/…); None before it is done or when it failed."""
    if action is None or action.state != "done" or not action.result:
        return None
    url = action.result.get("qr_code")
    if isinstance(url, str) and url.startswith(("https://", "http://")) and len(url) < 2000:
        return url
    return None


def qr_for(session: Session, ws_id: int, state: str, code: ChannelCode | None = None) -> str | None:
    """The QR image URL of `state`'s way once WeCom answered, else None."""
    return qr_image_url(way_of(session, ws_id, state, code))


# --- the lead's code on the landing page's thank-you ----------------------------------------------


@dataclass(frozen=True)
class LeadCode:
    """A lead's personal contact code as the thank-you page shows it."""

    token: str
    ready: bool

    @property
    def image(self) -> str:
        return f"/l/{self.token}.png"

    @property
    def page(self) -> str:
        return f"/l/{self.token}"


def contact_code_for(session: Session, lead: Lead) -> ChannelCode | None:
    """The active WeCom contact code whose channel is the lead's, if any."""
    if not lead.channel:
        return None
    return session.scalar(
        select(ChannelCode).where(
            ChannelCode.workspace_id == lead.workspace_id,
            ChannelCode.channel == lead.channel,
            ChannelCode.target_kind == "wecom_contact",
            ChannelCode.active.is_(True),
        )
    )


def for_lead(session: Session, lead: Lead) -> LeadCode | None:
    """Ask for the lead's personal contact way (state l:<id>) when its channel is a WeCom
    contact code and WeCom is connected; what the thank-you page shows of it. A failure here
    never loses the lead: it is logged and the page shows no personal code."""
    code = contact_code_for(session, lead)
    if code is None:
        return None
    try:
        with session.begin_nested():
            action = request(session, lead.workspace_id, code, lead_state(lead.id), None)
    except Exception:
        log.exception("lead %s: its personal contact way could not be requested", lead.id)
        return None
    if action is None or action.state == "failed":
        return None
    return LeadCode(lead_token(lead.workspace_id, lead.id), qr_image_url(action) is not None)


# Tokens of /l/<token>: the workspace and lead ids sealed (AES-GCM, a nonce derived from the
# ids: the same lead always gets the same address) under a key derived from the secret key.
# Unguessable, and they tell nothing (not even how many leads there are).


def _token_key() -> bytes:
    secret = get_settings().resolved_secret_key().encode()
    return hmac.new(secret, b"quanzi lead code token v1", hashlib.sha256).digest()


def lead_token(ws_id: int, lead_id: int) -> str:
    key = _token_key()
    plain = f"{ws_id}:{lead_id}".encode()
    nonce = hmac.new(key, plain, hashlib.sha256).digest()[:12]
    sealed = nonce + AESGCM(key).encrypt(nonce, plain, b"lead-code")
    return base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def read_lead_token(token: str) -> tuple[int, int] | None:
    """(workspace id, lead id) of a token this server made, else None."""
    if not 30 <= len(token) <= 80:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        plain = AESGCM(_token_key()).decrypt(raw[:12], raw[12:], b"lead-code").decode()
        ws, lead = plain.split(":")
        return int(ws), int(lead)
    except (InvalidTag, ValueError, UnicodeDecodeError):
        return None


# --- what a state means when WeCom echoes it -----------------------------------------------------


class StateResolver:
    """States of adds and joins → their meaning (mapping.ResolveState), for one workspace and
    platform; lookups cached for the resolver's life (one job run or one sync of a kind). The
    leads named by `l:` states are linked by `link_leads()` once the events are ingested."""

    def __init__(self, engine: Engine, ws_id: int, platform: str) -> None:
        self.engine, self.ws_id, self.platform = engine, ws_id, platform
        self._members: dict[int, str | None] = {}
        self._leads: dict[int, tuple[bool, str | None]] = {}
        self._pending: list[tuple[int, str]] = []

    def resolve(self, state: str, member: str) -> StateMeaning:
        parsed = parse_state(state)
        if parsed.id is None:
            return plain_states(state, member)
        if parsed.id > MAX_ID:
            return StateMeaning()
        if parsed.kind == "member":
            inviter = self._member_key(parsed.id)
            if inviter is None:
                return StateMeaning()
            return StateMeaning(channel=REFERRAL_CHANNEL, inviter=inviter)
        found, channel = self._lead(parsed.id)
        if not found:
            return StateMeaning()
        self._pending.append((parsed.id, member))
        return StateMeaning(channel=channel, lead_id=parsed.id)

    def _member_key(self, member_id: int) -> str | None:
        if member_id not in self._members:
            with session_scope(self.engine, read_only=True) as s:
                key = s.scalar(
                    select(Member.member_key).where(
                        Member.id == member_id,
                        Member.workspace_id == self.ws_id,
                        Member.platform == self.platform,
                    )
                )
            self._remember(self._members, member_id, key)
        return self._members[member_id]

    def _lead(self, lead_id: int) -> tuple[bool, str | None]:
        if lead_id not in self._leads:
            with session_scope(self.engine, read_only=True) as s:
                row = s.execute(
                    select(Lead.channel).where(Lead.id == lead_id, Lead.workspace_id == self.ws_id)
                ).first()
            self._remember(self._leads, lead_id, (row is not None, row[0] if row else None))
        return self._leads[lead_id]

    @staticmethod
    def _remember(cache: dict[int, Any], key: int, value: Any) -> None:
        if len(cache) >= CACHE_MAX:
            cache.clear()
        cache[key] = value

    def link_leads(self) -> int:
        """Link the leads whose codes came back since the last call (their members exist now
        that the events are ingested); how many were linked."""
        if not self._pending:
            return 0
        pairs, self._pending = self._pending, []
        with session_scope(self.engine) as s:
            return lead_links.link_by_state(s, self.ws_id, self.platform, pairs)
