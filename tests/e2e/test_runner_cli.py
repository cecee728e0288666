"""The incident commander's session at the command line, as a user types it: `python -m ir …` in a
working folder of its own, on a SQLite file."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
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
            "IR_LANG": "en",
        }

    def __call__(self, *args: str, code: int = 0) -> Run:
        run = ir(*args, cwd=self.folder, env=self.env)
        assert "Traceback" not in run.out and "Traceback" not in run.err, run.out + run.err
        assert run.code == code, f"ir {' '.join(args)} exited {run.code}, not {code}: {run.out}{run.err}"
        return run

    def json(self, *args: str) -> Any:
        run = self(*args, "--json")
        return json.loads(run.out)

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
    return Session(folder)


def when(text: str | None) -> datetime:
    assert text is not None
    return datetime.fromisoformat(text)


def test_an_unmigrated_database_exits_7(session: Session) -> None:
    line = session.refused("status", "1", code=7)
    assert "not migrated" in line
    assert "ir db upgrade" in line
    session.refused("worker", "--once", code=7)

    upgraded = session("db", "upgrade")
    assert "migrated" in upgraded.out
    assert "up to date" in session("db", "upgrade").out
    assert session.json("incidents") == []
    session.refused("status", "1", code=3)


def test_a_commanders_session(session: Session) -> None:
    session("db", "upgrade")
    opened = session.json("open", "ddos", "--title", "DDoS on the DNS resolvers", "--fact", "affected_users=1,200,000")
    assert opened["incident"] == 1
    assert opened["version"] == 1
    assert opened["events"][0]["kind"] == "incident_opened"
    assert opened["events"][0]["facts"] == {"affected_users": 1200000}

    classified = session("classify", "1")
    assert "suggested level: II" in classified.out
    verdict = session.json("classify", "1")
    assert verdict["suggested"] == "II"
    assert verdict["current"] is None
    assert "provinces_affected" in verdict["missing_facts"]

    assert session.json("level", "1", "II")["version"] == 2

    assert session.refused("step", "1", "scrubbing", "start", code=4) == "ir: step 'scrubbing' waits on 'confirm'"
    assert session.json("step", "1", "confirm", "start")["version"] == 3
    done = session.json("step", "1", "confirm", "done")
    assert done == {"incident": 1, "version": 4, "events": ["step_completed"]}

    changed = session.refused("level", "1", "III", code=2)
    assert "--reason" in changed
    missing = session.refused("step", "1", "nosuch", "start", code=3)
    assert "no step 'nosuch'" in missing
    typo = session.refused("step", "1", "scrubing", "start", code=3)
    assert "did you mean 'scrubbing'?" in typo
    stale = session.refused("step", "1", "scrubbing", "start", "--if-version", "2", code=4)
    assert "version" in stale

    board = session.json("status", "1")
    assert board["id"] == 1
    assert board["title"] == "DDoS on the DNS resolvers"
    assert board["playbook"]["id"] == "ddos"
    assert board["level"] == "II"
    assert board["version"] == 4
    assert board["closed"] is False
    assert board["facts"] == {"affected_users": 1200000}
    assert {"detection", "declaration", "classification"} <= set(board["clocks"])
    steps = {s["id"]: s for s in board["steps"]}
    assert steps["confirm"]["status"] == "done"
    assert steps["scrubbing"]["status"] == "ready"
    assert steps["prepare-scrubbing"]["status"] == "not_applicable"
    rto = next(r for r in board["recovery"] if r["name"] == "rto")
    assert rto["target_s"] == 4 * 3600  # level II: RTO 4h
    assert when(rto["due_at"]) - when(board["clocks"]["detection"]) == timedelta(hours=4)
    assert rto["breached"] is False
    assert 0 < rto["left_s"] <= 4 * 3600
    assert {d["ref"] for d in board["deadlines"]} >= {"rto", "mtpd", "notification:miit-report"}

    timeline = session.json("timeline", "1")
    assert [e["seq"] for e in timeline] == [1, 2, 3, 4]
    assert [e["kind"] for e in timeline] == ["incident_opened", "level_declared", "step_started", "step_completed"]
    assert all(e["actor"].startswith("local:") for e in timeline)

    session("clock", "1", "awareness", "2026-10-01T09:00+08:00", "--reason", "late report")
    correction = session.refused("clock", "1", "awareness", "2026-10-01T10:00+08:00", code=2)
    assert "--reason" in correction
    corrected = session.json("clock", "1", "awareness", "2026-10-01T10:00+08:00", "--reason", "the call log")
    assert corrected["events"][0]["correction"] is True

    restored = session.json("restore", "1")
    assert restored["events"][0]["clock"] == "restoration_full"
    board = session.json("status", "1")
    assert when(board["clocks"]["awareness"]) == when("2026-10-01T10:00+08:00")
    rto = next(r for r in board["recovery"] if r["name"] == "rto")
    assert rto["met"] is True
    assert rto["breached"] is False

    refused = session.refused("close", "1", code=4)
    assert "open steps" in refused
    closed = session.json("close", "1", "--reason", "attack over; the rest in the review")
    assert closed["events"][0]["kind"] == "incident_closed"

    listed = session.json("incidents")
    assert len(listed) == 1
    row = listed[0]
    assert (row["id"], row["status"], row["level"], row["playbook_id"]) == (1, "closed", "II", "ddos")
    assert row["title"] == "DDoS on the DNS resolvers"

    final = session.json("timeline", "1")
    assert [e["seq"] for e in final] == list(range(1, len(final) + 1))
    assert final[-1]["kind"] == "incident_closed"

    worker = session("worker", "--once")
    assert "one pass" in worker.err
    rebuilt = session("admin", "rebuild-projections")
    assert f"rebuilt projections of 1 incident(s) from {len(final)} event(s)" in rebuilt.out
    assert session.json("incidents") == listed


def test_the_worker_marks_overdue_work_once(session: Session) -> None:
    session("db", "upgrade")
    session(
        "open",
        "ddos",
        "--title",
        "old attack",
        "--level",
        "II",
        "--fact",
        "affected_users=1,200,000",
        "--detected",
        (datetime.now().astimezone() - timedelta(hours=5)).isoformat(timespec="seconds"),
    )
    first = session("worker", "--once")
    lines = [line for line in first.err.splitlines() if line.startswith("incident 1:")]
    assert "incident 1: rto breached" in lines
    assert "incident 1: step:confirm overdue" in lines
    assert "incident 1: step:confirm escalated -> leading_group" in lines
    second = session("worker", "--once")
    assert [line for line in second.err.splitlines() if line.startswith("incident 1:")] == []
    listed = session.json("incidents")
    assert listed[0]["overdue_marks"] >= 1


def test_bad_input_exits_2_without_a_traceback(session: Session) -> None:
    session("db", "upgrade")
    session("open", "ddos", "--title", "x")
    assert "fact" in session.refused("open", "ddos", "--title", "y", "--fact", "nosuchfact=1", code=2)
    session.refused("fact", "1", "affected_users=many", code=2)
    session.refused("clock", "1", "awarenes", code=2)
    session.refused("clock", "1", "awareness", "yesterday", code=2)
    session.refused("open", "nosuchplaybook", "--title", "x", code=3)
    assert session.json("status", "1")["version"] == 1
