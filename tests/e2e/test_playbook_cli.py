"""`ir validate`, `ir schema`, `ir playbooks`, `ir show` as a user runs them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.builders import MINIMAL_PLAYBOOK, line_of
from tests.e2e.cli import ROOT, ir

LIBRARY = ROOT / "playbooks"


def test_the_whole_library_validates() -> None:
    run = ir("validate", str(LIBRARY))
    assert run.code == 0, run.out + run.err
    assert "error" not in run.out
    assert "warning" not in run.out
    files = list(LIBRARY.rglob("*.yaml"))
    assert len(files) >= 14
    assert f"ok: {len(files)} playbook(s) valid" in run.out


def test_validate_reports_every_problem_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = MINIMAL_PLAYBOOK.replace("category: outage", "category: outgae").replace(
        "role: noc\n    due", "role: nco\n    due"
    )
    bad.write_text(text)
    good = tmp_path / "good.yaml"
    good.write_text(MINIMAL_PLAYBOOK)
    run = ir("validate", str(tmp_path))
    assert run.code == 1
    lines = run.out.strip().splitlines()
    assert (
        lines[0] == f"{bad}:4:11: error: invalid category 'outgae': expected 'disaster', 'outage' or 'attack'; "
        "did you mean 'outage'?"
    )
    assert lines[1] == f"{bad}:{line_of(text, 'role: nco')}:11: error: unknown role 'nco'; did you mean 'noc'?"
    assert "1 of 2 playbook(s) valid, 2 error(s)" in run.err


def test_validate_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL_PLAYBOOK.replace("rto: 4h", "rto: 4x"))
    run = ir("validate", "--json", str(bad))
    assert run.code == 1
    payload = json.loads(run.out)
    assert payload[0]["valid"] is False
    assert payload[0]["problems"][0]["line"] == 32


def test_warnings_do_not_change_the_exit_code(tmp_path: Path) -> None:
    draft = tmp_path / "draft.yaml"
    draft.write_text(MINIMAL_PLAYBOOK.replace("status: approved, by: leading group, on: 2026-01-01", "status: draft"))
    run = ir("validate", str(draft))
    assert run.code == 0
    assert "warning: this playbook is a draft" in run.out


def test_missing_path(tmp_path: Path) -> None:
    run = ir("validate", str(tmp_path / "nope.yaml"))
    assert run.code == 1
    assert "cannot read" in run.out


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bomb.yaml", None, "alias bomb"),
        ("garbage.yaml", bytes(range(256)) * 40, "not a"),
        ("deep.yaml", b"[" * 100_000 + b"]" * 100_000, "nesting too deep"),
    ],
)
def test_hostile_files_are_refused_quickly(tmp_path: Path, name: str, content: bytes | None, message: str) -> None:
    if content is None:
        lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        for i in range(1, 12):
            lines.append(f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]")
        content = "\n".join(lines).encode()
    path = tmp_path / name
    path.write_bytes(content)
    started = time.monotonic()
    run = ir("validate", str(path))
    assert run.code == 1
    assert message in run.out
    assert time.monotonic() - started < 30  # a hang would be the failure; speed is measured in bench/


def test_a_50_mb_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as fh:
        fh.truncate(50 * 1024 * 1024)
    run = ir("validate", str(path))
    assert run.code == 1
    assert "file too large" in run.out


def test_schema_is_current() -> None:
    run = ir("schema")
    assert run.code == 0
    committed = (LIBRARY / "playbook.schema.json").read_text(encoding="utf-8")
    assert run.out == committed, (
        "playbooks/playbook.schema.json is stale: run `ir schema > playbooks/playbook.schema.json`"
    )
    schema = json.loads(run.out)
    assert "steps" in schema["properties"]
    assert schema["additionalProperties"] is False


def test_playbooks_lists_the_library() -> None:
    run = ir("playbooks", "--json")
    assert run.code == 0
    rows = json.loads(run.out)
    ids = {r["id"] for r in rows}
    assert {"ddos", "earthquake", "typhoon-flood", "fibre-cut", "ransomware", "personal-data-leak"} <= ids
    assert all(r["valid"] for r in rows)
    categories = {r["category"] for r in rows}
    assert categories == {"disaster", "outage", "attack"}


def test_show_reads_in_both_languages() -> None:
    en = ir("show", "ddos", "--level", "II", "--lang", "en")
    zh = ir("show", "ddos", "--level", "II", "--lang", "zh-CN")
    assert en.code == 0 and zh.code == 0
    assert "Response level II severe" in en.out
    assert "RTO 4h" in en.out
    assert "Confirm the attack and assess it" in en.out
    assert "响应级别 II 重大" in zh.out
    assert "确认攻击并研判" in zh.out
    # steps that do not apply at level II are not listed; steps that do are in dependency order
    assert en.out.index("Confirm the attack") < en.out.index("Divert traffic to scrubbing")


def test_show_level_iv_omits_steps_of_higher_levels() -> None:
    run = ir("show", "ddos", "--level", "IV", "--lang", "en")
    assert run.code == 0
    assert "Ask upstream providers" not in run.out


def test_show_unknown_playbook_is_not_found() -> None:
    run = ir("show", "ddso")
    assert run.code == 3
    assert run.err.strip() == f"ir: no playbook 'ddso' in {LIBRARY.relative_to(ROOT)}; did you mean 'ddos'?"
