"""Operator decisions about members that the event log does not carry: staff marks, fraud flags."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from quanzi.core.events.projections import lock_workspace
from quanzi.core.members.models import InviteFlag, Member
from quanzi.kit.clock import now_us
from quanzi.kit.errors import NotFound


def find_member(session: Session, workspace_id: int, platform: str, member_key: str) -> Member:
    member = session.scalar(
        select(Member).where(
            Member.workspace_id == workspace_id,
            Member.platform == platform,
            Member.member_key == member_key,
        )
    )
    if member is None:
        raise NotFound(f"no member {member_key!r} on platform {platform!r} in this workspace")
    return member


def mark_staff(
    session: Session, workspace_id: int, platform: str, member_key: str, staff: bool = True
) -> Member:
    """Mark (or unmark) a member as staff; staff is left out of every member figure."""
    lock_workspace(session.connection(), workspace_id)
    member = find_member(session, workspace_id, platform, member_key)
    member.staff_marked = staff
    member.is_staff = staff or member.is_staff_joined
    session.flush()
    return member


def flag_invite_fraud(
    session: Session, workspace_id: int, platform: str, member_key: str, reason: str | None = None
) -> None:
    """Record an operator's confirmed fraud verdict: this invitee's invites are neither valid nor pending."""
    member = find_member(session, workspace_id, platform, member_key)
    exists = session.scalar(
        select(InviteFlag.id).where(
            InviteFlag.workspace_id == workspace_id, InviteFlag.member_id == member.id
        )
    )
    if exists is None:
        session.add(
            InviteFlag(
                workspace_id=workspace_id,
                member_id=member.id,
                reason=reason,
                flagged_at_us=now_us(),
            )
        )
        session.flush()


def unflag_invite_fraud(
    session: Session, workspace_id: int, platform: str, member_key: str
) -> None:
    member = find_member(session, workspace_id, platform, member_key)
    session.execute(
        delete(InviteFlag).where(
            InviteFlag.workspace_id == workspace_id, InviteFlag.member_id == member.id
        )
    )
