"""An incident's folded state as plain JSON values, so loading need not re-fold a long stream."""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta as _td
from typing import Any

from ir.domain.clocks import ClockName
from ir.domain.durations import Duration
from ir.domain.emergency import (
    Assignment,
    Emergency,
    Handover,
    LogEntry,
    RequestState,
    Sitrep,
    UnitMovement,
)
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
from ir.domain.levels import ResponseLevel, WarningLevel
from ir.domain.obligations import Judgement, Submission
from ir.domain.personal import from_json, to_json
from ir.domain.playbook import Playbook

FORMAT = 3


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
        "emergency": _emergency_out(inc.emergency),
        "regulatory": {
            "judgements": {
                r: [j.reportable, _dt(j.instant), j.reason, j.actor, _dt(j.at)]
                for r, j in inc.regulatory.judgements.items()
            },
            "submissions": [
                [
                    regime,
                    ob,
                    [
                        [_dt(s.at), s.actor, s.reference, s.document_sha256, s.document_name, s.late_reason, s.partial]
                        for s in subs
                    ],
                ]
                for (regime, ob), subs in inc.regulatory.submissions.items()
            ],
        },
    }


def _emergency_out(em: Emergency) -> dict[str, Any]:
    return {
        "warning": em.warning.value if em.warning else None,
        "warning_history": [[_dt(at), lv.value if lv else None, why, who] for at, lv, why, who in em.warning_history],
        "commander": em.commander,
        "handovers": [[_dt(h.at), h.previous, h.to, h.note, h.situation] for h in em.handovers],
        "assignments": [
            [a.role, a.user, _dt(a.since), a.by, _dt(a.shift_start), _dt(a.shift_end), _dt(a.ended)]
            for a in em.assignments
        ],
        "log": [[e.category, to_json(e.text), _dt(e.at), e.actor, e.source] for e in em.log],
        "sitreps": [
            [r.number, _dt(r.drafted_at), r.drafted_by, r.facts, r.text, _dt(r.released_at), r.edits]
            for r in em.sitreps
        ],
        "requests": [
            {
                "id": r.id,
                "resource": r.resource,
                "quantity": r.quantity,
                "destination": r.destination,
                "requested_at": _dt(r.requested_at),
                "requested_by": r.requested_by,
                "needed_by": _dt(r.needed_by),
                "step": r.step,
                "cancelled": r.cancelled,
                "units": {
                    u: [m.capacity, _dt(m.allocated_at), _dt(m.dispatched_at), _dt(m.arrived_at), _dt(m.returned_at)]
                    for u, m in r.units.items()
                },
            }
            for r in em.requests.values()
        ],
        "services": em.services,
        "areas": em.areas,
        "parent": em.parent,
        "children": em.children,
        "joined": [list(j) for j in em.joined],
        "cancelled": em.cancelled,
    }


def _emergency_in(d: dict[str, Any]) -> Emergency:
    em = Emergency()
    em.warning = WarningLevel(d["warning"]) if d["warning"] else None
    em.warning_history = [
        (_rdt(at), WarningLevel(lv) if lv else None, why, who) for at, lv, why, who in d["warning_history"]
    ]
    em.commander = d["commander"]
    em.handovers = [Handover(_rdt(at), prev, to, note, sit) for at, prev, to, note, sit in d["handovers"]]
    em.assignments = [
        Assignment(role, user, _rdt(since), by, _pdt(start), _pdt(end), _pdt(ended))
        for role, user, since, by, start, end, ended in d["assignments"]
    ]
    em.log = [LogEntry(cat, from_json(text), _rdt(at), actor, src) for cat, text, at, actor, src in d["log"]]
    em.sitreps = [
        Sitrep(n, _rdt(at), by, facts, text, _pdt(rel), edits) for n, at, by, facts, text, rel, edits in d["sitreps"]
    ]
    for r in d["requests"]:
        state = RequestState(
            r["id"],
            r["resource"],
            r["quantity"],
            r["destination"],
            _rdt(r["requested_at"]),
            r["requested_by"],
            _pdt(r["needed_by"]),
            r["step"],
            cancelled=r["cancelled"],
        )
        for unit, (cap, alloc, disp, arr, ret) in r["units"].items():
            state.units[unit] = UnitMovement(cap, _rdt(alloc), _pdt(disp), _pdt(arr), _pdt(ret))
        em.requests[state.id] = state
    em.services = list(d["services"])
    em.areas = list(d["areas"])
    em.parent = d["parent"]
    em.children = list(d["children"])
    em.joined = [(pid, digest) for pid, digest in d["joined"]]
    em.cancelled = d["cancelled"]
    return em


def joined_playbooks(data: dict[str, Any]) -> list[str]:
    """The content hashes of the playbooks a snapshot's incident joined, in order."""
    return [digest for _pid, digest in data.get("emergency", {}).get("joined", [])]


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
    inc.emergency = _emergency_in(data["emergency"])
    reg = data["regulatory"]
    inc.regulatory.judgements = {
        r: Judgement(rep, _rdt(instant), reason, actor, _rdt(at))
        for r, (rep, instant, reason, actor, at) in reg["judgements"].items()
    }
    inc.regulatory.submissions = {
        (regime, ob): [
            Submission(_rdt(at), actor, ref, sha, name, late, partial)
            for at, actor, ref, sha, name, late, partial in subs
        ]
        for regime, ob, subs in reg["submissions"]
    }
    return inc
