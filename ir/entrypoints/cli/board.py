"""The status board in a terminal: level, recovery clocks, steps by state, deadlines with countdowns."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import click

from ir.domain.text import Text

_STATE_COLOURS = {
    "overdue": "red",
    "missed": "red",
    "due_soon": "yellow",
    "upcoming": None,
    "met": "green",
    "waiting": "bright_black",
}
_STATUS_ORDER = ["failed", "in_progress", "ready", "pending", "done", "skipped", "not_applicable"]
_L = {
    "level": Text("响应级别", "Level"),
    "triage": Text("研判中（未定级）", "triage (no level declared)"),
    "steps": Text("步骤", "Steps"),
    "deadlines": Text("时限", "Deadlines"),
    "no_deadlines": Text("没有待办时限", "no deadlines running"),
    "recovery": Text("恢复目标", "Recovery"),
    "left": Text("剩余", "left"),
    "late": Text("超时", "late"),
    "met": Text("已达成", "met"),
    "breached": Text("已突破", "BREACHED"),
    "suggested": Text("建议级别", "suggested level"),
    "missing": Text("缺少事实", "missing facts"),
    "closed": Text("已关闭", "closed"),
    "waits": Text("等待", "waits on"),
    "approval": Text("待审批", "awaiting approval by"),
    "warning": Text("预警", "Warning"),
    "cancelled": Text("已撤销（误报）", "cancelled (false alarm)"),
    "response_ended": Text("响应已结束", "response ended"),
    "commander": Text("指挥", "In command"),
    "impact": Text("影响业务 · 地区", "Services · areas"),
    "linked": Text("关联事件", "Linked"),
    "resources": Text("资源调度", "Resources"),
    "shortfall": Text("缺口", "short"),
    "sitrep": Text("态势报告", "Situation report"),
    "draft": Text("草稿", "draft"),
}
_WARNING_COLOURS = {"red": "red", "orange": "bright_red", "yellow": "yellow", "blue": "blue"}


def _t(key: str, lang: str) -> str:
    return _L[key].get("en" if lang == "en" else "zh-CN")


def local_time(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    zone = ZoneInfo(os.environ.get("IR_TIMEZONE", "Asia/Shanghai"))
    return str(value.astimezone(zone).strftime("%Y-%m-%d %H:%M"))


def span(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    s = abs(seconds)
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m = rem // 60
    if d:
        return f"{d}d{h:02d}h"
    if h:
        return f"{h}h{m:02d}m"
    return f"{m}m{s % 60:02d}s" if m < 10 else f"{m}m"


def render_board(view: dict[str, Any], *, lang: str, color: bool) -> str:
    def paint(text: str, colour: str | None, bold: bool = False) -> str:
        return click.style(text, fg=colour, bold=bold) if color and (colour or bold) else text

    out: list[str] = []
    head = f"#{view['id']} {view['title']}"
    if view["mode"] != "real":
        head += f"  [{view['mode'].upper()}{' · simulated time' if view['simulated'] else ''}]"
    out.append(paint(head, None, bold=True))
    pb = view["playbook"]
    out.append(f"{pb['title']} ({pb['id']} v{pb['version']}) · v{view['version']} · {local_time(view['now'])}")
    if view["closed"]:
        out.append(paint(_t("closed", lang), "bright_black"))
    if view["level"]:
        out.append(
            paint(
                f"{_t('level', lang)} {view['level']} {view['level_label']}",
                "red" if view["level"] in ("I", "II") else "yellow",
                bold=True,
            )
        )
    else:
        out.append(paint(_t("triage", lang), "yellow"))
    if view.get("warning"):
        out.append(
            paint(f"{_t('warning', lang)}: {view['warning_label']}", _WARNING_COLOURS[view["warning"]], bold=True)
        )
    if view.get("cancelled"):
        out.append(paint(f"{_t('cancelled', lang)}: {view['cancelled']}", "bright_black"))
    if view.get("response_ended"):
        out.append(f"{_t('response_ended', lang)} {local_time(view['response_ended'])}")
    out.append(
        f"{_t('commander', lang)}: {view['commander']}"
        + ("  ·  " + "; ".join(f"{r}: {', '.join(u)}" for r, u in view["on_duty"].items()) if view["on_duty"] else "")
    )
    if view.get("services") or view.get("areas"):
        out.append(f"{_t('impact', lang)}: {', '.join(view['services']) or '-'} · {', '.join(view['areas']) or '-'}")
    if view.get("parent") or view.get("children"):
        links = ([f"↑ #{view['parent']}"] if view["parent"] else []) + [f"↓ #{c}" for c in view["children"]]
        out.append(f"{_t('linked', lang)}: {' '.join(links)}")
    if view["suggested_level"] and view["suggested_level"] != view["level"]:
        out.append(f"{_t('suggested', lang)}: {view['suggested_level']}")
    if view["missing_facts"]:
        out.append(f"{_t('missing', lang)}: {', '.join(view['missing_facts'])}")
    if view["recovery"]:
        parts = []
        for r in view["recovery"]:
            if r["name"] == "rpo":
                if r["actual_s"] is not None:
                    parts.append(f"RPO {span(r['target_s'])}: {span(r['actual_s'])} {'ok' if r['met'] else 'X'}")
                continue
            name = r["name"].upper()
            if r["met"] is not None:
                state = (
                    paint(f"{_t('met', lang)} {span(r['actual_s'])}", "green")
                    if r["met"]
                    else paint(f"{_t('breached', lang)} {span(r['actual_s'])}", "red", bold=True)
                )
            elif r["breached"]:
                state = paint(f"{_t('breached', lang)} {span(-(r['left_s'] or 0))}", "red", bold=True)
            elif r["left_s"] is not None:
                state = f"{span(r['left_s'])} {_t('left', lang)}"
            else:
                state = "-"
            parts.append(f"{name} {span(r['target_s'])}: {state}")
        out.append(f"{_t('recovery', lang)}: " + " · ".join(parts))
    out.append("")
    counts = view["step_counts"]
    out.append(f"{_t('steps', lang)}: " + ", ".join(f"{k} {counts[k]}" for k in _STATUS_ORDER if counts.get(k)))
    for status in _STATUS_ORDER:
        if status in ("done", "skipped", "not_applicable"):
            continue
        for s in (s for s in view["steps"] if s["status"] == status):
            due = ""
            if s["due_at"]:
                colour = _STATE_COLOURS.get(s["deadline"] or "")
                when = f"-{span(s['late_by_s'])}" if s["late_by_s"] else f"{span(s['left_s'])}"
                due = paint(f"  [{when}]", colour)
            extra = ""
            if s["waiting_on"]:
                extra = f"  {_t('waits', lang)} {', '.join(s['waiting_on'])}"
            elif s["approvals_waiting"]:
                extra = f"  {_t('approval', lang)} {', '.join(s['approvals_waiting'])}"
            who = f" @{s['assignee']}" if s["assignee"] else ""
            out.append(f"  {status:<11} {s['id']:<24} {s['role_title']}{who}{due}{extra}")
    live = [r for r in view.get("resources", []) if not r["cancelled"]]
    if live:
        out.append("")
        out.append(f"{_t('resources', lang)}:")
        for r in live:
            stages: dict[str, int] = {}
            for stage in r["units"].values():
                stages[stage] = stages.get(stage, 0) + 1
            moving = ", ".join(f"{k} {v}" for k, v in stages.items()) or "-"
            short = paint(f"  {_t('shortfall', lang)} {r['shortfall']}", "red") if r["shortfall"] else ""
            out.append(f"  {r['request']:<4} {r['title']} ×{r['quantity']} → {r['destination']}  [{moving}]{short}")
    if view.get("sitreps"):
        last = view["sitreps"][-1]
        state = local_time(last["released_at"]) if last["released_at"] else _t("draft", lang)
        out.append(f"{_t('sitrep', lang)} #{last['number']}: {state}")
    due_items = [d for d in view["deadlines"] if d["kind"] != "step" and d["state"] not in ("met",)]
    if due_items:
        out.append("")
        out.append(f"{_t('deadlines', lang)}:")
        for d in due_items:
            out.append(paint(_deadline_line(d, lang), _STATE_COLOURS.get(d["state"])))
    return "\n".join(out)


def _deadline_line(d: dict[str, Any], lang: str) -> str:
    when = (
        f"{_t('late', lang)} {span(d['late_by_s'])}"
        if d["late_by_s"]
        else f"{span(d['left_s'])} {_t('left', lang)}"
        if d["left_s"] is not None
        else d["state"]
    )
    return f"  {d['state']:<9} {local_time(d['due_at'])}  {when:<14} {d['title']}"


def render_deadlines(rows: list[dict[str, Any]], *, lang: str, color: bool) -> str:
    """`ir deadlines`: one line a deadline, as the board shows them, with its kind and role."""
    if not rows:
        return _t("no_deadlines", lang)
    out = [f"{_t('deadlines', lang)}:"]
    for d in rows:
        role = f" [{d['role']}]" if d.get("role") else ""
        line = f"{_deadline_line(d, lang)}  ({d['kind']}{role})"
        colour = _STATE_COLOURS.get(d["state"])
        out.append(click.style(line, fg=colour) if color and colour else line)
    return "\n".join(out)
