"""SQLite, the embedded default: WAL and synchronous=FULL on every connection, write transactions that
take the lock up front, and no acknowledged command lost when the process is killed."""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, select

from ir.adapters.clock import SimulatedClock
from ir.adapters.db.engine import for_writing, make_engine
from ir.adapters.db.rebuild import rebuild
from ir.adapters.db.schema import upgrade
from ir.adapters.db.tables import audit_records, incident_events, incidents, work_items
from ir.bootstrap import App, build
from ir.config import Settings
from ir.domain import commands as c
from ir.domain.incident import fold
from ir.domain.snapshot import to_snapshot
from tests.conftest import ACTOR, PLAYBOOKS, ROOT, T0, table_rows


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'ir.db'}", data_dir=str(tmp_path), playbooks_dir=str(PLAYBOOKS)
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    return settings


@pytest.fixture
def sqlite_app(sqlite_settings: Settings) -> Iterator[App]:
    app = build(sqlite_settings, clock=SimulatedClock(T0))
    yield app
    app.db.engine.dispose()


def pragmas(conn: Connection) -> tuple[int, str, int, int]:
    def one(name: str) -> object:
        return conn.exec_driver_sql(f"PRAGMA {name}").scalar()

    return (
        int(str(one("synchronous"))),
        str(one("journal_mode")).lower(),
        int(str(one("foreign_keys"))),
        int(str(one("busy_timeout"))),
    )


DURABLE = (2, "wal", 1, 30000)  # synchronous=FULL, WAL, foreign keys, a busy timeout


def test_every_pooled_connection_is_durable_wal(sqlite_app: App) -> None:
    engine = sqlite_app.db.engine
    held = [engine.connect() for _ in range(7)]  # more than the pool keeps: overflow connections too
    try:
        assert [pragmas(conn) for conn in held] == [DURABLE] * 7
        assert len({id(conn.connection.dbapi_connection) for conn in held}) == 7
    finally:
        for conn in held:
            conn.close()

    # connections opened at the same moment from several threads
    results: list[tuple[int, str, int, int]] = []
    errors: list[BaseException] = []
    ready = threading.Barrier(8)

    def check() -> None:
        try:
            ready.wait()
            with engine.connect() as conn:
                results.append(pragmas(conn))
                ready.wait()  # all eight open at once
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=check) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    assert results == [DURABLE] * 8

    # the connections the runner itself uses: a unit of work, a read, a reconnect after invalidation
    with sqlite_app.db.uow() as uow:
        assert pragmas(uow.conn) == DURABLE
    with sqlite_app.db.connection() as conn:
        assert pragmas(conn) == DURABLE
        conn.invalidate()
    with sqlite_app.db.connection() as conn:
        assert pragmas(conn) == DURABLE


def test_a_unit_of_work_takes_the_write_lock_at_once_and_readers_go_on(sqlite_app: App, tmp_path: Path) -> None:
    sqlite_app.handlers.handle(c.OpenIncident(actor=ACTOR, playbook="ddos", title="DDoS"))
    other = sqlite3.connect(tmp_path / "ir.db", timeout=0.2, isolation_level=None)
    try:
        with sqlite_app.db.uow():
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            assert other.execute("SELECT count(*) FROM incidents").fetchone() == (1,)  # WAL: readers go on
        other.execute("BEGIN IMMEDIATE")  # released when the unit of work ends
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_a_reader_handed_a_writers_pooled_connection_takes_no_write_lock(sqlite_app: App, tmp_path: Path) -> None:
    """The sealer and the checkpoint writer borrow pooled connections to write: the next reader given the
    same driver connection must read without the write lock, or every token check waits for a writer."""
    engine = make_engine(f"sqlite:///{tmp_path / 'ir.db'}")  # a pool with one driver connection
    with engine.connect() as conn:
        for_writing(conn)
        with conn.begin():
            conn.exec_driver_sql("SELECT 1")
        writer_driver = conn.connection.dbapi_connection
    other = sqlite3.connect(tmp_path / "ir.db", timeout=0.2, isolation_level=None)
    try:
        with engine.connect() as conn:
            assert conn.connection.dbapi_connection is writer_driver  # the pool hands it back out
            conn.execute(select(func.count()).select_from(incidents))  # a read, in its own transaction
            other.execute("BEGIN IMMEDIATE")  # free: the reader holds no write lock
            other.execute("ROLLBACK")
    finally:
        other.close()
        engine.dispose()


BURST = """
import sys
from ir.bootstrap import build
from ir.domain import commands as c

app = build()
actor = c.Actor(id="local:burst")
iid = int(sys.argv[1])
checked = False
n = 0
while True:
    n += 1
    base = {"actor": actor, "incident_id": iid}
    if n % 5 == 0:
        checked = not checked
        command = c.CheckItem(**base, step_id="confirm", item=1, checked=checked)
    elif n % 7 == 0:
        command = c.SetFacts(**base, facts={"peak_gbps": str(n)})
    else:
        command = c.AddNote(**base, text=f"burst note {n}")
    out = app.handlers.handle(command)
    print(out.version, flush=True)
"""


def test_a_killed_writer_loses_no_acknowledged_command(sqlite_settings: Settings) -> None:
    app = build(sqlite_settings, clock=SimulatedClock(T0))
    iid = app.handlers.handle(
        c.OpenIncident(actor=ACTOR, playbook="ddos", title="DDoS", facts={"affected_users": "1,200,000"}, level="II")
    ).incident_id
    app.handlers.handle(c.StartStep(actor=ACTOR, incident_id=iid, step_id="confirm"))
    app.db.engine.dispose()

    env = {
        **os.environ,
        "IR_DATABASE_URL": sqlite_settings.database_url,
        "IR_DATA_DIR": sqlite_settings.data_dir,
        "IR_PLAYBOOKS_DIR": sqlite_settings.playbooks_dir,
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", BURST, str(iid)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    acked: list[int] = []
    try:
        while len(acked) < 80:
            line = lines.get(timeout=30)
            if line is None:
                assert proc.stderr is not None
                pytest.fail(f"the writer stopped by itself: {proc.stderr.read()}")
            acked.append(int(line))
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # mid-burst: no chance to finish a transaction or close a file
        proc.wait(timeout=30)
    reader.join(timeout=30)
    while (line := lines.get(timeout=5)) is not None:  # acknowledged before the kill landed
        acked.append(int(line))
    assert proc.returncode == -signal.SIGKILL
    assert acked == list(range(4, 4 + len(acked)))  # opened at 2, confirm started at 3

    reopened = build(sqlite_settings, clock=SimulatedClock(T0))
    try:
        with reopened.db.connection() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            seqs = [
                int(s)
                for (s,) in conn.execute(
                    select(incident_events.c.seq)
                    .where(incident_events.c.incident_id == iid)
                    .order_by(incident_events.c.seq)
                )
            ]
            audited = conn.execute(select(func.count()).select_from(audit_records)).scalar_one()
        assert set(acked) <= set(seqs), f"acknowledged but lost: {sorted(set(acked) - set(seqs))}"
        assert seqs == list(range(1, len(seqs) + 1))
        assert audited == len(seqs)  # the audit records of every stored event, and of no other

        with reopened.db.read() as repo:
            inc = repo.get(iid)
            events = [s.event for s in repo.events(iid)]
        assert inc.version == seqs[-1]
        assert to_snapshot(inc) == to_snapshot(fold(iid, inc.playbook, events))

        live_items, live_incidents = table_rows(reopened, work_items), table_rows(reopened, incidents)
        rebuild(reopened.db)
        assert table_rows(reopened, work_items) == live_items
        assert table_rows(reopened, incidents) == live_incidents

        # and the incident takes new commands where it stopped
        out = reopened.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text="after the crash"))
        assert out.version == seqs[-1] + 1
    finally:
        reopened.db.engine.dispose()
