"""Alert intake over HTTP: Prometheus Alertmanager's webhook (version 4) and a generic JSON form.

Both answer 202 with what became of each alert (opened, attached, deduplicated, resolved, ignored with a
reason, rejected with a reason). A token of a machine user with the commander role (permission
`alert.intake`) and the write scope sends them; docs/alerts.md shows the Alertmanager receiver.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from ir.adapters.alerts import RulesFile, is_race, ledger_of, list_alerts, release_thread_connection
from ir.app.alerts import Alert, AlertIntake, IntakeResult
from ir.app.permissions import authorize
from ir.app.signin import Principal
from ir.entrypoints.http.auth import Caller, Core


def close(api: FastAPI) -> None:
    """On shutdown, first of all (the application's lifespan): the intake's writer finishes what is queued
    and stops."""
    found = getattr(api.state, "alert_intake", None)
    if isinstance(found, AlertIntake):
        found.close()


router = APIRouter(prefix="/api", tags=["alerts"])

MAX_ALERTS = 5000  # per webhook (Alertmanager: max_alerts in the receiver keeps a storm's webhooks under it)
MAX_LABELS = 200
INT32 = 2_147_483_647  # the databases' integer
_LOCK = threading.Lock()

LabelName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
LabelValue = Annotated[str, StringConstraints(max_length=16_384)]
Labels = dict[LabelName, LabelValue]
Fingerprint = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
Status = Literal["firing", "resolved"]
Body = TypeVar("Body", bound=BaseModel)


# -- Alertmanager -------------------------------------------------------------------------------------------


class AlertmanagerAlertIn(BaseModel):
    """One alert of Alertmanager's webhook (fields as Alertmanager spells them)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    status: Status
    labels: Labels = Field(max_length=MAX_LABELS)
    annotations: Labels = Field(default_factory=dict, max_length=MAX_LABELS)
    starts_at: AwareDatetime = Field(alias="startsAt")
    ends_at: AwareDatetime | None = Field(default=None, alias="endsAt")
    generator_url: str | None = Field(default=None, alias="generatorURL", max_length=4096)
    fingerprint: Fingerprint | None = None


class AlertmanagerIn(BaseModel):
    """Alertmanager's webhook payload, version 4."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    version: Literal["4"] = "4"
    receiver: str = Field(default="", max_length=500)
    status: Status | None = None
    alerts: list[AlertmanagerAlertIn] = Field(max_length=MAX_ALERTS)
    group_labels: Labels = Field(default_factory=dict, alias="groupLabels")
    common_labels: Labels = Field(default_factory=dict, alias="commonLabels")
    common_annotations: Labels = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str | None = Field(default=None, alias="externalURL", max_length=4096)
    group_key: str | None = Field(default=None, alias="groupKey", max_length=10_000)
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts", ge=0)


# -- the generic form --------------------------------------------------------------------------------------


class GenericAlertIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fingerprint: Fingerprint | None = Field(
        default=None, description="the alert's identity across sends; default: a hash of its labels"
    )
    status: Status = "firing"
    title: str | None = Field(default=None, max_length=500)
    labels: Labels = Field(default_factory=dict, max_length=MAX_LABELS)
    annotations: Labels = Field(default_factory=dict, max_length=MAX_LABELS)
    starts_at: AwareDatetime | None = Field(default=None, description="when this occurrence began (with zone)")
    ends_at: AwareDatetime | None = None
    url: str | None = Field(default=None, max_length=4096)
    facts: dict[str, str | int | float | bool | None] = Field(default_factory=dict, max_length=MAX_LABELS)


class GenericIn(BaseModel):
    """Alerts from any monitoring system: {source, alerts: [...]} (docs/alerts.md)."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", description="the sending system, e.g. zabbix")
    alerts: list[GenericAlertIn] = Field(max_length=MAX_ALERTS)


# -- the answer ------------------------------------------------------------------------------------------------


class AlertOutcomeOut(BaseModel):
    fingerprint: str
    outcome: str  # opened | attached | deduplicated | resolved | ignored | rejected
    incident: int | None = None
    rule: str | None = None
    reason: str | None = None
    warnings: list[str] = Field(default_factory=list)


class IntakeOut(BaseModel):
    source: str
    received: int
    opened: int
    attached: int
    deduplicated: int
    resolved: int
    ignored: int
    rejected: int
    incidents: list[int]
    alerts: list[AlertOutcomeOut]


def intake_out(result: IntakeResult) -> IntakeOut:
    return IntakeOut(
        source=result.source,
        received=len(result.alerts),
        opened=result.count("opened"),
        attached=result.count("attached"),
        deduplicated=result.count("deduplicated"),
        resolved=result.count("resolved"),
        ignored=result.count("ignored"),
        rejected=result.count("rejected"),
        incidents=result.incidents,
        alerts=[
            AlertOutcomeOut(
                fingerprint=o.fingerprint,
                outcome=o.outcome,
                incident=o.incident,
                rule=o.rule,
                reason=o.reason,
                warnings=o.warnings,
            )
            for o in result.alerts
        ],
    )


# -- wiring ------------------------------------------------------------------------------------------------


def intake(request: Request) -> AlertIntake:
    """The intake service of this application, built on first use (the rules load then, and on change)."""
    found = getattr(request.app.state, "alert_intake", None)
    if found is None:
        with _LOCK:
            found = getattr(request.app.state, "alert_intake", None)
            if found is None:
                core = request.app.state.core
                found = AlertIntake(
                    uow=core.db.uow,
                    ledger=ledger_of,
                    clock=core.clock,
                    playbooks=core.library,
                    rules=RulesFile(core.settings.alert_rules, playbooks=core.library),
                    after_commit=core.handlers.after_commit,  # the same hooks as every command's
                    races=is_race,
                    release=lambda: release_thread_connection(core.db),
                )
                request.app.state.alert_intake = found
    assert isinstance(found, AlertIntake)
    return found


def _instant(value: datetime | None) -> datetime | None:
    """UTC; Alertmanager's zero time (0001-01-01, "not ended") is no instant at all."""
    if value is None or value.year < 1971:
        return None
    return value.astimezone(UTC)


def _fingerprint(labels: dict[str, str]) -> str:
    raw = json.dumps(sorted(labels.items()), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


# -- routes ------------------------------------------------------------------------------------------------


def _parse(model: type[Body], raw: bytes) -> Body:
    """The body checked against its model, straight from the JSON bytes; a mistake is a 422 naming the field."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_context=False)) from None


def _answer(result: IntakeResult) -> Response:
    return Response(intake_out(result).model_dump_json(), status_code=202, media_type="application/json")


def _from_alertmanager(raw: bytes, principal: Principal, request: Request) -> Response:
    body = _parse(AlertmanagerIn, raw)
    alerts = [
        Alert(
            fingerprint=a.fingerprint or _fingerprint(a.labels),
            status=a.status,
            labels=a.labels,
            annotations=a.annotations,
            starts_at=_instant(a.starts_at),
            ends_at=_instant(a.ends_at),
            url=a.generator_url or None,
        )
        for a in body.alerts
    ]
    found = intake(request)
    return _answer(found.receive(actor=principal.actor, source="alertmanager", alerts=alerts, receiver=body.receiver))


def _from_generic(raw: bytes, principal: Principal, request: Request) -> Response:
    body = _parse(GenericIn, raw)
    alerts = []
    for a in body.alerts:
        annotations = dict(a.annotations)
        if a.title and "title" not in annotations:
            annotations["title"] = a.title
        alerts.append(
            Alert(
                fingerprint=a.fingerprint or _fingerprint(a.labels),
                status=a.status,
                labels=a.labels,
                annotations=annotations,
                starts_at=_instant(a.starts_at),
                ends_at=_instant(a.ends_at),
                url=a.url or None,
                facts={k: v for k, v in a.facts.items() if v is not None},
            )
        )
    return _answer(intake(request).receive(actor=principal.actor, source=body.source, alerts=alerts))


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON Schema with its $defs written in place (a request body schema in the OpenAPI document)."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def _body_doc(model: type[BaseModel]) -> dict[str, Any]:
    schema = _inline(model.model_json_schema(by_alias=True))
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


# The bodies are read here and checked, taken in and answered in one worker thread: the event loop only
# moves bytes (a webhook of 20 alerts costs it no JSON work), and the answer needs no second hop.


@router.post("/alerts/alertmanager", status_code=202, response_model=IntakeOut, openapi_extra=_body_doc(AlertmanagerIn))
async def alertmanager(principal: Caller, request: Request) -> Response:
    """Prometheus Alertmanager's webhook (version 4): point a webhook receiver here with a bearer token."""
    raw = await request.body()
    return await run_in_threadpool(_from_alertmanager, raw, principal, request)


@router.post("/alerts", status_code=202, response_model=IntakeOut, openapi_extra=_body_doc(GenericIn))
async def generic(principal: Caller, request: Request) -> Response:
    """Alerts in the generic form: {source, alerts: [{fingerprint, status, title, labels, annotations,
    starts_at, ends_at, url, facts}]}."""
    raw = await request.body()
    return await run_in_threadpool(_from_generic, raw, principal, request)


@router.get("/alerts")
def alerts_seen(
    principal: Caller,
    core: Core,
    incident: Annotated[int | None, Query(ge=1, le=INT32, description="only alerts of this incident")] = None,
    status: Annotated[Status | None, Query(description="firing or resolved")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=INT32)] = 0,
) -> dict[str, Any]:
    """The alerts taken in (one row per fingerprint), most recently seen first."""
    authorize(principal.actor, "incident.read")
    with core.db.connection() as conn:
        rows, total = list_alerts(conn, incident_id=incident, status=status, limit=limit, offset=offset)
    items = [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()} for r in rows]
    more = offset + len(items) < total
    return {
        "items": items,
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if more else None,
    }
