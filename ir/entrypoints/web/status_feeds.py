"""The status page's feeds, in Atom 1.0 (RFC 4287): the updates as entries, and the CAP 1.2 alerts as
entries carrying each alert inline (content type application/cap+xml) and linking to it."""

from __future__ import annotations

import re
import secrets
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from ir.adapters.notify.cap import MEDIA_TYPE
from ir.app.status_page import PublicIncident, PublishedUpdate
from ir.domain.text import Lang
from ir.entrypoints.web.i18n import translate

ATOM = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
ATOM_TYPE = "application/atom+xml; charset=utf-8"


def rfc3339(instant: datetime) -> str:
    return instant.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _id(*parts: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)).urn


def _sub(parent: ET.Element, name: str, text: str | None = None, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, name, attrs)  # unqualified: in the root's default namespace (Atom)
    if text is not None:
        node.text = text
    return node


def entry_text(u: PublishedUpdate, lang: Lang, zone: ZoneInfo) -> str:
    lines = [u.message(lang), translate(lang, "status.area", area=u.area(lang))]
    if u.eta is not None and not u.resolved:
        lines.append(translate(lang, "status.eta", at=u.eta.astimezone(zone).strftime("%Y-%m-%d %H:%M %z")))
    instruction = u.instruction(lang)
    if instruction:
        lines.append(translate(lang, "status.instruction", text=instruction))
    return "\n".join(lines)


def entry_title(u: PublishedUpdate, lang: Lang) -> str:
    state = translate(lang, "status.resolved" if u.resolved else "status.ongoing")
    title = f"[{state}] {u.title(lang)}"
    return f"[{translate(lang, 'status.exercise')}] {title}" if u.mode == "drill" else title


def feed(
    incidents: Sequence[PublicIncident],
    *,
    lang: Lang,
    zone: str,
    base: str,
    sender: str,
    author: str,
    now: datetime,
    cap: bool,
) -> bytes:
    """The Atom document. `base` is the status page's absolute address (…/status)."""
    tz = ZoneInfo(zone)
    nonce = secrets.token_hex(16)  # markers no published text can hold
    alerts: dict[str, str] = {}
    updates = sorted((u for i in incidents for u in i.updates), key=lambda u: u.published_at, reverse=True)
    root = ET.Element("feed", {"xmlns": ATOM, XML_LANG: lang})
    name = "cap" if cap else "updates"
    _sub(root, "id", _id(sender, "status", name, lang))
    title_key = "status.feed_cap" if cap else "status.feed_atom"
    _sub(root, "title", f"{translate(lang, 'status.title')} · {translate(lang, title_key)}")
    _sub(root, "updated", rfc3339(updates[0].published_at if updates else now))
    _sub(_sub(root, "author"), "name", author)
    suffix = "" if lang == "zh-CN" else "?lang=en"
    _sub(root, "link", rel="self", type="application/atom+xml", href=f"{base}/feed.{'cap.xml' if cap else 'atom'}")
    _sub(root, "link", rel="alternate", type="text/html", href=f"{base}{suffix}")
    for u in updates:
        entry = _sub(root, "entry")
        _sub(entry, "id", _id(sender, "status", u.cap_identifier))
        _sub(entry, "title", entry_title(u, lang))
        _sub(entry, "updated", rfc3339(u.published_at))
        _sub(entry, "published", rfc3339(u.published_at))
        _sub(entry, "link", rel="alternate", type="text/html", href=f"{base}{suffix}#{u.public_ref}")
        _sub(entry, "link", rel="related", type=MEDIA_TYPE, href=f"{base}/alerts/{u.cap_identifier}.xml")
        if u.mode == "drill":
            _sub(entry, "category", term="exercise", label=translate(lang, "status.exercise"))
        _sub(entry, "summary", entry_text(u, lang, tz))
        if cap:  # the alert inline, spliced in as stored (parsing and writing it again costs 10x more)
            marker = f"{nonce}-{len(alerts)}"
            _sub(entry, "content", marker, type=MEDIA_TYPE)
            alerts[marker] = _alert_element(u.cap_xml)
    body = ET.tostring(root, encoding="unicode")
    if alerts:  # one pass over the document
        body = re.sub(f">({nonce}-[0-9]+)<", lambda m: f">{alerts[m.group(1)]}<", body)
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n").encode()


def _alert_element(xml: str) -> str:
    """A stored alert without its XML declaration: the element alone, its namespace declared on it."""
    text = xml.strip()
    if text.startswith("<?xml"):
        text = text[text.index("?>") + 2 :].lstrip()
    return text
