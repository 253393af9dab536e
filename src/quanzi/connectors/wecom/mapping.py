"""Decrypted WeCom callbacks → events (shared/contracts/events.md).

Ids name the fact, not the delivery, so a sync that sees the same join or contact makes the
same id and the event log counts it once:

- `wecom:join:<chat_id>:<userid>:<join_time>`, `wecom:leave:<chat_id>:<userid>:<ts>`
- `wecom:contact:add:<staff>:<external>:<createtime>`,
  `wecom:contact:del:<staff>:<external>:<createtime>`
- `wecom:group:<chat_id>:created`, `wecom:group:<chat_id>:dismissed`,
  `wecom:group:<chat_id>:updated:<what>:<createtime>`

A callback carries ids only; group details (name, owner, members with join_time,
join_scene, invitor and state) come from `fetch_group(chat_id)`, which returns
`groupchat/get`'s `group_chat` object (injected: the job calls WeCom, the tests pass dicts).

A contact or join way's `state` (acquisition/states.py) is read by `resolve(state, member)`,
injected the same way: a channel key is the channel; a member's personal code (`m:<id>`) makes
a join an invite by that member; a lead's personal code (`l:<id>`) takes the lead's channel.
Without a database (`plain_states`) a personal state cannot be checked and counts as none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from quanzi.acquisition.states import parse_state

PLATFORM = "wecom"
FetchGroup = Callable[[str], dict[str, Any]]


@dataclass(frozen=True)
class StateMeaning:
    """What a way's `state` means for the member who came through it."""

    channel: str | None = None  # the events' `channel`
    inviter: str | None = None  # member_key of the member whose personal code it was
    lead_id: int | None = None  # the landing-page lead whose personal code it was


# (state, member key of who came) -> meaning; the job and the sync pass a database-backed one
# (acquisition.personal_ways.StateResolver).
ResolveState = Callable[[str, str], StateMeaning]


def plain_states(state: str, _member: str) -> StateMeaning:
    """A channel key is the channel; a personal state (or what looks like one) is no state."""
    parsed = parse_state(state)
    if parsed.kind != "channel" or looks_personal(state):
        return StateMeaning()
    return StateMeaning(channel=parsed.channel)


def looks_personal(state: str) -> bool:
    """`m:`/`l:` states, well-formed or not: never taken as a channel key."""
    return state.strip()[:2].lower() in ("m:", "l:")


def with_state(event: dict[str, Any], state: Any, resolve: ResolveState) -> dict[str, Any]:
    """The event (member.joined or contact.added) with what `state` means: its channel, and
    for a member's personal code that member as `inviter` (a join: `via` invite). The personal
    code wins over WeCom's `invitor`, which WeCom gives only for staff (who are never counted
    as inviters); without a personal code WeCom's invitor stays."""
    event.pop("channel", None)
    state = _text(state)
    if not state:
        return event
    meaning = resolve(state, str(event["member"]))
    if meaning.channel:
        event["channel"] = meaning.channel
    if meaning.inviter:
        event["inviter"] = meaning.inviter
        if event["type"] == "member.joined":
            event["via"] = "invite"
    return event


# groupchat/get member_list[].join_scene (REST codes; the callback's JoinScene differs).
REST_JOIN_VIA = {1: "invite", 2: "link", 3: "qrcode"}
# The callback's JoinScene: 0 invited directly or by link (cannot tell which), 3 group QR.
CALLBACK_JOIN_VIA = {3: "qrcode"}
QUIT_VIA = {0: "quit", 1: "removed"}
# change_external_chat/update details that change one field of the group.
GROUP_FIELDS = {"change_name": "name", "change_notice": "notice", "change_owner": "owner"}


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _event(event_id: str, kind: str, ts: int, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": event_id, "type": kind, "ts": ts, "platform": PLATFORM}
    out.update({k: v for k, v in fields.items() if v not in (None, "")})
    return out


def callback_to_events(
    fields: dict[str, Any], fetch_group: FetchGroup, resolve: ResolveState = plain_states
) -> list[dict[str, Any]]:
    """The events one decrypted callback (its XML fields, see crypto.xml_fields) stands for;
    [] for callbacks that are recorded but change nothing Quanzi counts (edits, failed
    transfers, tag changes, unknown kinds)."""
    event = _text(fields.get("Event"))
    if event == "change_external_contact":
        return _contact_events(fields, resolve)
    if event == "change_external_chat":
        return _chat_events(fields, fetch_group, resolve)
    return []


def _contact_events(fields: dict[str, Any], resolve: ResolveState) -> list[dict[str, Any]]:
    change = _text(fields.get("ChangeType"))
    staff, member = _text(fields.get("UserID")), _text(fields.get("ExternalUserID"))
    ts = _int(fields.get("CreateTime"))
    if not staff or not member or not ts:
        return []
    if change in ("add_external_contact", "add_half_external_contact"):
        return [
            with_state(
                _event(
                    f"wecom:contact:add:{staff}:{member}:{ts}",
                    "contact.added",
                    ts,
                    member=member,
                    staff=staff,
                ),
                fields.get("State"),
                resolve,
            )
        ]
    if change in ("del_external_contact", "del_follow_user"):
        by = "staff" if change == "del_external_contact" else "member"
        return [
            _event(
                f"wecom:contact:del:{staff}:{member}:{ts}",
                "contact.removed",
                ts,
                member=member,
                staff=staff,
                by=by,
            )
        ]
    # edit_external_contact, transfer_fail: kept in the inbox; a profile refresh is a sync's job.
    return []


def _chat_events(
    fields: dict[str, Any], fetch_group: FetchGroup, resolve: ResolveState
) -> list[dict[str, Any]]:
    change = _text(fields.get("ChangeType"))
    chat = _text(fields.get("ChatId"))
    ts = _int(fields.get("CreateTime"))
    if not chat or not ts:
        return []
    if change == "create":
        return _created(chat, ts, fetch_group(chat), resolve)
    if change == "dismiss":
        return [_event(f"wecom:group:{chat}:dismissed", "group.dismissed", ts, group=chat)]
    if change != "update":
        return []
    detail = _text(fields.get("UpdateDetail"))
    changed = _member_list(fields.get("MemChangeList"))
    if detail == "add_member":
        return _joined(chat, ts, fields, changed, fetch_group(chat), resolve)
    if detail == "del_member":
        via = QUIT_VIA.get(_int(fields.get("QuitScene"), -1), "quit")
        return [
            _event(
                f"wecom:leave:{chat}:{user}:{ts}",
                "member.left",
                ts,
                group=chat,
                member=user,
                via=via,
            )
            for user in changed
        ]
    if detail in GROUP_FIELDS:
        name = GROUP_FIELDS[detail]
        group = fetch_group(chat)
        return [
            _event(
                f"wecom:group:{chat}:updated:{name}:{ts}",
                "group.updated",
                ts,
                group=chat,
                **{name: _text(group.get(name))},
            )
        ]
    return []


def _member_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [v for v in (_text(x) for x in value) if v]
    if isinstance(value, str):  # the older flat form: <MemChangeList><![CDATA[a,b]]>
        return [v.strip() for v in value.split(",") if v.strip()]
    return []


def member_joined(
    chat: str, m: dict[str, Any], resolve: ResolveState = plain_states
) -> dict[str, Any] | None:
    """The member.joined event of one groupchat/get member, or None without userid/join_time."""
    user, joined = _text(m.get("userid")), _int(m.get("join_time"))
    if not user or not joined:
        return None
    invitor = m.get("invitor")
    inviter = _text(invitor.get("userid")) if isinstance(invitor, dict) else ""
    event = _event(
        f"wecom:join:{chat}:{user}:{joined}",
        "member.joined",
        joined,
        group=chat,
        member=user,
        name=_text(m.get("group_nickname")) or _text(m.get("name")),
        inviter=inviter if inviter != user else "",
        via=REST_JOIN_VIA.get(_int(m.get("join_scene")), "unknown"),
        is_staff=True if _int(m.get("type")) == 1 else None,
    )
    return with_state(event, m.get("state"), resolve)


def _members(group: dict[str, Any]) -> list[dict[str, Any]]:
    found = group.get("member_list")
    return [m for m in found if isinstance(m, dict)] if isinstance(found, list) else []


def _created(
    chat: str, ts: int, group: dict[str, Any], resolve: ResolveState
) -> list[dict[str, Any]]:
    created = _int(group.get("create_time")) or ts
    out = [
        _event(
            f"wecom:group:{chat}:created",
            "group.created",
            created,
            group=chat,
            name=_text(group.get("name")) or chat,
            owner=_text(group.get("owner")),
            notice=_text(group.get("notice")),
        )
    ]
    out += [e for m in _members(group) if (e := member_joined(chat, m, resolve)) is not None]
    return out


def _joined(
    chat: str,
    ts: int,
    fields: dict[str, Any],
    changed: list[str],
    group: dict[str, Any],
    resolve: ResolveState,
) -> list[dict[str, Any]]:
    by_user = {_text(m.get("userid")): m for m in _members(group)}
    if not changed:  # no MemChangeList: every current member (known joins are duplicates)
        changed = [u for u in by_user if u]
    out = []
    for user in changed:
        event = member_joined(chat, by_user[user], resolve) if user in by_user else None
        if event is None:
            # Gone again before the fetch (or not listed yet): the callback's own facts.
            via = CALLBACK_JOIN_VIA.get(_int(fields.get("JoinScene"), -1), "unknown")
            event = _event(
                f"wecom:join:{chat}:{user}:{ts}",
                "member.joined",
                ts,
                group=chat,
                member=user,
                via=via,
            )
        out.append(event)
    return out
