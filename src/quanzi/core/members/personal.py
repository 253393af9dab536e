"""Members' personal data (phone, unionid, real name): normalised, sealed, indexed, masked.

Personal data arrives only in `profile.updated` events. It is sealed (AES-GCM under the
workspace key, quanzi.kit.crypto) before anything is written: the event log keeps the line
with the personal fields replaced by their sealed values, `members.profile` keeps those same
sealed strings, and `members.phone_digest` / `members.unionid_digest` hold blind indexes of
the current values for exact search. Plain values exist only in memory, on their way in and
when a role that may see them asks (`open_profile`, `masked_profile`).

PIPL erasure (`erase_personal_data`) replaces a member's sealed fields in the log by
`TOMBSTONE`; the projection skips tombstones, so a rebuild does not bring the data back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import phonenumbers
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from quanzi.core.events.models import EventRecord
from quanzi.core.events.schemas import Event
from quanzi.core.members.models import Member
from quanzi.kit.crypto import DecryptionFailed, WorkspaceKey, is_sealed
from quanzi.kit.errors import NotFound
from quanzi.kit.masking import mask

# Fields of profile.updated that are personal data: sealed at rest, masked for roles without
# the right to see them.
PERSONAL_FIELDS = ("phone", "unionid", "name")
DEFAULT_REGION = "CN"
# What an erased personal field holds in the event log (not a sealed value: nothing to open).
TOMBSTONE = "enc:erased"
# What a sealed value that does not open (the secret key changed, or tampered data) shows as.
UNREADABLE = "[cannot decrypt]"
# The profile fields other than the personal ones: kept plain.
PLAIN_FIELDS = ("gender", "city")


def normalize_phone(raw: str, region: str = DEFAULT_REGION) -> str | None:
    """E.164 form of a phone number (+8613812345678), or None when it is not one."""
    try:
        number = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_digest(key: WorkspaceKey, raw: str) -> str | None:
    """The blind index a phone number is searched by; None when it is not a phone number."""
    normal = normalize_phone(raw)
    return key.blind_index("phone", normal) if normal else None


def unionid_digest(key: WorkspaceKey, raw: str) -> str:
    return key.blind_index("unionid", raw.strip())


# -- the event log -------------------------------------------------------------------------


def has_plain_personal(data: Mapping[str, Any]) -> bool:
    """Whether a profile.updated's fields hold personal data that is not sealed yet."""
    return any(
        isinstance(v := data.get(f), str) and v != TOMBSTONE and not is_sealed(v)
        for f in PERSONAL_FIELDS
    )


def seal_event(key: WorkspaceKey, ev: Event, *, everything: bool = True) -> Event:
    """A profile.updated with its personal fields sealed, in `data` and in `raw` (the line as
    received, unknown fields kept). With `everything` every value is sealed, whatever it
    looks like (a received line); without, values already sealed or erased are kept (a line
    read back from an old log)."""
    sealed: dict[str, str] = {}
    for f in PERSONAL_FIELDS:
        v = ev.data.get(f)
        if isinstance(v, str) and (everything or not (v == TOMBSTONE or is_sealed(v))):
            sealed[f] = key.seal(f, v)
    if not sealed:
        return ev
    return Event(
        id=ev.id,
        type=ev.type,
        ts_us=ev.ts_us,
        platform=ev.platform,
        data={**ev.data, **sealed},
        raw=_replace_in_line(ev.raw, sealed),
    )


def _replace_in_line(raw: str, values: Mapping[str, str]) -> str:
    # The standard parser reads every line the contract accepts (orjson refuses integers beyond
    # 64 bits); a duplicate key keeps its last value, as parsing did.
    obj = json.loads(raw)
    for f, v in values.items():
        if obj.get(f) is not None:
            obj[f] = v
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def opened_data(key: WorkspaceKey, data: Mapping[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """A logged profile.updated's fields with the sealed ones opened, and the erased fields
    (left out). Raises DecryptionFailed when a sealed value does not open."""
    out = dict(data)
    erased: set[str] = set()
    for f in PERSONAL_FIELDS:
        v = out.get(f)
        if v == TOMBSTONE:
            erased.add(f)
            del out[f]
        elif isinstance(v, str) and is_sealed(v):
            out[f] = key.open(f, v)
    return out, erased


# -- the projection -------------------------------------------------------------------------


def _profile_dict(profile: Mapping[str, Any] | str | None) -> dict[str, Any]:
    if profile is None:
        return {}
    return dict(orjson.loads(profile) if isinstance(profile, str) else profile)


def open_value(key: WorkspaceKey, field: str, value: Any) -> str:
    """The plain text of one stored personal value (as `members.profile` or an export row
    holds it); `UNREADABLE` when it does not open (the secret key changed, tampered data)."""
    if not is_sealed(value):
        return str(value)  # a projection written before sealing: `quanzi rebuild` seals it
    try:
        return key.open(field, value)
    except DecryptionFailed:
        return UNREADABLE


def shown_value(key: WorkspaceKey, field: str, value: Any, reveal: bool) -> str:
    """One stored personal value as a role sees it: opened when it may (`reveal`), else
    masked (138****5678)."""
    opened = open_value(key, field, value)
    return opened if reveal else mask_value(field, opened)


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def open_profile(key: WorkspaceKey, profile: Mapping[str, Any] | str | None) -> dict[str, str]:
    """The current plain value of every field of a `members.profile`: `phone`, `unionid`,
    `name` (opened; `UNREADABLE` when a value does not open), `gender`, `city`, and each
    attribute as `attrs.<key>` (numbers and booleans as JSON text)."""
    out: dict[str, str] = {}
    for k, entry in sorted(_profile_dict(profile).items()):
        value = entry[0]
        kind, _, name = k.partition(":")
        if kind == "p":
            out[name] = open_value(key, name, value) if name in PERSONAL_FIELDS else _plain(value)
        elif kind == "a":
            out["attrs." + name] = _plain(value)
    return out


def mask_value(field: str, value: str) -> str:
    """A personal value as a role without the right to see it sees it: 138****5678."""
    if value == UNREADABLE:
        return value
    if field == "phone":
        return mask(field, normalize_phone(value) or "".join(value.split()))
    return mask(field, value)


def masked_profile(
    profile: Mapping[str, Any] | str | None, key: WorkspaceKey, reveal: bool
) -> dict[str, str]:
    """`open_profile`, with the personal fields masked unless `reveal` (the role may see
    them). A sealed value that does not open is `UNREADABLE` either way."""
    opened = open_profile(key, profile)
    if reveal:
        return opened
    return {f: mask_value(f, v) if f in PERSONAL_FIELDS else v for f, v in opened.items()}


def current_digests(
    key: WorkspaceKey, profile: Mapping[str, Any], fields: Iterable[str]
) -> dict[str, str | None]:
    """`phone_digest` / `unionid_digest` column values for the changed `p:phone` / `p:unionid`
    entries of a profile (sealed values): the blind index of the current value, or None."""
    out: dict[str, str | None] = {}
    for f in fields:
        entry = profile.get("p:" + f)
        value = entry[0] if entry else None
        if isinstance(value, str) and is_sealed(value):
            value = key.open(f, value)
        if f == "phone":
            out["phone_digest"] = phone_digest(key, value) if value else None
        elif f == "unionid":
            out["unionid_digest"] = unionid_digest(key, value) if value else None
    return out


# -- erasure (PIPL) -----------------------------------------------------------------------


def erase_personal_data(session: Session, workspace_id: int, member_id: int) -> int:
    """Erase a member's personal data (phone, unionid, real name) for good: removed from
    `members.profile`, digests cleared, and every personal field of the member's
    profile.updated events in the log replaced by `TOMBSTONE`, so that `quanzi rebuild` does
    not bring it back. Other fields (gender, city, attrs) and the events themselves stay.
    Returns the number of log events rewritten. The caller commits (and audits).
    """
    from quanzi.core.events.projections import lock_workspace

    conn = session.connection()
    lock_workspace(conn, workspace_id)
    member = session.execute(
        select(Member.platform, Member.member_key, Member.profile).where(
            Member.workspace_id == workspace_id, Member.id == member_id
        )
    ).one_or_none()
    if member is None:
        raise NotFound(f"member {member_id} does not exist in workspace {workspace_id}")
    profile = {
        k: v
        for k, v in _profile_dict(member.profile).items()
        if k not in {"p:" + f for f in PERSONAL_FIELDS}
    }
    session.execute(
        update(Member)
        .where(Member.id == member_id)
        .values(profile=profile or None, phone_digest=None, unionid_digest=None)
        .execution_options(synchronize_session=False)
    )
    rewritten = 0
    rows = session.execute(
        select(EventRecord.seq, EventRecord.raw).where(
            EventRecord.workspace_id == workspace_id,
            EventRecord.type == "profile.updated",
            EventRecord.platform == member.platform,
        )
    ).all()
    for seq, raw in rows:
        obj = json.loads(raw)
        if obj.get("member") != member.member_key:
            continue
        erase = {f: TOMBSTONE for f in PERSONAL_FIELDS if obj.get(f) not in (None, TOMBSTONE)}
        if erase:
            session.execute(
                update(EventRecord)
                .where(EventRecord.seq == seq)
                .values(raw=_replace_in_line(raw, erase))
                .execution_options(synchronize_session=False)
            )
            rewritten += 1
    return rewritten
