"""What an incident tells the public: status updates the communications role publishes, and how each one
reads as a CAP 1.2 alert (the mapping from ir's levels to CAP's urgency, severity and certainty).

A status update says only what its author wrote for the public — a public title, a message, the area and a
restoration estimate, in zh-CN and en — and, of the incident, only its mode (a drill is an exercise) and its
levels at the moment of publishing. Nothing else of an incident ever reaches the public (docs/status-page.md).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from ir.domain.commands import Command
from ir.domain.errors import InvalidInput
from ir.domain.levels import ResponseLevel, WarningLevel
from ir.domain.playbook import Category

MAX_TITLE = 200
MAX_MESSAGE = 5000
MAX_AREA = 200
MAX_INSTRUCTION = 2000


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishStatusUpdate(Command):
    """Publish a status update of an incident for the public (the status page, its feeds and CAP)."""

    incident_id: int
    title_zh: str
    title_en: str
    message_zh: str
    message_en: str
    eta: datetime | None = None  # the restoration estimate (预计恢复时间)
    area_zh: str | None = None  # default: the previous update's area, else the configured one
    area_en: str | None = None
    instruction_zh: str | None = None  # what users should do (optional)
    instruction_en: str | None = None
    resolved: bool = False  # the all-clear: service is back, the public notice ends (CAP Cancel)


@dataclass(frozen=True, slots=True)
class PublicText:
    """A published update's words, checked: both languages, trimmed, within their lengths."""

    title_zh: str
    title_en: str
    message_zh: str
    message_en: str
    area_zh: str | None
    area_en: str | None
    instruction_zh: str | None
    instruction_en: str | None


def check_text(c: PublishStatusUpdate) -> PublicText:
    """The words of the update, or InvalidInput naming the first field that is wrong."""

    def required(name: str, value: str, limit: int) -> str:
        text = (value or "").replace("\r\n", "\n").strip()
        if not text:
            raise InvalidInput(f"{name} is required (the public reads both languages)", field=name)
        if len(text) > limit:
            raise InvalidInput(f"{name} is at most {limit} characters; got {len(text)}", field=name)
        return text

    def optional(name: str, value: str | None, limit: int) -> str | None:
        return required(name, value, limit) if value is not None and value.strip() else None

    text = PublicText(
        title_zh=required("title_zh", c.title_zh, MAX_TITLE),
        title_en=required("title_en", c.title_en, MAX_TITLE),
        message_zh=required("message_zh", c.message_zh, MAX_MESSAGE),
        message_en=required("message_en", c.message_en, MAX_MESSAGE),
        area_zh=optional("area_zh", c.area_zh, MAX_AREA),
        area_en=optional("area_en", c.area_en, MAX_AREA),
        instruction_zh=optional("instruction_zh", c.instruction_zh, MAX_INSTRUCTION),
        instruction_en=optional("instruction_en", c.instruction_en, MAX_INSTRUCTION),
    )
    for zh, en, name in (
        (text.area_zh, text.area_en, "area"),
        (text.instruction_zh, text.instruction_en, "instruction"),
    ):
        if (zh is None) != (en is None):
            raise InvalidInput(f"{name} is given in both languages or in neither", field=f"{name}_en")
    for name, value in vars_of(text).items():
        if value is not None and any(not _xml_char(ch) for ch in value):
            raise InvalidInput(f"{name} holds control or non-characters (XML cannot carry them)", field=name)
    return text


def _xml_char(ch: str) -> bool:
    """A character XML 1.0 can carry (the text goes into CAP and Atom): no control characters but tab and
    newline, no lone surrogates, not U+FFFE or U+FFFF."""
    code = ord(ch)
    if code < 0x20:
        return ch in "\n\t"
    return not (0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF))


def vars_of(text: PublicText) -> dict[str, str | None]:
    return {f.name: getattr(text, f.name) for f in fields(PublicText)}


def check_eta(eta: datetime | None, now: datetime, *, resolved: bool) -> datetime | None:
    if eta is None:
        return None
    if eta.tzinfo is None:
        raise InvalidInput("the restoration estimate needs a time zone (e.g. 2026-10-01T18:00+08:00)", field="eta")
    if resolved:
        raise InvalidInput("a resolved update has no restoration estimate: the service is back", field="eta")
    if eta <= now:
        raise InvalidInput("the restoration estimate is in the past: give a later time", field="eta")
    return eta


# -- CAP 1.2 ----------------------------------------------------------------------------------------------

CAP_STATUS = {"real": "Actual", "drill": "Exercise", "test": "Test"}

# warning level -> (urgency, severity, certainty): a warning announces an impact to come
WARNING_TERMS: dict[WarningLevel, tuple[str, str, str]] = {
    WarningLevel.RED: ("Immediate", "Extreme", "Likely"),
    WarningLevel.ORANGE: ("Expected", "Severe", "Likely"),
    WarningLevel.YELLOW: ("Future", "Moderate", "Possible"),
    WarningLevel.BLUE: ("Future", "Minor", "Possible"),
}

# response level -> severity: a declared response is an impact under way (urgency Immediate, Observed)
LEVEL_SEVERITY: dict[ResponseLevel, str] = {
    ResponseLevel.I: "Extreme",
    ResponseLevel.II: "Severe",
    ResponseLevel.III: "Moderate",
    ResponseLevel.IV: "Minor",
}

_SEVERITY_RANK = ["Extreme", "Severe", "Moderate", "Minor", "Unknown"]

# playbook category (and, for disasters, the hazard in its type) -> CAP categories
CATEGORY: dict[Category, tuple[str, ...]] = {
    Category.OUTAGE: ("Infra",),
    Category.ATTACK: ("Security", "Infra"),
    Category.DISASTER: ("Infra",),
}
HAZARD: dict[str, str] = {
    "earthquake": "Geo",
    "typhoon": "Met",
    "flood": "Met",
    "rainstorm": "Met",
    "snowstorm": "Met",
    "fire": "Fire",
}

# the event named in the alert, by playbook category (zh-CN, en)
EVENT: dict[Category, tuple[str, str]] = {
    Category.OUTAGE: ("通信服务中断", "Communication service disruption"),
    Category.ATTACK: ("网络安全事件影响服务", "Cyber security incident affecting services"),
    Category.DISASTER: ("灾害影响通信服务", "Disaster affecting communication services"),
}


@dataclass(frozen=True, slots=True)
class CapTerms:
    status: str  # Actual | Exercise | Test
    urgency: str
    severity: str
    certainty: str
    response_type: str  # Prepare | Monitor | AllClear
    categories: tuple[str, ...]
    event_zh: str
    event_en: str


def cap_terms(
    *,
    mode: str,
    category: Category,
    playbook_type: str,
    warning: WarningLevel | None,
    level: ResponseLevel | None,
    resolved: bool,
) -> CapTerms:
    """How one update reads in CAP (the table in docs/status-page.md).

    - resolved: urgency Past, certainty Observed, severity Minor, responseType AllClear;
    - a response level declared (an impact under way): urgency Immediate, certainty Observed, severity by the
      level (I Extreme, II Severe, III Moderate, IV Minor) or by the warning if that is more severe;
    - a warning only (an impact to come): urgency, severity and certainty by the warning level, Prepare;
    - neither (in triage): urgency Immediate, certainty Observed (users see it now), severity Unknown.
    """
    categories = CATEGORY[category]
    hazard = HAZARD.get(playbook_type.rsplit("/", 1)[-1]) if category is Category.DISASTER else None
    if hazard is not None:
        categories = (hazard, *categories)
    event_zh, event_en = EVENT[category]
    status = CAP_STATUS[mode]
    if resolved:
        return CapTerms(status, "Past", "Minor", "Observed", "AllClear", categories, event_zh, event_en)
    if level is not None:
        severity = LEVEL_SEVERITY[level]
        if warning is not None:
            severity = min(severity, WARNING_TERMS[warning][1], key=_SEVERITY_RANK.index)
        return CapTerms(status, "Immediate", severity, "Observed", "Monitor", categories, event_zh, event_en)
    if warning is not None:
        urgency, severity, certainty = WARNING_TERMS[warning]
        return CapTerms(status, urgency, severity, certainty, "Prepare", categories, event_zh, event_en)
    return CapTerms(status, "Immediate", "Unknown", "Observed", "Monitor", categories, event_zh, event_en)


def msg_type(*, resolved: bool, earlier: int) -> str:
    """Alert for the first notice of an incident, Update for the next ones, Cancel for the all-clear (which
    ends the notice, as 解除 ends a warning); a notice after an all-clear starts afresh with an Alert."""
    if resolved:
        return "Cancel" if earlier else "Alert"
    return "Update" if earlier else "Alert"
