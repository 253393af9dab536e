"""The event contract (shared/contracts/events.md): parse and validate one JSON line.

Validation is Pydantic v2 in strict mode (no coercion: `19900.0` and `"19900"` are not
integers), one model per event type; its errors are turned into one short reason that names
the field, e.g. ``amount must be an integer (minor units)``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

from quanzi.kit.clock import US, to_us

MAX_TEXT_BYTES = 64 * 1024
MAX_ID_CHARS = 200
MAX_KEY_CHARS = 255
MAX_PLATFORM_CHARS = 64
MAX_AMOUNT = 2**63 - 1
# Unix seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
MIN_UNIX = -62_135_596_800
MAX_UNIX = 253_402_300_799

EVENT_TYPES = (
    "group.created",
    "group.updated",
    "group.dismissed",
    "member.joined",
    "member.left",
    "message.posted",
    "contact.added",
    "contact.removed",
    "profile.updated",
    "order.paid",
    "order.refunded",
)

_EPOCH_ORD = datetime(1970, 1, 1).toordinal()
_TS_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$"
)


def parse_ts(value: object) -> int:
    """A contract timestamp as UTC microseconds; ValueError with the reason otherwise."""
    if isinstance(value, bool):
        raise ValueError("ts must be an RFC 3339 string with an offset or integer Unix seconds")
    if isinstance(value, int):
        if not MIN_UNIX <= value <= MAX_UNIX:
            raise ValueError(
                "ts is out of range: integer ts must be Unix seconds (not milliseconds)"
            )
        return value * US
    if not isinstance(value, str):
        raise ValueError("ts must be an RFC 3339 string with an offset or integer Unix seconds")
    m = _TS_RE.match(value)
    if m is None:
        raise ValueError(
            "ts must look like 2026-11-01T08:00:00+08:00 or 2026-11-01T00:00:00Z (with an offset)"
        )
    try:  # the common shapes, parsed in C; the rest (t/z, long fractions) below
        dt = datetime.fromisoformat(value)
    except ValueError:
        pass
    else:
        off = dt.utcoffset()
        if off is not None:
            secs = (
                (dt.toordinal() - _EPOCH_ORD) * 86_400 + dt.hour * 3600 + dt.minute * 60 + dt.second
            )
            return (secs - off.days * 86_400 - off.seconds) * US + dt.microsecond
    year, month, day, hour, minute, second, frac, offset = m.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    if offset in ("Z", "z"):
        off_min = 0
    else:
        oh, om = int(offset[1:3]), int(offset[4:6])
        if oh > 23 or om > 59:
            raise ValueError(f"ts has an invalid offset {offset}")
        off_min = (oh * 60 + om) * (1 if offset[0] == "+" else -1)
    try:
        naive = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro
        )
    except ValueError:
        raise ValueError(f"ts is not a valid date and time: {value}") from None
    from datetime import UTC

    return to_us(naive.replace(tzinfo=UTC)) - off_min * 60 * US


def _text_limit(value: str) -> str:
    if (
        len(value) > MAX_TEXT_BYTES // 4
        and len(value.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES
    ):
        raise ValueError(f"is longer than {MAX_TEXT_BYTES} bytes")
    return value


Text = Annotated[StrictStr, AfterValidator(_text_limit)]
Key = Annotated[StrictStr, Field(min_length=1, max_length=MAX_KEY_CHARS)]
OptKey = Annotated[StrictStr, Field(max_length=MAX_KEY_CHARS)]
Amount = Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT)]
AttrValue = StrictBool | StrictInt | float | StrictStr


class _Event(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")

    id: Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_CHARS)]
    type: StrictStr
    ts: Any
    platform: Annotated[StrictStr, Field(min_length=1, max_length=MAX_PLATFORM_CHARS)]


class GroupCreated(_Event):
    group: Key
    name: Annotated[Text, Field(min_length=1)]
    owner: OptKey | None = None
    notice: Text | None = None


class GroupUpdated(_Event):
    group: Key
    name: Text | None = None
    notice: Text | None = None
    owner: OptKey | None = None


class GroupDismissed(_Event):
    group: Key


class MemberJoined(_Event):
    group: Key
    member: Key
    name: Text | None = None
    inviter: OptKey | None = None
    via: Literal["invite", "link", "qrcode", "channel", "unknown"] = "unknown"
    channel: Text | None = None
    is_staff: StrictBool = False


class MemberLeft(_Event):
    group: Key
    member: Key
    via: Literal["quit", "removed"] = "quit"
    by: OptKey | None = None


class MessagePosted(_Event):
    group: Key
    member: Key
    message: Text | None = None
    kind: Literal[
        "text",
        "image",
        "voice",
        "video",
        "file",
        "link",
        "sticker",
        "red_packet",
        "mini_program",
        "other",
    ] = "text"
    text: Text | None = None
    reply_to: OptKey | None = None
    mentions: list[Key] | None = None


class ContactAdded(_Event):
    member: Key
    staff: Key
    name: Text | None = None
    channel: Text | None = None


class ContactRemoved(_Event):
    member: Key
    staff: Key
    by: Literal["member", "staff"] | None = None


class ProfileUpdated(_Event):
    member: Key
    name: Text | None = None
    phone: Text | None = None
    unionid: Text | None = None
    gender: Text | None = None
    city: Text | None = None
    attrs: dict[Annotated[StrictStr, AfterValidator(_text_limit)], AttrValue] | None = None


class OrderItem(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")

    sku: Annotated[Text, Field(min_length=1)]
    qty: Amount
    price: Amount


class OrderPaid(_Event):
    order: Key
    member: Key
    amount: Amount
    currency: Annotated[StrictStr, Field(max_length=16)] = "CNY"
    campaign: Text | None = None
    referrer: OptKey | None = None
    items: list[OrderItem] | None = None


class OrderRefunded(_Event):
    order: Key
    amount: Amount


MODELS: dict[str, type[_Event]] = {
    "group.created": GroupCreated,
    "group.updated": GroupUpdated,
    "group.dismissed": GroupDismissed,
    "member.joined": MemberJoined,
    "member.left": MemberLeft,
    "message.posted": MessagePosted,
    "contact.added": ContactAdded,
    "contact.removed": ContactRemoved,
    "profile.updated": ProfileUpdated,
    "order.paid": OrderPaid,
    "order.refunded": OrderRefunded,
}

_INT_FIELDS_MINOR_UNITS = {"amount", "qty", "price"}


@dataclass(slots=True)
class Event:
    """A valid event: the common fields, the UTC instant and the fields as sent (nulls dropped)."""

    id: str
    type: str
    ts_us: int
    platform: str
    data: dict[str, Any]
    raw: str

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def canonical(self) -> bytes:
        return orjson.dumps(self.data, option=orjson.OPT_SORT_KEYS)


class EventRefused(ValueError):
    """A line that is not a valid event; the message is the reason."""


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "event"


def _reason(err: Any) -> str:
    loc = tuple(err.get("loc", ()))
    # Drop pydantic's internal branch names (e.g. "function-after[...]", "str") from the path.
    loc = tuple(
        p
        for p in loc
        if not (isinstance(p, str) and ("[" in p or p in ("str", "int", "bool", "float")))
    )
    field = _field_path(loc)
    leaf = next((p for p in reversed(loc) if isinstance(p, str)), field)
    etype = err.get("type", "")
    ctx = err.get("ctx") or {}
    if loc and loc[0] == "attrs" and len(loc) >= 2 and etype != "string_too_long":
        return f"{field} must be a string, number or boolean"
    if etype == "missing":
        return f"{field} is required"
    if etype in ("int_type", "int_parsing", "int_from_float"):
        if leaf in _INT_FIELDS_MINOR_UNITS:
            return f"{field} must be an integer" + (" (minor units)" if leaf == "amount" else "")
        return f"{field} must be an integer"
    if etype == "greater_than_equal":
        return f"{field} must not be negative"
    if etype == "less_than_equal":
        return f"{field} must be at most {ctx.get('le')}"
    if etype == "string_type":
        return f"{field} must be a string"
    if etype in ("string_too_short", "too_short"):
        return f"{field} must not be empty"
    if etype == "string_too_long":
        return f"{field} is longer than {ctx.get('max_length')} characters"
    if etype == "literal_error":
        return f"{field} must be one of: {ctx.get('expected', '')}".replace("'", "")
    if etype == "bool_type":
        return f"{field} must be true or false"
    if etype == "list_type":
        return f"{field} must be a list"
    if etype in ("dict_type", "model_type", "model_attributes_type"):
        return f"{field} must be an object"
    if etype == "value_error":
        msg = str(ctx.get("error", err.get("msg", "")))
        return f"{field} {msg}"
    if etype in ("union_tag_invalid", "union_tag_not_found"):
        return f"{field} has an invalid value"
    return f"{field}: {err.get('msg', 'invalid value')}"


def _loads(line: str | bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        pass
    return _loads_std(line)


def _loads_std(line: str | bytes) -> Any:
    # The standard parser, for the lines orjson refuses or reads differently (integers beyond
    # 64 bits), so that the reason names the field instead of saying "not JSON".
    try:
        text = line.decode("utf-8") if isinstance(line, bytes) else line
        obj = json.loads(text, parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise EventRefused("not valid UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise EventRefused(f"not valid JSON ({exc.__class__.__name__}: {str(exc)[:80]})") from None
    try:  # the standard parser lets lone surrogates (\ud800) through; they are not text
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise EventRefused("contains an invalid character (a lone surrogate)") from None
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def parse_event(line: str | bytes) -> Event:
    """Parse one non-blank line; raise EventRefused with the reason when it is not a valid event."""
    obj = _loads(line)
    if not isinstance(obj, dict):
        raise EventRefused("an event must be a JSON object")
    data = obj if None not in obj.values() else {k: v for k, v in obj.items() if v is not None}
    etype = data.get("type")
    if etype is None:
        raise EventRefused("type is required")
    if not isinstance(etype, str):
        raise EventRefused("type must be a string")
    model = MODELS.get(etype)
    if model is None:
        shown = etype if len(etype) <= 40 else etype[:40] + "…"
        raise EventRefused(f"unknown type {shown!r}")
    try:
        model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        # orjson reads integers beyond 64 bits as floats: re-read such a line with the
        # standard parser so that the reason is about the value, not its type.
        if any(isinstance(e.get("input"), float) for e in errors):
            try:
                big = {k: v for k, v in _loads_std(line).items() if v is not None}
                model.model_validate(big)
            except ValidationError as exc2:
                errors = exc2.errors(include_url=False)
            except (EventRefused, AttributeError):
                pass
        raise EventRefused(_reason(errors[0])) from None
    try:
        ts_us = parse_ts(data.get("ts"))
    except ValueError as exc:
        raise EventRefused(str(exc)) from None
    if "ts" not in data:
        raise EventRefused("ts is required")
    if etype == "profile.updated" and "attrs" in data:
        for k, v in data["attrs"].items():
            if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
                raise EventRefused(f"attrs.{k} must be a finite number")
    raw = line.decode("utf-8") if isinstance(line, bytes) else line
    return Event(
        id=data["id"],
        type=etype,
        ts_us=ts_us,
        platform=data["platform"],
        data=data,
        raw=raw.strip(),
    )


def check_lines(lines: list[bytes | str]) -> list[int | str | None]:
    """Validate lines (in another process, when ingest parses in parallel): for each, its
    instant in µs when valid, the reason when refused, None when blank."""
    out: list[int | str | None] = []
    for line in lines:
        if not line.strip():
            out.append(None)
            continue
        try:
            out.append(parse_event(line).ts_us)
        except EventRefused as exc:
            out.append(str(exc))
    return out


def checked_event(line: str | bytes, ts_us: int) -> Event:
    """The Event of a line `check_lines` found valid: parsed again, not validated again."""
    obj = _loads(line)
    data = obj if None not in obj.values() else {k: v for k, v in obj.items() if v is not None}
    raw = line.decode("utf-8") if isinstance(line, bytes) else line
    return Event(
        id=data["id"],
        type=data["type"],
        ts_us=ts_us,
        platform=data["platform"],
        data=data,
        raw=raw.strip(),
    )
