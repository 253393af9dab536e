"""WeCom's own customer-group statistics for a day, next to Quanzi's numbers for the same
day and the same groups.

WeCom's figures are fetched with the `group_statistic` action (actions.py: one
`groupchat/statistic` call per page, per owner) and kept as that action's result; Quanzi's
come from its reports (`run_report` "overview" and "groups") scoped to the WeCom groups whose
owner is one of the owners WeCom answered for. The two are counted differently, on purpose:

- WeCom counts only customer groups owned by the filtered staff, and counts staff as members;
  a customer in two groups is two members (and two new members). Quanzi counts people (not
  staff) once, and a "new member" is one whose first join ever falls on that day.
- WeCom counts messages itself; Quanzi's message counts come from other sources (an export, the
  paid chat-archive API), so without them they are 0.
- WeCom's days are Beijing days; Quanzi's are the workspace's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from quanzi.analytics import repository as repo
from quanzi.analytics.service import run_report
from quanzi.connectors.actions import RunOutcome, request_action, run_action
from quanzi.connectors.models import ConnectorAction
from quanzi.core.groups.models import Group
from quanzi.core.members.models import Join
from quanzi.core.workspaces.models import Workspace
from quanzi.db.engine import session_scope
from quanzi.kit.clock import LocalCalendar, day_number
from quanzi.kit.errors import InvalidParameter, NotFound, QuanziError

PLATFORM = "wecom"
KIND = "group_statistic"
MAX_OWNERS = 100
# The metrics compared, in the order shown: (key, WeCom's field in groupchat/statistic).
METRICS: tuple[tuple[str, str], ...] = (
    ("new_members", "new_member_cnt"),
    ("member_total", "member_total"),
    ("groups", "chat_total"),
    ("new_groups", "new_chat_cnt"),
    ("groups_with_messages", "chat_has_msg"),
    ("members_with_messages", "member_has_msg"),
    ("messages", "msg_total"),
)


class FetchFailed(QuanziError):
    """WeCom refused the statistics request (its errcode and meaning in the message)."""

    status_code = 502


@dataclass(frozen=True)
class Metric:
    key: str
    wecom: int | None  # None: WeCom's answer did not have it
    quanzi: int

    @property
    def differs(self) -> bool:
        return self.wecom is not None and self.wecom != self.quanzi


@dataclass(frozen=True)
class Comparison:
    day: date
    owners: list[str]
    groups: int  # Quanzi's WeCom groups of those owners
    metrics: list[Metric]
    # Quanzi's extra figures: joins counted per group (as WeCom counts), distinct members.
    joins: int
    distinct_members: int
    fetched_at_us: int | None
    action_id: int | None


def wecom_owners(session: Session, ws_id: int) -> list[str]:
    """The staff who own WeCom groups Quanzi knows (the default owner filter)."""
    rows = session.scalars(
        select(Group.owner)
        .where(Group.workspace_id == ws_id, Group.platform == PLATFORM, Group.owner.is_not(None))
        .distinct()
    )
    return sorted(str(o) for o in rows if o)[:MAX_OWNERS]


def scope_of(session: Session, ws_id: int, owners: list[str]) -> frozenset[int]:
    """Quanzi's ids of the WeCom groups whose (current) owner is one of `owners`."""
    if not owners:
        return frozenset()
    return frozenset(
        int(g)
        for g in session.scalars(
            select(Group.id).where(
                Group.workspace_id == ws_id,
                Group.platform == PLATFORM,
                Group.owner.in_(owners),
            )
        )
    )


def stored(session: Session, ws_id: int, day: date) -> ConnectorAction | None:
    """The newest done `group_statistic` action of exactly `day`, if any."""
    rows = session.scalars(
        select(ConnectorAction)
        .where(
            ConnectorAction.workspace_id == ws_id,
            ConnectorAction.platform == PLATFORM,
            ConnectorAction.kind == KIND,
            ConnectorAction.state == "done",
        )
        .order_by(ConnectorAction.id.desc())
        .limit(200)
    )
    for row in rows:
        result = row.result or {}
        if result.get("day_begin") == day.isoformat() and result.get("day_end") == day.isoformat():
            return row
    return None


def fetch(
    engine: Engine,
    ws_id: int,
    day: date,
    owners: list[str] | None,
    idempotency_key: str,
    created_by: str | None,
) -> RunOutcome:
    """Request WeCom's figures of `day` for `owners` (default: the owners of the groups Quanzi
    knows) and run the request now; a throttled one is retried by the action engine."""
    with session_scope(engine) as s:
        chosen = [o.strip() for o in owners or [] if o.strip()] or wecom_owners(s, ws_id)
        if not chosen:
            raise InvalidParameter(
                "owners: Quanzi knows no WeCom group owner yet; run a sync or give the owners"
            )
        action = request_action(
            s,
            ws_id,
            PLATFORM,
            KIND,
            {"day_begin": day.isoformat(), "owners": chosen[:MAX_OWNERS]},
            idempotency_key,
            created_by,
        )
        s.flush()
        action_id = action.id
    return run_action(engine, action_id)


def compare(
    session: Session, ws_id: int, day: date, result: dict[str, Any] | None = None
) -> Comparison:
    """Quanzi's numbers for `day` and the groups of the owners in WeCom's `result` (stored
    when None), next to WeCom's totals."""
    workspace = session.get(Workspace, ws_id)
    if workspace is None:
        raise NotFound(f"workspace {ws_id} does not exist")
    action = None
    if result is None:
        action = stored(session, ws_id, day)
        result = action.result if action is not None else None
    items = list((result or {}).get("items") or [])
    owners = sorted({str(i.get("owner")) for i in items if i.get("owner")})
    if not owners:
        owners = wecom_owners(session, ws_id)
    scope = scope_of(session, ws_id, owners)
    params = {"date": day.isoformat()}
    overview = run_report(session, workspace, "overview", params, scope)
    groups = run_report(session, workspace, "groups", params, scope)["groups"]
    d = day_number(day)
    cal = LocalCalendar(workspace.timezone)
    start, end = cal.day_start_us(d), cal.day_start_us(d + 1)
    new_groups = sum(
        1
        for (created,) in session.execute(
            select(Group.created_at_us).where(Group.id.in_(sorted(scope)))
        )
        if created is not None and start <= created < end
    )
    messages = repo.group_messages(session, ws_id, d, d, scope)
    joins = sum(repo.group_counts(session, ws_id, Join, d, d, scope).values())
    quanzi = {
        "new_members": int(overview["new_members"]),
        "member_total": sum(int(g["size"]) for g in groups),
        "groups": int(overview["groups"]),
        "new_groups": new_groups,
        "groups_with_messages": sum(1 for total, _m in messages.values() if total),
        "members_with_messages": int(overview["active_members"]),
        "messages": int(overview["messages"]),
    }
    totals = (result or {}).get("totals") or {}
    metrics = [
        Metric(
            key,
            int(totals[field])
            if result is not None and isinstance(totals.get(field), int)
            else None,
            quanzi[key],
        )
        for key, field in METRICS
    ]
    if result is not None and not items:
        metrics = [Metric(m.key, 0, m.quanzi) for m in metrics]
    return Comparison(
        day=day,
        owners=owners,
        groups=len(scope),
        metrics=metrics,
        joins=joins,
        distinct_members=int(overview["members"]),
        fetched_at_us=action.updated_at_us if action is not None else None,
        action_id=action.id if action is not None else None,
    )
