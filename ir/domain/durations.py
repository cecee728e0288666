"""Durations (`90s`, `30m`, `1h30m`, `3d`, `3wd`) and the clock arithmetic that applies them.

Two kinds of duration exist and never mix:

- elapsed time: seconds, minutes, hours and days, where a day is exactly 24 hours. Instants are UTC,
  so `1d` after 12:00 on the eve of a daylight-saving change falls at 13:00 (or 11:00) local time;
- working days (`3wd`): whole days counted on an official working-day calendar, in the calendar's zone.
  `n` working days after a trigger fall due at the end (the next local midnight) of the n-th working day
  strictly after the trigger's local day; `n` working days before it, at the start of the n-th working
  day strictly before. `0wd` is the end (before: the start) of the trigger's own day if it is a working
  day, else of the nearest working day after (before) it.

The calendars themselves (China's official one with its make-up working days, other countries' public
holidays) are adapters: the domain only knows the WorkingCalendar protocol. See DESIGN.md, Time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Protocol

MAX_DAYS = 3650
"""The longest elapsed duration accepted: 3650 days (about ten years)."""
MAX_SECONDS = MAX_DAYS * 86_400
MAX_WORKING_DAYS = 2600
"""The most working days accepted (about ten years of working days)."""
MAX_DAYS_WITHOUT_WORK = 60
"""A calendar with no working day in this many consecutive days is taken to be broken."""

_UNIT_SECONDS: dict[str, int] = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
_UNIT_ORDER: tuple[str, ...] = ("d", "h", "m", "s")
_DIGITS = frozenset("0123456789")
_MAX_DIGITS = 12  # anything longer is too large whatever its unit; stops int() on hostile input early
_UNITS_HINT = "use s, m, h, d or wd"


class DurationError(ValueError):
    """A duration that cannot be read; `column` is the 0-based offset of the problem in the text.

    A ValueError, so that validation layers which turn ValueError into field errors report it as such.
    """

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.column = column

    def __reduce__(self) -> tuple[type[DurationError], tuple[str, int]]:
        return (DurationError, (self.message, self.column))


class CalendarError(Exception):
    """A working-day calendar cannot answer: a year it does not know, or a calendar that is broken."""


@dataclass(frozen=True, slots=True)
class Duration:
    """Elapsed seconds, or whole working days (`working_days` is not None) — never both.

    `Duration()` is zero elapsed time; `Duration(working_days=0)` is `0wd`, which is not zero: it moves an
    instant to the end of its working day.
    """

    seconds: int = 0
    working_days: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.seconds, bool) or not isinstance(self.seconds, int):
            raise TypeError(f"seconds must be an int, not {type(self.seconds).__name__}")
        if self.working_days is not None and (
            isinstance(self.working_days, bool) or not isinstance(self.working_days, int)
        ):
            raise TypeError(f"working_days must be an int or None, not {type(self.working_days).__name__}")
        if self.seconds < 0 or (self.working_days is not None and self.working_days < 0):
            raise ValueError("a duration is never negative; the sign belongs to the due expression")
        if self.working_days is not None and self.seconds:
            raise ValueError("a duration is either elapsed time or working days, never both")
        if self.seconds > MAX_SECONDS:
            raise ValueError(f"a duration is at most {MAX_DAYS} days")
        if self.working_days is not None and self.working_days > MAX_WORKING_DAYS:
            raise ValueError(f"a duration is at most {MAX_WORKING_DAYS} working days")

    @property
    def is_zero(self) -> bool:
        """True when shifting by this duration leaves an instant unchanged (`0s`; not `0wd`)."""
        return self.working_days is None and self.seconds == 0

    @property
    def is_working(self) -> bool:
        return self.working_days is not None

    def as_timedelta(self) -> timedelta:
        if self.working_days is not None:
            raise ValueError(f"{self} counts working days, which have no fixed length; shift it on a calendar")
        return timedelta(seconds=self.seconds)

    def __str__(self) -> str:
        if self.working_days is not None:
            return f"{self.working_days}wd"
        if self.seconds == 0:
            return "0s"
        rest = self.seconds
        parts: list[str] = []
        for unit in _UNIT_ORDER:
            amount, rest = divmod(rest, _UNIT_SECONDS[unit])
            if amount:
                parts.append(f"{amount}{unit}")
        return "".join(parts)

    @staticmethod
    def of(td: timedelta) -> Duration:
        """The elapsed duration of `td`, in whole seconds (a fraction of a second is dropped)."""
        if td < timedelta(0):
            raise ValueError(f"a duration is never negative: {td}")
        return Duration(seconds=td.days * 86_400 + td.seconds)


def parse_duration(text: str) -> Duration:
    """Read `90s`, `30m`, `2h`, `3d`, `1d12h`, `2h15m30s` or `3wd`; raise DurationError with a column."""
    start = len(text) - len(text.lstrip())
    end = len(text.rstrip())
    if start >= end:
        raise DurationError(f"empty duration; write e.g. 30m, 2h, 3d or 3wd ({_UNITS_HINT})", 0)

    pos = start
    total = 0
    working: int | None = None
    previous: str | None = None  # the last unit read
    while pos < end:
        number_at = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        digits = text[number_at:pos]
        if not digits:
            raise _no_number(text, number_at, first=number_at == start)
        if pos < end and text[pos] in ".,":
            raise DurationError(
                "fractions are not allowed in a duration; use a smaller unit (e.g. 1h30m, not 1.5h)", pos
            )
        unit_at = pos
        while pos < end and text[pos].isalpha():
            pos += 1
        unit = text[unit_at:pos]
        if not unit:
            spaced = " (no space between number and unit)" if pos < end and text[pos].isspace() else ""
            raise DurationError(f"missing unit after '{digits}'{spaced}; {_UNITS_HINT}", pos)
        if unit != "wd" and unit not in _UNIT_SECONDS:
            lower = " (units are lower-case)" if unit.lower() in {"wd", *_UNIT_SECONDS} else ""
            raise DurationError(f"unknown unit '{unit}'; {_UNITS_HINT}{lower}", unit_at)
        if working is not None or (unit == "wd" and previous is not None):
            raise DurationError("working days (wd) cannot be combined with other units", unit_at)
        if unit == "wd":
            if len(digits) > _MAX_DIGITS or int(digits) > MAX_WORKING_DAYS:
                raise DurationError(f"too long: a duration is at most {MAX_WORKING_DAYS} working days", number_at)
            working = int(digits)
        else:
            if previous is not None:
                if unit == previous:
                    raise DurationError(f"'{unit}' given twice; write each unit once, e.g. 1h30m", unit_at)
                if _UNIT_ORDER.index(unit) < _UNIT_ORDER.index(previous):
                    raise DurationError(
                        f"'{unit}' after '{previous}': write units from largest to smallest (d, h, m, s)",
                        unit_at,
                    )
            if len(digits) > _MAX_DIGITS or total + int(digits) * _UNIT_SECONDS[unit] > MAX_SECONDS:
                raise DurationError(f"too long: a duration is at most {MAX_DAYS} days", number_at)
            total += int(digits) * _UNIT_SECONDS[unit]
        previous = unit
    if working is not None:
        return Duration(working_days=working)
    return Duration(seconds=total)


def _no_number(text: str, at: int, *, first: bool) -> DurationError:
    char = text[at]
    if char in "+-":
        if first:
            return DurationError("a duration has no sign; write it in the due expression (e.g. detection - 2h)", at)
        return DurationError(f"unexpected '{char}' in a duration; write e.g. 1h30m", at)
    if char.isspace():
        return DurationError("unexpected space in a duration; write the parts together, e.g. 1h30m", at)
    if char.isalpha():
        unit_end = at
        while unit_end < len(text) and text[unit_end].isalpha():
            unit_end += 1
        return DurationError(f"missing number before '{text[at:unit_end]}'", at)
    return DurationError(f"unexpected '{char}'; expected a number (e.g. 30m, 2h, 3d or 3wd)", at)


class WorkingCalendar(Protocol):
    """An official working-day calendar: which local days are working days, and in which zone."""

    @property
    def zone(self) -> tzinfo: ...

    def is_working_day(self, day: date) -> bool:
        """May raise CalendarError for a year the calendar does not know."""
        ...


def shift(
    instant: datetime,
    duration: Duration,
    *,
    negative: bool = False,
    calendar: WorkingCalendar | None = None,
) -> datetime:
    """`instant` ± `duration`, as a timezone-aware UTC instant (working days need `calendar`)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"instant {instant.isoformat()} has no time zone; instants are timezone-aware")
    if duration.working_days is None:
        delta = duration.as_timedelta()
        utc = instant.astimezone(UTC)
        return utc - delta if negative else utc + delta
    if calendar is None:
        raise ValueError(f"'{duration}' counts working days: a working-day calendar is needed to shift by it")
    if duration.working_days > MAX_WORKING_DAYS:
        raise ValueError(f"a duration is at most {MAX_WORKING_DAYS} working days")
    zone = calendar.zone
    step = -1 if negative else 1
    day = instant.astimezone(zone).date()
    if duration.working_days == 0:
        if not calendar.is_working_day(day):
            day = _next_working_day(calendar, day, step)
    else:
        for _ in range(duration.working_days):
            day = _next_working_day(calendar, day, step)
    boundary = day if negative else day + timedelta(days=1)
    return _start_of_day(boundary, zone)


def _next_working_day(calendar: WorkingCalendar, day: date, step: int) -> date:
    """The nearest working day strictly after (step 1) or before (step -1) `day`."""
    for offset in range(1, MAX_DAYS_WITHOUT_WORK + 1):
        candidate = day + timedelta(days=offset * step)
        if calendar.is_working_day(candidate):
            return candidate
    direction = "after" if step > 0 else "before"
    raise CalendarError(
        f"the working-day calendar has no working day in the {MAX_DAYS_WITHOUT_WORK} days {direction} {day.isoformat()}"
    )


def _start_of_day(day: date, zone: tzinfo) -> datetime:
    """The first instant of local `day` in `zone`, in UTC.

    Where midnight does not exist (a daylight-saving gap at 00:00), the wall time is read with the offset in
    force before the gap, which is exactly the instant the day starts.
    """
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
