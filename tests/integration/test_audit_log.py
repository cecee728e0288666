"""The audit log's guarantees a user relies on, on SQLite and PostgreSQL: key rotation, crypto-shredding,
concurrent writers and sealers (threads and processes), kill -9 in the middle of appends and of sealing,
aborted transactions, failing closed, verify's warnings, nonces, and the storage settings.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, MetaData, Table, func, select, text
from sqlalchemy.exc import DBAPIError

from ir.adapters.audit.appender import Pending
from ir.adapters.audit.checkpoint import Verifier
from ir.adapters.audit.export import decrypt
from ir.adapters.audit.keys import DataKeys
from ir.adapters.audit.sealer import Sealer
from ir.adapters.audit.verify import Report, verify
from ir.adapters.audit.writer import SqlAuditTrail
from ir.adapters.clock import SimulatedClock
from ir.adapters.db.engine import for_writing
from ir.adapters.db.tables import (
    audit_checkpoints,
    audit_heads,
    audit_keys,
    audit_records,
    evidence_blobs,
    incident_events,
    incidents,
    subject_keys,
    work_items,
)
from ir.bootstrap import App
from ir.domain import commands as c
from ir.domain.errors import InvalidInput, InvalidTransition, IrError
from ir.domain.personal import ERASED
from ir.domain.snapshot import to_snapshot
from tests.conftest import ACTOR, PLAYBOOKS, ROOT, AppFactory, decrypt_audit, table_rows

ZHANG = "Zhang San, 138-0000-1111"
LI = "Li Si, the on-call engineer"


def open_ddos(app: App, title: str = "Botnet flood") -> int:
    return app.handlers.handle(c.OpenIncident(actor=ACTOR, playbook="ddos", title=title, level="II")).incident_id


def verified(app: App, *, events: bool = True, texts: list[tuple[str, str]] | None = None) -> Report:
    with app.db.connection() as conn:
        return verify(
            conn,
            log_id=app.settings.audit_log_id,
            verifiers=[Verifier(app.verifier_key)],
            checkpoint_texts=texts or [],
            events=events,
        )


def seqs(app: App) -> list[int]:
    with app.db.connection() as conn:
        return [
            int(s)
            for (s,) in conn.execute(
                select(audit_records.c.seq).where(audit_records.c.seq.is_not(None)).order_by(audit_records.c.seq)
            )
        ]


def count(app: App, table: Table, *where: Any) -> int:
    with app.db.connection() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def assert_sealed_without_gaps(app: App) -> int:
    """Everything sealed, numbered 0..n-1, the head agreeing, and the log verifying (events included)."""
    app.audit.flush()
    numbers = seqs(app)
    total = count(app, audit_records)
    assert numbers == list(range(total)), "a gap or a duplicate in the sequence"
    with app.db.connection() as conn:
        head = conn.execute(select(audit_heads.c.size)).scalar_one()
    assert int(head) == total
    report = verified(app)
    assert report.ok, report.errors
    assert report.size == total
    return total


def entry_hashes(app: App) -> dict[str, bytes]:
    with app.db.connection() as conn:
        return {r.id: bytes(r.entry_hash) for r in conn.execute(select(audit_records.c.id, audit_records.c.entry_hash))}


# -- key rotation ----------------------------------------------------------------------------------------


def test_kek_rotation_rewraps_keys_keeps_records_readable_and_retiring_waits_for_the_last_wrapped_key(
    make_app: AppFactory, clock: SimulatedClock
) -> None:
    app = make_app()
    stale = make_app()  # another process, started before the rotation: it still wraps under the old KEK
    iid = open_ddos(app)
    app.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text=ZHANG, about="zhang-san"))
    stale.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text="the stale process at work"))
    app.audit.flush()
    before = entry_hashes(app)
    keyring = app.db.keys.keyring
    with app.db.connection() as conn:
        wrapped = int(conn.execute(select(func.count()).select_from(audit_keys)).scalar_one()) + int(
            conn.execute(select(func.count()).select_from(subject_keys)).scalar_one()
        )

    with pytest.raises(InvalidTransition, match="current"), app.db.uow() as uow:
        keyring.retire(uow.conn, keyring.current.id)
    with app.db.uow() as uow:
        old, new, rewrapped = keyring.rotate(uow.conn)
        uow.commit()
    assert (old != new, rewrapped) == (True, wrapped)
    assert keyring.current.id == new
    with app.db.connection() as conn:
        assert {k for (k,) in conn.execute(select(audit_keys.c.kek_id))} == {new}

    # old records still decrypt, for an auditor's tool and for a process started after the rotation
    fresh = make_app()
    assert len(decrypt_audit(fresh)) == count(app, audit_records)
    assert fresh.personal.reveal(ACTOR, iid, note=1, reason="audit") == ZHANG

    # a process started before the rotation wraps a new person's key under the KEK now current on disk
    stale.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text=LI, about="li-si"))
    with app.db.connection() as conn:
        assert {k for (k,) in conn.execute(select(subject_keys.c.kek_id))} == {new}

    # a KEK that still wraps a data key cannot be retired: the new one does, the old one no longer
    with pytest.raises(InvalidTransition, match="current"), app.db.uow() as uow:
        keyring.retire(uow.conn, new)
    with app.db.uow() as uow:
        keyring.retire(uow.conn, old)
        uow.commit()
    assert not os.path.exists(os.path.join(keyring.folder, f"{old}.key"))
    assert oct(os.stat(os.path.join(keyring.folder, f"{old}.key.retired")).st_mode & 0o777) == "0o600"

    after = make_app()
    assert old not in after.db.keys.keyring.ids
    assert len(decrypt_audit(after)) == count(app, audit_records)
    assert after.personal.reveal(ACTOR, iid, note=1, reason="audit") == ZHANG
    assert after.personal.reveal(ACTOR, iid, note=3, reason="audit") == LI
    # rotation never rewrote a record
    assert assert_sealed_without_gaps(app) > len(before)
    now = entry_hashes(app)
    assert {k: now[k] for k in before} == before


def test_a_process_running_during_a_rotation_keeps_working(make_app: AppFactory) -> None:
    """`ir audit rotate-kek` (and `retire-kek`) while `ir serve` runs: the server must still open the data
    keys re-wrapped under the new KEK, and must not wrap new keys under the KEK just retired."""
    server = make_app()
    iid = open_ddos(server)
    server.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text=ZHANG, about="zhang-san"))
    operator = make_app()
    keyring = operator.db.keys.keyring
    with operator.db.uow() as uow:
        old, _new, _ = keyring.rotate(uow.conn)
        uow.commit()
    with operator.db.uow() as uow:
        keyring.retire(uow.conn, old)
        uow.commit()

    assert server.personal.reveal(ACTOR, iid, note=1, reason="audit") == ZHANG
    server.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text="more", about="zhang-san"))


def test_a_process_running_during_a_rotation_does_not_wrap_new_keys_under_the_retired_kek(
    make_app: AppFactory,
) -> None:
    server = make_app()
    iid = open_ddos(server)  # its month's data key is unwrapped and cached
    operator = make_app()
    keyring = operator.db.keys.keyring
    with operator.db.uow() as uow:
        old, new, _ = keyring.rotate(uow.conn)
        uow.commit()
    with operator.db.uow() as uow:
        keyring.retire(uow.conn, old)
        uow.commit()

    try:
        server.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text=LI, about="li-si"))
    except IrError:
        return  # refusing is acceptable; wrapping a new person's key under a retired KEK is not
    with server.db.connection() as conn:
        kek = conn.execute(select(subject_keys.c.kek_id)).scalar_one()
    assert kek == new, f"a new data key was wrapped under {kek}, retired a moment ago"
    assert make_app().personal.reveal(ACTOR, iid, note=1, reason="audit") == LI


# -- crypto-shredding ------------------------------------------------------------------------------------


def _all_stored_bytes(app: App) -> bytes:
    """Every value in every table, as bytes (what someone reading the database files would see)."""
    meta = MetaData()
    meta.reflect(app.db.engine)
    out = bytearray()
    with app.db.connection() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    out += bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
    return bytes(out)


def test_shredding_erases_one_person_everywhere_and_the_chain_still_verifies(
    app: App, make_app: AppFactory, clock: SimulatedClock
) -> None:
    iid = open_ddos(app)
    app.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text=ZHANG, about="zhang-san"))
    app.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text=LI, about="li-si"))
    app.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text="called him back", about="zhang-san"))
    assert app.personal.reveal(ACTOR, iid, note=1, reason="call back") == ZHANG
    app.audit.sealer.force_checkpoint()
    app.audit.flush()
    kept = [(p.name, p.read_text()) for p in Path(app.settings.checkpoint_dir).glob("*-0*.checkpoint")]
    assert b"Zhang San" not in _all_stored_bytes(app)
    assert "Zhang San" not in json.dumps(decrypt_audit(app), ensure_ascii=False)

    clock.advance(timedelta(minutes=5))
    ref = app.personal.shred(ACTOR, "zhang-san", reason="erasure request")

    for process in (app, make_app()):
        assert process.personal.reveal(ACTOR, iid, note=1, reason="review") == ERASED
        assert process.personal.reveal(ACTOR, iid, note=3, reason="review") == ERASED
        assert process.personal.reveal(ACTOR, iid, note=2, reason="review") == LI
    with app.db.connection() as conn:
        shredded = conn.execute(select(subject_keys).where(subject_keys.c.subject_ref == ref)).one()
    assert shredded.wrapped is None and shredded.shredded_at is not None

    # the log still verifies, against the checkpoint kept from before the erasure too; nothing "tampered"
    assert_sealed_without_gaps(app)
    report = verified(app, texts=kept)
    assert report.ok, report.errors
    assert report.checkpoints[0] == int(kept[0][0].rsplit("-", 1)[1].split(".")[0])
    records = decrypt_audit(make_app())  # every record still decrypts: only the person's values are gone
    erasures = [r for r in records if r["action"] == "personal.shred"]
    assert [e["payload"]["subject_ref"] for e in erasures] == [ref]
    assert [e["payload"]["reason"] for e in erasures] == ["erasure request"]
    reveals = [r for r in records if r["action"] == "personal.reveal"]
    assert len(reveals) == 1 + 3 * 2

    with pytest.raises(InvalidInput):
        app.personal.shred(ACTOR, "zhang-san", reason="again")
    with pytest.raises(InvalidInput, match="erased"):
        app.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text="new data", about="zhang-san"))
    with pytest.raises(IrError) as unknown:
        app.personal.shred(ACTOR, "nobody-we-know", reason=None)
    assert unknown.value.exit_code == 3


# -- concurrency -----------------------------------------------------------------------------------------


def test_concurrent_writer_threads_and_sealers_leave_a_contiguous_sequence(
    app: App, make_app: AppFactory, clock: SimulatedClock
) -> None:
    """Eight threads write commands and stand-alone records while sealers of two processes seal."""
    other = make_app()
    incidents_ = [open_ddos(app, f"incident {n}") for n in range(8)]
    app.audit.flush()  # the chain's head exists (two first-ever sealers racing: see the test below)
    start = threading.Barrier(10)
    stop = threading.Event()
    errors: list[BaseException] = []
    acked: list[str] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        process = (app, other)[n % 2]
        start.wait()
        try:
            for k in range(12):
                note = f"writer {n} note {k}"
                process.handlers.handle(c.AddNote(actor=ACTOR, incident_id=incidents_[n], text=note))
                if k % 4 == 0:
                    process.appender.append(
                        action="probe", actor=f"w{n}", subject="s", payload={"k": k}, at=clock.now()
                    )
                with lock:
                    acked.append(note)
        except BaseException as exc:  # reported below
            errors.append(exc)

    def sealer(process: App) -> None:
        start.wait()
        try:
            while not stop.is_set():
                process.audit.flush()
        except BaseException as exc:  # reported below
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    sealers = [threading.Thread(target=sealer, args=(p,)) for p in (app, other)]
    for t in writers + sealers:
        t.start()
    for t in writers:
        t.join(timeout=120)
    stop.set()
    for t in sealers:
        t.join(timeout=60)
    assert not errors, errors
    assert len(acked) == 8 * 12
    total = assert_sealed_without_gaps(app)
    assert total == count(app, incident_events) + 8 * 3


def test_two_first_ever_sealers_racing_both_succeed(make_app: AppFactory) -> None:
    """Two processes seal a new log at the same moment: the chain's head row does not exist yet, and
    both try to create it. One must wait for the other, not fail."""
    processes = [make_app() for _ in range(4)]
    open_ddos(processes[0])
    start = threading.Barrier(len(processes))
    errors: list[BaseException] = []

    def seal(process: App) -> None:
        start.wait()
        try:
            process.audit.sealer.seal()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=seal, args=(p,)) for p in processes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert_sealed_without_gaps(processes[0])


CHILD_WRITER = """
import sys
from ir.bootstrap import build
from ir.config import Settings
from ir.domain import commands as c

url, data_dir, playbooks, incident, count, seal_every = sys.argv[1:7]
app = build(Settings(database_url=url, data_dir=data_dir, playbooks_dir=playbooks))
actor = c.Actor(id="child")
n = 0
while int(count) < 0 or n < int(count):
    app.handlers.handle(c.AddNote(actor=actor, incident_id=int(incident), text=f"{incident}:{n}"))
    app.appender.append(action="child.act", actor="child", subject="s", payload={"mark": f"{incident}:{n}"},
                        at=app.clock.now())
    print(n, flush=True)
    n += 1
    if int(seal_every) and n % int(seal_every) == 0:
        app.audit.flush()
app.close()
"""


def _child(app: App, code: str, *args: object) -> subprocess.Popen[str]:
    settings = app.settings
    return subprocess.Popen(
        [sys.executable, "-c", code, settings.database_url, settings.data_dir, str(PLAYBOOKS), *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_concurrent_writer_processes_leave_a_contiguous_sequence(app: App) -> None:
    ids = [open_ddos(app, f"incident {n}") for n in range(3)]
    app.audit.flush()
    children = [_child(app, CHILD_WRITER, iid, 15, 4) for iid in ids]
    try:
        for child in children:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
            assert out.split() == [str(n) for n in range(15)]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    total = assert_sealed_without_gaps(app)
    assert total == count(app, incident_events) + 3 * 15
    marks = {r["payload"]["mark"] for r in decrypt_audit(app) if r["action"] == "child.act"}
    assert marks == {f"{iid}:{n}" for iid in ids for n in range(15)}


def _read_acks(child: subprocess.Popen[str], until: int) -> list[int]:
    assert child.stdout is not None
    acks: list[int] = []
    while len(acks) < until:
        line = child.stdout.readline()
        if not line:
            raise AssertionError(f"the child stopped: {child.stderr.read() if child.stderr else ''}")
        acks.append(int(line))
    return acks


def test_kill_9_in_the_middle_of_appends_leaves_no_partial_record_and_loses_no_committed_one(app: App) -> None:
    iid = open_ddos(app)
    child = _child(app, CHILD_WRITER, iid, -1, 3)
    try:
        acks = _read_acks(child, 25)
        os.kill(child.pid, signal.SIGKILL)
        out, _ = child.communicate(timeout=30)
        acks += [int(n) for n in out.split()]  # acknowledged before the kill, still in the pipe
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    assert_sealed_without_gaps(app)  # every event has its record and every record its event
    with app.db.read() as repo:
        notes = {n.text for n in repo.get(iid).notes}
    assert {f"{iid}:{n}" for n in acks} <= notes
    marks = {r["payload"]["mark"] for r in decrypt_audit(app) if r["action"] == "child.act"}
    assert {f"{iid}:{n}" for n in acks} <= marks
    assert len(notes) - len(marks) in (0, 1)  # at most the one command in flight lost its stand-alone act


CHILD_SEALER = """
import sys, time
from ir.bootstrap import build
from ir.config import Settings

url, data_dir, playbooks = sys.argv[1:4]
app = build(Settings(database_url=url, data_dir=data_dir, playbooks_dir=playbooks))
sealer = app.audit.sealer
sealer.batch = 200
sealer.checkpoint_every = 1
signed = sealer.checkpoint
assert signed is not None

def slow(conn, size, root, at):
    signed(conn, size, root, at)
    print(size, flush=True)  # inside the batch's transaction: not committed yet
    time.sleep(0.05)

sealer.checkpoint = slow
sealer.seal()
"""


def _backlog(app: App, clock: SimulatedClock, n: int) -> None:
    with app.db.engine.connect() as conn:
        for_writing(conn)
        with conn.begin():
            trail = SqlAuditTrail(conn, log_id=app.settings.audit_log_id, keys=app.db.keys)
            at = clock.now()
            for k in range(n):
                trail.record(
                    action="bulk", actor="x", subject=f"s{k % 7}", payload={"k": k}, at=at + timedelta(microseconds=k)
                )


def test_kill_9_in_the_middle_of_sealing_leaves_a_consistent_prefix(app: App, clock: SimulatedClock) -> None:
    """The sealer is killed while a batch is numbered but not committed (or just after a commit)."""
    total = 3000
    _backlog(app, clock, total)
    child = _child(app, CHILD_SEALER)
    try:
        printed = [int(_read_line(child)) for _ in range(5)]
        os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    assert printed == [200, 400, 600, 800, 1000]
    with app.db.connection() as conn:
        size = int(conn.execute(select(audit_heads.c.size)).scalar_one())
        checkpointed = [int(s) for (s,) in conn.execute(select(audit_checkpoints.c.size))]
    assert size in (800, 1000)  # the batch in flight is all or nothing
    assert seqs(app) == list(range(size))
    assert max(checkpointed) == size  # no checkpoint of a batch that never committed
    report = verified(app, events=False)
    assert report.ok, report.errors
    assert f"{total - size} record(s) are not sealed yet" in report.warnings
    assert assert_sealed_without_gaps(app) == total


def _read_line(child: subprocess.Popen[str]) -> str:
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    if not line:
        raise AssertionError(child.stderr.read() if child.stderr else "the child stopped")
    return line


# -- aborted transactions --------------------------------------------------------------------------------


def test_an_aborted_postgresql_transaction_leaves_no_gap(app: App, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("a transaction open beside other writers is PostgreSQL's")
    iid = open_ddos(app)
    # a unit of work writes its audit record, and stays open while others commit and are sealed
    pending = app.db.engine.connect()
    pending.begin()
    SqlAuditTrail(pending, log_id=app.settings.audit_log_id, keys=app.db.keys).record(
        action="doomed", actor="x", subject="s", payload={}, at=app.clock.now()
    )
    for n in range(3):
        app.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text=f"note {n}"))
    app.audit.flush()
    pending.rollback()
    pending.close()

    # a command whose transaction aborts at COMMIT, after every row (the audit record too) was written
    with app.db.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION ir_test_refuse() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'refused at commit'; END $$ LANGUAGE plpgsql"
            )
        )
        conn.execute(
            text(
                "CREATE CONSTRAINT TRIGGER ir_test_refuse AFTER INSERT ON audit_records "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ir_test_refuse()"
            )
        )
    with pytest.raises(DBAPIError, match="refused at commit"):
        app.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text="aborted at commit"))
    with app.db.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER ir_test_refuse ON audit_records"))
    for n in range(3, 5):
        app.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text=f"note {n}"))

    assert assert_sealed_without_gaps(app) == count(app, incident_events)
    with app.db.read() as repo:
        assert [n.text for n in repo.get(iid).notes] == [f"note {n}" for n in range(5)]
    assert "doomed" not in {r["action"] for r in decrypt_audit(app)}


def test_an_aborted_seal_leaves_no_gap(app: App, clock: SimulatedClock) -> None:
    iid = open_ddos(app)
    app.audit.flush()
    sealed_before = seqs(app)
    app.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text="one"))

    def refuse(*_: object) -> None:
        raise RuntimeError("the checkpoint could not be signed")

    failing = Sealer(
        app.db.engine, log_id=app.settings.audit_log_id, clock=clock, checkpoint=refuse, checkpoint_every=1
    )
    with pytest.raises(RuntimeError):
        failing.seal()
    assert seqs(app) == sealed_before  # the whole batch rolled back: nothing numbered
    app.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text="two"))
    assert assert_sealed_without_gaps(app) == count(app, incident_events)


def test_the_appender_writes_its_records_sealed_after_what_was_pending(app: App, clock: SimulatedClock) -> None:
    """A batch handed to the appender is numbered in its own commit, after the command records still
    waiting for the sealer: nothing is left unsealed, and nothing is numbered out of turn."""
    iid = open_ddos(app)
    app.audit.flush()
    for n in range(3):
        app.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text=f"pending {n}"))
    with app.db.connection() as conn:
        before = {str(i): s for i, s in conn.execute(select(audit_records.c.id, audit_records.c.seq))}
    pending = {i for i, s in before.items() if s is None}
    assert len(pending) == 3
    at = clock.now()
    app.appender.append_many([Pending("probe", "x", f"s{k % 3}", {"k": k}, at) for k in range(250)])
    assert count(app, audit_records, audit_records.c.seq.is_(None)) == 0  # no sealer ran: the appender did
    with app.db.connection() as conn:
        after = {str(i): int(s) for i, s in conn.execute(select(audit_records.c.id, audit_records.c.seq))}
    appended = [s for i, s in after.items() if i not in before]
    assert len(appended) == 250
    assert max(after[i] for i in pending) < min(appended), "a pending record was numbered after the batch"
    total = assert_sealed_without_gaps(app)
    contents = [r for r in decrypt_audit(app) if r["action"] == "probe"]
    assert sorted(r["payload"]["k"] for r in contents) == list(range(250))
    assert total == count(app, incident_events) + 250


def test_the_appender_still_writes_when_sealing_fails_and_the_sealer_numbers_it_later(
    app: App, clock: SimulatedClock
) -> None:
    """A failure of the chain's own (a checkpoint that cannot be signed) does not refuse a sign-in: the
    batch is written unsealed instead, and the next seal numbers it without a gap."""
    from ir.adapters.audit.appender import GroupCommitAppender

    def refuse(*_: object) -> None:
        raise RuntimeError("the checkpoint could not be signed")

    failing = Sealer(
        app.db.engine,
        log_id=app.settings.audit_log_id,
        clock=clock,
        checkpoint=refuse,
        checkpoint_every=1,
        write_lock=app.db.write_lock,
    )
    open_ddos(app)
    app.audit.flush()
    sealed_before = seqs(app)
    woken: list[object] = []
    appender = GroupCommitAppender(app.db, sealer=failing, on_commit=woken.append)
    try:
        appender.append(action="sign_in", actor="x", subject="s", payload={}, at=clock.now())
    finally:
        appender.close()
    assert woken == [None]  # written unsealed: the background sealer is told
    assert seqs(app) == sealed_before
    assert count(app, audit_records, audit_records.c.seq.is_(None)) == 1
    assert assert_sealed_without_gaps(app) == len(sealed_before) + 1
    assert "sign_in" in {r["action"] for r in decrypt_audit(app)}


# -- failing closed --------------------------------------------------------------------------------------


def _refuse_audit_inserts(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                "CREATE FUNCTION ir_test_no_audit() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'audit storage unavailable'; END $$ LANGUAGE plpgsql"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER ir_test_no_audit BEFORE INSERT ON audit_records "
                "FOR EACH ROW EXECUTE FUNCTION ir_test_no_audit()"
            )
        )
    else:
        conn.execute(
            text(
                "CREATE TRIGGER ir_test_no_audit BEFORE INSERT ON audit_records "
                "BEGIN SELECT RAISE(ABORT, 'audit storage unavailable'); END"
            )
        )


def _allow_audit_inserts(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("DROP TRIGGER ir_test_no_audit ON audit_records"))
    else:
        conn.execute(text("DROP TRIGGER ir_test_no_audit"))


def _everything(app: App, iid: int) -> Any:
    with app.db.read() as repo:
        state = to_snapshot(repo.get(iid))
    return (
        state,
        table_rows(app, incidents),
        table_rows(app, work_items),
        count(app, incident_events),
        count(app, subject_keys),
        count(app, evidence_blobs),
        count(app, audit_records),
    )


def test_a_command_whose_audit_record_cannot_be_written_fails_and_changes_nothing(
    app: App, make_app: AppFactory
) -> None:
    iid = open_ddos(app)
    app.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text=ZHANG, about="zhang-san"))
    before = _everything(app, iid)
    with app.db.engine.begin() as conn:
        _refuse_audit_inserts(conn)

    base: dict[str, Any] = {"actor": ACTOR, "incident_id": iid}
    commands: list[c.Command] = [
        c.AddNote(**base, text="must not be stored"),
        c.AddNote(**base, text="about a new person", about="wang-wu"),
        c.StartStep(**base, step_id="confirm"),
        c.AttachEvidence(**base, step_id="confirm", filename="g.txt", content=b"graphs"),
        c.OpenIncident(actor=ACTOR, playbook="ddos", title="must not be opened"),
    ]
    for command in commands:
        with pytest.raises(Exception, match="audit storage unavailable"):
            app.handlers.handle(command)
    with pytest.raises(Exception, match="audit storage unavailable"):
        app.personal.reveal(ACTOR, iid, note=1, reason="no record, no reveal")
    with pytest.raises(Exception, match="audit storage unavailable"):
        app.appender.append(action="sign_in", actor="x", subject="s", payload={}, at=app.clock.now())
    assert _everything(app, iid) == before
    assert _everything(make_app(), iid) == before

    with app.db.engine.begin() as conn:
        _allow_audit_inserts(conn)
    app.handlers.handle(c.StartStep(**base, step_id="confirm"))
    app.appender.append(action="sign_in", actor="x", subject="s", payload={}, at=app.clock.now())
    assert app.personal.reveal(ACTOR, iid, note=1, reason="the record is written again") == ZHANG
    assert_sealed_without_gaps(app)


# -- verify's warnings -----------------------------------------------------------------------------------


def test_verify_warns_about_unanchored_and_unsealed_records_without_failing(app: App, clock: SimulatedClock) -> None:
    iid = open_ddos(app)
    app.audit.sealer.force_checkpoint()
    anchored = count(app, audit_records)
    for n in range(3):
        app.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text=f"sealed, not anchored {n}"))
    app.audit.flush()  # sealed; the last checkpoint is younger than its interval: no new checkpoint
    for n in range(2):
        app.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text=f"not sealed {n}"))
    report = verified(app, events=False)
    assert report.ok, report.errors
    assert report.size == anchored + 3
    assert report.checkpoints == [anchored]
    assert report.warnings == [
        f"3 record(s) after the last checkpoint (size {anchored}) are not yet anchored",
        "2 record(s) are not sealed yet",
    ]
    app.audit.sealer.force_checkpoint()
    final = verified(app)
    assert final.ok and final.warnings == []


# -- the background sealer and checkpoint publishing -----------------------------------------------------


def unsealed(app: App) -> int:
    return count(app, audit_records, audit_records.c.seq.is_(None))


def test_the_background_sealer_seals_after_each_command_and_publishing_is_retried(app: App) -> None:
    app.audit.start(idle=60)  # within the test's patience, only the commands' wake-up can seal
    try:
        iid = open_ddos(app)
        deadline = time.monotonic() + 10
        while unsealed(app) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert unsealed(app) == 0
    finally:
        app.audit.stop()

    # the place outside the database is unreachable: the checkpoint is kept, marked unpublished, and retried
    app.audit.publisher.url = "http://127.0.0.1:9/checkpoints"
    app.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text="one more"))
    failures = app.audit.failures
    size = app.audit.sealer.force_checkpoint()
    assert size is not None
    app.audit.flush()
    assert app.audit.failures == failures + 1

    def unpublished() -> list[int]:
        with app.db.connection() as conn:
            return [
                int(s)
                for (s,) in conn.execute(
                    select(audit_checkpoints.c.size).where(audit_checkpoints.c.published_at.is_(None))
                )
            ]

    assert unpublished() == [size[0]]
    app.audit.publisher.url = None
    app.audit.flush()
    assert unpublished() == []
    folder = Path(app.settings.checkpoint_dir)
    assert (folder / f"{app.settings.audit_log_id}-{size[0]:012d}.checkpoint").is_file()
    assert (folder / f"{app.settings.audit_log_id}-latest.checkpoint").read_text().splitlines()[1] == str(size[0])


# -- nonces, storage settings ----------------------------------------------------------------------------


def test_no_two_records_share_a_nonce(app: App, clock: SimulatedClock) -> None:
    at = clock.now()
    app.appender.append_many(
        [Pending(action="bulk", actor="x", subject=f"s{k % 13}", payload={"k": k}, at=at) for k in range(10_000)]
    )
    iid = open_ddos(app)
    for n in range(5):
        app.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text=f"note {n}"))
    with app.db.connection() as conn:
        bodies = [bytes(b) for (b,) in conn.execute(select(audit_records.c.body))]
        ids = [i for (i,) in conn.execute(select(audit_records.c.id))]
    assert len(bodies) >= 10_000
    assert len({b[:12] for b in bodies}) == len(bodies)
    assert len(set(ids)) == len(ids)
    sample = bodies[:50]
    keys = DataKeys(app.db.keys.keyring)
    with app.db.connection() as conn:
        rows = conn.execute(select(audit_records).limit(50)).all()
        assert all(decrypt(conn, keys, app.settings.audit_log_id, row).ok for row in rows)
    assert all(len(b) > 12 + 16 for b in sample)


def test_sqlite_runs_in_wal_mode_with_full_synchronous_on_every_connection(app: App, database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's settings")
    for conn in (app.db.writer_connection(), app.db.engine.connect(), app.db.engine.connect()):
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        conn.rollback()


def test_records_are_sealed_in_the_order_they_were_made(app: App, clock: SimulatedClock) -> None:
    iid = open_ddos(app)
    for n in range(5):
        clock.advance(timedelta(seconds=1))
        app.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text=f"note {n}"))
    app.audit.flush()
    with app.db.connection() as conn:
        created: list[datetime] = [
            r for (r,) in conn.execute(select(audit_records.c.created_at).order_by(audit_records.c.seq))
        ]
    assert created == sorted(created)
