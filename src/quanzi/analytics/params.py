"""Report parameters: parsed from strings (CLI flags, query strings) with clear errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from quanzi.core.events.schemas import parse_ts
from quanzi.kit.clock import LocalCalendar, day_date, day_number, now_us
from quanzi.kit.errors import InvalidParameter

DEFAULT_HOLD_HOURS = 72
DEFAULT_WEEKS = 8
DEFAULT_WINDOW_DAYS = 30
MAX_WINDOW_DAYS = 3 * 366
MAX_WEEKS = 104
MAX_HOLD_HOURS = 24 * 366
# Report days: wide enough for any community, narrow enough that windows, weeks and the
# 30-day funnel stay inside the calendar.
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(9998, 12, 31)
PARAM_NAMES = ("date", "from", "to", "hold_hours", "as_of", "kind", "weeks")


@dataclass(frozen=True)
class ReportParams:
    """Resolved parameters; days are local day numbers, `as_of_us` a UTC instant."""

    day: int
    from_day: int
    to_day: int
    hold_hours: int
    as_of_us: int
    kind: str
    weeks: int

    def public(self, *names: str) -> dict[str, Any]:
        return {n: getattr(self, n) for n in names}


def _day(name: str, value: str) -> int:
    try:
        d = date.fromisoformat(value)
        if len(value) != 10:
            raise ValueError
    except ValueError:
        raise InvalidParameter(f"{name}: {value!r} is not a date (use YYYY-MM-DD)") from None
    if not FIRST_DAY <= d <= LAST_DAY:
        raise InvalidParameter(f"{name}: {value} is outside {FIRST_DAY}..{LAST_DAY}")
    return day_number(d)


def _int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise InvalidParameter(f"{name} must be a whole number")
    if isinstance(value, int):
        n = value
    else:
        text = str(value).strip()
        if not text.lstrip("-").isdigit() or len(text) > 12:
            raise InvalidParameter(f"{name}: {value!r} is not a whole number")
        n = int(text)
    if not lo <= n <= hi:
        raise InvalidParameter(f"{name} must be between {lo} and {hi} (got {n})")
    return n


def parse_params(raw: dict[str, Any], calendar: LocalCalendar) -> ReportParams:
    """Resolve raw parameters (None/"" = default): date = yesterday; to = yesterday;
    from = to - 29 days; hold_hours 72; as_of now; kind activity; weeks 8."""
    unknown = sorted(k for k in raw if k not in PARAM_NAMES and raw[k] not in (None, ""))
    if unknown:
        raise InvalidParameter(
            f"unknown parameter {unknown[0]!r} (known: {', '.join(PARAM_NAMES)})"
        )
    vals = {k: (None if raw.get(k) in (None, "") else raw.get(k)) for k in PARAM_NAMES}
    yesterday = calendar.today() - 1
    day = _day("date", str(vals["date"])) if vals["date"] is not None else yesterday
    to_day = _day("to", str(vals["to"])) if vals["to"] is not None else yesterday
    from_day = (
        _day("from", str(vals["from"]))
        if vals["from"] is not None
        else to_day - (DEFAULT_WINDOW_DAYS - 1)
    )
    if from_day > to_day:
        raise InvalidParameter(
            f"from ({day_date(from_day)}) must not be after to ({day_date(to_day)})"
        )
    if to_day - from_day + 1 > MAX_WINDOW_DAYS:
        raise InvalidParameter(f"the window from..to is longer than {MAX_WINDOW_DAYS} days")
    hold = (
        _int("hold_hours", vals["hold_hours"], 0, MAX_HOLD_HOURS)
        if vals["hold_hours"] is not None
        else DEFAULT_HOLD_HOURS
    )
    if vals["as_of"] is None:
        as_of = now_us()
    else:
        text = str(vals["as_of"])
        try:
            as_of = parse_ts(int(text) if text.lstrip("-").isdigit() else text)
        except ValueError:
            if len(text) == 10:
                # A bare date means the start of that day in the workspace's time zone.
                as_of = calendar.day_start_us(_day("as_of", text))
            else:
                raise InvalidParameter(
                    f"as_of: {text!r} is not a time (use 2026-01-08T00:00:00+08:00, a date or Unix seconds)"
                ) from None
    kind = str(vals["kind"]) if vals["kind"] is not None else "activity"
    if kind not in ("activity", "membership"):
        raise InvalidParameter(f"kind must be activity or membership (got {kind!r})")
    weeks = (
        _int("weeks", vals["weeks"], 1, MAX_WEEKS) if vals["weeks"] is not None else DEFAULT_WEEKS
    )
    return ReportParams(day, from_day, to_day, hold, as_of, kind, weeks)


def iso(day: int) -> str:
    return day_date(day).isoformat()
