"""Deadlines derived from an incident's state at an instant (DESIGN.md, Time): steps, notifications,
recovery objectives, and which projection rows a batch of events can move.

The incident runs on tests.builders.runner_playbook(); level II is declared at RUN_START (T0, a Monday,
09:00 in Shanghai), so detection and declaration are both T0 unless a test says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo

import pytest

from ir.domain import decisions
from ir.domain.clocks import ClockName
from ir.domain.deadlines import (
    Deadline,
    DeadlineState,
    RecoveryClock,
    deadlines,
    due_list,
    recovery_clocks,
    touched_refs,
)
from ir.domain.durations import WorkingCalendar
from ir.domain.events import (
    ChecklistItemChecked,
    ClockRecorded,
    Event,
    FactsSet,
    IncidentClosed,
    LevelDeclared,
    NoteAdded,
    NotificationSent,
    StepApproved,
    StepCompleted,
    StepFailed,
    StepRetried,
    StepSkipped,
    StepStarted,
)
from ir.domain.levels import ResponseLevel
from ir.domain.playbook import Calendar
from tests.builders import RUN_START, IncidentRun

T0 = RUN_START
CST = timezone(timedelta(hours=8))
I, II, III, IV = ResponseLevel.I, ResponseLevel.II, ResponseLevel.III, ResponseLevel.IV  # noqa: E741
S = DeadlineState


@dataclass
class FakeCalendar:
    """Monday to Friday in UTC+8, less `holidays`, plus make-up `workdays`."""

    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    zone: tzinfo = CST
    asked: list[date] = field(default_factory=list)

    def is_working_day(self, day: date) -> bool:
        self.asked.append(day)
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays


@dataclass
class CalendarFor:
    calendar: FakeCalendar = field(default_factory=FakeCalendar)
    asked: list[Calendar] = field(default_factory=list)

    def __call__(self, which: Calendar) -> WorkingCalendar:
        self.asked.append(which)
        return self.calendar


def mins(n: float) -> timedelta:
    return timedelta(minutes=n)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def deadline(run: IncidentRun, ref: str, calendar_for: CalendarFor | None = None) -> Deadline:
    found = [d for d in deadlines(run.incident, calendar_for=calendar_for or CalendarFor(), refs=[ref])]
    assert len(found) == 1, f"{ref}: {found}"
    return found[0]


def row(d: Deadline, now: datetime) -> tuple[DeadlineState, timedelta | None, timedelta | None]:
    return d.state(now), d.late_by(now), d.left(now)


# -- steps --------------------------------------------------------------------------------------------


def test_a_step_due_from_a_clock() -> None:
    run = IncidentRun(level=II)
    d = deadline(run, "step:confirm")
    assert d == Deadline(
        ref="step:confirm",
        kind="step",
        title=run.playbook.steps["confirm"].title,
        due_at=T0 + mins(15),
        done_at=None,
        role="noc",
        anchor="detection + 15m",
    )


def test_a_step_due_from_a_corrected_detection_moves_with_it() -> None:
    run = IncidentRun(level=II)
    run.do(decisions.record_clock, ClockName.DETECTION, T0 - mins(30), reason="first alarm earlier")
    assert deadline(run, "step:confirm").due_at == T0 - mins(15)


def test_a_step_due_from_another_steps_completion_waits_for_it() -> None:
    run = IncidentRun(level=II)
    d = deadline(run, "step:isolate")
    assert (d.due_at, d.anchor) == (None, "step:confirm + 30m")
    assert row(d, T0 + hours(5)) == (S.WAITING, None, None)
    run.advance(minutes=10)
    run.do(decisions.start_step, "confirm")
    assert deadline(run, "step:isolate").due_at is None  # started is not finished
    run.advance(minutes=2)
    run.do(decisions.complete_step, "confirm", note=None)
    assert deadline(run, "step:isolate").due_at == T0 + mins(42)


def test_a_step_due_from_a_skipped_step_counts_from_the_skip() -> None:
    run = IncidentRun(level=II)
    run.advance(minutes=4)
    run.do(decisions.skip_step, "confirm", reason="obvious")
    assert deadline(run, "step:isolate").due_at == T0 + mins(34)


def test_a_negative_offset_falls_before_its_anchor() -> None:
    run = IncidentRun(level=II)
    assert row(deadline(run, "step:prepare"), T0) == (S.WAITING, None, None)
    run.do(decisions.record_clock, ClockName.EXPECTED_IMPACT, T0 + hours(48), reason=None)
    d = deadline(run, "step:prepare")
    assert (d.due_at, d.anchor) == (T0 + hours(24), "expected_impact - 24h")
    assert row(d, T0) == (S.UPCOMING, None, hours(24))


def test_a_negative_offset_can_already_be_overdue() -> None:
    run = IncidentRun(level=II)
    run.do(decisions.record_clock, ClockName.EXPECTED_IMPACT, T0 + hours(10), reason=None)
    assert row(deadline(run, "step:prepare"), T0) == (S.OVERDUE, hours(14), hours(-14))


def test_a_step_that_does_not_apply_has_no_deadline() -> None:
    run = IncidentRun(level=III)
    assert deadlines(run.incident, calendar_for=CalendarFor(), refs=["step:war-room"]) == []
    triage = IncidentRun()
    assert [d.ref for d in deadlines(triage.incident, calendar_for=CalendarFor())] == []


# -- working days ---------------------------------------------------------------------------------------


def test_working_days_count_whole_days_after_the_trigger_day_on_the_playbooks_calendar() -> None:
    run = IncidentRun(level=II)
    calendar_for = CalendarFor()
    # Monday 09:00 +08:00; 2wd: Tuesday and Wednesday, due at the end of Wednesday (+08:00)
    assert deadline(run, "step:regulator-filing", calendar_for).due_at == datetime(2026, 3, 5, 0, 0, tzinfo=CST)
    assert calendar_for.asked == [Calendar(country="CN", zone="Asia/Shanghai")]
    assert deadline(run, "step:regulator-filing", calendar_for).anchor == "detection + 2wd"


def test_working_days_skip_holidays_and_weekends() -> None:
    run = IncidentRun(level=II)
    holiday = CalendarFor(FakeCalendar(holidays=frozenset({date(2026, 3, 3)})))
    # Tuesday is a holiday: Wednesday and Thursday, due at the end of Thursday
    assert deadline(run, "step:regulator-filing", holiday).due_at == datetime(2026, 3, 6, 0, 0, tzinfo=CST)


def test_working_days_count_in_the_calendars_zone() -> None:
    # Thursday 16:30 UTC is already Friday 00:30 in +08:00: Monday and Tuesday, due at the end of Tuesday
    friday = datetime(2026, 3, 5, 16, 30, tzinfo=UTC)
    run = IncidentRun(level=II, now=friday)
    assert deadline(run, "step:regulator-filing").due_at == datetime(2026, 3, 11, 0, 0, tzinfo=CST)
    # a make-up working Saturday counts
    makeup = CalendarFor(FakeCalendar(workdays=frozenset({date(2026, 3, 7)})))
    assert deadline(run, "step:regulator-filing", makeup).due_at == datetime(2026, 3, 10, 0, 0, tzinfo=CST)


# -- states at an instant ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "state", "late_by", "left"),
    [
        (mins(0), S.UPCOMING, None, hours(1)),
        (mins(44), S.UPCOMING, None, mins(16)),
        (mins(45), S.DUE_SOON, None, mins(15)),
        (mins(60), S.DUE_SOON, None, mins(0)),
        (mins(60) + timedelta(seconds=1), S.OVERDUE, timedelta(seconds=1), -timedelta(seconds=1)),
        (hours(3), S.OVERDUE, hours(2), -hours(2)),
    ],
)
def test_an_open_deadline_at_an_instant(
    after: timedelta, state: DeadlineState, late_by: timedelta | None, left: timedelta | None
) -> None:
    run = IncidentRun(level=II)
    d = deadline(run, "step:inform-users")
    assert d.due_at == T0 + hours(1)
    assert row(d, T0 + after) == (state, late_by, left)


def test_a_custom_due_soon_window() -> None:
    run = IncidentRun(level=II)
    d = deadline(run, "step:inform-users")
    assert d.state(T0 + mins(30), soon=mins(30)) is S.DUE_SOON
    assert d.state(T0 + mins(29), soon=mins(30)) is S.UPCOMING


@pytest.mark.parametrize(
    ("done_after", "state", "late_by"),
    [(mins(50), S.MET, None), (mins(60), S.MET, None), (mins(80), S.MISSED, mins(20))],
)
def test_a_finished_deadline_is_met_or_missed(
    done_after: timedelta, state: DeadlineState, late_by: timedelta | None
) -> None:
    run = IncidentRun(level=II)
    run.do(decisions.complete_step, "confirm", note=None)
    run.now = T0 + done_after
    run.do(decisions.complete_step, "inform-users", note=None)
    d = deadline(run, "step:inform-users")
    assert d.done_at == T0 + done_after
    later = T0 + hours(9)
    assert row(d, later) == (state, late_by, None)


def test_a_skipped_step_is_finished_for_its_deadline() -> None:
    run = IncidentRun(level=II)
    run.advance(minutes=40)
    run.do(decisions.skip_step, "war-room", reason="everyone on the bridge already")
    assert row(deadline(run, "step:war-room"), T0 + hours(1)) == (S.MISSED, mins(10), None)


def test_the_due_list_at_an_instant_in_due_order() -> None:
    run = IncidentRun(level=II)
    run.advance(minutes=10)
    run.do(decisions.complete_step, "confirm", note=None)
    now = T0 + mins(20)
    got = [
        (i.deadline.ref, i.deadline.due_at, i.state, i.late_by, i.left)
        for i in due_list(run.incident, now, calendar_for=CalendarFor())
    ]
    assert got == [
        ("notification:callout", T0 + mins(5), S.OVERDUE, mins(15), -mins(15)),
        ("step:confirm", T0 + mins(15), S.MET, None, None),
        ("step:war-room", T0 + mins(30), S.DUE_SOON, None, mins(10)),
        ("step:isolate", T0 + mins(40), S.UPCOMING, None, mins(20)),
        ("notification:tell-regulator", T0 + hours(1), S.UPCOMING, None, mins(40)),
        ("step:inform-users", T0 + hours(1), S.UPCOMING, None, mins(40)),
        ("notification:press", T0 + mins(70), S.UPCOMING, None, mins(50)),
        ("rto", T0 + hours(4), S.UPCOMING, None, mins(220)),
        ("mtpd", T0 + hours(12), S.UPCOMING, None, mins(700)),
        (
            "step:regulator-filing",
            datetime(2026, 3, 5, 0, 0, tzinfo=CST),
            S.UPCOMING,
            None,
            hours(62) + mins(40),
        ),
        ("step:prepare", None, S.WAITING, None, None),
    ]


def test_deadlines_by_ref() -> None:
    run = IncidentRun(level=II)
    got = deadlines(run.incident, calendar_for=CalendarFor(), refs=["step:isolate", "notification:callout", "rto"])
    assert [d.ref for d in got] == ["notification:callout", "rto", "step:isolate"]


# -- notifications ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("level", "first_due"), [(I, mins(30)), (II, hours(1)), (III, hours(2)), (IV, hours(4))])
def test_a_notification_is_first_due_by_level(level: ResponseLevel, first_due: timedelta) -> None:
    run = IncidentRun(level=level)
    d = deadline(run, "notification:tell-regulator")
    assert (d.due_at, d.done_at, d.role) == (T0 + first_due, None, "commander")
    assert d.anchor.endswith(" (every 2h)")


def test_the_due_of_a_notification_follows_the_level() -> None:
    run = IncidentRun(level=IV)
    assert deadline(run, "notification:tell-regulator").due_at == T0 + hours(4)
    run.advance(minutes=10)
    run.do(decisions.declare_level, I, reason="national")
    assert deadline(run, "notification:tell-regulator").due_at == T0 + mins(30)


def test_notifications_limited_to_levels() -> None:
    run = IncidentRun(level=III)
    refs = {d.ref for d in deadlines(run.incident, calendar_for=CalendarFor())}
    assert "notification:press" not in refs
    assert {"notification:tell-regulator", "notification:callout"} <= refs


def test_a_notification_due_from_declaration() -> None:
    run = IncidentRun()
    run.advance(minutes=3)
    run.do(decisions.declare_level, II, reason=None)
    assert deadline(run, "notification:callout").due_at == T0 + mins(8)


@pytest.mark.parametrize(("sent_after", "state", "late_by"), [(mins(3), S.MET, None), (mins(7), S.MISSED, mins(2))])
def test_a_one_off_notification_is_met_by_its_first_sending(
    sent_after: timedelta, state: DeadlineState, late_by: timedelta | None
) -> None:
    run = IncidentRun(level=II)
    run.now = T0 + sent_after
    run.do(decisions.mark_notification_sent, "callout", reference=None)
    run.advance(minutes=30)
    run.do(decisions.mark_notification_sent, "callout", reference="again")
    d = deadline(run, "notification:callout")
    assert d.done_at == T0 + sent_after
    assert row(d, T0 + hours(2)) == (state, late_by, None)


def test_a_repeating_notification_is_due_again_after_each_sending() -> None:
    run = IncidentRun(level=II)
    run.now = T0 + mins(50)
    run.do(decisions.mark_notification_sent, "tell-regulator", reference=None)
    d = deadline(run, "notification:tell-regulator")
    assert (d.due_at, d.done_at) == (T0 + mins(170), None)
    assert row(d, T0 + hours(1)) == (S.UPCOMING, None, mins(110))
    assert row(d, T0 + hours(3)) == (S.OVERDUE, mins(10), -mins(10))
    run.now = T0 + mins(160)
    run.do(decisions.mark_notification_sent, "tell-regulator", reference=None)
    assert deadline(run, "notification:tell-regulator").due_at == T0 + mins(280)


def test_repeats_continue_through_degraded_restoration_and_end_with_an_update_after_full_restoration() -> None:
    run = IncidentRun(level=II)
    run.now = T0 + mins(50)
    run.do(decisions.mark_notification_sent, "tell-regulator", reference=None)
    run.now = T0 + mins(160)
    run.do(decisions.mark_notification_sent, "tell-regulator", reference=None)
    run.now = T0 + mins(170)
    run.do(decisions.restore, degraded=True, at=None, reason=None)
    assert deadline(run, "notification:tell-regulator").due_at == T0 + mins(280)
    run.now = T0 + hours(3)
    run.do(decisions.restore, degraded=False, at=None, reason=None)
    # the last update before full restoration does not end the series: a final one is owed
    d = deadline(run, "notification:tell-regulator")
    assert (d.due_at, d.done_at) == (T0 + mins(280), None)
    assert row(d, T0 + mins(185)) == (S.UPCOMING, None, mins(95))
    # the final update, sent on time, ends it: met
    run.now = T0 + mins(190)
    run.do(decisions.mark_notification_sent, "tell-regulator", reference="final")
    d = deadline(run, "notification:tell-regulator")
    assert d.done_at == T0 + mins(190)
    assert row(d, T0 + hours(8)) == (S.MET, None, None)


def test_response_end_also_ends_the_repeats() -> None:
    run = IncidentRun(level=II)
    run.now = T0 + mins(50)
    run.do(decisions.mark_notification_sent, "tell-regulator", reference=None)
    run.now = T0 + mins(100)
    run.do(decisions.record_clock, ClockName.RESPONSE_END, run.now, reason=None)
    assert deadline(run, "notification:tell-regulator").done_at is None
    run.now = T0 + mins(110)
    run.do(decisions.mark_notification_sent, "tell-regulator", reference="final")
    assert deadline(run, "notification:tell-regulator").done_at == T0 + mins(110)


def test_a_notification_due_from_a_step_waits_for_it() -> None:
    run = IncidentRun(level=II)
    assert deadline(run, "notification:press").due_at is None
    run.now = T0 + mins(12)
    run.do(decisions.complete_step, "confirm", note=None)
    assert deadline(run, "notification:press").due_at == T0 + mins(72)


# -- recovery objectives ------------------------------------------------------------------------------------


def clocks(run: IncidentRun, now: datetime) -> dict[str, RecoveryClock]:
    return {c.name: c for c in recovery_clocks(run.incident, now)}


def test_recovery_objectives_run_from_detection() -> None:
    run = IncidentRun(level=II)
    got = clocks(run, T0 + hours(1))
    assert got["rto"] == RecoveryClock("rto", hours(4), T0 + hours(4), None, None, hours(3), False)
    assert got["mtpd"] == RecoveryClock("mtpd", hours(12), T0 + hours(12), None, None, hours(11), False)
    assert got["rpo"] == RecoveryClock("rpo", mins(30), None, None, None, None, False)
    assert [d.ref for d in deadlines(run.incident, refs=["rto", "mtpd"])] == ["rto", "mtpd"]
    rto = deadline(run, "rto")
    assert (rto.kind, rto.due_at, rto.done_at, rto.anchor) == ("rto", T0 + hours(4), None, "detection + 4h")


def test_an_unrestored_service_breaches_rto_when_it_is_due() -> None:
    run = IncidentRun(level=II)
    at_due = clocks(run, T0 + hours(4))
    assert (at_due["rto"].breached, at_due["rto"].left) == (False, timedelta(0))
    got = clocks(run, T0 + hours(5))
    assert (got["rto"].breached, got["rto"].left, got["rto"].met) == (True, -hours(1), None)
    assert (got["mtpd"].breached, got["mtpd"].left) == (False, hours(7))
    assert row(deadline(run, "rto"), T0 + hours(5)) == (S.OVERDUE, hours(1), -hours(1))


def test_degraded_restoration_within_rto_meets_it() -> None:
    run = IncidentRun(level=II)
    run.now = T0 + hours(3)
    run.do(decisions.restore, degraded=True, at=None, reason=None)
    got = clocks(run, T0 + hours(20))
    assert got["rto"] == RecoveryClock("rto", hours(4), T0 + hours(4), hours(3), True, None, False)
    assert got["mtpd"] == RecoveryClock("mtpd", hours(12), T0 + hours(12), hours(3), True, None, False)
    assert row(deadline(run, "rto"), T0 + hours(20)) == (S.MET, None, None)


def test_late_restoration_breaches_rto_for_good() -> None:
    run = IncidentRun(level=II)
    run.now = T0 + hours(6)
    run.do(decisions.restore, degraded=False, at=T0 + hours(5), reason=None)
    got = clocks(run, T0 + hours(6))
    assert got["rto"] == RecoveryClock("rto", hours(4), T0 + hours(4), hours(5), False, None, True)
    assert got["mtpd"] == RecoveryClock("mtpd", hours(12), T0 + hours(12), hours(5), True, None, False)
    assert row(deadline(run, "rto"), T0 + hours(6)) == (S.MISSED, hours(1), None)


def test_escalation_tightens_the_recovery_objectives() -> None:
    run = IncidentRun(level=II)
    run.now = T0 + hours(1)
    run.do(decisions.declare_level, I, reason="national")
    run.now = T0 + hours(3)
    run.do(decisions.restore, degraded=True, at=None, reason=None)
    got = clocks(run, run.now)
    assert (got["rto"].target, got["rto"].met, got["rto"].breached) == (hours(2), False, True)
    assert (got["mtpd"].target, got["mtpd"].met) == (hours(6), True)


def test_no_recovery_objectives_in_triage() -> None:
    run = IncidentRun()
    assert recovery_clocks(run.incident, T0) == []
    assert deadlines(run.incident, refs=["rto", "mtpd"]) == []


@pytest.mark.parametrize(
    ("before", "met", "breached"), [(mins(45), False, True), (mins(30), True, False), (mins(5), True, False)]
)
def test_rpo_from_the_last_good_data_point(before: timedelta, met: bool, breached: bool) -> None:
    run = IncidentRun(level=II)
    run.do(decisions.record_clock, ClockName.LAST_GOOD_DATA, T0 - before, reason=None)
    assert clocks(run, T0 + hours(1))["rpo"] == RecoveryClock("rpo", mins(30), None, before, met, None, breached)


# -- which projection rows move -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "refs"),
    [
        (
            [StepCompleted(at=T0, actor="alice", step="isolate")],
            {"step:isolate", "step:mitigate"},
        ),
        (
            [StepStarted(at=T0, actor="alice", step="inform-users", assignee="bob")],
            {"step:inform-users"},  # starting resolves nothing: its dependant still waits
        ),
        (
            [StepSkipped(at=T0, actor="alice", step="reroute", reason="r")],
            {"step:reroute", "step:restore-full"},
        ),
        ([StepFailed(at=T0, actor="alice", step="prepare", reason="r")], {"step:prepare"}),
        ([StepRetried(at=T0, actor="alice", step="war-room")], {"step:war-room"}),
        ([StepApproved(at=T0, actor="alice", step="reroute", role="noc")], {"step:reroute"}),
        ([ChecklistItemChecked(at=T0, actor="alice", step="confirm", item=0)], {"step:confirm"}),
        ([NoteAdded(at=T0, actor="alice", text="t", step="isolate")], {"step:isolate"}),
        ([NoteAdded(at=T0, actor="alice", text="t", step=None)], set()),
        ([StepStarted(at=T0, actor="alice", step="mitigate", assignee="bob")], {"step:mitigate"}),
        (
            [NotificationSent(at=T0, actor="alice", notification="tell-regulator")],
            {"notification:tell-regulator"},
        ),
        (
            [
                StepCompleted(at=T0, actor="alice", step="isolate"),
                NotificationSent(at=T0, actor="alice", notification="callout"),
            ],
            {"step:isolate", "step:mitigate", "notification:callout"},
        ),
    ],
)
def test_touched_refs_of_step_and_notification_events(events: list[Event], refs: set[str]) -> None:
    run = IncidentRun(level=II)
    assert touched_refs(run.incident, events) == refs


def test_touched_refs_of_a_completion_include_dependants_and_everything_anchored_to_it() -> None:
    run = IncidentRun(level=II)
    # isolate is a dependant and anchored (step:confirm + 30m); the press release is due step:confirm + 1h
    assert touched_refs(run.incident, [StepCompleted(at=T0, actor="alice", step="confirm")]) == {
        "step:confirm",
        "step:isolate",
        "step:inform-users",
        "step:vendor-escalation",
        "step:war-room",
        "notification:press",
    }


@pytest.mark.parametrize(
    "event",
    [
        LevelDeclared(at=T0, actor="alice", level="I", previous="II", reason="r"),
        FactsSet(at=T0, actor="alice", facts={"peak_gbps": 80}),
        ClockRecorded(at=T0, actor="alice", clock="awareness", instant=T0),
        IncidentClosed(at=T0, actor="alice", reason="r"),
        StepCompleted(at=T0, actor="alice", step="mitigate"),  # restores service: RTO and repeats move
        StepSkipped(at=T0, actor="alice", step="restore-full", reason="r"),
    ],
)
def test_touched_refs_is_everything_for_level_fact_clock_and_restoration_events(event: Event) -> None:
    run = IncidentRun(level=II)
    assert touched_refs(run.incident, [StepApproved(at=T0, actor="bob", step="reroute", role="noc"), event]) is None
