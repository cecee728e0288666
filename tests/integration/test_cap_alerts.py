"""CAP 1.2 alerts: every combination of mode, category, warning, level and state composed and validated
with xmlschema against the official XSD; the mapping documented in docs/status-page.md is the code's."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from ir.adapters.notify.cap import InvalidCapAlert, compose
from ir.app.status_page import CapAlert, CapInfo
from ir.domain.levels import ResponseLevel, WarningLevel
from ir.domain.playbook import Category
from ir.domain.status_updates import LEVEL_SEVERITY, WARNING_TERMS, cap_terms, msg_type
from tests.standards import CAP_XSD

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
DOC = Path(__file__).resolve().parents[2] / "docs" / "status-page.md"
TYPES = {
    Category.OUTAGE: "equipment-failure/hardware",
    Category.ATTACK: "network-attack/denial-of-service",
    Category.DISASTER: "force-majeure/typhoon",
}


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(CAP_XSD))


def alert(
    mode: str,
    category: Category,
    warning: WarningLevel | None,
    level: ResponseLevel | None,
    *,
    resolved: bool,
    earlier: int,
) -> CapAlert:
    terms = cap_terms(
        mode=mode, category=category, playbook_type=TYPES[category], warning=warning, level=level, resolved=resolved
    )
    infos = tuple(
        CapInfo(
            language=lang,
            categories=terms.categories,
            event=event,
            response_type=terms.response_type,
            urgency=terms.urgency,
            severity=terms.severity,
            certainty=terms.certainty,
            headline="标题 <&> headline",
            description="说明 & message\nline two",
            instruction=None if resolved else "stay tuned",
            area_desc="海口 / Haikou",
            sender_name="Example Telecom",
            web="https://status.example.com/status",
            parameters=(("estimatedRestoration", "2026-10-01T18:00:00+08:00"),),
        )
        for lang, event in (("zh-CN", terms.event_zh), ("en", terms.event_en))
    )
    references = tuple(f"ops@example.com,ir-n1-{i},2026-10-01T09:0{i}:00+08:00" for i in range(1, earlier + 1))
    return CapAlert(
        identifier=f"ir-n1-{earlier + 1}",
        sender="ops@example.com",
        sent="2026-10-01T09:30:00+08:00",
        status=terms.status,
        msg_type=msg_type(resolved=resolved, earlier=earlier),
        references=references,
        incidents="n1",
        infos=infos,
        note="演练 / exercise" if mode == "drill" else None,
    )


COMBINATIONS = list(
    itertools.product(
        ("real", "drill", "test"),
        list(Category),
        [None, *WarningLevel],
        [None, *ResponseLevel],
        (False, True),
    )
)


def test_every_alert_validates_against_the_official_schema(schema: xmlschema.XMLSchema) -> None:
    for n, (mode, category, warning, level, resolved) in enumerate(COMBINATIONS):
        for earlier in (2 * (n % 2),):  # a first alert, or one referring to two earlier ones
            xml = compose(alert(mode, category, warning, level, resolved=resolved, earlier=earlier))
            schema.validate(xml)
            root = ET.fromstring(xml.encode())
            assert root.findtext(f"{CAP}status") == {"real": "Actual", "drill": "Exercise", "test": "Test"}[mode]
            expected = ("Cancel" if resolved else "Update") if earlier else "Alert"
            assert root.findtext(f"{CAP}msgType") == expected
            assert (root.find(f"{CAP}references") is not None) == bool(earlier)
            assert [i.findtext(f"{CAP}language") for i in root.findall(f"{CAP}info")] == ["zh-CN", "en"]
            assert root.findtext(f"{CAP}info/{CAP}headline") == "标题 <&> headline"


def test_an_invalid_alert_is_refused() -> None:
    good = alert("real", Category.OUTAGE, None, None, resolved=False, earlier=0)
    bad = CapAlert(**{**{f: getattr(good, f) for f in good.__slots__}, "sent": "2026-10-01T01:30:00Z"})
    with pytest.raises(InvalidCapAlert, match="does not validate"):
        compose(bad)


def test_a_typhoon_is_meteorological_and_an_attack_a_security_matter() -> None:
    typhoon = cap_terms(
        mode="real",
        category=Category.DISASTER,
        playbook_type="force-majeure/typhoon",
        warning=None,
        level=None,
        resolved=False,
    )
    assert typhoon.categories == ("Met", "Infra")
    quake = cap_terms(
        mode="real",
        category=Category.DISASTER,
        playbook_type="force-majeure/earthquake",
        warning=None,
        level=None,
        resolved=False,
    )
    assert quake.categories == ("Geo", "Infra")
    ddos = cap_terms(
        mode="real",
        category=Category.ATTACK,
        playbook_type="network-attack/ddos",
        warning=None,
        level=None,
        resolved=False,
    )
    assert ddos.categories == ("Security", "Infra")


def test_the_more_severe_of_level_and_warning_wins() -> None:
    both = cap_terms(
        mode="real",
        category=Category.OUTAGE,
        playbook_type="x/y",
        warning=WarningLevel.RED,
        level=ResponseLevel.IV,
        resolved=False,
    )
    assert (both.urgency, both.severity, both.certainty) == ("Immediate", "Extreme", "Observed")


def documented_rows() -> dict[str, tuple[str, str, str]]:
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("| the incident | urgency | severity | certainty |") :]
    rows = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip().strip("`") for cell in line.strip("|").split("|")]
        rows[cells[0]] = (cells[1], cells[2], cells[3])
    return rows


def test_the_documented_mapping_is_the_code() -> None:
    rows = documented_rows()
    for level, severity in LEVEL_SEVERITY.items():
        [row] = [v for k, v in rows.items() if re.match(rf"response level {level.value} \(", k)]
        terms = cap_terms(
            mode="real", category=Category.OUTAGE, playbook_type="x/y", warning=None, level=level, resolved=False
        )
        assert row == (terms.urgency, terms.severity, terms.certainty) == ("Immediate", severity, "Observed")
    for warning, expected in WARNING_TERMS.items():
        [row] = [v for k, v in rows.items() if k.startswith(f"{warning.value} warning")]
        terms = cap_terms(
            mode="real", category=Category.OUTAGE, playbook_type="x/y", warning=warning, level=None, resolved=False
        )
        assert row == (terms.urgency, terms.severity, terms.certainty) == expected
    resolved = cap_terms(
        mode="real", category=Category.OUTAGE, playbook_type="x/y", warning=None, level=None, resolved=True
    )
    assert rows["resolved (the all-clear)"] == (resolved.urgency, resolved.severity, resolved.certainty)
    triage = cap_terms(
        mode="real", category=Category.OUTAGE, playbook_type="x/y", warning=None, level=None, resolved=False
    )
    assert rows["neither (in triage)"] == (triage.urgency, triage.severity, triage.certainty)
