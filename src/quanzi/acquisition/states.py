"""The `state` a WeCom contact way or join way carries back on an add or a join.

WeCom gives each contact/join way one free `state` of at most 30 characters and echoes it in the
add-contact callback and in `groupchat/get`'s member list. Quanzi writes three kinds:

- a **channel key** (letters, digits, `_ . -`, at most 30): the channel code's channel, copied
  to the events' `channel`;
- `m:<base-36 member id>`: a member's personal code or share poster. The join or add is an
  invite by that member (`inviter`, `via: invite`); its channel is `REFERRAL_CHANNEL`;
- `l:<base-36 lead id>`: the personal contact code shown to a landing-page lead after the
  form. The add links that lead to the member; its channel is the lead's channel.

A colon never appears in a channel key (channels.CHANNEL_RE), so the three cannot be confused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
MAX_STATE = 30
REFERRAL_CHANNEL = "referral"
_PERSONAL = re.compile(r"^([ml]):([0-9a-z]{1,20})$")


def _b36(n: int) -> str:
    if n < 0:
        raise ValueError("ids are not negative")
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = DIGITS[r] + out
        if n == 0:
            return out


def member_state(member_id: int) -> str:
    """A member's personal invite state: m:<base-36 id>."""
    return "m:" + _b36(member_id)


def lead_state(lead_id: int) -> str:
    """A landing-page lead's personal contact state: l:<base-36 id>."""
    return "l:" + _b36(lead_id)


@dataclass(frozen=True)
class State:
    kind: str  # channel | member | lead | none
    channel: str | None = None  # for kind == channel
    id: int | None = None  # member or lead id


def parse_state(state: str | None) -> State:
    """What a state echoed by WeCom means; anything unrecognised is a plain channel."""
    state = (state or "").strip()
    if not state:
        return State("none")
    found = _PERSONAL.match(state)
    if found is None:
        return State("channel", channel=state[:MAX_STATE])
    return State("member" if found[1] == "m" else "lead", id=int(found[2], 36))
