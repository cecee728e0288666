"""What happened to an incident: the acts of people, in the past tense, and their JSON form.

An incident's state is the fold of these events (ir.domain.incident). Each event records the instant it
was recorded (`at`, from the incident's clock) and who acted (`actor`). Payloads are plain JSON values so
the stored form is stable; instants are ISO 8601 UTC text.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, ClassVar

from ir.domain.personal import Personal, from_json, to_json

FactValue = bool | int | float | str | Personal | None  # durations travel as canonical text ("1h30m")


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    kind: ClassVar[str] = ""
    at: datetime
    actor: str


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentOpened(Event):
    kind: ClassVar[str] = "incident_opened"
    playbook_id: str
    playbook_hash: str
    title: str
    mode: str  # real | drill | test
    facts: dict[str, FactValue] = field(default_factory=dict)
    detected_at: datetime | None = None
    commander: str | None = None  # who commands it (default: who opened it)
    simulated_start: datetime | None = None  # set when the incident runs on a simulated clock …
    real_start: datetime | None = None  # … the real instant it began at …
    speed: float = 1.0  # … and how much faster than real time it runs
    summary: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FactsSet(Event):
    kind: ClassVar[str] = "facts_set"
    facts: dict[str, FactValue]
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClockRecorded(Event):
    kind: ClassVar[str] = "clock_recorded"
    clock: str
    instant: datetime
    reason: str | None = None
    correction: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LevelDeclared(Event):
    kind: ClassVar[str] = "level_declared"
    level: str
    previous: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StepStarted(Event):
    kind: ClassVar[str] = "step_started"
    step: str
    assignee: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StepCompleted(Event):
    kind: ClassVar[str] = "step_completed"
    step: str
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StepSkipped(Event):
    kind: ClassVar[str] = "step_skipped"
    step: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StepFailed(Event):
    kind: ClassVar[str] = "step_failed"
    step: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StepRetried(Event):
    kind: ClassVar[str] = "step_retried"
    step: str
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StepApproved(Event):
    kind: ClassVar[str] = "step_approved"
    step: str
    role: str
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChecklistItemChecked(Event):
    kind: ClassVar[str] = "checklist_item_checked"
    step: str
    item: int
    checked: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class NoteAdded(Event):
    kind: ClassVar[str] = "note_added"
    text: str | Personal
    step: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EvidenceAttached(Event):
    kind: ClassVar[str] = "evidence_attached"
    step: str
    sha256: str
    filename: str
    size: int
    media_type: str
    source: str = "upload"  # upload | action


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionConfirmed(Event):
    kind: ClassVar[str] = "action_confirmed"
    step: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionSucceeded(Event):
    kind: ClassVar[str] = "action_succeeded"
    step: str
    status: int
    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NotificationSent(Event):
    kind: ClassVar[str] = "notification_sent"
    notification: str
    reference: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentClosed(Event):
    kind: ClassVar[str] = "incident_closed"
    reason: str | None = None


# -- running a real emergency: warnings, people, resources, the log, situation reports, shape ---------


@dataclass(frozen=True, slots=True, kw_only=True)
class WarningIssued(Event):
    """A warning issued, raised or lowered (预警发布/调整)."""

    kind: ClassVar[str] = "warning_issued"
    level: str
    previous: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WarningLifted(Event):
    kind: ClassVar[str] = "warning_lifted"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseEnded(Event):
    """响应结束: the emergency response ends (before closure)."""

    kind: ClassVar[str] = "response_ended"
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentCancelled(Event):
    """A false alarm."""

    kind: ClassVar[str] = "incident_cancelled"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentReopened(Event):
    kind: ClassVar[str] = "incident_reopened"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RoleAssigned(Event):
    kind: ClassVar[str] = "role_assigned"
    role: str
    user: str
    shift_start: datetime | None = None
    shift_end: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RoleUnassigned(Event):
    kind: ClassVar[str] = "role_unassigned"
    role: str
    user: str
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandHandedOver(Event):
    kind: ClassVar[str] = "command_handed_over"
    previous: str
    to: str
    note: str | None
    situation: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class LogEntryAdded(Event):
    """The incident log: decisions, observations, messages received (apart from step notes)."""

    kind: ClassVar[str] = "log_entry_added"
    category: str  # decision | observation | message
    text: str | Personal
    source: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SitrepDrafted(Event):
    kind: ClassVar[str] = "sitrep_drafted"
    number: int
    facts: dict[str, Any]  # the incident's state it was drafted from
    text: dict[str, str]  # {"zh-CN": …, "en": …}


@dataclass(frozen=True, slots=True, kw_only=True)
class SitrepEdited(Event):
    kind: ClassVar[str] = "sitrep_edited"
    number: int
    text: dict[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class SitrepReleased(Event):
    kind: ClassVar[str] = "sitrep_released"
    number: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceRequested(Event):
    kind: ClassVar[str] = "resource_requested"
    request: str
    resource: str  # the resource kind
    quantity: int
    destination: str
    needed_by: datetime | None = None
    step: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceAllocated(Event):
    kind: ClassVar[str] = "resource_allocated"
    request: str
    units: dict[str, int]  # unit id -> capacity it brings


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceMoved(Event):
    """Units of a request dispatched, arrived or returned."""

    kind: ClassVar[str] = "resource_moved"
    request: str
    units: list[str]
    stage: str  # dispatched | arrived | returned


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceRequestCancelled(Event):
    kind: ClassVar[str] = "resource_request_cancelled"
    request: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ImpactSet(Event):
    """Affected services (from the catalogue) and areas."""

    kind: ClassVar[str] = "impact_set"
    services: list[str]
    areas: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentLinked(Event):
    kind: ClassVar[str] = "incident_linked"
    other: int
    relation: str  # child | parent


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentUnlinked(Event):
    kind: ClassVar[str] = "incident_unlinked"
    other: int
    relation: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybookAdded(Event):
    """A second playbook joins a running incident (an outage found to be an attack)."""

    kind: ClassVar[str] = "playbook_added"
    playbook_id: str
    playbook_hash: str
    reason: str


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        IncidentOpened,
        FactsSet,
        ClockRecorded,
        LevelDeclared,
        StepStarted,
        StepCompleted,
        StepSkipped,
        StepFailed,
        StepRetried,
        StepApproved,
        ChecklistItemChecked,
        NoteAdded,
        EvidenceAttached,
        ActionConfirmed,
        ActionSucceeded,
        NotificationSent,
        IncidentClosed,
        WarningIssued,
        WarningLifted,
        ResponseEnded,
        IncidentCancelled,
        IncidentReopened,
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
        IncidentUnlinked,
        PlaybookAdded,
    )
}

_DATETIME_FIELDS: dict[type[Event], frozenset[str]] = {}
_PERSONAL_FIELDS = frozenset({"facts", "text"})  # where personal data may sit


def _datetime_fields(cls: type[Event]) -> frozenset[str]:
    found = _DATETIME_FIELDS.get(cls)
    if found is None:
        found = frozenset(f.name for f in fields(cls) if "datetime" in str(f.type))
        _DATETIME_FIELDS[cls] = found
    return found


def event_to_dict(event: Event) -> dict[str, Any]:
    """The stored payload of an event (without its kind, which is stored beside it)."""
    out: dict[str, Any] = {}
    dt_fields = _datetime_fields(type(event))
    for name in event.__slots__:
        value = getattr(event, name)
        if name in dt_fields and value is not None:
            value = value.isoformat()
        elif name in _PERSONAL_FIELDS:
            value = to_json(value)
        out[name] = value
    out["at"] = event.at.isoformat()
    out["actor"] = event.actor
    return out


def event_from_dict(kind: str, payload: dict[str, Any]) -> Event:
    cls = EVENT_TYPES[kind]
    args = dict(payload)
    for name in _datetime_fields(cls):
        value = args.get(name)
        if isinstance(value, str):
            args[name] = datetime.fromisoformat(value)
    for name in _PERSONAL_FIELDS:
        if name in args:
            args[name] = from_json(args[name])
    return cls(**args)


# -- regulators --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportabilityJudged(Event):
    """Where reportability is a judgement: whether, and from when, the incident must be reported."""

    kind: ClassVar[str] = "reportability_judged"
    regime: str
    reportable: bool
    instant: datetime
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportSubmitted(Event):
    """A report filed with a regulator: who, when, the exact document (by hash), its reference."""

    kind: ClassVar[str] = "report_submitted"
    regime: str
    obligation: str
    reference: str
    document_sha256: str
    document_name: str
    late_reason: str | None = None
    partial: bool = False


EVENT_TYPES.update({ReportabilityJudged.kind: ReportabilityJudged, ReportSubmitted.kind: ReportSubmitted})
