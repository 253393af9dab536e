"""A store-independent dump of every projection of a workspace, by natural keys (not row ids)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from quanzi.commerce.models import Order, Refund
from quanzi.core.groups.models import Group, GroupChange
from quanzi.core.members.models import (
    ContactEvent,
    DailyActivity,
    Join,
    Leave,
    Member,
    Membership,
    MemberWeek,
)


def projections(engine: Engine, ws: int) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as c:
        groups = {
            r.id: (r.platform, r.group_key)
            for r in c.execute(select(Group).where(Group.workspace_id == ws))
        }
        members = {
            r.id: (r.platform, r.member_key)
            for r in c.execute(select(Member).where(Member.workspace_id == ws))
        }
        m = lambda i: members.get(i)  # noqa: E731
        g = lambda i: groups.get(i)  # noqa: E731
        out: dict[str, list[tuple[Any, ...]]] = {}
        out["groups"] = sorted(
            (g(r.id), r.created_at_us, r.dismissed_at_us, r.name, r.notice, r.owner)
            for r in c.execute(select(Group).where(Group.workspace_id == ws))
        )
        out["members"] = sorted(
            (
                m(r.id),
                r.name,
                r.is_staff,
                r.first_join_us,
                r.first_join_event,
                r.first_join_channel,
                r.first_join_day,
                r.first_contact_us,
                r.first_contact_channel,
                r.first_message_us,
                r.first_message_day,
                r.channel,
                sorted((r.profile or {}).items()),
            )
            for r in c.execute(select(Member).where(Member.workspace_id == ws))
        )
        out["memberships"] = sorted(
            (g(r.group_id), m(r.member_id), r.joined_us, r.left_us, r.ended_by)
            for r in c.execute(select(Membership).where(Membership.workspace_id == ws))
        )
        out["joins"] = sorted(
            (
                r.event_id,
                g(r.group_id),
                m(r.member_id),
                r.ts_us,
                r.day,
                m(r.inviter_id),
                r.via,
                r.channel,
                r.is_staff,
            )
            for r in c.execute(select(Join).where(Join.workspace_id == ws))
        )
        out["leaves"] = sorted(
            (r.event_id, g(r.group_id), m(r.member_id), r.ts_us, r.day, r.via, r.by_key)
            for r in c.execute(select(Leave).where(Leave.workspace_id == ws))
        )
        out["daily_activity"] = sorted(
            (g(r.group_id), m(r.member_id), r.day, r.messages, r.first_us, r.last_us)
            for r in c.execute(select(DailyActivity).where(DailyActivity.workspace_id == ws))
        )
        out["contacts"] = sorted(
            (r.event_id, m(r.member_id), r.staff_key, r.kind, r.ts_us, r.channel, r.by)
            for r in c.execute(select(ContactEvent).where(ContactEvent.workspace_id == ws))
        )
        out["group_changes"] = sorted(
            (r.event_id, g(r.group_id), r.ts_us, r.field, r.value)
            for r in c.execute(select(GroupChange).where(GroupChange.workspace_id == ws))
        )
        out["orders"] = sorted(
            (
                r.platform,
                r.order_key,
                r.event_id,
                m(r.member_id),
                r.amount_fen,
                r.paid_us,
                r.paid_day,
                r.campaign,
                m(r.referrer_id),
                repr(r.items),
            )
            for r in c.execute(select(Order).where(Order.workspace_id == ws))
        )
        out["refunds"] = sorted(
            (r.event_id, r.platform, r.order_key, r.amount_fen, r.ts_us, r.day)
            for r in c.execute(select(Refund).where(Refund.workspace_id == ws))
        )
        out["member_weeks"] = sorted(
            (m(r.member_id), r.week)
            for r in c.execute(select(MemberWeek).where(MemberWeek.workspace_id == ws))
        )
    return out
