"""The console's forms (POST): each builds the command the command line and the API build and hands it to
the same handlers (permissions are checked there), then redirects back to the page (POST/redirect/GET) with
a one-line message — the outcome, or the domain's refusal — next to the form that was sent."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from ir.app.handlers import MAX_EVIDENCE
from ir.app.signin import Principal
from ir.domain import commands as c
from ir.domain.errors import IrError
from ir.domain.text import Lang
from ir.entrypoints.http.auth import core
from ir.entrypoints.web.errors import ConsoleInputError, error_line
from ir.entrypoints.web.i18n import translate
from ir.entrypoints.web.session import Flash, check_csrf, flash, language, require_user

log = logging.getLogger("ir.console")
router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class Sent:
    """One form as sent: who, about which incident, in which language and zone."""

    form: FormData
    actor: c.Actor
    incident_id: int
    lang: Lang
    zone: str

    def text(self, name: str) -> str:
        value = self.form.get(name)
        return value.replace("\r\n", "\n").strip() if isinstance(value, str) else ""

    def optional(self, name: str) -> str | None:
        return self.text(name) or None

    def required(self, name: str, label: str) -> str:
        value = self.text(name)
        if not value:
            raise ConsoleInputError(translate(self.lang, "error.required", what=translate(self.lang, label)))
        return value

    def number(self, name: str, label: str, *, required: bool = True) -> int | None:
        value = self.text(name)
        if not value and not required:
            return None
        try:
            return int(value.replace(",", ""))
        except ValueError:
            raise ConsoleInputError(
                translate(self.lang, "error.bad_number", what=translate(self.lang, label))
            ) from None

    def instant(self, name: str, label: str) -> datetime | None:
        """A time typed in a datetime-local field: in the deployment's zone unless it names its own."""
        value = self.text(name)
        if not value:
            return None
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ConsoleInputError(
                translate(self.lang, "error.bad_instant", what=translate(self.lang, label), zone=self.zone)
            ) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(self.zone))


# -- building the commands ------------------------------------------------------------------------------


def _facts(s: Sent) -> c.Command:
    """Only the facts changed in the form: each field is compared with the value it was loaded with, so a
    fact someone else set meanwhile is not overwritten by the stale value still showing in this form."""
    changed: dict[str, object] = {}
    for key, value in s.form.multi_items():
        if not key.startswith("fact:") or not isinstance(value, str):
            continue
        name = key[5:]
        now = value.strip()
        if now != s.text(f"was:{name}"):
            changed[name] = now
    if not changed:
        raise ConsoleInputError(translate(s.lang, "error.no_fact_changed"))
    return c.SetFacts(actor=s.actor, incident_id=s.incident_id, facts=changed, reason=s.optional("reason"))


def _warning(s: Sent) -> c.Command:
    level = s.required("level", "cmd.warning")
    if level == "lift":
        return c.LiftWarning(actor=s.actor, incident_id=s.incident_id, reason=s.optional("reason"))
    return c.IssueWarning(
        actor=s.actor,
        incident_id=s.incident_id,
        level=level,
        reason=s.optional("reason"),
        expected_impact=s.instant("impact", "cmd.impact_at"),
    )


def _unit_number(s: Sent, name: str, label: str) -> int:
    value = s.number(name, label)
    assert value is not None
    return value


Builder = Callable[[Sent], c.Command]

# action -> (how the command is built, the section the answer is shown in)
INCIDENT_ACTS: dict[str, tuple[Builder, str]] = {
    "facts": (_facts, "facts"),
    "level": (
        lambda s: c.DeclareLevel(
            actor=s.actor,
            incident_id=s.incident_id,
            level=s.required("level", "cmd.level"),
            reason=s.optional("reason"),
        ),
        "command",
    ),
    "warning": (_warning, "command"),
    "restore": (
        lambda s: c.Restore(
            actor=s.actor,
            incident_id=s.incident_id,
            degraded=s.text("restoration") == "degraded",
            reason=s.optional("reason"),
        ),
        "command",
    ),
    "end-response": (
        lambda s: c.EndResponse(actor=s.actor, incident_id=s.incident_id, reason=s.optional("reason")),
        "command",
    ),
    "close": (
        lambda s: c.CloseIncident(actor=s.actor, incident_id=s.incident_id, reason=s.optional("reason")),
        "command",
    ),
    "clock": (
        lambda s: c.RecordClock(
            actor=s.actor,
            incident_id=s.incident_id,
            clock=s.required("clock", "clock.name"),
            instant=s.instant("at", "clock.name"),
            reason=s.optional("reason"),
        ),
        "clocks",
    ),
    "assign": (
        lambda s: c.AssignRole(
            actor=s.actor,
            incident_id=s.incident_id,
            role=s.required("role", "people.role"),
            user=s.required("user", "people.user"),
        ),
        "people",
    ),
    "unassign": (
        lambda s: c.UnassignRole(
            actor=s.actor,
            incident_id=s.incident_id,
            role=s.required("role", "people.role"),
            user=s.required("user", "people.user"),
            reason=s.optional("reason"),
        ),
        "people",
    ),
    "handover": (
        lambda s: c.HandOver(
            actor=s.actor, incident_id=s.incident_id, to=s.required("to", "people.handover_to"), note=s.optional("note")
        ),
        "people",
    ),
    "log": (
        lambda s: c.AddLogEntry(
            actor=s.actor,
            incident_id=s.incident_id,
            category=s.required("category", "log.category"),
            text=s.required("text", "log.text"),
            source=s.optional("source"),
        ),
        "log",
    ),
    "sitrep-draft": (lambda s: c.DraftSitrep(actor=s.actor, incident_id=s.incident_id), "sitreps"),
    "sitrep-edit": (
        lambda s: c.EditSitrep(
            actor=s.actor,
            incident_id=s.incident_id,
            number=_unit_number(s, "number", "section.sitreps"),
            text_zh=s.text("text_zh"),
            text_en=s.text("text_en"),
            expected_version=s.number("version", "section.sitreps", required=False),
        ),
        "sitreps",
    ),
    "sitrep-release": (
        lambda s: c.ReleaseSitrep(
            actor=s.actor, incident_id=s.incident_id, number=_unit_number(s, "number", "section.sitreps")
        ),
        "sitreps",
    ),
    "link": (
        lambda s: c.LinkIncidents(
            actor=s.actor, incident_id=s.incident_id, child=_unit_number(s, "child", "links.child")
        ),
        "links",
    ),
    "unlink": (
        lambda s: c.UnlinkIncidents(
            actor=s.actor, incident_id=s.incident_id, child=_unit_number(s, "child", "links.child")
        ),
        "links",
    ),
    "notified": (
        lambda s: c.MarkNotificationSent(
            actor=s.actor,
            incident_id=s.incident_id,
            notification_id=s.required("notification", "dl.kind.notification"),
            reference=s.optional("reference"),
        ),
        "deadlines",
    ),
    "resource-request": (
        lambda s: c.RequestResource(
            actor=s.actor,
            incident_id=s.incident_id,
            resource=s.required("resource", "res.kind"),
            quantity=s.number("quantity", "res.quantity"),
            destination=s.required("destination", "res.destination"),
        ),
        "resources",
    ),
    "resource-allocate": (
        lambda s: c.AllocateResource(
            actor=s.actor, incident_id=s.incident_id, request=s.required("request", "res.kind")
        ),
        "resources",
    ),
    "resource-move": (
        lambda s: c.MoveResource(
            actor=s.actor,
            incident_id=s.incident_id,
            request=s.required("request", "res.kind"),
            stage=s.required("stage", "res.stage"),
        ),
        "resources",
    ),
}


def _step(s: Sent, step_id: str, act: str) -> c.Command:
    a, i, note = s.actor, s.incident_id, s.optional("note")
    if act == "start":
        return c.StartStep(actor=a, incident_id=i, step_id=step_id, note=note, assignee=s.optional("assignee"))
    if act == "complete":
        return c.CompleteStep(actor=a, incident_id=i, step_id=step_id, note=note)
    if act == "skip":
        return c.SkipStep(actor=a, incident_id=i, step_id=step_id, note=s.optional("reason"))
    if act == "fail":
        return c.FailStep(actor=a, incident_id=i, step_id=step_id, note=s.optional("reason"))
    if act == "retry":
        return c.RetryStep(actor=a, incident_id=i, step_id=step_id, note=note)
    if act == "approve":
        return c.ApproveStep(actor=a, incident_id=i, step_id=step_id, note=note, role=s.optional("role"))
    if act == "confirm":
        return c.ConfirmAction(actor=a, incident_id=i, step_id=step_id)
    item = _unit_number(s, "item", "step.checklist")
    return c.CheckItem(actor=a, incident_id=i, step_id=step_id, item=item, checked=act == "check")


STEP_ACTS = ("start", "complete", "skip", "fail", "retry", "approve", "confirm", "check", "uncheck", "evidence")


# -- running them -----------------------------------------------------------------------------------------


async def _sent(request: Request, incident_id: int) -> tuple[Sent, Principal]:
    form = await request.form()
    user = await run_in_threadpool(require_user, request)
    check_csrf(form.get("csrf"), user)
    lang = language(request, user)[0]
    return Sent(form, user.actor, incident_id, lang, core(request).settings.timezone), user


async def _carry_out(
    request: Request, sent: Sent, build: Callable[[], c.Command], *, what: str, ok_at: str, error_at: str
) -> tuple[Flash, int | None]:
    """Build the command and hand it to the handlers: the message for the page, and the incident it acted on."""
    try:
        command = build()
        outcome = await request.app.state.writer.handle(command)
    except IrError as exc:
        return Flash("error", error_line(sent.lang, exc), error_at), None
    except Exception:  # a fault of ours: logged with its traceback, the user gets one line
        log.exception("console: %s on incident %s failed", what, sent.incident_id)
        return Flash("error", translate(sent.lang, "error.other", detail="internal error"), error_at), None
    text = translate(sent.lang, "flash.ok", what=translate(sent.lang, f"act.{what}"), version=outcome.version)
    return Flash("ok", text, ok_at), outcome.incident_id


def _back(request: Request, target: str, message: Flash) -> RedirectResponse:
    response = RedirectResponse(target, status_code=303)
    flash(request, response, [message])
    return response


@router.post("/incidents/{incident_id}/steps/{step_id}/{act}")
async def step_act(request: Request, incident_id: int, step_id: str, act: str) -> Response:
    sent, _user = await _sent(request, incident_id)
    anchor = f"step-{step_id}"
    if act not in STEP_ACTS:
        message = Flash("error", error_line(sent.lang, IrError(f"no step act '{act}'")), anchor)
        return _back(request, f"/incidents/{incident_id}#{anchor}", message)
    if act == "evidence":
        upload = sent.form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            message = Flash("error", translate(sent.lang, "error.no_file"), anchor)
            return _back(request, f"/incidents/{incident_id}#{anchor}", message)
        if upload.size is not None and upload.size > MAX_EVIDENCE:  # refused before it is read into memory
            too_big = translate(sent.lang, "error.too_big", mib=MAX_EVIDENCE // 2**20)
            return _back(request, f"/incidents/{incident_id}#{anchor}", Flash("error", too_big, anchor))
        content = await upload.read()
        filename = upload.filename.replace("\\", "/").rsplit("/", 1)[-1]
        media_type = upload.content_type or "application/octet-stream"

        def build() -> c.Command:
            return c.AttachEvidence(
                actor=sent.actor,
                incident_id=incident_id,
                step_id=step_id,
                filename=filename,
                content=content,
                media_type=media_type,
            )

    else:

        def build() -> c.Command:
            return _step(sent, step_id, act)

    # a step that changes state moves to another group: its outcome is told at the top of the steps;
    # a checked item or a file leaves it where it is: told in its card, like every refusal
    ok_at = anchor if act in ("check", "uncheck", "evidence") else "steps"
    message, _ = await _carry_out(request, sent, build, what=act, ok_at=ok_at, error_at=anchor)
    return _back(request, f"/incidents/{incident_id}#{message.where}", message)


@router.post("/incidents")
async def open_incident(request: Request) -> Response:
    sent, _user = await _sent(request, 0)
    app = core(request)

    def build() -> c.Command:
        playbook = sent.required("playbook", "dash.playbook")
        if playbook not in {p.id for p in app.library.playbooks()}:  # ids from the library only, never a path
            raise ConsoleInputError(translate(sent.lang, "error.unknown_playbook", id=playbook))
        return c.OpenIncident(
            actor=sent.actor,
            playbook=playbook,
            title=sent.required("title", "dash.incident_title"),
            mode=sent.text("mode") or "real",
            level=sent.optional("level"),
        )

    message, opened = await _carry_out(request, sent, build, what="open", ok_at="", error_at="new")
    return _back(request, f"/incidents/{opened}" if opened else "/#new", message)


@router.post("/incidents/{incident_id}/notifications/{message_id}/ack")
async def acknowledge(request: Request, incident_id: int, message_id: int) -> Response:
    """A recipient's acknowledgement given another way (a call back), recorded by a signed-in user."""
    sent, _user = await _sent(request, incident_id)
    where = "notifications"
    notify = core(request).notify
    try:
        if notify is None:
            raise IrError("notifications are not configured on this server")
        _row, changed = await run_in_threadpool(notify.acknowledge, sent.actor, incident_id, message_id)
    except IrError as exc:
        message = Flash("error", error_line(sent.lang, exc), where)
    else:
        message = Flash("ok", translate(sent.lang, "nt.ack_done" if changed else "nt.ack_again"), where)
    return _back(request, f"/incidents/{incident_id}#{where}", message)


@router.post("/incidents/{incident_id}/{action}")
async def incident_act(request: Request, incident_id: int, action: str) -> Response:
    sent, _user = await _sent(request, incident_id)
    found = INCIDENT_ACTS.get(action)
    if found is None:
        message = Flash("error", error_line(sent.lang, IrError(f"no such act '{action}'")), "")
        return _back(request, f"/incidents/{incident_id}", message)
    builder, where = found
    message, _ = await _carry_out(request, sent, lambda: builder(sent), what=action, ok_at=where, error_at=where)
    return _back(request, f"/incidents/{incident_id}#{where}", message)
