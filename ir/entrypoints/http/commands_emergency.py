"""Running a real emergency over the API: people and shifts, handovers, the incident log, situation reports,
the shape of an incident (impact, links, joined playbooks) and resources (the inventory and an incident's
requests). Each change is the command `ir assign|handover|log|sitrep|impact|link|add-playbook|resources`
builds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import AwareDatetime, BaseModel, Field

from ir.app.permissions import authorize
from ir.domain import commands as c
from ir.domain.errors import NotFound
from ir.domain.personal import Personal, masked
from ir.entrypoints.http.auth import Caller, Core
from ir.entrypoints.http.commands import (
    INT32,
    NO_CONTROL,
    Changer,
    Expected,
    In,
    IncidentId,
    Limit,
    Name,
    Offset,
    Page,
    PlaybookId,
    Reason,
    Text,
    content_etag,
    iso,
    page,
    read_incident,
)
from ir.entrypoints.http.routes import OutcomeOut, run

router = APIRouter(prefix="/api", tags=["emergency"])

UserName = Annotated[str, Field(min_length=1, max_length=200)]
RoleId = Annotated[str, Field(min_length=1, max_length=64)]


# -- people --------------------------------------------------------------------------------------------


class AssignIn(In):
    role: RoleId = Field(description="one of the playbook's roles")
    user: UserName
    shift_start: AwareDatetime | None = None
    shift_end: AwareDatetime | None = None


@router.post("/incidents/{incident_id}/assignments", status_code=201)
def assign(
    incident_id: IncidentId, body: AssignIn, principal: Changer, core: Core, expected: Expected, response: Response
) -> OutcomeOut:
    """Bind a user to one of the playbook's roles in this incident, for a shift (ir assign)."""
    command = c.AssignRole(
        actor=principal.actor,
        incident_id=incident_id,
        role=body.role,
        user=body.user,
        shift_start=body.shift_start,
        shift_end=body.shift_end,
        expected_version=expected,
    )
    return run(core, command, response)


class UnassignIn(In):
    role: RoleId
    user: UserName
    reason: Reason = None


@router.post("/incidents/{incident_id}/assignments/end")
def unassign(
    incident_id: IncidentId, body: UnassignIn, principal: Changer, core: Core, expected: Expected, response: Response
) -> OutcomeOut:
    """End a user's assignment to a role (ir assign --remove)."""
    command = c.UnassignRole(
        actor=principal.actor,
        incident_id=incident_id,
        role=body.role,
        user=body.user,
        reason=body.reason,
        expected_version=expected,
    )
    return run(core, command, response)


class AssignmentOut(BaseModel):
    role: str
    user: str
    since: str
    by: str
    shift_start: str | None
    shift_end: str | None
    ended: str | None


@router.get("/incidents/{incident_id}/assignments")
def assignments(
    incident_id: IncidentId, principal: Caller, core: Core, response: Response, limit: Limit = 100, offset: Offset = 0
) -> Page[AssignmentOut]:
    """Who is (and was) assigned to which playbook role, with shifts."""
    incident = read_incident(core, principal, incident_id, response)
    rows = [
        AssignmentOut(
            role=a.role,
            user=a.user,
            since=a.since.isoformat(),
            by=a.by,
            shift_start=iso(a.shift_start),
            shift_end=iso(a.shift_end),
            ended=iso(a.ended),
        )
        for a in incident.emergency.assignments
    ]
    return page(rows, limit, offset)


class HandoverIn(In):
    to: UserName = Field(description="the incoming commander")
    note: Reason = Field(default=None, description="what the incoming commander must know")


@router.post("/incidents/{incident_id}/handover")
def hand_over(
    incident_id: IncidentId, body: HandoverIn, principal: Changer, core: Core, expected: Expected, response: Response
) -> OutcomeOut:
    """Hand over command; the situation at that moment is recorded with it (ir handover)."""
    command = c.HandOver(
        actor=principal.actor, incident_id=incident_id, to=body.to, note=body.note, expected_version=expected
    )
    return run(core, command, response)


# -- the incident log --------------------------------------------------------------------------------------


class LogIn(In):
    category: Literal["decision", "observation", "message"]
    text: Text
    source: Annotated[str, Field(max_length=200)] | None = Field(
        default=None, description="where it came from (a message's sender, a channel)"
    )
    about: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="the person it is about: the entry is sealed as personal data"
    )


@router.post("/incidents/{incident_id}/log", status_code=201)
def add_log_entry(
    incident_id: IncidentId, body: LogIn, principal: Changer, core: Core, expected: Expected, response: Response
) -> OutcomeOut:
    """Log a decision, an observation or a message received (ir log)."""
    command = c.AddLogEntry(
        actor=principal.actor,
        incident_id=incident_id,
        category=body.category,
        text=body.text,
        source=body.source,
        about=body.about,
        expected_version=expected,
    )
    return run(core, command, response)


class LogEntryOut(BaseModel):
    number: int
    at: str
    category: str
    text: str
    actor: str
    source: str | None
    personal: bool


@router.get("/incidents/{incident_id}/log")
def log(
    incident_id: IncidentId,
    principal: Caller,
    core: Core,
    response: Response,
    category: Literal["decision", "observation", "message"] | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[LogEntryOut]:
    """The incident log, oldest first; entries about a person masked."""
    incident = read_incident(core, principal, incident_id, response)
    rows = [
        LogEntryOut(
            number=i,
            at=e.at.isoformat(),
            category=e.category,
            text=str(masked(e.text)),
            actor=e.actor,
            source=e.source,
            personal=isinstance(e.text, Personal),
        )
        for i, e in enumerate(incident.emergency.log, 1)
        if category is None or e.category == category
    ]
    return page(rows, limit, offset)


# -- situation reports ----------------------------------------------------------------------------------


class SitrepOut(BaseModel):
    number: int
    drafted_at: str
    drafted_by: str
    released_at: str | None
    edits: int
    text: dict[str, str] = Field(description="zh-CN and en")
    facts: dict[str, Any]


def _sitrep_out(number: int, report: Any) -> SitrepOut:
    return SitrepOut(
        number=number,
        drafted_at=report.drafted_at.isoformat(),
        drafted_by=report.drafted_by,
        released_at=iso(report.released_at),
        edits=report.edits,
        text=dict(report.text),
        facts=masked(report.facts),
    )


@router.post("/incidents/{incident_id}/sitreps", status_code=201)
def draft_sitrep(
    incident_id: IncidentId, principal: Changer, core: Core, expected: Expected, response: Response
) -> OutcomeOut:
    """Draft the next situation report (态势报告) from the incident's state (ir sitrep ID draft)."""
    return run(core, c.DraftSitrep(actor=principal.actor, incident_id=incident_id, expected_version=expected), response)


@router.get("/incidents/{incident_id}/sitreps")
def list_sitreps(
    incident_id: IncidentId, principal: Caller, core: Core, response: Response, limit: Limit = 50, offset: Offset = 0
) -> Page[SitrepOut]:
    """The situation reports, first to last."""
    incident = read_incident(core, principal, incident_id, response)
    rows = [_sitrep_out(i, r) for i, r in enumerate(incident.emergency.sitreps, 1)]
    return page(rows, limit, offset)


SitrepNumber = Annotated[int, Path(ge=1, le=INT32, description="the situation report's number")]


@router.get("/incidents/{incident_id}/sitreps/{number}")
def get_sitrep(
    incident_id: IncidentId, number: SitrepNumber, principal: Caller, core: Core, response: Response
) -> SitrepOut:
    """One situation report (ir sitrep ID show N)."""
    incident = read_incident(core, principal, incident_id, response)
    reports = incident.emergency.sitreps
    if number > len(reports):
        raise NotFound(f"incident {incident_id} has no situation report {number}")
    return _sitrep_out(number, reports[number - 1])


class SitrepEditIn(In):
    text_zh: Annotated[str, Field(min_length=1, max_length=100_000)]
    text_en: Annotated[str, Field(min_length=1, max_length=100_000)]


@router.put("/incidents/{incident_id}/sitreps/{number}")
def edit_sitrep(
    incident_id: IncidentId,
    number: SitrepNumber,
    body: SitrepEditIn,
    principal: Changer,
    core: Core,
    expected: Expected,
    response: Response,
) -> OutcomeOut:
    """Edit a draft situation report, both languages (ir sitrep ID edit N)."""
    command = c.EditSitrep(
        actor=principal.actor,
        incident_id=incident_id,
        number=number,
        text_zh=body.text_zh,
        text_en=body.text_en,
        expected_version=expected,
    )
    return run(core, command, response)


@router.post("/incidents/{incident_id}/sitreps/{number}/release")
def release_sitrep(
    incident_id: IncidentId,
    number: SitrepNumber,
    principal: Changer,
    core: Core,
    expected: Expected,
    response: Response,
) -> OutcomeOut:
    """Release a situation report (ir sitrep ID release N)."""
    command = c.ReleaseSitrep(actor=principal.actor, incident_id=incident_id, number=number, expected_version=expected)
    return run(core, command, response)


# -- the shape of an incident ----------------------------------------------------------------------------


class ImpactIn(In):
    services: Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]], Field(max_length=500)] = Field(
        description="affected services, from the service catalogue"
    )
    areas: Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=500)] = Field(
        default_factory=list, description="affected areas"
    )


@router.put("/incidents/{incident_id}/impact")
def set_impact(
    incident_id: IncidentId, body: ImpactIn, principal: Changer, core: Core, expected: Expected, response: Response
) -> OutcomeOut:
    """Record the affected services and areas (ir impact)."""
    command = c.SetImpact(
        actor=principal.actor,
        incident_id=incident_id,
        services=list(body.services),
        areas=list(body.areas),
        expected_version=expected,
    )
    return run(core, command, response)


class LinkIn(In):
    child: int = Field(ge=1, le=INT32, description="the child incident (a typhoon's power failure)")


@router.post("/incidents/{incident_id}/links", status_code=201)
def link(
    incident_id: IncidentId, body: LinkIn, principal: Changer, core: Core, expected: Expected, response: Response
) -> OutcomeOut:
    """Link a child incident; both incidents record the link (ir link)."""
    command = c.LinkIncidents(
        actor=principal.actor, incident_id=incident_id, child=body.child, expected_version=expected
    )
    return run(core, command, response)


@router.delete("/incidents/{incident_id}/links/{child}")
def unlink(
    incident_id: IncidentId,
    child: Annotated[int, Path(ge=1, le=INT32)],
    principal: Changer,
    core: Core,
    expected: Expected,
    response: Response,
) -> OutcomeOut:
    """Remove the link to a child incident (ir link --remove)."""
    command = c.UnlinkIncidents(actor=principal.actor, incident_id=incident_id, child=child, expected_version=expected)
    return run(core, command, response)


class AddPlaybookIn(In):
    playbook: PlaybookId
    reason: Text = Field(description="why (an outage found to be an attack)")


@router.post("/incidents/{incident_id}/playbooks", status_code=201)
def add_playbook(
    incident_id: IncidentId, body: AddPlaybookIn, principal: Changer, core: Core, expected: Expected, response: Response
) -> OutcomeOut:
    """Join a second playbook to a running incident: its steps join as <playbook>.<step> (ir add-playbook)."""
    command = c.AddPlaybook(
        actor=principal.actor,
        incident_id=incident_id,
        playbook=body.playbook,
        reason=body.reason,
        expected_version=expected,
    )
    return run(core, command, response)


# -- resources: the inventory --------------------------------------------------------------------------------


class UnitOut(BaseModel):
    id: str
    kind: str
    name: str
    base: str
    capacity: int
    status: str
    incident_id: int | None
    request_id: str | None
    updated_at: str | None


@router.get("/resources", tags=["resources"])
def inventory(
    principal: Caller,
    core: Core,
    response: Response,
    kind: Annotated[str | None, Query(max_length=64, pattern=NO_CONTROL)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[UnitOut]:
    """The resource inventory: units, where they are kept and what they are committed to (ir resources list)."""
    from ir.adapters.db.inventory import SqlInventory

    authorize(principal.actor, "incident.read")
    with core.db.connection() as conn:
        units = SqlInventory(conn, now=core.clock.now()).units(kind)
    rows = [UnitOut(**{**u, "updated_at": iso(u.get("updated_at"))}) for u in units]
    result = page(rows, limit, offset)
    response.headers["ETag"] = content_etag(result.model_dump())
    return result


class UnitIn(In):
    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\s/]+$")]
    kind: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        description="the resource kind, as playbooks name it (generator, …)"
    )
    name: Name
    base: Name = Field(description="where it is kept")
    capacity: int = Field(default=1, ge=1, le=INT32)


@router.post("/resources", tags=["resources"], status_code=201)
def register_unit(body: UnitIn, principal: Changer, core: Core) -> UnitOut:
    """Register a unit in the inventory (ir resources register). Administrators only."""
    authorize(principal.actor, "resource.register")
    with core.db.uow() as uow:
        uow.inventory.register(unit_id=body.id, kind=body.kind, name=body.name, base=body.base, capacity=body.capacity)
        uow.audit.record(
            action="resource.register",
            actor=principal.actor.id,
            subject="inventory",
            payload={"unit": body.id, "kind": body.kind, "base": body.base, "capacity": body.capacity},
            at=core.clock.now(),
        )
        unit = next(u for u in uow.inventory.units(body.kind) if u["id"] == body.id)
        uow.commit()
    return UnitOut(**{**unit, "updated_at": iso(unit.get("updated_at"))})


# -- resources: an incident's requests --------------------------------------------------------------------


class RequestOut(BaseModel):
    request: str
    resource: str
    quantity: int
    destination: str
    needed_by: str | None
    step: str | None
    allocated: int
    shortfall: int
    cancelled: str | None
    units: dict[str, dict[str, Any]]


@router.get("/incidents/{incident_id}/resources", tags=["resources"])
def requests(
    incident_id: IncidentId, principal: Caller, core: Core, response: Response, limit: Limit = 100, offset: Offset = 0
) -> Page[RequestOut]:
    """The incident's resource requests and where each unit is."""
    incident = read_incident(core, principal, incident_id, response)
    rows = [
        RequestOut(
            request=r.id,
            resource=r.resource,
            quantity=r.quantity,
            destination=r.destination,
            needed_by=iso(r.needed_by),
            step=r.step,
            allocated=r.allocated,
            shortfall=r.shortfall,
            cancelled=r.cancelled,
            units={
                u: {
                    "stage": m.stage,
                    "capacity": m.capacity,
                    "allocated_at": iso(m.allocated_at),
                    "dispatched_at": iso(m.dispatched_at),
                    "arrived_at": iso(m.arrived_at),
                    "returned_at": iso(m.returned_at),
                }
                for u, m in r.units.items()
            },
        )
        for r in incident.emergency.requests.values()
    ]
    return page(rows, limit, offset)


class ResourceRequestIn(In):
    resource: Annotated[str, Field(min_length=1, max_length=64)] = Field(description="a kind the playbook dispatches")
    quantity: int | None = Field(default=None, ge=1, le=1_000_000, description="default: what the step requests")
    destination: Name
    needed_by: AwareDatetime | None = None
    step: Annotated[str, Field(max_length=200)] | None = Field(default=None, description="the step that requests it")


@router.post("/incidents/{incident_id}/resources", tags=["resources"], status_code=201)
def request_resource(
    incident_id: IncidentId,
    body: ResourceRequestIn,
    principal: Changer,
    core: Core,
    expected: Expected,
    response: Response,
) -> OutcomeOut:
    """Request resources for the incident (ir resources request)."""
    command = c.RequestResource(
        actor=principal.actor,
        incident_id=incident_id,
        resource=body.resource,
        quantity=body.quantity,
        destination=body.destination,
        needed_by=body.needed_by,
        step_id=body.step,
        expected_version=expected,
    )
    return run(core, command, response)


RequestId = Annotated[str, Path(min_length=1, max_length=16, description="the request's id (r1, r2, …)")]
UnitIds = Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=1000)]


class UnitsIn(In):
    units: UnitIds = Field(default_factory=list, description="the units (default: chosen for you, or every one out)")


@router.post("/incidents/{incident_id}/resources/{request_id}/allocate", tags=["resources"])
def allocate(
    incident_id: IncidentId,
    request_id: RequestId,
    principal: Changer,
    core: Core,
    expected: Expected,
    response: Response,
    body: UnitsIn | None = None,
) -> OutcomeOut:
    """Allocate inventory units to a request: the ones named, or available ones of its kind."""
    command = c.AllocateResource(
        actor=principal.actor,
        incident_id=incident_id,
        request=request_id,
        units=list((body or UnitsIn()).units),
        expected_version=expected,
    )
    return run(core, command, response)


_MOVES = {"dispatch": "dispatched", "arrive": "arrived", "return": "returned"}


def _move_endpoint(stage: str) -> Callable[..., OutcomeOut]:
    def endpoint(
        incident_id: IncidentId,
        request_id: RequestId,
        principal: Changer,
        core: Core,
        expected: Expected,
        response: Response,
        body: UnitsIn | None = None,
    ) -> OutcomeOut:
        command = c.MoveResource(
            actor=principal.actor,
            incident_id=incident_id,
            request=request_id,
            stage=stage,
            units=list((body or UnitsIn()).units),
            expected_version=expected,
        )
        return run(core, command, response)

    endpoint.__name__ = f"resources_{stage}"
    return endpoint


for _verb, _stage in _MOVES.items():
    router.add_api_route(
        f"/incidents/{{incident_id}}/resources/{{request_id}}/{_verb}",
        _move_endpoint(_stage),
        methods=["POST"],
        name=f"resources_{_verb}",
        description=f"Mark units of a request {_stage} (default: every unit still out).",
        response_model=OutcomeOut,
        tags=["resources"],
    )


class CancelRequestIn(In):
    reason: Text


@router.post("/incidents/{incident_id}/resources/{request_id}/cancel", tags=["resources"])
def cancel_request(
    incident_id: IncidentId,
    request_id: RequestId,
    body: CancelRequestIn,
    principal: Changer,
    core: Core,
    expected: Expected,
    response: Response,
) -> OutcomeOut:
    """Cancel a request whose units are all back (ir resources cancel)."""
    command = c.CancelResourceRequest(
        actor=principal.actor,
        incident_id=incident_id,
        request=request_id,
        reason=body.reason,
        expected_version=expected,
    )
    return run(core, command, response)
