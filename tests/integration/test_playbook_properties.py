"""Property tests: generated valid playbooks round-trip; mutated playbooks never crash the validator."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ir.adapters.playbooks.compiler import compile_source
from ir.adapters.playbooks.export import playbook_document
from ir.domain.playbook import Playbook
from tests.builders import MINIMAL_PLAYBOOK

LIBRARY = Path(__file__).resolve().parents[2] / "playbooks"

ident = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
words = st.text(alphabet=st.sampled_from("abcdefgh 中文预案步骤"), min_size=1, max_size=12).map(
    lambda s: s.strip() or "x"
)
text_doc = st.builds(lambda zh, en: {"zh-CN": zh, "en": en}, words, words)
elapsed = st.sampled_from(["0s", "90s", "15m", "1h", "2h30m", "1d", "3d"])
clock = st.sampled_from(["detection", "awareness", "declaration", "classification", "mitigation"])


@st.composite
def playbook_docs(draw: st.DrawFn) -> dict[str, Any]:
    role_ids = draw(st.lists(ident, min_size=1, max_size=4, unique=True))
    roles = [{"id": r, "title": draw(text_doc)} for r in role_ids]
    fact_names = draw(st.lists(ident, min_size=1, max_size=3, unique=True))
    facts = [{"name": f, "type": "integer", "title": draw(text_doc)} for f in fact_names]

    def criteria() -> str:
        parts = [
            f"{draw(st.sampled_from(fact_names))} {draw(st.sampled_from(['>=', '<', '==']))} "
            f"{draw(st.integers(0, 10**7))}"
            for _ in range(draw(st.integers(1, 3)))
        ]
        return f" {draw(st.sampled_from(['and', 'or']))} ".join(parts)

    levels = {}
    for lv in ("I", "II", "III", "IV"):
        rto_h = draw(st.integers(1, 48))
        levels[lv] = {
            "criteria": criteria(),
            "declared_by": draw(st.sampled_from(role_ids)),
            "rto": f"{rto_h}h",
            "rpo": draw(elapsed),
            "mtpd": f"{rto_h * 2}h",
        }
    n_steps = draw(st.integers(1, 12))
    step_ids = [f"s{i}" for i in range(n_steps)]
    steps = []
    for i, sid in enumerate(step_ids):
        step: dict[str, Any] = {
            "id": sid,
            "title": draw(text_doc),
            "instructions": draw(text_doc),
            "role": draw(st.sampled_from(role_ids)),
        }
        deps = draw(st.lists(st.sampled_from(step_ids[:i]), unique=True, max_size=3)) if i else []
        if deps:
            step["depends_on"] = deps
        if draw(st.booleans()):
            step["due"] = f"{draw(clock)} {draw(st.sampled_from(['+', '-']))} {draw(elapsed)}"
        if draw(st.booleans()):
            step["levels"] = draw(st.lists(st.sampled_from(["I", "II", "III", "IV"]), min_size=1, unique=True))
        if draw(st.booleans()):
            step["checklist"] = draw(st.lists(text_doc, max_size=3))
        if draw(st.booleans()):
            step["approvals"] = draw(st.lists(st.sampled_from(role_ids), min_size=1, max_size=2))
        steps.append(step)
    steps[-1]["kind"] = "restore"
    steps[-1]["restores"] = "full"
    doc: dict[str, Any] = {
        "id": draw(ident),
        "version": draw(st.sampled_from(["1", "1.0", "2.3.1"])),
        "title": draw(text_doc),
        "category": draw(st.sampled_from(["disaster", "outage", "attack"])),
        "type": "equipment-failure/hardware",
        "owner": draw(words),
        "approval": {"status": "approved", "by": draw(words), "on": "2026-01-01"},
        "roles": roles,
        "facts": facts,
        "levels": levels,
        "steps": steps,
        "restoration": {"degraded": draw(text_doc), "full": draw(text_doc)},
    }
    if draw(st.booleans()):
        doc["notifications"] = [
            {
                "id": "n1",
                "title": draw(text_doc),
                "audience": draw(st.sampled_from(["internal", "users", "regulator", "partners"])),
                "roles": [draw(st.sampled_from(role_ids))],
                "channels": ["email"],
                "template": "t1",
                "due": f"detection + {draw(elapsed)}",
            }
        ]
    return doc


def _dump(doc: dict[str, Any]) -> bytes:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False).encode()


def _strip(pb: Playbook) -> Playbook:
    return dataclasses.replace(pb, content_hash="")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(playbook_docs())
def test_generated_playbook_round_trips(doc: dict[str, Any]) -> None:
    first = compile_source(_dump(doc), "gen.yaml")
    assert first.errors == [], [str(p) for p in first.errors]
    assert first.playbook is not None
    exported = playbook_document(first.playbook)
    second = compile_source(_dump(exported), "gen.yaml")
    assert second.playbook is not None, [str(p) for p in second.errors]
    assert _strip(second.playbook) == _strip(first.playbook)
    assert [s["id"] for s in exported["steps"]] == [s["id"] for s in doc["steps"]]
    assert {k: v["criteria"] for k, v in exported["levels"].items()} == {
        k: v["criteria"] for k, v in doc["levels"].items()
    }


def _sources() -> list[str]:
    files = sorted(LIBRARY.rglob("*.yaml"))
    return [MINIMAL_PLAYBOOK] + [f.read_text(encoding="utf-8") for f in files[:4]]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    text = draw(st.sampled_from(_sources()))
    lines = text.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "garble", "indent", "replace_value", "truncate"]))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap" and i + 1 < len(lines):
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
        elif op == "garble":
            pos = draw(st.integers(0, max(0, len(lines[i]) - 1)))
            junk = draw(st.text(min_size=1, max_size=5))
            lines[i] = lines[i][:pos] + junk + lines[i][pos:]
        elif op == "indent":
            lines[i] = draw(st.sampled_from([" ", "  ", "\t", ""])) + lines[i].lstrip(" ")
        elif op == "replace_value" and ":" in lines[i]:
            key = lines[i].split(":", 1)[0]
            value = draw(st.sampled_from(["", " 1", " [a, b]", " {x: 1}", " true", " null", " 'x'", " &a 1", " *a"]))
            lines[i] = f"{key}:{value}\n"
        elif op == "truncate":
            lines = lines[:i]
    data = "".join(lines).encode()
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(data)))
        data = data[:cut]
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutations_never_crash_the_validator(raw: bytes) -> None:
    result = compile_source(raw, "mut.yaml")
    # either a playbook or at least one error, each with a real position
    assert result.playbook is not None or result.errors
    for p in result.problems:
        assert p.line >= 1 and p.column >= 1
        assert "Traceback" not in p.message


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_crash_the_validator(raw: bytes) -> None:
    result = compile_source(raw, "junk.yaml")
    assert result.playbook is None or not result.errors
