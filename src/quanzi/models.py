"""Every table, imported in one place so Alembic sees the whole schema."""

from quanzi.acquisition.models import (
    ChannelCode,
    ChannelRotation,
    ChannelVisit,
    InviteSuspect,
    LandingPage,
    LandingPageVersion,
    LandingVisit,
    Lead,
    Media,
    PosterTemplate,
)
from quanzi.commerce.models import Order, Refund
from quanzi.connectors.models import ConnectorAction
from quanzi.connectors.wecom.models import (
    WecomCallback,
    WecomConnection,
    WecomKnown,
    WecomSyncState,
)
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
from quanzi.core.tags.models import MemberTag, Tag, TagGroup
from quanzi.core.workspaces.models import ApiToken, Workspace
from quanzi.team.models import (
    AuditEntry,
    GroupAssignment,
    Invitation,
    LoginAttempt,
    TeamMember,
    User,
    WebSession,
)

__all__ = [
    "ApiToken",
    "AuditEntry",
    "ChannelCode",
    "ChannelRotation",
    "ChannelVisit",
    "ConnectorAction",
    "ContactEvent",
    "DailyActivity",
    "EventRecord",
    "Group",
    "GroupAssignment",
    "GroupChange",
    "Invitation",
    "InviteFlag",
    "InviteSuspect",
    "Join",
    "LandingPage",
    "LandingPageVersion",
    "LandingVisit",
    "Lead",
    "Leave",
    "LoginAttempt",
    "Media",
    "Member",
    "MemberTag",
    "MemberWeek",
    "Membership",
    "Order",
    "PosterTemplate",
    "Refund",
    "Tag",
    "TagGroup",
    "TeamMember",
    "User",
    "WebSession",
    "WecomCallback",
    "WecomConnection",
    "WecomKnown",
    "WecomSyncState",
    "Workspace",
]
