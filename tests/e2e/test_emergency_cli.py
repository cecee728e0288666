"""Running a real emergency at the command line, as a commander types it: `python -m ir …` in a working
folder of its own, on a SQLite file. Every refusal exits with its code (2 bad input, 3 not found,
4 invalid transition, 5 not permitted) and one line on stderr; `--json` always parses; never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ir.domain.commands import Actor
from ir.entrypoints.cli import emergency_commands
from ir.entrypoints.cli.main import main
from tests.e2e.cli import ROOT, Run, ir

H = timedelta(hours=1)


class Session:
    """A working folder and the `ir` command run in it: in this process through the same entry point as
    `python -m ir` (main(argv): exit codes, one-line refusals), or as a real subprocess with `real`."""

    def __init__(self, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.folder = folder
        self.capsys = capsys
        self.env = {
            "IR_DATABASE_URL": f"sqlite:///{folder / 'ir.db'}",
            "IR_DATA_DIR": str(folder),
            "IR_PLAYBOOKS_DIR": str(ROOT / "playbooks"),
            "IR_CATALOGUE_FILE": str(ROOT / "catalogue" / "services.yaml"),
            "IR_LANG": "en",
        }

    def __call__(self, *args: str, code: int = 0) -> Run:
        self.capsys.readouterr()
        try:
            returned = main(list(args))
            exit_code = int(returned) if isinstance(returned, int) else 0
        except SystemExit as exit_:
            exit_code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        captured = self.capsys.readouterr()
        return self._check(Run(exit_code, captured.out, captured.err), args, code)

    def real(self, *args: str, code: int = 0) -> Run:
        return self._check(ir(*args, cwd=self.folder, env=self.env), args, code)

    def _check(self, run: Run, args: tuple[str, ...], code: int) -> Run:
        assert "Traceback" not in run.out and "Traceback" not in run.err, run.out + run.err
        assert "internal error" not in run.err, run.err
        assert run.code == code, f"ir {' '.join(args)} exited {run.code}, not {code}: {run.out}{run.err}"
        return run

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").out)

    def refused(self, *args: str, code: int, real: bool = False) -> str:
        """A refusal: the exit code, nothing on stdout, one line on stderr; returns that line."""
        run = self.real(*args, code=code) if real else self(*args, code=code)
        assert run.out == ""
        lines = run.err.strip().splitlines()
        assert len(lines) == 1, run.err
        assert lines[0].startswith("ir: "), lines[0]
        return lines[0]

    def write(self, name: str, text: str) -> str:
        path = self.folder / name
        path.write_text(text, encoding="utf-8")
        return str(path)


@pytest.fixture
def session(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Session:
    folder = tmp_path / "work"
    folder.mkdir()
    s = Session(folder, capsys)
    for name, value in s.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("IR_DEBUG", raising=False)
    monkeypatch.chdir(folder)
    s("db", "upgrade")
    return s


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds")


def kinds(out: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in out["events"]]


def test_a_typhoon_at_the_command_line(session: Session) -> None:
    landfall = (datetime.now(UTC) + 72 * H).replace(microsecond=0)
    opened = session.json(
        "open", "typhoon-flood", "--title", "台风摩羯", "--warning", "orange", "--impact", iso(landfall)
    )
    assert opened["incident"] == 1
    assert kinds(opened) == ["incident_opened", "warning_issued", "clock_recorded"]
    board = session.json("status", "1")
    assert board["warning"] == "orange"
    assert board["level"] is None
    due = {s["id"]: s["due_at"] for s in board["steps"]}
    assert datetime.fromisoformat(due["prep-48h"]) == landfall - 48 * H
    assert datetime.fromisoformat(due["final-readiness"]) == landfall - 6 * H

    # warnings
    assert session.refused("warning", "1", "red", code=2) == "ir: raising the warning (orange -> red) needs --reason"
    raised = session.json("warning", "1", "red", "--reason", "the meteorological bureau issued red")
    assert raised["events"][0]["previous"] == "orange"
    assert session.refused("warning", "1", "red", "--reason", "again", code=4) == (
        "ir: incident 1 is already under a red warning"
    )
    assert "needs --reason" in session.refused("warning", "1", "orange", code=2)
    assert session.refused("warning", "99", "red", "--reason", "x", code=3) == "ir: no incident 99"
    assert "lifting a warning needs a reason" in session.refused("warning", "1", "lift", code=2)

    # people
    assigned = session.json("assign", "1", "power", "chen.jie")
    assert assigned["events"][0]["user"] == "chen.jie"
    assert session.refused("assign", "1", "comander", "x", code=3) == (
        "ir: no role 'comander' in playbook typhoon-flood; did you mean 'commander'?"
    )
    start, end = iso(landfall - 12 * H), iso(landfall + 12 * H)
    session("assign", "1", "field_repair", "wang.wei", "--from", start, "--until", end)
    assert session.refused("assign", "1", "field_repair", "li.na", "--from", end, "--until", start, code=2) == (
        "ir: a shift ends after it starts"
    )
    assert session.refused("assign", "1", "field_repair", "wang.wei", "--from", start, code=4) == (
        "ir: wang.wei is already assigned to 'field_repair' for that shift"
    )
    session("assign", "1", "power", "chen.jie", "--remove", "--reason", "off shift")
    assert session.refused("assign", "1", "power", "chen.jie", "--remove", code=3) == (
        "ir: chen.jie is not assigned to 'power'"
    )
    assert session.refused("assign", "1", "power", "chen.jie", "--from", "tomorrow", code=2).startswith("ir: --from")

    # the log
    assert kinds(session.json("log", "1", "decision", "launch level II preparation")) == ["log_entry_added"]
    session("log", "1", "message", "county HQ asks for 2 satellite phones", "--source", "文昌三防办")
    entries = session.json("log", "1")
    assert [(e["category"], e["source"]) for e in entries] == [("decision", None), ("message", "文昌三防办")]
    assert "county HQ asks" in session("log", "1").out
    session("log", "1", "rumour", "x", code=2)  # not a category (a usage error)
    session("log", "1", "decision", code=2)  # no text

    # resources
    for unit in ("gen-01", "gen-02"):
        session(
            "resources",
            "register",
            unit,
            "--kind",
            "generator",
            "--name",
            f"油机 {unit}",
            "--base",
            "海口仓库",
            "--capacity",
            "50",
        )
    assert session.refused(
        "resources", "register", "gen-01", "--kind", "generator", "--name", "x", "--base", "y", code=4
    ) == ("ir: a unit 'gen-01' is already registered")
    requested = session.json(
        "resources", "request", "1", "generator", "--to", "文昌", "--step", "prep-48h", "--by", iso(landfall - 48 * H)
    )
    assert requested["events"][0]["quantity"] == 200  # what the step requests
    assert (
        "allocate with ir resources allocate 1 r2"
        in session("resources", "request", "1", "generator", "--quantity", "1", "--to", "琼海").out
    )
    assert session.refused("resources", "request", "1", "generater", "--quantity", "1", "--to", "x", code=3) == (
        "ir: playbook typhoon-flood dispatches no 'generater'; did you mean 'generator'?"
    )
    assert "--quantity" in session.refused("resources", "request", "1", "generator", "--to", "x", code=2)
    assert session.refused("resources", "request", "1", "generator", "--quantity", "0", "--to", "x", code=2) == (
        "ir: a quantity is between 1 and 1,000,000"
    )
    allocated = session.json("resources", "allocate", "1", "r1")
    assert allocated["events"][0]["units"] == {"gen-01": 50, "gen-02": 50}
    assert session.refused("resources", "allocate", "1", "r2", code=4) == (
        "ir: no generator is available in the inventory"
    )
    assert session.refused("resources", "allocate", "1", "r9", code=3) == "ir: incident 1 has no resource request 'r9'"
    assert session.refused("resources", "arrive", "1", "r1", code=4) == "ir: request r1 has no units to mark arrived"
    assert session.refused("resources", "arrive", "1", "r1", "gen-01", code=4) == (
        "ir: unit gen-01 has not been dispatched"
    )
    session("resources", "dispatch", "1", "r1")
    assert "r1 arrived" in session("resources", "arrive", "1", "r1", "gen-01").out
    units = {u["id"]: u for u in session.json("resources", "list")}
    assert (units["gen-01"]["status"], units["gen-01"]["incident_id"], units["gen-01"]["request_id"]) == (
        "committed",
        1,
        "r1",
    )
    assert "incident 1 r1" in session("resources", "list", "--kind", "generator").out
    assert session.refused("resources", "cancel", "1", "r1", "--reason", "x", code=4) == (
        "ir: units of request r1 are still committed (gen-01, gen-02): return them first"
    )
    session("resources", "return", "1", "r1")
    assert session.refused("resources", "return", "1", "r1", code=4) == ("ir: request r1 has no units to mark returned")
    assert kinds(session.json("resources", "cancel", "1", "r1", "--reason", "pre-positioned elsewhere")) == [
        "resource_request_cancelled"
    ]
    assert {u["status"] for u in session.json("resources", "list")} == {"available"}
    resources = {r["request"]: r for r in session.json("status", "1")["resources"]}
    assert resources["r1"]["cancelled"] == "pre-positioned elsewhere"
    assert resources["r1"]["units"] == {"gen-01": "returned", "gen-02": "returned"}

    # the end of the response needs a level
    assert session.refused("end-response", "1", code=4) == (
        "ir: incident 1 has no response to end: no level was declared"
    )
    session("level", "1", "II")

    # situation reports
    drafted = session.json("sitrep", "1", "draft")
    assert kinds(drafted) == ["sitrep_drafted"]
    assert set(drafted["events"][0]["text"]) == {"zh-CN", "en"}
    assert session.refused("sitrep", "1", "draft", code=4) == (
        "ir: situation report 1 is still a draft: edit and release it first"
    )
    shown = session.json("sitrep", "1", "show")
    assert (shown["number"], shown["released_at"]) == (1, None)
    assert shown["facts"]["level"] == "II"
    assert "situation report 1" in session("sitrep", "1", "show", "--lang", "en").out
    assert "第1期态势报告" in session("sitrep", "1", "show", "--lang", "zh-CN").out
    zh = session.write("zh.txt", "第1期：台风橙色预警升为红色，准备工作按时完成。")
    en = session.write("en.txt", "Report 1: the warning is red; preparation is on time.")
    assert kinds(session.json("sitrep", "1", "edit", "1", "--zh", zh, "--en", en)) == ["sitrep_edited"]
    assert session.refused("sitrep", "1", "edit", "1", "--zh", zh, "--en", en, code=4) == "ir: no change"
    assert kinds(session.json("sitrep", "1", "release", "1")) == ["sitrep_released"]
    assert session.refused("sitrep", "1", "release", "1", code=4) == "ir: situation report 1 was already released"
    assert session.refused("sitrep", "1", "edit", "1", "--en", en, code=4) == (
        "ir: situation report 1 was released: draft a new one"
    )
    assert (
        session.refused("sitrep", "1", "release", "9", code=3)
        == "ir: incident 1 has no situation report 9 (it has 1 to 1)"
    )
    assert session.json("sitrep", "1", "show", "1")["released_at"] is not None
    assert session("sitrep", "1", "show", "--lang", "en").out.strip() == en_text(en)

    # impact
    impact = session.json("impact", "1", "--service", "mobile-voice", "--service", "sms", "--area", "文昌")
    assert impact["events"][0]["services"] == ["mobile-voice", "sms"]
    assert session.refused("impact", "1", "--service", "mobile-voic", code=3) == (
        "ir: no service 'mobile-voic' in the service catalogue; did you mean 'mobile-voice'?"
    )
    assert "no change" in session.refused(
        "impact", "1", "--service", "sms", "--service", "mobile-voice", "--area", "文昌", code=4
    )

    # links: a child incident
    child = session.json("open", "power-grid-failure", "--title", "文昌停电", "--level", "III")["incident"]
    linked = session.json("link", "1", str(child))
    event = linked["events"][0]
    assert (event["kind"], event["other"], event["relation"]) == ("incident_linked", child, "child")
    assert session.json("status", str(child))["parent"] == 1
    assert session.json("status", "1")["children"] == [child]
    assert session.refused("link", "1", str(child), code=4) == f"ir: incident {child} is already a child of incident 1"
    assert session.refused("link", "1", "99", code=3) == "ir: no incident 99"
    assert session.refused("link", "1", "1", code=2) == "ir: an incident cannot be linked to itself"
    session("link", "1", str(child), "--remove")
    assert session.json("status", str(child))["parent"] is None

    # handover
    handed = session.json("handover", "1", "zhou.min", "--note", "夜班：文昌3个站点燃油偏低")
    situation = handed["events"][0]["situation"]
    assert (situation["level"], situation["warning"]) == ("II", "red")
    assert session.json("status", "1")["commander"] == "zhou.min"
    assert session.refused("handover", "1", "zhou.min", code=4) == "ir: zhou.min already commands incident 1"

    # the end of the response; cancel and reopen
    ended = session.json("end-response", "1", "--reason", "all sites restored")
    assert kinds(ended) == ["response_ended"]
    assert session.refused("end-response", "1", code=4) == "ir: the response of incident 1 has already ended"
    assert kinds(session.json("cancel", str(child), "--reason", "the grid held: a false alarm")) == [
        "incident_cancelled"
    ]
    assert session.json("status", str(child))["cancelled"] == "the grid held: a false alarm"
    assert session.refused("cancel", str(child), "--reason", "again", code=4) == f"ir: incident {child} is closed"
    session("cancel", str(child), code=2)  # --reason is required (a usage error)
    assert kinds(session.json("reopen", str(child), "--reason", "the grid failed after all")) == ["incident_reopened"]
    assert session.refused("reopen", str(child), "--reason", "x", code=4) == f"ir: incident {child} is open"
    assert session("warning", "1", "lift", "--reason", "the typhoon weakened").out.strip() == (
        "incident 1: warning lifted"
    )
    assert session.json("status", "1")["warning"] is None


def en_text(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")


def test_a_second_playbook_joins_at_the_command_line(session: Session) -> None:
    session("open", "dns-failure", "--title", "DNS 解析失败", "--level", "II")
    session("step", "1", "confirm", "done")
    joined = session.json("add-playbook", "1", "ddos", "--reason", "the outage is a DDoS on the resolvers")
    assert kinds(joined) == ["playbook_added"]
    assert joined["events"][0]["playbook_id"] == "ddos"
    board = session.json("status", "1")
    assert board["joined_playbooks"] == ["ddos"]
    steps = {s["id"]: s["status"] for s in board["steps"]}
    assert steps["confirm"] == "done"  # nothing done is lost
    assert steps["ddos.confirm"] == "ready"
    assert steps["ddos.scrubbing"] == "pending"
    assert session.refused("add-playbook", "1", "ddos", "--reason", "again", code=4) == (
        "ir: playbook ddos is already part of incident 1"
    )
    assert session.refused("add-playbook", "1", "nosuch", "--reason", "x", code=3).startswith("ir: ")
    session("step", "1", "ddos.confirm", "done")
    assert {s["id"]: s["status"] for s in session.json("status", "1")["steps"]}["ddos.scrubbing"] == "ready"


def test_contacts_at_the_command_line_are_kept_sealed_and_shown_masked(session: Session) -> None:
    contacts = session.write(
        "contacts.csv",
        "id,name,phone,email,address,lang,groups\n"
        "c-wang,王小明,13800138000,wang@example.cn,海口市龙华区,zh-CN,provincial-cab;china-tower\n"
        "c-li,Li Na,13900139000,,,en,provincial-cab\n",
    )
    assert session("contacts", "import", contacts).out.strip() == "imported 2 contact(s), 3 group membership(s)"
    listed = session.json("contacts", "list")
    assert [(c["id"], c["name"], c["phone"], c["groups"]) for c in listed] == [
        ("c-li", "••••", "••••", ["provincial-cab"]),
        ("c-wang", "••••", "••••", ["china-tower", "provincial-cab"]),
    ]
    shown = session("contacts", "list", "--group", "china-tower").out
    assert "c-wang" in shown and "c-li" not in shown
    for text in (session("contacts", "list").out, json.dumps(listed, ensure_ascii=False)):
        assert "王小明" not in text and "13800138000" not in text
    database = (session.folder / "ir.db").read_bytes() + (
        (session.folder / "ir.db-wal").read_bytes() if (session.folder / "ir.db-wal").exists() else b""
    )
    assert "王小明".encode() not in database and b"13800138000" not in database
    bad = session.write("bad.csv", "id,name,mobile\nx,y,z\n")
    assert session.refused("contacts", "import", bad, code=2) == (
        "ir: unknown CSV columns: mobile (known: id, name, phone, email, address, lang, groups)"
    )


def test_sitrep_numbers_that_do_not_exist_are_not_found(session: Session) -> None:
    """`ir sitrep ID show|edit N` for a report that does not exist: not found (exit 3), one line."""
    session("open", "typhoon-flood", "--title", "摩羯", "--level", "II")
    en = session.write("en.txt", "edited")
    found: list[tuple[str, int, str]] = []

    def attempt(*args: str) -> None:
        session.capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        err = session.capsys.readouterr().err.strip()
        found.append((" ".join(args), code, err.splitlines()[0][:4] if err else ""))

    attempt("sitrep", "1", "show")  # none drafted yet
    session("sitrep", "1", "draft")
    attempt("sitrep", "1", "show", "9")
    attempt("sitrep", "1", "edit", "9", "--en", en)
    assert found == [
        ("sitrep 1 show", 3, "ir: "),
        ("sitrep 1 show 9", 3, "ir: "),
        (f"sitrep 1 edit 9 --en {en}", 3, "ir: "),
    ]


def test_a_responder_is_not_permitted_to_command(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """The local command line acts as an administrator; run as a responder, its commands are refused."""
    session("open", "typhoon-flood", "--title", "摩羯", "--level", "II")
    monkeypatch.setattr(emergency_commands, "_actor", lambda: Actor(id="wang.wei", roles=frozenset({"responder"})))
    assert session.refused("sitrep", "1", "draft", code=5) == "ir: wang.wei may not sitrep draft"
    assert session.refused("link", "1", "1", code=5) == "ir: wang.wei may not incident link"
    assert session.refused("assign", "1", "noc", "wang.wei", code=5) == "ir: wang.wei may not people assign"
    assert kinds(session.json("log", "1", "observation", "water rising at the Wenchang room")) == ["log_entry_added"]


def test_the_real_command_exits_with_the_code_of_each_refusal(session: Session) -> None:
    """The same refusals from a real `python -m ir` process: exit code, one line, no traceback."""
    landfall = iso(datetime.now(UTC) + 72 * H)
    session("open", "typhoon-flood", "--title", "摩羯", "--warning", "orange", "--impact", landfall)
    assert session.refused("warning", "1", "red", code=2, real=True) == (
        "ir: raising the warning (orange -> red) needs --reason"
    )
    assert session.refused("assign", "1", "comander", "x", code=3, real=True) == (
        "ir: no role 'comander' in playbook typhoon-flood; did you mean 'commander'?"
    )
    assert session.refused("end-response", "1", code=4, real=True) == (
        "ir: incident 1 has no response to end: no level was declared"
    )
    program = (
        "import sys\n"
        "from ir.domain.commands import Actor\n"
        "import ir.entrypoints.cli.emergency_commands as m\n"
        "m._actor = lambda: Actor(id='wang.wei', roles=frozenset({'responder'}))\n"
        "from ir.entrypoints.cli.main import main\n"
        "main(sys.argv[1:])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", program, "warning", "1", "red", "--reason", "x"],
        check=False,
        cwd=session.folder,
        env={**os.environ, **session.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert (proc.returncode, proc.stdout, proc.stderr.strip()) == (5, "", "ir: wang.wei may not warning issue")
