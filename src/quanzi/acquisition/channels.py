"""Channel codes (活码): create and edit them, record their visits, rotate their targets.

A code has a short slug (`/c/<code>`, unique everywhere) and a channel key (the events'
`channel` and WeCom's `state`, unique per workspace). Its target is one of:

- wecom_contact: {"staff": [...], "rotation": "round_robin"|"least_loaded", "daily_cap": n}
  (0 = no cap); one WeCom contact way (type 1) per staff member, all with state = channel.
- wecom_group: {"chat_ids": [...], "capacity": 200}; one join way per group; a visit goes to
  the first group below its capacity (size from the memberships projection).
- link: {"url": "https://..."}; landing: {"page": "<slug>"}.

The per-day rotation counter (ChannelRotation) is advanced with one conditional UPDATE, so two
visits at once never both take the last place under a staff member's daily cap.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quanzi.acquisition.models import (
    TARGET_KINDS,
    ChannelCode,
    ChannelRotation,
    ChannelVisit,
)
from quanzi.acquisition.serving import Fresh, PerDatabase, forget_on_commit
from quanzi.acquisition.states import member_state, parse_state
from quanzi.acquisition.visitors import Visitor
from quanzi.acquisition.writers import VISITS, PendingVisit
from quanzi.core.groups.models import Group
from quanzi.core.members.models import Membership
from quanzi.core.workspaces.models import Workspace
from quanzi.core.workspaces.service import workspace_key
from quanzi.db.engine import session_scope
from quanzi.kit.clock import LocalCalendar, now_us
from quanzi.kit.errors import InvalidParameter, NotFound

log = logging.getLogger(__name__)

ROTATIONS = ("round_robin", "least_loaded")
UA_CLASSES = ("wechat", "wecom", "ios", "android", "desktop", "bot", "other")
DEFAULT_CAPACITY = 200
MAX_TARGETS = 100
SLUG_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud from a poster
SLUG_LEN = 7
CODE_RE = re.compile(r"^[a-z0-9]{1,16}$")
CHANNEL_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,30}$")
ID_RE = re.compile(r"^[A-Za-z0-9_.@\-]{1,64}$")
PAGE_RE = re.compile(r"^[a-z0-9][a-z0-9\-]{0,63}$")


@dataclass(frozen=True)
class Visit:
    code: ChannelCode
    kind: str  # scan | visit
    ua_class: str
    assigned: str | None
    capped: bool  # every target was at its cap: the least loaded one was used anyway


# --- validation --------------------------------------------------------------------------------


def _ids(value: Any, field: str) -> list[str]:
    if isinstance(value, str):
        value = [v for v in re.split(r"[\s,，]+", value) if v]
    if not isinstance(value, list) or not value:
        raise InvalidParameter(f"{field}: give at least one id")
    out: list[str] = []
    for v in value:
        v = str(v).strip()
        if not ID_RE.match(v):
            raise InvalidParameter(f"{field}: {v[:40]!r} is not an id (letters, digits, _.@-)")
        if v not in out:
            out.append(v)
    if len(out) > MAX_TARGETS:
        raise InvalidParameter(f"{field}: at most {MAX_TARGETS} ids")
    return out


def _int(value: Any, field: str, lo: int, hi: int, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise InvalidParameter(f"{field}: {str(value)[:20]!r} is not a whole number") from None
    if not lo <= n <= hi:
        raise InvalidParameter(f"{field}: must be between {lo} and {hi}")
    return n


def validate_target(kind: str, target: dict[str, Any]) -> dict[str, Any]:
    """The target, normalised; InvalidParameter naming the field that is wrong."""
    if kind not in TARGET_KINDS:
        raise InvalidParameter(f"target_kind: {kind!r} is not one of {', '.join(TARGET_KINDS)}")
    if kind == "wecom_contact":
        rotation = target.get("rotation") or "round_robin"
        if rotation not in ROTATIONS:
            raise InvalidParameter(f"rotation: {rotation!r} is not one of {', '.join(ROTATIONS)}")
        return {
            "staff": _ids(target.get("staff"), "staff"),
            "rotation": rotation,
            "daily_cap": _int(target.get("daily_cap"), "daily_cap", 0, 1_000_000, 0),
        }
    if kind == "wecom_group":
        return {
            "chat_ids": _ids(target.get("chat_ids"), "chat_ids"),
            "capacity": _int(target.get("capacity"), "capacity", 1, 2000, DEFAULT_CAPACITY),
        }
    if kind == "link":
        url = str(target.get("url") or "").strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 2000:
            raise InvalidParameter("url: give an http:// or https:// address")
        return {"url": url}
    page = str(target.get("page") or "").strip()
    if not PAGE_RE.match(page):
        raise InvalidParameter("page: give the landing page's slug (a-z, 0-9, -)")
    return {"page": page}


def _name(name: str) -> str:
    name = (name or "").strip()
    if not 1 <= len(name) <= 100:
        raise InvalidParameter("name: give 1-100 characters")
    return name


def _channel(channel: str) -> str:
    channel = (channel or "").strip()
    if not CHANNEL_RE.match(channel):
        raise InvalidParameter("channel: give 1-30 letters, digits, _ . or -")
    return channel


def _cost(cost_fen: Any) -> int:
    return _int(cost_fen, "cost", 0, 10**13, 0)


# --- codes -------------------------------------------------------------------------------------


def _new_slug(s: Session) -> str:
    for _ in range(20):
        slug = "".join(secrets.choice(SLUG_ALPHABET) for _ in range(SLUG_LEN))
        if s.scalar(select(ChannelCode.id).where(ChannelCode.code == slug)) is None:
            return slug
    raise RuntimeError("could not find a free channel code slug")  # pragma: no cover


def _channel_taken(s: Session, ws_id: int, channel: str, except_id: int | None = None) -> None:
    q = select(ChannelCode.id).where(
        ChannelCode.workspace_id == ws_id, ChannelCode.channel == channel
    )
    if except_id is not None:
        q = q.where(ChannelCode.id != except_id)
    if s.scalar(q) is not None:
        raise InvalidParameter(f"channel: {channel!r} is already used by another code")


def create_code(
    s: Session,
    ws_id: int,
    *,
    name: str,
    channel: str,
    target_kind: str,
    target: dict[str, Any],
    cost_fen: Any = 0,
    created_by: str | None = None,
) -> ChannelCode:
    clean = validate_target(target_kind, target)
    channel = _channel(channel)
    _channel_taken(s, ws_id, channel)
    now = now_us()
    code = ChannelCode(
        workspace_id=ws_id,
        code=_new_slug(s),
        name=_name(name),
        channel=channel,
        target_kind=target_kind,
        target=clean,
        platform_ref=None,
        cost_fen=_cost(cost_fen),
        active=True,
        created_by=created_by,
        created_at_us=now,
        updated_at_us=now,
    )
    try:
        with s.begin_nested():
            s.add(code)
    except IntegrityError:
        raise InvalidParameter(f"channel: {channel!r} is already used by another code") from None
    request_ways(s, code, created_by)
    return code


def get_code(s: Session, ws_id: int, code_id: int) -> ChannelCode:
    code = s.get(ChannelCode, code_id)
    if code is None or code.workspace_id != ws_id:
        raise NotFound(f"channel code {code_id} does not exist")
    return code


def code_by_slug(s: Session, slug: str) -> ChannelCode | None:
    if not CODE_RE.fullmatch(slug):  # no query for what no code looks like (NUL, 300 characters)
        return None
    return s.scalar(select(ChannelCode).where(ChannelCode.code == slug))


def list_codes(s: Session, ws_id: int) -> list[ChannelCode]:
    return list(
        s.scalars(
            select(ChannelCode)
            .where(ChannelCode.workspace_id == ws_id)
            .order_by(ChannelCode.active.desc(), ChannelCode.id.desc())
        )
    )


def update_code(
    s: Session,
    ws_id: int,
    code_id: int,
    *,
    name: str | None = None,
    channel: str | None = None,
    target_kind: str | None = None,
    target: dict[str, Any] | None = None,
    cost_fen: Any = None,
    active: bool | None = None,
    updated_by: str | None = None,
) -> tuple[ChannelCode, list[str]]:
    """Change what is given; returns the code and the names of the fields that changed."""
    code = get_code(s, ws_id, code_id)
    changed: list[str] = []
    new: dict[str, Any] = {}
    if name is not None:
        new["name"] = _name(name)
    if channel is not None:
        new["channel"] = _channel(channel)
        if new["channel"] != code.channel:
            _channel_taken(s, ws_id, new["channel"], code.id)
    if target_kind is not None or target is not None:
        kind = target_kind or code.target_kind
        new["target_kind"] = kind
        new["target"] = validate_target(kind, target if target is not None else code.target)
    if cost_fen is not None:
        new["cost_fen"] = _cost(cost_fen)
    if active is not None:
        new["active"] = bool(active)
    for field, value in new.items():
        if getattr(code, field) != value:
            setattr(code, field, value)
            changed.append(field)
    if changed:
        code.updated_at_us = now_us()
        _forget_code(s, code.code)
        if {"channel", "target_kind", "target"} & set(changed):
            code.platform_ref = None
            request_ways(s, code, updated_by)
    return code, changed


# --- the WeCom side ----------------------------------------------------------------------------


def wecom_connected(s: Session, ws_id: int) -> bool:
    from quanzi.connectors.wecom.models import WecomConnection

    return (
        s.scalar(select(WecomConnection.id).where(WecomConnection.workspace_id == ws_id))
        is not None
    )


def request_ways(s: Session, code: ChannelCode, by: str | None) -> bool:
    """Ask WeCom for a contact way per staff member / a join way per group, with
    state = channel; the action ids go to `platform_ref`. False when WeCom is not connected."""
    if code.target_kind not in ("wecom_contact", "wecom_group"):
        return False
    if not wecom_connected(s, code.workspace_id):
        return False
    from quanzi.connectors.actions import request_action

    s.flush()
    actions: dict[str, int] = {}
    if code.target_kind == "wecom_contact":
        for staff in code.target["staff"]:
            a = request_action(
                s,
                code.workspace_id,
                "wecom",
                "contact_way",
                {"type": 1, "state": code.channel, "user": [staff], "remark": code.name[:30]},
                f"channel-code:{code.id}:{code.channel}:contact:{staff}",
                by,
            )
            actions[staff] = a.id
    else:
        for chat in code.target["chat_ids"]:
            a = request_action(
                s,
                code.workspace_id,
                "wecom",
                "join_way",
                {"state": code.channel, "chat_id_list": [chat], "remark": code.name[:30]},
                f"channel-code:{code.id}:{code.channel}:join:{chat}",
                by,
            )
            actions[chat] = a.id
    code.platform_ref = {"actions": actions, "qr": {}}
    return True


def qr_image(s: Session, code: ChannelCode, assignee: str | None) -> str | None:
    """The WeCom QR image URL for `assignee`, once its action is done (cached in platform_ref)."""
    ref = code.platform_ref or {}
    if assignee is None:
        return None
    qr = (ref.get("qr") or {}).get(assignee)
    if qr:
        return str(qr)
    action_id = (ref.get("actions") or {}).get(assignee)
    if action_id is None:
        return None
    from quanzi.connectors.models import ConnectorAction

    action = s.get(ConnectorAction, int(action_id))
    if action is None or action.state != "done" or not action.result:
        return None
    url = action.result.get("qr_code")
    # WeCom answers contact ways with http://p.qpic.cn/... and join ways with https://: both are
    # fetched by the server (way_image), never by the visitor's browser.
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        return None
    code.platform_ref = {**ref, "qr": {**(ref.get("qr") or {}), assignee: url}}
    return url


# --- visits ------------------------------------------------------------------------------------


def ua_class(user_agent: str | None) -> str:
    """wechat | wecom | ios | android | desktop | bot | other, from a User-Agent header."""
    ua = (user_agent or "").lower()
    if not ua:
        return "other"
    if "wxwork" in ua:
        return "wecom"
    if "micromessenger" in ua:
        return "wechat"
    if any(b in ua for b in ("bot", "spider", "crawl", "curl/", "wget", "python-", "httpx")):
        return "bot"
    if any(i in ua for i in ("iphone", "ipad", "ipod")):
        return "ios"
    if "android" in ua:
        return "android"
    if any(d in ua for d in ("windows", "macintosh", "x11", "linux", "cros")):
        return "desktop"
    return "other"


def _take(s: Session, code_id: int, day: int, who: str, cap: int | None) -> bool:
    """Count one more for `who` today unless it is at `cap`: one conditional UPDATE."""
    q = update(ChannelRotation).where(
        ChannelRotation.code_id == code_id,
        ChannelRotation.day == day,
        ChannelRotation.assignee == who,
    )
    if cap is not None:
        q = q.where(ChannelRotation.count < cap)
    done = s.execute(
        q.values(count=ChannelRotation.count + 1).execution_options(synchronize_session=False)
    )
    if getattr(done, "rowcount", 0) == 1:
        return True
    if cap is not None and cap <= 0:
        return False
    try:
        with s.begin_nested():
            s.add(ChannelRotation(code_id=code_id, day=day, assignee=who, count=1))
        return True
    except IntegrityError:
        # The row exists (at the cap, or made meanwhile): one more try through the UPDATE.
        done = s.execute(
            q.values(count=ChannelRotation.count + 1).execution_options(synchronize_session=False)
        )
        return getattr(done, "rowcount", 0) == 1


def _counts(s: Session, code_id: int, day: int) -> dict[str, int]:
    rows = s.execute(
        select(ChannelRotation.assignee, ChannelRotation.count).where(
            ChannelRotation.code_id == code_id, ChannelRotation.day == day
        )
    )
    return {a: int(c) for a, c in rows}


def group_sizes(s: Session, ws_id: int, chat_ids: list[str]) -> dict[str, int]:
    """Current members of each WeCom group (open memberships in the projection)."""
    rows = s.execute(
        select(Group.group_key, func.count(Membership.id))
        .join(Membership, Membership.group_id == Group.id)
        .where(
            Group.workspace_id == ws_id,
            Group.platform == "wecom",
            Group.group_key.in_(chat_ids),
            Membership.left_us.is_(None),
        )
        .group_by(Group.group_key)
    )
    sizes = {c: 0 for c in chat_ids}
    sizes.update({k: int(n) for k, n in rows})
    return sizes


def _assign(s: Session, code: ChannelCode, day: int) -> tuple[str | None, bool]:
    t = code.target
    if code.target_kind == "wecom_contact":
        staff: list[str] = list(t["staff"])
        cap = int(t.get("daily_cap") or 0) or None
        counts = _counts(s, code.id, day)
        if t.get("rotation") == "least_loaded":
            order = sorted(staff, key=lambda u: (counts.get(u, 0), staff.index(u)))
        else:
            start = sum(counts.get(u, 0) for u in staff) % len(staff)
            order = staff[start:] + staff[:start]
        for who in order:
            if _take(s, code.id, day, who, cap):
                return who, False
        least = min(staff, key=lambda u: (counts.get(u, 0), staff.index(u)))
        _take(s, code.id, day, least, None)
        log.warning(
            "channel code %s: every staff member is at the daily cap %s; sent to %s, the least"
            " loaded",
            code.code,
            cap,
            least,
        )
        return least, True
    if code.target_kind == "wecom_group":
        chats: list[str] = list(t["chat_ids"])
        capacity = int(t.get("capacity") or DEFAULT_CAPACITY)
        sizes = group_sizes(s, code.workspace_id, chats)
        for chat in chats:
            if sizes[chat] < capacity:
                _take(s, code.id, day, chat, None)
                return chat, False
        least = min(chats, key=lambda c: (sizes[c], chats.index(c)))
        _take(s, code.id, day, least, None)
        log.warning(
            "channel code %s: every group is at its capacity %s; sent to %s, the least full",
            code.code,
            capacity,
            least,
        )
        return least, True
    return None, False


def record_visit(
    s: Session,
    code: ChannelCode,
    *,
    scan: bool,
    user_agent: str | None,
    timezone: str | None = None,
    at_us: int | None = None,
    visitor: Visitor | None = None,
    ref: str | None = None,
) -> Visit:
    """Store one visit (no IP: the network and device as keyed digests when `visitor` is
    given; `ref` a member's invite state), hand it to the rotation; the caller commits."""
    at = at_us if at_us is not None else now_us()
    if timezone is None:
        ws = s.get(Workspace, code.workspace_id)
        timezone = ws.timezone if ws else "Asia/Shanghai"
    day = LocalCalendar(timezone).day_of(at)
    uac = ua_class(user_agent)
    assigned, capped = _assign(s, code, day)
    kind = "scan" if scan else "visit"
    net, device = visitor.digests(workspace_key(s, code.workspace_id)) if visitor else (None, None)
    s.add(
        ChannelVisit(
            workspace_id=code.workspace_id,
            code_id=code.id,
            at_us=at,
            day=day,
            kind=kind,
            ua_class=uac,
            assigned=assigned,
            ref=ref,
            net_digest=net,
            device_digest=device,
        )
    )
    return Visit(code, kind, uac, assigned, capped)


def member_ref(m: str | None) -> str | None:
    """`?m=` of a channel code's link when it is a member's invite state (their poster or
    personal code), in its canonical form; None otherwise."""
    state = parse_state(m[:64] if m else None)
    if state.kind != "member" or state.id is None:
        return None
    return member_state(state.id)


# --- serving -----------------------------------------------------------------------------------

CODE_FRESH_S = 1.0  # how stale a code's target may be in another web process


@dataclass(frozen=True)
class PublicCode:
    """What /c/<code> needs to answer, kept in memory (`PublicCodes`)."""

    id: int
    workspace_id: int
    code: str
    channel: str
    target_kind: str
    target: dict[str, Any]
    timezone: str

    def location(self) -> str | None:
        """Where a link or landing target redirects to (a landing page learns the channel
        key from `?c=`); None for the WeCom targets, which rotate."""
        if self.target_kind == "link":
            return str(self.target["url"])
        if self.target_kind == "landing":
            return f"/p/{quote(str(self.target['page']))}?c={quote(self.channel)}"
        return None


class PublicCodes:
    """One database's active channel codes by slug, re-read at most every CODE_FRESH_S."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.codes: Fresh[PublicCode] = Fresh(CODE_FRESH_S)

    def get(self, slug: str) -> tuple[bool, PublicCode | None]:
        return self.codes.get(slug)

    def load(self, slug: str) -> PublicCode | None:
        """Read the code (None: unknown or inactive) from the database and keep it."""
        read_at = self.codes.clock()
        found = None
        with session_scope(self.engine, read_only=True) as s:
            code = code_by_slug(s, slug)
            if code is not None and code.active:
                ws = s.get(Workspace, code.workspace_id)
                found = PublicCode(
                    code.id,
                    code.workspace_id,
                    code.code,
                    code.channel,
                    code.target_kind,
                    dict(code.target),
                    ws.timezone if ws else "Asia/Shanghai",
                )
        self.codes.put(slug, found, read_at)
        return found


public_codes = PerDatabase(PublicCodes)  # public_codes(engine): that database's codes


def _forget_code(s: Session, slug: str) -> None:
    forget_on_commit(s, lambda: [codes.codes for codes in public_codes.each()], slug)


def log_visit(
    engine: Engine, code: PublicCode, *, scan: bool, visitor: Visitor, ref: str | None
) -> None:
    """A visit of a code whose target does not rotate (link, landing): kept in memory and
    written with the others by the visit log within a fraction of a second."""
    VISITS.add(
        engine,
        PendingVisit(
            ChannelVisit,
            code.workspace_id,
            code.timezone,
            now_us(),
            {
                "code_id": code.id,
                "kind": "scan" if scan else "visit",
                "ua_class": ua_class(visitor.user_agent),
                "assigned": None,
                "ref": ref,
            },
            visitor,
        ),
    )


def visit_counts(s: Session, ws_id: int, from_day: int, to_day: int) -> dict[int, dict[str, int]]:
    """{code id: {"visit": n, "scan": n}} over local days [from_day, to_day]."""
    rows = s.execute(
        select(ChannelVisit.code_id, ChannelVisit.kind, func.count())
        .where(
            ChannelVisit.workspace_id == ws_id,
            ChannelVisit.day >= from_day,
            ChannelVisit.day <= to_day,
        )
        .group_by(ChannelVisit.code_id, ChannelVisit.kind)
    )
    out: dict[int, dict[str, int]] = {}
    for code_id, kind, n in rows:
        out.setdefault(int(code_id), {"visit": 0, "scan": 0})[str(kind)] = int(n)
    return out


def daily_visits(
    s: Session, code: ChannelCode, from_day: int, to_day: int
) -> list[tuple[int, int, int]]:
    """[(day, visits, scans)] for every day of the range, zeros included."""
    rows = s.execute(
        select(ChannelVisit.day, ChannelVisit.kind, func.count())
        .where(
            ChannelVisit.code_id == code.id,
            ChannelVisit.day >= from_day,
            ChannelVisit.day <= to_day,
        )
        .group_by(ChannelVisit.day, ChannelVisit.kind)
    )
    per: dict[int, list[int]] = {d: [0, 0] for d in range(from_day, to_day + 1)}
    for day, kind, n in rows:
        per[int(day)][0 if kind == "visit" else 1] = int(n)
    return [(d, v, sc) for d, (v, sc) in sorted(per.items())]
