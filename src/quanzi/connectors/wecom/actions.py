"""WeCom actions: contact ways, group join ways, welcome messages, mass messages, tags, stats.

Each kind is a Pydantic payload (checked when the action is requested, so a mistake is
named at once, not found by the job) and a function of a WeCom client and that payload
that returns what WeCom answered (the result the console shows). WeCom's errors become
`ActionFailed`: -1 (busy), 45009 (frequency limit) and 45033 (too many concurrent calls)
may pass, so they are retried later; every other errcode fails the action with its meaning.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import Engine

from quanzi.connectors.actions import ActionFailed, ActionKind, register_kind
from quanzi.connectors.wecom.client import WecomClient, WecomError, client_for
from quanzi.db.engine import session_scope
from quanzi.kit.clock import zone

PLATFORM = "wecom"
RETRYABLE_ERRCODES = frozenset({-1, 45009, 45033})
# WeCom counts days in Beijing time (its statistics' day_begin_time is a local midnight).
WECOM_TZ = "Asia/Shanghai"
STATISTIC_MAX_DAYS = 30
STATISTIC_PAGE = 1000

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
State = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=30)]


class WecomApi(Protocol):
    """What an action needs of the client (quanzi.connectors.wecom.client.WecomClient)."""

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]: ...


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Attachment(BaseModel):
    """One attachment as WeCom takes it: msgtype plus the object of that name."""

    model_config = ConfigDict(extra="allow")
    msgtype: Literal["image", "link", "miniprogram", "video", "file"]

    @model_validator(mode="after")
    def _has_its_object(self) -> Attachment:
        extra = self.model_extra or {}
        if not isinstance(extra.get(self.msgtype), dict):
            raise ValueError(
                f"an attachment of msgtype {self.msgtype!r} needs a {self.msgtype!r} object"
            )
        return self


class ContactWay(_Payload):
    """「联系我」: a QR code that adds the customer to `user`, tagged with a channel `state`."""

    type: Literal[1, 2] = 1  # 1: one staff member, 2: several
    scene: Literal[2] = 2  # 2: a QR code
    state: State
    user: list[Id] = Field(min_length=1, max_length=100)
    skip_verify: bool = True
    remark: Annotated[str, StringConstraints(max_length=30)] | None = None

    @model_validator(mode="after")
    def _one_user_for_single(self) -> ContactWay:
        if self.type == 1 and len(self.user) != 1:
            raise ValueError("type 1 (single) takes exactly one user; use type 2 for several")
        return self


class JoinWay(_Payload):
    """加入群聊: a QR code that lets customers join one of up to 5 groups, with a `state`."""

    scene: Literal[2] = 2
    chat_id_list: list[Id] = Field(min_length=1, max_length=5)
    state: State
    remark: Annotated[str, StringConstraints(max_length=30)] | None = None


class Welcome(_Payload):
    """A welcome message for a new contact: within 20 s of the event, once."""

    welcome_code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    text: Annotated[str, StringConstraints(max_length=4000)] | None = None
    attachments: list[Attachment] = Field(default_factory=list, max_length=9)

    @model_validator(mode="after")
    def _says_something(self) -> Welcome:
        if not self.text and not self.attachments:
            raise ValueError("give a text or at least one attachment")
        return self


class MassMessage(_Payload):
    """A mass-message task (群发): a staff member confirms it in WeCom before it is sent."""

    chat_type: Literal["single", "group"] = "single"
    sender: Id | None = None
    text: Annotated[str, StringConstraints(max_length=4000)] | None = None
    attachments: list[Attachment] = Field(default_factory=list, max_length=9)
    external_userid: list[Id] = Field(default_factory=list, max_length=10000)
    chat_id_list: list[Id] = Field(default_factory=list, max_length=2000)

    @model_validator(mode="after")
    def _coherent(self) -> MassMessage:
        if not self.text and not self.attachments:
            raise ValueError("give a text or at least one attachment")
        if self.chat_type == "single":
            if self.chat_id_list:
                raise ValueError("chat_id_list is for chat_type 'group'")
            if not self.external_userid and not self.sender:
                raise ValueError("chat_type 'single' needs external_userid or a sender")
        else:
            if self.external_userid:
                raise ValueError("external_userid is for chat_type 'single'")
            if not self.sender:
                raise ValueError("sender: chat_type 'group' needs the staff member who sends")
        return self


class MarkTag(_Payload):
    """Add and remove corp tags on one customer, as seen by one staff member."""

    userid: Id
    external_userid: Id
    add_tag: list[Id] = Field(default_factory=list, max_length=100)
    remove_tag: list[Id] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _changes_something(self) -> MarkTag:
        if not self.add_tag and not self.remove_tag:
            raise ValueError("give add_tag or remove_tag")
        if set(self.add_tag) & set(self.remove_tag):
            raise ValueError("a tag cannot be added and removed at once")
        return self


class GroupStatistic(_Payload):
    """WeCom's own customer-group figures per owner for a range of (Beijing) days."""

    day_begin: date
    day_end: date | None = None
    owners: list[Id] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _range(self) -> GroupStatistic:
        end = self.day_end or self.day_begin
        if end < self.day_begin:
            raise ValueError("day_end is before day_begin")
        if (end - self.day_begin).days + 1 > STATISTIC_MAX_DAYS:
            raise ValueError(f"the range may span at most {STATISTIC_MAX_DAYS} days")
        self.day_end = end
        return self


# --- calling WeCom ---------------------------------------------------------------------------


def _call(
    api: WecomApi, path: str, body: dict[str, Any], *, retryable: bool = True
) -> dict[str, Any]:
    try:
        return api.post(path, body)
    except WecomError as exc:
        # errcode None: WeCom could not be reached (the client retried the transport already).
        again = retryable and (exc.errcode is None or exc.errcode in RETRYABLE_ERRCODES)
        code = "no answer" if exc.errcode is None else f"errcode {exc.errcode}"
        raise ActionFailed(f"WeCom {path}: {code} ({exc.meaning})", retryable=again) from exc


def _attachments(items: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return list(items or [])


def contact_way(api: WecomApi, p: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        k: p[k] for k in ("type", "scene", "state", "user", "skip_verify") if k in p
    }
    if p.get("remark"):
        body["remark"] = p["remark"]
    got = _call(api, "externalcontact/add_contact_way", body)
    return {"config_id": got.get("config_id"), "qr_code": got.get("qr_code"), "state": p["state"]}


def join_way(api: WecomApi, p: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {k: p[k] for k in ("scene", "chat_id_list", "state") if k in p}
    if p.get("remark"):
        body["remark"] = p["remark"]
    config_id = _call(api, "externalcontact/groupchat/add_join_way", body).get("config_id")
    if not config_id:
        raise ActionFailed("WeCom groupchat/add_join_way answered without a config_id")
    got = _call(api, "externalcontact/groupchat/get_join_way", {"config_id": config_id})
    way = got.get("join_way") or {}
    return {"config_id": config_id, "qr_code": way.get("qr_code"), "state": p["state"]}


def welcome(api: WecomApi, p: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"welcome_code": p["welcome_code"]}
    if p.get("text"):
        body["text"] = {"content": p["text"]}
    if p.get("attachments"):
        body["attachments"] = _attachments(p["attachments"])
    # The code is good for 20 s and once (41051 after): a later retry cannot succeed.
    _call(api, "externalcontact/send_welcome_msg", body, retryable=False)
    return {"sent": True}


def mass_message(api: WecomApi, p: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"chat_type": p["chat_type"]}
    for key in ("sender", "external_userid", "chat_id_list"):
        if p.get(key):
            body[key] = p[key]
    if p.get("text"):
        body["text"] = {"content": p["text"]}
    if p.get("attachments"):
        body["attachments"] = _attachments(p["attachments"])
    got = _call(api, "externalcontact/add_msg_template", body)
    return {"msgid": got.get("msgid"), "fail_list": list(got.get("fail_list") or [])}


def mark_tag(api: WecomApi, p: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        k: p[k] for k in ("userid", "external_userid", "add_tag", "remove_tag") if p.get(k)
    }
    _call(api, "externalcontact/mark_tag", body)
    return {"added": list(p.get("add_tag") or []), "removed": list(p.get("remove_tag") or [])}


def _day_start(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=zone(WECOM_TZ)).timestamp())


def group_statistic(api: WecomApi, p: dict[str, Any]) -> dict[str, Any]:
    begin = date.fromisoformat(p["day_begin"])
    end = date.fromisoformat(p.get("day_end") or p["day_begin"])
    items: list[dict[str, Any]] = []
    offset = 0
    while True:
        got = _call(
            api,
            "externalcontact/groupchat/statistic",
            {
                "day_begin_time": _day_start(begin),
                "day_end_time": _day_start(end),
                "owner_filter": {"userid_list": p["owners"]},
                "offset": offset,
                "limit": STATISTIC_PAGE,
            },
        )
        page = list(got.get("items") or [])
        items.extend(page)
        next_offset = got.get("next_offset")
        total = got.get("total")
        if not page or not isinstance(next_offset, int) or next_offset <= offset:
            break
        if isinstance(total, int) and len(items) >= total:
            break
        offset = next_offset
    totals: dict[str, int] = {}
    for item in items:
        for key, value in (item.get("data") or {}).items():
            if isinstance(value, int):
                totals[key] = totals.get(key, 0) + value
    return {
        "day_begin": begin.isoformat(),
        "day_end": end.isoformat(),
        "days": (end - begin + timedelta(days=1)).days,
        "items": items,
        "totals": totals,
    }


PERFORMERS = {
    "contact_way": contact_way,
    "join_way": join_way,
    "welcome": welcome,
    "mass_message": mass_message,
    "mark_tag": mark_tag,
    "group_statistic": group_statistic,
}


def perform(api: WecomApi, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Carry out one validated payload of `kind` through `api`; WeCom's answer, trimmed."""
    return PERFORMERS[kind](api, payload)


# Options of the client an action runs with. One throttle retry inside the call: a
# longer 45009/45033 wait is the action engine's backoff, which frees the worker meanwhile.
CLIENT_OPTIONS: dict[str, Any] = {"throttle_retries": 1}


def open_client(engine: Engine, ws_id: int) -> WecomClient:
    """The workspace's WeCom client; its secrets are read in a short transaction, and the
    cached access token is read and written in transactions of its own (none is held open
    while WeCom answers)."""
    with session_scope(engine) as session:
        client = client_for(session, ws_id, **CLIENT_OPTIONS)
    return client


def _executor(kind: str) -> Any:
    def execute(engine: Engine, ws_id: int, payload: dict[str, Any]) -> dict[str, Any]:
        with open_client(engine, ws_id) as client:
            return perform(client, kind, payload)

    return execute


_MODELS: dict[str, tuple[type[BaseModel], str]] = {
    "contact_way": (ContactWay, "Contact way (联系我)"),
    "join_way": (JoinWay, "Group join way (加入群聊)"),
    "welcome": (Welcome, "Welcome message"),
    "mass_message": (MassMessage, "Mass message (群发)"),
    "mark_tag": (MarkTag, "Mark tags"),
    "group_statistic": (GroupStatistic, "Group statistics"),
}

for _kind, (_model, _title) in _MODELS.items():
    register_kind(ActionKind(PLATFORM, _kind, _model, _executor(_kind), _title))
