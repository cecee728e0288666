"""Regulators at the command line, as a compliance officer types it: `ir obligations`, `ir reportable`,
`ir report ID --regime … --stage … --format … -o FILE` and `ir report submit …`, on a SQLite file in a working
folder of its own, in real time. Refusals exit with the code DESIGN.md gives and one line, never a traceback."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli import ROOT, Run, ir


class Session:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {
            "IR_DATABASE_URL": f"sqlite:///{folder / 'ir.db'}",
            "IR_DATA_DIR": str(folder),
            "IR_PLAYBOOKS_DIR": str(ROOT / "playbooks"),
            "IR_REGIMES_DIR": str(ROOT / "notifications" / "regimes"),
            "IR_LANG": "en",
            "IR_TIMEZONE": "Asia/Shanghai",
        }

    def __call__(self, *args: str, code: int = 0) -> Run:
        run = ir(*args, cwd=self.folder, env=self.env, timeout=120)
        assert "Traceback" not in run.out and "Traceback" not in run.err, run.out + run.err
        assert run.code == code, f"ir {' '.join(args)} exited {run.code}, not {code}: {run.out}{run.err}"
        return run

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").out)

    def refused(self, *args: str, code: int) -> str:
        """A refusal: the exit code, nothing on stdout, one line on stderr; returns that line."""
        run = self(*args, code=code)
        assert run.out == ""
        lines = run.err.strip().splitlines()
        assert len(lines) == 1, run.err
        assert lines[0].startswith("ir: ")
        return lines[0]


@pytest.fixture
def session(tmp_path: Path) -> Session:
    folder = tmp_path / "work"
    folder.mkdir()
    s = Session(folder)
    s("db", "upgrade")
    return s


def by_regime(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["regime"]: r for r in rows}


def obligation(rows: list[dict[str, Any]], regime: str, obligation_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [o for o in by_regime(rows)[regime]["obligations"] if o["id"] == obligation_id]
    assert len(found) == 1
    return found[0]


def open_leak(session: Session, detected: datetime) -> int:
    opened = session.json(
        "open", "personal-data-leak",
        "--title", "用户信息泄露 <b>bold</b>",
        "--fact", "people_affected=2,000,000",
        "--fact", "cii_involved=true",
        "--fact", "eu_subjects_affected=true",
        "--level", "III",
        "--detected", detected.isoformat(),
    )  # fmt: skip
    iid: int = opened["incident"]
    return iid


def test_obligations_and_reportability(session: Session) -> None:
    detected = (datetime.now(UTC) - timedelta(minutes=30)).replace(microsecond=0)
    iid = open_leak(session, detected)
    rows = session.json("obligations", str(iid))
    assert [r["regime"] for r in rows] == ["cn-cac-2025", "cn-miit-2017", "eu-gdpr"]
    cac = obligation(rows, "cn-cac-2025", "initial")
    assert datetime.fromisoformat(cac["due_at"]) == detected + timedelta(hours=1)
    assert 25 * 60 <= cac["left_s"] <= 30 * 60
    assert cac["variant"] == "Critical information infrastructure operator (1 hour)"
    assert datetime.fromisoformat(obligation(rows, "cn-miit-2017", "immediate")["due_at"]) == detected
    assert obligation(rows, "eu-gdpr", "notification")["waiting_for"] == "awareness"

    text = session("obligations", str(iid)).out
    assert "cn-cac-2025" in text and "(reportable: computed since" in text
    assert re.search(r"initial\s+Incident report: due .*, \d+m left\s+\[Critical information", text), text
    assert re.search(r"immediate\s+Immediate report by phone: due .*, LATE (29|3\d)m", text), text
    assert re.search(r"notification\s+.*: waits for awareness", text), text
    assert "国家网络安全事件报告管理办法" in session("obligations", str(iid), "--lang", "zh-CN").out

    aware = detected + timedelta(minutes=10)
    session("clock", str(iid), "awareness", aware.isoformat())
    judged = session("reportable", str(iid), "eu-gdpr", "--reason", "EU subscribers' ID numbers leaked")
    assert judged.out.strip() == f"incident {iid}: reportable under eu-gdpr"
    gdpr = by_regime(session.json("obligations", str(iid)))["eu-gdpr"]
    assert gdpr["reportable"] == "judged"
    assert datetime.fromisoformat(gdpr["obligations"][0]["due_at"]) == aware + timedelta(hours=72)

    not_judged = session("reportable", str(iid), "eu-gdpr", "--not", "--reason", "data was encrypted")
    assert not_judged.out.strip() == f"incident {iid}: not reportable under eu-gdpr"
    gdpr = by_regime(session.json("obligations", str(iid)))["eu-gdpr"]
    assert (gdpr["reportable"], gdpr["obligations"]) == ("not reportable", [])

    assert "--reason" in session("reportable", str(iid), "eu-gdpr", code=2).err
    line = session.refused("reportable", str(iid), "eu-gdpr", "--at", "tomorrow", "--reason", "x", code=2)
    assert "ISO 8601" in line
    assert "no regime 'eu-gdrp'" in session.refused("reportable", str(iid), "eu-gdrp", "--reason", "x", code=3)
    line = session.refused("reportable", str(iid), "eu-nis2", "--reason", "x", code=2)
    assert "does not apply" in line
    session.refused("obligations", "99", code=3)


def test_drafts_in_html_json_and_pdf(session: Session) -> None:
    iid = open_leak(session, (datetime.now(UTC) - timedelta(minutes=30)).replace(microsecond=0))
    base = ("report", str(iid), "--regime", "cn-cac-2025", "--stage", "initial", "--lang", "zh-CN")

    html = session(*base, "--format", "html", "-o", "report.html")
    assert "wrote report.html" in html.err
    assert "缺失必填项：事发单位名称及发生事件的设施、系统、平台的基本情况, 已采取的应对措施及效果" in html.err
    page = (session.folder / "report.html").read_text(encoding="utf-8")
    assert "<h1>事件报告</h1>" in page and "【缺失】" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold</b>" not in page

    session(*base, "--format", "json", "-o", "report.json")
    data = json.loads((session.folder / "report.json").read_text(encoding="utf-8"))
    assert (data["regime"], data["obligation"], data["stage"], data["title"]) == (
        "cn-cac-2025",
        "initial",
        "initial",
        "事件报告",
    )
    assert [f["id"] for f in data["fields"]] == [
        "unit",
        "discovered_at",
        "type",
        "level",
        "impact",
        "measures",
        "cause",
    ]
    assert {f["id"]: f["value"] for f in data["fields"]}["unit"] is None
    assert data["incident_title"] == "用户信息泄露 <b>bold</b>"
    printed = json.loads(session(*base, "--format", "json").out)  # standard output without -o
    assert {k: v for k, v in printed.items() if k != "generated_at"} == {
        k: v for k, v in data.items() if k != "generated_at"
    }

    session(*base, "--format", "pdf", "-o", "report.pdf")
    assert (session.folder / "report.pdf").read_bytes().startswith(b"%PDF-")
    default = session(*base, "--format", "pdf")  # a PDF never goes to the terminal
    assert f"wrote incident-{iid}-cn-cac-2025-initial.pdf" in default.err
    assert (session.folder / f"incident-{iid}-cn-cac-2025-initial.pdf").read_bytes().startswith(b"%PDF-")

    english = session("report", str(iid), "--regime", "cn-miit-2017", "--stage", "initial", "--lang", "en")
    assert "Immediate report by phone" in english.out and "required fields missing: Measures taken" in english.err

    assert "no regime 'cn-cac'" in session.refused(
        "report", str(iid), "--regime", "cn-cac", "--stage", "initial", code=3
    )
    line = session.refused("report", str(iid), "--regime", "eu-dora", "--stage", "initial", code=2)
    assert "does not apply" in line and "cn-cac-2025, cn-miit-2017, eu-gdpr" in line
    line = session.refused("report", str(iid), "--regime", "cn-cac-2025", "--stage", "interim", code=3)
    assert "initial (initial), summary (final)" in line
    session.refused("report", "99", "--regime", "cn-cac-2025", "--stage", "initial", code=3)


def test_filings_late_partial_repeated_and_refused(session: Session) -> None:
    detected = (datetime.now(UTC) - timedelta(minutes=30)).replace(microsecond=0)
    iid = open_leak(session, detected)
    submit = ("report", "submit", str(iid))

    line = session.refused(*submit, "--regime", "cn-cac-2025", "--stage", "initial", "--reference", "C-1", code=4)
    assert "required fields are missing" in line and "--partial" in line
    phased = session(*submit, "--regime", "cn-cac-2025", "--stage", "initial", "--reference", "C-1", "--partial")
    assert re.fullmatch(
        rf"incident {iid}: cn-cac-2025 initial submitted \(C-1\); document [0-9a-f]{{12}} kept\n", phased.out
    )
    cac = obligation(session.json("obligations", str(iid)), "cn-cac-2025", "initial")
    assert (cac["partial"], cac["reference"], cac["late_by_s"], cac["left_s"]) == (True, "C-1", None, None)

    line = session.refused(
        *submit, "--regime", "cn-miit-2017", "--stage", "initial", "--reference", "M-1", "--partial", code=2
    )
    assert "may not be submitted in phases" in line

    evidence = session.folder / "contain.txt"
    evidence.write_text("ports closed\n", encoding="utf-8")
    session("step", str(iid), "contain", "start")
    session("step", str(iid), "contain", "done", "--evidence", str(evidence))

    # MIIT "immediately": late since detection; refused without the reason (exit 2), kept with it
    line = session.refused(*submit, "--regime", "cn-miit-2017", "--stage", "initial", "--reference", "M-1", code=2)
    assert re.fullmatch(r"ir: this report is late by 3\d min: the regime requires the reason \(--late-reason\)", line)
    assert obligation(session.json("obligations", str(iid)), "cn-miit-2017", "immediate")["submitted_at"] is None
    document = session.folder / "phone-log.txt"
    document.write_bytes("电话报告记录 09:40\n".encode())
    filed = session(
        *submit, "--regime", "cn-miit-2017", "--stage", "immediate", "--reference", "M-1",
        "--document", str(document), "--late-reason", "scope unclear for the first half hour",
    )  # fmt: skip
    assert f"document {hashlib.sha256(document.read_bytes()).hexdigest()[:12]} kept" in filed.out
    miit = obligation(session.json("obligations", str(iid)), "cn-miit-2017", "immediate")
    assert miit["reference"] == "M-1" and miit["left_s"] is None
    assert 30 * 60 <= miit["late_by_s"] <= 40 * 60
    text = session("obligations", str(iid)).out
    assert re.search(r"immediate\s+Immediate report by phone: submitted .* \(M-1\), late 3\dm", text), text

    line = session.refused(
        *submit, "--regime", "cn-miit-2017", "--stage", "initial", "--reference", "M-2", "--late-reason", "x", code=4
    )
    assert "already submitted (M-1)" in line

    line = session.refused(*submit, "--regime", "xx-none", "--stage", "initial", "--reference", "X", code=3)
    assert "no regime 'xx-none'" in line
    line = session.refused(*submit, "--regime", "eu-dora", "--stage", "initial", "--reference", "X", code=2)
    assert "does not apply" in line
    session("report", "submit", str(iid), "--regime", "cn-miit-2017", "--stage", "initial", code=2)  # no --reference
