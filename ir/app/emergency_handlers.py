"""Handlers for running a real emergency: warnings, people, resources, the log, sitreps, shape."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ir.app.permissions import authorize
from ir.app.ports import ServiceCatalogue, UnitOfWork
from ir.domain import emergency_decisions as ed
from ir.domain.commands import (
    AddLogEntry,
    AddPlaybook,
    AllocateResource,
    AssignRole,
    CancelIncident,
    CancelResourceRequest,
    Command,
    DraftSitrep,
    EditSitrep,
    EndResponse,
    HandOver,
    IssueWarning,
    LiftWarning,
    LinkIncidents,
    MoveResource,
    ReleaseSitrep,
    ReopenIncident,
    RequestResource,
    SetImpact,
    UnassignRole,
    UnlinkIncidents,
)
from ir.domain.errors import InvalidInput
from ir.domain.events import Event
from ir.domain.incident import Incident
from ir.domain.situation import sitrep_text, situation

if TYPE_CHECKING:
    from ir.app.handlers import Handlers, Outcome


def emergency_table(h: Handlers, catalogue: ServiceCatalogue) -> dict[type[Command], Callable[[Any], Outcome]]:
    from ir.app.handlers import warning_level

    def s(inc: Incident, now: datetime) -> dict[str, Any]:
        return situation(inc, now, calendar_for=h.calendar_for)

    def log_entry(c: AddLogEntry, inc: Incident, now: datetime, u: UnitOfWork) -> list[Event]:
        ed.add_log_entry(inc, c.category, c.text, actor=c.actor.id, now=now, source=c.source)  # validate first
        text = u.personal.seal(c.about, c.text.strip()) if c.about else c.text
        return ed.add_log_entry(inc, c.category, text, actor=c.actor.id, now=now, source=c.source)

    def draft(c: DraftSitrep, inc: Incident, now: datetime) -> list[Event]:
        facts = s(inc, now)
        return ed.draft_sitrep(
            inc, actor=c.actor.id, now=now, facts=facts, text=sitrep_text(inc, len(inc.emergency.sitreps) + 1, facts)
        )

    def request(c: RequestResource, inc: Incident, now: datetime) -> list[Event]:
        from ir.domain.deadlines import due_instant

        step = inc.playbook.steps.get(c.step_id or "")
        wanted = [r for r in step.requests if r.kind == c.resource] if step else []
        quantity, needed_by = c.quantity, c.needed_by
        if quantity is None:
            if not wanted:
                raise InvalidInput("say how many (--quantity): the step requests none of this kind", field="quantity")
            quantity = wanted[0].quantity
        if needed_by is None and wanted and wanted[0].needed_by is not None:  # the playbook's "needed by"
            needed_by = due_instant(inc, wanted[0].needed_by, h.calendar_for)
        return ed.request_resource(
            inc,
            c.resource,
            quantity,
            destination=c.destination,
            actor=c.actor.id,
            now=now,
            needed_by=needed_by,
            step=c.step_id,
        )

    def allocate(c: AllocateResource, inc: Incident, now: datetime, u: UnitOfWork) -> list[Event]:
        req = ed.can_allocate(inc, c.request)
        units = u.inventory.allocate(
            incident_id=inc.id, request_id=c.request, kind=req.resource, quantity=req.shortfall, units=c.units
        )
        return ed.allocate(inc, c.request, units, actor=c.actor.id, now=now)

    def move(c: MoveResource, inc: Incident, now: datetime, u: UnitOfWork) -> list[Event]:
        events = ed.move(inc, c.request, c.units, c.stage, actor=c.actor.id, now=now)
        if c.stage == "returned":
            for e in events:
                u.inventory.release(list(getattr(e, "units", [])))
        return events

    def add_playbook(c: AddPlaybook, inc: Incident, now: datetime, u: UnitOfWork) -> list[Event]:
        extra = h.playbooks.get(c.playbook)
        events = ed.add_playbook(inc, extra, actor=c.actor.id, now=now, reason=c.reason)
        u.incidents.remember_playbook(extra, now)
        return events

    def act(
        action: str, decide: Callable[[Any, Incident, datetime, UnitOfWork], list[Event]]
    ) -> Callable[[Any], Outcome]:
        return lambda c: h._act(c, action, lambda inc, now, u: decide(c, inc, now, u))

    return {
        IssueWarning: act(
            "warning.issue",
            lambda c, i, now, u: ed.issue_warning(
                i, warning_level(c.level), actor=c.actor.id, now=now, reason=c.reason, expected_impact=c.expected_impact
            ),
        ),
        LiftWarning: act(
            "warning.lift", lambda c, i, now, u: ed.lift_warning(i, actor=c.actor.id, now=now, reason=c.reason)
        ),
        EndResponse: act(
            "incident.end_response", lambda c, i, now, u: ed.end_response(i, actor=c.actor.id, now=now, reason=c.reason)
        ),
        CancelIncident: act(
            "incident.cancel", lambda c, i, now, u: ed.cancel(i, actor=c.actor.id, now=now, reason=c.reason)
        ),
        ReopenIncident: act(
            "incident.reopen", lambda c, i, now, u: ed.reopen(i, actor=c.actor.id, now=now, reason=c.reason)
        ),
        AssignRole: act(
            "people.assign",
            lambda c, i, now, u: ed.assign(
                i, c.role, c.user, actor=c.actor.id, now=now, shift_start=c.shift_start, shift_end=c.shift_end
            ),
        ),
        UnassignRole: act(
            "people.assign",
            lambda c, i, now, u: ed.unassign(i, c.role, c.user, actor=c.actor.id, now=now, reason=c.reason),
        ),
        HandOver: act(
            "incident.handover",
            lambda c, i, now, u: ed.hand_over(i, c.to, actor=c.actor.id, now=now, note=c.note, situation=s(i, now)),
        ),
        AddLogEntry: act("log.add", log_entry),
        DraftSitrep: act("sitrep.draft", lambda c, i, now, u: draft(c, i, now)),
        EditSitrep: act(
            "sitrep.edit",
            lambda c, i, now, u: ed.edit_sitrep(
                i, c.number, {"zh-CN": c.text_zh, "en": c.text_en}, actor=c.actor.id, now=now
            ),
        ),
        ReleaseSitrep: act(
            "sitrep.release", lambda c, i, now, u: ed.release_sitrep(i, c.number, actor=c.actor.id, now=now)
        ),
        RequestResource: act("resource.request", lambda c, i, now, u: request(c, i, now)),
        AllocateResource: act("resource.allocate", allocate),
        MoveResource: act("resource.move", move),
        CancelResourceRequest: act(
            "resource.request",
            lambda c, i, now, u: ed.cancel_request(i, c.request, actor=c.actor.id, now=now, reason=c.reason),
        ),
        SetImpact: act(
            "incident.impact",
            lambda c, i, now, u: ed.set_impact(
                i, c.services, c.areas, known_services=catalogue.ids(), actor=c.actor.id, now=now
            ),
        ),
        LinkIncidents: lambda c: link(h, c, relate=True),
        UnlinkIncidents: lambda c: link(h, c, relate=False),
        AddPlaybook: act("incident.add_playbook", add_playbook),
    }


def link(h: Handlers, c: LinkIncidents | UnlinkIncidents, *, relate: bool) -> Outcome:
    """Both incidents record the link, in one transaction."""
    from ir.app.handlers import Outcome

    authorize(c.actor, "incident.link")
    with h.uow() as uow:
        parent = uow.incidents.get(c.incident_id)
        child = uow.incidents.get(c.child)
        now = parent.now(h.clock.now())
        decide = ed.link if relate else ed.unlink
        parent_events = decide(parent, child.id, "child", actor=c.actor.id, now=now)
        child_events = decide(child, parent.id, "parent", actor=c.actor.id, now=child.now(h.clock.now()))
        stored = uow.incidents.append(parent, parent_events) + uow.incidents.append(child, child_events)
        h._audit(uow, c, "incident.link" if relate else "incident.unlink", stored)
        uow.commit()
    return Outcome(parent.id, parent.version, parent_events, incident=parent)
