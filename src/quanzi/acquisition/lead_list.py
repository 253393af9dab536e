"""The leads list of the console: filtered, paged, with the page, version and linked member.

Personal data stays sealed here; the console opens (and masks) what a role may see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from quanzi.acquisition.models import LandingPage, LandingPageVersion, Lead
from quanzi.core.members.models import Member
from quanzi.core.members.repository import scope_condition
from quanzi.kit.clock import LocalCalendar
from quanzi.kit.errors import InvalidParameter, NotFound

EXPORT_LIMIT = 100_000


@dataclass(frozen=True)
class LeadFilter:
    page_id: int | None = None
    channel: str | None = None
    from_day: int | None = None
    to_day: int | None = None
    linked: bool | None = None  # True: linked to a member; False: not yet


@dataclass(frozen=True)
class LeadRow:
    id: int
    page_id: int | None
    page_name: str | None
    version: int | None
    variant: str | None
    channel: str | None
    phone_sealed: str
    name_sealed: str | None
    fields_sealed: str | None
    member_id: int | None  # the linked member, when the user may see them
    member_name: str | None
    linked: bool  # linked to a member (perhaps one outside an operator's groups)
    linked_by: str | None
    submissions: int
    consent_version: int
    consent_text: str
    created_at_us: int
    updated_at_us: int


def _select(ws_id: int, group_ids: frozenset[int] | None) -> Any:
    """Leads with their page, version and linked member; a member outside `group_ids` (an
    operator's groups) is left out, as the members pages leave them out."""
    return (
        select(
            Lead.id,
            Lead.page_id,
            LandingPage.name,
            LandingPageVersion.version,
            LandingPageVersion.variant,
            Lead.channel,
            Lead.phone_sealed,
            Lead.name_sealed,
            Lead.fields_sealed,
            Member.id,
            Member.name,
            Lead.member_id.is_not(None),
            Lead.linked_by,
            Lead.submissions,
            Lead.consent_version,
            Lead.consent_text,
            Lead.created_at_us,
            Lead.updated_at_us,
        )
        .outerjoin(LandingPage, LandingPage.id == Lead.page_id)
        .outerjoin(LandingPageVersion, LandingPageVersion.id == Lead.version_id)
        .outerjoin(
            Member,
            and_(
                Member.id == Lead.member_id,
                Member.workspace_id == ws_id,
                scope_condition(ws_id, group_ids),
            ),
        )
    )


def _where(ws_id: int, calendar: LocalCalendar, f: LeadFilter) -> list[Any]:
    where: list[Any] = [Lead.workspace_id == ws_id]
    if f.page_id is not None:
        where.append(Lead.page_id == f.page_id)
    if f.channel is not None:
        where.append(Lead.channel == f.channel)
    if f.from_day is not None:
        where.append(Lead.created_at_us >= calendar.day_start_us(f.from_day))
    if f.to_day is not None:
        where.append(Lead.created_at_us < calendar.day_start_us(f.to_day + 1))
    if f.from_day is not None and f.to_day is not None and f.to_day < f.from_day:
        raise InvalidParameter("to: the end of the range is before its start")
    if f.linked is True:
        where.append(Lead.member_id.is_not(None))
    elif f.linked is False:
        where.append(Lead.member_id.is_(None))
    return where


def list_leads(
    session: Session,
    ws_id: int,
    calendar: LocalCalendar,
    f: LeadFilter,
    *,
    limit: int = 50,
    offset: int = 0,
    group_ids: frozenset[int] | None = None,
) -> tuple[list[LeadRow], int]:
    """One page of leads, newest first, and how many match the filter in all."""
    if not 1 <= limit <= EXPORT_LIMIT or offset < 0:
        raise InvalidParameter("page: out of range")
    where = _where(ws_id, calendar, f)
    total = int(session.scalar(select(func.count()).select_from(Lead).where(*where)) or 0)
    rows = session.execute(
        _select(ws_id, group_ids)
        .where(*where)
        .order_by(Lead.created_at_us.desc(), Lead.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [LeadRow(*r) for r in rows], total


def get_lead(
    session: Session, ws_id: int, lead_id: int, group_ids: frozenset[int] | None = None
) -> LeadRow:
    row = session.execute(
        _select(ws_id, group_ids).where(Lead.workspace_id == ws_id, Lead.id == lead_id)
    ).first()
    if row is None:
        raise NotFound(f"lead {lead_id} does not exist")
    return LeadRow(*row)
