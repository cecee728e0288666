"""Playbooks as people read them at the command line, in zh-CN or en."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from ir.adapters.playbooks.compiler import Compiled
from ir.domain.incident_types import incident_type_label
from ir.domain.levels import LEVEL_ORDER, ResponseLevel, WarningLevel
from ir.domain.playbook import Playbook, Step
from ir.domain.text import Lang, Text

_L: dict[str, Text] = {
    "level": Text("响应级别", "Response level"),
    "warning": Text("预警级别", "Warning level"),
    "criteria": Text("启动条件", "Criteria"),
    "declared_by": Text("宣布", "Declared by"),
    "escalate_to": Text("升级至", "Escalate to"),
    "steps": Text("处置步骤", "Steps"),
    "notifications": Text("通知与报告", "Notifications and reports"),
    "due": Text("时限", "due"),
    "after": Text("前置", "after"),
    "approvals": Text("需审批", "approval by"),
    "evidence": Text("需留存证据", "evidence required"),
    "when": Text("适用条件", "only when"),
    "action": Text("自动动作", "automated action"),
    "resources": Text("调度资源", "resources"),
    "restores": Text("恢复", "restores"),
    "levels": Text("适用级别", "levels"),
    "overview": Text(
        "各级别概览（用 --level 查看某一级别的处置清单）", "Levels (use --level for one level's checklist)"
    ),
    "regimes": Text("适用监管制度", "Regulatory regimes"),
    "restoration": Text("恢复标准", "What restored means"),
    "degraded": Text("降级恢复", "degraded"),
    "full": Text("完全恢复", "full"),
    "repeat": Text("每隔", "every"),
    "owner": Text("责任部门", "Owner"),
    "review_by": Text("下次评审", "Next review"),
    "overdue": Text("已逾期", "overdue"),
    "draft": Text("草案，未批准", "draft, not approved"),
    "sitrep": Text("态势报告间隔", "Situation reports every"),
    "none": Text("无", "none"),
}


def _t(key: str, lang: Lang) -> str:
    return _L[key].get(lang)


def playbook_rows(compiled: list[Compiled], *, lang: Lang | str, today: date) -> list[dict[str, Any]]:
    language: Lang = "en" if lang == "en" else "zh-CN"
    rows: list[dict[str, Any]] = []
    for c in compiled:
        pb = c.playbook
        if pb is None:
            rows.append(
                {
                    "id": c.file,
                    "file": c.file,
                    "valid": False,
                    "title": str(c.errors[0]) if c.errors else "",
                    "category": "",
                    "version": "",
                    "review_note": "",
                    "errors": len(c.errors),
                }
            )
            continue
        note = ""
        if pb.review_by is not None and pb.review_by < today:
            note = f"{_t('review_by', language)} {pb.review_by.isoformat()} {_t('overdue', language)}"
        elif pb.approval.status.value == "draft":
            note = _t("draft", language)
        rows.append(
            {
                "id": pb.id,
                "file": c.file,
                "valid": True,
                "title": pb.title.get(language),
                "category": pb.category.value,
                "type": pb.type,
                "version": pb.version,
                "approval": pb.approval.status.value,
                "review_by": pb.review_by.isoformat() if pb.review_by else None,
                "review_note": note,
                "regimes": list(pb.regimes),
                "steps": len(pb.steps),
                "content_hash": pb.content_hash,
                "errors": 0,
            }
        )
    return rows


def applicable_steps(pb: Playbook, level: ResponseLevel | None, warning: WarningLevel | None) -> list[Step]:
    return [s for s in pb.steps_in_order() if s.applies_to_level(level) or s.applies_to_warning(warning)]


def render_plan(
    pb: Playbook,
    *,
    level: ResponseLevel | None,
    warning: WarningLevel | None,
    lang: Lang,
    as_json: bool = False,
) -> str:
    if as_json:
        return json.dumps(_plan_json(pb, level, warning, lang), ensure_ascii=False, indent=2)
    role = {rid: r.title.get(lang) for rid, r in pb.roles.items()}
    out: list[str] = []
    out.append(f"{pb.title.get(lang)}  ({pb.id} v{pb.version})")
    out.append(f"{incident_type_label(pb.type).get(lang)} · {_t('owner', lang)}: {pb.owner}")
    if pb.scope:
        out.append(pb.scope.get(lang))
    if pb.regimes:
        out.append(f"{_t('regimes', lang)}: {', '.join(pb.regimes)}")
    out.append("")
    if level is None and warning is None:
        out.append(_t("overview", lang))
        for lv in LEVEL_ORDER:
            spec = pb.levels[lv]
            out.append(
                f"  {lv.value:<3} {lv.label.get(lang)}  RTO {spec.rto} · RPO {spec.rpo} · MTPD {spec.mtpd}"
                f" · {_t('declared_by', lang)}: {role[spec.declared_by]}"
            )
            out.append(f"      {_t('criteria', lang)}: {spec.criteria.source}")
        for wl, wspec in pb.warnings.items():
            out.append(f"  {wl.label.get(lang)}: {wspec.criteria.source}")
        steps = list(pb.steps_in_order())
    else:
        if level is not None:
            spec = pb.levels[level]
            out.append(f"{_t('level', lang)} {level.value} {level.label.get(lang)}")
            out.append(f"  {_t('criteria', lang)}: {spec.criteria.source}")
            out.append(f"  RTO {spec.rto} · RPO {spec.rpo} · MTPD {spec.mtpd}")
            esc = f" · {_t('escalate_to', lang)}: {role[spec.escalate_to]}" if spec.escalate_to else ""
            out.append(f"  {_t('declared_by', lang)}: {role[spec.declared_by]}{esc}")
            interval = pb.sitrep_interval_for(level)
            if interval is not None:
                out.append(f"  {_t('sitrep', lang)} {interval}")
        if warning is not None:
            chosen = pb.warnings.get(warning)
            out.append(f"{_t('warning', lang)}: {warning.label.get(lang)}")
            if chosen is not None:
                out.append(f"  {_t('criteria', lang)}: {chosen.criteria.source}")
        steps = applicable_steps(pb, level, warning)
    out.append("")
    out.append(f"{_t('steps', lang)} ({len(steps)})")
    number = {s.id: i for i, s in enumerate(steps, 1)}
    for i, s in enumerate(steps, 1):
        meta = [f"[{role[s.role]}]"]
        if s.due is not None:
            meta.append(f"{_t('due', lang)} {s.due}")
        out.append(f"{i:>3}. {s.title.get(lang)}  {' '.join(meta)}")
        details: list[str] = []
        deps = [f"{number[d]}" if d in number else d for d in s.depends_on]
        if deps:
            details.append(f"{_t('after', lang)} {', '.join(deps)}")
        if level is None and warning is None:
            applies = [lv.value for lv in LEVEL_ORDER if s.applies_to_level(lv)] + [w.value for w in s.warnings]
            details.append(f"{_t('levels', lang)} {'/'.join(applies)}")
        if s.approvals:
            details.append(f"{_t('approvals', lang)} {', '.join(role[a] for a in s.approvals)}")
        if s.evidence_required:
            details.append(_t("evidence", lang))
        if s.when is not None:
            details.append(f"{_t('when', lang)} {s.when.source}")
        if s.restores is not None:
            details.append(f"{_t('restores', lang)}: {_t(s.restores.value, lang)}")
        if s.requests:
            kinds = ", ".join(f"{pb.resources[r.kind].title.get(lang)} ×{r.quantity}" for r in s.requests)
            details.append(f"{_t('resources', lang)}: {kinds}")
        if s.action is not None:
            details.append(f"{_t('action', lang)}: {s.action.method} {s.action.url}")
        if details:
            out.append("       " + " · ".join(details))
        for line in s.instructions.get(lang).strip().splitlines():
            out.append(f"       {line}")
        for item in s.checklist:
            out.append(f"       [ ] {item.get(lang)}")
    notes = [
        n
        for n in pb.notifications.values()
        if (level is None and warning is None) or n.applies_to_level(level) or n.applies_to_warning(warning)
    ]
    out.append("")
    out.append(f"{_t('notifications', lang)} ({len(notes)})")
    for n in notes:
        key: ResponseLevel | WarningLevel | None = level or warning
        due = n.due_for(key)
        due_text = str(due) if due is not None else ", ".join(f"{k.value if k else ''}: {v}" for k, v in n.due.items())
        who = ", ".join([role[r] for r in n.roles] + list(n.groups))
        repeat = f" · {_t('repeat', lang)} {n.repeat}" if n.repeat else ""
        regime = f" · {n.regime}" if n.regime else ""
        out.append(f"  - {n.title.get(lang)} → {who} ({', '.join(c.value for c in n.channels)})")
        out.append(f"    {_t('due', lang)} {due_text}{repeat}{regime}")
    out.append("")
    out.append(f"{_t('restoration', lang)}:")
    for kind, text in pb.restoration.items():
        out.append(f"  {_t(kind.value, lang)}: {text.get(lang)}")
    return "\n".join(out)


def _plan_json(pb: Playbook, level: ResponseLevel | None, warning: WarningLevel | None, lang: Lang) -> dict[str, Any]:
    steps = applicable_steps(pb, level, warning) if (level or warning) else pb.steps_in_order()
    return {
        "id": pb.id,
        "version": pb.version,
        "title": pb.title.get(lang),
        "level": level.value if level else None,
        "warning": warning.value if warning else None,
        "levels": {
            lv.value: {
                "criteria": spec.criteria.source,
                "rto": str(spec.rto),
                "rpo": str(spec.rpo),
                "mtpd": str(spec.mtpd),
                "declared_by": spec.declared_by,
                "escalate_to": spec.escalate_to,
            }
            for lv, spec in pb.levels.items()
        },
        "steps": [
            {
                "id": s.id,
                "title": s.title.get(lang),
                "role": s.role,
                "depends_on": list(s.depends_on),
                "due": str(s.due) if s.due else None,
                "approvals": list(s.approvals),
                "evidence_required": s.evidence_required,
                "kind": s.kind.value,
            }
            for s in steps
        ],
        "notifications": [
            {
                "id": n.id,
                "audience": n.audience.value,
                "regime": n.regime,
                "repeat": str(n.repeat) if n.repeat else None,
            }
            for n in pb.notifications.values()
        ],
        "content_hash": pb.content_hash,
    }
