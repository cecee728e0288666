"""Each kind of playbook error, reported at its exact line and column."""

from __future__ import annotations

from datetime import date

import pytest

from ir.adapters.playbooks.compiler import Compiled, compile_source
from ir.domain.levels import ResponseLevel
from tests.builders import MINIMAL_PLAYBOOK, line_of


def compile_text(text: str, today: date | None = date(2026, 11, 28)) -> Compiled:
    return compile_source(text.encode(), "pb.yaml", today=today)


def edit(old: str, new: str, text: str = MINIMAL_PLAYBOOK) -> str:
    assert text.count(old) >= 1, old
    return text.replace(old, new, 1)


def problems(text: str) -> list[str]:
    return [str(p) for p in compile_text(text).problems]


def errors(text: str) -> list[str]:
    return [str(p) for p in compile_text(text).errors]


def test_minimal_playbook_is_valid() -> None:
    result = compile_text(MINIMAL_PLAYBOOK)
    assert result.problems == []
    pb = result.playbook
    assert pb is not None
    assert pb.id == "mini"
    assert [s.id for s in pb.steps_in_order()] == ["confirm", "fix"]
    assert str(pb.levels[ResponseLevel.II].rto) == "4h"
    assert len(pb.content_hash) == 64


def test_yaml_syntax_error_points_at_the_problem() -> None:
    text = edit("owner: NOC", "owner: [NOC")
    assert errors(text) == [
        "pb.yaml:7:9: error: YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence at 6:8)"
    ]


def test_duplicate_key() -> None:
    text = edit("owner: NOC\n", "owner: NOC\nowner: other\n")
    assert errors(text) == ["pb.yaml:7:1: error: duplicate key 'owner' (first at line 6)"]


def test_unknown_key_with_suggestion() -> None:
    text = edit("    role: noc\n    due: detection + 15m", "    role: noc\n    deu: detection + 15m")
    assert errors(text) == [f"pb.yaml:{line_of(text, 'deu:')}:5: error: unknown key 'deu'; did you mean 'due'?"]


def test_unknown_top_level_key() -> None:
    text = edit("owner: NOC", "ownr: NOC")
    out = errors(text)
    assert "pb.yaml:6:1: error: unknown key 'ownr'; did you mean 'owner'?" in out
    assert "pb.yaml:1:1: error: missing field 'owner'" in out


def test_wrong_type() -> None:
    text = edit('version: "1.0"', "version: [1]")
    assert errors(text) == ["pb.yaml:2:10: error: wrong type for version: expected text, got a list"]


def test_wrong_literal_with_suggestion() -> None:
    text = edit("category: outage", "category: outgae")
    out = errors(text)
    assert len(out) == 1
    assert out[0].startswith("pb.yaml:4:11: error: invalid category 'outgae'")
    assert out[0].endswith("did you mean 'outage'?")


def test_missing_field_in_a_step() -> None:
    text = edit("    role: noc\n    due: detection + 15m\n", "    due: detection + 15m\n")
    assert errors(text) == [f"pb.yaml:{line_of(text, '- id: confirm')}:5: error: missing field 'role'"]


def test_missing_level() -> None:
    start = MINIMAL_PLAYBOOK.index("  IV:")
    end = MINIMAL_PLAYBOOK.index("steps:")
    text = MINIMAL_PLAYBOOK[:start] + MINIMAL_PLAYBOOK[end:]
    assert errors(text) == [f"pb.yaml:{line_of(text, 'levels:')}:1: error: missing field 'IV'"]


def test_misordered_levels() -> None:
    block_i = MINIMAL_PLAYBOOK[MINIMAL_PLAYBOOK.index("  I:\n") : MINIMAL_PLAYBOOK.index("  II:\n")]
    text = MINIMAL_PLAYBOOK.replace(block_i, "", 1)
    text = text.replace("  IV:\n", block_i + "  IV:\n", 1)
    out = errors(text)
    assert out == [
        f"pb.yaml:{line_of(text, '  II:')}:3: error: levels out of order: 'II' where 'I' belongs "
        "(most severe first: I, II, III, IV)"
    ]


def test_unknown_role_reference() -> None:
    text = edit("    role: noc\n    due:", "    role: nco\n    due:")
    assert errors(text) == [f"pb.yaml:{line_of(text, 'role: nco')}:11: error: unknown role 'nco'; did you mean 'noc'?"]


def test_unknown_step_in_depends_on() -> None:
    text = edit("depends_on: [confirm]", "depends_on: [confirn]")
    assert errors(text) == [
        f"pb.yaml:{line_of(text, '[confirn]')}:18: error: unknown step 'confirn'; did you mean 'confirm'?"
    ]


def test_dependency_cycle_is_named() -> None:
    text = edit(
        "    role: noc\n    due: detection + 15m\n", "    role: noc\n    due: detection + 15m\n    depends_on: [fix]\n"
    )
    assert errors(text) == [f"pb.yaml:{line_of(text, '[fix]')}:18: error: dependency cycle: confirm -> fix -> confirm"]


def test_self_dependency_is_a_cycle() -> None:
    text = edit("depends_on: [confirm]", "depends_on: [confirm, fix]")
    assert errors(text) == [f"pb.yaml:{line_of(text, '[confirm, fix]')}:27: error: dependency cycle: fix -> fix"]


def test_unparsable_duration() -> None:
    text = edit("    rto: 4h\n", "    rto: 4 hours\n")
    out = errors(text)
    assert len(out) == 1
    # the value starts at column 10; the problem is the space after '4', at column 11
    assert out[0].startswith(f"pb.yaml:{line_of(text, 'rto: 4 hours')}:11: error: invalid duration '4 hours': ")


def test_unparsable_due_time() -> None:
    text = edit("due: detection + 15m", "due: detecton + 15m")
    assert errors(text)[0].startswith(
        f"pb.yaml:{line_of(text, 'detecton')}:10: error: unknown clock 'detecton'; did you mean 'detection'?"
    )


def test_ill_typed_expression_column_points_into_the_expression() -> None:
    text = edit("criteria: affected_users >= 100_000", 'criteria: affected_users >= "many"')
    out = errors(text)
    assert len(out) == 1
    line, col = out[0].split(":")[1:3]
    assert int(line) == line_of(text, '"many"')
    # the criteria value starts at column 15; the error is inside the expression, not at its start
    assert int(col) > 15
    assert "integer" in out[0] and "string" in out[0]


def test_unknown_fact_in_expression() -> None:
    text = edit("criteria: affected_users >= 10_000\n", "criteria: afected_users >= 10_000\n")
    assert errors(text) == [
        f"pb.yaml:{line_of(text, 'afected_users')}:15: error: invalid expression: unknown fact 'afected_users'; "
        "did you mean 'affected_users'?"
    ]


def test_enum_value_checked() -> None:
    text = edit("criteria: affected_users >= 1\n", 'criteria: scope == "county"\n')
    out = errors(text)
    assert len(out) == 1 and out[0].startswith(f"pb.yaml:{line_of(text, 'county')}:")
    assert "county" in out[0]


def test_unknown_regime() -> None:
    text = edit("review_by: 2099-01-01\n", "review_by: 2099-01-01\nregimes: [cn-miit-2071]\n")
    assert errors(text) == ["pb.yaml:9:11: error: unknown regime 'cn-miit-2071'; did you mean 'cn-miit-2017'?"]


def test_rto_above_mtpd() -> None:
    text = edit("    rto: 12h\n", "    rto: 72h\n")
    assert errors(text) == [
        f"pb.yaml:{line_of(text, 'rto: 72h')}:10: error: rto 3d exceeds the maximum tolerable outage (mtpd 2d)"
    ]


def test_credentials_in_an_action_are_refused() -> None:
    text = edit(
        "    kind: restore\n",
        "    kind: restore\n    action:\n      url: https://api.example.net/x\n"
        "      headers: {Authorization: Bearer abc}\n",
    )
    out = errors(text)
    assert len(out) == 1
    assert out[0].startswith(f"pb.yaml:{line_of(text, 'headers:')}:17: error: no credentials in a playbook")


def test_every_problem_in_the_file_is_listed() -> None:
    text = edit("category: outage", "category: outgae")
    text = edit('version: "1.0"', "version: [1]", text)
    text = edit("owner: NOC", "ownr: NOC", text)
    assert len(errors(text)) == 4  # category, version, unknown ownr, missing owner


def test_semantic_problems_are_all_listed() -> None:
    text = edit("    role: noc\n    due:", "    role: nco\n    due:")
    text = edit("depends_on: [confirm]", "depends_on: [confirn]", text)
    text = edit("    rto: 4h\n", "    rto: 4x\n", text)
    assert len(errors(text)) == 3


def test_overdue_review_and_draft_are_warnings_not_errors() -> None:
    text = edit("review_by: 2099-01-01", "review_by: 2020-01-01")
    text = edit("status: approved, by: leading group, on: 2026-01-01", "status: draft", text)
    result = compile_text(text)
    assert result.ok
    assert [str(p) for p in result.problems] == [
        "pb.yaml:7:20: warning: this playbook is a draft, not approved",
        "pb.yaml:8:12: warning: review overdue since 2020-01-01",
    ]


def test_no_full_restoration_step_is_a_warning() -> None:
    text = edit("    restores: full\n", "")
    text = edit("    kind: restore\n", "", text)
    result = compile_text(text)
    assert result.ok
    assert [p.message for p in result.problems] == [
        "no step restores service fully (a step with kind: restore and restores: full)"
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", "pb.yaml:1:1: error: empty file: a playbook is a YAML mapping"),
        (b"- a\n- b\n", "pb.yaml:1:1: error: a playbook is a YAML mapping of keys such as id, title, levels and steps"),
        (b"id: x\n\xff\xfe\x00garbage", "pb.yaml:2:1: error: not a UTF-8 text file (invalid byte 0xff)"),
        (b"id: x\x00\n", "pb.yaml:1:6: error: not a text file (it contains NUL bytes)"),
        (b"a: !!python/object:os.system ls\n", "pb.yaml:1:4: error: unsupported YAML tag"),
    ],
)
def test_hostile_or_broken_input(raw: bytes, expected: str) -> None:
    result = compile_source(raw, "pb.yaml")
    assert result.playbook is None
    assert str(result.problems[0]).startswith(expected)


def test_alias_bomb_is_refused() -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{','.join([prev] * 9)}]")
    result = compile_source("\n".join(lines).encode(), "bomb.yaml")
    assert result.playbook is None
    assert "alias bomb" in result.problems[0].message


def test_recursive_alias_is_refused() -> None:
    result = compile_source(b"a: &x [1, *x]\n", "rec.yaml")
    assert result.playbook is None
    assert (
        result.problems[0].message in ("refused: a recursive alias",)
        or "YAML syntax error" in result.problems[0].message
    )


@pytest.mark.parametrize("depth", [100, 10_000])
def test_deep_nesting_is_refused(depth: int) -> None:
    result = compile_source(("[" * depth + "]" * depth).encode(), "deep.yaml")
    assert result.playbook is None
    assert "nesting too deep" in result.problems[0].message


def test_huge_text_is_refused_without_parsing() -> None:
    raw = b"# " + b"x" * (9 * 1024 * 1024)
    result = compile_source(raw, "big.yaml")
    assert result.playbook is None
    assert "too large" in result.problems[0].message


def test_content_hash_changes_with_any_edit() -> None:
    a = compile_text(MINIMAL_PLAYBOOK).playbook
    b = compile_text(MINIMAL_PLAYBOOK + "# a comment\n").playbook
    assert a is not None and b is not None
    assert a.content_hash != b.content_hash
