"""A deterministic simulated community, spoken only through the event format (contracts/events.md).

`generate(seed, ...)` runs a day-by-day simulation of one brand's group portfolio and yields the
events it produces, in time order, as plain dicts. Nothing else leaves it: the demo loads these
events through the same ingest path as any file, so everything the demo shows was computed from
events.

What is simulated (the knobs and the volumes they give: `generate`):

- groups with themes (宝妈交流, 读书会, 健身打卡, 福利 …), each created by a staff owner with an
  assistant; a theme's next group (2群, 3群 …) opens when the open ones are full (500) or on its
  planned day; notices, renames, an owner handover, and a temporary campaign group that is
  dismissed with members in it;
- members arriving through channel codes of different quality (some add a staff contact first),
  through invites along chains with a few super-inviters, or through a bare QR code; daily and
  weekly rhythms, live-stream days, invite campaigns and shopping festivals (Double 11 …);
- chat with novelty decay, bursts, replies, mentions, check-ins and questions that staff answer;
  staff morning posts, content, product pushes and welcome messages that @ the newcomers;
- people who quit (some within the 72-hour hold window) and some who come back;
- spam accounts that post ads and are removed by staff;
- profiles with cities, CN mobile numbers, unionids and attributes;
- orders with items, campaigns and referrers; full, partial and split refunds.

Determinism: the output depends only on the arguments (and the Python version's `random`); the
default `end_day` is "yesterday in Asia/Shanghai", so pass `end_day` for reproducible dates. All
timestamps are Asia/Shanghai local time written with `+08:00` (China has no daylight saving).
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson

from quanzi.demo import corpus as C

_T = TypeVar("_T")

PLATFORM = "demo"
TIMEZONE = "Asia/Shanghai"
OFFSET = "+08:00"
DAY = 86_400
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
GROUP_CAP = 500  # a WeCom customer group holds at most 500 people

# Shares and rates of the simulation; `generate`'s keyword arguments cover the ones worth tuning.
INVITE_SHARE = 0.24  # arrivals brought by a member's invite (0.45 during an invite campaign)
NO_CHANNEL_WEIGHT = 0.08  # channel-less arrivals (a bare group QR code / link) vs channel weights
CONTACT_ONLY_SHARE = 0.05  # extra people per member who add a staff contact and never join
SPAM_SHARE = 0.015  # arrivals that are spam accounts
RETURN_PROB = 0.22  # quitters who come back later
SECOND_GROUP_PROB = 0.12  # members who also join a second group
REFUND_PROB = 0.07  # orders refunded (twice as often on festival days)
# (share, daily session probability, burst continuation, purchase factor, leave factor, intro prob)
LAYERS = (
    (0.60, 0.027, 0.22, 0.7, 1.25, 0.20),  # casual 泛粉
    (0.25, 0.100, 0.42, 1.1, 0.90, 0.40),  # targeted 精准粉
    (0.10, 0.300, 0.58, 1.6, 0.50, 0.65),  # core 核心用户
    (0.05, 0.570, 0.68, 2.2, 0.25, 0.85),  # superfan 铁杆粉丝
)
SUPER_INVITER_WEIGHT = 60

# Heap entry kinds.
_ARRIVE, _JOIN, _LEAVE, _SESSION, _INTRO, _ORDER, _SPAM, _PROFILE, _UNFRIEND, _EMIT, _GROUP = range(
    11
)


def default_end_day() -> date:
    """Yesterday in Asia/Shanghai (the demo's window ends on the last complete local day)."""
    from quanzi.kit.clock import zone

    return datetime.now(zone(TIMEZONE)).date() - timedelta(days=1)


@dataclass(frozen=True)
class DemoSpec:
    """Everything the output depends on."""

    seed: int = 42
    members: int = 3000
    days: int = 90
    groups: int = 24
    end_day: date | None = None
    activity: float = 1.0
    # Opt-in: plant invite fraud with ground truth (`plant_fraud`); off, nothing changes.
    fraud: bool = False

    def resolved(self) -> DemoSpec:
        """The same spec with `end_day` filled in."""
        if self.end_day is not None:
            return self
        return DemoSpec(
            self.seed,
            self.members,
            self.days,
            self.groups,
            default_end_day(),
            self.activity,
            self.fraud,
        )

    @property
    def key(self) -> str:
        """Four characters naming this community in every id (not the dates: see `first_event_id`)."""
        text = f"{self.seed}:{self.members}:{self.days}:{self.groups}:{self.activity!r}"
        digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
        return base64.b32encode(digest).decode()[:4].lower()

    @property
    def event_prefix(self) -> str:
        return f"demo-{self.key}-"

    @property
    def first_event_id(self) -> str:
        """The id of the first group's `group.created`, on the window's first day at 09:00."""
        return self.event_prefix + "start"

    @property
    def marker_event_id(self) -> str:
        """The id of the very last event: once it is stored, the whole community is."""
        return self.event_prefix + "end"

    def start_day(self) -> date:
        end = self.resolved().end_day
        assert end is not None
        return end - timedelta(days=self.days - 1)


def end_day_from_first_ts(first_ts_local_date: date, days: int) -> date:
    """The `end_day` of a community whose first event fell on `first_ts_local_date`."""
    return first_ts_local_date + timedelta(days=days - 1)


def estimate_events(members: int, groups: int = 24, days: int = 90, activity: float = 1.0) -> int:
    """Roughly how many events `generate` yields (for progress bars; within ~15 %)."""
    per_member = 3.6 + 5.3 * activity
    per_group_day = 2.6
    return int(members * per_member * days / 90 + groups * days * per_group_day)


def generate(
    seed: int,
    *,
    members: int = 3000,
    days: int = 90,
    groups: int = 24,
    end_day: date | None = None,
    activity: float = 1.0,
) -> Iterator[dict[str, Any]]:
    """The events of a simulated community, in time order (ties by id), as contract-shaped dicts.

    - `members`: distinct non-staff people who join a group within the window (exactly); about
      5 % more only add a staff contact, and a few staff accounts come on top.
    - `days`, `end_day`: the window is the `days` local days ending on `end_day` (default:
      yesterday in Asia/Shanghai; pass it for reproducible dates).
    - `groups`: how many groups the portfolio has by the end (≥ 1; one is a temporary campaign
      group when there are at least 12).
    - `activity`: multiplies each member's daily chance of a chat session (at most one session a
      day, so the keenest members saturate: 2.0 gives ~1.45 × the member messages). At 1.0 a
      90-day community yields about 10 events per member, half of them messages: 3,000 members
      and 24 groups ≈ 32,600 events; 100,000 members and 400 groups ≈ 990,000.
    """
    spec = DemoSpec(seed, members, days, groups, end_day, activity).resolved()
    if members < 1 or days < 1 or groups < 1:
        raise ValueError("members, days and groups must be at least 1")
    if not activity >= 0:
        raise ValueError("activity must be ≥ 0")
    return _Community(spec).run()


def generate_lines(seed: int, **kwargs: Any) -> Iterator[bytes]:
    """`generate` as JSON Lines (UTF-8, one event per line, `\\n`-terminated)."""
    dumps = orjson.dumps
    for ev in generate(seed, **kwargs):
        yield dumps(ev) + b"\n"


# --- Tables shared by every run ------------------------------------------------------------

_HMS: list[str] = []


def _hms() -> list[str]:
    if not _HMS:
        _HMS.extend(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(DAY))
    return _HMS


def _hour_table(weights: tuple[float, ...], size: int = 1000) -> list[int]:
    """A lookup table: table[int(random() * size)] is an hour drawn with these weights."""
    total = sum(weights)
    table: list[int] = []
    acc = 0.0
    for hour, w in enumerate(weights):
        acc += w
        table.extend([hour] * (round(acc / total * size) - len(table)))
    table.extend([23] * (size - len(table)))
    return table


def _cum(weights: list[float]) -> list[float]:
    out, acc = [], 0.0
    for w in weights:
        acc += w
        out.append(acc)
    return [x / acc for x in out] if acc else out


def _pick(cum: list[float], r: float) -> int:
    """Index into a cumulative (normalised) weight list for a uniform r in [0, 1)."""
    lo, hi = 0, len(cum) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cum[mid] > r:
            hi = mid
        else:
            lo = mid + 1
    return lo


# --- The simulation -----------------------------------------------------------------------


class _Community:
    """State of one simulated community while it is generated; runs once."""

    def __init__(self, spec: DemoSpec) -> None:
        assert spec.end_day is not None
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self._r = self.rng.random
        self.key = spec.key
        self.days = spec.days
        start = spec.end_day - timedelta(days=spec.days - 1)
        self.start_date = start
        self.t0 = (start.toordinal() - EPOCH_ORDINAL) * DAY  # local seconds since 1970-01-01 local
        self.t_end = self.t0 + spec.days * DAY
        self.day_prefix = [(start + timedelta(days=d)).isoformat() + "T" for d in range(spec.days)]
        self.dates = [start + timedelta(days=d) for d in range(spec.days)]
        self.hms = _hms()
        self.heap: list[tuple[Any, ...]] = []
        self.seq = 0
        self.buf: list[tuple[int, int, dict[str, Any]]] = []
        self.day = 0
        self.day_start = self.t0
        self.day_end = self.t0 + DAY
        self.order_no = 0
        self.contact_no = 0
        self.hour_tables: dict[int, list[int]] = {}
        self._setup_staff()
        self._setup_groups()
        self._setup_calendar()
        self._setup_members()

    # -- setup --------------------------------------------------------------------------------

    def _hours(self, weights: tuple[float, ...]) -> list[int]:
        table = self.hour_tables.get(id(weights))
        if table is None:
            table = self.hour_tables[id(weights)] = _hour_table(weights)
        return table

    def _setup_staff(self) -> None:
        n = max(6, min(200, self.spec.groups // 3 + 4))
        self.staff: list[tuple[str, str]] = []
        for i in range(n):
            sid, name = C.STAFF[i % len(C.STAFF)]
            rnd = i // len(C.STAFF)
            self.staff.append((sid, name) if rnd == 0 else (f"{sid}{rnd + 1}", f"{name}{rnd + 1}"))

    def _setup_groups(self) -> None:
        spec = self.spec
        n = spec.groups
        self.temp_group = n - 1 if n >= 12 else -1
        theme_index = {t.key: i for i, t in enumerate(C.THEMES)}
        self.g_id = [f"wr{self.key}{g:03d}" for g in range(n)]
        self.g_theme: list[int] = []
        self.g_name: list[str] = []
        counts: dict[int, int] = {}
        for g in range(n):
            if g == self.temp_group:
                th = theme_index["deals"]
            else:
                th = theme_index[C.GROUP_THEME_CYCLE[g % len(C.GROUP_THEME_CYCLE)]]
            self.g_theme.append(th)
            if g != self.temp_group:
                counts[th] = counts.get(th, 0) + 1
                self.g_name.append(C.THEMES[th].name_fmt.format(n=counts[th]))
            else:
                self.g_name.append("")  # named with its campaign below
        ns = len(self.staff)
        self.g_owner = [(g * 5) % ns for g in range(n)]
        self.g_assist = [(g * 5 + 1 + g % 3) % ns for g in range(n)]
        self.g_open = [-1] * n  # local time of group.created, -1 while not created
        self.g_dismiss = [self.t_end + DAY] * n  # planned dismissal (after the window = never)
        self.g_members: list[dict[int, bool]] = [{} for _ in range(n)]
        self.g_recent: list[list[int]] = [[] for _ in range(n)]
        self.g_joins_today: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        self.g_staff_in: list[set[int]] = [set() for _ in range(n)]
        # Per theme: groups in the order they open; the first of each theme opens on day 0.
        self.theme_groups: dict[int, list[int]] = {}
        for g in range(n):
            if g != self.temp_group:
                self.theme_groups.setdefault(self.g_theme[g], []).append(g)
        self.theme_open: dict[int, list[int]] = {th: [] for th in self.theme_groups}
        self.theme_reserve: dict[int, list[int]] = {
            th: list(gs[1:]) for th, gs in self.theme_groups.items()
        }
        self.planned_open_day: dict[int, int] = {}
        for gs in self.theme_groups.values():
            for k, g in enumerate(gs[1:], start=1):
                day = int(k / len(gs) * 0.8 * self.days)
                self.planned_open_day[g] = max(1, min(self.days - 1, day + self._ri(0, 3)))
        themes = sorted(self.theme_groups)
        self.arrival_themes = themes
        self.arrival_theme_cum = _cum(
            [
                len(self.theme_groups[th]) * (0.4 if C.THEMES[th].key == "swap" else 1.0)
                for th in themes
            ]
        )

    def _setup_calendar(self) -> None:
        """Per day: multipliers for joins, orders and chat, and the campaign running."""
        days, dates = self.days, self.dates
        self.join_mult = [C.WEEKDAY_JOINS[d.weekday()] for d in dates]
        self.chat_mult = [C.WEEKDAY_ACTIVITY[d.weekday()] for d in dates]
        self.campaign: list[str | None] = [None] * days
        self.invite_campaign: list[str | None] = [None] * days
        self.festivals: dict[int, C.ShoppingDay] = {}
        for d, dt in enumerate(dates):
            for sd in C.SHOPPING_DAYS:
                try:
                    fest = date(dt.year, sd.month, sd.day)
                except ValueError:
                    continue
                delta = (fest - dt).days
                name = sd.campaign.format(year=fest.year)
                if delta == 0:
                    self.festivals[d] = sd
                    self.join_mult[d] *= sd.joins
                    self.chat_mult[d] *= 1.5
                    self.campaign[d] = name
                elif 0 < delta <= sd.preheat_days:
                    ramp = 1 + (sd.joins - 1) * (1 - delta / (sd.preheat_days + 1)) * 0.8
                    self.join_mult[d] *= ramp
                    self.chat_mult[d] *= 1 + 0.25 * (ramp - 1)
                    self.campaign[d] = name
                elif -2 <= delta < 0:
                    self.join_mult[d] *= 1 + (sd.joins - 1) * 0.3
                    self.campaign[d] = name
        # Two invite campaigns (任务宝: invite 3 friends, get a gift), a week each.
        for k, frac in enumerate((0.3, 0.62)):
            first = int(frac * days)
            for d in range(first, min(days, first + 7)):
                if days >= 14:
                    self.invite_campaign[d] = f"invite_task_{k + 1}"
                    self.join_mult[d] *= 1.25
        # The launch: the first days bring the brand's existing customers in.
        for d in range(min(3, days)):
            self.join_mult[d] *= (3.0, 2.0, 1.5)[d]
        # Slow growth over the window.
        for d in range(days):
            self.join_mult[d] *= 0.8 + 0.4 * d / max(1, days - 1)
        self.max_chat_mult = max(self.chat_mult) * 1.0001
        # The temporary campaign group: around the last festival the window can hold.
        if self.temp_group >= 0:
            g = self.temp_group
            best: tuple[int, C.ShoppingDay] | None = None
            for d, sd in sorted(self.festivals.items()):
                if d - sd.preheat_days >= 1:
                    best = (d, sd)
            if best is not None:
                d, sd = best
                open_day, close_day = d - sd.preheat_days, d + 3
                self.g_name[g] = sd.temp_group
            else:
                open_day = max(1, int(self.days * 0.55))
                close_day = open_day + 10
                self.g_name[g] = C.BRAND + "·限时秒杀临时群"
            self.planned_open_day[g] = open_day
            self.g_dismiss[g] = self.t0 + close_day * DAY + 20 * 3600
        # Group events planned ahead: renames, notices, the handover.
        self._plan_group_updates()

    def _plan_group_updates(self) -> None:
        rng, n = self.rng, self.spec.groups
        books = (
            "《被讨厌的勇气》",
            "《置身事内》",
            "《长安的荔枝》",
            "《认知觉醒》",
            "《人类简史》",
            "《活着》",
        )
        for d, dt in enumerate(self.dates):
            if dt.day == 1:
                for g in range(n):
                    if C.THEMES[self.g_theme[g]].key == "reading" and g != self.temp_group:
                        book = books[(dt.month + g) % len(books)]
                        self._push(
                            self.t0 + d * DAY + 10 * 3600 + self._ri(0, 600),
                            _GROUP,
                            g,
                            ("rename_book", f"{dt.month}月共读{book}"),
                        )
            if dt.weekday() == 0 and d > 0:
                for g in range(n):
                    if rng.random() < 0.2:
                        self._push(
                            self.t0 + d * DAY + 10 * 3600 + self._ri(0, 3600),
                            _GROUP,
                            g,
                            ("notice_week", None),
                        )
        for d, sd in self.festivals.items():
            begin, end = d - min(sd.preheat_days, 7), d + 2
            for g in range(n):
                if C.THEMES[self.g_theme[g]].key == "deals" and g != self.temp_group:
                    label = (
                        sd.campaign.split("_")[0]
                        .replace("double11", "双11")
                        .replace("double12", "双12")
                    )
                    if begin >= 0:
                        self._push(
                            self.t0 + begin * DAY + 9 * 3600, _GROUP, g, ("rename_fest", label)
                        )
                    if end < self.days:
                        self._push(self.t0 + end * DAY + 9 * 3600, _GROUP, g, ("rename_back", None))
        if n >= 2 and self.days >= 10 and len(self.staff) > 2:
            g = 1 if n > 1 else 0
            self._push(
                self.t0 + int(self.days * 0.55) * DAY + 15 * 3600, _GROUP, g, ("handover", None)
            )
        if self.temp_group >= 0 and self.g_dismiss[self.temp_group] < self.t_end:
            self._push(self.g_dismiss[self.temp_group], _GROUP, self.temp_group, ("dismiss", None))

    def _setup_members(self) -> None:
        spec, rng = self.spec, self.rng
        n = spec.members
        # Exactly `members` arrivals, spread by the join multipliers (largest remainder).
        weights = self.join_mult
        total = sum(weights)
        self.arrivals_per_day: list[int] = []
        acc, given = 0.0, 0
        for w in weights:
            acc += w
            upto = round(n * acc / total)
            self.arrivals_per_day.append(upto - given)
            given = upto
        self.next_member = 0
        self.m_id = [f"wm{self.key}{i:06d}" for i in range(n)]
        self.m_name = [""] * n
        self.m_theme = [0] * n
        self.m_chan = [-1] * n  # channel index; -1 none
        self.m_layer = [0] * n
        self.m_p = [0.0] * n
        self.m_buy = [0.0] * n
        self.m_first = [-1] * n
        self.m_groups: list[list[int]] = [[] for _ in range(n)]
        self.m_sched = [False] * n
        self.m_spam = [False] * n
        self.m_inviter = [-1] * n  # member index, or -2 - staff index
        self.m_phone = [False] * n
        self.m_orders = [0] * n
        self.m_spent = [0] * n
        self.m_level = [0] * n
        self.m_checkins: dict[int, int] = {}
        self.present: dict[int, bool] = {}
        self.pool: list[int] = []
        k = max(3, n // 700)
        early = max(k, int(n * 0.3))
        self.super_inviters = set(rng.sample(range(early), min(k, early)))
        self.layer_cum = _cum([lay[0] for lay in LAYERS])
        self.chan_cum_by_day: list[list[float]] = []
        for dt in self.dates:
            ws = []
            for ch in C.CHANNELS:
                w = ch.weight
                live = C.LIVE_DAYS.get(ch.code)
                if live is not None:
                    w *= 3.5 if dt.weekday() in live else 0.35
                if ch.code == "offline_store" and dt.weekday() >= 5:
                    w *= 1.6
                ws.append(w)
            ws.append(NO_CHANNEL_WEIGHT)
            self.chan_cum_by_day.append(_cum(ws))

    # -- plumbing -----------------------------------------------------------------------------

    def _ri(self, a: int, b: int) -> int:
        """A uniform integer in [a, b) (faster than Random.randrange)."""
        return a + int(self._r() * (b - a))

    def _ch(self, seq: Sequence[_T]) -> _T:
        return seq[int(self._r() * len(seq))]

    def _push(self, t: int, kind: int, a: Any, b: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, a, b))

    def _emit(self, t: int, ev: dict[str, Any]) -> None:
        """Queue an event at local time t: this day's buffer, or the heap when t is later."""
        if t < self.day_end:
            if t < self.day_start:
                t = self.day_start
                ev["ts"] = self._ts(t)
            self.seq += 1
            self.buf.append((t, self.seq, ev))
        elif t < self.t_end:
            self._push(t, _EMIT, ev)

    def _ts(self, t: int) -> str:
        s = t - self.t0
        return self.day_prefix[s // DAY] + self.hms[s % DAY] + OFFSET

    def _ev(self, t: int, type_: str) -> dict[str, Any]:
        if t >= self.t_end:
            t = self.t_end - 1
        s = t - self.t0
        return {
            "id": "",
            "type": type_,
            "ts": self.day_prefix[s // DAY] + self.hms[s % DAY] + OFFSET,
            "platform": PLATFORM,
        }

    def _time_in_day(self, d: int, table: list[int]) -> int:
        r = self.rng.random
        return self.t0 + d * DAY + table[int(r() * 1000)] * 3600 + int(r() * 3600)

    # -- the run ------------------------------------------------------------------------------

    def run(self) -> Iterator[dict[str, Any]]:
        handlers: dict[int, Callable[[int, Any, Any], None]] = {
            _ARRIVE: self._arrive,
            _JOIN: self._join_later,
            _LEAVE: self._leave,
            _SESSION: self._session,
            _INTRO: self._intro,
            _ORDER: self._order,
            _SPAM: self._spam_ads,
            _PROFILE: self._profile,
            _UNFRIEND: self._unfriend,
            _GROUP: self._group_event,
        }
        prefix = self.spec.event_prefix
        n_out = 0
        heap = self.heap
        for d in range(self.days):
            self.day = d
            self.day_start = self.t0 + d * DAY
            self.day_end = self.day_start + DAY
            self.buf = []
            for joins in self.g_joins_today:
                joins.clear()
            self._begin_day(d)
            while heap and heap[0][0] < self.day_end:
                t, _seq, kind, a, b = heapq.heappop(heap)
                if kind == _EMIT:
                    self.seq += 1
                    self.buf.append((t, self.seq, a))
                else:
                    handlers[kind](t, a, b)
            self._end_day(d)
            self.buf.sort()  # (t, seq, event): seq is unique, so events are never compared
            for _t, _s, ev in self.buf:
                if not ev["id"]:
                    ev["id"] = f"{prefix}{n_out:07d}"
                    n_out += 1
                yield ev
        yield self._marker()

    def _marker(self) -> dict[str, Any]:
        g = 0
        ev = self._ev(self.t_end - 1, "group.updated")
        ev["id"] = self.spec.marker_event_id
        ev["group"] = self.g_id[g]
        ev["notice"] = (
            C.THEMES[self.g_theme[g]].notice
            + " 【明日预告】早上10点新品试用名额开放，记得来群里报名。"
        )
        return ev

    # -- each day -----------------------------------------------------------------------------

    def _begin_day(self, d: int) -> None:
        rng = self.rng
        r = rng.random
        # Groups: the first of each theme on day 0, the rest on their planned day if not yet open.
        if d == 0:
            for i, (_th, gs) in enumerate(sorted(self.theme_groups.items())):
                self._open_group(gs[0], self.t0 + 9 * 3600 + i * 420 + self._ri(0, 60))
        for g, od in self.planned_open_day.items():
            if od == d and self.g_open[g] < 0:
                self._open_group(g, self.t0 + d * DAY + 10 * 3600 + self._ri(0, 1800))
        # Arrivals of the day, in time order; channel decided here (it shapes the hour).
        count = self.arrivals_per_day[d]
        chan_cum = self.chan_cum_by_day[d]
        batch = []
        for _ in range(count):
            ch = _pick(chan_cum, r())
            hours = C.HOURS_GENERAL
            if ch < len(C.CHANNELS):
                prof = C.CHANNELS[ch].hours
                hours = (
                    C.HOURS_EVENING
                    if prof == "evening"
                    else C.HOURS_STORE
                    if prof == "store"
                    else C.HOURS_GENERAL
                )
            t = self._time_in_day(d, self._hours(hours))
            if d == 0:  # after the groups open at 09:00, and a contact added first after that too
                t = max(t, self.t0 + 12 * 3600 + 1800 + int(r() * 3600))
            batch.append((t, ch))
        batch.sort()
        for t, ch in batch:
            self._push(t, _ARRIVE, self.next_member, ch)
            self.next_member += 1
        # People who only add a staff contact (leads), some leaving a phone number.
        n_contacts = int(count * CONTACT_ONLY_SHARE + r())
        for _ in range(n_contacts):
            self._contact_only(d)
        self._staff_routine(d)
        sd = self.festivals.get(d)
        if sd is not None:
            self._festival_orders(d, sd.orders, sd)
        elif d > 0 and self.festivals.get(d - 1) is not None:
            self._festival_orders(d, self.festivals[d - 1].orders * 0.2, self.festivals[d - 1])

    def _end_day(self, d: int) -> None:
        """Staff welcome the day's newcomers, a few at a time, @-mentioning them."""
        rng = self.rng
        for g, joins in enumerate(self.g_joins_today):
            if not joins:
                continue
            chunk: list[tuple[int, int]] = []
            for t, m in joins:
                if chunk and (t - chunk[0][0] > 3 * 3600 or len(chunk) >= 8):
                    self._welcome(g, chunk)
                    chunk = []
                if not self.m_spam[m] or rng.random() < 0.3:
                    chunk.append((t, m))
            if chunk:
                self._welcome(g, chunk)

    def _welcome(self, g: int, chunk: list[tuple[int, int]]) -> None:
        rng = self.rng
        if rng.random() < 0.15:
            return  # staff were busy
        t = chunk[-1][0] + self._ri(60, 900)
        if t >= self.g_dismiss[g]:
            return
        ids = [self.m_id[m] for _t, m in chunk]
        ev = self._ev(t, "message.posted")
        ev["group"] = self.g_id[g]
        ev["member"] = self.staff[self.g_assist[g]][0]
        ev["kind"] = "text"
        ev["text"] = self._ch(C.STAFF_WELCOME).format(
            mentions=" ".join("@" + self.m_name[m] for _t, m in chunk)
        )
        ev["mentions"] = ids
        self._emit(t, ev)

    def _staff_routine(self, d: int) -> None:
        rng = self.rng
        r = rng.random
        day0 = self.t0 + d * DAY
        dt = self.dates[d]
        campaign = self.campaign[d]
        inv = self.invite_campaign[d]
        inv_start = inv is not None and (d == 0 or self.invite_campaign[d - 1] != inv)
        for g in range(self.spec.groups):
            opened = self.g_open[g]
            if opened < 0 or opened >= day0 + DAY:
                continue
            theme = C.THEMES[self.g_theme[g]]
            dead = theme.key == "swap"
            owner, assist = self.staff[self.g_owner[g]][0], self.staff[self.g_assist[g]][0]
            posts: list[tuple[int, str, str, str]] = []  # (t, staff, kind, text)
            if r() < (0.25 if dead else 0.85):
                posts.append(
                    (
                        day0 + 7 * 3600 + 1800 + self._ri(0, 5400),
                        owner,
                        "text",
                        self._ch(C.STAFF_MORNING),
                    )
                )
            if r() < (0.1 if dead else 0.6):
                text = self._ch(theme.staff_posts).replace("{d}", str(d + 1))
                kind = "text" if r() < 0.7 else self._ch(("link", "image", "mini_program"))
                posts.append((day0 + 11 * 3600 + 1800 + self._ri(0, 5400), assist, kind, text))
            if r() < (0.05 if dead else 0.45):
                kind = "mini_program" if theme.key in ("deals", "vip") and r() < 0.5 else "text"
                posts.append(
                    (
                        day0 + 19 * 3600 + 1800 + self._ri(0, 2700),
                        assist,
                        kind,
                        self._ch(C.STAFF_EVENING),
                    )
                )
            if theme.key == "deals" and dt.weekday() in (2, 4):
                posts.append(
                    (
                        day0 + 20 * 3600,
                        owner,
                        "mini_program",
                        "【今晚8点秒杀】开抢啦！点击小程序进入👇",
                    )
                )
                self._flash_sale(g, day0 + 20 * 3600, f"flash_sale_{dt:%Y%m%d}")
            if inv_start and not dead:
                posts.append(
                    (
                        day0 + 10 * 3600 + self._ri(0, 1800),
                        owner,
                        "text",
                        "【邀请有礼】邀请3位好友入群并留满3天，即可领取试用装一份，进度在小程序里实时查看🎁",
                    )
                )
            if campaign is not None and self.festivals.get(d) is not None and not dead:
                posts.append(
                    (
                        day0 + self._ri(60, 600),
                        owner,
                        "mini_program",
                        "【零点开抢】全场好价已开启，群内专享券叠加使用👇",
                    )
                )
            elif campaign is not None and r() < 0.5 and not dead:
                posts.append(
                    (
                        day0 + 12 * 3600 + self._ri(0, 3600),
                        assist,
                        "text",
                        "【活动预告】大促预热中，提前加购，群内还有专属券",
                    )
                )
            for t, who, kind, text in posts:
                if t <= opened or t >= self.g_dismiss[g]:
                    continue
                ev = self._ev(t, "message.posted")
                ev["group"] = self.g_id[g]
                ev["member"] = who
                ev["kind"] = kind
                if kind in ("text", "link", "mini_program"):
                    ev["text"] = text
                self._emit(t, ev)

    # -- groups -------------------------------------------------------------------------------

    def _open_group(self, g: int, t: int) -> None:
        if self.g_open[g] >= 0:
            return
        self.g_open[g] = t
        th = self.g_theme[g]
        if g != self.temp_group:
            if g in self.theme_reserve.get(th, ()):
                self.theme_reserve[th].remove(g)
            self.theme_open[th].append(g)
        owner, assist = self.g_owner[g], self.g_assist[g]
        ev = self._ev(t, "group.created")
        if g == 0:
            ev["id"] = self.spec.first_event_id
        ev["group"] = self.g_id[g]
        ev["name"] = self.g_name[g]
        ev["owner"] = self.staff[owner][0]
        self._emit(t, ev)
        self._staff_join(g, owner, t + 1, None)
        self._staff_join(g, assist, t + 30 + self._ri(0, 300), owner)
        tn = t + 600 + self._ri(0, 1200)
        ev = self._ev(tn, "group.updated")
        ev["group"] = self.g_id[g]
        ev["notice"] = C.THEMES[th].notice
        self._emit(tn, ev)

    def _staff_join(self, g: int, s: int, t: int, inviter: int | None) -> None:
        if s in self.g_staff_in[g]:
            return
        self.g_staff_in[g].add(s)
        ev = self._ev(t, "member.joined")
        ev["group"] = self.g_id[g]
        ev["member"] = self.staff[s][0]
        ev["name"] = self.staff[s][1]
        if inviter is not None:
            ev["inviter"] = self.staff[inviter][0]
            ev["via"] = "invite"
        ev["is_staff"] = True
        self._emit(t, ev)

    def _group_event(self, t: int, g: int, what: tuple[str, Any]) -> None:
        action, arg = what
        if (
            self.g_open[g] < 0
            or self.g_open[g] >= t
            or (t >= self.g_dismiss[g] and action != "dismiss")
        ):
            return
        if action == "dismiss":
            ev = self._ev(t, "group.dismissed")
            ev["group"] = self.g_id[g]
            self._emit(t, ev)
            rng = self.rng
            for m in list(self.g_members[g]):
                self._drop_membership(m, g)
                # Some are pulled into a regular 福利群 the next day.
                if not self.m_spam[m] and not self.m_groups[m] and rng.random() < 0.5:
                    self._push(t + DAY // 2 + self._ri(0, DAY // 2), _JOIN, m, (-1, "invite"))
            self.g_members[g].clear()
            return
        ev = self._ev(t, "group.updated")
        ev["group"] = self.g_id[g]
        base = self.g_name[g]
        if action == "rename_book":
            ev["name"] = f"{base}·{arg}"
        elif action == "rename_fest":
            ev["name"] = f"{base}｜{arg}专场🎁"
        elif action == "rename_back":
            ev["name"] = base
        elif action == "notice_week":
            ev["notice"] = (
                C.THEMES[self.g_theme[g]].notice + " 【本周活动】周三、周五晚8点秒杀，周日晚抽奖。"
            )
        elif action == "handover":
            old = self.g_owner[g]
            new = (old + 2) % len(self.staff)
            if new == self.g_assist[g]:
                new = (new + 1) % len(self.staff)
            self._staff_join(g, new, t - 600, old)
            self.g_owner[g] = new
            ev["owner"] = self.staff[new][0]
        self._emit(t, ev)

    def _pick_group(self, th: int, t: int) -> int:
        """A group of theme th to join at t: the newest with room (or a new one opened now)."""
        rng = self.rng
        open_ = self.theme_open[th]
        room = [g for g in open_ if len(self.g_members[g]) < GROUP_CAP and self.g_open[g] < t]
        if not room or (
            len(self.g_members[room[-1]]) >= GROUP_CAP * 0.9 and self.theme_reserve[th]
        ):
            reserve = self.theme_reserve[th]
            if reserve:
                g = reserve[0]
                self._open_group(g, max(self.day_start, t - 900))
                return g
            if not room:
                candidates = [g for g in open_ if self.g_open[g] < t]
                if not candidates:
                    return -1
                return min(candidates, key=lambda g: len(self.g_members[g]))
        if len(room) == 1 or rng.random() < 0.7:
            return room[-1]
        return room[self._ri(0, len(room))]

    def _temp_group_open(self, t: int) -> bool:
        g = self.temp_group
        return (
            g >= 0
            and 0 <= self.g_open[g] < t < self.g_dismiss[g]
            and len(self.g_members[g]) < GROUP_CAP
        )

    # -- people -------------------------------------------------------------------------------

    def _make_name(self, m: int) -> str:
        rng = self.rng
        r = rng.random()
        th = C.THEMES[self.m_theme[m]]
        if th.key == "mom" and r < 0.35:
            name = self._ch(C.KID_NAMES) + self._ch(("妈", "妈妈", "妈咪", "麻麻"))
        elif r < 0.55:
            name = self._ch(C.NICK_WORDS)
        elif r < 0.75:
            s = self._ch(C.SURNAMES)
            name = self._ch(
                (f"小{s}", f"{s}姐", f"{s}哥", f"老{s}", f"{s}{self._ch(C.NICK_WORDS)[:1]}")
            )
        else:
            name = self._ch(C.ENGLISH_NAMES)
        return name + self._ch(C.NAME_TAILS)

    def _arrive(self, t: int, m: int, ch: int) -> None:
        rng = self.rng
        r = rng.random
        d = self.day
        lay = _pick(self.layer_cum, r())
        if m in self.super_inviters:
            lay = max(lay, 2)
        self.m_layer[m] = lay
        th = self.arrival_themes[_pick(self.arrival_theme_cum, r())]
        self.m_theme[m] = th
        spam = r() < SPAM_SHARE * C.THEMES[th].spam
        self.m_spam[m] = spam
        if spam:
            self.m_name[m] = self._ch(C.SPAM_NAMES) + self._ch(("", "", str(self._ri(1, 99))))
            g = self._pick_group(th, t)
            if g < 0:
                return
            self._join(t, m, g, "qrcode" if r() < 0.7 else "link")
            self._push(t + self._ri(60, 2400), _SPAM, m, g)
            return
        self.m_name[m] = self._make_name(m)
        layer = LAYERS[lay]
        theme = C.THEMES[th]
        invite_share = 0.45 if self.invite_campaign[d] else INVITE_SHARE
        if self.campaign[d] is not None:
            invite_share += 0.08
        inviter = -1
        if r() < invite_share:
            inviter = self._pick_inviter()
        quality, leave, buy = 0.85, 0.25, 0.9
        if inviter >= 0:
            gs = self.m_groups[inviter]
            g = gs[self._ri(0, len(gs))]
            if len(self.g_members[g]) >= GROUP_CAP:
                g = (
                    self._pick_group(self.g_theme[g], t)
                    if g != self.temp_group
                    else self._pick_group(th, t)
                )
            if g < 0:
                return
            self.m_theme[m] = self.g_theme[g] if g != self.temp_group else th
            self.m_inviter[m] = inviter
            if self.invite_campaign[d]:
                leave = 0.42  # reward hunters: in for the gift, out after it
            self._join(t, m, g, "invite", inviter_id=self.m_id[inviter])
        else:
            if self._temp_group_open(t) and r() < 0.25:
                g = self.temp_group
            else:
                g = self._pick_group(th, t)
            if g < 0:
                return
            if ch < len(C.CHANNELS):
                chan = C.CHANNELS[ch]
                self.m_chan[m] = ch
                quality, leave, buy = chan.quality, chan.leave, chan.buy
                if r() < chan.via_contact:
                    s = self.g_assist[g]
                    tc = max(self.day_start, t - self._ri(120, 3 * 3600))
                    ev = self._ev(tc, "contact.added")
                    ev["member"] = self.m_id[m]
                    ev["staff"] = self.staff[s][0]
                    ev["name"] = self.m_name[m]
                    ev["channel"] = chan.code
                    self._emit(tc, ev)
                    self.m_inviter[m] = -2 - s
                    self._join(t, m, g, "invite", inviter_id=self.staff[s][0])
                    if r() < 0.05:
                        self._push(t + self._ri(5 * DAY, 60 * DAY), _UNFRIEND, m, s)
                else:
                    self._join(t, m, g, "channel", channel=chan.code)
            else:
                self._join(t, m, g, "qrcode" if r() < 0.75 else "link")
                quality, leave = 0.8, 0.3
        self.m_p[m] = min(0.9, layer[1] * quality * theme.activity * self.spec.activity)
        self.m_buy[m] = layer[3] * buy * theme.buy
        if not self.m_sched[m]:
            self._schedule_session(t, m)
        # Invite weight: most people invite nobody; a few super-inviters bring dozens.
        if m in self.super_inviters:
            self.pool.extend([m] * SUPER_INVITER_WEIGHT)
        else:
            x = r()
            w = 0 if x < 0.70 else 1 if x < 0.90 else 3 if x < 0.98 else 10
            if w:
                self.pool.extend([m] * w)
        # What happens next.
        if r() < layer[5]:
            self._push(t + self._ri(30, 1200), _INTRO, m, None)
        if r() < 0.4:
            self._push(t + self._ri(300, 2 * DAY), _PROFILE, m, None)
        if r() < min(0.85, 0.22 * self.m_buy[m]):
            delay = self._ri(600, DAY) if r() < 0.3 else int(rng.expovariate(1 / (12 * DAY)))
            self._push(t + delay, _ORDER, m, None)
        if r() < SECOND_GROUP_PROB:
            self._push(t + self._ri(DAY, 30 * DAY), _JOIN, m, (-1, "qrcode"))
        self._first_leave(t, m, self.m_groups[m][-1] if self.m_groups[m] else -1, leave * layer[4])

    def _pick_inviter(self) -> int:
        pool = self.pool
        if not pool:
            return -1
        r = self.rng.random
        for _ in range(3):
            c = pool[int(r() * len(pool))]
            if self.m_groups[c]:
                return c
        return -1

    def _first_leave(self, t: int, m: int, g: int, p_leave: float) -> None:
        """Decide whether and when m quits group g (some within the 72-hour hold window)."""
        if g < 0 or m in self.super_inviters:
            return
        rng = self.rng
        if rng.random() >= min(0.9, p_leave):
            return
        if rng.random() < 0.3:
            tl = t + self._ri(1800, 72 * 3600)
        else:
            tl = t + 72 * 3600 + int(rng.expovariate(1 / (20 * DAY)))
        if tl < self.t_end:
            self._push(tl, _LEAVE, m, g)

    def _join(
        self,
        t: int,
        m: int,
        g: int,
        via: str,
        *,
        inviter_id: str | None = None,
        channel: str | None = None,
    ) -> None:
        ev = self._ev(t, "member.joined")
        ev["group"] = self.g_id[g]
        ev["member"] = self.m_id[m]
        ev["name"] = self.m_name[m]
        ev["via"] = via
        if inviter_id is not None:
            ev["inviter"] = inviter_id
        if channel is not None:
            ev["channel"] = channel
        self._emit(t, ev)
        self.g_members[g][m] = True
        self.m_groups[m].append(g)
        self.present[m] = True
        if self.m_first[m] < 0:
            self.m_first[m] = t
        self.g_joins_today[g].append((t, m))
        if not self.m_sched[m] and not self.m_spam[m]:
            self._schedule_session(t, m)

    def _drop_membership(self, m: int, g: int) -> None:
        self.g_members[g].pop(m, None)
        gs = self.m_groups[m]
        if g in gs:
            gs.remove(g)
        if not gs:
            self.present.pop(m, None)

    def _join_later(self, t: int, m: int, what: tuple[int, str]) -> None:
        """A re-join (g given) or a second group (g = -1: pick one)."""
        g, via = what
        rng = self.rng
        if g >= 0 and not (0 <= self.g_open[g] < t < self.g_dismiss[g]):
            g = -1
        if g < 0:
            th = self.arrival_themes[_pick(self.arrival_theme_cum, rng.random())]
            if self.m_groups[m] or self.m_spam[m]:
                key = self._ch(C.SECOND_GROUP_THEMES)
                for cand in self.arrival_themes:
                    if C.THEMES[cand].key == key:
                        th = cand
                        break
            g = self._pick_group(th, t)
        if g < 0 or g in self.m_groups[m]:
            return
        if via == "invite" and not self.m_spam[m]:
            self._join(t, m, g, "invite", inviter_id=self.staff[self.g_assist[g]][0])
        else:
            self._join(t, m, g, via)
        if self.m_spam[m]:
            self._push(t + self._ri(60, 1800), _SPAM, m, g)
        else:
            self._first_leave(t, m, g, 0.15 * LAYERS[self.m_layer[m]][4])

    def _leave(self, t: int, m: int, g: int | tuple[int, str]) -> None:
        removed_by: str | None = None
        if isinstance(g, tuple):
            g, removed_by = g
        if g not in self.m_groups[m]:
            return
        self._drop_membership(m, g)
        ev = self._ev(t, "member.left")
        ev["group"] = self.g_id[g]
        ev["member"] = self.m_id[m]
        rng = self.rng
        if removed_by is not None:
            ev["via"] = "removed"
            ev["by"] = removed_by
            self._emit(t, ev)
            if rng.random() < 0.5:
                tn = t + self._ri(20, 300)
                notice = self._ev(tn, "message.posted")
                notice["group"] = self.g_id[g]
                notice["member"] = removed_by
                notice["kind"] = "text"
                notice["text"] = self._ch(C.STAFF_SPAM_NOTICE)
                self._emit(tn, notice)
            if rng.random() < 0.3:  # the account tries another group
                self._push(t + self._ri(DAY // 2, 3 * DAY), _JOIN, m, (-1, "qrcode"))
            return
        ev["via"] = "quit"
        self._emit(t, ev)
        if rng.random() < RETURN_PROB:
            back = g if rng.random() < 0.7 else -1
            via = "qrcode" if rng.random() < 0.6 else "invite"
            self._push(t + self._ri(2 * DAY, 40 * DAY), _JOIN, m, (back, via))

    # -- chat ---------------------------------------------------------------------------------

    def _schedule_session(self, t: int, m: int) -> None:
        """The member's next chat session: a geometric gap in days, thinned by the calendar."""
        p = self.m_p[m]
        if p <= 0:
            return
        age = (t - self.m_first[m]) / DAY
        p *= 0.3 + 0.7 * math.exp(-age / 21) + (0.6 if age < 3 else 0.0)
        pmax = min(0.95, p * self.max_chat_mult)
        r = self.rng.random
        d = (t - self.t0) // DAY
        log_q = math.log(1 - pmax)
        while True:
            d += 1 + int(math.log(1.0 - r()) / log_q)
            if d >= self.days:
                return
            if r() * pmax <= p * self.chat_mult[d]:
                break
        theme = C.THEMES[self.m_theme[m]]
        self._push(self._time_in_day(d, self._hours(theme.hours)), _SESSION, m, None)
        self.m_sched[m] = True

    def _session(self, t: int, m: int, _b: Any) -> None:
        self.m_sched[m] = False
        gs = self.m_groups[m]
        if not gs:
            return
        rng = self.rng
        r = rng.random
        g = gs[0] if len(gs) == 1 or r() < 0.6 else gs[self._ri(0, len(gs))]
        cont = LAYERS[self.m_layer[m]][2]
        k = 1
        while r() < cont and k < 12:
            k += 1
        tm = t
        for i in range(k):
            self._message(tm, m, g, first=i == 0)
            tm += 5 + int(r() * 200)
        # Sometimes a present member is pulled into the campaign group.
        if self._temp_group_open(t) and self.temp_group not in gs and r() < 0.04:
            self._join(
                t + self._ri(600, 7200),
                m,
                self.temp_group,
                "invite",
                inviter_id=self.staff[self.g_assist[self.temp_group]][0],
            )
        self._schedule_session(t, m)

    def _intro(self, t: int, m: int, _b: Any) -> None:
        gs = self.m_groups[m]
        if not gs:
            return
        g = gs[-1]
        theme = C.THEMES[self.g_theme[g]]
        ev = self._ev(t, "message.posted")
        ev["group"] = self.g_id[g]
        ev["member"] = self.m_id[m]
        ev["kind"] = "text"
        ev["text"] = self._ch(theme.intros).replace("{m}", str(self._ri(1, 13)))
        self._emit(t, ev)
        self._remember(g, m)

    def _remember(self, g: int, m: int) -> None:
        recent = self.g_recent[g]
        recent.append(m)
        if len(recent) > 24:
            del recent[:8]

    def _message(self, t: int, m: int, g: int, *, first: bool) -> None:
        if t >= self.g_dismiss[g]:
            return
        rng = self.rng
        r = rng.random
        theme = C.THEMES[self.g_theme[g]]
        ev = self._ev(t, "message.posted")
        ev["group"] = self.g_id[g]
        ev["member"] = self.m_id[m]
        x = r()
        kind = "text"
        for k, w in theme.kinds:
            x -= w
            if x < 0:
                kind = k
                break
        ev["kind"] = kind
        if kind == "text":
            y = r()
            recent = self.g_recent[g]
            other = recent[self._ri(0, len(recent))] if recent else m
            if self.m_spam[other]:
                other = m
            if theme.checkin and first and y < 0.5:
                n = self.m_checkins.get(m, 0) + 1
                self.m_checkins[m] = n
                ev["text"] = (
                    self._ch(theme.checkin).replace("{n}", str(n)).replace("{c}", str(n // 3 + 1))
                )
            elif y < 0.45:
                ev["text"] = self._ch(theme.chat) + self._ch(C.EMOJI_SUFFIX)
            elif y < 0.65:
                ev["text"] = self._ch(C.GENERIC_CHAT) + self._ch(C.EMOJI_SUFFIX)
            elif y < 0.75:
                ev["text"] = self._ch(theme.questions)
                if r() < 0.65:
                    self._staff_answer(t, m, g, theme)
            elif other != m and y < 0.92:
                ev["text"] = self._ch(C.REPLIES)
                ev["reply_to"] = self.m_id[other]
            elif other != m:
                ev["text"] = self._ch(C.MENTION_TEMPLATES).replace("{name}", self.m_name[other])
                ev["mentions"] = [self.m_id[other]]
            else:
                ev["text"] = self._ch(theme.chat)
        elif kind in ("link", "mini_program", "file"):
            ev["text"] = (
                self._ch(("分享链接", "好物推荐", "这个不错")) if kind != "file" else "资料.pdf"
            )
        self._emit(t, ev)
        self._remember(g, m)

    def _staff_answer(self, t: int, m: int, g: int, theme: C.Theme) -> None:
        rng = self.rng
        local = (t - self.t0) % DAY
        if 9 * 3600 <= local < 22 * 3600:
            ta = t + self._ri(60, 1800)
        else:  # asked off-hours: answered next morning
            ta = t - local + (DAY if local >= 22 * 3600 else 0) + 9 * 3600 + self._ri(0, 1800)
        if ta >= self.g_dismiss[g]:
            return
        ev = self._ev(ta, "message.posted")
        ev["group"] = self.g_id[g]
        ev["member"] = self.staff[self.g_assist[g] if rng.random() < 0.7 else self.g_owner[g]][0]
        ev["kind"] = "text"
        ev["text"] = self._ch(theme.answers)
        ev["reply_to"] = self.m_id[m]
        self._emit(ta, ev)

    def _spam_ads(self, t: int, m: int, g: int) -> None:
        if g not in self.m_groups[m]:
            return
        rng = self.rng
        tm = t
        for _ in range(self._ri(1, 4)):
            ev = self._ev(tm, "message.posted")
            ev["group"] = self.g_id[g]
            ev["member"] = self.m_id[m]
            kind = self._ch(("text", "text", "text", "link", "mini_program", "image"))
            ev["kind"] = kind
            if kind != "image":
                ev["text"] = self._ch(C.SPAM_TEXTS)
            self._emit(tm, ev)
            tm += self._ri(10, 600)
        by = self.staff[self.g_owner[g] if rng.random() < 0.5 else self.g_assist[g]][0]
        self._push(tm + self._ri(120, 90 * 60), _LEAVE, m, (g, by))

    # -- profiles and contacts ----------------------------------------------------------------

    def _phone(self, m: int) -> str:
        # A bijection of m onto 8 digits keeps numbers unique within a community.
        key_salt = int(self.key, 36) % 10_000_000
        suffix = (m * 7_919_113 + key_salt) % 100_000_000
        return C.PHONE_PREFIXES[(m * 7 + key_salt) % len(C.PHONE_PREFIXES)] + f"{suffix:08d}"

    def _profile(self, t: int, m: int, extra: dict[str, Any] | None) -> None:
        rng = self.rng
        r = rng.random
        ev = self._ev(t, "profile.updated")
        ev["member"] = self.m_id[m]
        theme = C.THEMES[self.m_theme[m]]
        if extra is None:
            ev["name"] = self.m_name[m]
            ev["gender"] = "female" if r() < theme.female else "male"
            ev["city"] = _weighted_city(r())
            if r() < 0.3:
                ev["unionid"] = (
                    "o"
                    + base64.urlsafe_b64encode(
                        hashlib.blake2b(f"{self.key}:{m}".encode(), digest_size=20).digest()
                    ).decode()[:27]
                )
            if not self.m_phone[m] and r() < 0.25:
                ev["phone"] = self._phone(m)
                self.m_phone[m] = True
            attrs: dict[str, Any] = {"会员等级": C.LEVELS[self.m_level[m]]}
            if theme.key == "mom":
                attrs["宝宝月龄"] = self._ri(0, 37)
            elif theme.key == "beauty":
                attrs["肤质"] = self._ch(("干皮", "油皮", "混油", "敏感肌"))
            elif theme.key == "pets":
                attrs["宠物"] = self._ch(("猫", "狗", "猫和狗"))
            attrs["接受推送"] = r() < 0.8
            ev["attrs"] = attrs
        else:
            for k, v in extra.items():
                ev[k] = v
        self._emit(t, ev)

    def _contact_only(self, d: int) -> None:
        """A lead: adds a staff contact through a channel code and never joins a group."""
        rng = self.rng
        r = rng.random
        n = self.contact_no
        self.contact_no += 1
        ch = C.CHANNELS[self._ch((0, 0, 1, 1, 2, 5, 7, 7))]
        t = self._time_in_day(d, self._hours(C.HOURS_GENERAL))
        if d == 0:
            t = max(t, self.t0 + 11 * 3600)
        mid = f"wm{self.key}c{n:05d}"
        s = self._ri(0, len(self.staff))
        ev = self._ev(t, "contact.added")
        ev["member"] = mid
        ev["staff"] = self.staff[s][0]
        ev["channel"] = ch.code
        self._emit(t, ev)
        if r() < 0.4:  # 留资: left a phone number on the landing page
            ev = self._ev(t + 60, "profile.updated")
            ev["member"] = mid
            key_salt = int(self.key, 36) % 10_000_000
            ev["phone"] = (
                C.PHONE_PREFIXES[n % len(C.PHONE_PREFIXES)]
                + f"{(n * 3_331_333 + key_salt + 50_000_000) % 100_000_000:08d}"
            )
            self._emit(t + 60, ev)
        if r() < 0.1:
            tr = t + self._ri(DAY, 20 * DAY)
            ev = self._ev(tr, "contact.removed")
            ev["member"] = mid
            ev["staff"] = self.staff[s][0]
            ev["by"] = "member"
            self._emit(tr, ev)

    def _unfriend(self, t: int, m: int, s: int) -> None:
        ev = self._ev(t, "contact.removed")
        ev["member"] = self.m_id[m]
        ev["staff"] = self.staff[s][0]
        ev["by"] = "member"
        self._emit(t, ev)

    # -- orders -------------------------------------------------------------------------------

    def _flash_sale(self, g: int, t: int, campaign: str) -> None:
        r = self.rng.random
        for m in self.g_members[g]:
            if not self.m_spam[m] and r() < 0.015 * self.m_buy[m]:
                self._push(t + 30 + int(r() * 5400), _ORDER, m, campaign)

    def _festival_orders(self, d: int, share: float, sd: C.ShoppingDay) -> None:
        rng = self.rng
        r = rng.random
        day0 = self.t0 + d * DAY
        campaign = sd.campaign.format(year=self.dates[d].year)
        for m in self.present:
            if self.m_spam[m] or r() >= share * self.m_buy[m]:
                continue
            x = r()
            if x < 0.4:
                t = day0 + int(r() * 2 * 3600)  # the midnight rush
            elif x < 0.75:
                t = day0 + 20 * 3600 + int(r() * 4 * 3600)
            else:
                t = day0 + int(r() * DAY)
            self._push(t, _ORDER, m, campaign)

    def _order(self, t: int, m: int, campaign: str | None) -> None:
        rng = self.rng
        r = rng.random
        theme = C.THEMES[self.m_theme[m]]
        products = theme.products
        n_items = 1 if r() < 0.65 else 2 if r() < 0.75 else 3
        picks = rng.sample(range(len(products)), min(n_items, len(products)))
        items: list[dict[str, Any]] = []
        prices: list[int] = []
        subtotal = 0
        for i in picks:
            sku, _name, price = products[i]
            qty = 1 if r() < 0.8 else self._ri(2, 4)
            items.append({"sku": sku, "qty": qty, "price": price})
            prices.append(price)
            subtotal += qty * price
        d = self.day
        if campaign is None:
            campaign = self.campaign[d]
        discount = 0
        if campaign is not None:
            discount = subtotal // 10 // 100 * 100
        elif self.m_orders[m] == 0 and t - self.m_first[m] < 7 * DAY:
            campaign = "new_member_coupon"
            discount = 1000 if subtotal >= 5000 else 0
        amount = max(100, subtotal - discount)
        self.order_no += 1
        oid = f"SO{self.key.upper()}{self.order_no:07d}"
        ev = self._ev(t, "order.paid")
        ev["order"] = oid
        ev["member"] = self.m_id[m]
        ev["amount"] = amount
        if campaign is not None:
            ev["campaign"] = campaign
        inviter = self.m_inviter[m]
        if inviter >= 0 and r() < 0.5:
            ev["referrer"] = self.m_id[inviter]
        elif r() < 0.06 and self.m_groups[m]:
            # The group's super-inviter (团长) earns on sales she brought about.
            g = self.m_groups[m][0]
            for s in self.super_inviters:
                if s != m and g in self.m_groups[s]:
                    ev["referrer"] = self.m_id[s]
                    break
        ev["items"] = items
        self._emit(t, ev)
        self.m_orders[m] += 1
        self.m_spent[m] += amount
        if self.m_orders[m] == 1 and not self.m_phone[m] and r() < 0.7:
            self.m_phone[m] = True
            self._profile(t + 30, m, {"phone": self._phone(m)})
        level = (
            3
            if self.m_spent[m] >= 100_000
            else 2
            if self.m_spent[m] >= 30_000
            else 1
            if self.m_spent[m] >= 10_000
            else 0
        )
        if level > self.m_level[m]:
            self.m_level[m] = level
            self._profile(t + 120, m, {"attrs": {"会员等级": C.LEVELS[level]}})
        # Refunds: full, partial, or two partials that add up to the whole.
        p_refund = REFUND_PROB * (2 if self.festivals.get(d) else 1)
        if r() < p_refund:
            x = r()
            t1 = t + self._ri(3600, 10 * DAY)
            if x < 0.45:
                self._refund(t1, oid, amount)
            elif x < 0.85:
                part = prices[-1] if len(items) > 1 else amount * self._ri(20, 60) // 100
                self._refund(t1, oid, max(1, min(part, amount - 1)))
            else:
                first = amount * 2 // 5
                self._refund(t1, oid, first)
                self._refund(t1 + self._ri(3600, 5 * DAY), oid, amount - first)
        # Repeat purchase.
        if r() < min(0.6, 0.22 * self.m_buy[m]):
            tn = t + DAY + int(rng.expovariate(1 / (25 * DAY)))
            if tn < self.t_end:
                self._push(tn, _ORDER, m, None)

    def _refund(self, t: int, oid: str, amount: int) -> None:
        ev = self._ev(t, "order.refunded")
        ev["order"] = oid
        ev["amount"] = amount
        self._emit(t, ev)


_CITY_CUM = _cum([float(w) for _c, w in C.CITIES])


def _weighted_city(r: float) -> str:
    return C.CITIES[_pick(_CITY_CUM, r)][0]


# --- Opt-in invite fraud (DemoSpec.fraud): planted on top, with ground truth -----------------
# Kept apart from _Community so that without --fraud every output stays byte-identical: the
# planted events come from their own random stream and are merged into the base stream by time.

FRAUD_KINDS = ("self_invite", "quick_leave", "sybil_burst", "shared_device")


def plant_fraud(
    spec: DemoSpec, events: Iterator[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, list[str]], dict[str, list[dict[str, str]]]]:
    """The base events with planted invite fraud merged in time order, the ground truth (for
    each kind, the member keys of the invitees that carry it: what a detector should flag), and
    the landing-page leads and poster visits the shared-device fraud and its innocent controls
    leave (`load_planted_acquisition` stores them; leads and visits are not events)."""
    base = list(events)
    rng = random.Random(f"fraud:{spec.seed}:{spec.key}")
    groups = [e["group"] for e in base if e["type"] == "group.created"]
    dismissed = {e["group"] for e in base if e["type"] == "group.dismissed"}
    groups = [g for g in groups if g not in dismissed]
    first: dict[str, datetime] = {}
    for e in base:
        if e["type"] == "member.joined" and not e.get("is_staff") and e["member"] not in first:
            first[e["member"]] = datetime.fromisoformat(e["ts"])
    start = datetime.fromisoformat(base[0]["ts"])
    end = datetime.fromisoformat(base[-1]["ts"])
    lo, hi = start + timedelta(days=10), end - timedelta(days=4)
    span = (hi - lo).total_seconds()
    platform = base[0]["platform"]
    out: list[dict[str, Any]] = []
    truth: dict[str, list[str]] = {k: [] for k in FRAUD_KINDS}
    seq = iter(range(1_000_000))

    def when() -> datetime:
        return lo + timedelta(seconds=int(rng.random() * span))

    def key() -> str:
        return f"fr{spec.key}{next(seq):06d}"

    def ev(t: datetime, type_: str, **fields: Any) -> None:
        out.append(
            {
                "id": f"{spec.event_prefix}fraud-{len(out):06d}",
                "type": type_,
                "ts": t.isoformat(),
                "platform": platform,
                **fields,
            }
        )

    def older_than(t: datetime, days: int) -> str:
        """An existing member whose first join was at least `days` before t."""
        while True:
            m = rng.choice(sorted_members)
            if first[m] <= t - timedelta(days=days):
                return m

    sorted_members = sorted(first)
    scale = max(1, spec.members // 100)
    for k in range(scale):  # self-invites: own inviter, or a pair inviting each other
        t = when()
        if k % 2 == 0:
            z = key()
            ev(t, "member.joined", group=rng.choice(groups), member=z, inviter=z, via="invite")
            truth["self_invite"].append(z)
        else:
            x, y = older_than(t, 1), key()
            g1, g2 = rng.sample(groups, 2)
            ev(t, "member.joined", group=g1, member=y, inviter=x, via="invite")
            later = t + timedelta(minutes=rng.randint(10, 120))
            ev(later, "member.joined", group=g2, member=x, inviter=y, via="invite")
            truth["self_invite"].append(x)
    for k in range(max(1, scale // 5)):  # invite-and-quit: 3-7 throwaway invitees leave in 72 h
        t, g = when(), rng.choice(groups)
        if k % 2 == 0:
            pumper = key()
            ev(t - timedelta(hours=rng.randint(1, 48)), "member.joined", group=g, member=pumper)
        else:
            pumper = older_than(t, 1)
        for _ in range(rng.randint(3, 7)):
            q, at = key(), t + timedelta(minutes=rng.randint(0, 24 * 60))
            ev(at, "member.joined", group=g, member=q, inviter=pumper, via="invite")
            gone = at + timedelta(minutes=rng.randint(30, 70 * 60))
            ev(gone, "member.left", group=g, member=q, via="quit")
            truth["quick_leave"].append(q)
    for k in range(max(1, spec.members // 300)):  # sybil rings, half led by a young account
        t = when()
        g = rng.choice(groups)
        if k % 2 == 0:
            leader = key()
            ev(t - timedelta(hours=rng.randint(24, 120)), "member.joined", group=g, member=leader)
        else:
            leader = older_than(t, 8)
        offsets = sorted(rng.randint(0, 9 * 60) for _ in range(rng.randint(5, 8)))
        for off in offsets:
            s = key()
            ev(
                t + timedelta(seconds=off),
                "member.joined",
                group=g,
                member=s,
                inviter=leader,
                via="invite",
            )
            truth["sybil_burst"].append(s)
    acquisition = _plant_shared_device(
        _Planting(spec, ev, key, when, older_than, sorted_members, groups), base, truth
    )
    out.sort(key=lambda e: (e["ts"], e["id"]))
    merged = list(heapq.merge(base, out, key=lambda e: (e["ts"], e["id"])))
    return merged, {k: sorted(v) for k, v in truth.items()}, acquisition


@dataclass(frozen=True)
class _Planting:
    """What plant_fraud's kinds share: the spec, the event writer and the member pickers."""

    spec: DemoSpec
    ev: Callable[..., None]
    key: Callable[[], str]
    when: Callable[[], datetime]
    older_than: Callable[[datetime, int], str]
    members: list[str]  # existing non-staff members, sorted
    groups: list[str]


def _plant_shared_device(
    pl: _Planting, base: list[dict[str, Any]], truth: dict[str, list[str]]
) -> dict[str, list[dict[str, str]]]:
    """Device farms (>= 4 invitees' leads from one phone), network farms (>= 10 from one network
    within an hour), poster farms (one phone opening an inviter's poster >= 8 times and sending
    2-3 invitees' leads), and innocent controls: families of 2-3 sharing a phone, office
    networks and a shop's kiosk with honest leads spread over days, scattered honest leads and
    poster visits. Device and network names are labels; the loader stores keyed digests."""
    spec = pl.spec
    rng = random.Random(f"fraud-device:{spec.seed}:{spec.key}")
    leads: list[dict[str, str]] = []
    visits: list[dict[str, str]] = []
    first: dict[str, datetime] = {}
    inviter_of: dict[str, str] = {}
    for e in base:
        if e["type"] == "member.joined" and not e.get("is_staff"):
            first.setdefault(e["member"], datetime.fromisoformat(e["ts"]))
            if e.get("inviter"):
                inviter_of.setdefault(e["member"], e["inviter"])
    seq = iter(range(1_000_000))

    def label(kind: str) -> str:
        return f"{kind}-{next(seq)}"

    def lead(member: str, t: datetime, device: str, net: str) -> None:
        leads.append({"member": member, "at": t.isoformat(), "device": device, "net": net})

    def visit(inviter: str, t: datetime, device: str, net: str) -> None:
        visits.append({"inviter": inviter, "at": t.isoformat(), "device": device, "net": net})

    def invitee(inviter: str, t: datetime, group: str) -> str:
        m = pl.key()
        pl.ev(t, "member.joined", group=group, member=m, inviter=inviter, via="invite")
        return m

    def minutes(a: int, b: int) -> timedelta:
        return timedelta(minutes=rng.randint(a, b))

    farms = max(2, spec.members // 600)
    for k in range(farms):  # one phone registering 4-7 accounts for one inviter, >= 12 min apart
        t, g = pl.when(), rng.choice(pl.groups)
        boss = pl.older_than(t, 2) if k % 2 else pl.key()
        if k % 2 == 0:
            pl.ev(t - timedelta(hours=rng.randint(2, 30)), "member.joined", group=g, member=boss)
        device, net = label("dev"), label("net")
        for _ in range(rng.randint(4, 7)):
            t += minutes(12, 90)
            m = invitee(boss, t, g)
            lead(m, t - minutes(1, 5), device, net)
            truth["shared_device"].append(m)
    for _k in range(max(1, spec.members // 1000)):  # 10-14 phones on one network within the hour
        t, g = pl.when(), rng.choice(pl.groups)
        boss, net = pl.older_than(t, 2), label("net")
        for _ in range(rng.randint(10, 14)):
            t += minutes(3, 5)  # never 5 within 10 minutes: not a sybil burst
            m = invitee(boss, t, g)
            lead(m, t - minutes(1, 2), label("dev"), net)
            truth["shared_device"].append(m)
    for _k in range(max(1, spec.members // 1000)):  # one phone scanning a poster 8-14 times
        t, g = pl.when(), rng.choice(pl.groups)
        boss, device, net = pl.older_than(t, 2), label("dev"), label("net")
        for _ in range(rng.randint(8, 14)):
            visit(boss, t + minutes(0, 240), device, net)
        for _ in range(rng.randint(2, 3)):
            t += minutes(15, 60)
            m = invitee(boss, t, g)
            lead(m, t - minutes(1, 5), device, net)
            truth["shared_device"].append(m)
    # Innocent controls: none of these may be flagged.
    for _k in range(
        spec.members // 150
    ):  # a family of 2-3 on one phone, each scanning once or twice
        t, g = pl.when(), rng.choice(pl.groups)
        parent, device, net = pl.older_than(t, 2), label("dev"), label("net")
        for _ in range(rng.randint(2, 3)):
            t += minutes(2, 20)
            for _ in range(rng.randint(1, 2)):
                visit(parent, t - minutes(1, 10), device, net)
            m = invitee(parent, t, g)
            lead(m, t - minutes(0, 1), device, net)
            pl.ev(t + minutes(5, 600), "message.posted", group=g, member=m, text="谢谢邀请")
    joined = [m for m in pl.members if m in first]
    for k in range(max(1, spec.members // 300)):  # an office network, honest leads over days
        t, net = pl.when(), label("net")
        span = timedelta(days=rng.randint(5, 15)).total_seconds()
        for m in rng.sample(joined, rng.randint(12, 30)):
            lead(m, t + timedelta(seconds=int(rng.random() * span)), label("dev"), net)
        if k % 2 == 0:  # a colleague invites 4-6 coworkers, days apart, each from their own phone
            g, boss = rng.choice(pl.groups), pl.older_than(t, 2)
            for _ in range(rng.randint(4, 6)):
                t += timedelta(days=1, minutes=rng.randint(0, 600))
                lead(invitee(boss, t, g), t - minutes(1, 30), label("dev"), net)
    for _k in range(max(1, spec.members // 1000)):  # a shop's kiosk: one tablet, many customers
        t, device, net = pl.when(), label("dev"), label("net")
        seen: set[str] = set()
        for m in rng.sample(joined, min(len(joined), 40)):
            if inviter_of.get(m) in seen:
                continue  # customers of different inviters (or none)
            seen.add(inviter_of.get(m, m))
            lead(m, t + minutes(0, 600), device, net)
            if len(seen) >= 12:
                break
    carriers = [label("net") for _ in range(50)]  # mobile networks many people share
    for m in rng.sample(joined, min(len(joined), spec.members // 10)):
        lead(m, first[m] - minutes(1, 30), label("dev"), rng.choice(carriers))
    for m in rng.sample(joined, min(len(joined), spec.members // 50)):  # honest poster scans
        for _ in range(rng.randint(2, 6)):
            visit(m, pl.when(), label("dev"), rng.choice(carriers))
    return {"leads": leads, "poster_visits": visits}


def fraud_truth_path(events_path: Path) -> Path:
    """The ground truth of a --fraud community, beside its events file."""
    return events_path.with_name(events_path.stem + ".truth.json")


def fraud_acquisition_path(events_path: Path) -> Path:
    """The planted leads and poster visits of a --fraud community, beside its events file."""
    return events_path.with_name(events_path.stem + ".leads.json")


def write_fraud_events(spec: DemoSpec, path: Path) -> int:
    """Write the community with planted fraud to `path`, its ground truth and its planted leads
    beside it (each atomically; the events last); return the line count."""
    events, truth, acquisition = plant_fraud(spec, _Community(spec.resolved()).run())
    path.parent.mkdir(parents=True, exist_ok=True)
    truth_doc = {"kinds": truth, "note": "member keys of the invitees a detector should flag"}
    for target, data in (
        (fraud_truth_path(path), orjson.dumps(truth_doc, option=orjson.OPT_INDENT_2)),
        (fraud_acquisition_path(path), orjson.dumps(acquisition)),
        (path, b"".join(orjson.dumps(e) + b"\n" for e in events)),
    ):
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
    return len(events)
