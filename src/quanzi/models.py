"""Every table, imported in one place so Alembic sees the whole schema."""

from quanzi.commerce.models import Order, Refund
from quanzi.core.events.models import EventRecord
from quanzi.core.groups.models import Group, GroupChange
from quanzi.core.members.models import (
    ContactEvent,
    DailyActivity,
    InviteFlag,
    Join,
    Leave,
    Member,
    Membership,
    MemberWeek,
)
from quanzi.core.workspaces.models import ApiToken, Workspace

__all__ = [
    "ApiToken",
    "ContactEvent",
    "DailyActivity",
    "EventRecord",
    "Group",
    "GroupChange",
    "InviteFlag",
    "Join",
    "Leave",
    "Member",
    "MemberWeek",
    "Membership",
    "Order",
    "Refund",
    "Workspace",
]
