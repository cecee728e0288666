"""Running a real emergency, in the domain: warnings, the end of the response, cancel and reopen, people
and shifts, handover, the incident log, situation reports and their deadline, resources and their
deadlines, impact, links, joined playbooks, snapshots and the projection rows each event touches.

Incidents are opened on a small storm plan compiled here (two warning levels, three roles, two resource
kinds, a sitrep interval per level) and driven through ir.domain.emergency_decisions on an explicit clock
with tests.builders.IncidentRun; every refusal is checked to change nothing (IncidentRun.refuse compares
the whole snapshot and the version before and after) and to read exactly as the user will read it.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ir.adapters.playbooks.compiler import compile_source
from ir.domain import decisions
from ir.domain import emergency_decisions as ed
from ir.domain.clocks import ClockName
from ir.domain.deadlines import DeadlineState, deadlines, resource_deadlines, sitrep_deadline, touched_refs
from ir.domain.emergency import joined_step_id, merge_playbooks
from ir.domain.errors import InvalidInput, InvalidTransition, IrError, NotFound
from ir.domain.events import (
    ClockRecorded,
    CommandHandedOver,
    Event,
    ImpactSet,
    IncidentCancelled,
    IncidentLinked,
    IncidentReopened,
    IncidentUnlinked,
    LogEntryAdded,
    PlaybookAdded,
    ResourceAllocated,
    ResourceMoved,
    ResourceRequestCancelled,
    ResourceRequested,
    ResponseEnded,
    RoleAssigned,
    RoleUnassigned,
    SitrepDrafted,
    SitrepEdited,
    SitrepReleased,
    WarningIssued,
    WarningLifted,
    event_from_dict,
    event_to_dict,
)
from ir.domain.incident import Incident, StepStatus
from ir.domain.levels import ResponseLevel, WarningLevel
from ir.domain.personal import Personal
from ir.domain.playbook import Playbook
from ir.domain.situation import sitrep_text, situation
from ir.domain.snapshot import from_snapshot, joined_playbooks, to_snapshot
from tests.builders import MINIMAL_PLAYBOOK, Decision, IncidentRun

T0 = datetime(2026, 9, 3, 6, 0, tzinfo=UTC)  # three days before landfall
LANDFALL = T0 + timedelta(hours=72)
H = timedelta(hours=1)
M = timedelta(minutes=1)
I, II, III, IV = ResponseLevel.I, ResponseLevel.II, ResponseLevel.III, ResponseLevel.IV  # noqa: E741
RED, ORANGE, YELLOW = WarningLevel.RED, WarningLevel.ORANGE, WarningLevel.YELLOW
SERVICES = {"mobile-voice", "mobile-data", "sms", "fixed-broadband"}

_HEAD = MINIMAL_PLAYBOOK.split("roles:\n", 1)[0]

STORM = (
    _HEAD.replace("id: mini\n", "id: storm\n", 1).replace("category: outage", "category: disaster")
    + """\
roles:
  - id: commander
    title: {zh-CN: 指挥长, en: Commander}
  - id: noc
    title: {zh-CN: 网管, en: NOC}
  - id: field
    title: {zh-CN: 抢修, en: Field repair}
facts:
  - name: affected_users
    type: integer
    title: {zh-CN: 受影响用户, en: Users affected}
  - name: scope
    type: enum
    values: [city, province, national]
    title: {zh-CN: 范围, en: Scope}
levels:
  I: {criteria: affected_users >= 1_000_000, declared_by: commander, rto: 2h, rpo: 0s, mtpd: 6h}
  II: {criteria: affected_users >= 100_000, declared_by: commander, rto: 4h, rpo: 0s, mtpd: 12h}
  III: {criteria: affected_users >= 10_000, declared_by: commander, rto: 8h, rpo: 0s, mtpd: 24h}
  IV: {criteria: affected_users >= 1, declared_by: commander, rto: 12h, rpo: 0s, mtpd: 48h}
warnings:
  red: {criteria: scope == "national", declared_by: commander}
  orange: {criteria: scope == "province", declared_by: commander}
resources:
  - kind: generator
    title: {zh-CN: 油机, en: Generator}
    unit: {zh-CN: 台, en: units}
  - kind: repair_team
    title: {zh-CN: 抢修队, en: Repair team}
    unit: {zh-CN: 支, en: teams}
steps:
  - id: prepare
    title: {zh-CN: 预置, en: Prepare}
    instructions: {zh-CN: 预置物资, en: Pre-position stock}
    role: noc
    warnings: [red, orange]
    due: expected_impact - 24h
  - id: harden
    title: {zh-CN: 加固, en: Harden}
    instructions: {zh-CN: 加固站点, en: Harden sites}
    role: field
    depends_on: [prepare]
    warnings: [red]
    due: expected_impact - 6h
  - id: assess
    title: {zh-CN: 评估, en: Assess}
    instructions: {zh-CN: 评估灾情, en: Assess the damage}
    role: noc
    due: detection + 30m
  - id: repair
    title: {zh-CN: 抢修, en: Repair}
    instructions: {zh-CN: 抢修, en: Repair}
    role: field
    depends_on: [assess]
    kind: restore
    restores: full
    requests:
      - {kind: generator, quantity: 3, needed_by: declaration + 2h}
restoration:
  degraded: {zh-CN: 部分恢复, en: Partly back}
  full: {zh-CN: 全部恢复, en: All back}
sitrep:
  I: 1h
  II: 2h
  III: 4h
  IV: 6h
"""
)

QUAKE = (
    _HEAD.replace("id: mini\n", "id: quake\n", 1)
    + """\
roles:
  - id: commander
    title: {zh-CN: 指挥长, en: Commander}
  - id: rescue
    title: {zh-CN: 救援, en: Rescue}
facts:
  - name: affected_users
    type: integer
    title: {zh-CN: 受影响用户, en: Users affected}
  - name: magnitude
    type: number
    title: {zh-CN: 震级, en: Magnitude}
levels:
  I: {criteria: magnitude >= 7, declared_by: commander, rto: 2h, rpo: 0s, mtpd: 6h}
  II: {criteria: magnitude >= 6, declared_by: commander, rto: 4h, rpo: 0s, mtpd: 12h}
  III: {criteria: magnitude >= 5, declared_by: commander, rto: 8h, rpo: 0s, mtpd: 24h}
  IV: {criteria: magnitude >= 4, declared_by: commander, rto: 12h, rpo: 0s, mtpd: 48h}
steps:
  - id: confirm
    title: {zh-CN: 确认, en: Confirm}
    instructions: {zh-CN: 确认震情, en: Confirm the quake}
    role: rescue
    due: detection + 15m
  - id: rescue
    title: {zh-CN: 救援, en: Rescue}
    instructions: {zh-CN: 救援, en: Rescue}
    role: rescue
    depends_on: [confirm]
    due: step:confirm + 1h
notifications:
  - id: tell-quake-office
    title: {zh-CN: 报地震局, en: Tell the quake office}
    audience: regulator
    roles: [commander]
    channels: [email]
    template: regulator-initial
    due: step:confirm + 30m
restoration:
  degraded: {zh-CN: 部分恢复, en: Partly back}
  full: {zh-CN: 全部恢复, en: All back}
"""
)

# a plan whose `scope` is a number, not the storm's enum
CLASH = (
    QUAKE.replace("id: quake\n", "id: clash\n", 1)
    .replace("magnitude", "scope")
    .replace("type: number", "type: integer")
)


# the storm plan with a call-out due sooner under a more severe warning
CALLOUT = STORM.replace("id: storm\n", "id: callout\n", 1).replace(
    "restoration:\n",
    """\
notifications:
  - id: standby
    title: {zh-CN: 人员待命, en: Responders on standby}
    audience: internal
    roles: [noc, field]
    channels: [sms]
    template: warning-issued
    warnings: [red, orange]
    due: {red: detection + 15m, orange: detection + 30m}
restoration:
""",
    1,
)


def _compile(source: str, name: str) -> Playbook:
    compiled = compile_source(source.encode(), f"{name}.yaml")
    assert compiled.playbook is not None, [str(p) for p in compiled.problems]
    return compiled.playbook


@functools.cache
def storm() -> Playbook:
    return _compile(STORM, "storm")


@functools.cache
def quake() -> Playbook:
    return _compile(QUAKE, "quake")


@functools.cache
def clash() -> Playbook:
    return _compile(CLASH, "clash")


@functools.cache
def callout() -> Playbook:
    return _compile(CALLOUT, "callout")


def resolve(digest: str) -> Playbook:
    return {p.content_hash: p for p in (storm(), quake(), clash())}[digest]


def new_run(*, warning: WarningLevel | None = None, level: ResponseLevel | None = None) -> IncidentRun:
    run = IncidentRun(playbook=storm(), now=T0)
    run.incident.resolve_playbook = resolve
    if warning is not None:
        run.do(ed.issue_warning, warning, reason=None, expected_impact=LANDFALL)
    if level is not None:
        run.do(decisions.declare_level, level, reason=None)
    return run


def refusal(run: IncidentRun, kind: type[IrError], fn: Decision, *args: Any, **kwargs: Any) -> str:
    """The one line a refused user reads; the refusal changed nothing (IncidentRun.refuse checks)."""
    error = run.refuse(fn, *args, **kwargs)
    assert type(error) is kind, f"{type(error).__name__}: {error.message}"
    return error.message


def statuses(run: IncidentRun) -> dict[str, str]:
    return {sid: st.value for sid, st in run.incident.statuses().items()}


def states(run: IncidentRun) -> dict[str, tuple[datetime | None, DeadlineState]]:
    return {d.ref: (d.due_at, d.state(run.now)) for d in deadlines(run.incident)}


def sitrep_due(run: IncidentRun) -> tuple[datetime | None, datetime | None]:
    found = sitrep_deadline(run.incident)
    assert found is not None
    return found.due_at, found.done_at


TEXT = {"zh-CN": "第1期：台风过境，抢修进行中。", "en": "Report 1: the storm has passed; repairs under way."}


# -- warnings --------------------------------------------------------------------------------------------


def test_a_warning_is_issued_with_the_expected_impact() -> None:
    run = new_run()
    events = run.do(ed.issue_warning, ORANGE, reason=None, expected_impact=LANDFALL)
    assert events == [
        WarningIssued(at=T0, actor="alice", level="orange", previous=None, reason=None),
        ClockRecorded(at=T0, actor="alice", clock="expected_impact", instant=LANDFALL, reason=None, correction=False),
    ]
    inc = run.incident
    assert inc.warning is ORANGE
    assert inc.clock(ClockName.EXPECTED_IMPACT) == LANDFALL
    assert inc.emergency.warning_history == [(T0, ORANGE, None, "alice")]
    assert inc.level is None


def test_raising_and_lowering_a_warning_need_a_reason() -> None:
    run = new_run(warning=ORANGE)
    run.advance(hours=1)
    assert (
        refusal(run, InvalidInput, ed.issue_warning, RED, reason=None)
        == "raising the warning (orange -> red) needs --reason"
    )
    assert refusal(run, InvalidInput, ed.issue_warning, RED, reason="   ") == (
        "raising the warning (orange -> red) needs --reason"
    )
    [raised] = run.do(ed.issue_warning, RED, reason="track moved north", expected_impact=LANDFALL)  # same instant
    assert raised == WarningIssued(at=T0 + H, actor="alice", level="red", previous="orange", reason="track moved north")
    assert run.incident.warning is RED

    run.advance(hours=1)
    assert (
        refusal(run, InvalidInput, ed.issue_warning, ORANGE, reason=None)
        == "lowering the warning (red -> orange) needs --reason"
    )
    run.do(ed.issue_warning, ORANGE, reason="weakened at sea")
    assert run.incident.warning is ORANGE
    assert [(at - T0, lv, why) for at, lv, why, _ in run.incident.emergency.warning_history] == [
        (timedelta(0), ORANGE, None),
        (H, RED, "track moved north"),
        (2 * H, ORANGE, "weakened at sea"),
    ]


def test_the_same_warning_again_and_an_undefined_level_are_refused() -> None:
    run = new_run(warning=RED)
    assert (
        refusal(run, InvalidTransition, ed.issue_warning, RED, reason="again")
        == "incident 7 is already under a red warning"
    )
    assert (
        refusal(run, InvalidInput, ed.issue_warning, YELLOW, reason="why not")
        == "playbook storm defines no yellow warning (it defines: red, orange)"
    )
    naive = LANDFALL.replace(tzinfo=None)
    fresh = new_run()
    assert (
        refusal(fresh, InvalidInput, ed.issue_warning, RED, reason=None, expected_impact=naive)
        == "give the expected impact with its time zone"
    )


def test_moving_the_expected_impact_under_the_same_warning() -> None:
    """docs/emergency.md: `ir warning 1 red --impact … --reason "track moved"` moves the expected impact."""
    run = new_run(warning=RED)
    run.advance(hours=2)
    later = LANDFALL + 2 * H
    events = run.do(ed.issue_warning, RED, reason="track moved", expected_impact=later)
    assert events == [
        ClockRecorded(
            at=T0 + 2 * H, actor="alice", clock="expected_impact", instant=later, reason="track moved", correction=True
        )
    ]
    assert run.incident.clock(ClockName.EXPECTED_IMPACT) == later
    assert states(run)["step:prepare"][0] == later - 24 * H


def test_a_warning_is_lifted_with_a_reason() -> None:
    run = new_run()
    assert refusal(run, InvalidTransition, ed.lift_warning, reason="gone") == "incident 7 is under no warning"
    run.do(ed.issue_warning, ORANGE, reason=None, expected_impact=LANDFALL)
    run.advance(hours=3)
    assert refusal(run, InvalidInput, ed.lift_warning, reason=None) == "lifting a warning needs a reason (--reason)"
    [lifted] = run.do(ed.lift_warning, reason="typhoon weakened")
    assert lifted == WarningLifted(at=T0 + 3 * H, actor="alice", reason="typhoon weakened")
    assert run.incident.warning is None
    assert run.incident.emergency.warning_history[-1] == (T0 + 3 * H, None, "typhoon weakened", "alice")
    assert statuses(run) == dict.fromkeys(("prepare", "harden", "assess", "repair"), "not_applicable")


def test_warning_steps_apply_in_the_warning_phase_and_stay_after_a_level_is_declared() -> None:
    run = new_run()
    assert statuses(run) == dict.fromkeys(("prepare", "harden", "assess", "repair"), "not_applicable")
    run.do(ed.issue_warning, ORANGE, reason=None, expected_impact=LANDFALL)
    # orange: `prepare` (red, orange) applies; `harden` (red only) does not; response steps wait for a level
    assert statuses(run) == {
        "prepare": "ready",
        "harden": "not_applicable",
        "assess": "not_applicable",
        "repair": "not_applicable",
    }
    assert states(run) == {"step:prepare": (LANDFALL - 24 * H, DeadlineState.UPCOMING)}
    run.advance(hours=1)
    run.do(ed.issue_warning, RED, reason="upgraded")
    assert statuses(run)["harden"] == "pending"
    run.advance(hours=10)
    run.do(decisions.complete_step, "prepare", note=None)
    assert statuses(run)["harden"] == "ready"

    run.now = LANDFALL
    run.do(decisions.declare_level, II, reason=None)
    assert statuses(run) == {"prepare": "done", "harden": "ready", "assess": "ready", "repair": "pending"}
    found = states(run)
    assert found["step:prepare"] == (LANDFALL - 24 * H, DeadlineState.MET)
    assert found["step:harden"] == (LANDFALL - 6 * H, DeadlineState.OVERDUE)
    run.do(decisions.complete_step, "harden", note="late but done")
    assert statuses(run)["harden"] == "done"
    assert states(run)["step:harden"] == (LANDFALL - 6 * H, DeadlineState.MISSED)


def test_a_notification_due_per_warning_level_is_due_in_the_warning_phase() -> None:
    """`due: {red: …, orange: …}` (typhoon-flood's critical warning call-out) is due under that warning."""
    run = IncidentRun(playbook=callout(), now=T0)
    run.do(ed.issue_warning, ORANGE, reason=None, expected_impact=LANDFALL)
    found = {d.ref: d.due_at for d in deadlines(run.incident)}
    assert found.get("notification:standby") == T0 + 30 * M
    run.advance(minutes=5)
    run.do(ed.issue_warning, RED, reason="upgraded")
    found = {d.ref: d.due_at for d in deadlines(run.incident)}
    assert found.get("notification:standby") == T0 + 15 * M


def test_the_recovery_objective_counts_from_the_impact_not_from_the_warning() -> None:
    """An incident opened on a warning three days ahead: its level-II RTO (4h) runs from landfall, when
    service is lost, not from the warning; at the declaration it is not already breached."""
    run = new_run(warning=ORANGE)
    run.now = LANDFALL
    run.do(decisions.declare_level, II, reason=None)
    rto = {d.ref: d for d in deadlines(run.incident)}["rto"]
    assert rto.due_at == LANDFALL + 4 * H
    assert rto.state(run.now) is DeadlineState.UPCOMING
    assert situation(run.incident, run.now, calendar_for=None)["rto_breached"] is False


# -- the end of the response, cancel and reopen ---------------------------------------------------------


def test_the_response_ends_once_and_only_after_a_level() -> None:
    run = new_run(warning=ORANGE)
    assert (
        refusal(run, InvalidTransition, ed.end_response, reason=None)
        == "incident 7 has no response to end: no level was declared"
    )
    run.now = LANDFALL
    run.do(decisions.declare_level, II, reason=None)
    run.advance(hours=30)
    [ended] = run.do(ed.end_response, reason="all sites back")
    assert ended == ResponseEnded(at=LANDFALL + 30 * H, actor="alice", reason="all sites back")
    assert run.incident.clock(ClockName.RESPONSE_END) == LANDFALL + 30 * H
    assert not run.incident.closed
    run.advance(hours=1)
    assert (
        refusal(run, InvalidTransition, ed.end_response, reason=None) == "the response of incident 7 has already ended"
    )


def test_cancel_needs_a_reason_and_reopen_only_a_closed_incident() -> None:
    run = new_run(warning=ORANGE)
    assert refusal(run, InvalidTransition, ed.reopen, reason="why") == "incident 7 is open"
    assert (
        refusal(run, InvalidInput, ed.cancel, reason=None)
        == "cancelling an incident (a false alarm) needs a reason (--reason)"
    )
    run.advance(hours=2)
    [cancelled] = run.do(ed.cancel, reason="the typhoon turned away")
    assert cancelled == IncidentCancelled(at=T0 + 2 * H, actor="alice", reason="the typhoon turned away")
    inc = run.incident
    assert inc.closed
    assert inc.emergency.cancelled == "the typhoon turned away"
    assert inc.clock(ClockName.CLOSURE) == T0 + 2 * H
    assert refusal(run, InvalidTransition, ed.cancel, reason="again") == "incident 7 is closed"
    assert refusal(run, InvalidTransition, ed.add_log_entry, "decision", "x", source=None) == "incident 7 is closed"

    run.advance(hours=1)
    assert refusal(run, InvalidInput, ed.reopen, reason=" ") == "reopening an incident needs a reason (--reason)"
    [reopened] = run.do(ed.reopen, reason="it turned back")
    assert reopened == IncidentReopened(at=T0 + 3 * H, actor="alice", reason="it turned back")
    assert not inc.closed
    assert inc.emergency.cancelled is None
    assert ClockName.CLOSURE not in inc.clocks
    assert inc.warning is ORANGE
    assert statuses(run)["prepare"] == "ready"


def test_a_closed_incident_can_be_reopened() -> None:
    run = new_run(level=IV)
    run.advance(hours=1)
    run.do(decisions.close_incident, reason="handled elsewhere")
    run.advance(hours=1)
    run.do(ed.reopen, reason="not handled after all")
    assert not run.incident.closed
    assert statuses(run)["assess"] == "ready"


# -- people and shifts -------------------------------------------------------------------------------------


def test_assign_unknown_role_duplicates_and_shifts() -> None:
    run = new_run(level=III)
    assert (
        refusal(run, NotFound, ed.assign, "comander", "bob")
        == "no role 'comander' in playbook storm; did you mean 'commander'?"
    )
    assert refusal(run, NotFound, ed.assign, "zzzzzz", "bob") == "no role 'zzzzzz' in playbook storm"
    assert refusal(run, InvalidInput, ed.assign, "noc", "  ") == "user is required"
    assert (
        refusal(run, InvalidInput, ed.assign, "noc", "bob", shift_start=T0 + 8 * H, shift_end=T0 + 8 * H)
        == "a shift ends after it starts"
    )
    assert (
        refusal(run, InvalidInput, ed.assign, "noc", "bob", shift_start=T0 + 8 * H, shift_end=T0 + 7 * H)
        == "a shift ends after it starts"
    )

    [day] = run.do(ed.assign, "noc", "bob", shift_start=T0, shift_end=T0 + 12 * H)
    assert day == RoleAssigned(at=T0, actor="alice", role="noc", user="bob", shift_start=T0, shift_end=T0 + 12 * H)
    assert (
        refusal(run, InvalidTransition, ed.assign, "noc", "bob", shift_start=T0, shift_end=T0 + 10 * H)
        == "bob is already assigned to 'noc' for that shift"
    )
    run.do(ed.assign, "noc", "bob", shift_start=T0 + 24 * H, shift_end=T0 + 36 * H)  # the next day shift
    run.do(ed.assign, "noc", "carol", shift_start=T0 + 12 * H, shift_end=T0 + 24 * H)  # the night shift
    run.do(ed.assign, "field", "dave")  # no shift: on duty until unassigned
    assert (
        refusal(run, InvalidTransition, ed.assign, "field", "dave")
        == "dave is already assigned to 'field' for that shift"
    )

    em = run.incident.emergency
    assert em.on_duty("noc", T0) == ["bob"]
    assert em.on_duty("noc", T0 + 12 * H - M) == ["bob"]
    assert em.on_duty("noc", T0 + 12 * H) == ["carol"]  # a shift ends at its end instant
    assert em.on_duty("noc", T0 + 25 * H) == ["bob"]
    assert em.on_duty("noc", T0 + 40 * H) == []
    assert em.roles_of("bob", T0 + H) == {"noc"}
    assert em.roles_of("bob", T0 + 13 * H) == set()
    assert em.roles_of("dave", T0 + 100 * H) == {"field"}


def test_a_shift_is_given_with_its_time_zone() -> None:
    """A shift without a zone cannot be compared with the incident's instants: refused like `needed by`."""
    run = new_run(level=III)
    naive = (T0 + H).replace(tzinfo=None)
    assert refusal(run, InvalidInput, ed.assign, "noc", "bob", shift_start=naive) == (
        "shift_start: give the instant with its time zone"
    )
    assert refusal(run, InvalidInput, ed.assign, "noc", "bob", shift_end=naive) == (
        "shift_end: give the instant with its time zone"
    )


def test_unassign_ends_the_assignment() -> None:
    run = new_run(level=III)
    run.do(ed.assign, "noc", "bob")
    assert refusal(run, NotFound, ed.unassign, "noc", "carol", reason=None) == "carol is not assigned to 'noc'"
    assert (
        refusal(run, NotFound, ed.unassign, "nocc", "bob", reason=None)
        == "no role 'nocc' in playbook storm; did you mean 'noc'?"
    )
    run.advance(hours=3)
    [ended] = run.do(ed.unassign, "noc", "bob", reason="off shift")
    assert ended == RoleUnassigned(at=T0 + 3 * H, actor="alice", role="noc", user="bob", reason="off shift")
    em = run.incident.emergency
    assert em.on_duty("noc", T0 + 3 * H) == []
    assert em.assignments[0].ended == T0 + 3 * H
    assert refusal(run, NotFound, ed.unassign, "noc", "bob", reason=None) == "bob is not assigned to 'noc'"
    run.do(ed.assign, "noc", "bob")  # assigned again after the end of the first assignment
    assert em.on_duty("noc", T0 + 4 * H) == ["bob"]


def test_handover_records_the_situation_and_refuses_the_current_commander() -> None:
    run = new_run(level=II)
    run.do(ed.issue_warning, RED, reason="a second storm is coming")  # no expected impact given
    inc = run.incident
    assert inc.emergency.commander == "alice"
    run.advance(hours=1)  # `assess` (due detection + 30m) is now overdue
    here = situation(inc, run.now, calendar_for=None)
    assert refusal(run, InvalidTransition, ed.hand_over, "alice", note=None, situation=here) == (
        "alice already commands incident 7"
    )
    assert refusal(run, InvalidInput, ed.hand_over, "", note=None, situation=here) == "user is required"
    [handed] = run.do(ed.hand_over, "bob", note="night shift: fuel low at 3 sites", situation=here)
    assert handed == CommandHandedOver(
        at=T0 + H, actor="alice", previous="alice", to="bob", note="night shift: fuel low at 3 sites", situation=here
    )
    assert inc.emergency.commander == "bob"
    [record] = inc.emergency.handovers
    assert (record.at, record.previous, record.to, record.note) == (T0 + H, "alice", "bob", handed.note)
    assert record.situation["level"] == "II"
    assert record.situation["warning"] == "red"
    assert record.situation["commander"] == "alice"
    assert [o["ref"] for o in record.situation["overdue"]] == ["step:assess"]
    assert record.situation["overdue"][0]["late_by_s"] == 1800
    assert record.situation["rto_left_s"] == 3 * 3600
    run.do(ed.hand_over, "alice", note=None, situation=situation(inc, run.now, calendar_for=None))
    assert inc.emergency.commander == "alice"
    assert refusal(run, InvalidTransition, ed.hand_over, "alice", note=None, situation={}) == (
        "alice already commands incident 7"
    )


# -- the incident log -------------------------------------------------------------------------------------


def test_log_entries_have_a_category_and_text() -> None:
    run = new_run(level=II)
    for category in ("decision", "observation", "message"):
        run.advance(minutes=5)
        run.do(ed.add_log_entry, category, f"  {category} noted  ", source="三防办" if category == "message" else None)
    assert [(e.category, e.text, e.source, e.at - T0) for e in run.incident.emergency.log] == [
        ("decision", "decision noted", None, 5 * M),
        ("observation", "observation noted", None, 10 * M),
        ("message", "message noted", "三防办", 15 * M),
    ]
    assert (
        refusal(run, InvalidInput, ed.add_log_entry, "rumour", "x", source=None)
        == "a log entry is a decision, observation, message; got 'rumour'"
    )
    assert refusal(run, InvalidInput, ed.add_log_entry, "decision", "   ", source=None) == "text is required"
    assert (
        refusal(run, InvalidInput, ed.add_log_entry, "decision", "x" * 10_001, source=None)
        == "text is at most 10,000 characters"
    )
    sealed = Personal("ref-1", "c2VhbGVk")
    [entry] = run.do(ed.add_log_entry, "message", sealed, source=None)
    assert isinstance(entry, LogEntryAdded)
    assert run.incident.emergency.log[-1].text == sealed


# -- situation reports ---------------------------------------------------------------------------------------


def test_sitreps_draft_one_at_a_time_edit_in_both_languages_release_once() -> None:
    run = new_run(level=II)
    inc = run.incident
    assert refusal(run, NotFound, ed.release_sitrep, 1) == "incident 7 has no situation report 1"
    run.advance(minutes=90)
    facts = situation(inc, run.now, calendar_for=None)
    text = sitrep_text(inc, 1, facts)
    assert set(text) == {"zh-CN", "en"}
    assert "situation report 1" in text["en"]
    assert "第1期态势报告" in text["zh-CN"]
    [drafted] = run.do(ed.draft_sitrep, facts=facts, text=text)
    assert drafted == SitrepDrafted(at=T0 + 90 * M, actor="alice", number=1, facts=facts, text=text)
    assert refusal(run, InvalidTransition, ed.draft_sitrep, facts=facts, text=text) == (
        "situation report 1 is still a draft: edit and release it first"
    )
    assert refusal(run, InvalidInput, ed.edit_sitrep, 1, {"en": "only English"}) == (
        "a situation report has its text in zh-CN and en"
    )
    assert refusal(run, InvalidInput, ed.edit_sitrep, 1, {"zh-CN": "  ", "en": "x"}) == (
        "a situation report has its text in zh-CN and en"
    )
    assert refusal(run, InvalidTransition, ed.edit_sitrep, 1, dict(text)) == "no change"
    assert refusal(run, NotFound, ed.edit_sitrep, 2, TEXT) == "incident 7 has no situation report 2"
    [edited] = run.do(ed.edit_sitrep, 1, TEXT)
    assert edited == SitrepEdited(at=T0 + 90 * M, actor="alice", number=1, text=TEXT)
    report = inc.emergency.sitreps[0]
    assert (report.text, report.edits, report.released_at) == (TEXT, 1, None)

    run.advance(minutes=10)
    [released] = run.do(ed.release_sitrep, 1)
    assert released == SitrepReleased(at=T0 + 100 * M, actor="alice", number=1)
    assert report.released_at == T0 + 100 * M
    assert refusal(run, InvalidTransition, ed.release_sitrep, 1) == "situation report 1 was already released"
    assert refusal(run, InvalidTransition, ed.edit_sitrep, 1, {"zh-CN": "改", "en": "changed"}) == (
        "situation report 1 was released: draft a new one"
    )
    run.do(ed.draft_sitrep, facts={}, text=TEXT)
    assert [r.number for r in inc.emergency.sitreps] == [1, 2]


def test_the_sitrep_deadline_follows_the_playbook_interval_for_the_level() -> None:
    run = new_run(warning=ORANGE)
    assert sitrep_deadline(run.incident) is None  # no level: no situation reports due
    run.now = LANDFALL
    run.do(decisions.declare_level, II, reason=None)  # every 2h at level II
    assert sitrep_due(run) == (LANDFALL + 2 * H, None)
    assert states(run)["sitrep"] == (LANDFALL + 2 * H, DeadlineState.UPCOMING)

    run.now = LANDFALL + 90 * M
    run.do(ed.draft_sitrep, facts={}, text=TEXT)
    assert sitrep_due(run) == (LANDFALL + 2 * H, None)  # a draft does not count
    run.do(ed.release_sitrep, 1)
    assert sitrep_due(run) == (LANDFALL + 90 * M + 2 * H, None)  # next one interval after the last released

    run.now = LANDFALL + 4 * H
    assert states(run)["sitrep"] == (LANDFALL + 210 * M, DeadlineState.OVERDUE)
    run.do(decisions.declare_level, I, reason="two provinces cut off")  # every 1h at level I
    assert sitrep_due(run) == (LANDFALL + 150 * M, None)
    run.do(ed.draft_sitrep, facts={}, text=TEXT)
    run.do(ed.release_sitrep, 2)
    assert sitrep_due(run) == (LANDFALL + 5 * H, None)

    run.now = LANDFALL + 4 * H + 30 * M
    run.do(ed.end_response, reason=None)  # the last report, released within an interval of the end, answers
    found = sitrep_deadline(run.incident)
    assert found is not None
    assert (found.due_at, found.done_at) == (LANDFALL + 150 * M, LANDFALL + 4 * H)
    assert found.state(run.now + 10 * H) is DeadlineState.MISSED  # report 2 came 90 minutes late
    assert sitrep_deadline(run.incident) == found  # nothing more falls due after the end


def test_no_sitrep_is_due_after_the_response_ends() -> None:
    run = new_run(level=III)  # every 4h
    run.advance(hours=3)
    run.do(ed.end_response, reason=None)
    assert sitrep_due(run) == (T0 + 4 * H, T0 + 3 * H)
    assert states(run)["sitrep"] == (T0 + 4 * H, DeadlineState.MET)
    run.advance(hours=100)
    assert states(run)["sitrep"] == (T0 + 4 * H, DeadlineState.MET)


def test_a_missed_sitrep_before_the_end_stays_missed() -> None:
    run = new_run(level=II)  # every 2h
    run.advance(hours=1)
    run.do(ed.draft_sitrep, facts={}, text=TEXT)
    run.do(ed.release_sitrep, 1)  # next due T0 + 3h
    run.advance(hours=4)
    run.do(ed.end_response, reason=None)  # at T0 + 5h: report 2 was never released
    assert sitrep_due(run) == (T0 + 3 * H, T0 + 5 * H)
    assert states(run)["sitrep"] == (T0 + 3 * H, DeadlineState.MISSED)


def test_a_playbook_without_sitrep_intervals_has_no_sitrep_deadline() -> None:
    plain = _compile(MINIMAL_PLAYBOOK, "mini")
    run = IncidentRun(playbook=plain, level=II)
    assert sitrep_deadline(run.incident) is None
    assert "sitrep" not in {d.ref for d in deadlines(run.incident)}


# -- resources -------------------------------------------------------------------------------------------------


def test_a_resource_request_names_a_kind_a_quantity_and_a_destination() -> None:
    run = new_run(level=II)
    assert refusal(run, NotFound, ed.request_resource, "generater", 2, destination="文昌") == (
        "playbook storm dispatches no 'generater'; did you mean 'generator'?"
    )
    assert refusal(run, NotFound, ed.request_resource, "helicopter", 2, destination="文昌") == (
        "playbook storm dispatches no 'helicopter'"
    )
    for quantity in (0, -1, 1_000_001):
        assert refusal(run, InvalidInput, ed.request_resource, "generator", quantity, destination="文昌") == (
            "a quantity is between 1 and 1,000,000"
        )
    assert refusal(run, InvalidInput, ed.request_resource, "generator", 2, destination=" ") == "destination is required"
    assert refusal(run, InvalidInput, ed.request_resource, "generator", 2, destination="x" * 201) == (
        "destination is at most 200 characters"
    )
    assert refusal(run, NotFound, ed.request_resource, "generator", 2, destination="文昌", step="nope") == (
        "no step 'nope' in playbook storm"
    )
    naive = (T0 + H).replace(tzinfo=None)
    assert refusal(run, InvalidInput, ed.request_resource, "generator", 2, destination="文昌", needed_by=naive) == (
        "give 'needed by' with its time zone"
    )
    [one] = run.do(ed.request_resource, "generator", 1, destination=" 文昌 ")
    [top] = run.do(ed.request_resource, "generator", 1_000_000, destination="琼海", needed_by=T0 + H, step="repair")
    assert one == ResourceRequested(
        at=T0, actor="alice", request="r1", resource="generator", quantity=1, destination="文昌"
    )
    assert top == ResourceRequested(
        at=T0,
        actor="alice",
        request="r2",
        resource="generator",
        quantity=1_000_000,
        destination="琼海",
        needed_by=T0 + H,
        step="repair",
    )
    assert list(run.incident.emergency.requests) == ["r1", "r2"]
    assert run.incident.emergency.requests["r2"].shortfall == 1_000_000


def test_allocate_until_the_shortfall_is_covered() -> None:
    run = new_run(level=II)
    run.do(ed.request_resource, "generator", 3, destination="文昌")
    req = run.incident.emergency.requests["r1"]
    assert refusal(run, NotFound, ed.allocate, "r9", {"g1": 1}) == "incident 7 has no resource request 'r9'"
    assert refusal(run, InvalidInput, ed.allocate, "r1", {}) == "no units to allocate"
    run.advance(minutes=10)
    [allocated] = run.do(ed.allocate, "r1", {"g1": 2})
    assert allocated == ResourceAllocated(at=T0 + 10 * M, actor="alice", request="r1", units={"g1": 2})
    assert (req.allocated, req.committed, req.shortfall, req.open) == (2, 2, 1, True)
    assert refusal(run, InvalidTransition, ed.allocate, "r1", {"g1": 2}) == "unit g1 is already allocated to request r1"
    run.do(ed.allocate, "r1", {"g2": 1})
    assert (req.allocated, req.shortfall) == (3, 0)
    assert refusal(run, InvalidTransition, ed.allocate, "r1", {"g3": 1}) == "resource request r1 is fully allocated"
    assert {u: m.stage for u, m in req.units.items()} == {"g1": "allocated", "g2": "allocated"}


def test_units_are_dispatched_then_arrive_then_return() -> None:
    run = new_run(level=II)
    run.do(ed.request_resource, "generator", 3, destination="文昌")
    run.do(ed.allocate, "r1", {"g1": 2, "g2": 1})
    req = run.incident.emergency.requests["r1"]
    assert refusal(run, InvalidTransition, ed.move, "r1", ["g1"], "arrived") == "unit g1 has not been dispatched"
    assert refusal(run, InvalidInput, ed.move, "r1", ["g1"], "lost") == (
        "a unit is dispatched, arrived, returned; got 'lost'"
    )
    assert refusal(run, NotFound, ed.move, "r1", ["g9"], "dispatched") == "unit g9 is not allocated to request r1"
    run.advance(minutes=5)
    [moved] = run.do(ed.move, "r1", [], "dispatched")  # every unit still out
    assert moved == ResourceMoved(at=T0 + 5 * M, actor="alice", request="r1", units=["g1", "g2"], stage="dispatched")
    assert refusal(run, InvalidTransition, ed.move, "r1", ["g1"], "dispatched") == "unit g1 was already dispatched"
    run.advance(minutes=55)
    run.do(ed.move, "r1", ["g1"], "arrived")
    assert refusal(run, InvalidTransition, ed.move, "r1", ["g1"], "arrived") == "unit g1 has already arrived"
    assert {u: m.stage for u, m in req.units.items()} == {"g1": "arrived", "g2": "dispatched"}
    here = situation(run.incident, run.now, calendar_for=None)
    assert here["resources_in_field"] == {"generator": {"dispatched": 1, "arrived": 2}}

    run.advance(hours=5)
    run.do(ed.move, "r1", ["g1"], "returned")
    assert req.units["g1"].returned_at == T0 + 6 * H
    assert (req.committed, req.allocated, req.shortfall) == (1, 3, 0)
    assert refusal(run, InvalidTransition, ed.move, "r1", ["g1"], "returned") == "unit g1 was already returned"
    run.do(ed.move, "r1", [], "returned")  # the rest: g2 (dispatched, never arrived)
    assert {u: m.stage for u, m in req.units.items()} == {"g1": "returned", "g2": "returned"}
    assert not req.open
    assert refusal(run, InvalidTransition, ed.move, "r1", [], "returned") == "request r1 has no units to mark returned"


def test_dispatching_the_rest_of_a_request_skips_units_already_on_their_way() -> None:
    """`ir resources dispatch 1 r1` with no units: every unit still out that has not left yet."""
    run = new_run(level=II)
    run.do(ed.request_resource, "generator", 3, destination="文昌")
    run.do(ed.allocate, "r1", {"g1": 1, "g2": 1, "g3": 1})
    run.do(ed.move, "r1", ["g1"], "dispatched")
    [rest] = run.do(ed.move, "r1", [], "dispatched")
    assert isinstance(rest, ResourceMoved)
    assert rest.units == ["g2", "g3"]


def test_units_come_back_after_closure() -> None:
    run = new_run(level=IV)
    run.do(ed.request_resource, "generator", 1, destination="文昌")
    run.do(ed.allocate, "r1", {"g1": 1})
    run.do(ed.move, "r1", [], "dispatched")
    run.do(decisions.close_incident, reason="over")
    assert refusal(run, InvalidTransition, ed.move, "r1", [], "arrived") == "incident 7 is closed"
    run.do(ed.move, "r1", [], "returned")
    assert run.incident.emergency.requests["r1"].committed == 0


def test_a_request_is_cancelled_only_when_its_units_are_back() -> None:
    run = new_run(level=II)
    run.do(ed.request_resource, "generator", 3, destination="文昌", needed_by=T0 + 2 * H)
    run.do(ed.allocate, "r1", {"g1": 2, "g2": 1})
    run.do(ed.move, "r1", ["g1"], "dispatched")
    assert refusal(run, InvalidTransition, ed.cancel_request, "r1", reason="not needed") == (
        "units of request r1 are still committed (g1, g2): return them first"
    )
    run.do(ed.move, "r1", [], "returned")
    assert refusal(run, InvalidInput, ed.cancel_request, "r1", reason=None) == "cancelling needs a reason (--reason)"
    [cancelled] = run.do(ed.cancel_request, "r1", reason="the road is open again")
    assert cancelled == ResourceRequestCancelled(at=T0, actor="alice", request="r1", reason="the road is open again")
    req = run.incident.emergency.requests["r1"]
    assert (req.cancelled, req.shortfall, req.open) == ("the road is open again", 0, False)
    assert resource_deadlines(run.incident) == []  # a cancelled request is no longer due
    assert (
        refusal(run, InvalidTransition, ed.cancel_request, "r1", reason="again") == "resource request r1 was cancelled"
    )
    assert refusal(run, InvalidTransition, ed.allocate, "r1", {"g3": 1}) == "resource request r1 was cancelled"
    assert refusal(run, NotFound, ed.cancel_request, "r2", reason="x") == "incident 7 has no resource request 'r2'"


def test_shortfall_and_needed_by_met_when_arrived_capacity_covers_the_quantity() -> None:
    run = new_run(level=II)
    run.do(ed.request_resource, "generator", 3, destination="文昌", needed_by=T0 + 2 * H, step="repair")
    run.do(ed.request_resource, "repair_team", 2, destination="琼海", needed_by=T0 + H)
    run.do(ed.request_resource, "repair_team", 1, destination="万宁")  # no deadline
    assert {d.ref: (d.due_at, d.done_at) for d in resource_deadlines(run.incident)} == {
        "resource:r1": (T0 + 2 * H, None),
        "resource:r2": (T0 + H, None),
    }
    [r1] = [d for d in resource_deadlines(run.incident) if d.ref == "resource:r1"]
    assert (r1.kind, r1.title.en, r1.title.zh_cn, r1.anchor) == (
        "resource",
        "Generator x3 at 文昌",
        "油机 ×3 到达 文昌",
        "needed by",
    )
    here = situation(run.incident, run.now, calendar_for=None)
    assert here["shortfalls"] == {"generator": 3, "repair_team": 3}

    run.do(ed.allocate, "r1", {"g1": 2})
    run.do(ed.allocate, "r2", {"t1": 1, "t2": 1})
    assert situation(run.incident, run.now, calendar_for=None)["shortfalls"] == {"generator": 1, "repair_team": 1}
    run.do(ed.allocate, "r1", {"g2": 1})
    run.advance(minutes=10)
    run.do(ed.move, "r1", [], "dispatched")
    run.do(ed.move, "r2", [], "dispatched")
    run.advance(minutes=40)
    run.do(ed.move, "r1", ["g1"], "arrived")  # 2 of 3 arrived: not yet met
    run.do(ed.move, "r2", ["t1"], "arrived")
    assert states(run)["resource:r1"] == (T0 + 2 * H, DeadlineState.UPCOMING)
    run.advance(minutes=20)  # T0 + 70m
    assert states(run)["resource:r2"] == (T0 + H, DeadlineState.OVERDUE)
    run.do(ed.move, "r1", ["g2"], "arrived")
    run.do(ed.move, "r2", ["t2"], "arrived")
    found = states(run)
    assert found["resource:r1"] == (T0 + 2 * H, DeadlineState.MET)
    assert found["resource:r2"] == (T0 + H, DeadlineState.MISSED)
    assert {d.ref: d.done_at for d in resource_deadlines(run.incident)} == {
        "resource:r1": T0 + 70 * M,
        "resource:r2": T0 + 70 * M,
    }
    run.advance(hours=3)
    run.do(ed.move, "r1", [], "returned")  # coming back does not undo having arrived
    assert states(run)["resource:r1"] == (T0 + 2 * H, DeadlineState.MET)


# -- impact and links -----------------------------------------------------------------------------------------


def test_impact_names_catalogue_services_and_areas() -> None:
    run = new_run(level=II)
    assert refusal(run, NotFound, ed.set_impact, ["mobile-voic"], [], known_services=SERVICES) == (
        "no service 'mobile-voic' in the service catalogue; did you mean 'mobile-voice'?"
    )
    assert refusal(run, NotFound, ed.set_impact, ["zzzz"], [], known_services=SERVICES) == (
        "no service 'zzzz' in the service catalogue"
    )
    assert refusal(run, InvalidTransition, ed.set_impact, [], [" "], known_services=SERVICES) == (
        "no change: these services and areas are already recorded"
    )
    [impact] = run.do(ed.set_impact, ["sms", "mobile-voice"], [" 文昌 ", "琼海", "文昌"], known_services=SERVICES)
    assert impact == ImpactSet(at=T0, actor="alice", services=["mobile-voice", "sms"], areas=["文昌", "琼海"])
    assert run.incident.emergency.services == ["mobile-voice", "sms"]
    assert run.incident.emergency.areas == ["文昌", "琼海"]
    assert refusal(
        run, InvalidTransition, ed.set_impact, ["mobile-voice", "sms"], ["文昌", "琼海"], known_services=SERVICES
    ) == ("no change: these services and areas are already recorded")
    run.do(ed.set_impact, [], [], known_services=SERVICES)
    assert (run.incident.emergency.services, run.incident.emergency.areas) == ([], [])


def test_impact_given_twice_the_same_is_no_change() -> None:
    run = new_run(level=II)
    run.do(ed.set_impact, ["sms"], ["文昌"], known_services=SERVICES)
    assert refusal(
        run, InvalidTransition, ed.set_impact, ["sms", "sms"], ["文昌", "文昌"], known_services=SERVICES
    ) == ("no change: these services and areas are already recorded")


def test_links_between_incidents() -> None:
    parent = new_run(level=II)
    assert refusal(parent, InvalidInput, ed.link, 7, "child") == "an incident cannot be linked to itself"
    [linked] = parent.do(ed.link, 8, "child")
    assert linked == IncidentLinked(at=T0, actor="alice", other=8, relation="child")
    parent.do(ed.link, 9, "child")
    assert parent.incident.emergency.children == [8, 9]
    assert refusal(parent, InvalidTransition, ed.link, 8, "child") == "incident 8 is already a child of incident 7"
    assert refusal(parent, NotFound, ed.unlink, 10, "child") == "incident 10 is not linked to incident 7 as its child"
    [unlinked] = parent.do(ed.unlink, 8, "child")
    assert unlinked == IncidentUnlinked(at=T0, actor="alice", other=8, relation="child")
    assert parent.incident.emergency.children == [9]
    assert refusal(parent, NotFound, ed.unlink, 8, "child") == "incident 8 is not linked to incident 7 as its child"

    child = new_run(level=IV)
    child.do(ed.link, 5, "parent")
    assert child.incident.emergency.parent == 5
    assert refusal(child, InvalidTransition, ed.link, 6, "parent") == "incident 7 already has a parent (incident 5)"
    assert refusal(child, NotFound, ed.unlink, 6, "parent") == "incident 6 is not linked to incident 7 as its parent"
    child.do(ed.unlink, 5, "parent")
    assert child.incident.emergency.parent is None


# -- joined playbooks --------------------------------------------------------------------------------------------


def test_a_second_playbook_joins_with_prefixed_steps_and_nothing_done_is_lost() -> None:
    run = new_run(warning=RED, level=II)
    run.advance(minutes=20)
    run.do(decisions.complete_step, "assess", note=None)
    run.do(decisions.complete_step, "prepare", note=None)
    run.do(ed.assign, "field", "dave")
    before = statuses(run)
    assert (
        refusal(run, InvalidInput, ed.add_playbook, quake(), reason=None)
        == "adding a playbook needs a reason (--reason)"
    )
    assert refusal(run, InvalidTransition, ed.add_playbook, storm(), reason="x") == (
        "playbook storm is already part of incident 7"
    )
    assert refusal(run, InvalidInput, ed.add_playbook, clash(), reason="x") == (
        "playbooks storm and clash both have a fact 'scope', of different types"
    )

    run.advance(minutes=10)
    [added] = run.do(ed.add_playbook, quake(), reason="an earthquake struck too")
    assert added == PlaybookAdded(
        at=T0 + 30 * M,
        actor="alice",
        playbook_id="quake",
        playbook_hash=quake().content_hash,
        reason="an earthquake struck too",
    )
    inc = run.incident
    assert inc.emergency.joined == [("quake", quake().content_hash)]
    assert refusal(run, InvalidTransition, ed.add_playbook, quake(), reason="again") == (
        "playbook quake is already part of incident 7"
    )
    after = statuses(run)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing done before is lost
    assert {k: v for k, v in after.items() if k not in before} == {"quake.confirm": "ready", "quake.rescue": "pending"}
    pb = inc.playbook
    assert pb.id == "storm"
    assert pb.steps["quake.rescue"].depends_on == ("quake.confirm",)
    assert set(pb.roles) == {"commander", "noc", "field", "rescue"}
    assert {"affected_users", "scope", "magnitude"} <= set(pb.facts)  # and the standard facts
    assert "magnitude" in pb.facts and "scope" in pb.facts
    assert set(pb.notifications) == {"quake.tell-quake-office"}
    assert joined_step_id("quake", "confirm") == "quake.confirm"
    assert inc.emergency.assignments[0].user == "dave"
    assert inc.steps["assess"].status is StepStatus.DONE

    assert (
        refusal(run, InvalidTransition, decisions.start_step, "quake.rescue")
        == "step 'quake.rescue' waits on 'quake.confirm'"
    )
    run.advance(minutes=5)
    run.do(decisions.complete_step, "quake.confirm", note=None)
    assert statuses(run)["quake.rescue"] == "ready"
    found = states(run)
    # due times anchored to a joined step count from the joined step
    assert found["step:quake.rescue"] == (T0 + 35 * M + H, DeadlineState.UPCOMING)
    assert found["notification:quake.tell-quake-office"] == (T0 + 65 * M, DeadlineState.UPCOMING)
    assert found["step:quake.confirm"] == (T0 + 15 * M, DeadlineState.MISSED)
    refs = touched_refs(inc, [decisions.complete_step(inc, "quake.rescue", actor="a", now=run.now, note=None)[0]])
    assert refs == {"step:quake.rescue"}


def test_the_joined_playbook_needs_a_way_to_be_loaded_when_folded() -> None:
    run = new_run(level=II)
    [added] = ed.add_playbook(run.incident, quake(), actor="alice", now=T0, reason="quake")
    bare = Incident(id=7, playbook=storm())
    for e in run.events:
        bare.apply(e)
    with pytest.raises(LookupError):
        bare.apply(added)


# -- snapshots ---------------------------------------------------------------------------------------------------


def everything() -> IncidentRun:
    """An incident with every part a real emergency adds."""
    run = new_run(warning=ORANGE)
    run.do(decisions.set_facts, {"affected_users": 150_000, "scope": "province"}, reason=None)
    run.advance(hours=1)
    run.do(ed.issue_warning, RED, reason="upgraded")
    run.do(ed.assign, "noc", "bob", shift_start=T0, shift_end=T0 + 12 * H)
    run.do(ed.assign, "field", "dave")
    run.do(ed.assign, "field", "erin")
    run.do(ed.unassign, "field", "erin", reason="sick")
    run.do(decisions.complete_step, "prepare", note="stock moved")
    run.now = LANDFALL
    run.do(decisions.declare_level, II, reason=None)
    run.do(ed.add_log_entry, "decision", "launch level II", source=None)
    run.do(ed.add_log_entry, "message", Personal("subject-ref", "c2VhbGVk"), source="hotline")
    run.do(ed.request_resource, "generator", 3, destination="文昌", needed_by=LANDFALL + 2 * H, step="repair")
    run.do(ed.allocate, "r1", {"g1": 2, "g2": 1})
    run.do(ed.move, "r1", [], "dispatched")
    run.advance(minutes=50)
    run.do(ed.move, "r1", ["g1"], "arrived")
    run.do(ed.request_resource, "repair_team", 1, destination="琼海")
    run.do(ed.allocate, "r2", {"t1": 1})
    run.do(ed.move, "r2", [], "returned")
    run.do(ed.cancel_request, "r2", reason="not needed")
    run.do(ed.set_impact, ["mobile-voice"], ["文昌"], known_services=SERVICES)
    run.do(ed.link, 8, "child")
    run.do(ed.link, 3, "parent")
    run.advance(minutes=30)
    here = situation(run.incident, run.now, calendar_for=None)
    run.do(ed.hand_over, "bob", note="night shift", situation=here)
    run.do(ed.draft_sitrep, facts=here, text=sitrep_text(run.incident, 1, here))
    run.do(ed.edit_sitrep, 1, TEXT)
    run.do(ed.release_sitrep, 1)
    run.do(ed.draft_sitrep, facts=here, text=TEXT)
    run.do(ed.add_playbook, quake(), reason="a quake too")
    run.do(decisions.complete_step, "quake.confirm", note=None)
    run.do(decisions.set_facts, {"magnitude": 6.1}, reason=None)
    run.advance(hours=5)
    run.do(decisions.complete_step, "assess", note=None)
    run.do(decisions.complete_step, "repair", note=None)
    run.do(ed.end_response, reason="restored")
    return run


def test_a_snapshot_round_trips_every_part() -> None:
    run = everything()
    inc = run.incident
    data = json.loads(json.dumps(to_snapshot(inc)))
    assert joined_playbooks(data) == [quake().content_hash]
    playbook = storm()  # what the repository does: the primary playbook, then each joined one
    for digest in joined_playbooks(data):
        playbook = merge_playbooks(playbook, resolve(digest))
    restored = from_snapshot(7, playbook, data)
    assert to_snapshot(restored) == to_snapshot(inc)
    assert restored.emergency == inc.emergency
    assert restored.statuses() == inc.statuses()
    assert deadlines(restored) == deadlines(inc)
    assert situation(restored, run.now, calendar_for=None) == situation(inc, run.now, calendar_for=None)
    assert restored.version == inc.version == len(run.events)
    # and it goes on from there as the original does
    extra = ed.add_log_entry(restored, "observation", "water receding", actor="bob", now=run.now, source=None)
    restored.apply(extra[0])
    inc.apply(extra[0])
    assert to_snapshot(restored) == to_snapshot(inc)


def test_every_new_event_survives_its_stored_form() -> None:
    run = everything()
    kinds = {type(e) for e in run.events}
    assert {
        WarningIssued,
        RoleAssigned,
        RoleUnassigned,
        CommandHandedOver,
        LogEntryAdded,
        SitrepDrafted,
        SitrepEdited,
        SitrepReleased,
        ResourceRequested,
        ResourceAllocated,
        ResourceMoved,
        ResourceRequestCancelled,
        ImpactSet,
        IncidentLinked,
        PlaybookAdded,
        ResponseEnded,
    } <= kinds
    for e in run.events:
        assert event_from_dict(e.kind, json.loads(json.dumps(event_to_dict(e)))) == e


# -- the projection rows an event can change -------------------------------------------------------------


def _touched(run: IncidentRun, events: list[Event]) -> set[str] | None:
    return touched_refs(run.incident, events)


def test_touched_refs_for_the_new_events() -> None:
    run = new_run(warning=ORANGE, level=II)
    now = run.now
    a = "alice"
    none_of_the_work = [
        LogEntryAdded(at=now, actor=a, category="decision", text="x"),
        RoleAssigned(at=now, actor=a, role="noc", user="bob"),
        RoleUnassigned(at=now, actor=a, role="noc", user="bob"),
        CommandHandedOver(at=now, actor=a, previous="alice", to="bob", note=None, situation={}),
        ImpactSet(at=now, actor=a, services=["sms"], areas=[]),
        IncidentLinked(at=now, actor=a, other=8, relation="child"),
        IncidentUnlinked(at=now, actor=a, other=8, relation="child"),
    ]
    for e in none_of_the_work:
        assert _touched(run, [e]) == set(), e.kind
    for e in (
        SitrepDrafted(at=now, actor=a, number=1, facts={}, text=TEXT),
        SitrepEdited(at=now, actor=a, number=1, text=TEXT),
        SitrepReleased(at=now, actor=a, number=1),
    ):
        assert _touched(run, [e]) == {"sitrep"}, e.kind
    for e in (
        ResourceRequested(at=now, actor=a, request="r3", resource="generator", quantity=1, destination="x"),
        ResourceAllocated(at=now, actor=a, request="r3", units={"g1": 1}),
        ResourceMoved(at=now, actor=a, request="r3", units=["g1"], stage="arrived"),
        ResourceRequestCancelled(at=now, actor=a, request="r3", reason="x"),
    ):
        assert _touched(run, [e]) == {"resource:r3"}, e.kind
    # these change what applies or what is due everywhere: every row is refreshed
    for e in (
        WarningIssued(at=now, actor=a, level="red", previous="orange", reason="x"),
        WarningLifted(at=now, actor=a, reason="x"),
        ResponseEnded(at=now, actor=a),
        IncidentCancelled(at=now, actor=a, reason="x"),
        IncidentReopened(at=now, actor=a, reason="x"),
        PlaybookAdded(at=now, actor=a, playbook_id="quake", playbook_hash=quake().content_hash, reason="x"),
    ):
        assert _touched(run, [e]) is None, e.kind
    mixed = [
        LogEntryAdded(at=now, actor=a, category="decision", text="x"),
        SitrepReleased(at=now, actor=a, number=1),
        ResourceMoved(at=now, actor=a, request="r1", units=["g1"], stage="arrived"),
    ]
    assert _touched(run, mixed) == {"sitrep", "resource:r1"}


def test_touched_refs_cover_what_each_new_event_changes() -> None:
    """Folding each event of a whole emergency changes only the deadlines touched_refs names."""
    source = everything()
    inc = Incident(id=7, playbook=storm(), resolve_playbook=resolve)
    for event in source.events:
        before = {d.ref: d for d in deadlines(inc)}
        refs = touched_refs(inc, [event])
        inc.apply(event)
        if refs is None:
            continue
        after = {d.ref: d for d in deadlines(inc)}
        changed = {r for r in before.keys() | after.keys() if before.get(r) != after.get(r)}
        assert changed <= refs, (event.kind, changed - refs)
