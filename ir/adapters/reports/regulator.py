"""Regulator reports rendered from the record: HTML (Jinja2, autoescaped), PDF (WeasyPrint, with the CJK
fonts fontconfig finds), or JSON. Missing required fields are shown as missing, never invented."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from ir.app.reports import RegulatorReport
from ir.domain.text import Lang

_TEMPLATES = Path(__file__).resolve().parent / "templates"

LABELS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "regime": "监管制度",
        "to": "报送对象",
        "incident": "事件",
        "generated": "生成时间",
        "due": "报送时限",
        "not_yet": "尚未起算",
        "late": "已逾期",
        "source": "依据",
        "missing": "【缺失】",
        "optional": "选填",
        "missing_banner": "以下必填项缺失，请补充后再报送",
        "drill": "演练文件，非真实事件",
    },
    "en": {
        "regime": "Regime",
        "to": "To",
        "incident": "Incident",
        "generated": "Generated",
        "due": "Due",
        "not_yet": "not yet running",
        "late": "late by",
        "source": "Legal basis",
        "missing": "[missing]",
        "optional": "optional",
        "missing_banner": "Required fields missing; complete them before filing",
        "drill": "DRILL DOCUMENT, NOT A REAL INCIDENT",
    },
}


def render_html(report: RegulatorReport, lang: Lang) -> str:
    env = Environment(
        loader=FileSystemLoader(str(_TEMPLATES)),
        autoescape=select_autoescape(["html", "j2"]),
        keep_trailing_newline=True,
    )
    return env.get_template("regulator_report.html.j2").render(r=report, t=LABELS[lang], lang=lang)


def render_pdf(report: RegulatorReport, lang: Lang) -> bytes:
    from weasyprint import HTML  # imported only to render a PDF

    pdf = HTML(string=render_html(report, lang)).write_pdf()
    assert isinstance(pdf, bytes)
    return pdf


def render_json(report: RegulatorReport) -> str:
    data: dict[str, Any] = asdict(report)
    return json.dumps(data, ensure_ascii=False, indent=2)


def render(report: RegulatorReport, fmt: str, lang: Lang) -> tuple[bytes, str, str]:
    """(content, media type, file suffix)."""
    if fmt == "html":
        return render_html(report, lang).encode(), "text/html; charset=utf-8", "html"
    if fmt == "pdf":
        return render_pdf(report, lang), "application/pdf", "pdf"
    return render_json(report).encode(), "application/json", "json"
