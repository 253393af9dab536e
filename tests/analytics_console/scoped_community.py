"""Helpers for the console's analytics tests: reports of a Community limited to some groups."""

from __future__ import annotations

from typing import Any

from community import Community
from sqlalchemy import Engine, select

from quanzi.analytics.service import run_report
from quanzi.core.groups.models import Group
from quanzi.core.workspaces.models import Workspace
from quanzi.db.engine import session_scope


def group_ids(c: Community, *keys: str, platform: str = "wecom") -> frozenset[int]:
    """Group.id values of the given group ids (all of the workspace's groups when none)."""
    with session_scope(c.engine) as s:
        q = select(Group.id).where(Group.workspace_id == c.ws_id)
        if keys:
            q = q.where(Group.group_key.in_(keys), Group.platform == platform)
        return frozenset(int(g) for g in s.scalars(q))


def scoped_report(
    c: Community, name: str, scope: frozenset[int] | None, **params: Any
) -> dict[str, Any]:
    with session_scope(c.engine) as s:
        ws = s.get(Workspace, c.ws_id)
        assert ws is not None
        raw = {k.rstrip("_"): (None if v is None else str(v)) for k, v in params.items()}
        return run_report(s, ws, name, raw, group_ids=scope)


D, D1, D2, D3 = "2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"  # D is a Monday
LATER = "2026-03-10T00:00:00+08:00"


def t(day: str, hm: str) -> str:
    return f"{day}T{hm}:00+08:00"


def build_three_groups(engine: Engine) -> Community:
    """g1 and g2 are the operator's groups; g3 is someone else's.

    z  joins g3 on 02-20.                      a  joins g3 on 02-23 (channel x3), posts there
    b  adds a staff contact on 02-25 (store).     on 02-24, and joins g1 on D (channel c1).
    On D: staff s joins g1; b joins g1 invited by a; c joins g2 invited by z (leaves on D+1,
    within 72 h); d joins g3 invited by a, posts there and pays 5,000; f joins g3.
    Messages on D in g1: a ×2, s ×1, b ×1. On D+1: e joins g2 and posts there.
    b pays 10,000 on D+2; 3,000 of it is refunded on D+3.
    """
    c = Community(engine)
    c.add("member.joined", t("2026-02-20", "09:00"), group="g3", member="z")
    c.add("member.joined", t("2026-02-23", "10:00"), group="g3", member="a", channel="x3")
    c.add("message.posted", t("2026-02-24", "10:00"), group="g3", member="a")
    c.add("contact.added", t("2026-02-25", "10:00"), member="b", staff="s", channel="store")
    c.add("member.joined", t(D, "09:00"), group="g1", member="s", is_staff=True)
    c.add("member.joined", t(D, "10:00"), group="g1", member="a", channel="c1")
    c.add("message.posted", t(D, "10:30"), group="g1", member="a")
    c.add("message.posted", t(D, "10:40"), group="g1", member="a")
    c.add("message.posted", t(D, "10:50"), group="g1", member="s")
    c.add("member.joined", t(D, "11:00"), group="g1", member="b", inviter="a", via="invite")
    c.add("member.joined", t(D, "12:00"), group="g2", member="c", inviter="z", via="invite")
    c.add("member.joined", t(D, "13:00"), group="g3", member="d", inviter="a", via="invite")
    c.add("member.joined", t(D, "14:00"), group="g3", member="f")
    c.add("message.posted", t(D, "15:00"), group="g1", member="b")
    c.add("message.posted", t(D, "16:00"), group="g3", member="d")
    c.add("order.paid", t(D, "20:00"), order="o-d", member="d", amount=5000)
    c.add("member.left", t(D1, "12:00"), group="g2", member="c")
    c.add("member.joined", t(D1, "09:00"), group="g2", member="e")
    c.add("message.posted", t(D1, "09:30"), group="g2", member="e")
    c.add("order.paid", t(D2, "20:00"), order="o-b", member="b", amount=10000)
    c.add("order.refunded", t(D3, "20:00"), order="o-b", amount=3000)
    return c
