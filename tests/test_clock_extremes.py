"""Instants near the ends of the calendar (years 1 and 9999) map to days without overflowing."""

from __future__ import annotations

from datetime import UTC, datetime

from quanzi.kit.clock import LocalCalendar, day_date, to_us


def test_days_at_the_ends_of_the_calendar() -> None:
    cal = LocalCalendar("Asia/Shanghai")
    last = to_us(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))
    first = to_us(datetime(1, 1, 1, 0, 0, 0, tzinfo=UTC))
    # The 6-hour block around these instants reaches past datetime's range; no OverflowError.
    assert day_date(cal.day_of(last - 12 * 3_600_000_000)).year == 9999
    # Local time there is already in year 10000: still a day number (+08:00), not a crash.
    assert cal.day_of(last) == (last + 8 * 3_600_000_000) // 86_400_000_000
    assert day_date(cal.day_of(first + 86_400_000_000)).year == 1
