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
- shared_device: the invitee's landing-page lead came from the same device as the leads of at
  least DEVICE_MIN - 1 other invitees of the same inviter within 24 h, or from the same network
  as NETWORK_MIN - 1 others within 1 h, or from a device that opened that inviter's poster
  (ChannelVisit.ref) at least POSTER_VISITS_MIN times within 24 h and sent the leads of at least
  POSTER_LEADS_MIN of their invitees. Devices and networks are keyed digests, never addresses.

Review: an operator confirms (an InviteFlag: the invite is neither valid nor pending) or
dismisses. In "strict" mode suspects are flagged at once; a dismissal unflags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session, aliased

from quanzi.acquisition.models import ChannelVisit, InviteSuspect, Lead
from quanzi.acquisition.states import parse_state
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
# shared_device: distinct invitees of one inviter whose leads came from one device within the
# window. 4, because a family of 2-3 sharing a phone is ordinary.
DEVICE_MIN = 4
DEVICE_WINDOW_US = 24 * HOUR_US
# ... or from one network (an office, a campus or a carrier NAT share one) within a short window.
NETWORK_MIN = 10
NETWORK_WINDOW_US = HOUR_US
# ... or from a device that opened the inviter's poster this often within the window (an honest
# invitee opens it once or twice) and sent the leads of at least this many of their invitees.
POSTER_VISITS_MIN = 8
POSTER_LEADS_MIN = 2
POSTER_WINDOW_US = 24 * HOUR_US


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

    for inv, detail in _shared_device(session, ws_id, as_of, invites):
        signal(inv, "shared_device", detail)
    return [out[k] for k in sorted(out)]


def _clusters(
    items: list[tuple[int, int]], window_us: int, least: int
) -> dict[int, tuple[int, int]]:
    """For (ts, member) pairs sorted by ts: each member inside some window of `window_us` that
    holds at least `least` distinct members -> (distinct members, span in µs) of the largest."""
    out: dict[int, tuple[int, int]] = {}
    lo = 0
    for hi in range(len(items)):
        while items[hi][0] - items[lo][0] > window_us:
            lo += 1
        members = {m for _t, m in items[lo : hi + 1]}
        if len(members) < least:
            continue
        span = items[hi][0] - items[lo][0]
        for m in members:
            if m not in out or len(members) > out[m][0]:
                out[m] = (len(members), span)
    return out


def _shared_device(
    session: Session, ws_id: int, as_of: int, invites: list[_Invite]
) -> list[tuple[_Invite, dict[str, Any]]]:
    """The invites whose invitee's lead shares a device or network with the leads of other
    invitees of the same inviter (see the module's docstring for the rules)."""
    pair: dict[tuple[int, int], _Invite] = {}  # (inviter, invitee) -> their first invite
    inviters_of: dict[int, list[int]] = {}
    for inv in invites:
        if inv.inviter_id != inv.member_id and (inv.inviter_id, inv.member_id) not in pair:
            pair[(inv.inviter_id, inv.member_id)] = inv
            inviters_of.setdefault(inv.member_id, []).append(inv.inviter_id)
    by_device: dict[tuple[int, str], list[tuple[int, int]]] = {}
    by_net: dict[tuple[int, str], list[tuple[int, int]]] = {}
    for lead_member, device, net, at in session.execute(
        select(Lead.member_id, Lead.device_digest, Lead.net_digest, Lead.created_at_us).where(
            Lead.workspace_id == ws_id, Lead.member_id.is_not(None), Lead.created_at_us <= as_of
        )
    ):
        mid = int(lead_member or 0)
        for inviter_id in inviters_of.get(mid, []):
            if device:
                by_device.setdefault((inviter_id, device), []).append((int(at), mid))
            if net:
                by_net.setdefault((inviter_id, net), []).append((int(at), mid))
    found: dict[tuple[int, int], dict[str, Any]] = {}

    def mark(inviter_id: int, member_id: int, detail: dict[str, Any]) -> None:
        # The first rule that fires is kept; a larger poster burst replaces a smaller one.
        had = found.get((inviter_id, member_id))
        if had is None or (
            had["via"] == detail["via"] == "poster" and detail["visits"] > had["visits"]
        ):
            found[(inviter_id, member_id)] = detail

    rules = (
        ("device", by_device, DEVICE_WINDOW_US, DEVICE_MIN),
        ("network", by_net, NETWORK_WINDOW_US, NETWORK_MIN),
    )
    for via, groups, window_us, least in rules:
        for (inviter_id, _digest), items in sorted(groups.items()):
            items.sort()
            for member_id, (n, span) in _clusters(items, window_us, least).items():
                detail = {"via": via, "invitees": n, "span_min": round(span / 60_000_000)}
                mark(inviter_id, member_id, detail | {"window_h": window_us // HOUR_US})

    # Poster visits: bursts of one device opening one inviter's poster.
    visits: dict[tuple[int, str], list[int]] = {}
    for ref, device, at in session.execute(
        select(ChannelVisit.ref, ChannelVisit.device_digest, ChannelVisit.at_us).where(
            ChannelVisit.workspace_id == ws_id,
            ChannelVisit.ref.is_not(None),
            ChannelVisit.device_digest.is_not(None),
            ChannelVisit.at_us <= as_of,
        )
    ):
        state = parse_state(ref)
        if state.kind == "member" and state.id is not None:
            visits.setdefault((state.id, str(device)), []).append(int(at))
    for (inviter_id, device), times in sorted(visits.items()):
        leads = by_device.get((inviter_id, device))
        if not leads or len(times) < POSTER_VISITS_MIN:
            continue
        times.sort()
        lo = 0
        for hi in range(len(times)):
            while times[hi] - times[lo] > POSTER_WINDOW_US:
                lo += 1
            count = hi - lo + 1
            if count < POSTER_VISITS_MIN:
                continue
            first, last = times[lo], times[hi]
            near = {
                m for at, m in leads if first - POSTER_WINDOW_US <= at <= last + POSTER_WINDOW_US
            }
            if len(near) < POSTER_LEADS_MIN:
                continue
            for member_id in near:
                detail = {
                    "via": "poster",
                    "visits": count,
                    "invitees": len(near),
                    "span_min": round((last - first) / 60_000_000),
                    "window_h": POSTER_WINDOW_US // HOUR_US,
                }
                mark(inviter_id, member_id, detail)
    return [(pair[key], found[key]) for key in sorted(found)]


def next_judgement_us(
    session: Session, ws_id: int, cal: LocalCalendar, as_of_us: int
) -> int | None:
    """The next instant after `as_of_us` at which `detect` may say more with no new data: when
    a recent invite's hold window ends (a sybil ring is judged then), or None."""
    lo_day = cal.day_of(as_of_us - HOLD_US) - 1  # the (workspace, day) index bounds the scan
    first = session.scalar(
        select(func.min(Join.ts_us)).where(
            Join.workspace_id == ws_id,
            Join.day >= lo_day,
            Join.inviter_id.is_not(None),
            Join.ts_us + HOLD_US > as_of_us,
        )
    )
    return None if first is None else int(first) + HOLD_US


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
