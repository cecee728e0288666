"""A live incident: the fold of its events over the playbook it was opened with.

`Incident.apply(event)` folds one event in place (it never fails for a stored event); the decisions that
produce events, and refuse invalid acts with a clear message, are in ir.domain.decisions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from ir.domain.clocks import ClockName
from ir.domain.durations import parse_duration
from ir.domain.emergency import APPLY as emergency_apply
from ir.domain.emergency import Emergency
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
from ir.domain.levels import ResponseLevel, WarningLevel
from ir.domain.obligations import APPLY as regulatory_apply
from ir.domain.obligations import Regulatory
from ir.domain.personal import Personal
from ir.domain.playbook import FactKind, Notification, Playbook, Restoration, Step
from ir.domain.regimes import Regime


class Mode(StrEnum):
    REAL = "real"
    DRILL = "drill"
    TEST = "test"


class StepStatus(StrEnum):
    PENDING = "pending"
    READY = "ready"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    NOT_APPLICABLE = "not_applicable"

    @property
    def resolved(self) -> bool:
        """Done, skipped or not applicable: a dependant may proceed."""
        return self in _RESOLVED

    @property
    def open(self) -> bool:
        return self in _OPEN


_RESOLVED = frozenset({StepStatus.DONE, StepStatus.SKIPPED, StepStatus.NOT_APPLICABLE})
_OPEN = frozenset({StepStatus.PENDING, StepStatus.READY, StepStatus.IN_PROGRESS, StepStatus.FAILED})


@dataclass(slots=True)
class ClockReading:
    instant: datetime
    recorded_at: datetime
    actor: str
    reason: str | None = None
    corrections: int = 0


@dataclass(slots=True)
class Approval:
    role: str
    actor: str
    at: datetime
    note: str | None = None


@dataclass(slots=True)
class Evidence:
    sha256: str
    filename: str
    size: int
    media_type: str
    at: datetime
    actor: str
    source: str = "upload"


@dataclass(slots=True)
class Note:
    text: str | Personal
    at: datetime
    actor: str
    step: str | None = None


@dataclass(slots=True)
class StepProgress:
    """What has happened to one step; its status also depends on level, facts and dependencies."""

    status: StepStatus = StepStatus.PENDING  # PENDING, IN_PROGRESS, DONE, SKIPPED or FAILED
    assignee: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    reason: str | None = None
    note: str | None = None
    attempts: int = 0
    approvals: list[Approval] = field(default_factory=list)
    checked: set[int] = field(default_factory=set)
    evidence: list[Evidence] = field(default_factory=list)
    action_confirmed: bool = False
    action_status: int | None = None


@dataclass(slots=True)
class Incident:
    id: int
    playbook: Playbook
    title: str = ""
    mode: Mode = Mode.REAL
    version: int = 0
    opened_at: datetime | None = None
    opened_by: str = ""
    simulated_start: datetime | None = None
    real_start: datetime | None = None
    speed: float = 1.0
    level: ResponseLevel | None = None
    level_history: list[tuple[datetime, ResponseLevel, str | None, str]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    clocks: dict[ClockName, ClockReading] = field(default_factory=dict)
    steps: dict[str, StepProgress] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    notifications_sent: dict[str, list[datetime]] = field(default_factory=dict)
    closed: bool = False
    updated_at: datetime | None = None
    emergency: Emergency = field(default_factory=Emergency)
    regulatory: Regulatory = field(default_factory=Regulatory)
    # the regimes its playbook names, attached when it is loaded (data, not events)
    regimes: Mapping[str, Regime] = field(default_factory=dict, repr=False, compare=False)
    # how a joined playbook is loaded by its content hash while folding (set by the repository)
    resolve_playbook: Callable[[str], Playbook] | None = field(default=None, repr=False, compare=False)

    # -- folding ---------------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        handler = _APPLY[type(event)]
        handler(self, event)
        self.version += 1
        self.updated_at = event.at

    def set_clock(self, name: ClockName, instant: datetime, event: Event, reason: str | None) -> None:
        previous = self.clocks.get(name)
        corrections = previous.corrections + 1 if previous is not None else 0
        self.clocks[name] = ClockReading(instant, event.at, event.actor, reason, corrections)

    @property
    def warning(self) -> WarningLevel | None:
        return self.emergency.warning

    def progress(self, step_id: str) -> StepProgress:
        found = self.steps.get(step_id)
        if found is None:
            found = self.steps[step_id] = StepProgress()
        return found

    # -- derived views ----------------------------------------------------------------------------

    def clock(self, name: ClockName) -> datetime | None:
        reading = self.clocks.get(name)
        return reading.instant if reading is not None else None

    def is_active(self, step: Step) -> bool:
        """Whether the step is part of the incident now: its level or warning level applies and its condition
        does not fail."""
        if not (step.applies_to_level(self.level) or step.applies_to_warning(self.emergency.warning)):
            return False
        if step.when is None:
            return True
        try:
            result = step.when.evaluate(self.facts)
        except Exception:  # a value of the wrong type: treat as unknown, the step stays in
            return True
        return result.value is not False  # unknown: keep the step (a condition must be known to drop it)

    def resolved(self, step_id: str) -> bool:
        """Done, skipped or not applicable: what a dependant waits for (no recursion needed)."""
        prog = self.steps.get(step_id)
        if prog is not None and prog.status in (StepStatus.DONE, StepStatus.SKIPPED):
            return True
        return not self.is_active(self.playbook.steps[step_id])

    def step_status(self, step_id: str) -> StepStatus:
        step = self.playbook.steps[step_id]
        prog = self.steps.get(step_id)
        explicit = prog.status if prog is not None else StepStatus.PENDING
        if explicit in (StepStatus.DONE, StepStatus.SKIPPED):
            return explicit
        if not self.is_active(step):
            return StepStatus.NOT_APPLICABLE
        if explicit is not StepStatus.PENDING:
            return explicit
        if all(self.resolved(dep) for dep in step.depends_on):
            return StepStatus.READY
        return StepStatus.PENDING

    def statuses(self) -> dict[str, StepStatus]:
        """Every step's status, in dependency order."""
        return {step.id: self.step_status(step.id) for step in self.playbook.steps_in_order()}

    def waiting_on(self, step_id: str) -> list[str]:
        return [d for d in self.playbook.steps[step_id].depends_on if not self.resolved(d)]

    def notification_active(self, note: Notification) -> bool:
        if not (note.applies_to_level(self.level) or note.applies_to_warning(self.emergency.warning)):
            return False
        if note.when is None:
            return True
        try:
            return note.when.evaluate(self.facts).value is not False
        except Exception:
            return True

    @property
    def restored_at(self) -> datetime | None:
        """Service resumed (degraded or full), whichever came first."""
        times = [t for t in (self.clock(ClockName.RESTORATION_DEGRADED), self.clock(ClockName.RESTORATION_FULL)) if t]
        return min(times) if times else None

    def now(self, real_now: datetime) -> datetime:
        """The incident's own time: real time, or its simulated clock (a drill faster than real time)."""
        if self.simulated_start is None or self.real_start is None:
            return real_now
        return self.simulated_start + (real_now - self.real_start) * self.speed

    @property
    def onset(self) -> datetime | None:
        return self.clock(ClockName.DETECTION)

    @property
    def recovery_start(self) -> datetime | None:
        """Where RTO and MTPD count from: detection; but for an incident opened under a warning, before any
        impact (a typhoon 72 h out), the declaration of the response at impact."""
        history = self.emergency.warning_history
        declared = self.clock(ClockName.DECLARATION)
        opened_warned = bool(history) and (declared is None or history[0][0] < declared)
        if opened_warned:
            return declared
        return self.onset


# -- the fold, one function per event -------------------------------------------------------------


def typed_fact(playbook: Playbook, name: str, value: FactValue) -> Any:
    """A stored fact value in the type its expressions use (durations as timedelta)."""
    fact = playbook.facts.get(name)
    if value is None or fact is None:
        return value
    if fact.kind is FactKind.DURATION and isinstance(value, str):
        return timedelta(seconds=parse_duration(value).seconds)
    return value


def _set_clock(inc: Incident, name: ClockName, instant: datetime, event: Event, reason: str | None) -> None:
    inc.set_clock(name, instant, event, reason)


def _opened(inc: Incident, e: IncidentOpened) -> None:
    inc.title = e.title
    inc.mode = Mode(e.mode)
    inc.opened_at = e.at
    inc.opened_by = e.actor
    inc.emergency.commander = e.commander or e.actor
    inc.simulated_start = e.simulated_start
    inc.real_start = e.real_start
    inc.speed = e.speed
    for name, value in e.facts.items():
        inc.facts[name] = typed_fact(inc.playbook, name, value)
    _set_clock(inc, ClockName.DETECTION, e.detected_at or e.at, e, None)


def _facts(inc: Incident, e: FactsSet) -> None:
    for name, value in e.facts.items():
        if value is None:
            inc.facts.pop(name, None)
        else:
            inc.facts[name] = typed_fact(inc.playbook, name, value)


def _clock(inc: Incident, e: ClockRecorded) -> None:
    _set_clock(inc, ClockName(e.clock), e.instant, e, e.reason)


def _level(inc: Incident, e: LevelDeclared) -> None:
    level = ResponseLevel(e.level)
    inc.level = level
    inc.level_history.append((e.at, level, e.reason, e.actor))
    for name in (ClockName.DECLARATION, ClockName.CLASSIFICATION):
        if name not in inc.clocks:
            _set_clock(inc, name, e.at, e, None)


def _started(inc: Incident, e: StepStarted) -> None:
    p = inc.progress(e.step)
    p.status = StepStatus.IN_PROGRESS
    p.assignee = e.assignee
    p.started_at = e.at
    p.attempts += 1


def _completed(inc: Incident, e: StepCompleted) -> None:
    p = inc.progress(e.step)
    p.status = StepStatus.DONE
    p.finished_at = e.at
    p.note = e.note
    if p.started_at is None:
        p.started_at = e.at
    restores = inc.playbook.steps[e.step].restores
    if restores is Restoration.FULL and ClockName.RESTORATION_FULL not in inc.clocks:
        _set_clock(inc, ClockName.RESTORATION_FULL, e.at, e, None)
    if restores is Restoration.DEGRADED and ClockName.RESTORATION_DEGRADED not in inc.clocks:
        _set_clock(inc, ClockName.RESTORATION_DEGRADED, e.at, e, None)


def _skipped(inc: Incident, e: StepSkipped) -> None:
    p = inc.progress(e.step)
    p.status = StepStatus.SKIPPED
    p.finished_at = e.at
    p.reason = e.reason


def _failed(inc: Incident, e: StepFailed) -> None:
    p = inc.progress(e.step)
    p.status = StepStatus.FAILED
    p.reason = e.reason


def _retried(inc: Incident, e: StepRetried) -> None:
    p = inc.progress(e.step)
    p.status = StepStatus.IN_PROGRESS
    p.reason = None
    p.attempts += 1
    p.action_status = None


def _approved(inc: Incident, e: StepApproved) -> None:
    inc.progress(e.step).approvals.append(Approval(e.role, e.actor, e.at, e.note))


def _checked(inc: Incident, e: ChecklistItemChecked) -> None:
    p = inc.progress(e.step)
    if e.checked:
        p.checked.add(e.item)
    else:
        p.checked.discard(e.item)


def _note(inc: Incident, e: NoteAdded) -> None:
    inc.notes.append(Note(e.text, e.at, e.actor, e.step))


def _evidence(inc: Incident, e: EvidenceAttached) -> None:
    inc.progress(e.step).evidence.append(Evidence(e.sha256, e.filename, e.size, e.media_type, e.at, e.actor, e.source))


def _confirmed(inc: Incident, e: ActionConfirmed) -> None:
    inc.progress(e.step).action_confirmed = True


def _action_ok(inc: Incident, e: ActionSucceeded) -> None:
    inc.progress(e.step).action_status = e.status


def _sent(inc: Incident, e: NotificationSent) -> None:
    inc.notifications_sent.setdefault(e.notification, []).append(e.at)


def _closed(inc: Incident, e: IncidentClosed) -> None:
    inc.closed = True
    _set_clock(inc, ClockName.CLOSURE, e.at, e, e.reason)


_APPLY: dict[type[Event], Any] = {
    IncidentOpened: _opened,
    FactsSet: _facts,
    ClockRecorded: _clock,
    LevelDeclared: _level,
    StepStarted: _started,
    StepCompleted: _completed,
    StepSkipped: _skipped,
    StepFailed: _failed,
    StepRetried: _retried,
    StepApproved: _approved,
    ChecklistItemChecked: _checked,
    NoteAdded: _note,
    EvidenceAttached: _evidence,
    ActionConfirmed: _confirmed,
    ActionSucceeded: _action_ok,
    NotificationSent: _sent,
    IncidentClosed: _closed,
    **emergency_apply,
    **regulatory_apply,
}


def fold(
    incident_id: int, playbook: Playbook, events: list[Event], resolve: Callable[[str], Playbook] | None = None
) -> Incident:
    incident = Incident(id=incident_id, playbook=playbook, resolve_playbook=resolve)
    for event in events:
        incident.apply(event)
    return incident
