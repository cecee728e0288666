"""Regulatory regimes: the reports a regulator requires, each due from one of the incident's clocks or
from a previous submission, on a calendar, and what each must contain.

A regime is data (notifications/regimes/*.yaml, loaded by an adapter). This module computes, for an
incident, each obligation's due instant (the earliest of its clauses), whether it was submitted, and
when the incident became reportable where the regime defines it by numbers.
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ir.domain.durations import Duration, WorkingCalendar, shift
from ir.domain.expressions import Expression
from ir.domain.levels import ResponseLevel
from ir.domain.playbook import Calendar
from ir.domain.text import Text

CalendarFor = Callable[[Calendar], WorkingCalendar]


@dataclass(frozen=True, slots=True)
class Clause:
    """One way an obligation falls due: a trigger plus an offset, counted on a calendar."""

    trigger: str  # a clock name, or "submission:<obligation id>"
    offset: Duration = field(default_factory=Duration)
    months: int = 0  # calendar months (one month after …), in the calendar's zone
    calendar: Calendar | None = None
    next_working_day_noon: bool = False  # DORA: a deadline on a non-working day moves to the next one, 12:00

    def __str__(self) -> str:
        span = f"{self.months}mo" if self.months else str(self.offset)
        return f"{self.trigger} + {span}"


@dataclass(frozen=True, slots=True)
class Variant:
    """Clauses for a kind of entity or incident (`when` over facts); the first that holds applies."""

    when: Expression | None
    clauses: tuple[Clause, ...]  # the earliest of these
    label: Text | None = None


@dataclass(frozen=True, slots=True)
class ReportField:
    id: str
    title: Text
    source: str  # clock:<name> | fact:<name> | incident:<attr> | org:<key> | steps:done | log:<category> | input
    required: bool = True


@dataclass(frozen=True, slots=True)
class Obligation:
    id: str
    stage: str  # initial | intermediate | final
    title: Text
    variants: tuple[Variant, ...]
    fields: tuple[ReportField, ...] = ()
    levels: frozenset[ResponseLevel] = frozenset()  # empty: whatever the level, once reportable
    may_phase: bool = False
    late_reason_required: bool = False
    note: Text | None = None


@dataclass(frozen=True, slots=True)
class Reportability:
    """When an incident must be reported: always (once it applies), by judgement, or by numbers."""

    kind: str = "always"  # always | judgement | user_minutes
    min_duration: timedelta = timedelta(0)
    min_user_minutes: int = 0
    users_fact: str = "affected_users"


@dataclass(frozen=True, slots=True)
class Regime:
    id: str
    title: Text
    authority: Text
    source: str  # the regulation and clauses it encodes
    levels: frozenset[ResponseLevel]  # levels at which it applies (empty: all)
    reportability: Reportability
    obligations: tuple[Obligation, ...]
    calendar: Calendar = field(default_factory=Calendar)

    def obligation(self, obligation_id: str) -> Obligation | None:
        return next((o for o in self.obligations if o.id == obligation_id), None)


# -- computing -----------------------------------------------------------------------------------------


def add_months(instant: datetime, months: int, zone: str) -> datetime:
    """The same local date and time `months` later (clamped to the month's last day), as UTC."""
    local = instant.astimezone(ZoneInfo(zone))
    total = local.month - 1 + months
    year, month = local.year + total // 12, total % 12 + 1
    day = min(local.day, _calendar.monthrange(year, month)[1])
    moved = local.replace(year=year, month=month, day=day)
    return moved.astimezone(instant.tzinfo)


def _roll_noon(instant: datetime, cal: WorkingCalendar) -> datetime:
    local = instant.astimezone(cal.zone)
    if cal.is_working_day(local.date()):
        return instant
    day = local.date()
    for _ in range(60):
        day = day + timedelta(days=1)
        if cal.is_working_day(day):
            break
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=cal.zone)
    return noon.astimezone(instant.tzinfo)


def clause_due(clause: Clause, anchor: datetime, regime: Regime, calendar_for: CalendarFor | None) -> datetime:
    cal_spec = clause.calendar or regime.calendar
    if clause.months:
        due = add_months(anchor, clause.months, cal_spec.zone)
    else:
        cal = calendar_for(cal_spec) if clause.offset.is_working and calendar_for else None
        due = shift(anchor, clause.offset, calendar=cal)
    if clause.next_working_day_noon and calendar_for is not None:
        due = _roll_noon(due, calendar_for(cal_spec))
    return due


def user_minutes_reportable_at(onset: datetime, users: int, rule: Reportability) -> datetime | None:
    """The first instant both thresholds are met, if the outage lasts: at least `min_duration` and at least
    `min_user_minutes` users × minutes (FCC Part 4: 30 minutes and 900,000 user-minutes)."""
    if users <= 0:
        return None
    # 47 CFR 4.5(e): duration in minutes times users, so fractions of a minute count
    return onset + max(rule.min_duration, timedelta(minutes=rule.min_user_minutes / users))


@dataclass(frozen=True, slots=True)
class ObligationState:
    regime: Regime
    obligation: Obligation
    variant: Variant | None
    due_at: datetime | None
    waiting_for: str | None  # what its clock waits for (a clock not yet recorded, reportability)
    submitted_at: datetime | None
    reference: str | None = None
    late_by: timedelta | None = None
    partial: bool = False

    @property
    def ref(self) -> str:
        return f"regime:{self.regime.id}:{self.obligation.id}"


def applicable_variant(obligation: Obligation, facts: Mapping[str, Any]) -> Variant | None:
    for variant in obligation.variants:
        if variant.when is None:
            return variant
        try:
            if variant.when.evaluate(facts).value is True:
                return variant
        except Exception:  # noqa: S112 - a value of another type than the regime expects: the variant does not hold
            continue
    return None


__all__ = [
    "Clause",
    "Obligation",
    "ObligationState",
    "Regime",
    "ReportField",
    "Reportability",
    "Variant",
    "add_months",
    "applicable_variant",
    "clause_due",
    "user_minutes_reportable_at",
]
