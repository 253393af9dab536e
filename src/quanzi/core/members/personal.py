"""Members' personal data (phone, unionid, real name): normalised, sealed, indexed, masked."""

from __future__ import annotations

import phonenumbers

from quanzi.kit.crypto import WorkspaceKey

# Fields of profile.updated that are personal data: sealed at rest, masked for roles without
# the right to see them.
PERSONAL_FIELDS = ("phone", "unionid", "name")
DEFAULT_REGION = "CN"


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
