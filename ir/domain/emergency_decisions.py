"""Decisions for running a real emergency: each act checked, returning its events or one clear refusal."""

from __future__ import annotations

import difflib
from datetime import datetime
from typing import Any

from ir.domain.clocks import ClockName
from ir.domain.decisions import FUTURE_TOLERANCE, _open, _text
from ir.domain.emergency import RequestState, UnitMovement
from ir.domain.errors import InvalidInput, InvalidTransition, NotFound
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
)
from ir.domain.incident import Incident
from ir.domain.levels import WarningLevel
from ir.domain.personal import Personal
from ir.domain.playbook import Playbook

LOG_CATEGORIES = ("decision", "observation", "message")
STAGES = ("dispatched", "arrived", "returned")


def _reason(reason: str | None, what: str) -> str:
    why = _text(reason, "reason")
    if why is None:
        raise InvalidInput(f"{what} needs a reason (--reason)", field="reason")
    return why


def _hint(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


# -- warnings and the end of the response -------------------------------------------------------------


def issue_warning(
    inc: Incident,
    level: WarningLevel,
    *,
    actor: str,
    now: datetime,
    reason: str | None,
    expected_impact: datetime | None = None,
) -> list[Event]:
    _open(inc)
    if level not in inc.playbook.warnings:
        defined = ", ".join(w.value for w in inc.playbook.warnings) or "none"
        raise InvalidInput(f"playbook {inc.playbook.id} defines no {level.value} warning (it defines: {defined})")
    current = inc.warning
    why = _text(reason, "reason")
    if current is level:
        previous = inc.clocks.get(ClockName.EXPECTED_IMPACT)
        if expected_impact is None or (previous is not None and previous.instant == expected_impact):
            article = "an" if level.value[0] in "aeiou" else "a"
            raise InvalidTransition(f"incident {inc.id} is already under {article} {level.value} warning")
        if why is None:
            raise InvalidInput("moving the expected impact needs --reason", field="reason")
        if expected_impact.tzinfo is None:
            raise InvalidInput("give the expected impact with its time zone", field="expected_impact")
        return [
            ClockRecorded(
                at=now,
                actor=actor,
                clock=ClockName.EXPECTED_IMPACT.value,
                instant=expected_impact,
                reason=why,
                correction=previous is not None,
            )
        ]
    if current is not None and why is None:
        change = "raising" if level.more_severe_than(current) else "lowering"
        raise InvalidInput(f"{change} the warning ({current.value} -> {level.value}) needs --reason", field="reason")
    events: list[Event] = [
        WarningIssued(at=now, actor=actor, level=level.value, previous=current.value if current else None, reason=why)
    ]
    if expected_impact is not None:
        if expected_impact.tzinfo is None:
            raise InvalidInput("give the expected impact with its time zone", field="expected_impact")
        previous = inc.clocks.get(ClockName.EXPECTED_IMPACT)
        if previous is None or previous.instant != expected_impact:
            events.append(
                ClockRecorded(
                    at=now,
                    actor=actor,
                    clock=ClockName.EXPECTED_IMPACT.value,
                    instant=expected_impact,
                    reason=why,
                    correction=previous is not None,
                )
            )
    return events


def lift_warning(inc: Incident, *, actor: str, now: datetime, reason: str | None) -> list[Event]:
    _open(inc)
    if inc.warning is None:
        raise InvalidTransition(f"incident {inc.id} is under no warning")
    return [WarningLifted(at=now, actor=actor, reason=_reason(reason, "lifting a warning"))]


def end_response(inc: Incident, *, actor: str, now: datetime, reason: str | None) -> list[Event]:
    _open(inc)
    if inc.level is None:
        raise InvalidTransition(f"incident {inc.id} has no response to end: no level was declared")
    if ClockName.RESPONSE_END in inc.clocks:
        raise InvalidTransition(f"the response of incident {inc.id} has already ended")
    return [ResponseEnded(at=now, actor=actor, reason=_text(reason, "reason"))]


def cancel(inc: Incident, *, actor: str, now: datetime, reason: str | None) -> list[Event]:
    _open(inc)
    return [IncidentCancelled(at=now, actor=actor, reason=_reason(reason, "cancelling an incident (a false alarm)"))]


def reopen(inc: Incident, *, actor: str, now: datetime, reason: str | None) -> list[Event]:
    if not inc.closed:
        raise InvalidTransition(f"incident {inc.id} is open")
    return [IncidentReopened(at=now, actor=actor, reason=_reason(reason, "reopening an incident"))]


# -- people --------------------------------------------------------------------------------------------


def _role(inc: Incident, role: str) -> str:
    if role not in inc.playbook.roles:
        raise NotFound(f"no role '{role}' in playbook {inc.playbook.id}{_hint(role, list(inc.playbook.roles))}")
    return role


def assign(
    inc: Incident,
    role: str,
    user: str,
    *,
    actor: str,
    now: datetime,
    shift_start: datetime | None = None,
    shift_end: datetime | None = None,
) -> list[Event]:
    _open(inc)
    _role(inc, role)
    who = _text(user, "user", required=True, limit=200)
    assert who is not None
    check_instant(shift_start, "shift_start", now, future_ok=True)
    check_instant(shift_end, "shift_end", now, future_ok=True)
    if shift_start and shift_end and shift_end <= shift_start:
        raise InvalidInput("a shift ends after it starts", field="shift_end")
    for a in inc.emergency.assignments:
        if a.role == role and a.user == who and a.ended is None and a.shift_start == shift_start:
            raise InvalidTransition(f"{who} is already assigned to '{role}' for that shift")
    return [RoleAssigned(at=now, actor=actor, role=role, user=who, shift_start=shift_start, shift_end=shift_end)]


def unassign(inc: Incident, role: str, user: str, *, actor: str, now: datetime, reason: str | None) -> list[Event]:
    _open(inc)
    _role(inc, role)
    if not any(a.role == role and a.user == user and a.ended is None for a in inc.emergency.assignments):
        raise NotFound(f"{user} is not assigned to '{role}'")
    return [RoleUnassigned(at=now, actor=actor, role=role, user=user, reason=_text(reason, "reason"))]


def hand_over(
    inc: Incident, to: str, *, actor: str, now: datetime, note: str | None, situation: dict[str, Any]
) -> list[Event]:
    _open(inc)
    who = _text(to, "user", required=True, limit=200)
    assert who is not None
    if who == inc.emergency.commander:
        raise InvalidTransition(f"{who} already commands incident {inc.id}")
    return [
        CommandHandedOver(
            at=now, actor=actor, previous=inc.emergency.commander, to=who, note=_text(note, "note"), situation=situation
        )
    ]


# -- the incident log and situation reports -------------------------------------------------------------


def add_log_entry(
    inc: Incident, category: str, text: str | Personal, *, actor: str, now: datetime, source: str | None
) -> list[Event]:
    _open(inc)
    if category not in LOG_CATEGORIES:
        raise InvalidInput(f"a log entry is a {', '.join(LOG_CATEGORIES)}; got '{category}'", field="category")
    body: str | Personal | None = text if isinstance(text, Personal) else _text(text, "text", required=True)
    assert body is not None
    return [LogEntryAdded(at=now, actor=actor, category=category, text=body, source=_text(source, "source", limit=200))]


def draft_sitrep(
    inc: Incident, *, actor: str, now: datetime, facts: dict[str, Any], text: dict[str, str]
) -> list[Event]:
    _open(inc)
    reports = inc.emergency.sitreps
    if reports and reports[-1].released_at is None:
        raise InvalidTransition(f"situation report {reports[-1].number} is still a draft: edit and release it first")
    return [SitrepDrafted(at=now, actor=actor, number=len(reports) + 1, facts=facts, text=text)]


def _sitrep(inc: Incident, number: int) -> None:
    if not 1 <= number <= len(inc.emergency.sitreps):
        raise NotFound(f"incident {inc.id} has no situation report {number}")


def edit_sitrep(inc: Incident, number: int, text: dict[str, str], *, actor: str, now: datetime) -> list[Event]:
    _open(inc)
    _sitrep(inc, number)
    report = inc.emergency.sitreps[number - 1]
    if report.released_at is not None:
        raise InvalidTransition(f"situation report {number} was released: draft a new one")
    if set(text) != {"zh-CN", "en"} or not all(v.strip() for v in text.values()):
        raise InvalidInput("a situation report has its text in zh-CN and en", field="text")
    if text == report.text:
        raise InvalidTransition("no change")
    return [SitrepEdited(at=now, actor=actor, number=number, text=text)]


def release_sitrep(inc: Incident, number: int, *, actor: str, now: datetime) -> list[Event]:
    _open(inc)
    _sitrep(inc, number)
    if inc.emergency.sitreps[number - 1].released_at is not None:
        raise InvalidTransition(f"situation report {number} was already released")
    return [SitrepReleased(at=now, actor=actor, number=number)]


# -- resources -----------------------------------------------------------------------------------------


def request_resource(
    inc: Incident,
    resource: str,
    quantity: int,
    *,
    destination: str,
    actor: str,
    now: datetime,
    needed_by: datetime | None = None,
    step: str | None = None,
) -> list[Event]:
    _open(inc)
    kinds = list(inc.playbook.resources)
    if resource not in inc.playbook.resources:
        raise NotFound(f"playbook {inc.playbook.id} dispatches no '{resource}'{_hint(resource, kinds)}")
    if quantity < 1 or quantity > 1_000_000:
        raise InvalidInput("a quantity is between 1 and 1,000,000", field="quantity")
    where = _text(destination, "destination", required=True, limit=200)
    assert where is not None
    if step is not None and step not in inc.playbook.steps:
        raise NotFound(f"no step '{step}' in playbook {inc.playbook.id}")
    if needed_by is not None and needed_by.tzinfo is None:
        raise InvalidInput("give 'needed by' with its time zone", field="needed_by")
    request_id = f"r{len(inc.emergency.requests) + 1}"
    return [
        ResourceRequested(
            at=now,
            actor=actor,
            request=request_id,
            resource=resource,
            quantity=quantity,
            destination=where,
            needed_by=needed_by,
            step=step,
        )
    ]


def _request(inc: Incident, request_id: str) -> RequestState:
    found = inc.emergency.requests.get(request_id)
    if found is None:
        raise NotFound(f"incident {inc.id} has no resource request '{request_id}'")
    if found.cancelled is not None:
        raise InvalidTransition(f"resource request {request_id} was cancelled")
    return found


def can_allocate(inc: Incident, request_id: str) -> RequestState:
    """The request, if it can take more units."""
    _open(inc)
    request = _request(inc, request_id)
    if request.shortfall == 0:
        raise InvalidTransition(f"resource request {request_id} is fully allocated")
    return request


def allocate(inc: Incident, request_id: str, units: dict[str, int], *, actor: str, now: datetime) -> list[Event]:
    request = can_allocate(inc, request_id)
    if not units:
        raise InvalidInput("no units to allocate", field="units")
    again = [u for u in units if u in request.units]
    if again:
        raise InvalidTransition(f"unit {again[0]} is already allocated to request {request_id}")
    return [ResourceAllocated(at=now, actor=actor, request=request_id, units=units)]


def move(inc: Incident, request_id: str, units: list[str], stage: str, *, actor: str, now: datetime) -> list[Event]:
    if stage != "returned":  # units come back even after closure
        _open(inc)
    request = _request(inc, request_id)
    if stage not in STAGES:
        raise InvalidInput(f"a unit is {', '.join(STAGES)}; got '{stage}'", field="stage")
    chosen = units or [u for u, m in request.units.items() if _eligible(m, stage)]
    if not chosen:
        raise InvalidTransition(f"request {request_id} has no units to mark {stage}")
    for unit in chosen:
        movement = request.units.get(unit)
        if movement is None:
            raise NotFound(f"unit {unit} is not allocated to request {request_id}")
        if movement.returned_at is not None:
            raise InvalidTransition(f"unit {unit} was already returned")
        if stage == "dispatched" and movement.dispatched_at is not None:
            raise InvalidTransition(f"unit {unit} was already dispatched")
        if stage == "arrived" and movement.dispatched_at is None:
            raise InvalidTransition(f"unit {unit} has not been dispatched")
        if stage == "arrived" and movement.arrived_at is not None:
            raise InvalidTransition(f"unit {unit} has already arrived")
    return [ResourceMoved(at=now, actor=actor, request=request_id, units=chosen, stage=stage)]


def _eligible(m: UnitMovement, stage: str) -> bool:
    """Whether a unit can move to a stage (the units meant when none are named)."""
    if m.returned_at is not None:
        return False
    if stage == "dispatched":
        return m.dispatched_at is None
    if stage == "arrived":
        return m.dispatched_at is not None and m.arrived_at is None
    return True


def cancel_request(inc: Incident, request_id: str, *, actor: str, now: datetime, reason: str | None) -> list[Event]:
    _open(inc)
    request = _request(inc, request_id)
    out = [u for u, m in request.units.items() if m.returned_at is None]
    if out:
        raise InvalidTransition(
            f"units of request {request_id} are still committed ({', '.join(out)}): return them first"
        )
    return [ResourceRequestCancelled(at=now, actor=actor, request=request_id, reason=_reason(reason, "cancelling"))]


# -- the shape of an incident ------------------------------------------------------------------------------


def set_impact(
    inc: Incident, services: list[str], areas: list[str], *, known_services: set[str], actor: str, now: datetime
) -> list[Event]:
    _open(inc)
    for s in services:
        if s not in known_services:
            raise NotFound(f"no service '{s}' in the service catalogue{_hint(s, sorted(known_services))}")
    clean_areas = list(dict.fromkeys(a.strip() for a in areas if a.strip()))
    services = sorted(set(services))
    if services == sorted(inc.emergency.services) and sorted(clean_areas) == sorted(inc.emergency.areas):
        raise InvalidTransition("no change: these services and areas are already recorded")
    return [ImpactSet(at=now, actor=actor, services=sorted(set(services)), areas=list(dict.fromkeys(clean_areas)))]


def link(inc: Incident, other: int, relation: str, *, actor: str, now: datetime) -> list[Event]:
    if other == inc.id:
        raise InvalidInput("an incident cannot be linked to itself", field="incident")
    if relation == "child" and other in inc.emergency.children:
        raise InvalidTransition(f"incident {other} is already a child of incident {inc.id}")
    if relation == "parent" and inc.emergency.parent is not None:
        raise InvalidTransition(f"incident {inc.id} already has a parent (incident {inc.emergency.parent})")
    return [IncidentLinked(at=now, actor=actor, other=other, relation=relation)]


def unlink(inc: Incident, other: int, relation: str, *, actor: str, now: datetime) -> list[Event]:
    linked = other in inc.emergency.children if relation == "child" else inc.emergency.parent == other
    if not linked:
        raise NotFound(f"incident {other} is not linked to incident {inc.id} as its {relation}")
    return [IncidentUnlinked(at=now, actor=actor, other=other, relation=relation)]


def add_playbook(inc: Incident, extra: Playbook, *, actor: str, now: datetime, reason: str | None) -> list[Event]:
    _open(inc)
    if extra.id == inc.playbook.id or any(pid == extra.id for pid, _ in inc.emergency.joined):
        raise InvalidTransition(f"playbook {extra.id} is already part of incident {inc.id}")
    for name, fact in extra.facts.items():
        mine = inc.playbook.facts.get(name)
        if mine is not None and (mine.kind, mine.values) != (fact.kind, fact.values):
            raise InvalidInput(
                f"playbooks {inc.playbook.id} and {extra.id} both have a fact '{name}', of different types"
            )
    return [
        PlaybookAdded(
            at=now,
            actor=actor,
            playbook_id=extra.id,
            playbook_hash=extra.content_hash,
            reason=_reason(reason, "adding a playbook"),
        )
    ]


def check_instant(value: datetime | None, what: str, now: datetime, *, future_ok: bool) -> None:
    if value is None:
        return
    if value.tzinfo is None:
        raise InvalidInput(f"{what}: give the instant with its time zone", field=what)
    if not future_ok and value > now + FUTURE_TOLERANCE:
        raise InvalidInput(f"{what} cannot be in the future", field=what)
