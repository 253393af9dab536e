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
EPOCH_DAY = date(1970, 1, 1).toordinal()


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
        # The offset is looked up once per UTC quarter hour: every zone changes offset on one.
        quarter = us // QUARTER_US
        off = self._offset_cache.get(quarter)
        if off is None:
            dt = from_us(quarter * QUARTER_US)
            off = int(dt.astimezone(self.tz).utcoffset().total_seconds()) * US  # type: ignore[union-attr]
            if len(self._offset_cache) > 200_000:
                self._offset_cache.clear()
            self._offset_cache[quarter] = off
        return (us + off) // DAY_US

    def day_start_us(self, day: int) -> int:
        """The UTC instant at which local day `day` begins."""
        d = day_date(day)
        return to_us(datetime(d.year, d.month, d.day, tzinfo=self.tz))

    def today(self) -> int:
        return self.day_of(now_us())
