"""Masking personal data for roles that may not see it: 138****5678, 张**."""

from __future__ import annotations

MASK = "*"


def mask_phone(phone: str) -> str:
    """Keep the first three and last four digits of a phone number: 138****5678."""
    digits = phone.strip()
    plus = digits.startswith("+")
    core = digits[1:] if plus else digits
    if core.startswith("86") and len(core) == 13:
        core = core[2:]
    if len(core) >= 7:
        return core[:3] + MASK * 4 + core[-4:]
    if len(core) > 2:
        return core[:1] + MASK * (len(core) - 2) + core[-1:]
    return MASK * max(len(core), 1)


def mask_name(name: str) -> str:
    """Keep the first character of a real name: 张三丰 → 张**."""
    name = name.strip()
    if not name:
        return ""
    return name[0] + MASK * max(len(name) - 1, 1)


def mask_identifier(value: str) -> str:
    """Keep the first and last four characters of an id such as a unionid."""
    if len(value) <= 8:
        return MASK * len(value)
    return value[:4] + MASK * 4 + value[-4:]


MASKERS = {"phone": mask_phone, "name": mask_name, "unionid": mask_identifier}


def mask(field: str, value: str) -> str:
    return MASKERS.get(field, mask_identifier)(value)
