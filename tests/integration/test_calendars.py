"""Official working-day calendars, against the real chinesecalendar and holidays packages.

Every date asserted here was checked against the installed libraries and the published schedules
(State Council notice on the 2026 holidays; US federal holidays; German public holidays).
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from ir.adapters.calendars import known_calendar, official_calendar
from ir.domain.durations import CalendarError, WorkingCalendar


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def working(calendar: WorkingCalendar, first: date, last: date) -> list[date]:
    return [day for day in days(first, last) if calendar.is_working_day(day)]


# --- China ---------------------------------------------------------------------------------------------


def test_china_defaults_to_shanghai_time() -> None:
    assert official_calendar().zone == ZoneInfo("Asia/Shanghai")
    assert official_calendar("CN", "Asia/Urumqi").zone == ZoneInfo("Asia/Urumqi")


def test_china_national_day_2026_with_its_make_up_days() -> None:
    china = official_calendar("CN")
    # Mid-autumn festival 25–27 September, National Day 1–7 October;
    # worked instead: Sunday 20 September and Saturday 10 October.
    assert working(china, date(2026, 9, 19), date(2026, 10, 12)) == [
        date(2026, 9, 20),
        date(2026, 9, 21),
        date(2026, 9, 22),
        date(2026, 9, 23),
        date(2026, 9, 24),
        date(2026, 9, 28),
        date(2026, 9, 29),
        date(2026, 9, 30),
        date(2026, 10, 8),
        date(2026, 10, 9),
        date(2026, 10, 10),
        date(2026, 10, 12),
    ]


def test_china_spring_festival_2026_with_its_make_up_days() -> None:
    china = official_calendar("CN")
    # Spring Festival 15–23 February; worked instead: Saturdays 14 and 28 February.
    assert working(china, date(2026, 2, 13), date(2026, 3, 2)) == [
        date(2026, 2, 13),
        date(2026, 2, 14),
        date(2026, 2, 24),
        date(2026, 2, 25),
        date(2026, 2, 26),
        date(2026, 2, 27),
        date(2026, 2, 28),
        date(2026, 3, 2),
    ]


def test_china_ordinary_weekend() -> None:
    china = official_calendar("CN")
    assert china.is_working_day(date(2026, 3, 6))  # Friday
    assert not china.is_working_day(date(2026, 3, 7))  # Saturday
    assert not china.is_working_day(date(2026, 3, 8))  # Sunday


def test_china_years_not_yet_published() -> None:
    china = official_calendar("CN")
    assert china.is_working_day(date(2026, 12, 31))
    with pytest.raises(CalendarError) as raised:
        china.is_working_day(date(2027, 1, 4))
    assert str(raised.value) == (
        "China's official holiday calendar is known only for 2004–2026; "
        "2027 is not yet published in the installed chinesecalendar"
    )
    with pytest.raises(CalendarError, match="2003 is not covered"):
        china.is_working_day(date(2003, 12, 31))


# --- other countries -----------------------------------------------------------------------------------


def test_us_federal_holidays_2026() -> None:
    us = official_calendar("US")
    assert us.zone == ZoneInfo("America/New_York")
    assert not us.is_working_day(date(2026, 11, 26))  # Thanksgiving
    assert us.is_working_day(date(2026, 11, 27))  # the Friday after is not a federal holiday
    assert not us.is_working_day(date(2026, 7, 3))  # Independence Day (Saturday 4 July) observed
    assert not us.is_working_day(date(2026, 7, 4))
    assert us.is_working_day(date(2026, 7, 6))
    assert not us.is_working_day(date(2026, 12, 25))  # Christmas, a Friday


def test_a_holiday_observed_in_the_previous_year() -> None:
    # New Year's Day 2022 was a Saturday: it was observed on Friday 31 December 2021.
    assert not official_calendar("US").is_working_day(date(2021, 12, 31))


def test_germany_unity_day_on_a_saturday_is_still_not_worked() -> None:
    de = official_calendar("DE")
    assert de.zone == ZoneInfo("Europe/Berlin")
    assert de.is_working_day(date(2026, 10, 2))
    assert not de.is_working_day(date(2026, 10, 3))  # Tag der Deutschen Einheit, a Saturday
    assert de.is_working_day(date(2026, 10, 5))  # no substitute day in Germany
    assert not de.is_working_day(date(2026, 4, 3))  # Good Friday
    assert not de.is_working_day(date(2026, 4, 6))  # Easter Monday


def test_a_country_with_a_friday_saturday_weekend() -> None:
    israel = official_calendar("IL", "Asia/Jerusalem")
    assert not israel.is_working_day(date(2026, 1, 2))  # Friday
    assert not israel.is_working_day(date(2026, 1, 3))  # Saturday
    assert israel.is_working_day(date(2026, 1, 4))  # Sunday


@pytest.mark.parametrize(
    ("country", "zone"),
    [
        ("FR", "Europe/Paris"),
        ("GB", "Europe/London"),
        ("JP", "Asia/Tokyo"),
        ("HK", "Asia/Hong_Kong"),
    ],
)
def test_default_zones(country: str, zone: str) -> None:
    assert official_calendar(country).zone == ZoneInfo(zone)


def test_a_country_spanning_zones_needs_one_given() -> None:
    with pytest.raises(ValueError, match="the ES holiday calendar needs a time zone"):
        official_calendar("ES")
    assert official_calendar("ES", "Europe/Madrid").zone == ZoneInfo("Europe/Madrid")


def test_years_the_holidays_package_does_not_cover() -> None:
    with pytest.raises(CalendarError, match="no official holiday calendar for US in 2101"):
        official_calendar("US").is_working_day(date(2101, 1, 3))


def test_holidays_are_computed_once_per_year(monkeypatch: pytest.MonkeyPatch) -> None:
    import holidays

    built: list[object] = []
    real = holidays.country_holidays

    def counting(*args: object, **kwargs: object) -> object:
        built.append(kwargs.get("years"))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(holidays, "country_holidays", counting)
    fr = official_calendar("FR")
    assert len(working(fr, date(2026, 1, 1), date(2026, 12, 31))) == 252  # 261 weekdays, 9 of them holidays
    assert len(built) == 1


# --- mistakes ------------------------------------------------------------------------------------------


def test_unknown_country() -> None:
    with pytest.raises(ValueError) as raised:
        official_calendar("XX")
    assert str(raised.value) == "unknown country code 'XX' for a holiday calendar"
    with pytest.raises(ValueError, match=r"country codes are upper-case: 'US'"):
        official_calendar("us")


def test_unknown_zone() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Asia/Atlantis'"):
        official_calendar("CN", "Asia/Atlantis")


@pytest.mark.parametrize(
    ("country", "known"),
    [
        ("CN", True),
        ("US", True),
        ("DE", True),
        ("IL", True),
        ("XX", False),
        ("cn", False),
        ("USA", False),
        ("", False),
    ],
)
def test_known_calendar(country: str, known: bool) -> None:
    assert known_calendar(country) is known


def test_the_libraries_load_only_when_a_calendar_is_used() -> None:
    probe = (
        "import sys\n"
        "from datetime import date\n"
        "from ir.adapters.calendars import official_calendar\n"
        "loaded = lambda: sorted({'holidays', 'chinese_calendar'} & set(sys.modules))\n"
        "print(loaded())\n"
        "china = official_calendar('CN')\n"
        "print(loaded())\n"
        "china.is_working_day(date(2026, 10, 8))\n"
        "print(loaded())\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "[]", "['chinese_calendar']"]
