"""Message templates: Jinja2 in a sandbox, StrictUndefined, HTML autoescaped; zh-CN and en; subject, text
and (for e-mail) HTML. A template file is notifications/templates/<name>.yaml:

    zh-CN: {subject: "…", text: "…", html: "…"}   # html is optional (the text is laid out instead)
    en:    {subject: "…", text: "…"}

Every template is compiled and rendered against SAMPLE (the documented variables) when the configuration
is read, and its names checked statically too: a variable that does not exist is an error then, never when
a message is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment

from ir.adapters.playbooks.yaml_source import YamlRefused, load_file

LANGS = ("zh-CN", "en")
PARTS = ("subject", "text", "html")
ACK_MARK = "IR-ACK-URL-0000"  # stands for each recipient's own acknowledgement link until it is sent
REPLY_MARK = "IR-REPLY-CODE-0"  # … and for its reply code (replies.reply_code)

# The documented variables (docs/notifications.md); a template may use these and nothing else.
SAMPLE: dict[str, Any] = {
    "incident": {
        "id": 42,
        "title": "台风摩羯登陆 / Typhoon Yagi landfall",
        "playbook": "typhoon-flood",
        "playbook_title": "台风与洪涝 / Typhoon and flood",
        "level": "II",
        "level_label": "II 级（重大）",
        "warning": "red",
        "warning_label": "红色预警",
        "mode": "real",
        "opened_at": "2026-10-01 09:00 (Asia/Shanghai)",
        "url": "https://ir.example.org/incidents/42",
        "summary": "",
    },
    "notification": {
        "id": "internal-callout",
        "title": "启动应急响应",
        "audience": "internal",
        "critical": True,
        "due_at": "2026-10-01 09:05 (Asia/Shanghai)",
        "cause": "level:II",
    },
    "org": "示例通信公司",
    "ack_url": ACK_MARK,
    "reply_code": REPLY_MARK,
    "lang": "zh-CN",
    "now": "2026-10-01 09:00 (Asia/Shanghai)",
    "drill": False,
}
VARIABLES = frozenset(SAMPLE)


def _environment(*, html: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=html, keep_trailing_newline=False)


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str

    def as_dict(self) -> dict[str, str]:
        return {"subject": self.subject, "text": self.text, "html": self.html}


_LAYOUT = """<!doctype html><html><body style="font-family:sans-serif;line-height:1.5">
{% for para in paragraphs %}<p>{{ para }}</p>{% endfor %}
</body></html>"""


@dataclass(frozen=True)
class TemplateSet:
    templates: Mapping[str, Mapping[str, Mapping[str, Template]]]  # name -> lang -> part -> template

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.templates)

    def render(self, name: str, lang: str, context: Mapping[str, Any]) -> Rendered:
        parts = self.templates[name][lang if lang in self.templates[name] else LANGS[0]]
        subject = " ".join(parts["subject"].render(context).split())
        text = parts["text"].render(context).strip() + "\n"
        if "html" in parts:
            html = parts["html"].render(context)
        else:
            paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
            html = _layout().render(paragraphs=paragraphs)
        return Rendered(subject, text, html)


@cache
def _layout() -> Template:
    return _environment(html=True).from_string(_LAYOUT)


def load_templates(folder: Path) -> tuple[TemplateSet, list[tuple[str, str]]]:
    """Every templates/<name>.yaml compiled and rendered against SAMPLE; problems as (file, message).
    Kept per process while no file in the folder changed (compiling is the slow part of reading)."""
    if not folder.is_dir():
        return TemplateSet({}), [(str(folder), "missing: the message templates live here (<name>.yaml)")]
    files = sorted(folder.glob("*.yaml"))
    stamp = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    return _load(str(folder), stamp)


@lru_cache(maxsize=8)
def _load(folder: str, stamp: tuple[tuple[str, int, int], ...]) -> tuple[TemplateSet, list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    out: dict[str, dict[str, dict[str, Template]]] = {}
    envs = {False: _environment(html=False), True: _environment(html=True)}
    for name_, *_ in stamp:
        path = Path(folder) / name_
        name = path.stem
        try:
            data = load_file(str(path))
        except YamlRefused as refused:
            problem = refused.problem
            problems.append((str(path), f"{problem.line}:{problem.column}: {problem.message}"))
            continue
        if not isinstance(data, dict):
            problems.append((str(path), "must map languages (zh-CN, en) to subject, text and html"))
            continue
        compiled: dict[str, dict[str, Template]] = {}
        for lang in LANGS:
            parts = data.get(lang)
            if not isinstance(parts, dict):
                problems.append((str(path), f"{lang}: missing (every template has zh-CN and en)"))
                continue
            for key in parts:
                if key not in PARTS:
                    problems.append((str(path), f"{lang}.{key}: unknown part (parts: subject, text, html)"))
            compiled[lang] = {}
            for part in PARTS:
                source = parts.get(part)
                if source is None:
                    if part != "html":
                        problems.append((str(path), f"{lang}.{part}: missing"))
                    continue
                if not isinstance(source, str):
                    problems.append((str(path), f"{lang}.{part}: must be text"))
                    continue
                found = _compile(envs[part == "html"], source, where=f"{lang}.{part}")
                if isinstance(found, str):
                    problems.append((str(path), found))
                else:
                    compiled[lang][part] = found
        for key in data:
            if key not in LANGS:
                problems.append((str(path), f"'{key}': unknown language (languages: zh-CN, en)"))
        if all(lang in compiled and {"subject", "text"} <= set(compiled[lang]) for lang in LANGS):
            out[name] = compiled
    return TemplateSet(out), problems


def _compile(env: SandboxedEnvironment, source: str, *, where: str) -> Template | str:
    try:
        ast = env.parse(source)
        unknown = sorted(meta.find_undeclared_variables(ast) - VARIABLES)
        if unknown:
            return f"{where}: unknown variable(s) {', '.join(unknown)} (variables: {', '.join(sorted(VARIABLES))})"
        template = env.from_string(ast)
        for lang in LANGS:
            for drill in (False, True):
                template.render({**SAMPLE, "lang": lang, "drill": drill})
    except TemplateError as exc:
        lineno = getattr(exc, "lineno", None)
        line = f" (line {lineno})" if lineno else ""
        return f"{where}{line}: {exc.message or exc}"
    return template
