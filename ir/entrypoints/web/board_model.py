"""What the console's pages show, shaped for templates from the same views the CLI and the API render
(ir.app.views.board), plus the few things a form needs that the board leaves out (instructions, both
texts of a draft situation report, the facts' types)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ir.app.permissions import authorize
from ir.domain.clocks import CLOCK_LABELS, ClockName
from ir.domain.commands import Actor
from ir.domain.errors import NotPermitted
from ir.domain.incident import Incident
from ir.domain.levels import LEVEL_ORDER, WARNING_ORDER
from ir.domain.personal import Personal
from ir.domain.playbook import FactKind
from ir.domain.text import Lang

OPEN_STATES = ("failed", "in_progress", "ready", "pending")
FINISHED_STATES = ("done", "skipped", "not_applicable")
LOG_CATEGORIES = ("decision", "observation", "message")
STAGES = ("dispatched", "arrived", "returned")


def can(actor: Actor, action: str) -> bool:
    """Whether the user's system roles allow an action (to offer its button; the handler decides)."""
    try:
        authorize(actor, action)
    except NotPermitted:
        return False
    return True


def _group(steps: list[dict[str, Any]], states: tuple[str, ...]) -> list[dict[str, Any]]:
    groups = []
    for state in states:
        items = [s for s in steps if s["status"] == state]
        if not items:
            continue
        roles: dict[str, dict[str, Any]] = {}
        for s in items:
            roles.setdefault(s["role"], {"role": s["role"], "title": s["role_title"], "steps": []})["steps"].append(s)
        groups.append({"state": state, "count": len(items), "roles": list(roles.values())})
    return groups


def fact_text(value: Any) -> str:
    """A fact's value as it is typed back into the form."""
    if value is None or isinstance(value, Personal):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if seconds and seconds % size == 0:
                return f"{seconds // size}{unit}"
        return f"{seconds}s"
    return str(value)


def incident_page(inc: Incident, view: dict[str, Any], *, lang: Lang, actor: Actor) -> dict[str, Any]:
    """The incident board's context: the view plus what the forms need."""
    pb = inc.playbook
    titles = {s.id: s.title.get(lang) for s in pb.steps.values()}
    role_titles = {r.id: r.title.get(lang) for r in pb.roles.values()}
    steps = []
    for s in view["steps"]:
        step = pb.steps[s["id"]]
        prog = inc.steps.get(s["id"])
        confirm_pending = (
            step.action is not None
            and step.action.confirm
            and s["status"] == "in_progress"
            and not (prog and prog.action_confirmed)
        )
        steps.append(
            s
            | {
                "instructions": step.instructions.get(lang),
                "evidence_hint": step.evidence_hint.get(lang) if step.evidence_hint else None,
                "confirm_pending": confirm_pending,
                "approval_roles": sorted(set(s["approvals_waiting"])),
                "approvals_waiting_titles": [role_titles.get(r, r) for r in s["approvals_waiting"]],
                "waiting_on_titles": [titles.get(w, w) for w in s["waiting_on"]],
                "anchor": f"step-{s['id']}",
            }
        )
    facts = []
    for name, fact in pb.facts.items():
        current = inc.facts.get(name)
        facts.append(
            {
                "name": name,
                "title": fact.title.get(lang),
                "unit": fact.unit,
                "kind": fact.kind.value,
                "choices": list(fact.values),
                "personal": fact.personal,
                "is_set": current is not None,
                "shown": view["facts"].get(name),
                "text": fact_text(current),
                "boolean": fact.kind is FactKind.BOOLEAN,
                "enum": fact.kind is FactKind.ENUM,
                "numeric": fact.kind in (FactKind.INTEGER, FactKind.NUMBER),
            }
        )
    clocks = [
        {"name": name.value, "label": CLOCK_LABELS[name].get(lang), "at": view["clocks"].get(name.value)}
        for name in ClockName
    ]
    sitreps = []
    for report in inc.emergency.sitreps:
        sitreps.append(
            {
                "number": report.number,
                "drafted_at": report.drafted_at.isoformat(),
                "released_at": report.released_at.isoformat() if report.released_at else None,
                "text": report.text.get(lang, ""),
                "text_zh": report.text.get("zh-CN", ""),
                "text_en": report.text.get("en", ""),
            }
        )
    # steps' deadlines are shown on the steps, RTO and MTPD under recovery objectives
    deadlines = [d for d in view["deadlines"] if d["kind"] not in ("step", "rto", "mtpd") and d["state"] != "met"]
    return {
        "b": view,
        "steps": steps,
        "open_groups": _group(steps, OPEN_STATES),
        "finished_groups": _group(steps, FINISHED_STATES),
        "finished_count": sum(1 for s in steps if s["status"] in FINISHED_STATES),
        "facts": facts,
        "clocks": clocks,
        "recordable_clocks": [c for c in clocks if c["name"] != ClockName.CLOSURE.value],
        "levels": [(lv.value, lv.label.get(lang)) for lv in LEVEL_ORDER if lv in pb.levels],
        "warnings": [(w.value, w.label.get(lang)) for w in WARNING_ORDER if w in pb.warnings],
        "roles": [(r.id, r.title.get(lang)) for r in pb.roles.values()],
        "role_titles": role_titles,
        "missing_fact_titles": [
            pb.facts[name].title.get(lang) if name in pb.facts else name for name in view["missing_facts"]
        ],
        "resource_kinds": [(k.kind, k.title.get(lang)) for k in pb.resources.values()],
        "stages": STAGES,
        "log_categories": LOG_CATEGORIES,
        "sitreps": sitreps,
        "draft": sitreps[-1] if sitreps and sitreps[-1]["released_at"] is None else None,
        "deadlines": deadlines,
        "can": lambda action: can(actor, action),
    }


def dashboard_row(row: dict[str, Any], view: dict[str, Any]) -> dict[str, Any]:
    """One incident on the dashboard: level, warning, RTO countdown, overdue and due-soon counts."""
    rto = next((r for r in view["recovery"] if r["name"] == "rto"), None)
    states = [d["state"] for d in view["deadlines"]]
    return {
        "id": row["id"],
        "title": view["title"],
        "playbook": view["playbook"]["title"],
        "mode": view["mode"],
        "simulated": view["simulated"],
        "level": view["level"],
        "level_label": view["level_label"],
        "warning": view["warning"],
        "warning_label": view["warning_label"],
        "closed": view["closed"],
        "cancelled": view["cancelled"],
        "opened_at": view["opened_at"],
        "rto": rto,
        "overdue": states.count("overdue"),
        "due_soon": states.count("due_soon"),
        "open_steps": sum(view["step_counts"].get(k, 0) for k in OPEN_STATES),
        "version": view["version"],
    }
