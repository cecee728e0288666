"""CAP 1.2 (OASIS Common Alerting Protocol, urn:oasis:names:tc:emergency:cap:1.2): public alerts as XML.

`compose` writes an alert and validates it against the official schema before anyone can see it: an alert
that does not validate is an error of ours and is never published. The schema is the official XSD, vendored
beside this module (CAP-v1.2.xsd, byte-identical to the OASIS copy; tests/standards.py checks it).
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path
from typing import Any

from ir.app.status_page import CapAlert

NS = "urn:oasis:names:tc:emergency:cap:1.2"
XSD = Path(__file__).resolve().parent / "CAP-v1.2.xsd"
MEDIA_TYPE = "application/cap+xml"
_LOCK = threading.Lock()


class InvalidCapAlert(RuntimeError):
    """An alert we wrote does not validate against the CAP 1.2 schema (a bug: nothing is published)."""


@cache
def schema() -> Any:
    """The CAP 1.2 schema (xmlschema), built once per process on first use."""
    import xmlschema

    return xmlschema.XMLSchema(str(XSD))


def element(alert: CapAlert) -> ET.Element:
    root = ET.Element(f"{{{NS}}}alert")

    def sub(parent: ET.Element, name: str, text: str | None) -> None:
        if text is not None:
            ET.SubElement(parent, f"{{{NS}}}{name}").text = text

    sub(root, "identifier", alert.identifier)
    sub(root, "sender", alert.sender)
    sub(root, "sent", alert.sent)
    sub(root, "status", alert.status)
    sub(root, "msgType", alert.msg_type)
    sub(root, "scope", "Public")
    sub(root, "note", alert.note)
    if alert.references:
        sub(root, "references", " ".join(alert.references))
    sub(root, "incidents", alert.incidents)
    for info in alert.infos:
        node = ET.SubElement(root, f"{{{NS}}}info")
        sub(node, "language", info.language)
        for category in info.categories:
            sub(node, "category", category)
        sub(node, "event", info.event)
        sub(node, "responseType", info.response_type)
        sub(node, "urgency", info.urgency)
        sub(node, "severity", info.severity)
        sub(node, "certainty", info.certainty)
        sub(node, "senderName", info.sender_name)
        sub(node, "headline", info.headline)
        sub(node, "description", info.description)
        sub(node, "instruction", info.instruction)
        sub(node, "web", info.web)
        for name, value in info.parameters:
            parameter = ET.SubElement(node, f"{{{NS}}}parameter")
            sub(parameter, "valueName", name)
            sub(parameter, "value", value)
        area = ET.SubElement(node, f"{{{NS}}}area")
        sub(area, "areaDesc", info.area_desc)
    return root


def to_xml(root: ET.Element) -> str:
    body = ET.tostring(root, encoding="unicode", default_namespace=NS)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def validate(xml: str) -> None:
    """Raise InvalidCapAlert naming the first problem when the XML is not a valid CAP 1.2 alert."""
    with _LOCK:  # xmlschema's validators are not documented as thread-safe
        errors = list(schema().iter_errors(xml))
    if errors:
        raise InvalidCapAlert(f"the CAP alert does not validate: {errors[0].reason} at {errors[0].path}")


def compose(alert: CapAlert) -> str:
    """The alert as XML (UTF-8, CAP 1.2 namespace as the default), valid against the official schema."""
    xml = to_xml(element(alert))
    validate(xml)
    return xml
