"""Instants as integer UTC microseconds, local days as integer day numbers, ISO weeks."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

US = 1_000_000
DAY_US = 86_400 * US
HOUR_US = 3_600 * US
QUARTER_US = 900 * US
BLOCK_US = 6 * HOUR_US
EPOCH_DAY = date(1970, 1, 1).toordinal()
# The instants datetime can hold, a day inside years 1..9999 (room for any UTC offset).
_FIRST_US = (date(1, 1, 2).toordinal() - EPOCH_DAY) * DAY_US
_LAST_US = (date(9999, 12, 30).toordinal() - EPOCH_DAY) * DAY_US


def now_us() -> int:
    return time.time_ns() // 1000


def to_us(dt: datetime) -> int:
    """An aware datetime as UTC microseconds since the epoch (exact, no float)."""
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * US + delta.microseconds


def from_us(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def day_number(d: date) -> int:
    return d.toordinal() - EPOCH_DAY


def day_date(n: int) -> date:
    return date.fromordinal(n + EPOCH_DAY)


def week_start(day: int) -> int:
    """The Monday (day number) of the ISO week holding `day` (1970-01-01 was a Thursday)."""
    return day - (day + 3) % 7  # Python % is never negative, unlike SQL's


def week_label(monday: int) -> str:
    y, w, _ = day_date(monday).isocalendar()
    return f"{y}-W{w:02d}"


class LocalCalendar:
    """Days and weeks in one workspace's time zone."""

    def __init__(self, tz_name: str) -> None:
        self.tz = zone(tz_name)
        self._offset_cache: dict[int, int] = {}

    def day_of(self, us: int) -> int:
        """The local day number of a UTC instant."""
        # Offsets are cached per 6-hour UTC block when the offset is the same at both of its
        # ends (no transition inside: zones change at most twice a year), else per quarter
        # hour (every zone changes offset on a quarter hour).
        block = us // BLOCK_US
        off = self._offset_cache.get(block)
        if off is None:
            a, b = self._offset_at(block * BLOCK_US), self._offset_at((block + 1) * BLOCK_US - 1)
            off = a if a == b else -1
            if len(self._offset_cache) > 100_000:
                self._offset_cache.clear()
            self._offset_cache[block] = off
        if off == -1:
            off = self._offset_at(us // QUARTER_US * QUARTER_US)
        return (us + off) // DAY_US

    def _offset_at(self, us: int) -> int:
        # A block's edge may fall outside datetime's years 1..9999 for instants near them;
        # the offset there is the zone's first or last one anyway.
        us = min(max(us, _FIRST_US), _LAST_US)
        return int(from_us(us).astimezone(self.tz).utcoffset().total_seconds()) * US  # type: ignore[union-attr]

    def day_start_us(self, day: int) -> int:
        """The UTC instant at which local day `day` begins."""
        d = day_date(day)
        return to_us(datetime(d.year, d.month, d.day, tzinfo=self.tz))

    def today(self) -> int:
        return self.day_of(now_us())
