"""`ir audit …` as an operator and an auditor type it: `python -m ir` in a working folder of its own, on
a SQLite file. Verify (exit 0, exit 1 once tampered), JSON, kept checkpoints, export with proofs that an
auditor checks without trusting ir, prove, tail, checkpoint, key rotation, shredding. Never a traceback.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ir.adapters.audit import record_format
from ir.adapters.audit.checkpoint import Verifier, verify_checkpoint
from ir.adapters.audit.merkle import verify_inclusion
from ir.adapters.db.engine import make_engine
from ir.adapters.db.schema import upgrade
from ir.bootstrap import build
from ir.config import Settings
from ir.domain import commands as c
from tests.e2e.cli import ROOT, Run, ir

PLAYBOOKS = str(ROOT / "playbooks")


class Session:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.db = folder / "ir.db"
        self.env = {
            "IR_DATABASE_URL": f"sqlite:///{self.db}",
            "IR_DATA_DIR": str(folder),
            "IR_PLAYBOOKS_DIR": PLAYBOOKS,
            "IR_LANG": "en",
            # checkpoints come every N records only: the wall clock (a slow machine) must not add one
            "IR_AUDIT_CHECKPOINT_SECONDS": "86400",
        }

    def __call__(self, *args: str, code: int = 0) -> Run:
        run = ir(*args, cwd=self.folder, env=self.env)
        assert "Traceback" not in run.out and "Traceback" not in run.err, run.out + run.err
        assert run.code == code, f"ir {' '.join(args)} exited {run.code}, not {code}: {run.out}{run.err}"
        return run

    def json(self, *args: str, code: int = 0) -> Any:
        return json.loads(self(*args, "--json", code=code).out)

    def refused(self, *args: str, code: int) -> str:
        run = self(*args, code=code)
        lines = run.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ir: "), run.err
        return lines[0]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deployment with an incident worked on (made once, in this process to save a dozen cold starts, and
    copied for each test): the commands below are the same ones `ir open/step/note` hand to the handlers."""
    folder = tmp_path_factory.mktemp("made") / "work"
    settings = Settings(database_url=f"sqlite:///{folder / 'ir.db'}", data_dir=str(folder), playbooks_dir=PLAYBOOKS)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    actor = c.Actor(id="local:auditor")
    with build(settings) as app:
        h = app.handlers.handle
        iid = h(c.OpenIncident(actor=actor, playbook="ddos", title="Botnet flood on the DNS resolvers", level="II"))
        base: dict[str, Any] = {"actor": actor, "incident_id": iid.incident_id}
        h(c.StartStep(**base, step_id="confirm"))
        h(c.AddNote(**base, text="Zhang San called the hotline from 138-0000-1111", about="zhang-san"))
        h(c.AddNote(**base, text="Li Si is on site", about="li-si"))
        h(c.CompleteStep(**base, step_id="confirm"))
        h(c.AddNote(**base, text="scrubbing centre B at 80% capacity"))
        h(c.StartStep(**base, step_id="scrubbing"))
        h(c.AddNote(**base, text="traffic back to normal"))
    return folder


@pytest.fixture
def session(made: Path, tmp_path: Path) -> Session:
    folder = tmp_path / "work"
    shutil.copytree(made, folder)  # no process has it open: the database files copy as they are
    return Session(folder)


def entry_hash_of(record: dict[str, Any], log_id: str) -> bytes:
    """What an auditor computes from an exported record's own fields (never trusting its entry_hash)."""
    created = record_format.micros(datetime.fromisoformat(record["created_at"]))
    header = record_format.header(
        log_id=log_id,
        seq=record["seq"],
        created_us=created,
        record_id=record["id"],
        key_id=record["key_id"],
        subject_ref=record["subject_ref"],
        ref=record["ref"],
        digest=bytes.fromhex(record["digest"]),
        prev_hash=bytes.fromhex(record["prev_hash"]),
    )
    return record_format.entry_hash(header, base64.b64decode(record["body"]))


def tamper(db: Path, sql: str, *params: Any) -> None:
    """An attacker with the database file: the append-only triggers dropped, then the change."""
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER IF EXISTS audit_records_no_update")
        conn.execute("DROP TRIGGER IF EXISTS audit_records_no_delete")
        conn.execute(sql, params)


# -- verify, checkpoint, export, prove, tail -------------------------------------------------------------


def test_checkpoint_verify_export_prove_and_tail(session: Session, tmp_path: Path) -> None:
    made = session("audit", "checkpoint").out
    assert made.startswith("checkpoint: 9 records, root ")
    assert "published to" in made

    ok = session("audit", "verify")
    assert ok.out.strip().splitlines()[-1].startswith("ok: 9 records, root ")
    report = session.json("audit", "verify", "--events")
    assert report["ok"] is True and report["errors"] == []
    assert report["size"] == 9 and report["events_checked"] == 9
    assert 9 in report["checkpoints_verified"]

    kept = tmp_path / "auditor"
    shutil.copytree(session.folder / "checkpoints", kept)
    with_kept = session.json("audit", "verify", "--checkpoint", str(kept))
    assert with_kept["ok"] is True and 9 in with_kept["checkpoints_verified"]
    one_file = sorted(kept.glob("ir-audit-0*.checkpoint"))[-1]
    assert session.json("audit", "verify", "--checkpoint", str(one_file))["ok"] is True

    key = session("audit", "key").out.strip()
    lines = session("audit", "export", "--from", "0", "--to", "9", "--decrypt").out.splitlines()
    header = json.loads(lines[0])
    records = [json.loads(line) for line in lines[1:]]
    assert header["verifier_key"] == key
    assert [r["seq"] for r in records] == list(range(9))  # record #9 (the export's own) is not sealed yet
    checkpoint = verify_checkpoint(header["checkpoint"], [Verifier(key)], origin=f"ir-audit/{header['log_id']}")
    assert checkpoint.size == header["tree_size"] == 9
    for r in records:
        leaf = entry_hash_of(r, header["log_id"])
        assert leaf.hex() == r["entry_hash"]
        assert r["inclusion"]["tree_size"] == 9
        proof = [bytes.fromhex(p) for p in r["inclusion"]["proof"]]
        assert verify_inclusion(r["seq"], checkpoint.size, leaf, proof, checkpoint.root), r["seq"]
        assert set(r["content"]) >= {"action", "actor", "subject", "at", "payload"}, r["content"]
    assert {r["content"]["subject"] for r in records} == {"incident:1"}
    assert "Zhang San" not in "\n".join(lines)  # a personal note stays sealed under its person's key
    for a, b in itertools.pairwise(records):
        assert b["prev_hash"] == a["entry_hash"]

    to_file = tmp_path / "export.jsonl"
    session("audit", "export", "--from", "2", "--to", "4", "-o", str(to_file))
    exported = [json.loads(line) for line in to_file.read_text().splitlines()[1:]]
    assert [r["seq"] for r in exported] == [2, 3, 4]
    assert all("content" not in r for r in exported)

    proved = session("audit", "prove", "3")
    assert "record #3" in proved.out and ": verified" in proved.out
    answer = session.json("audit", "prove", "3")
    assert answer["verified"] is True and answer["seq"] == 3
    size, root = answer["tree_size"], bytes.fromhex(answer["root"])
    leaf = bytes.fromhex(answer["entry_hash"])
    proof = [bytes.fromhex(p) for p in answer["proof"]]
    assert leaf == entry_hash_of(records[3], header["log_id"])
    assert verify_inclusion(3, size, leaf, proof, root)
    flipped = [bytearray(p) for p in proof]
    flipped[0][0] ^= 1
    probes = {
        "wrong index": (4, size, leaf, proof, root),
        "wrong size": (3, size * 2, leaf, proof, root),
        "truncated proof": (3, size, leaf, proof[:-1], root),
        "flipped proof": (3, size, leaf, [bytes(p) for p in flipped], root),
        "flipped leaf": (3, size, bytes([leaf[0] ^ 1]) + leaf[1:], proof, root),
    }
    assert [name for name, args in probes.items() if verify_inclusion(*args)] == []
    by_id = session.json("audit", "prove", answer["id"])
    assert by_id["seq"] == 3 and by_id["verified"] is True

    tail = session("audit", "tail", "-n", "5").out.splitlines()
    assert len(tail) == 5
    assert all("dek-" in line for line in tail)
    decrypted = session("audit", "tail", "-n", "3", "--decrypt").out
    assert "local:" in decrypted

    assert "no sealed audit record" in session.refused("audit", "prove", "999", code=3)
    assert "--from/--to" in session.refused("audit", "export", "--from", "yesterday", code=2)


def test_verify_warns_but_exits_0_about_records_not_yet_anchored(session: Session) -> None:
    session("audit", "checkpoint")
    session("note", "1", "after the checkpoint")
    run = session("audit", "verify")
    assert "warning: 1 record(s) after the last checkpoint (size 9) are not yet anchored" in run.out
    assert run.out.strip().splitlines()[-1].startswith("ok: 10 records")


def test_tampering_exits_1_with_the_record_named(session: Session) -> None:
    session("audit", "checkpoint")
    with sqlite3.connect(session.db) as conn:
        record_id, body = conn.execute("SELECT id, body FROM audit_records WHERE seq = 3").fetchone()
    tamper(session.db, "UPDATE audit_records SET body = ? WHERE seq = 3", bytes([body[0] ^ 1]) + body[1:])
    run = session("audit", "verify", code=1)
    errors = [line for line in run.out.splitlines() if line.startswith("error: ")]
    assert errors and record_id in errors[0] and "(#3)" in errors[0], run.out
    report = session.json("audit", "verify", code=1)
    assert report["ok"] is False and "(#3)" in report["errors"][0]


def test_a_rollback_is_found_only_with_the_kept_checkpoints(session: Session, tmp_path: Path) -> None:
    session("audit", "checkpoint")
    old = tmp_path / "old.db"
    with sqlite3.connect(session.db) as live, sqlite3.connect(old) as copy:
        live.backup(copy)
    session("note", "1", "after the copy")
    session("note", "1", "and another")
    session("audit", "checkpoint")
    kept = tmp_path / "auditor"
    shutil.copytree(session.folder / "checkpoints", kept)
    for suffix in ("-wal", "-shm"):
        Path(f"{session.db}{suffix}").unlink(missing_ok=True)
    shutil.move(old, session.db)
    shutil.rmtree(session.folder / "checkpoints")

    assert session.json("audit", "verify")["ok"] is True  # the old copy is self-consistent
    report = session.json("audit", "verify", "--checkpoint", str(kept), code=1)
    assert "covers 11 records but the log holds 9" in report["errors"][0], report


def test_a_bad_verifier_key_is_a_bad_argument(session: Session) -> None:
    line = session.refused("audit", "verify", "--key", "not-a-key", code=2)
    assert "key" in line


def test_a_checkpoint_by_another_key_is_reported(session: Session, tmp_path: Path) -> None:
    from ir.adapters.audit.checkpoint import Signer, generate_signer, parse_checkpoint, sign_checkpoint

    session("audit", "checkpoint")
    real = sorted((session.folder / "checkpoints").glob("ir-audit-0*.checkpoint"))[-1].read_text()
    true = parse_checkpoint(real)
    signer_key, _ = generate_signer("ir-audit")
    forged = tmp_path / "forged.checkpoint"
    forged.write_text(sign_checkpoint(true.origin, true.size, true.root, Signer(signer_key)))
    report = session.json("audit", "verify", "--checkpoint", str(forged), code=1)
    assert "forged.checkpoint" in report["errors"][0] and "unknown key" in report["errors"][0]


# -- keys and erasure ------------------------------------------------------------------------------------


def test_rotate_kek_then_retire(session: Session) -> None:
    rotated = session("audit", "rotate-kek").out
    first_line = rotated.splitlines()[0]
    assert first_line.startswith("key-encryption key rotated: kek-")
    old, new = first_line.split(": ", 1)[1].split(";")[0].split(" -> ")
    assert f"ir audit retire-kek {old}" in rotated

    assert "current" in session.refused("audit", "retire-kek", new, code=4)
    assert session("audit", "retire-kek", old).out.strip() == f"{old} retired"
    assert "no key-encryption key" in session.refused("audit", "retire-kek", old, code=3)
    assert (session.folder / "keys" / f"{old}.key.retired").exists()

    assert session.json("audit", "verify", "--events")["ok"] is True
    lines = session("audit", "export", "--decrypt").out.splitlines()[1:]
    contents = [json.loads(line)["content"] for line in lines]
    assert contents and all("error" not in c for c in contents), contents
    assert {"audit.rotate_kek", "audit.retire_kek"} <= {c["action"] for c in contents}
    assert session("reveal", "1", "--note", "1", "--reason", "after the rotation").out.strip().startswith("Zhang San")


def test_shred_erases_a_person_and_the_log_still_verifies(session: Session) -> None:
    assert session("reveal", "1", "--note", "2", "--reason", "call back").out.strip() == "Li Si is on site"
    erased = session("audit", "shred", "zhang-san", "--yes", "--reason", "erasure request")
    assert erased.out.startswith("erased: ")
    assert session("reveal", "1", "--note", "1", "--reason", "review").out.strip() == "[erased]"
    assert session("reveal", "1", "--note", "2", "--reason", "review").out.strip() == "Li Si is on site"
    report = session.json("audit", "verify", "--events")
    assert report["ok"] is True, report
    assert "already erased" in session.refused("audit", "shred", "zhang-san", "--yes", code=2)
    assert session.refused("audit", "shred", "nobody", "--yes", code=3)
    asked = session("audit", "shred", "li-si", code=130)  # no answer to the confirmation: nothing erased
    assert "Erase" in asked.out
    assert session("reveal", "1", "--note", "2", "--reason", "still there").out.strip() == "Li Si is on site"


def test_a_record_id_that_is_not_hex_exits_1_not_an_internal_error(session: Session) -> None:
    session("audit", "checkpoint")
    tamper(session.db, "UPDATE audit_records SET id = 'zz' || substr(id, 3) WHERE seq = 3")
    report = session.json("audit", "verify", code=1)
    assert report["ok"] is False and "#3" in report["errors"][0], report
