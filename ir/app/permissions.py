"""Who may do what: system roles gate actions, checked once here for the CLI, the API and the console.

The full matrix (and per-incident playbook-role assignments gating steps) is documented in
docs/permissions.md.
"""

from __future__ import annotations

from ir.domain.commands import Actor
from ir.domain.errors import NotPermitted

# action -> system roles allowed ("admin" may do everything)
MATRIX: dict[str, frozenset[str]] = {
    "incident.open": frozenset({"commander"}),
    "incident.restore": frozenset({"commander"}),
    "incident.close": frozenset({"commander"}),
    "level.declare": frozenset({"commander"}),
    "clock.record": frozenset({"commander", "responder"}),
    "fact.set": frozenset({"commander", "responder"}),
    "note.add": frozenset({"commander", "responder", "communications"}),
    "notification.mark_sent": frozenset({"commander", "communications"}),
    "step.start": frozenset({"commander", "responder", "communications"}),
    "step.complete": frozenset({"commander", "responder", "communications"}),
    "step.skip": frozenset({"commander"}),
    "step.fail": frozenset({"commander", "responder", "communications"}),
    "step.retry": frozenset({"commander"}),
    "step.approve": frozenset({"commander"}),
    "step.check": frozenset({"commander", "responder", "communications"}),
    "step.confirm_action": frozenset({"commander"}),
    "step.evidence": frozenset({"commander", "responder", "communications"}),
    "step.action_result": frozenset(),  # machines only (system:action acts as admin)
    "personal.reveal": frozenset({"commander", "auditor"}),
    "personal.shred": frozenset(),  # administrators only
    "warning.issue": frozenset({"commander"}),
    "warning.lift": frozenset({"commander"}),
    "incident.end_response": frozenset({"commander"}),
    "incident.cancel": frozenset({"commander"}),
    "incident.reopen": frozenset({"commander"}),
    "incident.handover": frozenset({"commander"}),
    "incident.impact": frozenset({"commander", "communications"}),
    "incident.link": frozenset({"commander"}),
    "incident.add_playbook": frozenset({"commander"}),
    "people.assign": frozenset({"commander"}),
    "log.add": frozenset({"commander", "responder", "communications"}),
    "sitrep.draft": frozenset({"commander", "communications"}),
    "sitrep.edit": frozenset({"commander", "communications"}),
    "sitrep.release": frozenset({"commander"}),
    "resource.request": frozenset({"commander", "responder"}),
    "resource.allocate": frozenset({"commander"}),
    "resource.move": frozenset({"commander", "responder"}),
    "report.draft": frozenset({"commander", "communications", "auditor"}),
    "report.judge": frozenset({"commander"}),
    "report.submit": frozenset({"commander", "communications"}),
    "status.publish": frozenset({"commander", "communications"}),  # the public status page and its CAP alerts
    "alert.intake": frozenset({"commander"}),  # a machine user sending alerts (opens incidents in triage)
    "incident.read": frozenset({"commander", "responder", "communications", "observer", "auditor"}),
}


def authorize(actor: Actor, action: str) -> None:
    if "admin" in actor.roles:
        return
    allowed = MATRIX.get(action)
    if allowed is None or not (allowed & actor.roles):
        raise NotPermitted(f"{actor.id} may not {action.replace('.', ' ').replace('_', ' ')}")
