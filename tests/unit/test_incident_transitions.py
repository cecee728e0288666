"""Every act on an incident, accepted or refused, and the one line a refused user reads.

Incidents are opened on tests.builders.runner_playbook() (its DAG is drawn in runner_playbook_source)
and driven through ir.domain.decisions on an explicit clock; a refusal must change nothing (the builder's
IncidentRun.refuse compares the whole snapshot and the version before and after).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ir.domain import decisions
from ir.domain.clocks import ClockName
from ir.domain.errors import InvalidInput, InvalidTransition, IrError, NotFound
from ir.domain.events import (
    ChecklistItemChecked,
    ClockRecorded,
    EvidenceAttached,
    FactsSet,
    FactValue,
    IncidentClosed,
    IncidentOpened,
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
from ir.domain.facts import check_fact_value, fact_named, parse_assignments, parse_fact
from ir.domain.incident import Mode, StepStatus
from ir.domain.levels import ResponseLevel
from tests.builders import RUN_START, Decision, IncidentRun, runner_playbook

T0 = RUN_START
I, II, III, IV = ResponseLevel.I, ResponseLevel.II, ResponseLevel.III, ResponseLevel.IV  # noqa: E741
TRIAGE = "step '{}' waits for a response level: incident 7 is in triage (declare one with ir level)"
EVERY_STEP = (
    "confirm",
    "isolate",
    "inform-users",
    "vendor-escalation",
    "war-room",
    "mitigate",
    "reroute",
    "restore-full",
    "prepare",
    "regulator-filing",
)


def statuses(run: IncidentRun) -> dict[str, str]:
    return {sid: st.value for sid, st in run.incident.statuses().items()}


def refusal(run: IncidentRun, kind: type[IrError], fn: Decision, *args: Any, **kwargs: Any) -> str:
    """The message of a refusal of exactly type `kind` (which changed nothing)."""
    error = run.refuse(fn, *args, **kwargs)
    assert type(error) is kind, f"{type(error).__name__}: {error.message}"
    return error.message


def evidence(run: IncidentRun, step: str, sha: str = "a" * 64) -> None:
    run.do(decisions.attach_evidence, step, sha256=sha, filename="graph.png", size=2048, media_type="image/png")


def through_mitigate(run: IncidentRun) -> None:
    """confirm, isolate and mitigate done: reroute is ready."""
    run.do(decisions.complete_step, "confirm", note=None)
    run.do(decisions.complete_step, "isolate", note=None)
    evidence(run, "mitigate")
    run.do(decisions.complete_step, "mitigate", note=None)


# -- opening and triage ---------------------------------------------------------------------------


def test_opening_records_detection_and_leaves_the_incident_in_triage() -> None:
    run = IncidentRun(facts={"affected_users": 250_000})
    inc = run.incident
    assert inc.version == 1
    assert [type(e) for e in run.events] == [IncidentOpened]
    assert inc.title == "Fibre cut on the ring"
    assert inc.mode is Mode.REAL
    assert inc.level is None
    assert inc.facts == {"affected_users": 250_000}
    assert inc.clock(ClockName.DETECTION) == T0
    assert inc.clocks[ClockName.DETECTION].recorded_at == T0
    assert set(inc.clocks) == {ClockName.DETECTION}
    assert statuses(run) == dict.fromkeys(EVERY_STEP, "not_applicable")


def test_detection_may_precede_opening_but_not_follow_it() -> None:
    run = IncidentRun(detected_at=T0 - timedelta(minutes=40))
    assert run.incident.clock(ClockName.DETECTION) == T0 - timedelta(minutes=40)
    assert run.incident.clocks[ClockName.DETECTION].recorded_at == T0
    with pytest.raises(InvalidInput) as caught:
        decisions.open_incident(
            playbook=runner_playbook(),
            title="x",
            mode=Mode.REAL,
            facts={},
            actor="alice",
            now=T0,
            detected_at=T0 + timedelta(minutes=6),
        )
    assert caught.value.message == "detection cannot be in the future"


@pytest.mark.parametrize(
    ("title", "facts", "message"),
    [
        ("   ", {}, "title is required"),
        ("x" * 201, {}, "title is at most 200 characters"),
        ("Fibre cut", {"bogus": 1}, "unknown fact 'bogus'"),
    ],
)
def test_opening_refuses_bad_input(title: str, facts: dict[str, FactValue], message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decisions.open_incident(
            playbook=runner_playbook(), title=title, mode=Mode.DRILL, facts=facts, actor="alice", now=T0
        )
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("fn", "args", "kwargs"),
    [
        (decisions.start_step, ("confirm",), {}),
        (decisions.complete_step, ("confirm",), {"note": None}),
        (decisions.skip_step, ("confirm",), {"reason": "not needed"}),
        (decisions.retry_step, ("confirm",), {"note": None}),
    ],
)
def test_in_triage_no_step_can_move(fn: Decision, args: tuple[str], kwargs: dict[str, object]) -> None:
    run = IncidentRun()
    assert refusal(run, InvalidTransition, fn, *args, **kwargs) == TRIAGE.format("confirm")


def test_in_triage_no_notification_applies() -> None:
    run = IncidentRun()
    message = refusal(run, InvalidTransition, decisions.mark_notification_sent, "tell-regulator", reference=None)
    assert message == "notification 'tell-regulator' does not apply to incident 7 now"


def test_a_false_alarm_closes_from_triage_without_a_reason() -> None:
    run = IncidentRun()
    run.advance(minutes=20)
    [event] = run.do(decisions.close_incident, reason=None)
    assert event == IncidentClosed(at=T0 + timedelta(minutes=20), actor="alice", reason=None)
    assert run.incident.closed
    assert run.incident.clock(ClockName.CLOSURE) == T0 + timedelta(minutes=20)


# -- classification -----------------------------------------------------------------------------------


def test_classify_suggests_the_most_severe_level_that_holds_and_names_unknown_facts_above_it() -> None:
    run = IncidentRun(facts={"affected_users": 250_000})
    c = decisions.classify(run.incident)
    assert c.suggested is II
    # I: `false or (unknown and unknown)` is unknown, so its facts are asked for
    assert [(v.level, v.holds, v.missing) for v in c.verdicts] == [
        (I, None, frozenset({"cii_involved", "scope"})),
        (II, True, frozenset()),
        (III, True, frozenset()),
        (IV, True, frozenset()),
    ]
    assert c.missing == frozenset({"cii_involved", "scope"})
    assert c.verdicts[0].criteria == 'affected_users >= 1_000_000 or (cii_involved and scope == "national")'


def test_classify_uses_kleene_logic_false_and_unknown_is_false() -> None:
    run = IncidentRun(facts={"affected_users": 250_000, "cii_involved": False})
    c = decisions.classify(run.incident)
    assert c.verdicts[0].holds is False  # false or (false and unknown)
    assert c.suggested is II
    assert c.missing == frozenset()


def test_classify_true_or_unknown_is_true() -> None:
    run = IncidentRun(facts={"peak_gbps": 150.5})
    c = decisions.classify(run.incident)
    assert c.suggested is II  # unknown or true
    assert [v.holds for v in c.verdicts] == [None, True, None, True]
    assert c.missing == frozenset({"affected_users", "cii_involved", "scope"})


def test_classify_without_facts_suggests_nothing_and_asks_for_every_fact_of_the_criteria() -> None:
    c = decisions.classify(IncidentRun().incident)
    assert c.suggested is None
    assert [v.holds for v in c.verdicts] == [None, None, None, None]
    assert c.missing == frozenset({"affected_users", "cii_involved", "scope", "peak_gbps"})


def test_classify_lowest_level_asks_only_about_levels_above() -> None:
    run = IncidentRun(facts={"affected_users": 5})
    c = decisions.classify(run.incident)
    assert c.suggested is IV
    assert [v.holds for v in c.verdicts] == [None, None, False, True]
    assert c.missing == frozenset({"cii_involved", "scope", "peak_gbps"})


def test_classify_national_cii_is_level_one() -> None:
    run = IncidentRun(facts={"affected_users": 20, "cii_involved": True, "scope": "national"})
    assert decisions.classify(run.incident).suggested is I


# -- levels --------------------------------------------------------------------------------------------


def test_declaring_a_level_starts_the_response() -> None:
    run = IncidentRun(facts={"affected_users": 250_000})
    run.advance(minutes=4)
    [event] = run.do(decisions.declare_level, II, reason=None)
    assert event == LevelDeclared(at=T0 + timedelta(minutes=4), actor="alice", level="II", previous=None, reason=None)
    inc = run.incident
    assert inc.level is II
    assert inc.level_history == [(T0 + timedelta(minutes=4), II, None, "alice")]
    assert inc.clock(ClockName.DECLARATION) == T0 + timedelta(minutes=4)
    assert inc.clock(ClockName.CLASSIFICATION) == T0 + timedelta(minutes=4)
    assert statuses(run) == {
        "confirm": "ready",
        "isolate": "pending",
        "inform-users": "pending",
        "vendor-escalation": "pending",  # peak_gbps unknown: a condition must be known to drop a step
        "war-room": "pending",
        "mitigate": "pending",
        "reroute": "pending",
        "restore-full": "pending",
        "prepare": "ready",
        "regulator-filing": "ready",
    }


def test_declaring_the_same_level_is_refused() -> None:
    run = IncidentRun(level=III)
    assert refusal(run, InvalidTransition, decisions.declare_level, III, reason="sure") == (
        "incident 7 is already at level III"
    )


@pytest.mark.parametrize(
    ("start", "to", "message"),
    [
        (III, II, "a level change (escalation III -> II) needs --reason"),
        (II, IV, "a level change (de-escalation II -> IV) needs --reason"),
    ],
)
def test_changing_the_level_needs_a_reason(start: ResponseLevel, to: ResponseLevel, message: str) -> None:
    run = IncidentRun(level=start)
    assert refusal(run, InvalidInput, decisions.declare_level, to, reason=None) == message
    assert refusal(run, InvalidInput, decisions.declare_level, to, reason="  ") == message


def test_escalation_adds_the_steps_of_the_new_level_and_keeps_the_first_declaration_clock() -> None:
    run = IncidentRun(level=III)
    run.do(decisions.complete_step, "confirm", note=None)
    assert statuses(run)["war-room"] == "not_applicable"
    run.advance(minutes=30)
    [event] = run.do(decisions.declare_level, II, reason="second province down")
    assert event == LevelDeclared(
        at=T0 + timedelta(minutes=30),
        actor="alice",
        level="II",
        previous="III",
        reason="second province down",
    )
    assert statuses(run)["war-room"] == "ready"
    assert run.incident.clock(ClockName.DECLARATION) == T0
    assert [(lv, why) for _, lv, why, _ in run.incident.level_history] == [
        (III, None),
        (II, "second province down"),
    ]


def test_deescalation_keeps_done_steps_done_and_drops_the_rest() -> None:
    run = IncidentRun(level=I)
    run.do(decisions.complete_step, "confirm", note=None)
    run.do(decisions.start_step, "war-room", assignee="bob")
    run.do(decisions.declare_level, III, reason="contained")
    got = statuses(run)
    assert got["confirm"] == "done"
    assert got["war-room"] == "not_applicable"  # in progress, but not part of a level III response
    assert got["isolate"] == "ready"
    assert refusal(run, InvalidTransition, decisions.complete_step, "war-room", note=None) == (
        "step 'war-room' does not apply at level III (only I/II)"
    )
    # back up: the work in progress is still in progress
    run.do(decisions.declare_level, II, reason="spreading again")
    assert statuses(run)["war-room"] == "in_progress"


def test_deescalation_keeps_a_done_level_limited_step_done() -> None:
    run = IncidentRun(level=II)
    run.do(decisions.complete_step, "confirm", note=None)
    run.do(decisions.complete_step, "war-room", note=None)
    run.do(decisions.declare_level, IV, reason="contained")
    assert statuses(run)["war-room"] == "done"


# -- starting and completing ------------------------------------------------------------------------


def test_start_a_ready_step() -> None:
    run = IncidentRun(level=II)
    run.advance(minutes=2)
    [event] = run.do(decisions.start_step, "confirm", actor="bob")
    assert event == StepStarted(at=T0 + timedelta(minutes=2), actor="bob", step="confirm", assignee="bob")
    p = run.incident.steps["confirm"]
    assert (p.status, p.assignee, p.started_at, p.attempts) == (
        StepStatus.IN_PROGRESS,
        "bob",
        T0 + timedelta(minutes=2),
        1,
    )
    run.do(decisions.start_step, "prepare", assignee="carol")
    assert run.incident.steps["prepare"].assignee == "carol"


def test_a_step_waits_on_its_dependencies() -> None:
    run = IncidentRun(level=II)
    assert refusal(run, InvalidTransition, decisions.start_step, "isolate") == "step 'isolate' waits on 'confirm'"
    assert refusal(run, InvalidTransition, decisions.complete_step, "isolate", note=None) == (
        "step 'isolate' waits on 'confirm'"
    )
    assert refusal(run, InvalidTransition, decisions.start_step, "restore-full") == (
        "step 'restore-full' waits on 'reroute', 'inform-users'"
    )
    run.do(decisions.complete_step, "confirm", note=None)
    run.do(decisions.complete_step, "inform-users", note=None)
    assert refusal(run, InvalidTransition, decisions.start_step, "restore-full") == (
        "step 'restore-full' waits on 'reroute'"
    )


def test_refusals_by_status() -> None:
    run = IncidentRun(level=II)
    run.do(decisions.start_step, "confirm", assignee="bob")
    assert refusal(run, InvalidTransition, decisions.start_step, "confirm") == (
        "step 'confirm' is already in progress (bob)"
    )
    run.do(decisions.fail_step, "confirm", reason="probe down")
    assert refusal(run, InvalidTransition, decisions.start_step, "confirm") == (
        "step 'confirm' failed: retry it or skip it with a reason"
    )
    assert refusal(run, InvalidTransition, decisions.complete_step, "confirm", note=None) == (
        "step 'confirm' failed: retry it or skip it with a reason"
    )
    run.do(decisions.retry_step, "confirm", note=None)
    run.do(decisions.complete_step, "confirm", note=None)
    assert refusal(run, InvalidTransition, decisions.start_step, "confirm") == "step 'confirm' is already done"
    assert refusal(run, InvalidTransition, decisions.complete_step, "confirm", note=None) == (
        "step 'confirm' is already done"
    )
    run.do(decisions.skip_step, "prepare", reason="nothing expected")
    assert refusal(run, InvalidTransition, decisions.start_step, "prepare") == "step 'prepare' was skipped"
    assert refusal(run, InvalidTransition, decisions.complete_step, "prepare", note=None) == (
        "step 'prepare' was skipped"
    )


def test_steps_outside_the_level_or_condition_do_not_apply() -> None:
    run = IncidentRun(level=III, facts={"peak_gbps": 10})
    run.do(decisions.complete_step, "confirm", note=None)
    assert statuses(run)["war-room"] == "not_applicable"
    assert statuses(run)["vendor-escalation"] == "not_applicable"
    assert refusal(run, InvalidTransition, decisions.start_step, "war-room") == (
        "step 'war-room' does not apply at level III (only I/II)"
    )
    assert refusal(run, InvalidTransition, decisions.start_step, "vendor-escalation") == (
        "step 'vendor-escalation' does not apply: its condition is false (peak_gbps >= 50)"
    )
    assert refusal(run, InvalidTransition, decisions.skip_step, "war-room", reason="n/a") == (
        "step 'war-room' does not apply at level III (only I/II)"
    )


def test_a_fact_switches_a_conditional_step_in_and_out() -> None:
    run = IncidentRun(level=III)
    run.do(decisions.complete_step, "confirm", note=None)
    assert statuses(run)["vendor-escalation"] == "ready"  # unknown: kept
    run.do(decisions.set_facts, {"peak_gbps": 12.5}, reason=None)
    assert statuses(run)["vendor-escalation"] == "not_applicable"
    run.do(decisions.set_facts, {"peak_gbps": 80}, reason="second wave")
    assert statuses(run)["vendor-escalation"] == "ready"
    run.do(decisions.set_facts, {"peak_gbps": None}, reason="measurement withdrawn")
    assert "peak_gbps" not in run.incident.facts
    assert statuses(run)["vendor-escalation"] == "ready"


def test_unknown_step_is_not_found_with_a_hint() -> None:
    run = IncidentRun(level=II)
    assert refusal(run, NotFound, decisions.start_step, "confrim") == (
        "no step 'confrim' in playbook runner; did you mean 'confirm'?"
    )
    assert refusal(run, NotFound, decisions.complete_step, "zzz", note=None) == "no step 'zzz' in playbook runner"


def test_complete_a_ready_step_without_starting_it() -> None:
    run = IncidentRun(level=II)
    run.advance(minutes=9)
    [event] = run.do(decisions.complete_step, "confirm", note="  alarm confirmed  ", actor="bob")
    assert event == StepCompleted(at=T0 + timedelta(minutes=9), actor="bob", step="confirm", note="alarm confirmed")
    p = run.incident.steps["confirm"]
    assert (p.status, p.started_at, p.finished_at, p.note) == (
        StepStatus.DONE,
        T0 + timedelta(minutes=9),
        T0 + timedelta(minutes=9),
        "alarm confirmed",
    )
    # the parallel branches open at once
    assert {sid: st for sid, st in statuses(run).items() if st == "ready"} == {
        "isolate": "ready",
        "inform-users": "ready",
        "vendor-escalation": "ready",
        "war-room": "ready",
        "prepare": "ready",
        "regulator-filing": "ready",
    }


def test_complete_a_step_in_progress_keeps_its_start() -> None:
    run = IncidentRun(level=II)
    run.do(decisions.start_step, "confirm")
    run.advance(minutes=12)
    run.do(decisions.complete_step, "confirm", note=None)
    p = run.incident.steps["confirm"]
    assert (p.started_at, p.finished_at, p.attempts) == (T0, T0 + timedelta(minutes=12), 1)


def test_the_join_waits_for_both_branches() -> None:
    run = IncidentRun(level=II)
    through_mitigate(run)
    run.do(decisions.approve_step, "reroute", role="commander", note=None, actor="alice")
    run.do(decisions.approve_step, "reroute", role="noc", note=None, actor="bob")
    run.do(decisions.complete_step, "reroute", note=None)
    assert statuses(run)["restore-full"] == "pending"
    run.do(decisions.complete_step, "inform-users", note=None)
    assert statuses(run)["restore-full"] == "ready"


# -- approvals -------------------------------------------------------------------------------------------


def test_two_approvals_by_role_from_two_people() -> None:
    run = IncidentRun(level=II)
    through_mitigate(run)
    assert refusal(run, InvalidTransition, decisions.complete_step, "reroute", note=None) == (
        "step 'reroute' waits for approval by commander, noc"
    )
    assert refusal(run, InvalidInput, decisions.approve_step, "reroute", role=None, note=None) == (
        "say which role you approve as (--as): commander, noc"
    )
    run.advance(minutes=1)
    [event] = run.do(decisions.approve_step, "reroute", role="commander", note="go", actor="alice")
    assert event == StepApproved(at=run.now, actor="alice", step="reroute", role="commander", note="go")
    assert refusal(run, InvalidTransition, decisions.complete_step, "reroute", note=None) == (
        "step 'reroute' waits for approval by noc"
    )
    assert refusal(run, InvalidTransition, decisions.approve_step, "reroute", role="noc", note=None, actor="alice") == (
        "alice has already approved step 'reroute': another person must give the next approval"
    )
    assert (
        refusal(
            run,
            InvalidTransition,
            decisions.approve_step,
            "reroute",
            role="commander",
            note=None,
            actor="bob",
        )
        == "step 'reroute' needs no approval from 'commander' (waiting for: noc)"
    )
    assert (
        refusal(run, InvalidTransition, decisions.approve_step, "reroute", role="security", note=None, actor="bob")
        == "step 'reroute' needs no approval from 'security' (waiting for: noc)"
    )
    # one role left: it need not be named
    [event] = run.do(decisions.approve_step, "reroute", role=None, note=None, actor="bob")
    assert isinstance(event, StepApproved)
    assert event.role == "noc"
    assert [(a.role, a.actor) for a in run.incident.steps["reroute"].approvals] == [
        ("commander", "alice"),
        ("noc", "bob"),
    ]
    assert refusal(run, InvalidTransition, decisions.approve_step, "reroute", role="noc", note=None, actor="carol") == (
        "step 'reroute' has all its approvals"
    )
    run.do(decisions.complete_step, "reroute", note=None)
    assert statuses(run)["reroute"] == "done"
    assert refusal(run, InvalidTransition, decisions.approve_step, "reroute", role="noc", note=None, actor="carol") == (
        "step 'reroute' is already done"
    )


def test_an_approval_may_be_given_before_the_step_is_ready() -> None:
    run = IncidentRun(level=II)
    run.do(decisions.approve_step, "reroute", role="commander", note=None)
    assert statuses(run)["reroute"] == "pending"
    assert decisions.remaining_approvals(run.incident, runner_playbook().steps["reroute"]) == ["noc"]


def test_a_step_without_approvals_refuses_one() -> None:
    run = IncidentRun(level=II)
    assert refusal(run, InvalidTransition, decisions.approve_step, "confirm", role=None, note=None) == (
        "step 'confirm' needs no approval"
    )


# -- evidence --------------------------------------------------------------------------------------------


def test_a_step_requiring_evidence_completes_only_with_it() -> None:
    run = IncidentRun(level=II)
    run.do(decisions.complete_step, "confirm", note=None)
    run.do(decisions.complete_step, "isolate", note=None)
    assert refusal(run, InvalidTransition, decisions.complete_step, "mitigate", note=None) == (
        "step 'mitigate' requires evidence: attach a file (--evidence FILE)"
    )
    run.advance(minutes=3)
    [event] = run.do(
        decisions.attach_evidence,
        "mitigate",
        sha256="b" * 64,
        filename="graph.png",
        size=10,
        media_type="image/png",
    )
    assert event == EvidenceAttached(
        at=run.now,
        actor="alice",
        step="mitigate",
        sha256="b" * 64,
        filename="graph.png",
        size=10,
        media_type="image/png",
    )
    assert (
        refusal(
            run,
            InvalidTransition,
            decisions.attach_evidence,
            "mitigate",
            sha256="b" * 64,
            filename="again.png",
            size=10,
            media_type="image/png",
        )
        == "this file is already evidence of step 'mitigate'"
    )
    run.do(decisions.complete_step, "mitigate", note=None)
    assert statuses(run)["mitigate"] == "done"


# -- skip, fail, retry -----------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_skipping_needs_a_reason(reason: str | None) -> None:
    run = IncidentRun(level=II)
    assert refusal(run, InvalidInput, decisions.skip_step, "confirm", reason=reason) == (
        "skipping step 'confirm' needs a reason (--note)"
    )


def test_a_skipped_step_releases_its_dependants() -> None:
    run = IncidentRun(level=II)
    run.advance(minutes=5)
    [event] = run.do(decisions.skip_step, "confirm", reason="alarm is self-evident")
    assert event == StepSkipped(
        at=T0 + timedelta(minutes=5), actor="alice", step="confirm", reason="alarm is self-evident"
    )
    p = run.incident.steps["confirm"]
    assert (p.status, p.finished_at, p.reason) == (
        StepStatus.SKIPPED,
        T0 + timedelta(minutes=5),
        "alarm is self-evident",
    )
    assert statuses(run)["isolate"] == "ready"
    assert refusal(run, InvalidTransition, decisions.skip_step, "confirm", reason="again") == (
        "step 'confirm' was skipped"
    )


def test_a_done_step_cannot_be_skipped() -> None:
    run = IncidentRun(level=II)
    run.do(decisions.complete_step, "confirm", note=None)
    assert refusal(run, InvalidTransition, decisions.skip_step, "confirm", reason="oops") == (
        "step 'confirm' is already done"
    )


def test_only_a_step_in_progress_fails() -> None:
    run = IncidentRun(level=II)
    assert refusal(run, InvalidTransition, decisions.fail_step, "confirm", reason="x") == (
        "step 'confirm' has not started: only a step in progress can fail"
    )
    assert refusal(run, InvalidTransition, decisions.fail_step, "isolate", reason="x") == (
        "step 'isolate' waits on 'confirm'"
    )
    run.do(decisions.start_step, "confirm")
    assert refusal(run, InvalidInput, decisions.fail_step, "confirm", reason=" ") == (
        "failing step 'confirm' needs a reason (--note)"
    )
    run.advance(minutes=7)
    [event] = run.do(decisions.fail_step, "confirm", reason="probe down")
    assert event == StepFailed(at=T0 + timedelta(minutes=7), actor="alice", step="confirm", reason="probe down")
    assert run.incident.steps["confirm"].reason == "probe down"
    assert statuses(run)["confirm"] == "failed"
    assert statuses(run)["isolate"] == "pending"
    assert refusal(run, InvalidTransition, decisions.fail_step, "confirm", reason="x") == (
        "step 'confirm' failed: retry it or skip it with a reason"
    )


def test_only_a_failed_step_is_retried() -> None:
    run = IncidentRun(level=II)
    assert refusal(run, InvalidTransition, decisions.retry_step, "confirm", note=None) == (
        "step 'confirm' has not failed (ready): nothing to retry"
    )
    assert refusal(run, InvalidTransition, decisions.retry_step, "isolate", note=None) == (
        "step 'isolate' has not failed (pending): nothing to retry"
    )
    run.do(decisions.start_step, "confirm")
    assert refusal(run, InvalidTransition, decisions.retry_step, "confirm", note=None) == (
        "step 'confirm' has not failed (in progress): nothing to retry"
    )
    run.do(decisions.fail_step, "confirm", reason="probe down")
    run.advance(minutes=10)
    [event] = run.do(decisions.retry_step, "confirm", note="probe replaced")
    assert event == StepRetried(at=T0 + timedelta(minutes=10), actor="alice", step="confirm", note="probe replaced")
    p = run.incident.steps["confirm"]
    assert (p.status, p.attempts, p.reason) == (StepStatus.IN_PROGRESS, 2, None)
    run.do(decisions.complete_step, "confirm", note=None)
    assert refusal(run, InvalidTransition, decisions.retry_step, "confirm", note=None) == (
        "step 'confirm' has not failed (done): nothing to retry"
    )


def test_retrying_a_step_outside_the_level_says_why() -> None:
    run = IncidentRun(level=IV)
    assert refusal(run, InvalidTransition, decisions.retry_step, "war-room", note=None) == (
        "step 'war-room' does not apply at level IV (only I/II)"
    )


# -- checklist and notes ---------------------------------------------------------------------------------


def test_checklist_items_check_and_uncheck() -> None:
    run = IncidentRun(level=II)
    [event] = run.do(decisions.check_item, "confirm", 2, checked=True)
    assert event == ChecklistItemChecked(at=T0, actor="alice", step="confirm", item=1, checked=True)
    run.do(decisions.check_item, "confirm", 3, checked=True)
    assert run.incident.steps["confirm"].checked == {1, 2}
    assert refusal(run, InvalidTransition, decisions.check_item, "confirm", 2, checked=True) == (
        "checklist item 2 of step 'confirm' is already checked"
    )
    run.do(decisions.check_item, "confirm", 2, checked=False)
    assert run.incident.steps["confirm"].checked == {2}
    assert refusal(run, InvalidTransition, decisions.check_item, "confirm", 1, checked=False) == (
        "checklist item 1 of step 'confirm' is already unchecked"
    )


@pytest.mark.parametrize(
    ("step", "item", "message"),
    [
        ("confirm", 4, "step 'confirm' has 3 checklist item(s); no item 4"),
        ("confirm", 0, "step 'confirm' has 3 checklist item(s); no item 0"),
        ("isolate", 1, "step 'isolate' has 0 checklist item(s); no item 1"),
    ],
)
def test_checklist_item_out_of_range(step: str, item: int, message: str) -> None:
    run = IncidentRun(level=II)
    assert refusal(run, InvalidInput, decisions.check_item, step, item, checked=True) == message


def test_notes() -> None:
    run = IncidentRun()
    [event] = run.do(decisions.add_note, " ticket INC-42 opened ", step_id=None)
    assert event == NoteAdded(at=T0, actor="alice", text="ticket INC-42 opened", step=None)
    run.do(decisions.add_note, "probe 3 flapping", step_id="confirm")
    assert [(n.text, n.step) for n in run.incident.notes] == [
        ("ticket INC-42 opened", None),
        ("probe 3 flapping", "confirm"),
    ]
    assert refusal(run, InvalidInput, decisions.add_note, " ", step_id=None) == "note is required"
    assert refusal(run, InvalidInput, decisions.add_note, "x" * 10_001, step_id=None) == (
        "note is at most 10,000 characters"
    )
    assert refusal(run, NotFound, decisions.add_note, "x", step_id="isolat") == (
        "no step 'isolat' in playbook runner; did you mean 'isolate'?"
    )


# -- facts -----------------------------------------------------------------------------------------------


FACTS = runner_playbook().facts


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("affected_users", "1,200,000", 1_200_000),
        ("affected_users", "1_200_000", 1_200_000),
        ("affected_users", " 42 ", 42),
        ("affected_users", "-3", -3),
        ("affected_users", "", None),
        ("peak_gbps", "12.5", 12.5),
        ("peak_gbps", "1,000.25", 1000.25),
        ("peak_gbps", "10", 10),
        ("cii_involved", "是", True),
        ("cii_involved", "否", False),
        ("cii_involved", "YES", True),
        ("cii_involved", "false", False),
        ("cii_involved", "1", True),
        ("scope", "province", "province"),
        ("outage_duration", "90m", "1h30m"),
        ("outage_duration", "2h", "2h"),
    ],
)
def test_facts_are_read_by_type(name: str, text: str, value: object) -> None:
    parsed = parse_fact(FACTS[name], text)
    assert parsed == value
    assert type(parsed) is type(value)


def test_a_decimal_number_stays_a_float() -> None:
    parsed = parse_fact(FACTS["peak_gbps"], "10.0")
    assert parsed == 10.0
    assert isinstance(parsed, float)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("affected_users", "1,20,000", "fact 'affected_users' is an integer; got '1,20,000'"),
        ("affected_users", "12.5", "fact 'affected_users' is an integer; got '12.5'"),
        ("affected_users", "many", "fact 'affected_users' is an integer; got 'many'"),
        ("peak_gbps", "lots", "fact 'peak_gbps' is a number; got 'lots'"),
        ("peak_gbps", "nan", "fact 'peak_gbps' must be a finite number"),
        ("peak_gbps", "-inf", "fact 'peak_gbps' must be a finite number"),
        ("cii_involved", "maybe", "fact 'cii_involved' is true or false; got 'maybe'"),
        (
            "scope",
            "provnce",
            "fact 'scope' is one of city, province, national; got 'provnce'; did you mean 'province'?",
        ),
        ("scope", "Mars", "fact 'scope' is one of city, province, national; got 'Mars'"),
        (
            "outage_duration",
            "1.5h",
            "fact 'outage_duration' is a duration (e.g. 90m, 2h): fractions are not allowed in a duration;"
            " use a smaller unit (e.g. 1h30m, not 1.5h)",
        ),
        ("outage_duration", "2wd", "fact 'outage_duration' is elapsed time, not working days"),
    ],
)
def test_fact_values_of_the_wrong_type_are_refused(name: str, text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_fact(FACTS[name], text)
    assert caught.value.message == message
    assert caught.value.field == name


STANDARD = (
    "; and the standard facts: central_state_organ, cause, accountability, remediation, recommendations, "
    "consequences, data_subjects, records_affected, malicious, cross_border, iocs, best_practices, "
    "bcp_activated)"
)


def test_unknown_fact_says_did_you_mean() -> None:
    with pytest.raises(InvalidInput) as caught:
        fact_named(runner_playbook(), "afected_users")
    assert caught.value.message == (
        "unknown fact 'afected_users'; did you mean 'affected_users'? "
        "(facts of runner: affected_users, scope, peak_gbps, cii_involved, outage_duration" + STANDARD
    )
    with pytest.raises(InvalidInput) as caught:
        parse_assignments(runner_playbook(), ["colour=red"])
    assert caught.value.message == (
        "unknown fact 'colour' (facts of runner: affected_users, scope, peak_gbps, cii_involved, outage_duration"
        + STANDARD
    )


def test_assignments_from_the_command_line() -> None:
    assert parse_assignments(
        runner_playbook(), ["affected_users=1,200", " scope = city", "cii_involved=是", "peak_gbps="]
    ) == {"affected_users": 1200, "scope": "city", "cii_involved": True, "peak_gbps": None}
    with pytest.raises(InvalidInput) as caught:
        parse_assignments(runner_playbook(), ["affected_users"])
    assert caught.value.message == "a fact is written name=value; got 'affected_users'"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("affected_users", 12, 12),
        ("affected_users", "1,000", 1000),
        ("peak_gbps", 3, 3),
        ("peak_gbps", 2.5, 2.5),
        ("cii_involved", True, True),
        ("outage_duration", "90m", "1h30m"),
        ("scope", None, None),
    ],
)
def test_json_fact_values_are_checked(name: str, value: object, expected: object) -> None:
    assert check_fact_value(FACTS[name], value) == expected


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("affected_users", True, "fact 'affected_users' is integer; got bool"),
        ("affected_users", 2.5, "fact 'affected_users' is integer; got float"),
        ("cii_involved", 1, "fact 'cii_involved' is boolean; got int"),
        ("scope", 3, "fact 'scope' is enum; got int"),
    ],
)
def test_json_fact_values_of_the_wrong_type(name: str, value: object, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_fact_value(FACTS[name], value)
    assert caught.value.message == message


def test_setting_facts_records_only_what_changed() -> None:
    run = IncidentRun(facts={"affected_users": 5, "scope": "city"})
    run.advance(minutes=3)
    [event] = run.do(
        decisions.set_facts,
        {"affected_users": 5, "scope": "province", "outage_duration": "90m"},
        reason=" spread ",
    )
    assert event == FactsSet(
        at=T0 + timedelta(minutes=3),
        actor="alice",
        facts={"scope": "province", "outage_duration": "90m"},
        reason="spread",
    )
    assert run.incident.facts == {
        "affected_users": 5,
        "scope": "province",
        "outage_duration": timedelta(minutes=90),
    }
    # the same duration written differently is no change
    assert refusal(run, InvalidTransition, decisions.set_facts, {"outage_duration": "1h30m"}, reason=None) == (
        "no change: the facts already hold these values"
    )
    assert refusal(run, InvalidTransition, decisions.set_facts, {"peak_gbps": None}, reason=None) == (
        "no change: the facts already hold these values"
    )
    assert refusal(run, InvalidInput, decisions.set_facts, {}, reason=None) == "no facts given (write name=value)"
    run.do(decisions.set_facts, {"scope": None}, reason=None)
    assert "scope" not in run.incident.facts


# -- clocks ------------------------------------------------------------------------------------------------


def test_a_clock_may_be_recorded_after_the_fact() -> None:
    run = IncidentRun()
    run.advance(minutes=20)
    [event] = run.do(decisions.record_clock, ClockName.AWARENESS, T0 + timedelta(minutes=5), reason=None)
    assert event == ClockRecorded(
        at=T0 + timedelta(minutes=20),
        actor="alice",
        clock="awareness",
        instant=T0 + timedelta(minutes=5),
        reason=None,
        correction=False,
    )
    reading = run.incident.clocks[ClockName.AWARENESS]
    assert (reading.instant, reading.recorded_at, reading.actor, reading.corrections) == (
        T0 + timedelta(minutes=5),
        T0 + timedelta(minutes=20),
        "alice",
        0,
    )


def test_a_clock_in_the_future_is_refused_beyond_five_minutes_except_expected_impact() -> None:
    run = IncidentRun()
    assert (
        refusal(
            run,
            InvalidInput,
            decisions.record_clock,
            ClockName.AWARENESS,
            T0 + timedelta(minutes=5, seconds=1),
            reason=None,
        )
        == "awareness cannot be in the future"
    )
    run.do(decisions.record_clock, ClockName.AWARENESS, T0 + timedelta(minutes=5), reason=None)  # clock skew
    run.do(decisions.record_clock, ClockName.EXPECTED_IMPACT, T0 + timedelta(days=2), reason=None)
    assert run.incident.clock(ClockName.EXPECTED_IMPACT) == T0 + timedelta(days=2)


def test_correcting_a_clock_needs_a_reason() -> None:
    run = IncidentRun()
    run.do(decisions.record_clock, ClockName.AWARENESS, T0, reason=None)
    assert (
        refusal(
            run,
            InvalidInput,
            decisions.record_clock,
            ClockName.AWARENESS,
            T0 - timedelta(minutes=10),
            reason=None,
        )
        == "awareness is already recorded (2026-03-02T01:00:00+00:00): a correction needs --reason"
    )
    assert refusal(run, InvalidTransition, decisions.record_clock, ClockName.AWARENESS, T0, reason="same") == (
        "awareness is already recorded at that instant"
    )
    [event] = run.do(
        decisions.record_clock,
        ClockName.AWARENESS,
        T0 - timedelta(minutes=10),
        reason="pager log shows earlier",
    )
    assert isinstance(event, ClockRecorded)
    assert event.correction is True
    reading = run.incident.clocks[ClockName.AWARENESS]
    assert (reading.instant, reading.reason, reading.corrections) == (
        T0 - timedelta(minutes=10),
        "pager log shows earlier",
        1,
    )


def test_detection_can_be_corrected_with_a_reason() -> None:
    run = IncidentRun()
    run.do(decisions.record_clock, ClockName.DETECTION, T0 - timedelta(hours=1), reason="first alarm at 08:00")
    assert run.incident.onset == T0 - timedelta(hours=1)
    assert run.incident.clocks[ClockName.DETECTION].corrections == 1


@pytest.mark.parametrize("clock", [ClockName.RESTORATION_FULL, ClockName.RESTORATION_DEGRADED, ClockName.MITIGATION])
def test_recovery_cannot_precede_detection(clock: ClockName) -> None:
    run = IncidentRun(level=II)
    run.advance(hours=1)
    assert refusal(run, InvalidInput, decisions.record_clock, clock, T0 - timedelta(seconds=1), reason=None) == (
        f"{clock.value} cannot precede detection (2026-03-02T01:00:00+00:00)"
    )
    run.do(decisions.record_clock, clock, T0, reason=None)


def test_detection_cannot_be_corrected_to_after_restoration() -> None:
    # the same ordering that recording a restoration before detection is refused for: otherwise RTO
    # reads a negative recovery time (restored 1h before detection) and reports it met
    run = IncidentRun(level=II)
    run.advance(hours=5)
    run.do(decisions.restore, degraded=True, at=T0 + timedelta(hours=3), reason=None)
    error = run.refuse(decisions.record_clock, ClockName.DETECTION, T0 + timedelta(hours=4), reason="wrong alarm")
    assert isinstance(error, InvalidInput)
    assert error.field == "instant"


def test_clock_input_mistakes() -> None:
    run = IncidentRun()
    assert refusal(run, InvalidInput, decisions.record_clock, ClockName.CLOSURE, T0, reason=None) == (
        "closure is recorded by closing the incident (ir close)"
    )
    assert refusal(
        run, InvalidInput, decisions.record_clock, ClockName.AWARENESS, datetime(2026, 3, 2, 9), reason=None
    ) == ("give the instant with its time zone, e.g. 2026-10-01T09:00+08:00")


# -- restoration ---------------------------------------------------------------------------------------------


def test_completing_restore_steps_records_the_restoration_clocks() -> None:
    run = IncidentRun(level=II)
    run.do(decisions.complete_step, "confirm", note=None)
    run.do(decisions.complete_step, "isolate", note=None)
    evidence(run, "mitigate")
    run.advance(hours=1)
    run.do(decisions.complete_step, "mitigate", note=None)
    assert run.incident.clock(ClockName.RESTORATION_DEGRADED) == T0 + timedelta(hours=1)
    assert run.incident.clock(ClockName.RESTORATION_FULL) is None
    assert run.incident.restored_at == T0 + timedelta(hours=1)
    run.do(decisions.approve_step, "reroute", role="commander", note=None, actor="alice")
    run.do(decisions.approve_step, "reroute", role="noc", note=None, actor="bob")
    run.do(decisions.complete_step, "reroute", note=None)
    run.do(decisions.complete_step, "inform-users", note=None)
    run.advance(hours=2)
    run.do(decisions.complete_step, "restore-full", note=None)
    assert run.incident.clock(ClockName.RESTORATION_FULL) == T0 + timedelta(hours=3)
    assert run.incident.clocks[ClockName.RESTORATION_FULL].actor == "alice"
    assert run.incident.restored_at == T0 + timedelta(hours=1)


def test_a_restore_step_keeps_a_restoration_recorded_before_it() -> None:
    run = IncidentRun(level=II)
    run.advance(hours=2)
    run.do(decisions.restore, degraded=True, at=T0 + timedelta(minutes=50), reason=None)
    run.do(decisions.complete_step, "confirm", note=None)
    run.do(decisions.complete_step, "isolate", note=None)
    evidence(run, "mitigate")
    run.advance(hours=1)
    run.do(decisions.complete_step, "mitigate", note=None)
    assert run.incident.clock(ClockName.RESTORATION_DEGRADED) == T0 + timedelta(minutes=50)


def test_restore_by_hand() -> None:
    run = IncidentRun(level=II)
    run.advance(hours=3)
    [event] = run.do(decisions.restore, degraded=False, at=None, reason=None)
    assert event == ClockRecorded(
        at=T0 + timedelta(hours=3), actor="alice", clock="restoration_full", instant=T0 + timedelta(hours=3)
    )
    assert refusal(run, InvalidInput, decisions.restore, degraded=False, at=T0 + timedelta(hours=2), reason=None) == (
        "restoration_full is already recorded (2026-03-02T04:00:00+00:00): a correction needs --reason"
    )
    assert refusal(run, InvalidInput, decisions.restore, degraded=True, at=T0 - timedelta(hours=1), reason=None) == (
        "restoration_degraded cannot precede detection (2026-03-02T01:00:00+00:00)"
    )


# -- notifications -----------------------------------------------------------------------------------------


def test_marking_a_notification_sent() -> None:
    run = IncidentRun(level=II)
    run.advance(minutes=25)
    [event] = run.do(decisions.mark_notification_sent, "tell-regulator", reference=" MIIT-0042 ")
    assert event == NotificationSent(
        at=T0 + timedelta(minutes=25), actor="alice", notification="tell-regulator", reference="MIIT-0042"
    )
    run.advance(hours=2)
    run.do(decisions.mark_notification_sent, "tell-regulator", reference=None)
    assert run.incident.notifications_sent == {
        "tell-regulator": [T0 + timedelta(minutes=25), T0 + timedelta(hours=2, minutes=25)]
    }


def test_unknown_or_inapplicable_notifications_are_refused() -> None:
    run = IncidentRun(level=III)
    assert refusal(run, NotFound, decisions.mark_notification_sent, "tell-regulater", reference=None) == (
        "no notification 'tell-regulater' in playbook runner; did you mean 'tell-regulator'?"
    )
    assert refusal(run, InvalidTransition, decisions.mark_notification_sent, "press", reference=None) == (
        "notification 'press' does not apply to incident 7 now"
    )


# -- closing -------------------------------------------------------------------------------------------------


def test_closing_with_open_steps_needs_a_reason() -> None:
    run = IncidentRun(level=II)
    assert refusal(run, InvalidTransition, decisions.close_incident, reason=None) == (
        "incident 7 has open steps ('confirm', 'isolate', 'inform-users', 'vendor-escalation', 'war-room'"
        " and 5 more): finish or skip them, or close with --reason"
    )
    run.do(decisions.complete_step, "confirm", note=None)
    run.do(decisions.set_facts, {"peak_gbps": 1}, reason=None)
    run.do(decisions.declare_level, IV, reason="small after all")
    for sid in ("isolate", "inform-users", "prepare", "regulator-filing"):
        run.do(decisions.skip_step, sid, reason="not needed")
    run.do(decisions.start_step, "mitigate")
    run.do(decisions.fail_step, "mitigate", reason="no spare")
    assert refusal(run, InvalidTransition, decisions.close_incident, reason=None) == (
        "incident 7 has open steps ('mitigate', 'reroute', 'restore-full'): finish or skip them, or close with --reason"
    )


def test_closing_without_recorded_restoration_needs_a_reason() -> None:
    run = IncidentRun(level=IV, facts={"peak_gbps": 1})
    for sid in EVERY_STEP:
        if statuses(run)[sid] != "not_applicable":
            run.do(decisions.skip_step, sid, reason="false alarm")
    assert refusal(run, InvalidTransition, decisions.close_incident, reason=None) == (
        "service restoration is not recorded (ir restore 7): or close with --reason"
    )
    run.advance(hours=1)
    run.do(decisions.restore, degraded=False, at=None, reason=None)
    [event] = run.do(decisions.close_incident, reason=None)
    assert event == IncidentClosed(at=T0 + timedelta(hours=1), actor="alice", reason=None)


def test_closing_with_a_reason() -> None:
    run = IncidentRun(level=II)
    run.advance(hours=5)
    run.do(decisions.close_incident, reason="handed over to problem management")
    inc = run.incident
    assert inc.closed
    reading = inc.clocks[ClockName.CLOSURE]
    assert (reading.instant, reading.reason) == (T0 + timedelta(hours=5), "handed over to problem management")


CLOSED_ACTS: list[tuple[Decision, tuple[object, ...], dict[str, object]]] = [
    (decisions.set_facts, ({"affected_users": 9},), {"reason": None}),
    (decisions.record_clock, (ClockName.AWARENESS, RUN_START), {"reason": None}),
    (decisions.declare_level, (ResponseLevel.I,), {"reason": "worse"}),
    (decisions.start_step, ("confirm",), {}),
    (decisions.complete_step, ("confirm",), {"note": None}),
    (decisions.skip_step, ("confirm",), {"reason": "x"}),
    (decisions.fail_step, ("confirm",), {"reason": "x"}),
    (decisions.retry_step, ("confirm",), {"note": None}),
    (decisions.approve_step, ("reroute",), {"role": "noc", "note": None}),
    (decisions.check_item, ("confirm", 1), {"checked": True}),
    (decisions.add_note, ("late note",), {"step_id": None}),
    (
        decisions.attach_evidence,
        ("mitigate",),
        {"sha256": "c" * 64, "filename": "f", "size": 1, "media_type": "text/plain"},
    ),
    (decisions.mark_notification_sent, ("tell-regulator",), {"reference": None}),
    (decisions.restore, (), {"degraded": False, "at": None, "reason": None}),
    (decisions.close_incident, (), {"reason": "again"}),
]


@pytest.mark.parametrize(("fn", "args", "kwargs"), CLOSED_ACTS, ids=[f.__name__ for f, _, _ in CLOSED_ACTS])
def test_a_closed_incident_refuses_everything(
    fn: Decision, args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    run = IncidentRun(level=II)
    run.advance(hours=1)
    run.do(decisions.close_incident, reason="test")
    run.advance(minutes=1)
    assert refusal(run, InvalidTransition, fn, *args, **kwargs) == "incident 7 is closed"


def test_the_version_counts_the_events() -> None:
    run = IncidentRun(level=II)
    run.do(decisions.complete_step, "confirm", note=None)
    run.do(decisions.add_note, "n", step_id=None)
    assert run.incident.version == len(run.events) == 4
    assert run.incident.updated_at == T0
    assert run.incident.updated_at.tzinfo == UTC
