"""Properties of the fold, under random sequences of acts (hypothesis).

Acts go through the decision functions on an explicit clock, as a command handler would. A refusal
(IrError) is fine but must leave the state untouched; an accepted act's events are folded. After each
sequence, re-folding the accepted events from scratch (also through their stored JSON form) must give the
same state, a snapshot must round-trip, and the invariants of a response must hold.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ir.domain import decisions
from ir.domain.clocks import ClockName
from ir.domain.deadlines import deadlines, touched_refs
from ir.domain.durations import WorkingCalendar
from ir.domain.errors import IrError
from ir.domain.events import (
    Event,
    EvidenceAttached,
    FactValue,
    IncidentClosed,
    StepApproved,
    StepCompleted,
    StepFailed,
    StepRetried,
    StepStarted,
    event_from_dict,
    event_to_dict,
)
from ir.domain.incident import Incident, StepStatus, fold
from ir.domain.levels import ResponseLevel
from ir.domain.playbook import Calendar
from ir.domain.snapshot import from_snapshot, to_snapshot
from tests.builders import RUN_START, IncidentRun, runner_playbook

PLAYBOOK = runner_playbook()
STEP_IDS = [*PLAYBOOK.steps, "nope"]
ACTORS = ["alice", "bob", "carol"]
REASONS = st.sampled_from(["because", None, "", "because"])
MINUTES = st.integers(min_value=0, max_value=90)


@dataclass(frozen=True)
class FakeCalendar:
    zone: tzinfo = timezone(timedelta(hours=8))

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5


def calendar_for(_: Calendar) -> WorkingCalendar:
    return FakeCalendar()


# -- acts ------------------------------------------------------------------------------------------------

FACT_VALUES: dict[str, st.SearchStrategy[FactValue]] = {
    "affected_users": st.none() | st.integers(min_value=0, max_value=20_000_000),
    "scope": st.none() | st.sampled_from(["city", "province", "national"]),
    "peak_gbps": st.none()
    | st.integers(min_value=0, max_value=500)
    | st.floats(min_value=0, max_value=500, allow_nan=False),
    "cii_involved": st.none() | st.booleans(),
    "outage_duration": st.none() | st.sampled_from(["30m", "90m", "1h30m", "2h"]),
}
facts = st.fixed_dictionaries({}, optional=FACT_VALUES)


@dataclass(frozen=True)
class Act:
    """One act, turned into a decision call at the instant it is performed."""

    name: str
    args: tuple[Any, ...] = ()
    actor: str = "alice"
    minutes_later: int = 0

    def call(self, inc: Incident, now: datetime) -> list[Event]:
        a = self.args
        if a and isinstance(a[0], int) and self.name in WANTED:
            a = (pick(inc, a[0], self.name), *a[1:])
        who: dict[str, Any] = {"actor": self.actor, "now": now}
        match self.name:
            case "level":
                return decisions.declare_level(inc, a[0], reason=a[1], **who)
            case "facts":
                return decisions.set_facts(inc, a[0], reason=None, **who)
            case "start":
                return decisions.start_step(inc, a[0], **who)
            case "complete":
                return decisions.complete_step(inc, a[0], note=a[1], **who)
            case "skip":
                return decisions.skip_step(inc, a[0], reason=a[1], **who)
            case "fail":
                return decisions.fail_step(inc, a[0], reason=a[1], **who)
            case "retry":
                return decisions.retry_step(inc, a[0], note=None, **who)
            case "approve":
                return decisions.approve_step(inc, a[0], role=a[1], note=None, **who)
            case "evidence":
                return decisions.attach_evidence(
                    inc, a[0], sha256=a[1], filename="f.png", size=1, media_type="image/png", **who
                )
            case "check":
                return decisions.check_item(inc, a[0], a[1], checked=a[2], **who)
            case "note":
                return decisions.add_note(inc, a[0], step_id=a[1], **who)
            case "clock":
                return decisions.record_clock(inc, a[0], now + timedelta(minutes=a[1]), reason=a[2], **who)
            case "restore":
                at = None if a[1] is None else now - timedelta(minutes=a[1])
                return decisions.restore(inc, degraded=a[0], at=at, reason=a[2], **who)
            case "notify":
                return decisions.mark_notification_sent(inc, a[0], reference=None, **who)
            case "close":
                return decisions.close_incident(inc, reason=a[0], **who)
        raise AssertionError(self.name)


OPEN = frozenset({StepStatus.PENDING, StepStatus.READY, StepStatus.IN_PROGRESS, StepStatus.FAILED})
WANTED: dict[str, frozenset[StepStatus]] = {
    "start": frozenset({StepStatus.READY}),
    "complete": frozenset({StepStatus.READY, StepStatus.IN_PROGRESS}),
    "fail": frozenset({StepStatus.IN_PROGRESS}),
    "retry": frozenset({StepStatus.FAILED}),
    "skip": OPEN,
    "approve": OPEN,
    "evidence": OPEN,
    "check": OPEN,
}


def pick(inc: Incident, k: int, name: str) -> str:
    """The k-th step (mod their number) that the act could apply to now, or of all steps when none could:
    so that random sequences get deep into a response instead of being mostly refused."""
    wanted = WANTED[name]
    candidates = [
        sid
        for sid, status in inc.statuses().items()
        if status in wanted
        and (name != "approve" or PLAYBOOK.steps[sid].approvals)
        and (name != "check" or PLAYBOOK.steps[sid].checklist)
        and (name != "evidence" or PLAYBOOK.steps[sid].evidence_required)
    ]
    candidates = candidates[::-1] or list(PLAYBOOK.steps)  # the deepest first: drive the response forward
    return candidates[k % len(candidates)]


def act(name: str, *args: st.SearchStrategy[Any]) -> st.SearchStrategy[Act]:
    return st.builds(Act, st.just(name), st.tuples(*args), st.sampled_from(ACTORS), MINUTES)


steps: st.SearchStrategy[str | int] = st.sampled_from(STEP_IDS) | st.integers(min_value=0, max_value=9)
acts = st.one_of(
    act("level", st.sampled_from(list(ResponseLevel)), REASONS),
    act("facts", facts),
    act("start", steps),
    act("start", steps),
    act("complete", steps, st.sampled_from([None, "ok"])),
    act("complete", steps, st.sampled_from([None, "ok"])),
    act("complete", steps, st.sampled_from([None, "ok"])),
    act("skip", steps, REASONS),
    act("fail", steps, REASONS),
    act("retry", steps),
    act("approve", steps, st.sampled_from([None, "commander", "noc", "security"])),
    act("approve", steps, st.sampled_from([None, "commander", "noc"])),
    act("evidence", steps, st.sampled_from(["a" * 64, "b" * 64])),
    act("check", steps, st.integers(min_value=0, max_value=4), st.booleans()),
    act("note", st.sampled_from(["", "x", "probe 3 flapping"]), st.sampled_from([None, "confirm", "nope"])),
    act("clock", st.sampled_from(list(ClockName)), st.integers(min_value=-600, max_value=60), REASONS),
    act("restore", st.booleans(), st.none() | st.integers(min_value=-10, max_value=300), REASONS),
    act("notify", st.sampled_from([*PLAYBOOK.notifications, "nope"])),
    act("close", st.sampled_from([None] * 9 + ["handed over"])),
)


# -- running a sequence, checking every step of the way ------------------------------------------------------


@dataclass
class Checked:
    """An IncidentRun whose every accepted event is checked against the state it is folded into."""

    run: IncidentRun
    refused: int = 0
    batches: list[tuple[Incident, list[Event]]] = field(default_factory=list)
    started_ready: set[str] = field(default_factory=set)  # steps last started while ready

    def perform(self, a: Act, *, keep_before: bool = False) -> list[Event]:
        run = self.run
        run.now += timedelta(minutes=a.minutes_later)
        inc = run.incident
        before = to_snapshot(inc)
        try:
            events = a.call(inc, run.now)
        except IrError:
            self.refused += 1
            assert to_snapshot(inc) == before, a
            assert inc.version == len(run.events)
            return []
        assert to_snapshot(inc) == before, f"{a} changed the state while deciding"
        if keep_before:
            self.batches.append((fold(inc.id, inc.playbook, list(run.events)), events))
        for e in events:
            self.check_before(inc, e)
            inc.apply(e)
            run.events.append(e)
        self.check_state(inc)
        return events

    def check_before(self, inc: Incident, e: Event) -> None:
        assert not inc.closed, f"{e} accepted on a closed incident"
        if isinstance(e, StepStarted):
            assert inc.step_status(e.step) is StepStatus.READY
            assert all(inc.resolved(d) for d in PLAYBOOK.steps[e.step].depends_on)
            self.started_ready.add(e.step)
        elif isinstance(e, StepCompleted):
            status = inc.step_status(e.step)
            assert status in (StepStatus.READY, StepStatus.IN_PROGRESS), (e, status)
            if status is StepStatus.READY:
                assert all(inc.resolved(d) for d in PLAYBOOK.steps[e.step].depends_on)
            else:
                assert e.step in self.started_ready  # its dependencies were resolved when it started
            step = PLAYBOOK.steps[e.step]
            assert decisions.remaining_approvals(inc, step) == []
            assert not step.evidence_required or inc.steps[e.step].evidence
        elif isinstance(e, StepFailed):
            assert inc.step_status(e.step) is StepStatus.IN_PROGRESS
        elif isinstance(e, StepRetried):
            assert inc.step_status(e.step) is StepStatus.FAILED
        elif isinstance(e, StepApproved):
            assert e.role in decisions.remaining_approvals(inc, PLAYBOOK.steps[e.step])
        elif isinstance(e, EvidenceAttached):
            prog = inc.steps.get(e.step)
            assert prog is None or e.sha256 not in {x.sha256 for x in prog.evidence}

    def check_state(self, inc: Incident) -> None:
        assert inc.version == len(self.run.events)
        for sid, prog in inc.steps.items():
            step = PLAYBOOK.steps[sid]
            given = Counter(a.role for a in prog.approvals)
            assert not given - Counter(step.approvals), f"{sid}: approvals {given} exceed {step.approvals}"
            assert len({a.actor for a in prog.approvals}) == len(prog.approvals), f"{sid}: one person approved twice"
            if prog.status is StepStatus.DONE:
                assert prog.finished_at is not None and prog.started_at is not None
                assert prog.started_at <= prog.finished_at
            assert prog.checked <= set(range(len(step.checklist)))
        if inc.level is None:
            assert set(inc.statuses().values()) == {StepStatus.NOT_APPLICABLE}
        restored = [e for e in self.run.events if isinstance(e, StepCompleted) and PLAYBOOK.steps[e.step].restores]
        if restored:
            assert inc.restored_at is not None


def run_sequence(
    opening: dict[str, FactValue], level: ResponseLevel | None, sequence: list[Act], *, keep_before: bool = False
) -> Checked:
    checked = Checked(IncidentRun(facts=opening, level=level))
    checked.check_state(checked.run.incident)
    for a in sequence:
        checked.perform(a, keep_before=keep_before)
    return checked


openings = st.tuples(facts, st.sampled_from([*ResponseLevel, *ResponseLevel, None]))
sequences = st.lists(acts, min_size=15, max_size=80)
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(openings, sequences)
def test_the_fold_is_deterministic_and_snapshots_round_trip(
    opening: tuple[dict[str, FactValue], ResponseLevel | None], sequence: list[Act]
) -> None:
    checked = run_sequence(*opening, sequence)
    inc, events = checked.run.incident, checked.run.events
    state = to_snapshot(inc)

    # (1) re-folding every accepted event from scratch gives the same state …
    assert to_snapshot(fold(inc.id, PLAYBOOK, events)) == state
    # … and so does re-folding them from their stored JSON form
    stored = [(e.kind, json.loads(json.dumps(event_to_dict(e)))) for e in events]
    again = [event_from_dict(kind, payload) for kind, payload in stored]
    assert again == events
    assert to_snapshot(fold(inc.id, PLAYBOOK, again)) == state

    # (2) a snapshot, stored as JSON, loads back to the same state
    loaded = from_snapshot(inc.id, PLAYBOOK, json.loads(json.dumps(state)))
    assert to_snapshot(loaded) == state
    assert loaded.statuses() == inc.statuses()
    assert deadlines(loaded, calendar_for=calendar_for) == deadlines(inc, calendar_for=calendar_for)

    # (3) version == number of events; nothing after closure
    assert inc.version == len(events)
    if inc.closed:
        assert isinstance(events[-1], IncidentClosed)
        assert sum(isinstance(e, IncidentClosed) for e in events) == 1


def rows(inc: Incident) -> dict[str, tuple[object, ...]]:
    """What the work-item projection keeps per ref (ir.adapters.db.incidents, _refresh_work_items)."""
    by_ref = {d.ref: d for d in deadlines(inc, calendar_for=calendar_for)}
    out: dict[str, tuple[object, ...]] = {}
    for sid in PLAYBOOK.steps:
        d = by_ref.pop(f"step:{sid}", None)
        prog = inc.steps.get(sid)
        done = d.done_at if d else (prog.finished_at if prog else None)
        out[f"step:{sid}"] = (inc.step_status(sid), prog.assignee if prog else None, d.due_at if d else None, done)
    for ref, d in by_ref.items():
        out[ref] = (d.due_at, d.done_at, d.role)
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(openings, sequences)
def test_touched_refs_name_every_work_item_that_moves(
    opening: tuple[dict[str, FactValue], ResponseLevel | None], sequence: list[Act]
) -> None:
    checked = run_sequence(*opening, sequence, keep_before=True)
    for before, events in checked.batches:
        refs = touched_refs(before, events)
        if refs is None:
            continue
        after = from_snapshot(before.id, PLAYBOOK, to_snapshot(before))
        for e in events:
            after.apply(e)
        old, new = rows(before), rows(after)
        moved = {ref for ref in old.keys() | new.keys() if old.get(ref) != new.get(ref)}
        assert moved <= refs, f"{[type(e).__name__ for e in events]} moved {sorted(moved - refs)}, not named"


def test_a_refused_act_changes_nothing_even_mid_response() -> None:
    # a fixed sequence through the same machinery, so the property harness itself can be seen to work
    checked = run_sequence(
        {"affected_users": 250_000},
        ResponseLevel.II,
        [
            Act("complete", ("confirm", None)),
            Act("start", ("confirm",)),  # refused: already done
            Act("complete", ("isolate", None), minutes_later=5),
            Act("complete", ("mitigate", None)),  # refused: evidence
            Act("evidence", ("mitigate", "a" * 64)),
            Act("complete", ("mitigate", None), minutes_later=30),
            Act("approve", ("reroute", "commander"), actor="alice"),
            Act("approve", ("reroute", "noc"), actor="alice"),  # refused: same person
            Act("approve", ("reroute", None), actor="bob"),
        ],
    )
    assert checked.refused == 3
    inc = checked.run.incident
    assert inc.version == len(checked.run.events) == 8
    assert [a.role for a in inc.steps["reroute"].approvals] == ["commander", "noc"]
    assert inc.clock(ClockName.RESTORATION_DEGRADED) == RUN_START + timedelta(minutes=35)
