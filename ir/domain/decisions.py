"""Decisions: each act on an incident checked against its state, returning the events it causes.

A refusal is an IrError with one clear line ("step 'scrubbing' waits on 'confirm'"); nothing is changed.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from ir.domain.clocks import ClockName
from ir.domain.errors import InvalidInput, InvalidTransition, NotFound
from ir.domain.events import (
    ActionConfirmed,
    ActionSucceeded,
    ChecklistItemChecked,
    ClockRecorded,
    Event,
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
from ir.domain.incident import Incident, Mode, StepStatus, typed_fact
from ir.domain.levels import LEVEL_ORDER, ResponseLevel
from ir.domain.playbook import Playbook, Step

MAX_TEXT = 10_000
FUTURE_TOLERANCE = timedelta(minutes=5)


def _text(value: str | None, what: str, *, required: bool = False, limit: int = MAX_TEXT) -> str | None:
    if value is None or not value.strip():
        if required:
            raise InvalidInput(f"{what} is required", field=what)
        return None
    if len(value) > limit:
        raise InvalidInput(f"{what} is at most {limit:,} characters", field=what)
    if "\x00" in value:
        raise InvalidInput(f"{what} contains a NUL character", field=what)
    return value.strip()


def _open(inc: Incident) -> None:
    if inc.closed:
        raise InvalidTransition(f"incident {inc.id} is closed")


def _step(inc: Incident, step_id: str) -> Step:
    step = inc.playbook.steps.get(step_id)
    if step is None:
        close = difflib.get_close_matches(step_id, list(inc.playbook.steps), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise NotFound(f"no step '{step_id}' in playbook {inc.playbook.id}{hint}")
    return step


def _quote(ids: list[str]) -> str:
    return ", ".join(f"'{i}'" for i in ids)


def _not_applicable(inc: Incident, step: Step) -> InvalidTransition:
    if inc.level is None:
        return InvalidTransition(
            f"step '{step.id}' waits for a response level: incident {inc.id} is in triage (declare one with ir level)"
        )
    if not step.applies_to_level(inc.level):
        levels = "/".join(lv.value for lv in LEVEL_ORDER if step.applies_to_level(lv)) or "warning phases"
        return InvalidTransition(f"step '{step.id}' does not apply at level {inc.level.value} (only {levels})")
    return InvalidTransition(f"step '{step.id}' does not apply: its condition is false ({step.when})")


def _refuse_status(inc: Incident, step: Step, status: StepStatus, act: str) -> InvalidTransition:
    prog = inc.steps.get(step.id)
    if status is StepStatus.PENDING:
        return InvalidTransition(f"step '{step.id}' waits on {_quote(inc.waiting_on(step.id))}")
    if status is StepStatus.IN_PROGRESS:
        who = f" ({prog.assignee})" if prog and prog.assignee else ""
        return InvalidTransition(f"step '{step.id}' is already in progress{who}")
    if status is StepStatus.DONE:
        return InvalidTransition(f"step '{step.id}' is already done")
    if status is StepStatus.SKIPPED:
        return InvalidTransition(f"step '{step.id}' was skipped")
    if status is StepStatus.FAILED:
        return InvalidTransition(f"step '{step.id}' failed: retry it or skip it with a reason")
    if status is StepStatus.NOT_APPLICABLE:
        return _not_applicable(inc, step)
    return InvalidTransition(f"step '{step.id}' cannot {act} now ({status.value})")


# -- opening ----------------------------------------------------------------------------------------


def open_incident(
    *,
    playbook: Playbook,
    title: str,
    mode: Mode,
    facts: dict[str, FactValue],
    actor: str,
    now: datetime,
    detected_at: datetime | None = None,
    simulated_start: datetime | None = None,
    summary: str | None = None,
) -> list[Event]:
    clean_title = _text(title, "title", required=True, limit=200)
    assert clean_title is not None
    if detected_at is not None and detected_at > now + FUTURE_TOLERANCE:
        raise InvalidInput("detection cannot be in the future", field="detected_at")
    for name in facts:
        if name not in playbook.facts:
            raise InvalidInput(f"unknown fact '{name}'", field=name)
    return [
        IncidentOpened(
            at=now,
            actor=actor,
            playbook_id=playbook.id,
            playbook_hash=playbook.content_hash,
            title=clean_title,
            mode=mode.value,
            facts={k: v for k, v in facts.items() if v is not None},
            detected_at=detected_at,
            simulated_start=simulated_start,
            summary=_text(summary, "summary"),
        )
    ]


# -- facts, clocks, levels --------------------------------------------------------------------------


def set_facts(
    inc: Incident, facts: dict[str, FactValue], *, actor: str, now: datetime, reason: str | None
) -> list[Event]:
    _open(inc)
    if not facts:
        raise InvalidInput("no facts given (write name=value)")
    changed = {k: v for k, v in facts.items() if inc.facts.get(k) != typed_fact(inc.playbook, k, v)}
    if not changed:
        raise InvalidTransition("no change: the facts already hold these values")
    return [FactsSet(at=now, actor=actor, facts=changed, reason=_text(reason, "reason"))]


def record_clock(
    inc: Incident, clock: ClockName, instant: datetime, *, actor: str, now: datetime, reason: str | None
) -> list[Event]:
    _open(inc)
    if clock is ClockName.CLOSURE:
        raise InvalidInput("closure is recorded by closing the incident (ir close)", field="clock")
    if instant.tzinfo is None:
        raise InvalidInput("give the instant with its time zone, e.g. 2026-10-01T09:00+08:00", field="instant")
    if not 1970 <= instant.year <= 2999:
        raise InvalidInput(f"{clock.value}: {instant.year} is not a plausible year", field="instant")
    if clock is not ClockName.EXPECTED_IMPACT and instant > now + FUTURE_TOLERANCE:
        raise InvalidInput(f"{clock.value} cannot be in the future", field="instant")
    detection = inc.clock(ClockName.DETECTION)
    recovery = (ClockName.RESTORATION_DEGRADED, ClockName.RESTORATION_FULL, ClockName.MITIGATION)
    if clock in recovery and detection and instant < detection:
        raise InvalidInput(f"{clock.value} cannot precede detection ({detection.isoformat()})", field="instant")
    if clock is ClockName.DETECTION:
        later = [(c, r.instant) for c, r in inc.clocks.items() if c in recovery and r.instant < instant]
        if later:
            name, when = later[0]
            raise InvalidInput(f"detection cannot follow {name.value} ({when.isoformat()})", field="instant")
    previous = inc.clocks.get(clock)
    why = _text(reason, "reason")
    if previous is not None:
        if previous.instant == instant:
            raise InvalidTransition(f"{clock.value} is already recorded at that instant")
        if why is None:
            raise InvalidInput(
                f"{clock.value} is already recorded ({previous.instant.isoformat()}): a correction needs --reason",
                field="reason",
            )
    return [
        ClockRecorded(
            at=now,
            actor=actor,
            clock=clock.value,
            instant=instant,
            reason=why,
            correction=previous is not None,
        )
    ]


@dataclass(frozen=True, slots=True)
class LevelVerdict:
    level: ResponseLevel
    holds: bool | None  # None: unknown, facts missing
    missing: frozenset[str]
    criteria: str


@dataclass(frozen=True, slots=True)
class Classification:
    suggested: ResponseLevel | None
    verdicts: tuple[LevelVerdict, ...]
    missing: frozenset[str]


def classify(inc: Incident) -> Classification:
    """The most severe level whose criteria hold on the current facts; unknown criteria above it are named."""
    verdicts: list[LevelVerdict] = []
    for level in LEVEL_ORDER:
        spec = inc.playbook.levels[level]
        try:
            result = spec.criteria.evaluate(inc.facts)
            holds = result.value if isinstance(result.value, bool) else None
            missing = result.missing
        except Exception:
            holds, missing = None, frozenset()
        verdicts.append(LevelVerdict(level, holds, missing, spec.criteria.source))
    suggested = next((v.level for v in verdicts if v.holds is True), None)
    above = [v for v in verdicts if suggested is None or v.level.more_severe_than(suggested)]
    missing = frozenset().union(*(v.missing for v in above if v.holds is None)) if above else frozenset()
    return Classification(suggested, tuple(verdicts), missing)


def declare_level(inc: Incident, level: ResponseLevel, *, actor: str, now: datetime, reason: str | None) -> list[Event]:
    _open(inc)
    why = _text(reason, "reason")
    if inc.level is level:
        raise InvalidTransition(f"incident {inc.id} is already at level {level.value}")
    if inc.level is not None and why is None:
        direction = "escalation" if level.more_severe_than(inc.level) else "de-escalation"
        raise InvalidInput(
            f"a level change ({direction} {inc.level.value} -> {level.value}) needs --reason", field="reason"
        )
    return [
        LevelDeclared(
            at=now,
            actor=actor,
            level=level.value,
            previous=inc.level.value if inc.level else None,
            reason=why,
        )
    ]


# -- steps ------------------------------------------------------------------------------------------


def start_step(inc: Incident, step_id: str, *, actor: str, now: datetime, assignee: str | None = None) -> list[Event]:
    _open(inc)
    step = _step(inc, step_id)
    status = inc.step_status(step_id)
    if status is not StepStatus.READY:
        raise _refuse_status(inc, step, status, "start")
    return [StepStarted(at=now, actor=actor, step=step_id, assignee=assignee or actor)]


def remaining_approvals(inc: Incident, step: Step) -> list[str]:
    prog = inc.steps.get(step.id)
    given = Counter(a.role for a in prog.approvals) if prog else Counter()
    needed = Counter(step.approvals)
    return list((needed - given).elements())


def complete_step(inc: Incident, step_id: str, *, actor: str, now: datetime, note: str | None) -> list[Event]:
    _open(inc)
    step = _step(inc, step_id)
    status = inc.step_status(step_id)
    if status not in (StepStatus.READY, StepStatus.IN_PROGRESS):
        raise _refuse_status(inc, step, status, "be completed")
    waiting = remaining_approvals(inc, step)
    if waiting:
        raise InvalidTransition(f"step '{step_id}' waits for approval by {', '.join(waiting)}")
    prog = inc.steps.get(step_id)
    if step.evidence_required and not (prog and prog.evidence):
        raise InvalidTransition(f"step '{step_id}' requires evidence: attach a file (--evidence FILE)")
    if step.action is not None and not (prog and prog.action_status is not None):
        raise InvalidTransition(
            f"step '{step_id}' has an automated action that has not succeeded: retry the step or skip it with a reason"
        )
    return [StepCompleted(at=now, actor=actor, step=step_id, note=_text(note, "note"))]


def skip_step(inc: Incident, step_id: str, *, actor: str, now: datetime, reason: str | None) -> list[Event]:
    _open(inc)
    step = _step(inc, step_id)
    why = _text(reason, "reason")
    if why is None:
        raise InvalidInput(f"skipping step '{step_id}' needs a reason (--note)", field="reason")
    status = inc.step_status(step_id)
    if status in (StepStatus.DONE, StepStatus.SKIPPED, StepStatus.NOT_APPLICABLE):
        raise _refuse_status(inc, step, status, "be skipped")
    return [StepSkipped(at=now, actor=actor, step=step_id, reason=why)]


def fail_step(inc: Incident, step_id: str, *, actor: str, now: datetime, reason: str | None) -> list[Event]:
    _open(inc)
    step = _step(inc, step_id)
    why = _text(reason, "reason")
    if why is None:
        raise InvalidInput(f"failing step '{step_id}' needs a reason (--note)", field="reason")
    status = inc.step_status(step_id)
    if status is not StepStatus.IN_PROGRESS:
        if status is StepStatus.READY:
            raise InvalidTransition(f"step '{step_id}' has not started: only a step in progress can fail")
        raise _refuse_status(inc, step, status, "fail")
    return [StepFailed(at=now, actor=actor, step=step_id, reason=why)]


def retry_step(inc: Incident, step_id: str, *, actor: str, now: datetime, note: str | None) -> list[Event]:
    _open(inc)
    step = _step(inc, step_id)
    status = inc.step_status(step_id)
    if status is not StepStatus.FAILED:
        if status is StepStatus.NOT_APPLICABLE:
            raise _not_applicable(inc, step)
        raise InvalidTransition(f"step '{step_id}' has not failed ({status.value.replace('_', ' ')}): nothing to retry")
    return [StepRetried(at=now, actor=actor, step=step_id, note=_text(note, "note"))]


def approve_step(
    inc: Incident, step_id: str, *, role: str | None, actor: str, now: datetime, note: str | None
) -> list[Event]:
    _open(inc)
    step = _step(inc, step_id)
    if not step.approvals:
        raise InvalidTransition(f"step '{step_id}' needs no approval")
    status = inc.step_status(step_id)
    if status in (StepStatus.DONE, StepStatus.SKIPPED, StepStatus.NOT_APPLICABLE):
        raise _refuse_status(inc, step, status, "be approved")
    waiting = remaining_approvals(inc, step)
    if not waiting:
        raise InvalidTransition(f"step '{step_id}' has all its approvals")
    prog = inc.steps.get(step_id)
    if prog and any(a.actor == actor for a in prog.approvals):
        raise InvalidTransition(
            f"{actor} has already approved step '{step_id}': another person must give the next approval"
        )
    chosen = role or (waiting[0] if len(set(waiting)) == 1 else None)
    if chosen is None:
        raise InvalidInput(f"say which role you approve as (--as): {', '.join(sorted(set(waiting)))}", field="role")
    if chosen not in waiting:
        raise InvalidTransition(
            f"step '{step_id}' needs no approval from '{chosen}' (waiting for: {', '.join(waiting)})"
        )
    return [StepApproved(at=now, actor=actor, step=step_id, role=chosen, note=_text(note, "note"))]


def check_item(inc: Incident, step_id: str, item: int, *, checked: bool, actor: str, now: datetime) -> list[Event]:
    _open(inc)
    step = _step(inc, step_id)
    if not 1 <= item <= len(step.checklist):
        raise InvalidInput(
            f"step '{step_id}' has {len(step.checklist)} checklist item(s); no item {item}", field="item"
        )
    if inc.step_status(step_id) is StepStatus.NOT_APPLICABLE:
        raise _not_applicable(inc, step)
    prog = inc.steps.get(step_id)
    is_checked = prog is not None and (item - 1) in prog.checked
    if is_checked == checked:
        raise InvalidTransition(
            f"checklist item {item} of step '{step_id}' is already {'checked' if checked else 'unchecked'}"
        )
    return [ChecklistItemChecked(at=now, actor=actor, step=step_id, item=item - 1, checked=checked)]


def add_note(inc: Incident, text: str, *, step_id: str | None, actor: str, now: datetime) -> list[Event]:
    _open(inc)
    if step_id is not None:
        _step(inc, step_id)
    body = _text(text, "note", required=True)
    assert body is not None
    return [NoteAdded(at=now, actor=actor, text=body, step=step_id)]


def attach_evidence(
    inc: Incident,
    step_id: str,
    *,
    sha256: str,
    filename: str,
    size: int,
    media_type: str,
    actor: str,
    now: datetime,
    source: str = "upload",
) -> list[Event]:
    _open(inc)
    _step(inc, step_id)
    prog = inc.steps.get(step_id)
    if prog and any(e.sha256 == sha256 for e in prog.evidence):
        raise InvalidTransition(f"this file is already evidence of step '{step_id}'")
    return [
        EvidenceAttached(
            at=now,
            actor=actor,
            step=step_id,
            sha256=sha256,
            filename=filename[-255:] or "evidence",
            size=size,
            media_type=media_type,
            source=source,
        )
    ]


def confirm_action(inc: Incident, step_id: str, *, actor: str, now: datetime) -> list[Event]:
    _open(inc)
    step = _step(inc, step_id)
    if step.action is None or not step.action.confirm:
        raise InvalidTransition(f"step '{step_id}' has no automated action awaiting confirmation")
    status = inc.step_status(step_id)
    if status is not StepStatus.IN_PROGRESS:
        raise InvalidTransition(f"start step '{step_id}' before confirming its action")
    prog = inc.steps.get(step_id)
    if prog and prog.action_confirmed:
        raise InvalidTransition(f"the action of step '{step_id}' is already confirmed")
    return [ActionConfirmed(at=now, actor=actor, step=step_id)]


def record_action_result(
    inc: Incident,
    step_id: str,
    *,
    ok: bool,
    status: int | None,
    attempts: int,
    error: str | None,
    answer_sha256: str,
    answer_size: int,
    actor: str,
    now: datetime,
) -> list[Event]:
    """The answer of a step's automated action, kept as its evidence; a failure fails the step."""
    _step(inc, step_id)
    if inc.closed or inc.step_status(step_id) is not StepStatus.IN_PROGRESS:
        return []  # someone moved on meanwhile (skipped, closed): nothing to record against the step
    events: list[Event] = [
        EvidenceAttached(
            at=now,
            actor=actor,
            step=step_id,
            sha256=answer_sha256,
            filename=f"action-{step_id}-{attempts}.json",
            size=answer_size,
            media_type="application/json",
            source="action",
        )
    ]
    prog = inc.steps.get(step_id)
    if prog and any(e.sha256 == answer_sha256 for e in prog.evidence):
        events = []
    if ok and status is not None:
        events.append(ActionSucceeded(at=now, actor=actor, step=step_id, status=status, attempt=attempts))
    else:
        why = error or f"HTTP {status}"
        events.append(StepFailed(at=now, actor=actor, step=step_id, reason=f"automated action failed: {why}"))
    return events


def mark_notification_sent(
    inc: Incident, notification_id: str, *, actor: str, now: datetime, reference: str | None
) -> list[Event]:
    _open(inc)
    note = inc.playbook.notifications.get(notification_id)
    if note is None:
        close = difflib.get_close_matches(notification_id, list(inc.playbook.notifications), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise NotFound(f"no notification '{notification_id}' in playbook {inc.playbook.id}{hint}")
    if not inc.notification_active(note):
        raise InvalidTransition(f"notification '{notification_id}' does not apply to incident {inc.id} now")
    return [
        NotificationSent(at=now, actor=actor, notification=notification_id, reference=_text(reference, "reference"))
    ]


# -- recovery and closure ---------------------------------------------------------------------------


def restore(
    inc: Incident, *, degraded: bool, actor: str, now: datetime, at: datetime | None, reason: str | None
) -> list[Event]:
    clock = ClockName.RESTORATION_DEGRADED if degraded else ClockName.RESTORATION_FULL
    return record_clock(inc, clock, at or now, actor=actor, now=now, reason=reason)


def close_incident(inc: Incident, *, actor: str, now: datetime, reason: str | None) -> list[Event]:
    _open(inc)
    why = _text(reason, "reason")
    open_steps = [sid for sid, st in inc.statuses().items() if st.open]
    if open_steps and why is None:
        shown = _quote(open_steps[:5]) + (f" and {len(open_steps) - 5} more" if len(open_steps) > 5 else "")
        raise InvalidTransition(
            f"incident {inc.id} has open steps ({shown}): finish or skip them, or close with --reason"
        )
    if inc.level is not None and inc.restored_at is None and why is None:
        raise InvalidTransition(f"service restoration is not recorded (ir restore {inc.id}): or close with --reason")
    return [IncidentClosed(at=now, actor=actor, reason=why)]
