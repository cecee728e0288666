"""Durations: how they are written, read back and applied to instants (DESIGN.md, Time)."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ir.adapters.calendars import official_calendar
from ir.domain.durations import (
    MAX_SECONDS,
    MAX_WORKING_DAYS,
    CalendarError,
    Duration,
    DurationError,
    WorkingCalendar,
    parse_duration,
    shift,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")

durations = st.one_of(
    st.builds(Duration, seconds=st.integers(min_value=0, max_value=MAX_SECONDS)),
    st.builds(Duration, working_days=st.integers(min_value=0, max_value=MAX_WORKING_DAYS)),
)


# --- reading and writing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", Duration(seconds=90)),
        ("30m", Duration(seconds=1800)),
        ("2h", Duration(seconds=7200)),
        ("3d", Duration(seconds=3 * 86400)),
        ("1d12h", Duration(seconds=36 * 3600)),
        ("1h30m", Duration(seconds=5400)),
        ("2h15m30s", Duration(seconds=2 * 3600 + 15 * 60 + 30)),
        ("1d30s", Duration(seconds=86430)),
        ("0m", Duration()),
        ("3wd", Duration(working_days=3)),
        ("0wd", Duration(working_days=0)),
        ("  1h30m\t", Duration(seconds=5400)),
        ("\u30002h\u3000", Duration(seconds=7200)),  # ideographic spaces, as typed on a Chinese keyboard
        ("3650d", Duration(seconds=MAX_SECONDS)),
        ("2600wd", Duration(working_days=2600)),
    ],
)
def test_parse_reads_every_form(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (Duration(seconds=90), "1m30s"),
        (Duration(seconds=3600), "1h"),
        (Duration(seconds=86400 + 2 * 3600 + 30 * 60), "1d2h30m"),
        (Duration(seconds=86401), "1d1s"),
        (Duration(), "0s"),
        (Duration(working_days=3), "3wd"),
        (Duration(working_days=0), "0wd"),
    ],
)
def test_str_is_canonical(duration: Duration, text: str) -> None:
    assert str(duration) == text


@given(durations)
def test_str_then_parse_gives_the_same_duration(duration: Duration) -> None:
    assert parse_duration(str(duration)) == duration


@given(st.text(max_size=12))
def test_parse_either_reads_or_says_where_the_problem_is(text: str) -> None:
    try:
        parse_duration(text)
    except DurationError as error:
        assert 0 <= error.column <= len(text)
        assert error.message


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("", 0, "empty duration"),
        ("   ", 0, "empty duration"),
        ("h", 0, "missing number before 'h'"),
        ("h30m", 0, "missing number before 'h'"),
        ("1hm", 1, "unknown unit 'hm'"),
        ("wd", 0, "missing number before 'wd'"),
        ("30", 2, "missing unit after '30'"),
        ("1h30", 4, "missing unit after '30'"),
        ("30 m", 2, "no space between number and unit"),
        ("5x", 1, "unknown unit 'x'; use s, m, h, d or wd"),
        ("2H", 1, "units are lower-case"),
        ("1h5min", 3, "unknown unit 'min'"),
        ("3days", 1, "unknown unit 'days'"),
        ("30m1h", 4, "'h' after 'm'"),
        ("1s1d", 3, "largest to smallest"),
        ("1h2h", 3, "'h' given twice"),
        ("1d3wd", 3, "working days (wd) cannot be combined"),
        ("3wd1h", 4, "working days (wd) cannot be combined"),
        ("3wd2wd", 4, "working days (wd) cannot be combined"),
        ("-2h", 0, "no sign"),
        ("  +2h", 2, "no sign"),
        ("1h-30m", 2, "unexpected '-'"),
        ("1h 30m", 2, "unexpected space"),
        ("1.5h", 1, "fractions are not allowed"),
        ("1,5h", 1, "fractions are not allowed"),
        ("3651d", 0, "at most 3650 days"),
        ("3650d1s", 5, "at most 3650 days"),
        ("87601h", 0, "at most 3650 days"),
        ("2601wd", 0, "at most 2600 working days"),
        ("9" * 5000 + "s", 0, "at most 3650 days"),
        ("#3h", 0, "expected a number"),
    ],
)
def test_parse_errors_say_what_and_where(text: str, column: int, words: str) -> None:
    with pytest.raises(DurationError) as raised:
        parse_duration(text)
    assert words in raised.value.message
    assert raised.value.column == column
    assert str(raised.value) == raised.value.message


def test_duration_error_is_a_value_error_that_survives_pickling() -> None:
    error = DurationError("missing unit after '30'; use s, m, h, d or wd", 2)
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))  # our own object, round-tripped
    assert (copy.message, copy.column) == (error.message, error.column)


# --- the value ---------------------------------------------------------------------------------------------


def test_elapsed_and_working_durations() -> None:
    assert Duration().is_zero
    assert parse_duration("0m").is_zero
    assert not Duration(working_days=0).is_zero  # 0wd moves an instant to the end of its working day
    assert Duration(working_days=0).is_working
    assert not Duration(seconds=5).is_working
    assert Duration(seconds=5400).as_timedelta() == timedelta(hours=1, minutes=30)
    with pytest.raises(ValueError, match="working days"):
        Duration(working_days=3).as_timedelta()


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"seconds": -1}, "never negative"),
        ({"working_days": -1}, "never negative"),
        ({"seconds": 60, "working_days": 1}, "never both"),
        ({"seconds": 60, "working_days": 0}, "never both"),
        ({"seconds": MAX_SECONDS + 1}, "at most 3650 days"),
        ({"working_days": MAX_WORKING_DAYS + 1}, "at most 2600 working days"),
    ],
)
def test_a_duration_cannot_be_built_wrong(kwargs: dict[str, int], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Duration(**kwargs)


def test_of_timedelta() -> None:
    assert Duration.of(timedelta(hours=1, minutes=30)) == parse_duration("1h30m")
    assert Duration.of(timedelta(days=2, seconds=5, microseconds=999_999)) == Duration(seconds=2 * 86400 + 5)
    assert Duration.of(timedelta(0)) == Duration()
    with pytest.raises(ValueError, match="never negative"):
        Duration.of(timedelta(seconds=-1))


# --- elapsed time ------------------------------------------------------------------------------------------


def test_shift_needs_a_timezone_aware_instant() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        shift(datetime(2026, 3, 1, 12), Duration(seconds=60))  # the mistake under test


def test_elapsed_shift_returns_utc() -> None:
    result = shift(datetime(2026, 5, 1, 12, tzinfo=SHANGHAI), parse_duration("1h30m"))
    assert result == datetime(2026, 5, 1, 5, 30, tzinfo=UTC)
    assert result.utcoffset() == timedelta(0)
    assert shift(result, parse_duration("1h30m"), negative=True) == datetime(2026, 5, 1, 4, tzinfo=UTC)
    assert shift(result, Duration()) == result


def test_a_day_is_24_hours_across_the_eu_spring_change() -> None:
    before = datetime(2026, 3, 28, 12, tzinfo=BERLIN)  # CET, UTC+1; clocks go forward on 29 March
    after = shift(before, parse_duration("1d"))
    assert after - before == timedelta(hours=24)
    assert after.astimezone(BERLIN) == datetime(2026, 3, 29, 13, tzinfo=BERLIN)  # 13:00 CEST
    assert shift(after, parse_duration("1d"), negative=True).astimezone(BERLIN).hour == 12


def test_a_day_is_24_hours_across_the_us_spring_change() -> None:
    before = datetime(2026, 3, 7, 12, tzinfo=NEW_YORK)  # EST; clocks go forward on 8 March
    after = shift(before, parse_duration("1d"))
    assert after == datetime(2026, 3, 8, 17, tzinfo=UTC)
    assert after.astimezone(NEW_YORK).replace(tzinfo=None) == datetime(2026, 3, 8, 13)


def test_a_day_is_24_hours_across_the_us_autumn_change() -> None:
    before = datetime(2026, 10, 31, 12, tzinfo=NEW_YORK)  # EDT; clocks go back on 1 November
    after = shift(before, parse_duration("1d"))
    assert after == datetime(2026, 11, 1, 16, tzinfo=UTC)
    assert after.astimezone(NEW_YORK).replace(tzinfo=None) == datetime(2026, 11, 1, 11)
    # and an hour-based deadline over the repeated hour is still the elapsed time
    night = datetime(2026, 11, 1, 0, 30, tzinfo=NEW_YORK)
    assert shift(night, parse_duration("2h")).astimezone(NEW_YORK).replace(tzinfo=None) == datetime(2026, 11, 1, 1, 30)


@given(
    st.datetimes(
        min_value=datetime(2004, 1, 1),  # hypothesis bounds are naive
        max_value=datetime(2030, 1, 1),
        timezones=st.just(BERLIN),
    ),
    st.integers(min_value=0, max_value=MAX_SECONDS),
)
def test_elapsed_shift_there_and_back(instant: datetime, seconds: int) -> None:
    there = shift(instant, Duration(seconds=seconds))
    assert there - instant == timedelta(seconds=seconds)
    # compared in UTC: a wall time inside a daylight-saving gap never equals an instant in another zone
    assert shift(there, Duration(seconds=seconds), negative=True) == instant.astimezone(UTC)


# --- working days on a fake calendar ---------------------------------------------------------------------


@dataclass
class FakeCalendar:
    """Monday to Friday, minus `holidays`, plus `workdays`; remembers what it was asked."""

    zone: tzinfo = timezone(timedelta(hours=8))
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    asked: list[date] = field(default_factory=list)

    def is_working_day(self, day: date) -> bool:
        self.asked.append(day)
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays


class NeverWorks:
    zone: tzinfo = UTC

    def is_working_day(self, day: date) -> bool:
        return False


class KnowsOnly2026:
    zone: tzinfo = UTC

    def is_working_day(self, day: date) -> bool:
        if day.year != 2026:
            raise CalendarError(f"no official calendar in {day.year}")
        return day.weekday() < 5


PLUS8 = timezone(timedelta(hours=8))


def local(when: datetime, zone: tzinfo = PLUS8) -> datetime:
    return when.astimezone(zone)


def test_the_fakes_are_working_calendars() -> None:
    calendars: list[WorkingCalendar] = [FakeCalendar(), NeverWorks(), KnowsOnly2026()]
    assert len(calendars) == 3


def test_working_days_skip_the_weekend() -> None:
    friday = datetime(2026, 5, 8, 15, tzinfo=PLUS8)
    calendar = FakeCalendar()
    assert local(shift(friday, parse_duration("1wd"), calendar=calendar)) == datetime(2026, 5, 12, tzinfo=PLUS8)
    assert local(shift(friday, parse_duration("3wd"), calendar=calendar)) == datetime(2026, 5, 14, tzinfo=PLUS8)
    monday = datetime(2026, 5, 11, 9, tzinfo=PLUS8)
    before = shift(monday, parse_duration("1wd"), negative=True, calendar=calendar)
    assert local(before) == datetime(2026, 5, 8, tzinfo=PLUS8)  # the start of Friday


def test_working_days_count_on_the_local_day_not_the_utc_day() -> None:
    # 17:00 UTC on Wednesday is 01:00 on Thursday at UTC+8: Thursday is the trigger's day.
    instant = datetime(2026, 5, 6, 17, tzinfo=UTC)
    result = shift(instant, parse_duration("1wd"), calendar=FakeCalendar())
    assert result == datetime(2026, 5, 8, 16, tzinfo=UTC)  # the end of Friday at UTC+8
    assert result.tzinfo is UTC


def test_zero_working_days_is_the_end_of_the_working_day() -> None:
    calendar = FakeCalendar()
    tuesday = datetime(2026, 5, 5, 10, tzinfo=PLUS8)
    saturday = datetime(2026, 5, 9, 10, tzinfo=PLUS8)
    zero = parse_duration("0wd")
    assert local(shift(tuesday, zero, calendar=calendar)) == datetime(2026, 5, 6, tzinfo=PLUS8)
    assert local(shift(saturday, zero, calendar=calendar)) == datetime(2026, 5, 12, tzinfo=PLUS8)
    assert local(shift(tuesday, zero, negative=True, calendar=calendar)) == datetime(2026, 5, 5, tzinfo=PLUS8)
    assert local(shift(saturday, zero, negative=True, calendar=calendar)) == datetime(2026, 5, 8, tzinfo=PLUS8)


def test_holidays_and_make_up_working_days_on_a_fake_calendar() -> None:
    calendar = FakeCalendar(
        holidays=frozenset({date(2026, 5, 11), date(2026, 5, 12)}), workdays=frozenset({date(2026, 5, 10)})
    )
    friday = datetime(2026, 5, 8, 15, tzinfo=PLUS8)
    # Sunday the 10th is worked; Monday and Tuesday are holidays
    assert local(shift(friday, parse_duration("1wd"), calendar=calendar)) == datetime(2026, 5, 11, tzinfo=PLUS8)
    assert local(shift(friday, parse_duration("2wd"), calendar=calendar)) == datetime(2026, 5, 14, tzinfo=PLUS8)


def test_working_days_need_a_calendar() -> None:
    with pytest.raises(ValueError, match="'3wd' counts working days: a working-day calendar is needed"):
        shift(datetime(2026, 5, 8, tzinfo=UTC), parse_duration("3wd"))


def test_a_calendar_without_working_days_is_refused_not_looped_on() -> None:
    with pytest.raises(CalendarError, match="no working day in the 60 days after 2026-05-08"):
        shift(datetime(2026, 5, 8, tzinfo=UTC), parse_duration("1wd"), calendar=NeverWorks())
    with pytest.raises(CalendarError, match="no working day in the 60 days before 2026-05-08"):
        shift(datetime(2026, 5, 8, tzinfo=UTC), parse_duration("1wd"), negative=True, calendar=NeverWorks())


def test_a_year_the_calendar_does_not_know_is_an_error() -> None:
    with pytest.raises(CalendarError, match="2027"):
        shift(datetime(2026, 12, 30, tzinfo=UTC), parse_duration("3wd"), calendar=KnowsOnly2026())


def test_the_longest_working_duration_ends() -> None:
    calendar = FakeCalendar(zone=UTC)
    result = shift(datetime(2026, 1, 1, tzinfo=UTC), Duration(working_days=MAX_WORKING_DAYS), calendar=calendar)
    assert result.year == 2035  # 2600 weekdays = 520 weeks


def test_a_day_that_starts_at_one_oclock_starts_then() -> None:
    # Chile moves its clocks forward at midnight: 6 September 2026 starts at 01:00 local time.
    santiago = ZoneInfo("America/Santiago")
    friday = datetime(2026, 9, 4, 12, tzinfo=santiago)
    result = shift(friday, parse_duration("0wd"), calendar=FakeCalendar(zone=santiago))
    assert result == datetime(2026, 9, 5, 4, tzinfo=UTC)  # Friday's end: Saturday 00:00 at UTC-4
    monday = datetime(2026, 9, 7, 12, tzinfo=santiago)
    start = shift(monday, parse_duration("1wd"), negative=True, calendar=FakeCalendar(zone=santiago))
    assert start == datetime(2026, 9, 4, 4, tzinfo=UTC)
    # and the start of the day that has no midnight
    sunday_start = shift(
        datetime(2026, 9, 6, 12, tzinfo=santiago),
        parse_duration("0wd"),
        negative=True,
        calendar=FakeCalendar(zone=santiago, workdays=frozenset({date(2026, 9, 6)})),
    )
    assert sunday_start == datetime(2026, 9, 6, 4, tzinfo=UTC)
    assert sunday_start.astimezone(santiago).replace(tzinfo=None) == datetime(2026, 9, 6, 1)


@given(
    st.datetimes(
        min_value=datetime(2026, 1, 1),  # hypothesis bounds are naive
        max_value=datetime(2026, 12, 31),
        timezones=st.just(UTC),
    ),
    st.integers(min_value=0, max_value=30),
    st.booleans(),
)
def test_working_day_deadlines_fall_on_local_midnight(instant: datetime, n: int, negative: bool) -> None:
    calendar = FakeCalendar()
    result = shift(instant, Duration(working_days=n), negative=negative, calendar=calendar)
    at = result.astimezone(PLUS8)
    assert (at.hour, at.minute, at.second, at.microsecond) == (0, 0, 0, 0)
    trigger_day = instant.astimezone(PLUS8).date()
    if negative:
        assert calendar.is_working_day(at.date())
        assert at.date() <= trigger_day
    else:
        assert calendar.is_working_day(at.date() - timedelta(days=1))
        assert at.date() > trigger_day


# --- working days on China's official calendar ------------------------------------------------------------


@pytest.fixture(scope="module")
def china() -> WorkingCalendar:
    return official_calendar("CN")


def in_shanghai(when: datetime) -> datetime:
    return when.astimezone(SHANGHAI).replace(tzinfo=None)


def test_national_day_2026(china: WorkingCalendar) -> None:
    # 1–7 October 2026 are the holiday; Saturday 10 October is a make-up working day, Sunday 11th is not.
    trigger = datetime(2026, 9, 30, 15, tzinfo=SHANGHAI)
    due = {text: in_shanghai(shift(trigger, parse_duration(text), calendar=china)) for text in ("0wd", "1wd")}
    assert due["0wd"] == datetime(2026, 10, 1)  # wall time in Shanghai
    assert due["1wd"] == datetime(2026, 10, 9)  # the end of Thursday 8 October
    assert shift(trigger, parse_duration("1wd"), calendar=china) == datetime(2026, 10, 8, 16, tzinfo=UTC)
    assert in_shanghai(shift(trigger, parse_duration("3wd"), calendar=china)) == datetime(2026, 10, 11)
    assert in_shanghai(shift(trigger, parse_duration("4wd"), calendar=china)) == datetime(2026, 10, 13)


def test_national_day_2026_counted_backwards(china: WorkingCalendar) -> None:
    # Mid-autumn festival is 25–27 September 2026; Sunday 20 September is a make-up working day.
    trigger = datetime(2026, 10, 8, 9, tzinfo=SHANGHAI)

    def before(text: str) -> datetime:
        return in_shanghai(shift(trigger, parse_duration(text), negative=True, calendar=china))

    assert before("1wd") == datetime(2026, 9, 30)
    assert before("3wd") == datetime(2026, 9, 28)
    assert before("4wd") == datetime(2026, 9, 24)
    assert before("8wd") == datetime(2026, 9, 20)  # the make-up Sunday
    assert before("9wd") == datetime(2026, 9, 18)


def test_a_make_up_sunday_counts(china: WorkingCalendar) -> None:
    friday = datetime(2026, 9, 18, 10, tzinfo=SHANGHAI)
    assert in_shanghai(shift(friday, parse_duration("1wd"), calendar=china)) == datetime(2026, 9, 21)


def test_spring_festival_2026(china: WorkingCalendar) -> None:
    # 15–23 February 2026 are the holiday; Saturdays 14 and 28 February are make-up working days.
    friday = datetime(2026, 2, 13, 18, tzinfo=SHANGHAI)

    def after(text: str) -> datetime:
        return in_shanghai(shift(friday, parse_duration(text), calendar=china))

    assert after("1wd") == datetime(2026, 2, 15)  # Saturday 14th is worked
    assert after("2wd") == datetime(2026, 2, 25)  # then Tuesday 24th
    assert after("6wd") == datetime(2026, 3, 1)  # Saturday 28th is worked


def test_a_trigger_at_night_in_utc_counts_from_the_shanghai_day(china: WorkingCalendar) -> None:
    # 17:00 UTC on 29 September is 01:00 on 30 September in Shanghai.
    due = shift(datetime(2026, 9, 29, 17, tzinfo=UTC), parse_duration("1wd"), calendar=china)
    assert due == datetime(2026, 10, 8, 16, tzinfo=UTC)


def test_china_2027_is_not_known_yet(china: WorkingCalendar) -> None:
    with pytest.raises(CalendarError, match="2027 is not yet published"):
        shift(datetime(2026, 12, 29, 10, tzinfo=SHANGHAI), parse_duration("5wd"), calendar=china)
