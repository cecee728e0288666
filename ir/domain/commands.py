"""Commands: what a person (or a machine) asks ir to do, the same from the CLI, the API and the console."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: `local:<os user>` at the command line, a user or a token's user over HTTP."""

    id: str
    roles: frozenset[str] = frozenset({"admin"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    actor: Actor


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentCommand(Command):
    incident_id: int
    expected_version: int | None = None  # optimistic concurrency: refuse if the incident moved on


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenIncident(Command):
    playbook: str  # an id from the library, or a path to a file
    title: str
    mode: str = "real"
    facts: dict[str, object] = field(default_factory=dict)  # text as typed, or JSON values
    level: str | None = None
    detected_at: datetime | None = None
    simulate_from: datetime | None = None  # a drill on simulated time starting at this instant
    speed: float = 1.0
    summary: str | None = None
    warning: str | None = None  # open in a warning phase (预警) …
    expected_impact: datetime | None = None  # … before this instant (a typhoon's landfall)
    commander: str | None = None  # who commands it (default: who opens it)


@dataclass(frozen=True, slots=True, kw_only=True)
class SetFacts(IncidentCommand):
    facts: dict[str, object]
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordClock(IncidentCommand):
    clock: str
    instant: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeclareLevel(IncidentCommand):
    level: str
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StepCommand(IncidentCommand):
    step_id: str
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StartStep(StepCommand):
    assignee: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CompleteStep(StepCommand):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class SkipStep(StepCommand):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class FailStep(StepCommand):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryStep(StepCommand):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ApproveStep(StepCommand):
    role: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckItem(StepCommand):
    item: int
    checked: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfirmAction(StepCommand):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class AttachEvidence(StepCommand):
    filename: str
    content: bytes = field(repr=False)
    media_type: str = "application/octet-stream"


@dataclass(frozen=True, slots=True, kw_only=True)
class AddNote(IncidentCommand):
    text: str
    step_id: str | None = None
    about: str | None = None  # the person it is about: the note is personal data, sealed under their key


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkNotificationSent(IncidentCommand):
    notification_id: str
    reference: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Restore(IncidentCommand):
    degraded: bool = False
    at: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseIncident(IncidentCommand):
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordActionResult(StepCommand):
    """A machine act: the answer of a step's automated HTTP action."""

    ok: bool
    status: int | None
    attempts: int
    error: str | None
    answer: bytes = field(repr=False)


# -- running a real emergency ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class IssueWarning(IncidentCommand):
    level: str
    reason: str | None = None
    expected_impact: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LiftWarning(IncidentCommand):
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EndResponse(IncidentCommand):
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelIncident(IncidentCommand):
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReopenIncident(IncidentCommand):
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AssignRole(IncidentCommand):
    role: str
    user: str
    shift_start: datetime | None = None
    shift_end: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UnassignRole(IncidentCommand):
    role: str
    user: str
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HandOver(IncidentCommand):
    to: str
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AddLogEntry(IncidentCommand):
    category: str
    text: str
    source: str | None = None
    about: str | None = None  # the person it is about (personal data)


@dataclass(frozen=True, slots=True, kw_only=True)
class DraftSitrep(IncidentCommand):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class EditSitrep(IncidentCommand):
    number: int
    text_zh: str
    text_en: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseSitrep(IncidentCommand):
    number: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestResource(IncidentCommand):
    resource: str
    quantity: int | None = None  # default: what the step requests
    destination: str
    needed_by: datetime | None = None
    step_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocateResource(IncidentCommand):
    request: str
    units: list[str] = field(default_factory=list)  # empty: pick available units of the kind


@dataclass(frozen=True, slots=True, kw_only=True)
class MoveResource(IncidentCommand):
    request: str
    stage: str  # dispatched | arrived | returned
    units: list[str] = field(default_factory=list)  # empty: every unit of the request still out


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelResourceRequest(IncidentCommand):
    request: str
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SetImpact(IncidentCommand):
    services: list[str]
    areas: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkIncidents(IncidentCommand):
    child: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UnlinkIncidents(IncidentCommand):
    child: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AddPlaybook(IncidentCommand):
    playbook: str
    reason: str | None = None
