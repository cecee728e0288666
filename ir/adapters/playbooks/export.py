"""A compiled playbook back in the file's shape (for round trips, exports and the API)."""

from __future__ import annotations

from typing import Any

from ir.domain.levels import LEVEL_ORDER, WARNING_ORDER
from ir.domain.playbook import Due, Playbook, Step
from ir.domain.text import Text


def _text(t: Text) -> dict[str, str]:
    return {"zh-CN": t.zh_cn, "en": t.en}


def _due(d: Due) -> str:
    return str(d)


def playbook_document(pb: Playbook) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": pb.id,
        "version": pb.version,
        "title": _text(pb.title),
        "category": pb.category.value,
        "type": pb.type,
        "owner": pb.owner,
        "approval": {"status": pb.approval.status.value},
    }
    if pb.approval.approved_by is not None:
        doc["approval"]["by"] = pb.approval.approved_by
    if pb.approval.approved_on is not None:
        doc["approval"]["on"] = pb.approval.approved_on
    if pb.review_by is not None:
        doc["review_by"] = pb.review_by
    if pb.scope is not None:
        doc["scope"] = _text(pb.scope)
    if pb.references:
        doc["references"] = [
            {k: v for k, v in (("document", r.document), ("clause", r.clause), ("regime", r.regime)) if v is not None}
            for r in pb.references
        ]
    if pb.regimes:
        doc["regimes"] = list(pb.regimes)
    doc["calendar"] = {"country": pb.calendar.country, "zone": pb.calendar.zone}
    doc["roles"] = [
        {
            "id": r.id,
            "title": _text(r.title),
            **({"description": _text(r.description)} if r.description else {}),
        }
        for r in pb.roles.values()
    ]
    doc["facts"] = []
    for f in pb.facts.values():
        fact: dict[str, Any] = {"name": f.name, "type": f.kind.value, "title": _text(f.title)}
        if f.unit is not None:
            fact["unit"] = f.unit
        if f.description is not None:
            fact["description"] = _text(f.description)
        if f.values:
            fact["values"] = list(f.values)
        if f.personal:
            fact["personal"] = True
        doc["facts"].append(fact)
    doc["levels"] = {}
    for lv in LEVEL_ORDER:
        spec = pb.levels[lv]
        level: dict[str, Any] = {
            "criteria": spec.criteria.source,
            "declared_by": spec.declared_by,
            "rto": str(spec.rto),
            "rpo": str(spec.rpo),
            "mtpd": str(spec.mtpd),
        }
        if spec.escalate_to is not None:
            level["escalate_to"] = spec.escalate_to
        if spec.description is not None:
            level["description"] = _text(spec.description)
        doc["levels"][lv.value] = level
    if pb.warnings:
        doc["warnings"] = {}
        for wl in WARNING_ORDER:
            if wl in pb.warnings:
                w = pb.warnings[wl]
                warning: dict[str, Any] = {"criteria": w.criteria.source, "declared_by": w.declared_by}
                if w.description is not None:
                    warning["description"] = _text(w.description)
                doc["warnings"][wl.value] = warning
    if pb.resources:
        doc["resources"] = [
            {"kind": r.kind, "title": _text(r.title), "unit": _text(r.unit)} for r in pb.resources.values()
        ]
    doc["steps"] = [_step(s) for s in pb.steps.values()]
    if pb.notifications:
        doc["notifications"] = []
        for n in pb.notifications.values():
            note: dict[str, Any] = {
                "id": n.id,
                "title": _text(n.title),
                "audience": n.audience.value,
                "channels": [c.value for c in n.channels],
                "template": n.template,
            }
            if n.roles:
                note["roles"] = list(n.roles)
            if n.groups:
                note["groups"] = list(n.groups)
            if n.levels:
                note["levels"] = [lv.value for lv in LEVEL_ORDER if lv in n.levels]
            if n.warnings:
                note["warnings"] = [w.value for w in WARNING_ORDER if w in n.warnings]
            if None in n.due:
                note["due"] = _due(n.due[None])
            else:
                note["due"] = {k.value: _due(v) for k, v in n.due.items() if k is not None}
            if n.repeat is not None:
                note["repeat"] = str(n.repeat)
            if n.regime is not None:
                note["regime"] = n.regime
            if n.critical:
                note["critical"] = True
            if n.when is not None:
                note["when"] = n.when.source
            doc["notifications"].append(note)
    doc["restoration"] = {kind.value: _text(t) for kind, t in pb.restoration.items()}
    if pb.sitrep_interval:
        if None in pb.sitrep_interval:
            doc["sitrep"] = str(pb.sitrep_interval[None])
        else:
            doc["sitrep"] = {k.value: str(v) for k, v in pb.sitrep_interval.items() if k is not None}
    return doc


def _step(s: Step) -> dict[str, Any]:
    step: dict[str, Any] = {
        "id": s.id,
        "title": _text(s.title),
        "instructions": _text(s.instructions),
        "role": s.role,
    }
    if s.depends_on:
        step["depends_on"] = list(s.depends_on)
    if s.levels:
        step["levels"] = [lv.value for lv in LEVEL_ORDER if lv in s.levels]
    if s.warnings:
        step["warnings"] = [w.value for w in WARNING_ORDER if w in s.warnings]
    if s.due is not None:
        step["due"] = _due(s.due)
    if s.checklist:
        step["checklist"] = [_text(t) for t in s.checklist]
    if s.evidence_required or s.evidence_hint is not None:
        evidence: dict[str, Any] = {"required": s.evidence_required}
        if s.evidence_hint is not None:
            evidence["description"] = _text(s.evidence_hint)
        step["evidence"] = evidence
    if s.approvals:
        step["approvals"] = list(s.approvals)
    if s.when is not None:
        step["when"] = s.when.source
    if s.action is not None:
        a = s.action
        action: dict[str, Any] = {
            "method": a.method,
            "url": a.url,
            "timeout": f"{int(a.timeout_seconds)}s",
            "retries": a.retries,
            "confirm": a.confirm,
            "expect_status": list(a.expect_status),
        }
        if a.headers:
            action["headers"] = dict(a.headers)
        if a.body is not None:
            action["body"] = a.body
        if a.secret is not None:
            action["secret"] = a.secret
        step["action"] = action
    if s.requests:
        step["requests"] = [
            {
                "kind": r.kind,
                "quantity": r.quantity,
                **({"needed_by": _due(r.needed_by)} if r.needed_by else {}),
            }
            for r in s.requests
        ]
    if s.kind.value != "task":
        step["kind"] = s.kind.value
    if s.restores is not None:
        step["restores"] = s.restores.value
    return step
