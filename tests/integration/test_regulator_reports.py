"""Regulator reports through the service layer (ir.app.reports.Reports), on SQLite and PostgreSQL.

Incidents are opened from the shipped library (personal-data-leak, ddos, core-network-failure) and from a
small playbook naming the regimes no library playbook names (FCC, DORA, NIS2). Each report is checked field by
field against the regime's required content: a value from the record, or missing — never invented. The
renderings (HTML escaped, JSON, PDF with its Chinese text), the filing (the exact document kept, the clock
stopped) and the audit trail are checked on the real database.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ir.adapters.clock import SimulatedClock
from ir.adapters.playbooks.compiler import compile_source
from ir.adapters.regimes import load_regimes
from ir.app.reports import RegulatorReport
from ir.bootstrap import App
from ir.domain import commands as c
from ir.domain.errors import InvalidInput, InvalidTransition, NotFound
from ir.domain.regimes import Regime
from ir.domain.text import Lang
from tests.builders import MINIMAL_PLAYBOOK
from tests.conftest import ACTOR, PLAYBOOKS, ROOT, T0, AppFactory, decrypt_audit

REGIMES: dict[str, Regime] = load_regimes(str(ROOT / "notifications" / "regimes"))
SHANGHAI = ZoneInfo("Asia/Shanghai")
ORG = {
    "org_name": "示例电信股份有限公司 (Example Telecom Co.)",
    "org_contact": "网络安全应急办公室 +86 10 0000 0000",
    "org_dpo": "dpo@example.invalid",
    "org_lei": "5493001KJTIIGC8Y1R12",
}
LEAK_FACTS: dict[str, object] = {
    "people_affected": "2,000,000",
    "cii_involved": "true",
    "eu_subjects_affected": "true",
    "data_types": "手机号、身份证号",
}


def shown(instant: datetime, zone: str = "Asia/Shanghai") -> str:
    """An instant as reports show it."""
    return instant.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


def open_incident(
    app: App,
    playbook: str,
    *,
    title: str,
    facts: dict[str, object] | None = None,
    level: str | None = None,
    detected_at: datetime | None = None,
) -> int:
    outcome = app.handlers.handle(
        c.OpenIncident(
            actor=ACTOR, playbook=playbook, title=title, facts=facts or {}, level=level, detected_at=detected_at
        )
    )
    return outcome.incident_id


def overview(app: App, incident_id: int, lang: Any = "en") -> dict[str, dict[str, Any]]:
    return {r["regime"]: r for r in app.reports.overview(ACTOR, incident_id, lang)}


def obligation(rows: dict[str, dict[str, Any]], regime: str, obligation_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [o for o in rows[regime]["obligations"] if o["id"] == obligation_id]
    assert len(found) == 1, rows[regime]
    return found[0]


def values(report: RegulatorReport) -> dict[str, str | None]:
    return {f.id: f.value for f in report.fields}


def assert_form_of_the_regime(report: RegulatorReport, lang: str) -> None:
    """The report is the regime's form: every field, in order, titled in the language, required as the regime
    says; `missing` is exactly the required fields without a value."""
    regime = REGIMES[report.regime]
    ob = regime.obligation(report.obligation)
    assert ob is not None
    assert [(f.id, f.title, f.required) for f in report.fields] == [
        (f.id, f.title.get("en" if lang == "en" else "zh-CN"), f.required) for f in ob.fields
    ]
    assert report.missing == [f.title for f in report.fields if f.required and f.value is None]
    assert report.title == ob.title.get("en" if lang == "en" else "zh-CN")
    assert report.authority == regime.authority.get("en" if lang == "en" else "zh-CN")
    assert report.source == regime.source


def complete(app: App, incident_id: int, step: str, *, evidence: bool = False) -> None:
    base: dict[str, Any] = {"actor": ACTOR, "incident_id": incident_id, "step_id": step}
    app.handlers.handle(c.StartStep(**base))
    if evidence:
        app.handlers.handle(
            c.AttachEvidence(**base, filename="actions.txt", content=b"ports closed 09:02\n", media_type="text/plain")
        )
    app.handlers.handle(c.CompleteStep(**base))


def stored_evidence(app: App, digest: str) -> bytes:
    with app.db.uow() as uow:
        return uow.evidence.get(digest)


def audit_actions(app: App, action: str) -> list[dict[str, Any]]:
    return [r for r in decrypt_audit(app) if r["action"] == action]


def audited_event(record: dict[str, Any]) -> dict[str, Any]:
    """The stored event an audit record of an incident command fingerprints (kept as its JSON text)."""
    event = record["payload"]["event"]
    parsed: dict[str, Any] = json.loads(event) if isinstance(event, str) else event
    return parsed


# -- a personal data leak: CAC, MIIT and GDPR -----------------------------------------------------------


def open_leak(app: App, title: str = "用户信息泄露 / leak of subscriber data") -> int:
    return open_incident(
        app, "personal-data-leak", title=title, facts=LEAK_FACTS, level="III", detected_at=T0 - timedelta(minutes=20)
    )


def test_overview_of_a_leak_shows_each_regime_its_reportability_and_countdowns(app: App) -> None:
    iid = open_leak(app)
    detected = T0 - timedelta(minutes=20)
    rows = overview(app, iid)
    assert list(rows) == ["cn-cac-2025", "cn-miit-2017", "eu-gdpr"]  # the playbook's order
    assert (rows["cn-cac-2025"]["reportable"], rows["cn-cac-2025"]["reportable_at"]) == (
        "computed",
        detected.isoformat(),
    )
    initial = obligation(rows, "cn-cac-2025", "initial")
    assert initial["due_at"] == (detected + timedelta(hours=1)).isoformat()  # CII operator: 1 hour
    assert initial["left_s"] == 40 * 60
    assert initial["variant"] == "Critical information infrastructure operator (1 hour)"
    summary = obligation(rows, "cn-cac-2025", "summary")
    assert (summary["due_at"], summary["waiting_for"]) == (None, "response_end")
    immediate = obligation(rows, "cn-miit-2017", "immediate")
    assert (immediate["due_at"], immediate["left_s"]) == (detected.isoformat(), -20 * 60)
    gdpr = rows["eu-gdpr"]
    assert (gdpr["reportable"], gdpr["reportable_at"]) == ("unknown", None)
    assert obligation(rows, "eu-gdpr", "notification")["waiting_for"] == "awareness"
    assert overview(app, iid, "zh-CN")["cn-cac-2025"]["title"] == "国家网络安全事件报告管理办法"

    # awareness recorded: GDPR's 72 hours run; judged reportable: known, and by whom is audited
    aware = T0 - timedelta(minutes=10)
    app.handlers.handle(c.RecordClock(actor=ACTOR, incident_id=iid, clock="awareness", instant=aware))
    app.reports.judge(ACTOR, iid, "eu-gdpr", reportable=True, at=None, reason="EU subscribers' ID numbers leaked")
    rows = overview(app, iid)
    assert (rows["eu-gdpr"]["reportable"], rows["eu-gdpr"]["reportable_at"]) == ("judged", T0.isoformat())
    notification = obligation(rows, "eu-gdpr", "notification")
    assert notification["due_at"] == (aware + timedelta(hours=72)).isoformat()
    assert notification["left_s"] == 72 * 3600 - 600

    judged = audit_actions(app, "report.judge")
    assert len(judged) == 1
    assert judged[0]["actor"] == ACTOR.id and judged[0]["subject"] == f"incident:{iid}"
    assert judged[0]["payload"]["kind"] == "reportability_judged"
    assert audited_event(judged[0])["regime"] == "eu-gdpr"


def test_judging_reportability_refuses_what_it_cannot_judge(app: App) -> None:
    iid = open_leak(app)
    with pytest.raises(InvalidInput, match="reason"):
        app.reports.judge(ACTOR, iid, "eu-gdpr", reportable=True, at=None, reason="  ")
    with pytest.raises(InvalidInput, match="future"):
        app.reports.judge(ACTOR, iid, "eu-gdpr", reportable=True, at=T0 + timedelta(hours=1), reason="x")
    with pytest.raises(NotFound, match="no regime 'eu-gdpr2'"):
        app.reports.judge(ACTOR, iid, "eu-gdpr2", reportable=True, at=None, reason="x")
    with pytest.raises(InvalidInput, match="does not apply"):
        app.reports.judge(ACTOR, iid, "eu-dora", reportable=True, at=None, reason="x")
    app.reports.judge(ACTOR, iid, "eu-gdpr", reportable=False, at=None, reason="encrypted, keys not exposed")
    rows = overview(app, iid)
    assert (rows["eu-gdpr"]["reportable"], rows["eu-gdpr"]["obligations"]) == ("not reportable", [])
    with pytest.raises(NotFound):
        app.reports.draft(ACTOR, iid, "eu-gdpr", "initial", "en")


def test_cac_initial_report_is_filled_from_the_record_and_nothing_is_invented(
    app: App, make_app: AppFactory, clock: SimulatedClock
) -> None:
    iid = open_leak(app)
    detected = T0 - timedelta(minutes=20)
    report = app.reports.draft(ACTOR, iid, "cn-cac-2025", "initial", "zh-CN")
    assert_form_of_the_regime(report, "zh-CN")
    assert (report.regime, report.obligation, report.stage, report.title) == (
        "cn-cac-2025",
        "initial",
        "initial",
        "事件报告",
    )
    assert report.due_at == shown(detected + timedelta(hours=1)) == "2026-10-01 09:40 CST"
    assert report.generated_at == "2026-10-01 09:00 CST"
    assert report.late is None
    assert report.variant == "关键信息基础设施运营者（1小时）"
    assert report.note == "可先报告第1、2项，其余情况补报。"
    got = values(report)
    assert got["unit"] is None  # no organisation configured: missing, not made up
    assert got["discovered_at"] == "2026-10-01 08:40 CST"
    assert got["type"] == "数据安全事件 / 数据泄露事件"
    assert got["level"] == "III 较大"
    assert got["impact"] is not None
    assert "2000000" in got["impact"].replace(",", "") and "手机号、身份证号" in got["impact"]
    assert got["measures"] is None  # nothing done yet
    assert got["cause"] is None  # the playbook records no cause: optional, missing
    assert report.missing == ["事发单位名称及发生事件的设施、系统、平台的基本情况", "已采取的应对措施及效果"]

    # the organisation comes from the settings; measures from the steps done, with their local times
    clock.advance(timedelta(minutes=2))
    complete(app, iid, "contain", evidence=True)
    configured = make_app(**ORG)
    report = configured.reports.draft(ACTOR, iid, "cn-cac-2025", "initial", "zh-CN")
    got = values(report)
    assert got["unit"] == ORG["org_name"]
    assert got["measures"] == "2026-10-01 09:02 CST 阻断泄露"
    assert report.missing == []
    english = configured.reports.draft(ACTOR, iid, "cn-cac-2025", "initial", "en")
    assert_form_of_the_regime(english, "en")
    assert values(english)["measures"] == "2026-10-01 09:02 CST Stop the leak"
    assert values(english)["level"] == "III major"

    drafts = audit_actions(configured, "report.draft")
    assert [d["payload"]["regime"] for d in drafts] == ["cn-cac-2025"] * 3
    assert drafts[0]["payload"]["missing"] == [
        "事发单位名称及发生事件的设施、系统、平台的基本情况",
        "已采取的应对措施及效果",
    ]
    assert drafts[1]["payload"]["missing"] == [] and drafts[0]["subject"] == f"incident:{iid}"


def test_reports_a_person_reads_have_no_program_literals(app: App) -> None:
    """DESIGN.md: zh-CN and en for everything a person reads. A yes/no fact reads 是/否 (yes/no), not True."""
    iid = open_leak(app)
    langs: tuple[Lang, ...] = ("zh-CN", "en")
    for lang in langs:
        report = app.reports.draft(ACTOR, iid, "cn-cac-2025", "initial", lang)
        impact = values(report)["impact"] or ""
        assert "True" not in impact and "False" not in impact, impact


def test_miit_and_gdpr_reports_field_by_field(app: App, make_app: AppFactory) -> None:
    iid = open_leak(app)
    configured = make_app(**ORG)
    miit = configured.reports.draft(ACTOR, iid, "cn-miit-2017", "initial", "zh-CN")
    assert_form_of_the_regime(miit, "zh-CN")
    got = values(miit)
    assert got["time"] == "2026-10-01 08:40 CST"
    assert got["scope"] == values(configured.reports.draft(ACTOR, iid, "cn-cac-2025", "initial", "zh-CN"))["impact"]
    assert (got["measures"], got["recommendations"]) == (None, None)
    assert miit.missing == ["已采取的应急处置措施"]
    assert (miit.due_at, miit.late) == ("2026-10-01 08:40 CST", "0h20m")  # immediately: already 20 minutes late

    gdpr = configured.reports.draft(ACTOR, iid, "eu-gdpr", "initial", "en")
    assert_form_of_the_regime(gdpr, "en")
    got = values(gdpr)
    assert got["nature"] == "用户信息泄露 / leak of subscriber data"
    assert got["dpo"] == ORG["org_dpo"]
    assert (
        got["subjects"] is None and got["records"] is None and got["consequences"] is None and got["measures"] is None
    )
    assert gdpr.due_at is None  # waits for awareness: shown as not yet running
    assert "not yet running" in configured.reports.render(gdpr, "html", "en")[0].decode()


# -- rendering -------------------------------------------------------------------------------------------


def test_html_is_escaped_json_is_the_report_and_pdf_keeps_the_chinese_text(app: App, tmp_path: Path) -> None:
    iid = open_leak(app, title='<script>alert("x")</script> & 泄露')
    report = app.reports.draft(ACTOR, iid, "cn-cac-2025", "initial", "zh-CN")

    html, media, suffix = app.reports.render(report, "html", "zh-CN")
    text = html.decode()
    assert (media, suffix) == ("text/html; charset=utf-8", "html")
    assert "<script>" not in text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; 泄露" in text
    assert "<h1>事件报告</h1>" in text and "【缺失】" in text and 'lang="zh-CN"' in text
    for line in report.fields:
        assert line.title in text

    data, media, suffix = app.reports.render(report, "json", "zh-CN")
    assert (media, suffix) == ("application/json", "json")
    parsed = json.loads(data)
    assert parsed == json.loads(json.dumps(asdict(report)))
    assert parsed["incident_title"] == '<script>alert("x")</script> & 泄露'  # JSON is data: not escaped twice
    assert [f["id"] for f in parsed["fields"]] == [
        "unit",
        "discovered_at",
        "type",
        "level",
        "impact",
        "measures",
        "cause",
    ]

    pdf, media, suffix = app.reports.render(report, "pdf", "zh-CN")
    assert (media, suffix) == ("application/pdf", "pdf")
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    pdftotext = shutil.which("pdftotext")
    if pdftotext is None:
        if os.environ.get("CI"):
            pytest.fail("pdftotext (poppler-utils) is missing, and CI is set: the PDF text check must run")
        pytest.skip("pdftotext (poppler-utils) not installed")
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    extracted = subprocess.run(
        [pdftotext, "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True, text=True
    ).stdout
    squeezed = "".join(extracted.split())
    for expected in (
        "事件报告",
        "国家网络安全事件报告管理办法",
        "数据安全事件",
        "III较大",
        "【缺失】",
        "2026-10-0108:40CST",
    ):
        assert expected in squeezed, f"{expected!r} not in the PDF's text: {extracted[:400]!r}"
    assert '<script>alert("x")</script>' in extracted  # shown as text, as typed


# -- filing ----------------------------------------------------------------------------------------------


def test_submit_keeps_the_exact_document_stops_the_clock_and_is_audited(
    app: App, make_app: AppFactory, clock: SimulatedClock
) -> None:
    iid = open_leak(app)
    detected = T0 - timedelta(minutes=20)

    # required fields missing: refused, unless filed in phases (the CAC measures allow items 1-2 first)
    with pytest.raises(InvalidTransition, match="required fields are missing"):
        app.reports.submit(ACTOR, iid, "cn-cac-2025", "initial", reference="CAC-1", lang="zh-CN", document=b"x")
    with pytest.raises(InvalidInput, match="phases"):
        app.reports.submit(ACTOR, iid, "cn-miit-2017", "initial", reference="M-1", lang="zh-CN", partial=True)

    clock.advance(timedelta(minutes=10))  # 09:10, 30 minutes before the CAC deadline
    phase = "第一阶段：事发单位与发现时间".encode()
    ob, digest = app.reports.submit(
        ACTOR, iid, "cn-cac-2025", "initial", reference="CAC-2026-0001", lang="zh-CN",
        document=phase, document_name="phase1.txt", partial=True,
    )  # fmt: skip
    assert (ob, digest) == ("initial", hashlib.sha256(phase).hexdigest())
    assert stored_evidence(app, digest) == phase
    first = obligation(overview(app, iid), "cn-cac-2025", "initial")
    assert (first["partial"], first["reference"]) == (True, "CAC-2026-0001")
    assert first["submitted_at"] == (T0 + timedelta(minutes=10)).isoformat()
    assert first["left_s"] is None and first["late_by_s"] is None

    # the complete report: every required field known, filed with the exact PDF rendered now
    complete(app, iid, "contain", evidence=True)
    configured = make_app(**ORG)
    clock.advance(timedelta(minutes=5))
    ob, digest = configured.reports.submit(
        ACTOR, iid, "cn-cac-2025", "initial", reference="CAC-2026-0002", lang="zh-CN"
    )
    kept = stored_evidence(configured, digest)
    assert hashlib.sha256(kept).hexdigest() == digest
    assert kept.startswith(b"%PDF-")
    with pytest.raises(InvalidTransition, match="already submitted"):
        configured.reports.submit(ACTOR, iid, "cn-cac-2025", "initial", reference="CAC-3", lang="zh-CN", document=b"y")

    # MIIT "immediately": late since detection; the reason is required, and how late is kept
    with pytest.raises(InvalidInput, match="late-reason"):
        configured.reports.submit(
            ACTOR, iid, "cn-miit-2017", "initial", reference="MIIT-1", lang="zh-CN", document=b"z"
        )
    late_doc = b"MIIT phone report log, 09:15"
    configured.reports.submit(
        ACTOR, iid, "cn-miit-2017", "initial", reference="MIIT-1", lang="zh-CN",
        document=late_doc, document_name="call.txt", late_reason="scope unclear until 09:10",
    )  # fmt: skip
    assert stored_evidence(configured, hashlib.sha256(late_doc).hexdigest()) == late_doc

    # the clocks stop: two hours on, the CAC report stays on time and the MIIT one stays 35 minutes late
    clock.advance(timedelta(hours=2))
    rows = overview(configured, iid)
    cac = obligation(rows, "cn-cac-2025", "initial")
    assert (cac["partial"], cac["reference"], cac["left_s"], cac["late_by_s"]) == (False, "CAC-2026-0002", None, None)
    # a phased report meets its deadline with its first phase (T0+10m); the reference is the latest phase's
    assert cac["submitted_at"] == (T0 + timedelta(minutes=10)).isoformat()
    miit = obligation(rows, "cn-miit-2017", "immediate")
    assert (miit["late_by_s"], miit["left_s"]) == (35 * 60, None)
    assert miit["submitted_at"] == (detected + timedelta(minutes=35)).isoformat()
    assert configured.reports.draft(ACTOR, iid, "cn-cac-2025", "initial", "zh-CN").late is None
    assert configured.reports.draft(ACTOR, iid, "cn-miit-2017", "initial", "zh-CN").late == "0h35m"

    filed = audit_actions(configured, "report.submit")
    assert [r["payload"]["kind"] for r in filed] == ["report_submitted"] * 3
    # two filings in the same instant: records are ordered by the sealer, not by their timestamps
    events = sorted((audited_event(r) for r in filed), key=lambda e: str(e["reference"]))
    assert [e["reference"] for e in events] == ["CAC-2026-0001", "CAC-2026-0002", "MIIT-1"]
    assert [e["document_sha256"] for e in events] == [
        hashlib.sha256(phase).hexdigest(),
        digest,
        hashlib.sha256(late_doc).hexdigest(),
    ]
    assert [e["partial"] for e in events] == [True, False, False]
    assert [e["late_reason"] for e in events] == [None, None, "scope unclear until 09:10"]
    assert {r["actor"] for r in filed} == {ACTOR.id}


# -- a DDoS at level IV: the CAC measures do not apply -----------------------------------------------------


def test_cac_does_not_apply_below_level_iii(app: App) -> None:
    iid = open_incident(app, "ddos", title="SYN flood", facts={"affected_users": "50,000"}, level="IV")
    rows = overview(app, iid)
    assert rows["cn-cac-2025"]["obligations"] == []
    assert [o["id"] for o in rows["cn-miit-2017"]["obligations"]] == ["immediate"]
    with pytest.raises(NotFound, match="no initial obligation of cn-cac-2025"):
        app.reports.draft(ACTOR, iid, "cn-cac-2025", "initial", "zh-CN")
    with pytest.raises(NotFound, match="no regime"):
        app.reports.draft(ACTOR, iid, "cn-nope", "initial", "zh-CN")
    with pytest.raises(InvalidInput, match="does not apply"):
        app.reports.draft(ACTOR, iid, "eu-gdpr", "initial", "zh-CN")
    app.handlers.handle(c.DeclareLevel(actor=ACTOR, incident_id=iid, level="II", reason="two provinces"))
    ddos = overview(app, iid)["cn-cac-2025"]
    assert [o["id"] for o in ddos["obligations"]] == ["initial", "summary"]
    assert ddos["obligations"][0]["variant"] == "Other network operators (4 hours)"


# -- a core network failure: the CAC summary after the response ends -------------------------------------


def test_cac_summary_is_due_30_days_after_the_response_ends(app: App, clock: SimulatedClock) -> None:
    iid = open_incident(
        app, "core-network-failure", title="HSS failure", facts={"affected_users": "3,000,000"}, level="II"
    )
    clock.advance(timedelta(hours=5))
    app.handlers.handle(c.Restore(actor=ACTOR, incident_id=iid))
    app.handlers.handle(c.AddLogEntry(actor=ACTOR, incident_id=iid, category="decision", text="保留异地容灾切换演练"))
    clock.advance(timedelta(hours=1))
    app.handlers.handle(c.EndResponse(actor=ACTOR, incident_id=iid))
    ended = T0 + timedelta(hours=6)
    summary = obligation(overview(app, iid), "cn-cac-2025", "summary")
    assert summary["due_at"] == (ended + timedelta(days=30)).isoformat()
    assert summary["left_s"] == 30 * 86400
    report = app.reports.draft(ACTOR, iid, "cn-cac-2025", "final", "zh-CN")
    assert_form_of_the_regime(report, "zh-CN")
    got = values(report)
    assert got["lessons"] == "保留异地容灾切换演练"
    assert got["harm"] is not None and "3000000" in got["harm"]
    assert (got["unit"], got["cause"], got["accountability"], got["remediation"], got["measures"]) == (None,) * 5


def test_a_cac_summary_can_be_completed_from_what_the_commander_records(
    app: App, make_app: AppFactory, clock: SimulatedClock
) -> None:
    """The summary needs the cause, accountability and remediation (fact:cause, fact:accountability,
    fact:remediation); the commander must be able to record them, or the summary can never be filed (it may not
    be filed in phases)."""
    iid = open_incident(
        app, "core-network-failure", title="HSS failure", facts={"affected_users": "3,000,000"}, level="II"
    )
    clock.advance(timedelta(hours=1))
    complete(app, iid, "confirm")
    app.handlers.handle(c.Restore(actor=ACTOR, incident_id=iid))
    app.handlers.handle(c.AddLogEntry(actor=ACTOR, incident_id=iid, category="decision", text="lessons"))
    app.handlers.handle(c.EndResponse(actor=ACTOR, incident_id=iid))
    app.handlers.handle(
        c.SetFacts(
            actor=ACTOR,
            incident_id=iid,
            facts={"cause": "HSS software defect", "accountability": "vendor", "remediation": "patched"},
        )
    )
    report = make_app(**ORG).reports.draft(ACTOR, iid, "cn-cac-2025", "final", "zh-CN")
    assert report.missing == []


def test_every_required_field_of_the_library_playbooks_regimes_can_be_recorded() -> None:
    """A regime's required `fact:` field must be a fact the playbook naming the regime declares: otherwise the
    report can never be complete (and a non-phased one never filed)."""
    gaps = []
    for path in sorted(glob.glob(str(PLAYBOOKS / "*" / "*.yaml"))):
        compiled = compile_source(Path(path).read_bytes(), path)
        assert compiled.playbook is not None, path
        pb = compiled.playbook
        for regime_id in pb.regimes:
            for ob in REGIMES[regime_id].obligations:
                for f in ob.fields:
                    kind, _, name = f.source.partition(":")
                    if f.required and kind == "fact" and name not in pb.facts:
                        gaps.append(f"{pb.id}: {regime_id}/{ob.id} field {f.id} needs fact '{name}'")
    assert gaps == [], "\n".join(gaps)


# -- FCC, DORA and NIS2, on a playbook that names them ----------------------------------------------------

_FACTS = """\
  - name: cause
    type: string
    title: {zh-CN: 原因, en: Cause}
  - name: bcp_activated
    type: boolean
    title: {zh-CN: 已启动业务连续性计划, en: BCP activated}
"""


@pytest.fixture
def global_playbook(tmp_path: Path) -> str:
    source = MINIMAL_PLAYBOOK.replace("id: mini\n", "id: global-outage\n", 1).replace(
        "facts:\n", f"regimes: [us-fcc-part4, eu-dora, eu-nis2]\nfacts:\n{_FACTS}", 1
    )
    path = tmp_path / "global-outage.yaml"
    path.write_text(source, encoding="utf-8")
    return str(path)


def test_fcc_outage_reportable_by_user_minutes_and_drafted_from_the_record(
    make_app: AppFactory, global_playbook: str
) -> None:
    app = make_app(timezone="America/New_York", org_name="Example Wireless LLC", org_contact="NOC +1 555 0100")
    detected = T0 - timedelta(minutes=100)  # 19:20 EDT the evening before
    iid = open_incident(
        app, global_playbook, title="Core outage", facts={"affected_users": "10,000"}, detected_at=detected
    )
    rows = overview(app, iid)
    assert (rows["us-fcc-part4"]["reportable"], rows["us-fcc-part4"]["reportable_at"]) == (
        "computed",
        (detected + timedelta(minutes=90)).isoformat(),  # 10,000 users x 90 minutes = 900,000 user-minutes
    )
    notification = obligation(rows, "us-fcc-part4", "notification")
    assert notification["due_at"] == (detected + timedelta(minutes=210)).isoformat()
    assert notification["left_s"] == 110 * 60
    assert obligation(rows, "us-fcc-part4", "initial")["due_at"] == (detected + timedelta(hours=72)).isoformat()
    assert obligation(rows, "us-fcc-part4", "final")["due_at"] == (detected + timedelta(days=30)).isoformat()

    app.handlers.handle(
        c.SetImpact(actor=ACTOR, incident_id=iid, services=["mobile-voice"], areas=["Manhattan", "Queens"])
    )
    report = app.reports.draft(ACTOR, iid, "us-fcc-part4", "notification", "en")
    assert_form_of_the_regime(report, "en")
    assert values(report) == {
        "entity": "Example Wireless LLC",
        "onset": "2026-09-30 19:20 EDT",
        "description": "Core outage",
        "area": "Manhattan, Queens",
        "contact": "NOC +1 555 0100",
    }
    assert report.due_at == "2026-09-30 22:50 EDT"
    initial = app.reports.draft(ACTOR, iid, "us-fcc-part4", "initial", "en")
    assert_form_of_the_regime(initial, "en")
    assert values(initial)["users"] == "10000"
    final = app.reports.draft(ACTOR, iid, "us-fcc-part4", "final", "en")
    assert (values(final)["cause"], values(final)["duration"]) == (None, None)  # not known yet: missing
    app.handlers.handle(c.Restore(actor=ACTOR, incident_id=iid))
    final = app.reports.draft(ACTOR, iid, "us-fcc-part4", "final", "en")
    assert values(final)["duration"] == "1h40m"  # onset to restoration
    # catalogue/services.yaml: "ids are used by `ir impact`; names are shown to people"
    assert values(initial)["services"] == "Mobile voice (incl. VoLTE)"


def test_fcc_outage_restored_before_the_threshold_is_not_reportable(app: App, global_playbook: str) -> None:
    detected = T0 - timedelta(minutes=100)
    iid = open_incident(
        app, global_playbook, title="Short outage", facts={"affected_users": "10,000"}, detected_at=detected
    )
    app.handlers.handle(c.Restore(actor=ACTOR, incident_id=iid, at=detected + timedelta(minutes=89)))
    rows = overview(app, iid)
    assert (rows["us-fcc-part4"]["reportable"], rows["us-fcc-part4"]["obligations"]) == ("not reportable", [])
    with pytest.raises(NotFound):
        app.reports.draft(ACTOR, iid, "us-fcc-part4", "notification", "en")


def test_dora_initial_then_intermediate_rolled_past_the_weekend(make_app: AppFactory, global_playbook: str) -> None:
    app = make_app(**ORG)
    aware = T0 - timedelta(hours=3)  # Thursday 1 October 2026, 00:00 in Brussels
    iid = open_incident(
        app, global_playbook, title="Payments platform down", facts={"bcp_activated": "true"}, detected_at=aware
    )
    app.handlers.handle(c.RecordClock(actor=ACTOR, incident_id=iid, clock="awareness", instant=aware))
    app.handlers.handle(
        c.RecordClock(actor=ACTOR, incident_id=iid, clock="classification", instant=aware + timedelta(hours=1))
    )
    app.reports.judge(
        ACTOR, iid, "eu-dora", reportable=True, at=aware + timedelta(hours=1), reason="major: criteria met"
    )
    rows = overview(app, iid)
    assert rows["eu-dora"]["reportable"] == "judged"
    assert obligation(rows, "eu-dora", "initial")["due_at"] == (aware + timedelta(hours=5)).isoformat()
    assert obligation(rows, "eu-dora", "intermediate")["waiting_for"] == "submission:initial"

    report = app.reports.draft(ACTOR, iid, "eu-dora", "initial", "en")
    assert_form_of_the_regime(report, "en")
    got = values(report)
    assert (got["lei"], got["entity"], got["contact"]) == (ORG["org_lei"], ORG["org_name"], ORG["org_contact"])
    assert got["classification"] is None  # no level declared yet: missing
    assert got["bcp"] is not None  # the fact is recorded (its wording: test_reports_a_person_reads_…)
    assert report.missing == ["Classification criteria met"]
    app.handlers.handle(c.DeclareLevel(actor=ACTOR, incident_id=iid, level="II"))
    document = json.dumps({"initial": "DORA"}).encode()
    _ob, digest = app.reports.submit(
        ACTOR, iid, "eu-dora", "initial", reference="NCA-42", lang="en", document=document, document_name="i.json"
    )
    assert digest == hashlib.sha256(document).hexdigest() and stored_evidence(app, digest) == document
    # submitted Thursday 03:00 CEST; + 72 h = Sunday 05:00 -> Monday 5 October 12:00 CEST
    rows = overview(app, iid)
    assert obligation(rows, "eu-dora", "intermediate")["due_at"] == "2026-10-05T10:00:00+00:00"
    assert obligation(rows, "eu-dora", "final")["waiting_for"] == "submission:intermediate"


def test_nis2_final_report_waits_for_the_notification_submission(make_app: AppFactory, global_playbook: str) -> None:
    app = make_app(**ORG)
    aware = T0 - timedelta(hours=2)
    iid = open_incident(
        app,
        global_playbook,
        title="Cloud region down",
        facts={"affected_users": "250,000"},
        level="II",
        detected_at=aware,
    )
    app.handlers.handle(c.RecordClock(actor=ACTOR, incident_id=iid, clock="awareness", instant=aware))
    rows = overview(app, iid)
    assert obligation(rows, "eu-nis2", "early_warning")["due_at"] == (aware + timedelta(hours=24)).isoformat()
    assert obligation(rows, "eu-nis2", "notification")["due_at"] == (aware + timedelta(hours=72)).isoformat()
    assert obligation(rows, "eu-nis2", "final")["waiting_for"] == "submission:notification"
    app.reports.submit(ACTOR, iid, "eu-nis2", "notification", reference="CSIRT-7", lang="en", document=b"n")
    due = obligation(overview(app, iid), "eu-nis2", "final")["due_at"]
    assert due == "2026-11-01T02:00:00+00:00"  # 1 October 03:00 CEST + one month = 1 November 03:00 CET
    assert datetime.fromisoformat(due).astimezone(ZoneInfo("Europe/Brussels")).hour == 3
