"""What people see of an incident (the status board, the timeline), as JSON-ready data.

The command line, the API and the console render these same views.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ir.app.ports import StoredEvent
from ir.domain.clocks import ClockName
from ir.domain.deadlines import CalendarFor, DeadlineState, due_list, recovery_clocks
from ir.domain.decisions import classify, remaining_approvals
from ir.domain.events import event_to_dict
from ir.domain.incident import Incident
from ir.domain.personal import from_json, masked
from ir.domain.text import Lang


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _secs(value: timedelta | None) -> int | None:
    return int(value.total_seconds()) if value is not None else None


def _fact(value: Any) -> Any:
    if isinstance(value, timedelta):
        return f"{int(value.total_seconds())}s"
    return masked(value)


def board(inc: Incident, now: datetime, *, lang: Lang, calendar_for: CalendarFor | None) -> dict[str, Any]:
    pb = inc.playbook
    statuses = inc.statuses()
    items = due_list(inc, now, calendar_for=calendar_for)
    due_by_ref = {i.deadline.ref: i for i in items}
    steps = []
    for step in pb.steps_in_order():
        status = statuses[step.id]
        prog = inc.steps.get(step.id)
        item = due_by_ref.get(f"step:{step.id}")
        steps.append(
            {
                "id": step.id,
                "title": step.title.get(lang),
                "role": step.role,
                "role_title": pb.roles[step.role].title.get(lang),
                "status": status.value,
                "assignee": prog.assignee if prog else None,
                "due_at": _iso(item.deadline.due_at) if item else None,
                "deadline": item.state.value if item else None,
                "late_by_s": _secs(item.late_by) if item else None,
                "left_s": _secs(item.left) if item else None,
                "waiting_on": inc.waiting_on(step.id) if status.value == "pending" else [],
                "approvals_waiting": remaining_approvals(inc, step) if step.approvals else [],
                "checklist": [
                    {"text": t.get(lang), "checked": bool(prog and i in prog.checked)}
                    for i, t in enumerate(step.checklist)
                ],
                "evidence": [
                    {"sha256": e.sha256, "filename": e.filename, "size": e.size}
                    for e in (prog.evidence if prog else [])
                ],
                "evidence_required": step.evidence_required,
                "reason": prog.reason if prog else None,
                "kind": step.kind.value,
            }
        )
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status.value] = counts.get(status.value, 0) + 1
    recovery = [
        {
            "name": c.name,
            "target_s": _secs(c.target),
            "due_at": _iso(c.due_at),
            "actual_s": _secs(c.actual),
            "met": c.met,
            "left_s": _secs(c.left),
            "breached": c.breached,
        }
        for c in recovery_clocks(inc, now)
    ]
    guess = classify(inc)
    return {
        "id": inc.id,
        "title": inc.title,
        "playbook": {
            "id": pb.id,
            "version": pb.version,
            "hash": pb.content_hash,
            "title": pb.title.get(lang),
        },
        "mode": inc.mode.value,
        "version": inc.version,
        "now": now.isoformat(),
        "level": inc.level.value if inc.level else None,
        "level_label": inc.level.label.get(lang) if inc.level else None,
        "closed": inc.closed,
        "opened_at": _iso(inc.opened_at),
        "simulated": inc.simulated_start is not None,
        "facts": {k: _fact(v) for k, v in inc.facts.items()},
        "clocks": {name.value: _iso(r.instant) for name, r in inc.clocks.items()},
        "recovery": recovery,
        "steps": steps,
        "step_counts": counts,
        "deadlines": [
            {
                "ref": i.deadline.ref,
                "kind": i.deadline.kind,
                "title": i.deadline.title.get(lang),
                "role": i.deadline.role,
                "due_at": _iso(i.deadline.due_at),
                "done_at": _iso(i.deadline.done_at),
                "state": i.state.value,
                "late_by_s": _secs(i.late_by),
                "left_s": _secs(i.left),
            }
            for i in items
            if i.state is not DeadlineState.MET or i.deadline.kind != "step"
        ],
        "warning": inc.warning.value if inc.warning else None,
        "warning_label": inc.warning.label.get(lang) if inc.warning else None,
        "cancelled": inc.emergency.cancelled,
        "response_ended": _iso(inc.clock(ClockName.RESPONSE_END)),
        "commander": inc.emergency.commander,
        "on_duty": {role: inc.emergency.on_duty(role, now) for role in pb.roles if inc.emergency.on_duty(role, now)},
        "handovers": [
            {"at": _iso(h.at), "from": h.previous, "to": h.to, "note": h.note} for h in inc.emergency.handovers
        ],
        "resources": [
            {
                "request": r.id,
                "resource": r.resource,
                "title": pb.resources[r.resource].title.get(lang) if r.resource in pb.resources else r.resource,
                "quantity": r.quantity,
                "destination": r.destination,
                "needed_by": _iso(r.needed_by),
                "allocated": r.allocated,
                "shortfall": r.shortfall,
                "cancelled": r.cancelled,
                "units": {u: m.stage for u, m in r.units.items()},
            }
            for r in inc.emergency.requests.values()
        ],
        "log": [
            {"at": _iso(e.at), "category": e.category, "text": masked(e.text), "actor": e.actor, "source": e.source}
            for e in inc.emergency.log[-20:]
        ],
        "log_entries": len(inc.emergency.log),
        "sitreps": [
            {
                "number": r.number,
                "drafted_at": _iso(r.drafted_at),
                "released_at": _iso(r.released_at),
                "text": r.text.get(lang, ""),
            }
            for r in inc.emergency.sitreps
        ],
        "services": list(inc.emergency.services),
        "areas": list(inc.emergency.areas),
        "parent": inc.emergency.parent,
        "children": list(inc.emergency.children),
        "joined_playbooks": [pid for pid, _ in inc.emergency.joined],
        "suggested_level": guess.suggested.value if guess.suggested else None,
        "missing_facts": sorted(guess.missing),
        "notes": len(inc.notes),
    }


def timeline(events: list[StoredEvent]) -> list[dict[str, Any]]:
    out = []
    for stored in events:
        payload = masked(from_json(event_to_dict(stored.event)))
        at = payload.pop("at")
        actor = payload.pop("actor")
        out.append({"seq": stored.seq, "at": at, "actor": actor, "kind": stored.event.kind, "data": payload})
    return out
