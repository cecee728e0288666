"""An incident's folded state as plain JSON values, so loading need not re-fold a long stream."""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta as _td
from typing import Any

from ir.domain.clocks import ClockName
from ir.domain.durations import Duration
from ir.domain.incident import (
    Approval,
    ClockReading,
    Evidence,
    Incident,
    Mode,
    Note,
    StepProgress,
    StepStatus,
)
from ir.domain.levels import ResponseLevel
from ir.domain.personal import from_json, to_json
from ir.domain.playbook import Playbook

FORMAT = 1


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _pdt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _rdt(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("a snapshot lacks a required instant")
    return datetime.fromisoformat(value)


def _fact_out(value: Any) -> Any:
    if isinstance(value, _td):
        return {"$duration": str(Duration.of(value))}
    return to_json(value)


def _fact_in(value: Any) -> Any:
    if isinstance(value, dict) and "$duration" in value:
        from ir.domain.durations import parse_duration

        return _td(seconds=parse_duration(value["$duration"]).seconds)
    return from_json(value)


def to_snapshot(inc: Incident) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "playbook_hash": inc.playbook.content_hash,
        "title": inc.title,
        "mode": inc.mode.value,
        "version": inc.version,
        "opened_at": _dt(inc.opened_at),
        "opened_by": inc.opened_by,
        "simulated_start": _dt(inc.simulated_start),
        "real_start": _dt(inc.real_start),
        "speed": inc.speed,
        "level": inc.level.value if inc.level else None,
        "level_history": [[_dt(at), lv.value, reason, actor] for at, lv, reason, actor in inc.level_history],
        "facts": {k: _fact_out(v) for k, v in inc.facts.items()},
        "clocks": {
            name.value: [_dt(r.instant), _dt(r.recorded_at), r.actor, r.reason, r.corrections]
            for name, r in inc.clocks.items()
        },
        "steps": {
            sid: {
                "status": p.status.value,
                "assignee": p.assignee,
                "started_at": _dt(p.started_at),
                "finished_at": _dt(p.finished_at),
                "reason": p.reason,
                "note": p.note,
                "attempts": p.attempts,
                "approvals": [[a.role, a.actor, _dt(a.at), a.note] for a in p.approvals],
                "checked": sorted(p.checked),
                "evidence": [
                    [e.sha256, e.filename, e.size, e.media_type, _dt(e.at), e.actor, e.source] for e in p.evidence
                ],
                "action_confirmed": p.action_confirmed,
                "action_status": p.action_status,
            }
            for sid, p in inc.steps.items()
        },
        "notes": [[to_json(n.text), _dt(n.at), n.actor, n.step] for n in inc.notes],
        "notifications_sent": {k: [_dt(t) for t in v] for k, v in inc.notifications_sent.items()},
        "closed": inc.closed,
        "updated_at": _dt(inc.updated_at),
    }


def from_snapshot(incident_id: int, playbook: Playbook, data: dict[str, Any]) -> Incident:
    if data.get("format") != FORMAT:
        raise ValueError("unknown snapshot format")
    inc = Incident(id=incident_id, playbook=playbook)
    inc.title = data["title"]
    inc.mode = Mode(data["mode"])
    inc.version = data["version"]
    inc.opened_at = _pdt(data["opened_at"])
    inc.opened_by = data["opened_by"]
    inc.simulated_start = _pdt(data["simulated_start"])
    inc.real_start = _pdt(data["real_start"])
    inc.speed = data["speed"]
    inc.level = ResponseLevel(data["level"]) if data["level"] else None
    inc.level_history = [
        (_rdt(at), ResponseLevel(lv), reason, actor) for at, lv, reason, actor in data["level_history"]
    ]
    inc.facts = {k: _fact_in(v) for k, v in data["facts"].items()}
    inc.clocks = {
        ClockName(name): ClockReading(_rdt(i), _rdt(r), actor, reason, corrections)
        for name, (i, r, actor, reason, corrections) in data["clocks"].items()
    }
    for sid, p in data["steps"].items():
        inc.steps[sid] = StepProgress(
            status=StepStatus(p["status"]),
            assignee=p["assignee"],
            started_at=_pdt(p["started_at"]),
            finished_at=_pdt(p["finished_at"]),
            reason=p["reason"],
            note=p["note"],
            attempts=p["attempts"],
            approvals=[Approval(role, actor, _rdt(at), note) for role, actor, at, note in p["approvals"]],
            checked=set(p["checked"]),
            evidence=[
                Evidence(sha, name, size, media, _rdt(at), actor, source)
                for sha, name, size, media, at, actor, source in p["evidence"]
            ],
            action_confirmed=p["action_confirmed"],
            action_status=p["action_status"],
        )
    inc.notes = [Note(from_json(text), _rdt(at), actor, step) for text, at, actor, step in data["notes"]]
    inc.notifications_sent = {k: [_rdt(t) for t in v] for k, v in data["notifications_sent"].items()}
    inc.closed = data["closed"]
    inc.updated_at = _pdt(data["updated_at"])
    return inc
