"""Regulators' deadlines, taken from the regulations' own texts, computed through the real regime files.

Every table below states a deadline the way the regulation does (a trigger, a span, a calendar) and the exact
UTC instant it falls due. The regimes are notifications/regimes/*.yaml loaded by the product's loader; the
incidents are folded in memory from the product's decisions on a small playbook naming the regimes; working
days and the DORA weekend rule use the real official calendars (chinesecalendar for China with its make-up
working days, `holidays` for Belgium and the United States).

Sources (notifications/regimes/*.yaml and /work/shared/reference/regulations.md):
- CAC 网络安全事件报告管理办法 (2025) Art. 4: CII operators 1 h, central state organs 2 h, others 4 h from
  discovery; only incidents graded 较大 (III) and above; summary within 30 days after handling ends.
- MIIT 工信部网安〔2017〕281号: report immediately.
- 47 CFR 4.9 / 4.5(e): reportable at >= 30 minutes and >= 900,000 user-minutes (users x minutes);
  notification within 120 minutes of becoming reportable; initial report within 72 hours and final report
  within 30 days of discovery.
- GDPR Art. 33(1): 72 hours after becoming aware; Art. 33(4): information in phases.
- NIS2 Art. 23(4): early warning 24 h, notification 72 h after awareness; final report one month after the
  incident notification.
- DORA RTS (EU) 2025/301 Art. 5: initial within 4 h of classification and no later than 24 h after awareness;
  intermediate 72 h after the initial notification; final one month after the intermediate report; a deadline
  on a weekend or public holiday moves to 12:00 of the next working day.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ir.adapters.playbooks.compiler import compile_source
from ir.adapters.regimes import RegimeDoc, compile_regime, load_regimes
from ir.bootstrap import calendar_for
from ir.domain import decisions
from ir.domain.clocks import ClockName
from ir.domain.errors import InvalidInput, InvalidTransition
from ir.domain.events import Event, FactValue, ReportSubmitted
from ir.domain.incident import Incident
from ir.domain.levels import ResponseLevel
from ir.domain.obligations import judge_reportability, obligation_states, reportable_at, submit_report
from ir.domain.playbook import Playbook
from ir.domain.regimes import ObligationState, Regime
from tests.builders import MINIMAL_PLAYBOOK, IncidentRun

ROOT = Path(__file__).resolve().parents[2]
REGIMES: dict[str, Regime] = load_regimes(str(ROOT / "notifications" / "regimes"))

SHANGHAI = ZoneInfo("Asia/Shanghai")
BRUSSELS = ZoneInfo("Europe/Brussels")
NEW_YORK = ZoneInfo("America/New_York")

CAC, MIIT, FCC, GDPR, NIS2, DORA = "cn-cac-2025", "cn-miit-2017", "us-fcc-part4", "eu-gdpr", "eu-nis2", "eu-dora"


def at(zone: ZoneInfo, y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    """A local wall time in `zone`, as the UTC instant it is."""
    return datetime(y, mo, d, h, mi, s, tzinfo=zone).astimezone(UTC)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC)


_EXTRA_FACTS = """\
  - name: cii_involved
    type: boolean
    title: {zh-CN: 涉及关键信息基础设施, en: Critical information infrastructure involved}
  - name: central_state_organ
    type: boolean
    title: {zh-CN: 中央和国家机关, en: Central state organ}
"""


@functools.cache
def playbook(regimes: tuple[str, ...]) -> Playbook:
    """MINIMAL_PLAYBOOK naming `regimes`, with the facts the regimes' conditions read."""
    source = MINIMAL_PLAYBOOK.replace("facts:\n", f"regimes: [{', '.join(regimes)}]\nfacts:\n{_EXTRA_FACTS}", 1)
    compiled = compile_source(source.encode(), "regimes.yaml")
    assert compiled.playbook is not None, [str(p) for p in compiled.problems]
    assert compiled.playbook.regimes == regimes
    return compiled.playbook


class Case:
    """One incident under some regimes, driven through the product's decisions at explicit instants."""

    def __init__(
        self,
        *regimes: str,
        detected: datetime,
        facts: dict[str, FactValue] | None = None,
        level: ResponseLevel | None = None,
        table: dict[str, Regime] | None = None,
    ) -> None:
        self.table = table if table is not None else REGIMES
        self.run = IncidentRun(playbook=playbook(regimes), facts=facts or {}, detected_at=detected, now=detected)
        self.run.incident.regimes = {r: self.table[r] for r in regimes}
        if level is not None:
            self.declare(level, detected)

    @property
    def incident(self) -> Incident:
        return self.run.incident

    def _at(self, instant: datetime) -> None:
        self.run.now = max(self.run.now, instant)

    def declare(self, level: ResponseLevel, when: datetime) -> None:
        self._at(when)
        reason = "reassessed" if self.incident.level is not None else None
        self.run.do(decisions.declare_level, level, reason=reason)

    def clock(self, name: ClockName, instant: datetime) -> None:
        self._at(instant)
        self.run.do(decisions.record_clock, name, instant, reason=None)

    def restored(self, instant: datetime) -> None:
        self._at(instant)
        self.run.do(decisions.restore, degraded=False, at=instant, reason=None)

    def judge(self, regime: str, *, reportable: bool, when: datetime) -> None:
        self._at(when)
        self.run.do(judge_reportability, self.table[regime], reportable=reportable, instant=when, reason="assessed")

    def states(self) -> dict[tuple[str, str], ObligationState]:
        found = obligation_states(self.incident, self.table, calendar_for=calendar_for)
        return {(s.regime.id, s.obligation.id): s for s in found}

    def state(self, regime: str, obligation: str) -> ObligationState:
        states = self.states()
        assert (regime, obligation) in states, f"{regime}/{obligation} not among {sorted(states)}"
        return states[(regime, obligation)]

    def due(self, regime: str, obligation: str) -> datetime | None:
        return self.state(regime, obligation).due_at

    def _submission(self, regime: str, obligation: str, when: datetime, **kw: Any) -> dict[str, Any]:
        self.run.now = when
        return {
            "reference": f"{regime}/{obligation}/{when.isoformat()}",
            "document_sha256": "ab" * 32,
            "document_name": f"{obligation}.pdf",
            "missing": list(kw.pop("missing", [])),
            "late_reason": kw.pop("late_reason", None),
            "partial": kw.pop("partial", False),
        }

    def submit(self, regime: str, obligation: str, when: datetime, **kw: Any) -> list[Event]:
        args = self._submission(regime, obligation, when, **kw)
        return self.run.do(submit_report, self.state(regime, obligation), **args)

    def refuse(self, regime: str, obligation: str, when: datetime, **kw: Any) -> Exception:
        args = self._submission(regime, obligation, when, **kw)
        return self.run.refuse(submit_report, self.state(regime, obligation), **args)


def test_the_six_regime_files_load_and_say_what_the_regulations_say() -> None:
    assert sorted(REGIMES) == sorted([CAC, MIIT, FCC, GDPR, NIS2, DORA])
    assert {o.id: o.stage for o in REGIMES[CAC].obligations} == {"initial": "initial", "summary": "final"}
    assert {level.value for level in REGIMES[CAC].levels} == {"I", "II", "III"}
    assert REGIMES[CAC].obligation("initial").may_phase  # type: ignore[union-attr]
    assert not REGIMES[MIIT].obligation("immediate").may_phase  # type: ignore[union-attr]
    assert REGIMES[GDPR].obligation("notification").may_phase  # type: ignore[union-attr]
    fcc = REGIMES[FCC].reportability
    assert (fcc.kind, fcc.min_duration, fcc.min_user_minutes) == ("user_minutes", timedelta(minutes=30), 900_000)
    assert {r: REGIMES[r].reportability.kind for r in (GDPR, NIS2, DORA)} == dict.fromkeys(
        (GDPR, NIS2, DORA), "judgement"
    )
    assert (REGIMES[DORA].calendar.country, REGIMES[DORA].calendar.zone) == ("BE", "Europe/Brussels")
    assert (REGIMES[FCC].calendar.country, REGIMES[FCC].calendar.zone) == ("US", "America/New_York")


# -- CAC: 1 h / 2 h / 4 h from detection, levels I-III only; summary 30 days after the response ends ----------

DETECTED = at(SHANGHAI, 2026, 3, 2, 10, 0)  # a Monday, 02:00 UTC

CAC_INITIAL = [
    # (facts, level, due, variant label)
    ({"cii_involved": True}, ResponseLevel.III, utc(2026, 3, 2, 3), "Critical information infrastructure operator"),
    ({"cii_involved": True}, ResponseLevel.I, utc(2026, 3, 2, 3), "Critical information infrastructure operator"),
    ({"central_state_organ": True}, ResponseLevel.II, utc(2026, 3, 2, 4), "Central state organ"),
    ({"cii_involved": True, "central_state_organ": True}, ResponseLevel.II, utc(2026, 3, 2, 3), "Critical"),
    ({"cii_involved": False, "central_state_organ": False}, ResponseLevel.III, utc(2026, 3, 2, 6), "Other network"),
    ({}, ResponseLevel.I, utc(2026, 3, 2, 6), "Other network operators"),
]


@pytest.mark.parametrize(("facts", "level", "due", "label"), CAC_INITIAL)
def test_cac_initial_report_is_due_1h_2h_or_4h_after_detection(
    facts: dict[str, FactValue], level: ResponseLevel, due: datetime, label: str
) -> None:
    case = Case(CAC, MIIT, detected=DETECTED, facts=facts, level=level)
    state = case.state(CAC, "initial")
    assert state.due_at == due
    assert state.variant is not None and state.variant.label is not None
    assert state.variant.label.en.startswith(label)
    assert reportable_at(case.incident, REGIMES[CAC]) == (DETECTED, "computed")


def test_cac_counts_from_detection_not_from_the_level_declaration() -> None:
    case = Case(CAC, detected=DETECTED, facts={"cii_involved": True})
    assert case.states() == {}  # no level yet: the CAC measures apply from 较大 (III) up
    case.declare(ResponseLevel.III, DETECTED + timedelta(hours=3))
    assert case.due(CAC, "initial") == DETECTED + timedelta(hours=1)  # already overdue when declared


def test_cac_does_not_apply_at_level_iv_but_miit_does() -> None:
    case = Case(CAC, MIIT, detected=DETECTED, facts={"cii_involved": True}, level=ResponseLevel.IV)
    assert sorted(case.states()) == [(MIIT, "immediate")]
    case.declare(ResponseLevel.III, DETECTED + timedelta(minutes=20))
    assert sorted(case.states()) == [(CAC, "initial"), (CAC, "summary"), (MIIT, "immediate")]
    case.declare(ResponseLevel.IV, DETECTED + timedelta(minutes=40))
    assert sorted(case.states()) == [(MIIT, "immediate")]


def test_cac_summary_is_due_30_days_after_the_response_ends() -> None:
    case = Case(CAC, detected=DETECTED, level=ResponseLevel.II)
    summary = case.state(CAC, "summary")
    assert (summary.due_at, summary.waiting_for) == (None, "response_end")
    ended = at(SHANGHAI, 2026, 3, 5, 18, 0)
    case.clock(ClockName.RESPONSE_END, ended)
    assert case.due(CAC, "summary") == utc(2026, 4, 4, 10, 0)
    assert case.due(CAC, "summary") - ended == timedelta(days=30)  # type: ignore[operator]


@pytest.mark.parametrize("level", [ResponseLevel.IV, ResponseLevel.I])
def test_miit_report_is_due_immediately_on_detection(level: ResponseLevel) -> None:
    case = Case(MIIT, detected=DETECTED, level=level)
    state = case.state(MIIT, "immediate")
    assert state.due_at == DETECTED
    assert state.variant is not None and state.variant.label is not None
    assert state.variant.label.en == "immediately"


def test_before_a_level_is_declared_only_measured_or_judged_regimes_apply() -> None:
    """An alert in triage may be a false alarm: regimes apply once a level is declared, except where
    reportability is measured (FCC's user-minutes) or was judged."""
    case = Case(CAC, MIIT, FCC, GDPR, NIS2, DORA, detected=DETECTED, facts={"affected_users": 50_000})
    assert sorted({r for r, _ in case.states()}) == [FCC]
    case.judge(GDPR, reportable=True, when=DETECTED + timedelta(minutes=10))
    assert sorted({r for r, _ in case.states()}) == sorted([FCC, GDPR])
    case.declare(ResponseLevel.IV, DETECTED + timedelta(minutes=20))
    assert sorted({r for r, _ in case.states()}) == sorted([DORA, FCC, GDPR, MIIT, NIS2])  # CAC: I-III only
    assert case.due(MIIT, "immediate") == DETECTED  # declared later, due from detection all the same


# -- FCC Part 4: 30 minutes AND 900,000 user-minutes; 120 min / 72 h / 30 days --------------------------

ONSET = at(NEW_YORK, 2026, 6, 10, 10, 0)  # 14:00 UTC

FCC_THRESHOLDS = [
    # (users, restored after onset or None (ongoing), reportable after onset or None (not reportable))
    (1_000_000, None, timedelta(minutes=30)),  # the duration limit governs
    (1_000_000, timedelta(minutes=29, seconds=59), None),  # just under 30 minutes
    (1_000_000, timedelta(minutes=30), timedelta(minutes=30)),  # exactly 30 minutes: reportable
    (1_000_000, timedelta(minutes=30, seconds=1), timedelta(minutes=30)),
    (30_000, None, timedelta(minutes=30)),  # both limits met at the same minute: 30,000 x 30 = 900,000
    (30_000, timedelta(minutes=29, seconds=59), None),
    (30_000, timedelta(minutes=30), timedelta(minutes=30)),
    (30_001, timedelta(minutes=30), timedelta(minutes=30)),  # 900,030 user-minutes at 30 minutes
    (29_999, timedelta(minutes=30), None),  # 899,970 user-minutes at 30 minutes: not reportable
    (10_000, None, timedelta(minutes=90)),  # the user-minutes limit governs: 10,000 x 90 = 900,000
    (10_000, timedelta(minutes=89, seconds=59), None),  # 899,833 user-minutes
    (10_000, timedelta(minutes=90), timedelta(minutes=90)),  # exactly 900,000: reportable
    (10_000, timedelta(minutes=90, seconds=1), timedelta(minutes=90)),
    (9_000, None, timedelta(minutes=100)),
]


@pytest.mark.parametrize(("users", "restored", "reportable"), FCC_THRESHOLDS)
def test_fcc_reportable_exactly_when_30_minutes_and_900000_user_minutes_are_reached(
    users: int, restored: timedelta | None, reportable: timedelta | None
) -> None:
    case = Case(FCC, detected=ONSET, facts={"affected_users": users})
    if restored is not None:
        case.restored(ONSET + restored)
    when, how = reportable_at(case.incident, REGIMES[FCC])
    if reportable is None:
        assert (when, how) == (None, "not reportable")
        assert case.states() == {}
        return
    assert (when, how) == (ONSET + reportable, "computed")
    states = case.states()
    assert states[(FCC, "notification")].due_at == ONSET + reportable + timedelta(minutes=120)
    assert states[(FCC, "initial")].due_at == ONSET + timedelta(hours=72) == utc(2026, 6, 13, 14)
    assert states[(FCC, "final")].due_at == ONSET + timedelta(days=30) == utc(2026, 7, 10, 14)


def test_fcc_user_minutes_count_fractions_of_a_minute() -> None:
    """§4.5(e)(1): user-minutes are the outage's duration *expressed in minutes* times the users. 7,000 users
    for 128 min 40 s is 900,667 user-minutes (over 30 minutes): reportable, and reportable from
    900,000 / 7,000 = 128.571 min (128 min 34.3 s), not from the next whole minute."""
    case = Case(FCC, detected=ONSET, facts={"affected_users": 7_000})
    when, how = reportable_at(case.incident, REGIMES[FCC])
    assert how == "computed" and when is not None
    assert ONSET + timedelta(minutes=128, seconds=34) <= when <= ONSET + timedelta(minutes=128, seconds=35)
    case.restored(ONSET + timedelta(minutes=128, seconds=40))
    assert reportable_at(case.incident, REGIMES[FCC])[1] == "computed"


def test_fcc_without_the_number_of_users_the_notification_waits_for_reportability() -> None:
    case = Case(FCC, detected=ONSET)
    assert reportable_at(case.incident, REGIMES[FCC]) == (None, "unknown")
    notification = case.state(FCC, "notification")
    assert (notification.due_at, notification.waiting_for) == (None, "reportability")
    assert case.due(FCC, "initial") == utc(2026, 6, 13, 14)
    case.run.now = ONSET + timedelta(minutes=40)
    case.run.do(decisions.set_facts, {"affected_users": 50_000}, reason=None)
    assert case.due(FCC, "notification") == ONSET + timedelta(minutes=30 + 120)


def test_fcc_judged_reportability_overrides_the_computation() -> None:
    case = Case(FCC, detected=ONSET, facts={"affected_users": 1_000})  # 900 minutes to reach the threshold
    determined = ONSET + timedelta(minutes=45)
    case.judge(FCC, reportable=True, when=determined)  # e.g. a 911 special facility affected
    assert reportable_at(case.incident, REGIMES[FCC]) == (determined, "judged")
    assert case.due(FCC, "notification") == determined + timedelta(minutes=120)


# -- GDPR: 72 h after awareness ------------------------------------------------------------------------

AWARE = at(BRUSSELS, 2026, 6, 10, 9, 30)  # 07:30 UTC, a Wednesday


def test_gdpr_waits_for_awareness_then_falls_due_72h_later() -> None:
    case = Case(GDPR, detected=AWARE - timedelta(hours=5), level=ResponseLevel.II)
    state = case.state(GDPR, "notification")
    assert (state.due_at, state.waiting_for) == (None, "awareness")
    assert reportable_at(case.incident, REGIMES[GDPR]) == (None, "unknown")
    case.clock(ClockName.AWARENESS, AWARE)
    assert case.due(GDPR, "notification") == utc(2026, 6, 13, 7, 30)


def test_gdpr_judged_reportable_keeps_the_deadline_and_judged_not_reportable_drops_it() -> None:
    reportable = Case(GDPR, detected=AWARE, level=ResponseLevel.II)
    reportable.clock(ClockName.AWARENESS, AWARE)
    reportable.judge(GDPR, reportable=True, when=AWARE + timedelta(hours=2))
    assert reportable_at(reportable.incident, REGIMES[GDPR]) == (AWARE + timedelta(hours=2), "judged")
    assert reportable.due(GDPR, "notification") == AWARE + timedelta(hours=72)

    unlikely = Case(GDPR, detected=AWARE, level=ResponseLevel.II)
    unlikely.clock(ClockName.AWARENESS, AWARE)
    unlikely.judge(GDPR, reportable=False, when=AWARE + timedelta(hours=2))  # unlikely to result in a risk
    assert reportable_at(unlikely.incident, REGIMES[GDPR]) == (None, "not reportable")
    assert unlikely.states() == {}


def test_a_recorded_reportability_clock_says_when_it_became_reportable() -> None:
    case = Case(GDPR, detected=AWARE, level=ResponseLevel.II)
    case.clock(ClockName.REPORTABILITY, AWARE + timedelta(hours=3))
    assert reportable_at(case.incident, REGIMES[GDPR]) == (AWARE + timedelta(hours=3), "clock")


# -- NIS2: 24 h / 72 h after awareness; final one calendar month after the notification was submitted ----


def test_nis2_early_warning_24h_and_notification_72h_after_awareness() -> None:
    case = Case(NIS2, detected=AWARE - timedelta(hours=1), level=ResponseLevel.II)
    assert {o: s.waiting_for for (_, o), s in case.states().items()} == {
        "early_warning": "awareness",
        "notification": "awareness",
        "final": "submission:notification",
    }
    case.clock(ClockName.AWARENESS, AWARE)
    assert case.due(NIS2, "early_warning") == utc(2026, 6, 11, 7, 30)
    assert case.due(NIS2, "notification") == utc(2026, 6, 13, 7, 30)


def test_nis2_final_report_is_chained_to_the_notification_submission_not_its_deadline() -> None:
    case = Case(NIS2, detected=AWARE, level=ResponseLevel.II)
    case.clock(ClockName.AWARENESS, AWARE)
    case.submit(NIS2, "early_warning", AWARE + timedelta(hours=10))
    assert case.state(NIS2, "final").waiting_for == "submission:notification"  # the early warning does not start it
    submitted = at(BRUSSELS, 2026, 6, 12, 16, 45)  # a day before the notification's deadline
    case.submit(NIS2, "notification", submitted)
    assert case.due(NIS2, "final") == at(BRUSSELS, 2026, 7, 12, 16, 45) == utc(2026, 7, 12, 14, 45)


NIS2_MONTH_ENDS = [
    (at(BRUSSELS, 2026, 1, 31, 10), utc(2026, 2, 28, 9)),  # 31 January -> 28 February
    (at(BRUSSELS, 2028, 1, 31, 10), utc(2028, 2, 29, 9)),  # leap year -> 29 February
    (at(BRUSSELS, 2026, 3, 31, 18), utc(2026, 4, 30, 16)),  # 31 March -> 30 April
    (at(BRUSSELS, 2026, 8, 31, 8), utc(2026, 9, 30, 6)),
    (at(BRUSSELS, 2026, 12, 31, 10), utc(2027, 1, 31, 9)),  # across the year
    (at(BRUSSELS, 2026, 1, 30, 10), utc(2026, 2, 28, 9)),
    (at(BRUSSELS, 2026, 2, 28, 10), utc(2026, 3, 28, 9)),  # the 28th stays the 28th
]


@pytest.mark.parametrize(("submitted", "due"), NIS2_MONTH_ENDS)
def test_nis2_final_one_month_later_clamps_to_the_end_of_a_shorter_month(submitted: datetime, due: datetime) -> None:
    aware = submitted - timedelta(hours=30)
    case = Case(NIS2, detected=aware, level=ResponseLevel.II)
    case.clock(ClockName.AWARENESS, aware)
    case.submit(NIS2, "notification", submitted)
    assert case.due(NIS2, "final") == due


# -- DORA: min(classification + 4 h, awareness + 24 h); 72 h; one month; weekend/holiday -> 12:00 ---------

DORA_INITIAL = [
    # (awareness, classification, due, why)
    (at(BRUSSELS, 2026, 6, 1, 8), at(BRUSSELS, 2026, 6, 1, 10), utc(2026, 6, 1, 12), "classification + 4 h first"),
    (at(BRUSSELS, 2026, 6, 1, 8), at(BRUSSELS, 2026, 6, 2, 7), utc(2026, 6, 2, 6), "awareness + 24 h first"),
    (at(BRUSSELS, 2026, 6, 1, 8), at(BRUSSELS, 2026, 6, 2, 4), utc(2026, 6, 2, 6), "both at 08:00 the next day"),
    # classification + 4 h = Saturday 02:00 -> Monday 12:00 CEST
    (at(BRUSSELS, 2026, 6, 5, 9), at(BRUSSELS, 2026, 6, 5, 22), utc(2026, 6, 8, 10), "Saturday -> Monday noon"),
    # awareness + 24 h = Saturday 09:00 -> Monday 12:00
    (at(BRUSSELS, 2026, 6, 5, 9), at(BRUSSELS, 2026, 6, 6, 8), utc(2026, 6, 8, 10), "Saturday (awareness)"),
    # Tuesday 21 July 2026 is Belgium's National Day -> Wednesday 22 July 12:00 CEST
    (at(BRUSSELS, 2026, 7, 20, 20), at(BRUSSELS, 2026, 7, 20, 22), utc(2026, 7, 22, 10), "Belgian National Day"),
    # Thursday 14 May 2026 (Ascension) -> Friday 15 May 12:00
    (at(BRUSSELS, 2026, 5, 13, 23), at(BRUSSELS, 2026, 5, 13, 23, 30), utc(2026, 5, 15, 10), "Ascension Day"),
    # Sunday 5 April, then Easter Monday 6 April -> Tuesday 7 April 12:00 CEST
    (at(BRUSSELS, 2026, 4, 4, 12), at(BRUSSELS, 2026, 4, 5, 9), utc(2026, 4, 7, 10), "Sunday then Easter Monday"),
    # Friday 23:59 is a working day: no roll
    (at(BRUSSELS, 2026, 6, 4, 23, 59), at(BRUSSELS, 2026, 6, 5, 20), utc(2026, 6, 5, 21, 59), "Friday night"),
]


@pytest.mark.parametrize(("aware", "classified", "due", "why"), DORA_INITIAL, ids=[row[3] for row in DORA_INITIAL])
def test_dora_initial_notification(aware: datetime, classified: datetime, due: datetime, why: str) -> None:
    case = Case(DORA, detected=aware)
    case.clock(ClockName.AWARENESS, aware)
    case.clock(ClockName.CLASSIFICATION, classified)
    case.judge(DORA, reportable=True, when=classified)  # classified as a major ICT-related incident
    assert case.due(DORA, "initial") == due, why


def test_dora_the_roll_lands_at_noon_local_time_on_the_next_working_day() -> None:
    case = Case(DORA, detected=at(BRUSSELS, 2026, 6, 5, 9))
    case.clock(ClockName.AWARENESS, at(BRUSSELS, 2026, 6, 5, 9))
    case.clock(ClockName.CLASSIFICATION, at(BRUSSELS, 2026, 6, 5, 22))
    case.judge(DORA, reportable=True, when=at(BRUSSELS, 2026, 6, 5, 22))
    due = case.due(DORA, "initial")
    assert due is not None
    local = due.astimezone(BRUSSELS)
    assert (local.date().isoformat(), local.hour, local.minute, local.strftime("%a")) == ("2026-06-08", 12, 0, "Mon")


DORA_CHAIN = [
    # (initial submitted, intermediate due, intermediate submitted, final due)
    (  # Monday + 72 h = Thursday; Thursday + 1 month = Saturday 4 July -> Monday 6 July 12:00
        at(BRUSSELS, 2026, 6, 1, 11),
        utc(2026, 6, 4, 9),
        at(BRUSSELS, 2026, 6, 4, 11),
        utc(2026, 7, 6, 10),
    ),
    (  # Wednesday 15:00 + 72 h = Saturday -> Monday 8 June 12:00; + 1 month = Wednesday 8 July, no roll
        at(BRUSSELS, 2026, 6, 3, 15),
        utc(2026, 6, 8, 10),
        at(BRUSSELS, 2026, 6, 8, 16, 20),
        utc(2026, 7, 8, 14, 20),
    ),
    (  # intermediate on Tuesday 14 April: one month later is Ascension Day -> Friday 15 May 12:00
        at(BRUSSELS, 2026, 4, 10, 9),
        utc(2026, 4, 13, 7),
        at(BRUSSELS, 2026, 4, 14, 10),
        utc(2026, 5, 15, 10),
    ),
]


@pytest.mark.parametrize(("initial", "intermediate_due", "intermediate", "final_due"), DORA_CHAIN)
def test_dora_intermediate_72h_after_the_initial_and_final_one_month_after_the_intermediate(
    initial: datetime, intermediate_due: datetime, intermediate: datetime, final_due: datetime
) -> None:
    aware = initial - timedelta(hours=3)
    case = Case(DORA, detected=aware)
    case.clock(ClockName.AWARENESS, aware)
    case.clock(ClockName.CLASSIFICATION, aware + timedelta(hours=1))
    case.judge(DORA, reportable=True, when=aware + timedelta(hours=1))
    assert case.state(DORA, "intermediate").waiting_for == "submission:initial"
    assert case.state(DORA, "final").waiting_for == "submission:intermediate"
    case.submit(DORA, "initial", initial)
    assert case.due(DORA, "intermediate") == intermediate_due
    assert case.state(DORA, "final").waiting_for == "submission:intermediate"
    case.submit(DORA, "intermediate", intermediate)
    assert case.due(DORA, "final") == final_due


# -- daylight saving: elapsed spans are exact in UTC, month spans keep the local wall time --------------

ELAPSED_ACROSS_DST = [
    # (regime, obligation, clock, trigger, span, zone, local wall time of the deadline)
    (GDPR, "notification", ClockName.AWARENESS, at(BRUSSELS, 2026, 3, 28, 10), 72, BRUSSELS, (3, 31, 11)),
    (GDPR, "notification", ClockName.AWARENESS, at(BRUSSELS, 2026, 10, 24, 10), 72, BRUSSELS, (10, 27, 9)),
    (NIS2, "early_warning", ClockName.AWARENESS, at(BRUSSELS, 2026, 3, 28, 12), 24, BRUSSELS, (3, 29, 13)),
    (NIS2, "early_warning", ClockName.AWARENESS, at(BRUSSELS, 2026, 10, 24, 12), 24, BRUSSELS, (10, 25, 11)),
    (FCC, "initial", ClockName.DETECTION, at(NEW_YORK, 2026, 3, 7, 12), 72, NEW_YORK, (3, 10, 13)),
    (FCC, "initial", ClockName.DETECTION, at(NEW_YORK, 2026, 10, 31, 12), 72, NEW_YORK, (11, 3, 11)),
    (FCC, "final", ClockName.DETECTION, at(NEW_YORK, 2026, 2, 20, 12), 30 * 24, NEW_YORK, (3, 22, 13)),
    (FCC, "final", ClockName.DETECTION, at(NEW_YORK, 2026, 10, 20, 12), 30 * 24, NEW_YORK, (11, 19, 11)),
]


@pytest.mark.parametrize(("regime", "obligation", "clock", "trigger", "hours", "zone", "wall"), ELAPSED_ACROSS_DST)
def test_elapsed_deadlines_across_a_daylight_saving_change_are_exact_hours_in_utc(
    regime: str,
    obligation: str,
    clock: ClockName,
    trigger: datetime,
    hours: int,
    zone: ZoneInfo,
    wall: tuple[int, int, int],
) -> None:
    case = Case(regime, detected=trigger, facts={"affected_users": 1_000_000}, level=ResponseLevel.II)
    if clock is not ClockName.DETECTION:
        case.clock(clock, trigger)
    due = case.due(regime, obligation)
    assert due is not None
    assert (due - trigger).total_seconds() == hours * 3600
    local = due.astimezone(zone)
    assert (local.month, local.day, local.hour, local.minute) == (*wall, 0)
    assert local.hour != trigger.astimezone(zone).hour  # the wall clock moved by the hour the zone gained or lost


def test_fcc_notification_in_the_night_the_clocks_spring_forward() -> None:
    onset = at(NEW_YORK, 2026, 3, 8, 1, 0)  # 01:00 EST; at 02:00 the clocks jump to 03:00 EDT
    case = Case(FCC, detected=onset, facts={"affected_users": 1_000_000})
    due = case.due(FCC, "notification")
    assert due == onset + timedelta(minutes=150) == utc(2026, 3, 8, 8, 30)
    assert due.astimezone(NEW_YORK).strftime("%H:%M %Z") == "04:30 EDT"


MONTHS_ACROSS_DST = [
    # (regime, the submission that starts the month, when, due, local wall time kept)
    (NIS2, "notification", at(BRUSSELS, 2026, 3, 10, 10), utc(2026, 4, 10, 8)),  # 10:00 CET -> 10:00 CEST
    (NIS2, "notification", at(BRUSSELS, 2026, 10, 20, 10), utc(2026, 11, 20, 9)),  # 10:00 CEST -> 10:00 CET
    (DORA, "intermediate", at(BRUSSELS, 2026, 10, 5, 15), utc(2026, 11, 5, 14)),  # Thursday 5 Nov, 15:00 CET
    (DORA, "intermediate", at(BRUSSELS, 2026, 3, 3, 15), utc(2026, 4, 3, 13)),  # Friday 3 April, 15:00 CEST
]


@pytest.mark.parametrize(("regime", "submission", "submitted", "due"), MONTHS_ACROSS_DST)
def test_month_deadlines_keep_the_local_wall_time_across_daylight_saving(
    regime: str, submission: str, submitted: datetime, due: datetime
) -> None:
    aware = submitted - timedelta(hours=30)
    case = Case(regime, detected=aware)
    case.clock(ClockName.AWARENESS, aware)
    case.judge(regime, reportable=True, when=aware)
    if regime == DORA:
        case.clock(ClockName.CLASSIFICATION, aware)
        case.submit(DORA, "initial", aware + timedelta(hours=2))
    case.submit(regime, submission, submitted)
    final = case.due(regime, "final")
    assert final == due
    assert final.astimezone(BRUSSELS).strftime("%d %H:%M") == submitted.astimezone(BRUSSELS).strftime("%d %H:%M")
    assert (final - submitted).total_seconds() % 3600 == 0
    assert (final - submitted) != timedelta(days=(final.date() - submitted.date()).days)  # an hour gained or lost


# -- working days (`3wd`): China's official calendar, make-up working days included ----------------------


def working_day_regime(**clause: Any) -> dict[str, Regime]:
    doc = RegimeDoc.model_validate(
        {
            "id": MIIT,
            "title": {"zh-CN": "工作日测试", "en": "Working-day test"},
            "authority": {"zh-CN": "测试", "en": "test"},
            "source": "a written report within three working days",
            "calendar": {"country": "CN", "zone": "Asia/Shanghai"},
            "obligations": [
                {
                    "id": "written",
                    "stage": "final",
                    "title": {"zh-CN": "书面报告", "en": "Written report"},
                    "variants": [{"due": [{"after": "detection", "within": "3wd", **clause}]}],
                }
            ],
        }
    )
    return {MIIT: compile_regime(doc)}


WORKING_DAYS = [
    # (detected, due, why) — `3wd` falls due at the end (local midnight) of the third working day after
    (at(SHANGHAI, 2026, 9, 11, 15), at(SHANGHAI, 2026, 9, 17), "Friday: Mon, Tue, Wed"),
    (at(SHANGHAI, 2026, 9, 19, 10), at(SHANGHAI, 2026, 9, 23), "Saturday: make-up Sunday 20 Sep, Mon, Tue"),
    (at(SHANGHAI, 2026, 9, 24, 10), at(SHANGHAI, 2026, 10, 1), "Thursday: Mid-autumn Fri-Sun off; Mon-Wed"),
    (at(SHANGHAI, 2026, 9, 30, 10), at(SHANGHAI, 2026, 10, 11), "eve of National Day: 8, 9, make-up Sat 10 Oct"),
    (at(SHANGHAI, 2026, 10, 3, 10), at(SHANGHAI, 2026, 10, 11), "during the holiday: 8, 9, 10 Oct"),
    (at(SHANGHAI, 2026, 10, 8, 1), at(SHANGHAI, 2026, 10, 13), "Thu 8 Oct 01:00 (7 Oct in UTC): 9, 10, 12 Oct"),
    (at(SHANGHAI, 2026, 10, 10, 23, 30), at(SHANGHAI, 2026, 10, 15), "make-up Saturday: 12, 13, 14 Oct"),
]


@pytest.mark.parametrize(("detected", "due", "why"), WORKING_DAYS, ids=[row[2] for row in WORKING_DAYS])
def test_working_days_on_chinas_official_calendar(detected: datetime, due: datetime, why: str) -> None:
    table = working_day_regime()
    case = Case(MIIT, detected=detected, table=table, level=ResponseLevel.IV)
    assert case.due(MIIT, "written") == due, why
    assert due.astimezone(SHANGHAI).hour == 0


def test_working_days_on_a_clause_calendar_of_its_own() -> None:
    """A clause may count on another country's calendar: 2026-07-03 is Independence Day observed in the US."""
    table = working_day_regime(calendar={"country": "US", "zone": "America/New_York"})
    case = Case(MIIT, detected=at(NEW_YORK, 2026, 7, 2, 12), table=table, level=ResponseLevel.IV)
    assert case.due(MIIT, "written") == at(NEW_YORK, 2026, 7, 9) == utc(2026, 7, 9, 4)  # Mon 6, Tue 7, Wed 8


# -- phased, partial, late and repeated submissions -----------------------------------------------------


def cac_case() -> Case:
    return Case(CAC, MIIT, NIS2, detected=DETECTED, facts={"cii_involved": True}, level=ResponseLevel.III)


def test_a_partial_cac_initial_report_counts_as_submitted_and_stays_partial() -> None:
    case = cac_case()
    events = case.submit(CAC, "initial", DETECTED + timedelta(minutes=50), partial=True, missing=["Impact"])
    assert isinstance(events[0], ReportSubmitted) and events[0].partial
    state = case.state(CAC, "initial")
    assert state.partial is True
    assert state.submitted_at == DETECTED + timedelta(minutes=50)
    assert state.late_by is None
    # the rest may follow: a further phase, then the full report
    case.submit(CAC, "initial", DETECTED + timedelta(minutes=55), partial=True)
    case.submit(CAC, "initial", DETECTED + timedelta(minutes=58))
    assert case.state(CAC, "initial").partial is False
    refused = case.refuse(CAC, "initial", DETECTED + timedelta(minutes=59))
    assert isinstance(refused, InvalidTransition) and "already submitted" in str(refused)


def test_a_report_that_may_not_be_phased_refuses_partial() -> None:
    case = cac_case()
    refused = case.refuse(MIIT, "immediate", DETECTED, partial=True)
    assert isinstance(refused, InvalidInput) and "may not be submitted in phases" in str(refused)
    refused = case.refuse(NIS2, "early_warning", DETECTED, partial=True)
    assert isinstance(refused, InvalidInput)


def test_missing_required_fields_are_refused_unless_partial_on_a_phased_obligation() -> None:
    case = cac_case()
    refused = case.refuse(CAC, "initial", DETECTED + timedelta(minutes=30), missing=["Unit", "Impact"])
    assert isinstance(refused, InvalidTransition)
    assert "Unit, Impact" in str(refused) and "--partial" in str(refused)
    refused = case.refuse(MIIT, "immediate", DETECTED, missing=["Measures taken"])
    assert isinstance(refused, InvalidTransition) and "--partial" not in str(refused)
    refused = case.refuse(MIIT, "immediate", DETECTED, missing=["Measures taken"], partial=True)
    assert isinstance(refused, InvalidInput)
    case.submit(CAC, "initial", DETECTED + timedelta(minutes=30), missing=["Unit", "Impact"], partial=True)
    assert case.state(CAC, "initial").partial


def test_a_late_report_needs_its_reason_where_the_regime_requires_one_and_records_how_late() -> None:
    case = cac_case()
    due = DETECTED + timedelta(hours=1)
    late = due + timedelta(minutes=17, seconds=30)
    refused = case.refuse(CAC, "initial", late)
    assert isinstance(refused, InvalidInput) and "late by 17 min" in str(refused) and "--late-reason" in str(refused)
    refused = case.refuse(CAC, "initial", late, late_reason="   ")
    assert isinstance(refused, InvalidInput)
    case.submit(CAC, "initial", late, late_reason="the CII operator's duty officer was unreachable")
    state = case.state(CAC, "initial")
    assert (state.submitted_at, state.late_by, state.partial) == (late, timedelta(minutes=17, seconds=30), False)
    event = case.run.events[-1]
    assert isinstance(event, ReportSubmitted) and event.late_reason == "the CII operator's duty officer was unreachable"

    # exactly at the deadline is on time; a second later is late
    on_time = cac_case()
    on_time.submit(CAC, "initial", due)
    assert on_time.state(CAC, "initial").late_by is None
    assert isinstance(cac_case().refuse(CAC, "initial", due + timedelta(seconds=1)), InvalidInput)


def test_a_late_report_where_no_reason_is_required_is_accepted_and_still_late() -> None:
    case = cac_case()
    aware = DETECTED + timedelta(minutes=10)
    case.clock(ClockName.AWARENESS, aware)
    late = aware + timedelta(hours=26)
    case.submit(NIS2, "early_warning", late)
    assert case.state(NIS2, "early_warning").late_by == timedelta(hours=2)


def test_miit_immediate_is_late_from_the_first_second_and_needs_a_reason() -> None:
    case = cac_case()
    refused = case.refuse(MIIT, "immediate", DETECTED + timedelta(minutes=5))
    assert isinstance(refused, InvalidInput)
    case.submit(MIIT, "immediate", DETECTED + timedelta(minutes=5), late_reason="confirming the scope first")
    assert case.state(MIIT, "immediate").late_by == timedelta(minutes=5)


def test_a_submission_records_the_regulators_reference() -> None:
    case = cac_case()
    args = case._submission(CAC, "initial", DETECTED + timedelta(minutes=20))
    refused = case.run.refuse(submit_report, case.state(CAC, "initial"), **(args | {"reference": "  "}))
    assert isinstance(refused, InvalidInput) and "--reference" in str(refused)


def test_a_second_full_submission_is_refused() -> None:
    case = cac_case()
    case.submit(CAC, "initial", DETECTED + timedelta(minutes=20))
    refused = case.refuse(CAC, "initial", DETECTED + timedelta(minutes=25))
    assert isinstance(refused, InvalidTransition) and "already submitted" in str(refused)
    refused = case.refuse(CAC, "initial", DETECTED + timedelta(minutes=25), partial=True)
    assert isinstance(refused, InvalidTransition)


def test_a_supplement_to_a_phased_report_filed_on_time_is_not_late() -> None:
    """GDPR Art. 33(4) and CAC Art. 4: items first within the deadline, the rest "without undue further delay"
    (补报). The deadline was met by the first phase: the supplement after it is neither refused for want of a
    late reason nor recorded as late."""
    case = cac_case()
    case.submit(CAC, "initial", DETECTED + timedelta(minutes=40), partial=True)
    supplement = DETECTED + timedelta(hours=5)
    case.submit(CAC, "initial", supplement)  # no --late-reason: the report was not late
    state = case.state(CAC, "initial")
    assert state.partial is False
    assert state.late_by is None
