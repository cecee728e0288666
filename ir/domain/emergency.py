"""What a real emergency adds to an incident: warnings, people on duty, resources in the field, the
incident log, situation reports, affected services and areas, linked incidents, joined playbooks.

The state parts and how each event folds into them; the decisions are in ir.domain.emergency_decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ir.domain.clocks import ClockName
from ir.domain.events import (
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
)
from ir.domain.levels import WarningLevel
from ir.domain.personal import Personal
from ir.domain.playbook import Due, Notification, Playbook, ResourceRequest, Step

if TYPE_CHECKING:
    from ir.domain.incident import Incident


@dataclass(slots=True)
class Assignment:
    role: str
    user: str
    since: datetime
    by: str
    shift_start: datetime | None = None
    shift_end: datetime | None = None
    ended: datetime | None = None

    def on_duty(self, at: datetime) -> bool:
        if self.ended is not None and self.ended <= at:
            return False
        if self.shift_start is not None and at < self.shift_start:
            return False
        return not (self.shift_end is not None and at >= self.shift_end)


@dataclass(slots=True)
class Handover:
    at: datetime
    previous: str
    to: str
    note: str | None
    situation: dict[str, Any]


@dataclass(slots=True)
class LogEntry:
    category: str
    text: str | Personal
    at: datetime
    actor: str
    source: str | None = None


@dataclass(slots=True)
class Sitrep:
    number: int
    drafted_at: datetime
    drafted_by: str
    facts: dict[str, Any]
    text: dict[str, str]
    released_at: datetime | None = None
    edits: int = 0


@dataclass(slots=True)
class UnitMovement:
    capacity: int
    allocated_at: datetime
    dispatched_at: datetime | None = None
    arrived_at: datetime | None = None
    returned_at: datetime | None = None

    @property
    def stage(self) -> str:
        if self.returned_at:
            return "returned"
        if self.arrived_at:
            return "arrived"
        if self.dispatched_at:
            return "dispatched"
        return "allocated"


@dataclass(slots=True)
class RequestState:
    id: str
    resource: str
    quantity: int
    destination: str
    requested_at: datetime
    requested_by: str
    needed_by: datetime | None = None
    step: str | None = None
    units: dict[str, UnitMovement] = field(default_factory=dict)
    cancelled: str | None = None

    @property
    def committed(self) -> int:
        """Capacity allocated and not yet returned."""
        return sum(u.capacity for u in self.units.values() if u.returned_at is None)

    @property
    def allocated(self) -> int:
        return sum(u.capacity for u in self.units.values())

    @property
    def shortfall(self) -> int:
        if self.cancelled:
            return 0
        return max(0, self.quantity - self.allocated)

    @property
    def open(self) -> bool:
        return self.cancelled is None and (
            self.shortfall > 0 or any(u.returned_at is None for u in self.units.values())
        )


@dataclass(slots=True)
class Emergency:
    """The parts of an incident that a real emergency adds."""

    warning: WarningLevel | None = None
    warning_history: list[tuple[datetime, WarningLevel | None, str | None, str]] = field(default_factory=list)
    commander: str = ""
    handovers: list[Handover] = field(default_factory=list)
    assignments: list[Assignment] = field(default_factory=list)
    log: list[LogEntry] = field(default_factory=list)
    sitreps: list[Sitrep] = field(default_factory=list)
    requests: dict[str, RequestState] = field(default_factory=dict)
    services: list[str] = field(default_factory=list)
    areas: list[str] = field(default_factory=list)
    parent: int | None = None
    children: list[int] = field(default_factory=list)
    joined: list[tuple[str, str]] = field(default_factory=list)  # (playbook id, content hash)
    cancelled: str | None = None

    def on_duty(self, role: str, at: datetime) -> list[str]:
        return [a.user for a in self.assignments if a.role == role and a.on_duty(at)]

    def roles_of(self, user: str, at: datetime) -> set[str]:
        return {a.role for a in self.assignments if a.user == user and a.on_duty(at)}


# -- playbooks joined to a running incident -----------------------------------------------------------


def joined_step_id(playbook_id: str, step_id: str) -> str:
    return f"{playbook_id}.{step_id}"


def merge_playbooks(primary: Playbook, extra: Playbook) -> Playbook:
    """The primary playbook with the extra one's steps, notifications, roles, facts and resources joined.

    Step and notification ids of the extra playbook are prefixed with its id and a dot (ids cannot
    contain dots, so nothing collides); roles, facts and resources with the same id are shared.
    """
    prefix = extra.id

    def due(d: Due | None) -> Due | None:
        if d is None or d.anchor_step is None:
            return d
        return replace(d, anchor_step=joined_step_id(prefix, d.anchor_step), source="")

    steps: dict[str, Step] = dict(primary.steps)
    for s in extra.steps.values():
        sid = joined_step_id(prefix, s.id)
        steps[sid] = replace(
            s,
            id=sid,
            depends_on=tuple(joined_step_id(prefix, d) for d in s.depends_on),
            due=due(s.due),
            requests=tuple(ResourceRequest(r.kind, r.quantity, due(r.needed_by)) for r in s.requests),
        )
    notifications: dict[str, Notification] = dict(primary.notifications)
    for n in extra.notifications.values():
        nid = joined_step_id(prefix, n.id)
        notifications[nid] = replace(n, id=nid, due={k: d for k, d in ((k, due(v)) for k, v in n.due.items()) if d})
    return replace(
        primary,
        roles={**extra.roles, **primary.roles},
        facts={**extra.facts, **primary.facts},
        warnings={**extra.warnings, **primary.warnings},
        resources={**extra.resources, **primary.resources},
        steps=steps,
        notifications=notifications,
        regimes=tuple(dict.fromkeys((*primary.regimes, *extra.regimes))),
    )


# -- the fold ----------------------------------------------------------------------------------------


def _warning(inc: Incident, e: WarningIssued) -> None:
    inc.emergency.warning = WarningLevel(e.level)
    inc.emergency.warning_history.append((e.at, WarningLevel(e.level), e.reason, e.actor))


def _lifted(inc: Incident, e: WarningLifted) -> None:
    inc.emergency.warning = None
    inc.emergency.warning_history.append((e.at, None, e.reason, e.actor))


def _response_ended(inc: Incident, e: ResponseEnded) -> None:
    inc.set_clock(ClockName.RESPONSE_END, e.at, e, e.reason)


def _cancelled(inc: Incident, e: IncidentCancelled) -> None:
    inc.emergency.cancelled = e.reason
    inc.closed = True
    inc.set_clock(ClockName.CLOSURE, e.at, e, e.reason)


def _reopened(inc: Incident, e: IncidentReopened) -> None:
    inc.emergency.cancelled = None
    inc.closed = False
    inc.clocks.pop(ClockName.CLOSURE, None)


def _assigned(inc: Incident, e: RoleAssigned) -> None:
    inc.emergency.assignments.append(Assignment(e.role, e.user, e.at, e.actor, e.shift_start, e.shift_end))


def _unassigned(inc: Incident, e: RoleUnassigned) -> None:
    for a in inc.emergency.assignments:
        if a.role == e.role and a.user == e.user and a.ended is None:
            a.ended = e.at


def _handover(inc: Incident, e: CommandHandedOver) -> None:
    inc.emergency.handovers.append(Handover(e.at, e.previous, e.to, e.note, e.situation))
    inc.emergency.commander = e.to


def _log(inc: Incident, e: LogEntryAdded) -> None:
    inc.emergency.log.append(LogEntry(e.category, e.text, e.at, e.actor, e.source))


def _sitrep(inc: Incident, e: SitrepDrafted) -> None:
    inc.emergency.sitreps.append(Sitrep(e.number, e.at, e.actor, e.facts, dict(e.text)))


def _sitrep_edited(inc: Incident, e: SitrepEdited) -> None:
    report = inc.emergency.sitreps[e.number - 1]
    report.text = dict(e.text)
    report.edits += 1


def _sitrep_released(inc: Incident, e: SitrepReleased) -> None:
    inc.emergency.sitreps[e.number - 1].released_at = e.at


def _requested(inc: Incident, e: ResourceRequested) -> None:
    inc.emergency.requests[e.request] = RequestState(
        e.request, e.resource, e.quantity, e.destination, e.at, e.actor, e.needed_by, e.step
    )


def _allocated(inc: Incident, e: ResourceAllocated) -> None:
    request = inc.emergency.requests[e.request]
    for unit, capacity in e.units.items():
        request.units[unit] = UnitMovement(capacity, e.at)


def _moved(inc: Incident, e: ResourceMoved) -> None:
    request = inc.emergency.requests[e.request]
    for unit in e.units:
        movement = request.units[unit]
        if e.stage == "dispatched":
            movement.dispatched_at = e.at
        elif e.stage == "arrived":
            movement.arrived_at = e.at
        else:
            movement.returned_at = e.at


def _request_cancelled(inc: Incident, e: ResourceRequestCancelled) -> None:
    inc.emergency.requests[e.request].cancelled = e.reason


def _impact(inc: Incident, e: ImpactSet) -> None:
    inc.emergency.services = list(e.services)
    inc.emergency.areas = list(e.areas)


def _linked(inc: Incident, e: IncidentLinked) -> None:
    if e.relation == "child":
        if e.other not in inc.emergency.children:
            inc.emergency.children.append(e.other)
    else:
        inc.emergency.parent = e.other


def _unlinked(inc: Incident, e: IncidentUnlinked) -> None:
    if e.relation == "child":
        inc.emergency.children = [c for c in inc.emergency.children if c != e.other]
    elif inc.emergency.parent == e.other:
        inc.emergency.parent = None


def _joined(inc: Incident, e: PlaybookAdded) -> None:
    inc.emergency.joined.append((e.playbook_id, e.playbook_hash))
    if inc.resolve_playbook is None:
        raise LookupError("a joined playbook cannot be folded without a way to load it")
    inc.playbook = merge_playbooks(inc.playbook, inc.resolve_playbook(e.playbook_hash))


APPLY: dict[type[Event], Callable[[Any, Any], None]] = {
    WarningIssued: _warning,
    WarningLifted: _lifted,
    ResponseEnded: _response_ended,
    IncidentCancelled: _cancelled,
    IncidentReopened: _reopened,
    RoleAssigned: _assigned,
    RoleUnassigned: _unassigned,
    CommandHandedOver: _handover,
    LogEntryAdded: _log,
    SitrepDrafted: _sitrep,
    SitrepEdited: _sitrep_edited,
    SitrepReleased: _sitrep_released,
    ResourceRequested: _requested,
    ResourceAllocated: _allocated,
    ResourceMoved: _moved,
    ResourceRequestCancelled: _request_cancelled,
    ImpactSet: _impact,
    IncidentLinked: _linked,
    IncidentUnlinked: _unlinked,
    PlaybookAdded: _joined,
}
