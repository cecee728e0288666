"""Official working-day calendars for `wd` durations (DESIGN.md, Time).

China's comes from `chinesecalendar`, which knows the State Council's yearly schedule, make-up working days
(调休) included; every other country's from `holidays` (its public holidays, its weekend, and the weekend
working days it knows of). Both libraries are imported only when a calendar is first used, so commands that
never count working days never pay for them.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from datetime import date, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ir.domain.durations import CalendarError, WorkingCalendar

DEFAULT_ZONES: dict[str, str] = {
    "CN": "Asia/Shanghai",
    "HK": "Asia/Hong_Kong",
    "MO": "Asia/Macau",
    "TW": "Asia/Taipei",
    "JP": "Asia/Tokyo",
    "KR": "Asia/Seoul",
    "SG": "Asia/Singapore",
    "IN": "Asia/Kolkata",
    "US": "America/New_York",
    "GB": "Europe/London",
    "IE": "Europe/Dublin",
    "DE": "Europe/Berlin",
    "FR": "Europe/Paris",
    "IT": "Europe/Rome",
    "NL": "Europe/Amsterdam",
    "BE": "Europe/Brussels",
    "CH": "Europe/Zurich",
    "AT": "Europe/Vienna",
}
"""The zone a country's calendar counts days in when none is given: its capital's, where that is sensible
(the country has one zone, or the capital's is the one its official business runs on)."""


def known_calendar(country: str) -> bool:
    """Whether `country` (an upper-case ISO 3166-1 alpha-2 code) has an official working-day calendar."""
    if country == "CN":
        return True
    return len(country) == 2 and country.isascii() and country.isupper() and country in _holiday_countries()


def official_calendar(country: str = "CN", zone: str | None = None) -> WorkingCalendar:
    """The official working-day calendar of `country`, counting days in `zone` (an IANA zone name).

    Raises ValueError for an unknown country code, an unknown zone, or a country whose zone must be given.
    """
    if not known_calendar(country):
        hint = f" (country codes are upper-case: '{country.upper()}')" if known_calendar(country.upper()) else ""
        raise ValueError(f"unknown country code '{country}' for a holiday calendar{hint}")
    if zone is None:
        zone = DEFAULT_ZONES.get(country)
        if zone is None:
            raise ValueError(
                f"the {country} holiday calendar needs a time zone to count days in "
                f"(an IANA name such as Europe/Madrid)"
            )
    tz = _zone(zone)
    if country == "CN":
        return ChinaCalendar(zone=tz)
    return HolidaysCalendar(country=country, zone=tz)


@dataclass(frozen=True, slots=True)
class ChinaCalendar:
    """China's official calendar: weekends and public holidays off, make-up working days (调休) on."""

    zone: tzinfo

    def is_working_day(self, day: date) -> bool:
        import chinese_calendar

        first, last = china_years()
        if not first <= day.year <= last:
            if day.year > last:
                why = f"{day.year} is not yet published in the installed chinesecalendar"
            else:
                why = f"{day.year} is not covered by the installed chinesecalendar"
            raise CalendarError(f"China's official holiday calendar is known only for {first}–{last}; {why}")
        return bool(chinese_calendar.is_workday(day))


@functools.cache
def china_years() -> tuple[int, int]:
    """The first and last years the installed chinesecalendar knows (it checks dates against its holidays)."""
    from chinese_calendar import constants

    years = [d.year for d in constants.holidays]
    return min(years), max(years)


@dataclass(frozen=True, slots=True)
class HolidaysCalendar:
    """A country's public holidays from `holidays`: its weekend and public holidays off.

    Holidays are computed a year at a time and kept (calendars are asked day by day). Each year is computed
    together with its neighbours, so a holiday observed or a working day moved across New Year is known.
    """

    country: str
    zone: tzinfo
    _years: dict[int, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def is_working_day(self, day: date) -> bool:
        return bool(self._holidays(day.year).is_working_day(day))

    def _holidays(self, year: int) -> Any:
        found = self._years.get(year)
        if found is not None:
            return found
        import holidays

        with self._lock:
            found = self._years.get(year)
            if found is None:
                found = holidays.country_holidays(self.country, years=(year - 1, year, year + 1), expand=False)
                first, last = int(found.start_year), int(found.end_year)
                if not first <= year <= last:
                    raise CalendarError(
                        f"no official holiday calendar for {self.country} in {year}: the installed holidays "
                        f"package knows {first}–{last}"
                    )
                self._years[year] = found
        return found


@functools.cache
def _holiday_countries() -> frozenset[str]:
    """The ISO 3166-1 alpha-2 codes the installed holidays package has calendars for."""
    import holidays

    return frozenset(code for code in holidays.list_supported_countries() if len(code) == 2)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone '{name}'; use an IANA name such as Asia/Shanghai") from error
