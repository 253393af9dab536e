"""Leads linked to the members they became: by phone, or by the lead's personal code.

- **By phone**: a lead and a member with the same phone blind index (`leads.phone_digest`,
  `members.phone_digest`: both `blind_index("phone", E.164)` under the workspace key, the
  member's from its `profile.updated` phone). When several members share the phone (one
  person on two platforms, or a family phone), the lead goes to the one with the earliest
  first join (members who never joined last), then the lowest id.
- **By state**: WeCom echoed the lead's personal code (`l:<id>`, shown after the form) on an
  add or a join; the member who came through it is the lead (personal_ways.StateResolver).

A lead keeps its first link: a later phone match or personal code does not move it. A phone
link is dropped again when the member's phone no longer matches the lead's (the member changed
it, or was erased under PIPL, which clears `phone_digest`): keeping it would tie the erased
member to a phone number through the lead. The lead may then link to another member with that
phone. A state link stays: it rests on what WeCom reported, not on the member's personal data.

`link_leads` is idempotent and runs after a lead is stored, after an ingest that brought phone
numbers (lead_jobs), and periodically as a safety net; the caller commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from quanzi.acquisition.models import Lead
from quanzi.core.members.models import Member
from quanzi.kit.clock import now_us

BY_PHONE = "phone"
BY_STATE = "state"
_CHUNK = 500


def _phone_match(ws_id: int) -> Any:
    """Members of the workspace with the (correlated) lead's phone."""
    return select(Member.id).where(
        Member.workspace_id == ws_id, Member.phone_digest == Lead.phone_digest
    )


def _link_by_phone(session: Session, ws_id: int, *where: Any) -> int:
    """One UPDATE: each unlinked lead (of `where`) with a member of its phone gets the first
    such member (earliest first join, members who never joined last, then the lowest id)."""
    best = (
        _phone_match(ws_id)
        .order_by(Member.first_join_us.is_(None), Member.first_join_us, Member.id)
        .limit(1)
        .scalar_subquery()
    )
    done = session.execute(
        update(Lead)
        .where(
            Lead.workspace_id == ws_id,
            Lead.member_id.is_(None),
            _phone_match(ws_id).exists(),
            *where,
        )
        .values(member_id=best, linked_by=BY_PHONE, linked_at_us=now_us())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(done, "rowcount", 0) or 0)


def _unlink_stale(session: Session, ws_id: int) -> int:
    """Drop phone links whose member's phone is no longer the lead's, and links whose member
    is gone (the foreign key cleared member_id but not how it was linked)."""
    stale = select(Lead.id).where(
        Lead.workspace_id == ws_id,
        or_(
            and_(Lead.member_id.is_(None), Lead.linked_by.is_not(None)),
            and_(
                Lead.linked_by == BY_PHONE,
                ~select(Member.id)
                .where(
                    Member.id == Lead.member_id,
                    Member.workspace_id == ws_id,
                    Member.phone_digest == Lead.phone_digest,
                )
                .exists(),
            ),
        ),
    )
    ids = list(session.scalars(stale))
    for i in range(0, len(ids), _CHUNK):
        session.execute(
            update(Lead)
            .where(Lead.id.in_(ids[i : i + _CHUNK]))
            .values(member_id=None, linked_by=None, linked_at_us=None)
            .execution_options(synchronize_session=False)
        )
    return len(ids)


def link_leads(session: Session, ws_id: int) -> int:
    """Link the workspace's unlinked leads to members by phone (after dropping stale phone
    links); returns how many leads were linked now. Idempotent."""
    _unlink_stale(session, ws_id)
    return _link_by_phone(session, ws_id)


def link_lead(session: Session, lead: Lead) -> bool:
    """Link one just-stored lead by phone if a member with its phone exists; True if linked."""
    if lead.member_id is not None:
        return False
    if _link_by_phone(session, lead.workspace_id, Lead.id == lead.id) != 1:
        return False
    session.refresh(lead, ["member_id", "linked_by", "linked_at_us"])
    return True


def link_stored_leads(session: Session, ws_id: int, lead_ids: list[int]) -> int:
    """link_lead for many just-stored leads of one workspace in one UPDATE (the lead form's
    group commit); how many were linked."""
    if not lead_ids:
        return 0
    return _link_by_phone(session, ws_id, Lead.id.in_(lead_ids))


def link_by_state(
    session: Session, ws_id: int, platform: str, pairs: Iterable[tuple[int, str]]
) -> int:
    """Link leads to the members who came through their personal codes: (lead id, member
    key on `platform`) pairs, members looked up after their events were ingested. A lead of
    another workspace, a member not (yet) known, or a lead already linked is left alone."""
    wanted = {(int(lead), key) for lead, key in pairs}
    if not wanted:
        return 0
    keys = sorted({key for _lead, key in wanted})
    members: dict[str, int] = {}
    for i in range(0, len(keys), _CHUNK):
        members.update(
            (str(k), int(m))
            for k, m in session.execute(
                select(Member.member_key, Member.id).where(
                    Member.workspace_id == ws_id,
                    Member.platform == platform,
                    Member.member_key.in_(keys[i : i + _CHUNK]),
                )
            )
        )
    leads = set(
        session.scalars(
            select(Lead.id).where(
                Lead.workspace_id == ws_id, Lead.id.in_(sorted({lead for lead, _k in wanted}))
            )
        )
    )
    found = sorted((lead, members[key]) for lead, key in wanted if lead in leads and key in members)
    # Two members through one lead's code (it was forwarded): the lowest member id wins; the
    # conditional UPDATE leaves the lead alone once it is linked.
    now, linked = now_us(), 0
    for lead, member in found:
        done = session.execute(
            update(Lead)
            .where(Lead.id == lead, Lead.member_id.is_(None))
            .values(member_id=member, linked_by=BY_STATE, linked_at_us=now)
            .execution_options(synchronize_session=False)
        )
        linked += int(getattr(done, "rowcount", 0) or 0)
    return linked
