"""Attacks on the audit log by someone with write access to the database, on SQLite and PostgreSQL.

A log is made by real commands through the handlers (an incident opened from the library, steps acted
on, notes, personal notes), stand-alone records through the group-commit appender, sealed, and
checkpointed (the signed checkpoints also kept as files outside the database, as an auditor would).
Each attack then changes the database directly, as an attacker would: dropping the append-only
triggers first where it needs UPDATE or DELETE. `verify` must find every attack and its first error
must say where (the record's number or id). Most attacks run in a transaction that is rolled back,
so one log (per database) serves them all; the few that must commit get a fresh database.
"""

from __future__ import annotations

import base64
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, and_, delete, insert, make_url, select, text, update
from sqlalchemy.exc import DBAPIError

from ir.adapters.audit import record_format
from ir.adapters.audit.checkpoint import (
    CheckpointError,
    Signer,
    Verifier,
    check_consistent,
    detect_equivocation,
    generate_signer,
    is_older,
    parse_checkpoint,
    sign_checkpoint,
    verify_checkpoint,
)
from ir.adapters.audit.checkpoints import load_signer, origin_for
from ir.adapters.audit.export import TreeIndex, build_index, decrypt
from ir.adapters.audit.keys import DataKeys
from ir.adapters.audit.merkle import (
    CompactRange,
    consistency_proof_from,
    inclusion_proof,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from ir.adapters.audit.verify import Report, verify
from ir.adapters.audit.writer import SqlAuditTrail
from ir.adapters.clock import SimulatedClock
from ir.adapters.db.engine import for_writing, make_engine
from ir.adapters.db.schema import upgrade
from ir.adapters.db.tables import audit_checkpoints, audit_heads, audit_records, incident_events
from ir.bootstrap import App, build
from ir.config import Settings
from ir.domain import commands as c
from tests.conftest import ACTOR, PG_ENV, PLAYBOOKS, T0, AppFactory, _admin_engine

LOG_B = "ir-audit-b"


# -- the log under attack --------------------------------------------------------------------------------


@dataclass
class Log:
    app: App
    clock: SimulatedClock
    incident_id: int
    checkpoint_dir: Path
    other: App  # a second log (another log id) in the same database
    kept: list[tuple[str, str]] = field(default_factory=list)  # checkpoint files kept outside the database

    @property
    def log_id(self) -> str:
        return self.app.settings.audit_log_id

    @property
    def sizes(self) -> list[int]:
        return sorted(parse_checkpoint(t).size for _, t in self.kept)


def kept_checkpoints(folder: Path, log_id: str) -> list[tuple[str, str]]:
    """The checkpoint files an auditor copied out (one per size; `latest` is a copy of the newest)."""
    return [
        (f.name, f.read_text(encoding="utf-8"))
        for f in sorted(folder.glob(f"{log_id}-*.checkpoint"))
        if not f.name.endswith("-latest.checkpoint")
    ]


def write_log(app: App, clock: SimulatedClock) -> int:
    """Real commands through the handlers, stand-alone records, and three checkpoints along the way."""
    h = app.handlers.handle

    def act(command: c.Command) -> None:
        clock.advance(timedelta(seconds=10))
        h(command)

    iid = h(c.OpenIncident(actor=ACTOR, playbook="ddos", title="Botnet flood", level="II")).incident_id
    base: dict[str, Any] = {"actor": ACTOR, "incident_id": iid}
    act(c.StartStep(**base, step_id="confirm"))
    act(c.CheckItem(**base, step_id="confirm", item=1))
    act(c.AddNote(**base, text="Zhang San called the hotline from 138-0000-1111", about="customer-zhang-san"))
    act(c.AddNote(**base, text="Li Si, the on-call engineer, is on site", about="staff-li-si"))
    app.audit.sealer.force_checkpoint()
    app.audit.flush()
    act(c.CompleteStep(**base, step_id="confirm", note="SYN flood, 180 Gbit/s"))
    for n in range(3):
        app.appender.append(
            action="auth.sign_in", actor=f"user-{n}", subject="console", payload={"n": n}, at=clock.now()
        )
    act(c.StartStep(**base, step_id="scrubbing", assignee="soc-duty"))
    act(c.SetFacts(**base, facts={"provinces_affected": "3"}))
    app.audit.sealer.force_checkpoint()
    app.audit.flush()
    act(c.AddNote(**base, text="scrubbing centre B at 80% capacity", step_id="scrubbing"))
    act(c.AttachEvidence(**base, step_id="scrubbing", filename="graph.txt", content=b"before/after graphs"))
    act(c.CompleteStep(**base, step_id="scrubbing"))
    act(c.AddNote(**base, text="traffic back to normal"))
    app.audit.sealer.force_checkpoint()
    app.audit.flush()
    return iid


def _make_log(url: str, folder: Path) -> Log:
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    clock = SimulatedClock(T0)
    settings = Settings(database_url=url, data_dir=str(folder), playbooks_dir=str(PLAYBOOKS))
    app = build(settings, clock=clock)
    iid = write_log(app, clock)
    # a second log in the same database, sharing the deployment's keys (and so its signing key)
    other = build(
        settings.model_copy(update={"audit_log_id": LOG_B, "audit_checkpoint_dir": str(folder / "checkpoints-b")}),
        clock=clock,
    )
    for n in range(6):
        other.appender.append(action="other.act", actor="other", subject="other", payload={"n": n}, at=clock.now())
    other.audit.sealer.force_checkpoint()
    other.audit.flush()
    log = Log(app, clock, iid, Path(settings.checkpoint_dir), other)
    log.kept = kept_checkpoints(log.checkpoint_dir, log.log_id)
    return log


@contextmanager
def pg_database_for_module() -> Iterator[str]:
    server_url = os.environ.get(PG_ENV)
    if not server_url:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_ENV} is not set, and CI is: the PostgreSQL half of the suite must run in CI")
        pytest.skip(f"{PG_ENV} not set")
    name = f"ir_t_{os.urandom(6).hex()}"
    admin = _admin_engine(server_url)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def log(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Log]:
    """One log per database for the attacks that are rolled back (each leaves it as it was)."""
    folder = tmp_path_factory.mktemp(f"log-{request.param}")
    if request.param == "sqlite":
        made = _make_log(f"sqlite:///{folder / 'ir.db'}", folder)
        yield made
        made.other.close()
        made.app.close()
        return
    with pg_database_for_module() as url:
        made = _make_log(url, folder)
        yield made
        made.other.close()
        made.app.close()


# -- the attacker's tools --------------------------------------------------------------------------------


def drop_guards(conn: Connection) -> None:
    """What an attacker with database access does first: remove the append-only triggers."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("DROP TRIGGER audit_records_sealed ON audit_records"))
    else:
        conn.execute(text("DROP TRIGGER audit_records_no_update"))
        conn.execute(text("DROP TRIGGER audit_records_no_delete"))


def drop_uniqueness(conn: Connection) -> None:
    """Remove the primary key and UNIQUE(log_id, seq) (SQLite: rebuild the table without them)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("ALTER TABLE audit_records DROP CONSTRAINT uq_audit_records_seq"))
        conn.execute(text("ALTER TABLE audit_records DROP CONSTRAINT pk_audit_records"))
    else:
        conn.execute(text("CREATE TABLE audit_records_plain AS SELECT * FROM audit_records"))
        conn.execute(text("DROP TABLE audit_records"))
        conn.execute(text("ALTER TABLE audit_records_plain RENAME TO audit_records"))


@contextmanager
def attack(log: Log, *, guards: bool = False) -> Iterator[Connection]:
    """A transaction on the log's database with the triggers dropped; rolled back afterwards."""
    with log.app.db.engine.connect() as conn:
        for_writing(conn)
        conn.begin()
        try:
            if not guards:
                drop_guards(conn)
            yield conn
        finally:
            conn.rollback()


def check(conn: Connection, log: Log, *, kept: bool = True, stored: bool = True, events: bool = False) -> Report:
    return verify(
        conn,
        log_id=log.log_id,
        verifiers=[Verifier(log.app.verifier_key)],
        checkpoint_texts=log.kept if kept else [],
        use_stored_checkpoints=stored,
        events=events,
    )


def first_error(report: Report) -> str:
    assert not report.ok, f"the attack was not detected: {report}"
    return report.errors[0]


def sealed(conn: Connection, log_id: str) -> list[Any]:
    return list(
        conn.execute(
            select(audit_records)
            .where(and_(audit_records.c.log_id == log_id, audit_records.c.seq.is_not(None)))
            .order_by(audit_records.c.seq)
        ).all()
    )


def set_fields(conn: Connection, record_id: str, **values: Any) -> None:
    conn.execute(update(audit_records).where(audit_records.c.id == record_id).values(**values))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def flip_bit(data: bytes, index: int, bit: int = 0) -> bytes:
    raw = bytearray(data)
    raw[index] ^= 1 << bit
    return bytes(raw)


def flip_char(value: str) -> str:
    """One bit of the last character flipped (a hex digit stays a hex digit)."""
    last = value[-1]
    if last in "0123456789abcdef":
        return value[:-1] + format(int(last, 16) ^ 1, "x")
    return value[:-1] + chr(ord(last) ^ 1)


def recompute_chain(conn: Connection, log_id: str) -> None:
    """Without the signing key, make every hash agree again: prev/entry hashes, the head and its compact
    range, exactly as the sealer computes them."""
    prev = record_format.GENESIS
    tree = CompactRange()
    for row in sealed(conn, log_id):
        header = record_format.header(
            log_id=log_id,
            seq=int(row.seq),
            created_us=record_format.micros(row.created_at),
            record_id=row.id,
            key_id=row.key_id,
            subject_ref=row.subject_ref,
            ref=row.ref,
            digest=bytes(row.digest),
            prev_hash=prev,
        )
        entry = record_format.entry_hash(header, bytes(row.body))
        if bytes(row.prev_hash) != prev or bytes(row.entry_hash) != entry:
            set_fields(conn, row.id, prev_hash=prev, entry_hash=entry)
        prev = entry
        tree.append(entry)
    conn.execute(
        update(audit_heads)
        .where(audit_heads.c.log_id == log_id)
        .values(size=tree.size, last_hash=prev, frontier=b"".join(tree.hashes))
    )


def forget_checkpoints(conn: Connection, log_id: str, *, above: int = -1) -> None:
    conn.execute(
        delete(audit_checkpoints).where(and_(audit_checkpoints.c.log_id == log_id, audit_checkpoints.c.size > above))
    )


def pick(rows: list[Any], where: str, *, with_ref: bool = False) -> int:
    """The index of the first, a middle or the last sealed record (one naming an event if asked)."""
    start = {"first": 0, "middle": len(rows) // 2, "last": len(rows) - 1}[where]
    order = range(start, len(rows)) if where != "last" else range(start, -1, -1)
    for k in order:
        if not with_ref or rows[k].ref:
            return k
    raise AssertionError("no record to attack")


# -- the untouched log ----------------------------------------------------------------------------------


def test_the_untouched_log_verifies_against_every_checkpoint(log: Log) -> None:
    assert len(log.sizes) == 3
    with log.app.db.connection() as conn:
        report = check(conn, log, events=True)
        rows = sealed(conn, log.log_id)
    assert report.ok, report.errors
    assert report.size == len(rows) == log.sizes[-1]
    assert report.checkpoints == log.sizes
    assert report.events_checked > 10
    assert report.warnings == []
    assert [r.seq for r in rows] == list(range(len(rows)))


# -- bit flips in each field -----------------------------------------------------------------------------

FIELDS = ["id", "created_at", "key_id", "subject_ref", "ref", "digest", "body", "prev_hash", "entry_hash", "seq"]


@pytest.mark.parametrize("where", ["first", "middle", "last"])
@pytest.mark.parametrize("name", FIELDS)
def test_a_flipped_bit_in_any_field_is_found_and_located(log: Log, name: str, where: str) -> None:
    with attack(log) as conn:
        rows = sealed(conn, log.log_id)
        k = pick(rows, where, with_ref=name == "ref")
        row = rows[k]
        named = row.id
        if name == "id":
            named = flip_char(row.id)
            set_fields(conn, row.id, id=named)
        elif name == "created_at":
            micros = record_format.micros(row.created_at)
            set_fields(conn, row.id, created_at=row.created_at + timedelta(microseconds=-1 if micros & 1 else 1))
        elif name in ("key_id", "subject_ref", "ref"):
            set_fields(conn, row.id, **{name: flip_char(getattr(row, name))})
        elif name == "seq":
            set_fields(conn, row.id, seq=int(row.seq) ^ (1 << 40))
        else:
            value = bytes(getattr(row, name))
            set_fields(conn, row.id, **{name: flip_bit(value, len(value) // 2, bit=3)})
        error = first_error(check(conn, log))
    if name == "seq":
        # the record moved far away: the sequence breaks where it was
        assert f"where {k} was expected" in error, error
        if where == "last":
            assert named in error, error
        else:
            assert rows[k + 1].id in error, error
    else:
        assert named in error and f"(#{k})" in error, error


@pytest.mark.parametrize("name", ["body", "entry_hash", "digest"])
def test_a_flipped_bit_is_found_by_the_chain_alone_without_any_checkpoint(log: Log, name: str) -> None:
    with attack(log) as conn:
        rows = sealed(conn, log.log_id)
        k = len(rows) // 2
        value = bytes(getattr(rows[k], name))
        set_fields(conn, rows[k].id, **{name: flip_bit(value, 0)})
        forget_checkpoints(conn, log.log_id)
        error = first_error(check(conn, log, kept=False))
    assert f"(#{k})" in error and rows[k].id in error, error


# -- deleting, renumbering, swapping, replaying ----------------------------------------------------------


def test_a_deleted_middle_record_is_found(log: Log) -> None:
    with attack(log) as conn:
        rows = sealed(conn, log.log_id)
        k = len(rows) // 2
        conn.execute(delete(audit_records).where(audit_records.c.id == rows[k].id))
        error = first_error(check(conn, log))
    assert f"where {k} was expected" in error and "missing" in error, error
    assert rows[k + 1].id in error


def test_a_deleted_record_with_the_rest_renumbered_is_found(log: Log) -> None:
    """Delete #k and close the gap: every later record moves down one."""
    with attack(log) as conn:
        rows = sealed(conn, log.log_id)
        k = len(rows) // 2
        conn.execute(delete(audit_records).where(audit_records.c.id == rows[k].id))
        for row in rows[k + 1 :]:
            set_fields(conn, row.id, seq=int(row.seq) - 1)
        error = first_error(check(conn, log))
    assert f"(#{k})" in error and rows[k + 1].id in error, error


def test_renumbered_records_are_found(log: Log) -> None:
    """Every record from #k on moved up one, leaving a hole at #k."""
    with attack(log) as conn:
        rows = sealed(conn, log.log_id)
        k = 3
        for row in reversed(rows[k:]):
            set_fields(conn, row.id, seq=int(row.seq) + 1)
        error = first_error(check(conn, log))
    assert rows[k].id in error and f"where {k} was expected" in error, error


def test_swapped_bodies_of_two_records_are_found(log: Log) -> None:
    with attack(log) as conn:
        rows = sealed(conn, log.log_id)
        k = len(rows) // 2
        a, b = rows[k], rows[k + 1]
        set_fields(conn, a.id, body=bytes(b.body))
        set_fields(conn, b.id, body=bytes(a.body))
        error = first_error(check(conn, log))
    assert f"(#{k})" in error and a.id in error, error


def test_swapped_records_are_found(log: Log) -> None:
    """Two whole records exchange places (their sequence numbers)."""
    with attack(log) as conn:
        rows = sealed(conn, log.log_id)
        k = len(rows) // 2
        a, b = rows[k], rows[k + 1]
        set_fields(conn, a.id, seq=-1)
        set_fields(conn, b.id, seq=k)
        set_fields(conn, a.id, seq=k + 1)
        error = first_error(check(conn, log))
    assert f"(#{k})" in error and b.id in error, error


def test_a_duplicated_record_is_found(log: Log) -> None:
    """An exact copy of #k inserted beside it (the primary key and UNIQUE(log_id, seq) dropped first)."""
    with attack(log) as conn:
        drop_uniqueness(conn)
        rows = sealed(conn, log.log_id)
        k = len(rows) // 2
        conn.execute(insert(audit_records).values(dict(rows[k]._mapping)))
        error = first_error(check(conn, log))
    assert rows[k].id in error and "duplicated" in error, error


def test_a_replayed_record_at_the_end_is_found(log: Log) -> None:
    """A copy of an old record appended as the next one (its sequence number and head moved on)."""
    with attack(log) as conn:
        drop_uniqueness(conn)
        rows = sealed(conn, log.log_id)
        n = len(rows)
        replay = dict(rows[2]._mapping)
        replay["seq"] = n
        conn.execute(insert(audit_records).values(replay))
        conn.execute(update(audit_heads).where(audit_heads.c.log_id == log.log_id).values(size=n + 1))
        error = first_error(check(conn, log))
    assert rows[2].id in error and f"(#{n})" in error, error


def test_a_record_from_another_log_is_found(log: Log) -> None:
    """Record #k replaced by a record of the second log, relabelled as this log's."""
    with attack(log) as conn:
        rows = sealed(conn, log.log_id)
        foreign = sealed(conn, LOG_B)[2]
        k = len(rows) // 2
        conn.execute(delete(audit_records).where(audit_records.c.id.in_([rows[k].id, foreign.id])))
        conn.execute(insert(audit_records).values({**dict(foreign._mapping), "log_id": log.log_id, "seq": k}))
        error = first_error(check(conn, log))
    assert f"(#{k})" in error and foreign.id in error, error


def test_a_record_from_another_log_rehashed_onto_the_tail_does_not_decrypt(log: Log) -> None:
    """Appended after the last checkpoint with the chain recomputed, it is not anchored yet (a warning)
    and the keyless check cannot tell; its body is bound to the other log and does not decrypt."""
    with attack(log) as conn:
        rows = sealed(conn, log.log_id)
        foreign = sealed(conn, LOG_B)[2]
        conn.execute(delete(audit_records).where(audit_records.c.id == foreign.id))
        conn.execute(insert(audit_records).values({**dict(foreign._mapping), "log_id": log.log_id, "seq": len(rows)}))
        recompute_chain(conn, log.log_id)
        report = check(conn, log)
        moved = conn.execute(select(audit_records).where(audit_records.c.id == foreign.id)).one()
        opened = decrypt(conn, DataKeys(log.app.db.keys.keyring), log.log_id, moved)
        native = decrypt(conn, DataKeys(log.app.db.keys.keyring), log.log_id, rows[-1])
    assert report.ok, report.errors
    assert any("not yet anchored" in w for w in report.warnings), report.warnings
    assert native.ok
    assert not opened.ok and opened.problem is not None and "does not decrypt" in opened.problem


# -- truncation and a chain recomputed without the signing key -------------------------------------------


def test_a_truncated_tail_is_found_from_the_head_and_the_stored_checkpoints(log: Log) -> None:
    with attack(log) as conn:
        rows = sealed(conn, log.log_id)
        cut = len(rows) - 3
        conn.execute(delete(audit_records).where(audit_records.c.seq >= cut))
        error = first_error(check(conn, log, kept=False))
    assert f"holds {cut}" in error, error


def test_a_truncated_tail_with_the_head_and_checkpoints_rewritten_is_found_only_against_kept_checkpoints(
    log: Log,
) -> None:
    with attack(log) as conn:
        rows = sealed(conn, log.log_id)
        cut = len(rows) - 3
        conn.execute(delete(audit_records).where(audit_records.c.seq >= cut))
        forget_checkpoints(conn, log.log_id, above=cut)
        recompute_chain(conn, log.log_id)
        inside = check(conn, log, kept=False)
        outside = check(conn, log)
    # without a copy held elsewhere, truncation is undetectable: the tail is reported as unanchored
    assert inside.ok, inside.errors
    assert inside.size == cut
    assert any("after the last checkpoint" in w for w in inside.warnings), inside.warnings
    error = first_error(outside)
    assert f"covers {log.sizes[-1]} records but the log holds {cut}" in error, error


@pytest.mark.parametrize("stored", ["kept in the database", "deleted by the attacker"])
def test_a_chain_edited_and_recomputed_without_the_signing_key_is_found_against_a_checkpoint(
    log: Log, stored: str
) -> None:
    """A body changed in #k (between the first and second checkpoints), then every hash recomputed,
    the head and its compact range included: the keyless chain agrees again, a checkpoint does not."""
    first, second = log.sizes[0], log.sizes[1]
    with attack(log) as conn:
        rows = sealed(conn, log.log_id)
        k = first + 1
        set_fields(conn, rows[k].id, body=flip_bit(bytes(rows[k].body), 20))
        recompute_chain(conn, log.log_id)
        if stored == "deleted by the attacker":
            forget_checkpoints(conn, log.log_id)
            # nothing in the database can tell any more
            assert check(conn, log, kept=False).ok
        report = check(conn, log)
    error = first_error(report)
    assert f"size {second}" in error and f"#{second - 1}" in error, error
    assert report.checkpoints == [first]  # the last checkpoint that still holds: the change is after it


def test_a_forged_checkpoint_for_a_recomputed_chain_is_refused(log: Log) -> None:
    signer_key, _ = generate_signer("ir-audit")  # the attacker's own key, under the deployment's name
    with attack(log) as conn:
        rows = sealed(conn, log.log_id)
        set_fields(conn, rows[4].id, body=flip_bit(bytes(rows[4].body), 20))
        recompute_chain(conn, log.log_id)
        forget_checkpoints(conn, log.log_id)
        head = conn.execute(select(audit_heads).where(audit_heads.c.log_id == log.log_id)).one()
        tree = CompactRange.from_state(
            int(head.size), [bytes(head.frontier)[i : i + 32] for i in range(0, len(head.frontier), 32)]
        )
        forged = sign_checkpoint(origin_for(log.log_id), tree.size, tree.root(), Signer(signer_key))
        conn.execute(
            insert(audit_checkpoints).values(
                log_id=log.log_id, size=tree.size, root=tree.root(), note=forged, created_at=log.clock.now()
            )
        )
        report = check(conn, log, kept=False)
    error = first_error(report)
    assert f"stored #{tree.size}" in error and "unknown key" in error, error


# -- checkpoints -----------------------------------------------------------------------------------------


def _real_signer(log: Log) -> Signer:
    signer, _, _ = load_signer(key_file=log.app.settings.signer_file, name=log.log_id)
    return signer


def _verify_with(log: Log, texts: list[tuple[str, str]], *, stored: bool = True) -> Report:
    with log.app.db.connection() as conn:
        return verify(
            conn,
            log_id=log.log_id,
            verifiers=[Verifier(log.app.verifier_key)],
            checkpoint_texts=texts,
            use_stored_checkpoints=stored,
        )


def test_a_checkpoint_with_a_bad_signature_is_refused(log: Log) -> None:
    source, note = log.kept[1]
    cp = parse_checkpoint(note)
    other_root = parse_checkpoint(log.kept[0][1]).root
    body_changed = note.replace(b64(cp.root), b64(other_root))
    sig_start = note.rindex("\u2014 ")
    sig_b64_at = note.index(" ", sig_start + 2) + 1 + 40
    swapped = "B" if note[sig_b64_at] != "B" else "C"
    signature_changed = note[:sig_b64_at] + swapped + note[sig_b64_at + 1 :]
    for mangled in (body_changed, signature_changed):
        error = first_error(_verify_with(log, [(source, mangled)]))
        assert error.startswith(f"checkpoint {source}:") and "bad signature" in error, error


def test_a_checkpoint_by_an_unknown_key_is_refused_even_with_the_true_root(log: Log) -> None:
    true = parse_checkpoint(log.kept[-1][1])
    for name in ("ir-audit", "someone-else"):
        signer_key, _ = generate_signer(name)
        note = sign_checkpoint(origin_for(log.log_id), true.size, true.root, Signer(signer_key))
        error = first_error(_verify_with(log, [("forged.checkpoint", note)]))
        assert "forged.checkpoint" in error and "unknown key" in error, error


def test_a_checkpoint_of_another_log_is_refused(log: Log) -> None:
    """The second log's checkpoint is signed by the same deployment key, but names another origin."""
    other = kept_checkpoints(Path(log.other.settings.checkpoint_dir), LOG_B)
    assert other
    source, note = other[-1]
    error = first_error(_verify_with(log, [(source, note)]))
    assert source in error and "wrong origin" in error, error
    with pytest.raises(CheckpointError) as refused:
        verify_checkpoint(note, [Verifier(log.app.verifier_key)], origin=origin_for(log.log_id))
    assert refused.value.reason == "wrong_origin"


def test_an_older_checkpoint_replayed_still_verifies_but_is_older(log: Log) -> None:
    verifiers = [Verifier(log.app.verifier_key)]
    old = verify_checkpoint(log.kept[0][1], verifiers, origin=origin_for(log.log_id))
    latest = verify_checkpoint(log.kept[-1][1], verifiers, origin=origin_for(log.log_id))
    report = _verify_with(log, [log.kept[0]], stored=False)
    assert report.ok, report.errors
    assert report.checkpoints == [old.size]
    assert any("not yet anchored" in w for w in report.warnings)  # only the old size is anchored
    assert is_older(old, latest)
    assert not is_older(latest, old)
    # an auditor who kept the newer one sees the replay as a rollback
    with pytest.raises(CheckpointError) as rolled_back:
        check_consistent(latest, old, [])
    assert rolled_back.value.reason == "rollback"


def test_two_roots_for_the_same_size_are_equivocation(log: Log) -> None:
    """The signing key's holder signs another history of the same size: both checkpoints verify alone."""
    size = log.sizes[1]
    true = next(cp for cp in (parse_checkpoint(t) for _, t in log.kept) if cp.size == size)
    fork = sign_checkpoint(origin_for(log.log_id), size, node_hash(true.root, true.root), _real_signer(log))
    verifiers = [Verifier(log.app.verifier_key)]
    forked = verify_checkpoint(fork, verifiers, origin=origin_for(log.log_id))
    assert detect_equivocation(forked, true)
    error = first_error(_verify_with(log, [("fork.checkpoint", fork)]))
    assert f"size {size}" in error and "equivocation" in error, error
    # without the stored copy, the forked root simply disagrees with the log at that size
    alone = first_error(_verify_with(log, [("fork.checkpoint", fork)], stored=False))
    assert f"size {size}" in alone, alone


# -- proofs ----------------------------------------------------------------------------------------------


def test_inclusion_proofs_verify_and_every_probe_fails(log: Log) -> None:
    size = log.sizes[-1]
    root = parse_checkpoint(log.kept[-1][1]).root
    with log.app.db.connection() as conn:
        index = build_index(conn, log.log_id, size)
        leaves = [bytes(r.entry_hash) for r in sealed(conn, log.log_id)][:size]
    for i in range(size):
        proof = index.proof(i, size)
        assert proof == inclusion_proof(i, leaves)
        assert verify_inclusion(i, size, leaves[i], proof, root), i
    i = 3
    proof = index.proof(i, size)
    leaf = leaves[i]
    probes: dict[str, tuple[int, int, bytes, list[bytes], bytes]] = {
        "index + 1": (i + 1, size, leaf, proof, root),
        "index - 1": (i - 1, size, leaf, proof, root),
        "index = size": (size, size, leaf, proof, root),
        "size * 2": (i, size * 2, leaf, proof, root),
        "size // 2": (i, size // 2, leaf, proof, root),
        "truncated proof": (i, size, leaf, proof[:-1], root),
        "extended proof": (i, size, leaf, [*proof, proof[-1]], root),
        "empty proof": (i, size, leaf, [], root),
        "reversed proof": (i, size, leaf, proof[::-1], root),
        "another leaf": (i, size, leaves[i + 1], proof, root),
        "an older root": (i, size, leaf, proof, parse_checkpoint(log.kept[0][1]).root),
        "the leaf as root": (i, size, leaf, proof, leaf),
    }
    for bit in (0, 7):
        probes[f"leaf bit {bit}"] = (i, size, flip_bit(leaf, 0, bit), proof, root)
        probes[f"root bit {bit}"] = (i, size, leaf, proof, flip_bit(root, 31, bit))
        for n in range(len(proof)):
            changed = list(proof)
            changed[n] = flip_bit(changed[n], 16, bit)
            probes[f"proof[{n}] bit {bit}"] = (i, size, leaf, changed, root)
    passed = [name for name, args in probes.items() if verify_inclusion(*args)]
    assert passed == []


def test_a_node_is_not_taken_for_a_record(log: Log) -> None:
    """Leaf/node confusion: the hash of records #0-#1 offered as record #0 or #1, with the upper part of
    their proofs, against the checkpoint's size and root. (The size must come from the signed checkpoint,
    and the leaf hash from the record's own bytes: `verify_inclusion` takes a leaf hash as given.)"""
    size = log.sizes[-1]
    root = parse_checkpoint(log.kept[-1][1]).root
    with log.app.db.connection() as conn:
        index = build_index(conn, log.log_id, size)
    node = index.range_root(0, 2)
    for leaf_index in (0, 1):
        for proof in (index.proof(leaf_index, size)[1:], index.proof(leaf_index, size)):
            assert not verify_inclusion(leaf_index, size, node, proof, root)


def test_consistency_proofs_between_kept_checkpoints_and_their_probes(log: Log) -> None:
    verifiers = [Verifier(log.app.verifier_key)]
    cps = [verify_checkpoint(t, verifiers, origin=origin_for(log.log_id)) for _, t in log.kept]
    with log.app.db.connection() as conn:
        index = build_index(conn, log.log_id)
    for older, newer in ((cps[0], cps[1]), (cps[1], cps[2]), (cps[0], cps[2])):
        proof = consistency_proof_from(older.size, newer.size, index.range_root)
        check_consistent(older, newer, proof)
        m, n = older.size, newer.size
        probes = {
            "old size + 1": (m + 1, n, older.root, newer.root, proof),
            "old size - 1": (m - 1, n, older.root, newer.root, proof),
            "old size ^ 2": (m ^ 2, n, older.root, newer.root, proof),
            "new size // 2": (m, n // 2, older.root, newer.root, proof),
            "new size * 2": (m, n * 2, older.root, newer.root, proof),
            "swapped roots": (m, n, newer.root, older.root, proof),
            "truncated": (m, n, older.root, newer.root, proof[:-1]),
            "extended": (m, n, older.root, newer.root, [*proof, proof[-1]]),
            "empty": (m, n, older.root, newer.root, []),
        }
        for k in range(len(proof)):
            changed = list(proof)
            changed[k] = flip_bit(changed[k], 5)
            probes[f"proof[{k}] flipped"] = (m, n, older.root, newer.root, changed)
        passed = [name for name, args in probes.items() if verify_consistency(*args)]
        assert passed == [], (m, n, passed)
        with pytest.raises(CheckpointError) as refused:
            check_consistent(older, newer, proof[:-1] if proof else [older.root])
        assert refused.value.reason == "inconsistent"


def test_the_export_tree_index_gives_the_rfc6962_known_answer_roots() -> None:
    import json

    from ir.adapters.audit.merkle import leaf_hash
    from tests.standards import RFC6962_KNOWN_ANSWERS as answers

    if not answers.is_file():
        pytest.fail(f"the RFC 6962 known answers are missing: expected them at {answers}")
    data = json.loads(answers.read_text())
    leaves = [leaf_hash(bytes.fromhex(x)) for x in data["leaf_inputs_hex"]]
    roots = [bytes.fromhex(x) for x in data["root_hashes_hex"]]
    index = TreeIndex()
    assert index.range_root(0, 0) == roots[0]
    for n, leaf in enumerate(leaves, start=1):
        index.append(leaf)
        assert index.range_root(0, n) == roots[n], n


# -- bodies moved, events edited -------------------------------------------------------------------------


def test_a_body_moved_to_another_record_breaks_the_chain_and_does_not_decrypt(log: Log) -> None:
    keys = DataKeys(log.app.db.keys.keyring)
    with attack(log) as conn:
        rows = sealed(conn, log.log_id)
        k = len(rows) // 2
        assert decrypt(conn, keys, log.log_id, rows[k + 1]).ok
        set_fields(conn, rows[k + 1].id, body=bytes(rows[k].body))
        error = first_error(check(conn, log))
        moved = conn.execute(select(audit_records).where(audit_records.c.id == rows[k + 1].id)).one()
        opened = decrypt(conn, keys, log.log_id, moved)
    assert f"(#{k + 1})" in error and rows[k + 1].id in error, error
    assert not opened.ok and opened.content is None


@pytest.mark.parametrize("change", ["payload edited", "event deleted", "event inserted"])
def test_an_incident_event_changed_in_place_is_found_with_events(log: Log, change: str) -> None:
    iid = log.incident_id
    with attack(log, guards=True) as conn:
        events = conn.execute(
            select(incident_events).where(incident_events.c.incident_id == iid).order_by(incident_events.c.seq)
        ).all()
        target = events[3]
        where = and_(incident_events.c.incident_id == iid, incident_events.c.seq == target.seq)
        if change == "payload edited":
            conn.execute(update(incident_events).where(where).values(payload=target.payload.replace("1", "2", 1)))
        elif change == "event deleted":
            conn.execute(delete(incident_events).where(where))
        else:
            conn.execute(insert(incident_events).values({**dict(events[-1]._mapping), "seq": len(events) + 1}))
        plain = check(conn, log)
        report = check(conn, log, events=True)
    assert plain.ok  # the chain itself is intact: only the events check can tell
    error = first_error(report)
    if change == "event inserted":
        assert f"event {len(events) + 1} of incident {iid}" in error, error
    elif change == "event deleted":
        assert f"incident:{iid}#{target.seq}" in error, error
    else:
        assert f"event {target.seq} of incident {iid} was changed" in error, error


# -- the append-only guards ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_records SET body = :blob WHERE seq = 3",
        "UPDATE audit_records SET seq = 1000 WHERE seq = 3",
        "UPDATE audit_records SET entry_hash = :blob WHERE seq = 3",
        "UPDATE audit_records SET created_at = created_at WHERE seq = 3",
        "DELETE FROM audit_records WHERE seq = 3",
        "DELETE FROM audit_records",
    ],
)
def test_sealed_records_cannot_be_changed_or_deleted_while_the_guards_stand(log: Log, statement: str) -> None:
    with log.app.db.engine.connect() as conn:
        for_writing(conn)
        with pytest.raises(DBAPIError) as refused, conn.begin():
            conn.execute(text(statement), {"blob": b"\x00" * 32} if ":blob" in statement else {})
    assert "sealed" in str(refused.value) or "append-only" in str(refused.value), refused.value
    with log.app.db.connection() as conn:
        assert check(conn, log).ok


def test_an_unsealed_record_cannot_be_rewritten_while_the_guards_stand(log: Log) -> None:
    with log.app.db.engine.connect() as conn:
        for_writing(conn)
        conn.begin()
        try:
            SqlAuditTrail(conn, log_id=log.log_id, keys=log.app.db.keys).record(
                action="probe", actor="probe", subject="probe", payload={}, at=log.clock.now()
            )
            record_id = conn.execute(select(audit_records.c.id).where(audit_records.c.seq.is_(None))).scalar_one()
            with pytest.raises(DBAPIError), conn.begin_nested():
                set_fields(conn, record_id, body=b"\x00" * 40)
            with pytest.raises(DBAPIError), conn.begin_nested():
                set_fields(conn, record_id, key_id="dek-other")
        finally:
            conn.rollback()


def test_truncate_is_refused_while_the_guards_stand(log: Log) -> None:
    """TRUNCATE bypasses row triggers on PostgreSQL (SQLite has no TRUNCATE; its DELETE fires them)."""
    if log.app.db.engine.dialect.name != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's")
    with log.app.db.engine.connect() as conn:
        conn.begin()
        try:
            with pytest.raises(DBAPIError), conn.begin_nested():
                conn.execute(text("TRUNCATE audit_records"))
        finally:
            conn.rollback()


# -- garbage in a field: verify reports it, never crashes -----------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    ["id not hex", "key_id longer than 255 bytes", "created_at not a time", "digest of 31 bytes", "body empty"],
)
def test_garbage_in_a_field_is_reported_not_a_crash(log: Log, garbage: str) -> None:
    sqlite_only = {"key_id longer than 255 bytes", "created_at not a time"}
    if garbage in sqlite_only and log.app.db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's column types refuse it")
    with attack(log) as conn:
        rows = sealed(conn, log.log_id)
        k = len(rows) // 2
        row = rows[k]
        if garbage == "id not hex":
            set_fields(conn, row.id, id="zz" + row.id[2:])
        elif garbage == "key_id longer than 255 bytes":
            set_fields(conn, row.id, key_id="k" * 300)
        elif garbage == "created_at not a time":
            conn.execute(text("UPDATE audit_records SET created_at = 'yesterday' WHERE id = :id"), {"id": row.id})
        elif garbage == "digest of 31 bytes":
            set_fields(conn, row.id, digest=bytes(row.digest)[:31])
        else:
            set_fields(conn, row.id, body=b"")
        error = first_error(check(conn, log))
    assert f"#{k}" in error or f"where {k} was expected" in error, error


# -- a rollback to an older copy of the database ---------------------------------------------------------


def _more_records(app: App, clock: SimulatedClock, incident_id: int, count: int) -> None:
    for n in range(count):
        clock.advance(timedelta(seconds=5))
        app.handlers.handle(c.AddNote(actor=ACTOR, incident_id=incident_id, text=f"later note {n}"))
    app.audit.sealer.force_checkpoint()
    app.audit.flush()


def test_a_rollback_to_an_older_copy_of_the_database_is_found_with_the_kept_checkpoints(
    make_app: AppFactory, clock: SimulatedClock, database_url: str, tmp_path: Path
) -> None:
    app = make_app()
    iid = write_log(app, clock)
    old_size = app.audit.flush().size
    db_file = tmp_path / "ir.db"
    backup = tmp_path / "ir-old.db"
    pg = database_url.startswith("postgresql")
    name = make_url(database_url).database
    app.close()  # every connection, the appender's included
    if pg:
        with _pg_admin() as admin:
            admin.execute(text(f'CREATE DATABASE "{name}_old" TEMPLATE "{name}"'))
    else:
        with sqlite3.connect(db_file) as live, sqlite3.connect(backup) as copy:
            live.backup(copy)

    app = make_app()
    _more_records(app, clock, iid, 5)
    checkpoint_dir = Path(app.settings.checkpoint_dir)
    outside = tmp_path / "auditor"
    shutil.copytree(checkpoint_dir, outside)  # the auditor's copies, out of the attacker's reach
    kept = kept_checkpoints(outside, app.settings.audit_log_id)
    newest = max(parse_checkpoint(t).size for _, t in kept)
    assert newest > old_size
    app.close()

    if pg:
        with _pg_admin() as admin:
            admin.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            admin.execute(text(f'ALTER DATABASE "{name}_old" RENAME TO "{name}"'))
    else:
        for suffix in ("-wal", "-shm"):
            Path(f"{db_file}{suffix}").unlink(missing_ok=True)
        os.replace(backup, db_file)
    shutil.rmtree(checkpoint_dir)  # the attacker removes the deployment's own copies too

    restored = make_app()
    with restored.db.connection() as conn:
        inside = verify(conn, log_id=restored.settings.audit_log_id, verifiers=[Verifier(restored.verifier_key)])
        outside_report = verify(
            conn,
            log_id=restored.settings.audit_log_id,
            verifiers=[Verifier(restored.verifier_key)],
            checkpoint_texts=kept,
        )
    assert inside.ok and inside.size == old_size, inside.errors  # the older copy is self-consistent
    error = first_error(outside_report)
    assert f"covers {newest} records but the log holds {old_size}" in error, error


@contextmanager
def _pg_admin() -> Iterator[Connection]:
    admin = _admin_engine(os.environ[PG_ENV])
    try:
        with admin.connect() as conn:
            yield conn
    finally:
        admin.dispose()


# -- bodies moved before sealing -------------------------------------------------------------------------


def test_bodies_or_keys_moved_before_sealing_are_sealed_but_do_not_decrypt(app: App, clock: SimulatedClock) -> None:
    """Between commit and seal an attacker swaps two bodies and relabels a third record's key: the
    sealer chains what it finds (the keyless check passes), but nothing moved decrypts."""
    # written in a command's own transaction (the appender seals its records at once)
    november = clock.now() + timedelta(days=40)  # another month: another data key
    with app.db.uow() as uow:
        for n in range(3):
            uow.audit.record(action="a", actor="x", subject="s", payload={"n": n}, at=clock.now())
        uow.audit.record(action="b", actor="x", subject="s", payload={}, at=november)
        uow.commit()
    with app.db.engine.connect() as conn:
        for_writing(conn)
        with conn.begin():
            drop_guards(conn)
            rows = conn.execute(select(audit_records).order_by(audit_records.c.created_at, audit_records.c.id)).all()
            a, b, third, other_month = rows
            set_fields(conn, a.id, body=bytes(b.body))
            set_fields(conn, b.id, body=bytes(a.body))
            assert third.key_id != other_month.key_id
            set_fields(conn, third.id, key_id=other_month.key_id)
    app.audit.sealer.force_checkpoint()
    keys = DataKeys(app.db.keys.keyring)
    with app.db.connection() as conn:
        report = verify(conn, log_id=app.settings.audit_log_id, verifiers=[Verifier(app.verifier_key)])
        results = {
            row.id: decrypt(conn, keys, app.settings.audit_log_id, row)
            for row in sealed(conn, app.settings.audit_log_id)
        }
    assert report.ok, report.errors
    assert {rid for rid, r in results.items() if not r.ok} == {a.id, b.id, third.id}
    assert results[other_month.id].ok
