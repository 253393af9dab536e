"""Invite fraud signals over the projections, and the review queue of suspected invites.

Signals (each invitee gets one Suspect holding every signal that fired):
- self_invite: the join names the invitee as its own inviter, or the inviter's own first join
  was an invite by this invitee (a mutual pair inviting each other).
- quick_leave: the invitee left the group within the hold window (72 h) after the invited join,
  and so did at least QUICK_MIN (3) of the same inviter's invitees, half or more of their invites
  (a lone early leaver is churn, and the invites report already counts it as not valid).
- sybil_burst: >= BURST_SIZE brand-new members invited by one inviter within BURST_WINDOW who
  never post within the hold window; a ring led by a young inviter (first join < 7 days before)
  is named as such in the detail.
- shared_device: needs the landing-page leads (device/network fingerprints); we keep no IPs,
  so it is not computed yet.

Review: an operator confirms (an InviteFlag: the invite is neither valid nor pending) or
dismisses. In "strict" mode suspects are flagged at once; a dismissal unflags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session, aliased

from quanzi.acquisition.models import InviteSuspect
from quanzi.core.members.models import DailyActivity, InviteFlag, Join, Leave, Member
from quanzi.core.workspaces.models import Workspace
from quanzi.kit.clock import DAY_US, HOUR_US, LocalCalendar, now_us
from quanzi.kit.errors import InvalidParameter, NotFound

KINDS = ("self_invite", "quick_leave", "sybil_burst", "shared_device")
STATUSES = ("suspected", "confirmed", "dismissed")
MODES = ("review", "strict")
HOLD_US = 72 * HOUR_US
BURST_SIZE = 5
BURST_WINDOW_US = 10 * 60 * 1_000_000
YOUNG_US = 7 * DAY_US
# quick_leave: at least this many of one inviter's invitees left within the hold window, and at
# least half of all that inviter's invites.
QUICK_MIN = 3


class FraudError(InvalidParameter):
    """A bad value (e.g. an unknown review mode)."""


class SuspectNotFound(NotFound):
    """No suspected invite for that member in this workspace."""


@dataclass
class Suspect:
    member_id: int
    inviter_id: int | None
    signals: list[dict[str, Any]] = field(default_factory=list)

    @property
    def kinds(self) -> list[str]:
        return [str(sig["kind"]) for sig in self.signals]


@dataclass(frozen=True)
class _Invite:
    member_id: int
    inviter_id: int
    group_id: int
    ts_us: int
    is_new: bool


def detect(
    session: Session, ws_id: int, cal: LocalCalendar, *, as_of_us: int | None = None
) -> list[Suspect]:
    """Every invitee with at least one fraud signal, ordered by member id."""
    del cal  # instants are compared in UTC; the calendar is kept for the day-based filters later
    as_of = now_us() if as_of_us is None else as_of_us
    invitee = aliased(Member)
    inviter = aliased(Member)
    q = (
        select(
            Join.member_id,
            Join.inviter_id,
            Join.group_id,
            Join.ts_us,
            Join.event_id == invitee.first_join_event,
        )
        .join(invitee, invitee.id == Join.member_id)
        .join(inviter, inviter.id == Join.inviter_id)
        .where(
            Join.workspace_id == ws_id,
            Join.inviter_id.is_not(None),
            Join.ts_us <= as_of,
            invitee.is_staff.is_(False),
            inviter.is_staff.is_(False),
        )
        .order_by(Join.ts_us, Join.id)
    )
    invites = [
        _Invite(int(m), int(i or 0), int(g), int(t), bool(n))
        for m, i, g, t, n in session.execute(q)
    ]
    if not invites:
        return []
    first_join: dict[int, int | None] = {}
    first_inviter: dict[int, int | None] = {}
    for mid, fj, via in session.execute(
        select(Member.id, Member.first_join_us, Join.inviter_id)
        .outerjoin(
            Join,
            (Join.workspace_id == ws_id) & (Join.event_id == Member.first_join_event),
        )
        .where(Member.workspace_id == ws_id)
    ):
        first_join[int(mid)] = None if fj is None else int(fj)
        first_inviter[int(mid)] = None if via is None else int(via)
    leaves: dict[tuple[int, int], list[int]] = {}
    for mid, gid, ts in session.execute(
        select(Leave.member_id, Leave.group_id, Leave.ts_us).where(
            Leave.workspace_id == ws_id, Leave.ts_us <= as_of
        )
    ):
        leaves.setdefault((int(mid), int(gid)), []).append(int(ts))
    first_post: dict[int, int] = {}
    for mid, ts in session.execute(
        select(DailyActivity.member_id, DailyActivity.first_us).where(
            DailyActivity.workspace_id == ws_id
        )
    ):
        if int(mid) not in first_post or int(ts) < first_post[int(mid)]:
            first_post[int(mid)] = int(ts)

    out: dict[int, Suspect] = {}

    def signal(inv: _Invite, kind: str, detail: dict[str, Any]) -> None:
        sus = out.setdefault(inv.member_id, Suspect(inv.member_id, inv.inviter_id))
        if kind not in sus.kinds:
            sus.signals.append({"kind": kind, "detail": detail})

    invited: dict[int, int] = {}
    quick: dict[int, list[tuple[_Invite, int]]] = {}
    for inv in invites:
        if inv.inviter_id == inv.member_id:
            signal(inv, "self_invite", {"how": "own_inviter", "at_us": inv.ts_us})
        elif first_inviter.get(inv.inviter_id) == inv.member_id:
            signal(inv, "self_invite", {"how": "mutual", "at_us": inv.ts_us})
        gone = [
            t
            for t in leaves.get((inv.member_id, inv.group_id), [])
            if inv.ts_us <= t <= inv.ts_us + HOLD_US
        ]
        if inv.inviter_id != inv.member_id:
            invited[inv.inviter_id] = invited.get(inv.inviter_id, 0) + 1
            if gone:
                quick.setdefault(inv.inviter_id, []).append((inv, min(gone) - inv.ts_us))

    # A lone early leaver is ordinary churn, and its invite is already not valid (left within the
    # hold window): only an inviter whose invitees keep leaving that fast is worth a review.
    for inviter_id, left in quick.items():
        if len(left) >= QUICK_MIN and 2 * len(left) >= invited[inviter_id]:
            for inv, after in left:
                detail = {
                    "hours": round(after / HOUR_US, 1),
                    "inviter_quick": len(left),
                    "inviter_invites": invited[inviter_id],
                }
                signal(inv, "quick_leave", detail)

    # Sybil bursts: per inviter, silent brand-new invitees, any BURST_SIZE of them within the window.
    by_inviter: dict[int, list[_Invite]] = {}
    for inv in invites:
        if not inv.is_new or inv.inviter_id == inv.member_id:
            continue
        if inv.ts_us + HOLD_US > as_of:
            continue  # too early to say they never posted
        fp = first_post.get(inv.member_id)
        if fp is not None and fp <= inv.ts_us + HOLD_US:
            continue
        by_inviter.setdefault(inv.inviter_id, []).append(inv)
    for inviter_id, silent in by_inviter.items():
        silent.sort(key=lambda i: i.ts_us)
        marked: set[int] = set()
        lo = 0
        for hi in range(len(silent)):
            while silent[hi].ts_us - silent[lo].ts_us > BURST_WINDOW_US:
                lo += 1
            if hi - lo + 1 >= BURST_SIZE:
                marked.update(range(lo, hi + 1))
        if not marked:
            continue
        members = [silent[k] for k in sorted(marked)]
        fj = first_join.get(inviter_id)
        young = fj is not None and members[0].ts_us - fj < YOUNG_US
        for inv in members:
            signal(inv, "sybil_burst", {"ring": len(members), "young_leader": young})
    return [out[k] for k in sorted(out)]


def _flag(session: Session, ws_id: int, member_id: int, reason: str) -> None:
    exists = session.scalar(
        select(InviteFlag.id).where(
            InviteFlag.workspace_id == ws_id, InviteFlag.member_id == member_id
        )
    )
    if exists is None:
        session.add(
            InviteFlag(
                workspace_id=ws_id, member_id=member_id, reason=reason, flagged_at_us=now_us()
            )
        )
        session.flush()


def _unflag(session: Session, ws_id: int, member_id: int) -> None:
    session.execute(
        delete(InviteFlag).where(
            InviteFlag.workspace_id == ws_id, InviteFlag.member_id == member_id
        )
    )


def review_mode(session: Session, ws_id: int) -> str:
    ws = session.get(Workspace, ws_id)
    if ws is None:
        raise NotFound("workspace not found")
    return ws.invite_review_mode or "review"


def set_review_mode(session: Session, ws_id: int, mode: str) -> None:
    """Switch review/strict; strict flags every open suspect, review unflags the auto flags."""
    if mode not in MODES:
        raise FraudError(f"unknown review mode: {mode}")
    ws = session.get(Workspace, ws_id)
    if ws is None:
        raise NotFound("workspace not found")
    ws.invite_review_mode = mode
    rows = session.scalars(
        select(InviteSuspect).where(
            InviteSuspect.workspace_id == ws_id, InviteSuspect.status == "suspected"
        )
    ).all()
    for row in rows:
        if mode == "strict":
            _flag(session, ws_id, row.member_id, _auto_reason(row.signals))
        else:
            _unflag(session, ws_id, row.member_id)
    session.flush()


def _auto_reason(signals: list[dict[str, Any]]) -> str:
    return "auto: " + ",".join(str(s["kind"]) for s in signals)


@dataclass(frozen=True)
class RefreshResult:
    found: int
    added: int
    updated: int


def refresh_suspects(
    session: Session, ws_id: int, cal: LocalCalendar, *, as_of_us: int | None = None
) -> RefreshResult:
    """Upsert the suspects: new ones are 'suspected'; a reviewed verdict is never overwritten."""
    strict = review_mode(session, ws_id) == "strict"
    found = detect(session, ws_id, cal, as_of_us=as_of_us)
    have = {
        row.member_id: row
        for row in session.scalars(select(InviteSuspect).where(InviteSuspect.workspace_id == ws_id))
    }
    added = updated = 0
    now = now_us()
    for sus in found:
        row = have.get(sus.member_id)
        if row is None:
            session.add(
                InviteSuspect(
                    workspace_id=ws_id,
                    member_id=sus.member_id,
                    inviter_id=sus.inviter_id,
                    signals=sus.signals,
                    status="suspected",
                    detected_at_us=now,
                )
            )
            added += 1
            if strict:
                _flag(session, ws_id, sus.member_id, _auto_reason(sus.signals))
        elif row.status == "suspected" and row.signals != sus.signals:
            row.signals = sus.signals
            updated += 1
    session.flush()
    return RefreshResult(len(found), added, updated)


def _suspect(session: Session, ws_id: int, member_id: int) -> InviteSuspect:
    row = session.scalar(
        select(InviteSuspect).where(
            InviteSuspect.workspace_id == ws_id, InviteSuspect.member_id == member_id
        )
    )
    if row is None:
        raise SuspectNotFound(f"no suspected invite for member {member_id}")
    return row


def _verdict(
    session: Session, ws_id: int, member_id: int, status: str, by: str, note: str | None
) -> InviteSuspect:
    row = _suspect(session, ws_id, member_id)
    row.status, row.reviewed_by, row.reviewed_at_us = status, by, now_us()
    if note is not None:
        row.note = note
    _unflag(session, ws_id, member_id)  # a confirmation replaces an "auto:" reason
    return row


def confirm(
    session: Session, ws_id: int, member_id: int, by: str, note: str | None = None
) -> InviteSuspect:
    """The operator's verdict: fraud. The invite is flagged (neither valid nor pending)."""
    row = _verdict(session, ws_id, member_id, "confirmed", by, note)
    kinds = ",".join(str(s["kind"]) for s in row.signals)
    _flag(session, ws_id, member_id, f"confirmed by {by}: {kinds}")
    return row


def dismiss(
    session: Session, ws_id: int, member_id: int, by: str, note: str | None = None
) -> InviteSuspect:
    """The operator's verdict: not fraud. Any flag (automatic or earlier confirmed) is removed."""
    row = _verdict(session, ws_id, member_id, "dismissed", by, note)
    session.flush()
    return row


@dataclass(frozen=True)
class SuspectRow:
    member_id: int
    member_key: str
    member_name: str | None
    inviter_key: str | None
    inviter_name: str | None
    signals: list[dict[str, Any]]
    status: str
    detected_at_us: int
    reviewed_by: str | None
    reviewed_at_us: int | None


def list_suspects(
    session: Session,
    ws_id: int,
    *,
    status: str | None = None,
    kind: str | None = None,
    group_ids: frozenset[int] | None = None,
    limit: int = 200,
    offset: int = 0,
) -> tuple[list[SuspectRow], int]:
    """The review queue, newest first; `kind` keeps suspects with that signal."""
    invitee = aliased(Member)
    inviter = aliased(Member)
    q = (
        select(InviteSuspect, invitee.member_key, invitee.name, inviter.member_key, inviter.name)
        .join(invitee, invitee.id == InviteSuspect.member_id)
        .outerjoin(inviter, inviter.id == InviteSuspect.inviter_id)
        .where(InviteSuspect.workspace_id == ws_id)
        .order_by(InviteSuspect.detected_at_us.desc(), InviteSuspect.id.desc())
    )
    if status:
        q = q.where(InviteSuspect.status == status)
    if group_ids is not None:  # an operator sees invites into their groups only
        q = q.where(
            exists().where(
                Join.workspace_id == ws_id,
                Join.member_id == InviteSuspect.member_id,
                Join.group_id.in_(group_ids),
            )
        )
    rows = []
    for sus, mkey, mname, ikey, iname in session.execute(q):
        if kind and kind not in [s["kind"] for s in sus.signals]:
            continue
        rows.append(
            SuspectRow(
                sus.member_id,
                mkey,
                mname,
                ikey,
                iname,
                list(sus.signals),
                sus.status,
                sus.detected_at_us,
                sus.reviewed_by,
                sus.reviewed_at_us,
            )
        )
    return rows[offset : offset + limit], len(rows)


def counts(session: Session, ws_id: int) -> dict[str, int]:
    """Suspects per status."""
    out = dict.fromkeys(STATUSES, 0)
    for (st,) in session.execute(
        select(InviteSuspect.status).where(InviteSuspect.workspace_id == ws_id)
    ):
        out[st] = out.get(st, 0) + 1
    return out
