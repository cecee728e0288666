"""The situation at one instant, in a few lines: for handovers and situation reports (态势报告)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ir.domain.deadlines import CalendarFor, DeadlineState, due_list, recovery_clocks
from ir.domain.incident import Incident
from ir.domain.personal import Personal


def _span(seconds: float) -> str:
    minutes = int(abs(seconds)) // 60
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def situation(inc: Incident, now: datetime, *, calendar_for: CalendarFor | None) -> dict[str, Any]:
    """Plain JSON values: what a report or an incoming commander needs to know."""
    statuses = inc.statuses()
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status.value] = counts.get(status.value, 0) + 1
    late = [
        {
            "ref": i.deadline.ref,
            "title": i.deadline.title.en,
            "title_zh": i.deadline.title.zh_cn,
            "late_by_s": int(i.late_by.total_seconds()) if i.late_by else 0,
        }
        for i in due_list(inc, now, calendar_for=calendar_for)
        if i.state is DeadlineState.OVERDUE
    ]
    field: dict[str, dict[str, int]] = {}
    shortfalls: dict[str, int] = {}
    for r in inc.emergency.requests.values():
        if r.cancelled:
            continue
        for m in r.units.values():
            if m.returned_at is None and m.dispatched_at is not None:
                bucket = field.setdefault(r.resource, {"dispatched": 0, "arrived": 0})
                bucket["arrived" if m.arrived_at else "dispatched"] += m.capacity
        if r.shortfall:
            shortfalls[r.resource] = shortfalls.get(r.resource, 0) + r.shortfall
    facts = {
        name: (f"{int(v.total_seconds())}s" if isinstance(v, timedelta) else v)
        for name, v in inc.facts.items()
        if not isinstance(v, Personal)
    }
    rto = next((c for c in recovery_clocks(inc, now) if c.name == "rto"), None)
    return {
        "at": now.isoformat(),
        "level": inc.level.value if inc.level else None,
        "warning": inc.warning.value if inc.warning else None,
        "commander": inc.emergency.commander,
        "services": list(inc.emergency.services),
        "areas": list(inc.emergency.areas),
        "facts": facts,
        "steps": counts,
        "overdue": late,
        "resources_in_field": field,
        "shortfalls": shortfalls,
        "rto_left_s": int(rto.left.total_seconds()) if rto and rto.left is not None else None,
        "rto_breached": bool(rto and rto.breached),
        "restored": inc.restored_at.isoformat() if inc.restored_at else None,
        "children": list(inc.emergency.children),
    }


def sitrep_text(inc: Incident, number: int, s: dict[str, Any]) -> dict[str, str]:
    """A draft situation report in both languages, from a situation (edited before release)."""
    title_zh = f"{inc.title} 第{number}期态势报告（截至 {s['at'][:16].replace('T', ' ')} UTC）"
    title_en = f"{inc.title}: situation report {number} (as of {s['at'][:16].replace('T', ' ')} UTC)"
    zh = [title_zh]
    en = [title_en]
    level = s["level"] or "-"
    warning = s["warning"] or "-"
    zh.append(f"响应级别：{level}；预警：{warning}；指挥：{s['commander']}")
    en.append(f"Response level: {level}; warning: {warning}; in command: {s['commander']}")
    if s["services"] or s["areas"]:
        zh.append(f"受影响业务：{'、'.join(s['services']) or '-'}；受影响地区：{'、'.join(s['areas']) or '-'}")
        en.append(f"Services affected: {', '.join(s['services']) or '-'}; areas: {', '.join(s['areas']) or '-'}")
    if s["facts"]:
        facts = "; ".join(
            f"{inc.playbook.facts[k].title.zh_cn if k in inc.playbook.facts else k} {v}" for k, v in s["facts"].items()
        )
        facts_en = "; ".join(
            f"{inc.playbook.facts[k].title.en if k in inc.playbook.facts else k} {v}" for k, v in s["facts"].items()
        )
        zh.append(f"现状：{facts}")
        en.append(f"Situation: {facts_en}")
    if s["resources_in_field"]:
        parts_zh, parts_en = [], []
        for kind, b in s["resources_in_field"].items():
            res = inc.playbook.resources.get(kind)
            name_zh, name_en = (res.title.zh_cn, res.title.en) if res else (kind, kind)
            parts_zh.append(f"{name_zh} 在途 {b['dispatched']}、到位 {b['arrived']}")
            parts_en.append(f"{name_en}: {b['dispatched']} on the way, {b['arrived']} on site")
        zh.append("现场资源：" + "；".join(parts_zh))
        en.append("Resources in the field: " + "; ".join(parts_en))
    if s["shortfalls"]:
        zh.append("资源缺口：" + "；".join(f"{k} {v}" for k, v in s["shortfalls"].items()))
        en.append("Shortfalls: " + "; ".join(f"{k} {v}" for k, v in s["shortfalls"].items()))
    steps = s["steps"]
    done, doing = steps.get("done", 0), steps.get("in_progress", 0)
    todo = steps.get("ready", 0) + steps.get("pending", 0)
    zh.append(f"处置进展：已完成 {done}，进行中 {doing}，待办 {todo}")
    en.append(f"Progress: {done} done, {doing} in progress, {todo} to do")
    if s["overdue"]:
        zh.append("已超时：" + "；".join(f"{o['title_zh']}（超 {_span(o['late_by_s'])}）" for o in s["overdue"]))
        en.append("Overdue: " + "; ".join(f"{o['title']} (late {_span(o['late_by_s'])})" for o in s["overdue"]))
    if s["restored"]:
        zh.append(f"业务已于 {s['restored'][:16].replace('T', ' ')} UTC 恢复")
        en.append(f"Service restored at {s['restored'][:16].replace('T', ' ')} UTC")
    elif s["rto_left_s"] is not None:
        zh.append(f"距恢复时间目标（RTO）{'已超' if s['rto_breached'] else '剩余'} {_span(s['rto_left_s'])}")
        en.append(f"RTO {'breached by' if s['rto_breached'] else 'left:'} {_span(s['rto_left_s'])}")
    return {"zh-CN": "\n".join(zh), "en": "\n".join(en)}
