"""Projections: keep groups, members, memberships, daily activity, invites, orders and refunds
up to date from events, in any arrival order (a late event is applied at its own `ts`).

Everything here is a function of the *set* of events in the log, never of their arrival
order: values that depend on order are chosen by (ts, event id) ("first join", "last name
set"), and membership intervals of a (group, member) pair are recomputed from all of that
pair's joins and leaves whenever one of them arrives. `rebuild` replays the whole log through
the same code, so the incremental and the rebuilt projections are identical by construction
(and tested to be).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, and_, delete, select, text, update

from quanzi.commerce.models import Order, Refund
from quanzi.core.events.models import EventRecord
from quanzi.core.events.schemas import MODELS, Event, parse_event
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
from quanzi.core.members.personal import (
    PERSONAL_FIELDS,
    TOMBSTONE,
    current_digests,
    has_plain_personal,
    seal_event,
)
from quanzi.core.workspaces.models import Workspace
from quanzi.core.workspaces.service import workspace_key
from quanzi.kit.clock import LocalCalendar
from quanzi.kit.crypto import WorkspaceKey, is_sealed

NONE_CHANNEL = "(none)"
_CHUNK = 500  # ids per IN (...) list

Key = tuple[str, str]  # (platform, platform id)
# The types whose contract declares a `group` / a `member` (an undeclared extra field of the
# same name is kept in the log and otherwise ignored).
_GROUP_TYPES = frozenset(t for t, m in MODELS.items() if "group" in m.model_fields)
_MEMBER_TYPES = frozenset(t for t, m in MODELS.items() if "member" in m.model_fields)


def _chunks(seq: Sequence[Any], n: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def lock_workspace(conn: Connection, workspace_id: int) -> None:
    """Serialise projection writers of one workspace (PostgreSQL; SQLite writers are serial)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": 0x51A0_0000 + workspace_id})


def select_in(
    conn: Connection, sql: str, params: tuple[Any, ...], values: Sequence[Any], chunk: int = _CHUNK
) -> list[Any]:
    """Rows of `sql` + ` (v1, v2, …)` for `values` in chunks, through the driver: `{p}` in
    `sql` is the driver's placeholder. Lookups by key are the other half of ingest's hot path."""
    ph = "%s" if conn.dialect.name == "postgresql" else "?"
    head = sql.replace("{p}", ph)
    out: list[Any] = []
    for part in _chunks(values, chunk):
        stmt = f"{head} ({', '.join([ph] * len(part))})"
        out.extend(conn.exec_driver_sql(stmt, (*params, *part)).fetchall())
    return out


def bulk_insert(conn: Connection, table: Any, rows: list[dict[str, Any]], suffix: str = "") -> None:
    """INSERT many rows (dicts with the same keys) through the driver: see `insert_values`."""
    if not rows:
        return
    cols = list(rows[0])
    get = itemgetter(*cols)
    values = [get(r) for r in rows] if len(cols) > 1 else [(get(r),) for r in rows]
    insert_values(conn, table, cols, values, suffix)


def insert_values(
    conn: Connection,
    table: Any,
    cols: Sequence[str],
    values: list[tuple[Any, ...]],
    suffix: str = "",
) -> None:
    """INSERT many rows (tuples in `cols` order) through the driver's executemany: the hot path
    of ingest, where SQLAlchemy's per-row parameter processing would cost more than the
    database itself."""
    if not values:
        return
    head = f"INSERT INTO {table.__tablename__} ({', '.join(cols)}) VALUES "
    if conn.dialect.name != "postgresql":
        conn.exec_driver_sql(head + f"({', '.join(['?'] * len(cols))}){suffix}", values)
        return
    if not suffix:
        # PostgreSQL, plain rows: COPY, in this transaction.
        driver = conn.connection.dbapi_connection
        assert driver is not None
        with driver.cursor() as cur:  # type: ignore[attr-defined]
            with cur.copy(f"COPY {table.__tablename__} ({', '.join(cols)}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)
        return
    # PostgreSQL upserts: multi-row VALUES, one round trip per thousand rows (psycopg's
    # executemany sends one statement per row).
    one = f"({', '.join(['%s'] * len(cols))})"
    step = min(1000, 60_000 // len(cols))
    for i in range(0, len(values), step):
        part = values[i : i + step]
        flat = tuple(v for row in part for v in row)
        conn.exec_driver_sql(head + ", ".join([one] * len(part)) + suffix, flat)


class Identities:
    """Group and member ids by (platform, key), created on first sight; cached per applier."""

    def __init__(self, conn: Connection, workspace_id: int) -> None:
        self.conn = conn
        self.ws = workspace_id
        self.groups: dict[Key, int] = {}
        self.members: dict[Key, int] = {}

    def _ensure(self, model: Any, keycol: str, cache: dict[Key, int], keys: set[Key]) -> None:
        missing = [k for k in keys if k not in cache]
        if not missing:
            return
        self._lookup(model, keycol, cache, missing)
        still = sorted(k for k in missing if k not in cache)
        if still:
            extra = (
                {"is_staff_joined": False, "staff_marked": False, "is_staff": False}
                if model is Member
                else {}
            )
            bulk_insert(
                self.conn,
                model,
                [{"workspace_id": self.ws, "platform": p, keycol: k, **extra} for p, k in still],
                " ON CONFLICT DO NOTHING",
            )
            self._lookup(model, keycol, cache, still)

    def _lookup(self, model: Any, keycol: str, cache: dict[Key, int], keys: list[Key]) -> None:
        by_platform: dict[str, list[str]] = defaultdict(list)
        for platform, key in keys:
            by_platform[platform].append(key)
        for platform, platform_keys in by_platform.items():
            # Through the unique index (workspace_id, platform, key).
            for id_, key in select_in(
                self.conn,
                f"SELECT id, {keycol} FROM {model.__tablename__} WHERE workspace_id = {{p}}"
                f" AND platform = {{p}} AND {keycol} IN",
                (self.ws, platform),
                platform_keys,
            ):
                cache[(platform, key)] = id_

    def ensure_groups(self, keys: set[Key]) -> None:
        self._ensure(Group, "group_key", self.groups, keys)

    def ensure_members(self, keys: set[Key]) -> None:
        self._ensure(Member, "member_key", self.members, keys)


def _earlier(a: tuple[int, str] | None, b: tuple[int, str] | None) -> bool:
    """Whether (ts, id) `a` comes before `b` (None is 'never')."""
    if a is None:
        return False
    return b is None or a < b


def membership_intervals(
    joins: list[tuple[int, str]], leaves: list[tuple[int, str]], dismissed_us: int | None
) -> list[tuple[int, int | None, str | None]]:
    """Intervals (joined, left, ended_by) of one member in one group from all its joins/leaves.

    A join while in opens nothing, a leave while out closes nothing; the group's dismissal
    closes an open interval at its instant (ended_by "dismissed", not a leave).
    """
    events = sorted([(ts, eid, 0) for ts, eid in joins] + [(ts, eid, 1) for ts, eid in leaves])
    out: list[tuple[int, int | None, str | None]] = []
    open_at: int | None = None
    dismissed_done = dismissed_us is None
    for ts, _eid, kind in events:
        if not dismissed_done and ts >= dismissed_us:  # type: ignore[operator]
            if open_at is not None:
                out.append((open_at, dismissed_us, "dismissed"))
                open_at = None
            dismissed_done = True
        if kind == 0:
            if open_at is None:
                open_at = ts
        elif open_at is not None:
            out.append((open_at, ts, "leave"))
            open_at = None
    if open_at is not None:
        if not dismissed_done:
            out.append((open_at, dismissed_us, "dismissed"))
        else:
            out.append((open_at, None, None))
    return out


class Applier:
    """Applies new (never before applied) events of one workspace to the projections."""

    def __init__(self, conn: Connection, workspace: Workspace) -> None:
        self.conn = conn
        self.ws = workspace.id
        self.cal = LocalCalendar(workspace.timezone)
        self.ids = Identities(conn, workspace.id)
        self._key: WorkspaceKey | None = None

    def key(self) -> WorkspaceKey:
        """The workspace's data key, looked up on first need (only personal data needs it)."""
        if self._key is None:
            self._key = workspace_key(self.conn, self.ws)
        return self._key

    # -- entry point ---------------------------------------------------------------------

    def apply(self, events: Sequence[Event]) -> None:
        if not events:
            return
        ids = self.ids
        group_keys: set[Key] = set()
        member_keys: set[Key] = set()
        for ev in events:
            p = ev.platform
            d = ev.data
            t = ev.type
            # Only the fields the contract declares for the type: an unknown extra field
            # (say "group" on a contact.added) is kept in the log and otherwise ignored.
            if t in _GROUP_TYPES:
                group_keys.add((p, d["group"]))
            if t in _MEMBER_TYPES:
                member_keys.add((p, d["member"]))
            if t == "member.joined" and d.get("inviter"):
                member_keys.add((p, d["inviter"]))
            elif t == "order.paid" and d.get("referrer"):
                member_keys.add((p, d["referrer"]))
        ids.ensure_groups(group_keys)
        ids.ensure_members(member_keys)

        group_cand: dict[int, dict[str, Any]] = defaultdict(dict)
        member_cand: dict[int, dict[str, Any]] = defaultdict(dict)
        changes: list[dict[str, Any]] = []
        joins: list[dict[str, Any]] = []
        leaves: list[dict[str, Any]] = []
        contacts: list[dict[str, Any]] = []
        refunds: list[dict[str, Any]] = []
        orders: dict[Key, tuple[tuple[int, str], dict[str, Any]]] = {}
        activity: dict[tuple[int, int, int], list[int]] = {}
        dirty_pairs: set[tuple[int, int]] = set()
        weeks: set[tuple[int, int]] = set()
        first_message: dict[int, tuple[tuple[int, str], int]] = {}
        dismissed_groups: set[int] = set()
        day_of = self.cal.day_of

        def earliest(cand: dict[str, Any], name: str, order: tuple[int, str], value: Any) -> None:
            cur = cand.get(name)
            if cur is None or order < cur[0]:
                cand[name] = (order, value)

        def latest(cand: dict[str, Any], name: str, order: tuple[int, str], value: Any) -> None:
            cur = cand.get(name)
            if cur is None or order > cur[0]:
                cand[name] = (order, value)

        groups_ids, member_ids = ids.groups, ids.members
        for ev in events:
            d = ev.data
            p = ev.platform
            t = ev.type
            ts = ev.ts_us
            if t == "message.posted":
                # The bulk of any community's events: kept lean.
                mid = member_ids[(p, d["member"])]
                day = day_of(ts)
                k = (groups_ids[(p, d["group"])], mid, day)
                a = activity.get(k)
                if a is None:
                    activity[k] = [1, ts, ts]
                else:
                    a[0] += 1
                    if ts < a[1]:
                        a[1] = ts
                    if ts > a[2]:
                        a[2] = ts
                first = first_message.get(mid)
                if first is None or (ts, ev.id) < first[0]:
                    first_message[mid] = ((ts, ev.id), day)
                weeks.add((mid, day - (day + 3) % 7))
                continue
            order = (ts, ev.id)
            if t == "member.joined":
                gid = ids.groups[(p, d["group"])]
                mid = ids.members[(p, d["member"])]
                inviter = d.get("inviter")
                staff = bool(d.get("is_staff", False))
                day = day_of(ts)
                joins.append(
                    {
                        "workspace_id": self.ws,
                        "event_id": ev.id,
                        "group_id": gid,
                        "member_id": mid,
                        "ts_us": ts,
                        "day": day,
                        "inviter_id": ids.members[(p, inviter)] if inviter else None,
                        "via": d.get("via", "unknown"),
                        "channel": d.get("channel") or None,
                        "is_staff": staff,
                    }
                )
                dirty_pairs.add((gid, mid))
                mc = member_cand[mid]
                earliest(mc, "first_join", order, (d.get("channel") or None, day))
                if staff:
                    mc["staff"] = True
                if d.get("name"):
                    latest(mc, "name", order, d["name"])
                earliest(group_cand[gid], "created", order, None)
            elif t == "member.left":
                gid = ids.groups[(p, d["group"])]
                mid = ids.members[(p, d["member"])]
                leaves.append(
                    {
                        "workspace_id": self.ws,
                        "event_id": ev.id,
                        "group_id": gid,
                        "member_id": mid,
                        "ts_us": ts,
                        "day": day_of(ts),
                        "via": d.get("via", "quit"),
                        "by_key": d.get("by") or None,
                    }
                )
                dirty_pairs.add((gid, mid))
            elif t in ("group.created", "group.updated"):
                gid = ids.groups[(p, d["group"])]
                if t == "group.created":
                    earliest(group_cand[gid], "created", order, None)
                for field in ("name", "notice", "owner"):
                    value = d.get(field)
                    if value is None or (field == "name" and value == ""):
                        continue
                    changes.append(
                        {
                            "workspace_id": self.ws,
                            "group_id": gid,
                            "event_id": ev.id,
                            "ts_us": ts,
                            "field": field,
                            "value": value,
                        }
                    )
                    group_cand[gid]["changed"] = True
            elif t == "group.dismissed":
                gid = ids.groups[(p, d["group"])]
                earliest(group_cand[gid], "dismissed", order, None)
                dismissed_groups.add(gid)
            elif t in ("contact.added", "contact.removed"):
                mid = ids.members[(p, d["member"])]
                added = t == "contact.added"
                contacts.append(
                    {
                        "workspace_id": self.ws,
                        "event_id": ev.id,
                        "member_id": mid,
                        "staff_key": d["staff"],
                        "kind": "added" if added else "removed",
                        "ts_us": ts,
                        "channel": (d.get("channel") or None) if added else None,
                        "by": None if added else d.get("by"),
                    }
                )
                if added:
                    earliest(member_cand[mid], "first_contact", order, d.get("channel") or None)
                    if d.get("name"):
                        latest(member_cand[mid], "name", order, d["name"])
            elif t == "profile.updated":
                mid = ids.members[(p, d["member"])]
                mc = member_cand[mid]
                # Personal fields stay sealed (the log's sealed strings, so a rebuild writes
                # the same bytes); an erased one is no value. The real name is not the
                # display name (docs/contract-readings.md, "Personal data").
                for field in ("name", "phone", "unionid", "gender", "city"):
                    if field in d:
                        value = d[field]
                        if field in PERSONAL_FIELDS:
                            if value == TOMBSTONE:
                                continue
                            if not is_sealed(value):  # an event not read through the log
                                value = self.key().seal(field, value)
                        latest(mc, "p:" + field, order, value)
                for key, value in (d.get("attrs") or {}).items():
                    latest(mc, "a:" + key, order, value)
            elif t == "order.paid":
                okey = (p, d["order"])
                cur = orders.get(okey)
                if cur is None or order < cur[0]:
                    referrer = d.get("referrer")
                    orders[okey] = (
                        order,
                        {
                            "workspace_id": self.ws,
                            "platform": p,
                            "order_key": d["order"],
                            "event_id": ev.id,
                            "member_id": ids.members[(p, d["member"])],
                            "amount_fen": d["amount"],
                            "currency": d.get("currency", "CNY"),
                            "paid_us": ts,
                            "paid_day": day_of(ts),
                            "campaign": d.get("campaign") or None,
                            "referrer_id": ids.members[(p, referrer)] if referrer else None,
                            "items": d.get("items"),
                        },
                    )
            elif t == "order.refunded":
                refunds.append(
                    {
                        "workspace_id": self.ws,
                        "event_id": ev.id,
                        "platform": p,
                        "order_key": d["order"],
                        "amount_fen": d["amount"],
                        "ts_us": ts,
                        "day": day_of(ts),
                    }
                )

        for mid, cand in first_message.items():
            member_cand[mid]["first_message"] = cand
        conn = self.conn
        bulk_insert(conn, Join, joins)
        bulk_insert(conn, Leave, leaves)
        bulk_insert(conn, ContactEvent, contacts)
        bulk_insert(conn, Refund, refunds)
        bulk_insert(conn, GroupChange, changes)
        if activity:
            self._add_activity(activity)
        if weeks:
            insert_values(
                conn,
                MemberWeek,
                ("workspace_id", "member_id", "week"),
                [(self.ws, m, w) for m, w in sorted(weeks)],
                " ON CONFLICT DO NOTHING",
            )
        if orders:
            self._put_orders(orders)
        if group_cand:
            self._update_groups(group_cand)
        if member_cand:
            self._update_members(member_cand)
        dirty_members = {m for _g, m in dirty_pairs}
        if dismissed_groups:
            rows = conn.execute(
                select(Join.member_id)
                .where(Join.workspace_id == self.ws, Join.group_id.in_(sorted(dismissed_groups)))
                .distinct()
            )
            dirty_members.update(m for (m,) in rows)
        if dirty_members:
            self._recompute_memberships(dirty_members)

    # -- writers -------------------------------------------------------------------------

    def _add_activity(self, activity: dict[tuple[int, int, int], list[int]]) -> None:
        pg = self.conn.dialect.name == "postgresql"
        least, greatest = ("LEAST", "GREATEST") if pg else ("min", "max")
        t = DailyActivity.__tablename__
        ws = self.ws
        insert_values(
            self.conn,
            DailyActivity,
            ("workspace_id", "group_id", "member_id", "day", "messages", "first_us", "last_us"),
            [(ws, g, m, day, a[0], a[1], a[2]) for (g, m, day), a in sorted(activity.items())],
            " ON CONFLICT (workspace_id, group_id, member_id, day) DO UPDATE SET"
            f" messages = {t}.messages + excluded.messages,"
            f" first_us = {least}({t}.first_us, excluded.first_us),"
            f" last_us = {greatest}({t}.last_us, excluded.last_us)",
        )

    def _put_orders(self, orders: dict[Key, tuple[tuple[int, str], dict[str, Any]]]) -> None:
        existing: dict[Key, tuple[int, tuple[int, str]]] = {}
        keys = sorted(orders)
        for chunk in _chunks(sorted({k for _, k in keys})):
            for id_, platform, key, paid, eid in self.conn.execute(
                select(
                    Order.id, Order.platform, Order.order_key, Order.paid_us, Order.event_id
                ).where(Order.workspace_id == self.ws, Order.order_key.in_(chunk))
            ):
                existing[(platform, key)] = (id_, (paid, eid))
        new_rows = []
        for k in keys:
            order, row = orders[k]
            cur = existing.get(k)
            if cur is None:
                new_rows.append(row)
            elif order < cur[1]:
                self.conn.execute(update(Order).where(Order.id == cur[0]).values(**row))
        for row in new_rows:
            if row["items"] is not None:
                row["items"] = orjson.dumps(row["items"]).decode()
        bulk_insert(self.conn, Order, new_rows)

    def _update_groups(self, cand: dict[int, dict[str, Any]]) -> None:
        gids = sorted(cand)
        current: dict[int, tuple[int | None, int | None]] = {}
        for chunk in _chunks(gids):
            for gid, created, dismissed in self.conn.execute(
                select(Group.id, Group.created_at_us, Group.dismissed_at_us).where(
                    Group.id.in_(chunk)
                )
            ):
                current[gid] = (created, dismissed)
        changed_gids = [g for g in gids if cand[g].get("changed")]
        latest_values: dict[int, dict[str, str]] = defaultdict(dict)
        for chunk in _chunks(changed_gids):
            best: dict[tuple[int, str], tuple[tuple[int, str], str]] = {}
            for gid, field, ts, eid, value in self.conn.execute(
                select(
                    GroupChange.group_id,
                    GroupChange.field,
                    GroupChange.ts_us,
                    GroupChange.event_id,
                    GroupChange.value,
                ).where(GroupChange.workspace_id == self.ws, GroupChange.group_id.in_(chunk))
            ):
                k = (gid, field)
                if k not in best or (ts, eid) > best[k][0]:
                    best[k] = ((ts, eid), value)
            for (gid, field), (_o, value) in best.items():
                latest_values[gid][field] = value
        updates = []
        for gid in gids:
            c = cand[gid]
            created, dismissed = current.get(gid, (None, None))
            values: dict[str, Any] = {}
            if "created" in c and (created is None or c["created"][0][0] < created):
                values["created_at_us"] = c["created"][0][0]
            if "dismissed" in c and (dismissed is None or c["dismissed"][0][0] < dismissed):
                values["dismissed_at_us"] = c["dismissed"][0][0]
            if c.get("changed"):
                lv = latest_values.get(gid, {})
                for field in ("name", "notice", "owner"):
                    if field in lv:
                        values[field] = lv[field]
            if values:
                updates.append((gid, values))
        for gid, values in updates:
            self.conn.execute(update(Group).where(Group.id == gid).values(**values))

    def _update_members(self, cand: dict[int, dict[str, Any]]) -> None:
        # Most members in a batch only posted: their one possible change (an earlier first
        # message) is a conditional UPDATE, with nothing to read first.
        posters = sorted(m for m, c in cand.items() if len(c) == 1 and "first_message" in c)
        self._earlier_first_message(
            [(m, cand[m]["first_message"][0][0], cand[m]["first_message"][1]) for m in posters]
        )
        poster_set = set(posters)
        mids = sorted(m for m in cand if m not in poster_set)
        cols = (
            "id, first_join_us, first_join_event, first_contact_us, first_contact_event,"
            " first_contact_channel, first_join_channel, first_message_us, name_us, name_event,"
            " is_staff_joined, staff_marked, profile"
        )
        rows: dict[int, Any] = {
            r.id: r
            for r in select_in(self.conn, f"SELECT {cols} FROM members WHERE id IN", (), mids)
        }
        updates: list[dict[str, Any]] = []
        for mid in mids:
            c = cand[mid]
            r = rows[mid]
            v: dict[str, Any] = {}
            fj = (r.first_join_us, r.first_join_event) if r.first_join_us is not None else None
            fc = (
                (r.first_contact_us, r.first_contact_event)
                if r.first_contact_us is not None
                else None
            )
            join_channel, contact_channel = r.first_join_channel, r.first_contact_channel
            if "first_join" in c and _earlier(c["first_join"][0], fj):
                fj = c["first_join"][0]
                join_channel, day = c["first_join"][1]
                v.update(
                    first_join_us=fj[0],
                    first_join_event=fj[1],
                    first_join_channel=join_channel,
                    first_join_day=day,
                )
            if "first_contact" in c and _earlier(c["first_contact"][0], fc):
                fc = c["first_contact"][0]
                contact_channel = c["first_contact"][1]
                v.update(
                    first_contact_us=fc[0],
                    first_contact_event=fc[1],
                    first_contact_channel=contact_channel,
                )
            if "first_join_us" in v or "first_contact_us" in v:
                if fc is not None and (fj is None or fc < fj):
                    v["channel"] = contact_channel or NONE_CHANNEL
                else:
                    v["channel"] = join_channel or NONE_CHANNEL
            if "first_message" in c:
                ts = c["first_message"][0][0]
                if r.first_message_us is None or ts < r.first_message_us:
                    v["first_message_us"] = ts
                    v["first_message_day"] = c["first_message"][1]
            if "name" in c:
                (ts, eid), name = c["name"]
                if r.name_us is None or (ts, eid) > (r.name_us, r.name_event):
                    v.update(name=name, name_us=ts, name_event=eid)
            if c.get("staff") and not r.is_staff_joined:
                v.update(is_staff_joined=True, is_staff=True)
            profile_keys = [k for k in c if k.startswith(("p:", "a:"))]
            if profile_keys:
                stored = r.profile
                profile = dict((orjson.loads(stored) if isinstance(stored, str) else stored) or {})
                dirty = False
                indexed: list[str] = []
                for k in profile_keys:
                    (ts, eid), value = c[k]
                    cur = profile.get(k)
                    if cur is None or (ts, eid) > (cur[1], cur[2]):
                        profile[k] = [value, ts, eid]
                        dirty = True
                        if k in ("p:phone", "p:unionid"):
                            indexed.append(k[2:])
                if dirty:
                    v["profile"] = orjson.dumps(profile).decode()
                if indexed:
                    v.update(current_digests(self.key(), profile, indexed))
            if v:
                v["_id"] = mid
                updates.append(v)
        # One executemany per set of changed columns, through the driver.
        by_cols: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for v in updates:
            by_cols[tuple(sorted(k for k in v if k != "_id"))].append(v)
        pg = self.conn.dialect.name == "postgresql"
        ph = "%s" if pg else "?"
        for colset, params in by_cols.items():
            sets = ", ".join(
                f"{c} = CAST({ph} AS JSON)" if c == "profile" and pg else f"{c} = {ph}"
                for c in colset
            )
            self.conn.exec_driver_sql(
                f"UPDATE members SET {sets} WHERE id = {ph}",
                [(*(p[c] for c in colset), p["_id"]) for p in params],
            )

    def _earlier_first_message(self, rows: list[tuple[int, int, int]]) -> None:
        """(member, instant, local day): set where earlier than the member's first message."""
        if not rows:
            return
        if self.conn.dialect.name != "postgresql":
            self.conn.exec_driver_sql(
                "UPDATE members SET first_message_us = ?, first_message_day = ? WHERE id = ?"
                " AND (first_message_us IS NULL OR first_message_us > ?)",
                [(ts, day, mid, ts) for mid, ts, day in rows],
            )
            return
        for part in _chunks(rows, 1000):
            values = ", ".join(["(%s, %s, %s)"] * len(part))
            self.conn.exec_driver_sql(
                "UPDATE members AS m SET first_message_us = v.ts, first_message_day = v.day"
                f" FROM (VALUES {values}) AS v(id, ts, day)"
                " WHERE m.id = v.id AND (m.first_message_us IS NULL OR m.first_message_us > v.ts)",
                tuple(x for row in part for x in row),
            )

    def _recompute_memberships(self, member_ids: set[int]) -> None:
        """Recompute every membership interval of these members from all their joins and
        leaves (in every group), and their groups' dismissals."""
        mids = sorted(member_ids)
        joins: dict[tuple[int, int], list[tuple[int, str]]] = defaultdict(list)
        leaves: dict[tuple[int, int], list[tuple[int, str]]] = defaultdict(list)
        for table, into in (("joins", joins), ("leaves", leaves)):
            for g, m, ts, eid in select_in(
                self.conn,
                f"SELECT group_id, member_id, ts_us, event_id FROM {table}"
                " WHERE workspace_id = {p} AND member_id IN",
                (self.ws,),
                mids,
            ):
                into[(g, m)].append((ts, eid))
        gids = sorted({g for g, _ in joins})
        dismissed: dict[int, int | None] = dict(
            select_in(self.conn, "SELECT id, dismissed_at_us FROM groups WHERE id IN", (), gids)
        )
        ph = "%s" if self.conn.dialect.name == "postgresql" else "?"
        for part in _chunks(mids):
            self.conn.exec_driver_sql(
                f"DELETE FROM memberships WHERE workspace_id = {ph}"
                f" AND member_id IN ({', '.join([ph] * len(part))})",
                (self.ws, *part),
            )
        rows = []
        for g, m in sorted(joins):
            for joined, left, ended_by in membership_intervals(
                joins[(g, m)], leaves.get((g, m), []), dismissed.get(g)
            ):
                rows.append(
                    {
                        "workspace_id": self.ws,
                        "group_id": g,
                        "member_id": m,
                        "joined_us": joined,
                        "left_us": left,
                        "ended_by": ended_by,
                    }
                )
        bulk_insert(self.conn, Membership, rows)


PROJECTION_TABLES = (
    MemberWeek,
    Membership,
    Join,
    Leave,
    DailyActivity,
    ContactEvent,
    GroupChange,
    Order,
    Refund,
)


def _sealed_log(conn: Connection, applier: Applier, rows: Sequence[Any]) -> list[Event]:
    """The events of logged lines (seq, raw); a profile.updated logged before personal data
    was sealed is sealed now, in the log too, so a rebuild leaves no plain personal data."""
    events = []
    resealed: list[tuple[str, int]] = []
    for seq, raw in rows:
        ev = parse_event(raw)
        if ev.type == "profile.updated" and has_plain_personal(ev.data):
            ev = seal_event(applier.key(), ev, everything=False)
            resealed.append((ev.raw, seq))
        events.append(ev)
    if resealed:
        ph = "%s" if conn.dialect.name == "postgresql" else "?"
        conn.exec_driver_sql(f"UPDATE events SET raw = {ph} WHERE seq = {ph}", resealed)
    return events


def rebuild(
    engine: Engine, workspace_id: int, on_progress: Callable[[int], None] | None = None
) -> int:
    """Recompute every projection of the workspace from its event log, in one transaction.

    Identity rows (groups, members) keep their ids, and operator data (staff marks, fraud
    flags) is kept; everything derived from events is cleared and replayed. Returns the
    number of events replayed.
    """
    replayed = 0
    with engine.begin() as conn:
        lock_workspace(conn, workspace_id)
        ws = conn.execute(select(Workspace).where(Workspace.id == workspace_id)).one()
        workspace = Workspace(id=ws.id, name=ws.name, timezone=ws.timezone)
        for model in PROJECTION_TABLES:
            conn.execute(delete(model).where(model.workspace_id == workspace_id))
        conn.execute(
            update(Group)
            .where(Group.workspace_id == workspace_id)
            .values(created_at_us=None, dismissed_at_us=None, name=None, notice=None, owner=None)
        )
        conn.execute(
            update(Member)
            .where(Member.workspace_id == workspace_id)
            .values(
                name=None,
                name_us=None,
                name_event=None,
                is_staff_joined=False,
                is_staff=Member.staff_marked,
                first_join_us=None,
                first_join_event=None,
                first_join_channel=None,
                first_join_day=None,
                first_contact_us=None,
                first_contact_event=None,
                first_contact_channel=None,
                first_message_us=None,
                first_message_day=None,
                channel=None,
                profile=None,
                phone_digest=None,
                unionid_digest=None,
            )
        )
        applier = Applier(conn, workspace)
        last_seq = 0
        while True:
            rows = conn.execute(
                select(EventRecord.seq, EventRecord.raw)
                .where(and_(EventRecord.workspace_id == workspace_id, EventRecord.seq > last_seq))
                .order_by(EventRecord.seq)
                .limit(5000)
            ).all()
            if not rows:
                break
            last_seq = rows[-1][0]
            applier.apply(_sealed_log(conn, applier, rows))
            replayed += len(rows)
            if on_progress:
                on_progress(len(rows))
    return replayed
