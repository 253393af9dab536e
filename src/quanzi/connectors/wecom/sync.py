"""Sync: read staff, customers, customer groups and corp tags from WeCom; emit events for what
changed since the last sync (WecomKnown), resumable from a checkpoint (WecomSyncState).

WeCom offers no change feed for these lists, so every sync lists everything and compares with
what Quanzi last saw; callbacks bring changes in between. A sync run has an instant (`run_at`,
kept in the checkpoint) that dates what it can only observe (a leave, a removed contact, a
dismissed group) and names those events, so a run resumed after a crash emits the same ids.

Per page: the events are ingested first (their own transaction, ingest_lines), then WecomKnown
and the checkpoint are written together. A crash between the two re-reads the page on resume
and re-sends the same event ids, which the log answers as duplicates: nothing is doubled.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, delete, insert, select, update

from quanzi.acquisition.personal_ways import StateResolver
from quanzi.connectors.wecom.client import WecomClient
from quanzi.connectors.wecom.mapping import ResolveState, plain_states, with_state
from quanzi.connectors.wecom.models import WecomKnown, WecomSyncState
from quanzi.core.events.models import EventRecord
from quanzi.core.events.service import ingest_lines
from quanzi.kit.clock import now_us
from quanzi.kit.errors import InvalidParameter, QuanziError

KINDS = ("staff", "contacts", "groups", "tags")
USERS_PER_CALL = 100  # batch/get_by_user: userid_list ≤ 100
CONTACTS_PER_PAGE = 100  # batch/get_by_user: limit ≤ 100
GROUPS_PER_PAGE = 1000  # groupchat/list: limit 1–1000
# REST join_scene (groupchat/get) → member.joined `via` (the callback's JoinScene differs).
JOIN_VIA = {1: "invite", 2: "link", 3: "qrcode"}
PLATFORM = "wecom"

Progress = Callable[[str, int, int | None], None]  # (kind, done so far, total if known)


@dataclass
class KindReport:
    """What the sync of one kind did."""

    kind: str
    fetched: int = 0
    applied: int = 0
    duplicates: int = 0
    resumed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "fetched": self.fetched,
            "events": self.applied,
            "duplicates": self.duplicates,
            "resumed": self.resumed,
        }


@dataclass
class SyncReport:
    kinds: dict[str, KindReport] = field(default_factory=dict)
    api_calls: int = 0

    @property
    def applied(self) -> int:
        return sum(k.applied for k in self.kinds.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.applied,
            "api_calls": self.api_calls,
            "kinds": {k: r.as_dict() for k, r in self.kinds.items()},
        }


class SyncFailed(QuanziError):
    status_code = 500


def sync(
    engine: Engine,
    ws_id: int,
    client: WecomClient,
    *,
    kinds: Sequence[str] = KINDS,
    full: bool = False,
    on_progress: Progress | None = None,
) -> SyncReport:
    """Sync `kinds` of the workspace's corp through `client`. An interrupted sync of a kind is
    resumed from its checkpoint; `full` starts every kind over from its first page."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise InvalidParameter(f"unknown sync kind {unknown[0]!r} (kinds: {', '.join(KINDS)})")
    report = SyncReport()
    calls_before = client.calls
    try:
        for kind in KINDS:
            if kind in kinds:
                run = _Run.begin(engine, ws_id, kind, full, on_progress)
                report.kinds[kind] = run.report
                try:
                    _SYNCERS[kind](run, client)
                except BaseException as exc:
                    run.fail(exc)
                    raise
                run.finish()
    finally:
        report.api_calls = client.calls - calls_before
    return report


def sync_states(engine: Engine, ws_id: int) -> list[dict[str, Any]]:
    """The workspace's sync state per kind (for `quanzi wecom status` and the console)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                WecomSyncState.kind,
                WecomSyncState.status,
                WecomSyncState.checkpoint,
                WecomSyncState.started_at_us,
                WecomSyncState.finished_at_us,
                WecomSyncState.last_error,
            )
            .where(WecomSyncState.workspace_id == ws_id)
            .order_by(WecomSyncState.kind)
        ).all()
        conn.rollback()
    return [dict(r._mapping) for r in rows]


# --- a run of one kind ----------------------------------------------------------------------


class _Run:
    """One kind's sync: its run instant, checkpoint and report; writes known state and events."""

    def __init__(
        self, engine: Engine, ws_id: int, kind: str, checkpoint: dict[str, Any], resumed: bool
    ) -> None:
        self.engine = engine
        self.ws_id = ws_id
        self.kind = kind
        self.checkpoint = checkpoint
        self.run_at_us: int = checkpoint["run_at"]
        self.run_s = self.run_at_us // 1_000_000
        self.report = KindReport(kind, resumed=resumed)
        self.on_progress: Progress | None = None
        # What contact and join ways' states mean (personal codes checked in the database);
        # the leads they name are linked once the page's events are in.
        self.states = StateResolver(engine, ws_id, PLATFORM)

    @classmethod
    def begin(
        cls, engine: Engine, ws_id: int, kind: str, full: bool, on_progress: Progress | None
    ) -> _Run:
        with engine.begin() as conn:
            row = conn.execute(
                select(WecomSyncState.id, WecomSyncState.status, WecomSyncState.checkpoint).where(
                    WecomSyncState.workspace_id == ws_id, WecomSyncState.kind == kind
                )
            ).one_or_none()
            now = now_us()
            resume = (
                row is not None
                and row.status != "done"
                and isinstance(row.checkpoint, dict)
                and "run_at" in row.checkpoint
                and not full
            )
            checkpoint: dict[str, Any] = dict(row.checkpoint) if resume else {"run_at": now}  # type: ignore[union-attr]
            values: dict[str, Any] = {
                "status": "running",
                "checkpoint": checkpoint,
                "finished_at_us": None,
                "last_error": None,
            }
            if row is None:
                conn.execute(
                    insert(WecomSyncState).values(
                        workspace_id=ws_id, kind=kind, started_at_us=now, **values
                    )
                )
            else:
                if not resume:
                    values["started_at_us"] = now
                conn.execute(
                    update(WecomSyncState).where(WecomSyncState.id == row.id).values(**values)
                )
        run = cls(engine, ws_id, kind, checkpoint, resume)
        run.on_progress = on_progress
        return run

    def finish(self) -> None:
        with self.engine.begin() as conn:
            self._set_state(conn, status="done", checkpoint=None, finished_at_us=now_us())
        _record_health(self.engine, self.ws_id, None)

    def fail(self, exc: BaseException) -> None:
        message = f"sync {self.kind}: {exc}"[:500] if str(exc) else f"sync {self.kind}: {exc!r}"
        try:
            with self.engine.begin() as conn:
                self._set_state(conn, status="failed", last_error=message)
            _record_health(self.engine, self.ws_id, message)
        except Exception:  # the database itself may be what failed; keep the first error
            pass

    def _set_state(self, conn: Connection, **values: Any) -> None:
        conn.execute(
            update(WecomSyncState)
            .where(WecomSyncState.workspace_id == self.ws_id, WecomSyncState.kind == self.kind)
            .values(**values)
        )

    def progress(self, done: int, total: int | None = None) -> None:
        if self.on_progress is not None:
            self.on_progress(self.kind, done, total)

    # --- events and known state ---------------------------------------------------------

    def emit(self, events: list[dict[str, Any]]) -> None:
        """Ingest events (deterministic ids: a re-sent one is a duplicate)."""
        if not events:
            return
        lines = [orjson.dumps({"platform": PLATFORM, **e}) for e in events]
        result = ingest_lines(self.engine, self.ws_id, lines)
        if result.refused:
            _line, reason = result.refused[0]
            raise SyncFailed(f"sync {self.kind}: WeCom data made a bad event: {reason}")
        self.report.applied += result.applied
        self.report.duplicates += result.duplicates
        self.states.link_leads()

    def known(self, conn: Connection, kind: str, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = list(keys)
        found: dict[str, dict[str, Any]] = {}
        for i in range(0, len(wanted), 500):
            found.update(
                (k, v)
                for k, v in conn.execute(
                    select(WecomKnown.key, WecomKnown.state).where(
                        WecomKnown.workspace_id == self.ws_id,
                        WecomKnown.kind == kind,
                        WecomKnown.key.in_(wanted[i : i + 500]),
                    )
                )
            )
        return found

    def remember(self, conn: Connection, kind: str, states: dict[str, dict[str, Any]]) -> None:
        """Known state of `kind` for these keys, marked seen by this run."""
        have = set(self.known(conn, kind, states))
        for key, state in states.items():
            if key in have:
                conn.execute(
                    update(WecomKnown)
                    .where(
                        WecomKnown.workspace_id == self.ws_id,
                        WecomKnown.kind == kind,
                        WecomKnown.key == key,
                    )
                    .values(state=state, seen_at_us=self.run_at_us)
                )
        fresh = [
            {
                "workspace_id": self.ws_id,
                "kind": kind,
                "key": k,
                "state": s,
                "seen_at_us": self.run_at_us,
            }
            for k, s in states.items()
            if k not in have
        ]
        if fresh:
            conn.execute(insert(WecomKnown), fresh)

    def unseen(self, kind: str) -> dict[str, dict[str, Any]]:
        """Known objects of `kind` this run has not seen: gone from WeCom."""
        with self.engine.connect() as conn:
            rows: dict[str, dict[str, Any]] = {
                k: v
                for k, v in conn.execute(
                    select(WecomKnown.key, WecomKnown.state).where(
                        WecomKnown.workspace_id == self.ws_id,
                        WecomKnown.kind == kind,
                        WecomKnown.seen_at_us < self.run_at_us,
                    )
                )
            }
            conn.rollback()
        return rows

    def forget(self, conn: Connection, kind: str, keys: Iterable[str]) -> None:
        keys = list(keys)
        for i in range(0, len(keys), 500):
            conn.execute(
                delete(WecomKnown).where(
                    WecomKnown.workspace_id == self.ws_id,
                    WecomKnown.kind == kind,
                    WecomKnown.key.in_(keys[i : i + 500]),
                )
            )

    def save(self, conn: Connection, **checkpoint: Any) -> None:
        self.checkpoint = {"run_at": self.run_at_us, **checkpoint}
        self._set_state(conn, checkpoint=self.checkpoint)

    def logged(self, event_type: str, id_prefix: str, since_s: Any) -> bool:
        """Whether the log holds an event of `event_type` whose id starts with `id_prefix`,
        dated `since_s` (when the object was known to begin) or later."""
        with self.engine.connect() as conn:
            found = conn.scalar(
                select(EventRecord.event_id)
                .where(
                    EventRecord.workspace_id == self.ws_id,
                    EventRecord.type == event_type,
                    EventRecord.event_id.startswith(id_prefix, autoescape=True),
                    EventRecord.ts_us >= int(since_s or 0) * 1_000_000,
                )
                .limit(1)
            )
            conn.rollback()
        return found is not None

    def sweep(
        self, kind: str, gone_events: Callable[[str, dict[str, Any]], list[dict[str, Any]]]
    ) -> None:
        """Emit events for the known objects this run did not see, then forget them."""
        gone = self.unseen(kind)
        if not gone:
            return
        self.emit([e for key, state in sorted(gone.items()) for e in gone_events(key, state)])
        with self.engine.begin() as conn:
            self.forget(conn, kind, gone)


def _record_health(engine: Engine, ws_id: int, error: str | None) -> None:
    from quanzi.connectors.wecom import service

    with engine.begin() as conn:
        from sqlalchemy.orm import Session

        session = Session(bind=conn)
        if error is None:
            service.record_sync(session, ws_id)
        else:
            service.record_error(session, ws_id, error)
        session.flush()


# --- the kinds --------------------------------------------------------------------------------


def _follow_users(client: WecomClient) -> list[str]:
    answer = client.get("externalcontact/get_follow_user_list")
    return [str(u) for u in answer.get("follow_user") or []]


def _sync_staff(run: _Run, client: WecomClient) -> None:
    staff = _follow_users(client)
    run.report.fetched = len(staff)
    with run.engine.begin() as conn:
        run.remember(conn, "staff", {u: {} for u in staff})
    run.progress(len(staff), len(staff))
    gone = run.unseen("staff")
    with run.engine.begin() as conn:
        run.forget(conn, "staff", gone)


def _sync_contacts(run: _Run, client: WecomClient) -> None:
    cp = run.checkpoint
    if "staff" not in cp:
        with run.engine.begin() as conn:
            run.save(conn, staff=sorted(_follow_users(client)), chunk=0, cursor="", done=0)
        cp = run.checkpoint
    staff: list[str] = cp["staff"]
    chunks = [staff[i : i + USERS_PER_CALL] for i in range(0, len(staff), USERS_PER_CALL)]
    chunk, cursor, done = int(cp["chunk"]), str(cp["cursor"]), int(cp["done"])
    while chunk < len(chunks):
        answer = client.post(
            "externalcontact/batch/get_by_user",
            {"userid_list": chunks[chunk], "cursor": cursor, "limit": CONTACTS_PER_PAGE},
        )
        rows = answer.get("external_contact_list") or []
        contacts: dict[str, dict[str, Any]] = {}
        profiles: dict[str, dict[str, Any]] = {}
        events: list[dict[str, Any]] = []
        for row in rows:
            contact, follow = row.get("external_contact") or {}, row.get("follow_info") or {}
            ext, userid = str(contact.get("external_userid", "")), str(follow.get("userid", ""))
            if not ext or not userid:
                continue
            created = int(follow.get("createtime") or run.run_s)
            contacts[f"{userid}:{ext}"] = {"createtime": created}
            unionid = contact.get("unionid")
            if unionid:
                profiles[ext] = {"digest": _digest(str(unionid))}
        with run.engine.connect() as conn:
            old_contacts = run.known(conn, "contact", contacts)
            old_profiles = run.known(conn, "profile", profiles)
            conn.rollback()
        for row in rows:
            contact, follow = row.get("external_contact") or {}, row.get("follow_info") or {}
            ext, userid = str(contact.get("external_userid", "")), str(follow.get("userid", ""))
            key = f"{userid}:{ext}"
            if key not in contacts:
                continue
            if key not in old_contacts:
                created = contacts[key]["createtime"]
                events.append(
                    with_state(
                        _clean(
                            id=f"wecom:contact:add:{userid}:{ext}:{created}",
                            type="contact.added",
                            ts=created,
                            member=ext,
                            staff=userid,
                            name=contact.get("name") or None,
                        ),
                        follow.get("state"),
                        run.states.resolve,
                    )
                )
            if ext in profiles and old_profiles.get(ext) != profiles[ext]:
                old_profiles[ext] = profiles[ext]  # one event for a customer of two staff
                events.append(
                    _clean(
                        id=f"wecom:profile:{ext}:{profiles[ext]['digest'][:16]}",
                        type="profile.updated",
                        ts=run.run_s,
                        member=ext,
                        unionid=str(contact["unionid"]),
                    )
                )
        run.emit(events)
        cursor = str(answer.get("next_cursor") or "")
        if not cursor:
            chunk += 1
        done += len(rows)
        run.report.fetched += len(rows)
        with run.engine.begin() as conn:
            run.remember(conn, "contact", contacts)
            run.remember(conn, "profile", profiles)
            run.save(conn, staff=staff, chunk=chunk, cursor=cursor, done=done)
        run.progress(done)
    run.sweep(
        "contact",
        lambda key, state: (
            [
                _clean(
                    id=f"wecom:contact:del:{key.split(':', 1)[0]}:{key.split(':', 1)[1]}:{run.run_s}",
                    type="contact.removed",
                    ts=run.run_s,
                    member=key.split(":", 1)[1],
                    staff=key.split(":", 1)[0],
                )
            ]
            # A del_external_contact/del_follow_user callback already said so, with its own time.
            if not run.logged(
                "contact.removed", f"wecom:contact:del:{key}:", state.get("createtime")
            )
            else []
        ),
    )


def _sync_groups(run: _Run, client: WecomClient) -> None:
    cp = run.checkpoint
    cursor, position, done = (
        str(cp.get("cursor", "")),
        int(cp.get("position", 0)),
        int(cp.get("done", 0)),
    )
    while True:
        answer = client.post(
            "externalcontact/groupchat/list",
            {"status_filter": 0, "cursor": cursor, "limit": GROUPS_PER_PAGE},
        )
        chats = [str(c["chat_id"]) for c in answer.get("group_chat_list") or []]
        next_cursor = str(answer.get("next_cursor") or "")
        for i in range(position, len(chats)):
            chat_id = chats[i]
            detail = client.post(
                "externalcontact/groupchat/get", {"chat_id": chat_id, "need_name": 1}
            )["group_chat"]
            with run.engine.connect() as conn:
                old = run.known(conn, "group", [chat_id]).get(chat_id)
                conn.rollback()
            state, events = _group_changes(run.run_s, chat_id, detail, old, run.states.resolve)
            run.emit([e for e in events if not _left_already(run, chat_id, e, old)])
            done += 1
            run.report.fetched += 1
            with run.engine.begin() as conn:
                run.remember(conn, "group", {chat_id: state})
                run.save(conn, cursor=cursor, position=i + 1, done=done)
            run.progress(done)
        if not next_cursor:
            break
        cursor, position = next_cursor, 0
        with run.engine.begin() as conn:
            run.save(conn, cursor=cursor, position=0, done=done)
    run.sweep(
        "group",
        lambda chat_id, _state: [
            {
                "id": f"wecom:group:{chat_id}:dismissed",
                "type": "group.dismissed",
                "ts": run.run_s,
                "group": chat_id,
            }
        ],
    )


def _left_already(
    run: _Run, chat_id: str, event: dict[str, Any], old: dict[str, Any] | None
) -> bool:
    """A leave this sync observed that a del_member callback already put in the log (dated
    by the callback, so under another id): not emitted twice."""
    if event["type"] != "member.left" or old is None:
        return False
    user = str(event["member"])
    since = (old.get("members") or {}).get(user)
    return run.logged("member.left", f"wecom:leave:{chat_id}:{user}:", since)


def _group_changes(
    run_s: int,
    chat_id: str,
    g: dict[str, Any],
    old: dict[str, Any] | None,
    resolve: ResolveState = plain_states,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The group's known state now, and the events that take Quanzi from `old` to it."""
    name = str(g.get("name") or "")
    owner = str(g.get("owner") or "")
    notice = str(g.get("notice") or "")
    members: dict[str, dict[str, Any]] = {
        str(m["userid"]): m for m in g.get("member_list") or [] if m.get("userid")
    }
    state = {
        "name": name,
        "owner": owner,
        "notice": notice,
        "members": {u: int(m.get("join_time") or 0) for u, m in members.items()},
    }
    events: list[dict[str, Any]] = []
    if old is None:
        events.append(
            _clean(
                id=f"wecom:group:{chat_id}:created",
                type="group.created",
                ts=int(g.get("create_time") or run_s),
                group=chat_id,
                name=name or chat_id,
                owner=owner or None,
                notice=notice or None,
            )
        )
        old_members: dict[str, int] = {}
    else:
        changed = {
            f: state[f] for f in ("name", "owner", "notice") if state[f] != old.get(f) and state[f]
        }
        if changed:
            events.append(
                _clean(
                    id=f"wecom:group:{chat_id}:updated:{run_s}",
                    type="group.updated",
                    ts=run_s,
                    group=chat_id,
                    **changed,
                )
            )
        old_members = {str(k): int(v) for k, v in (old.get("members") or {}).items()}
    for userid, m in sorted(members.items()):
        joined = int(m.get("join_time") or run_s)
        before = old_members.get(userid)
        if before == joined:
            continue
        if before is not None:  # left and came back between two syncs
            events.append(
                _clean(
                    id=f"wecom:leave:{chat_id}:{userid}:{run_s}",
                    type="member.left",
                    ts=max(before, joined - 1),
                    group=chat_id,
                    member=userid,
                )
            )
        invitor = (m.get("invitor") or {}).get("userid")
        events.append(
            with_state(
                _clean(
                    id=f"wecom:join:{chat_id}:{userid}:{joined}",
                    type="member.joined",
                    ts=joined,
                    group=chat_id,
                    member=userid,
                    name=m.get("name") or m.get("group_nickname") or None,
                    inviter=invitor if invitor and invitor != userid else None,
                    via=JOIN_VIA.get(int(m.get("join_scene") or 0), "unknown"),
                    is_staff=True if m.get("type") == 1 else None,
                ),
                m.get("state"),
                resolve,
            )
        )
    for userid in sorted(set(old_members) - set(members)):
        events.append(
            {
                "id": f"wecom:leave:{chat_id}:{userid}:{run_s}",
                "type": "member.left",
                "ts": run_s,
                "group": chat_id,
                "member": userid,
            }
        )
    return state, events


def _sync_tags(run: _Run, client: WecomClient) -> None:
    answer = client.post("externalcontact/get_corp_tag_list", {})
    tags: dict[str, dict[str, Any]] = {}
    for group in answer.get("tag_group") or []:
        for tag in group.get("tag") or []:
            tags[str(tag["id"])] = {
                "name": str(tag.get("name", "")),
                "group_id": str(group.get("group_id", "")),
                "group_name": str(group.get("group_name", "")),
            }
    run.report.fetched = len(tags)
    with run.engine.begin() as conn:
        run.remember(conn, "tag", tags)
    run.progress(len(tags), len(tags))
    gone = run.unseen("tag")
    with run.engine.begin() as conn:
        run.forget(conn, "tag", gone)


_SYNCERS: dict[str, Callable[[_Run, WecomClient], None]] = {
    "staff": _sync_staff,
    "contacts": _sync_contacts,
    "groups": _sync_groups,
    "tags": _sync_tags,
}


def _clean(**fields: Any) -> dict[str, Any]:
    """An event without its absent (None) optional fields."""
    return {k: v for k, v in fields.items() if v is not None}


def _digest(value: str) -> str:
    """A fingerprint of a personal value for change detection; WecomKnown never holds the value."""
    return hashlib.sha256(f"quanzi wecom profile\0{value}".encode()).hexdigest()
