"""The runner's speed (issue 3), each figure beside a ceiling measured in the same run.

- step transitions, sequential, one process, through the handlers, durable (SQLite WAL, synchronous=FULL),
  beside the same command shape written with raw sqlite3 (read the incident's state, insert one event,
  update a projection row, write one AES-GCM-encrypted audit record, commit);
- the same on an incident that already holds 10,000 events;
- opening an incident from a 200-step playbook;
- the status board of an incident with 10,000 events, warm and as a cold `ir status`;
- rebuilding projections from 1,000,000 events;
- memory: one incident with 10,000 events; the timer service with many closed incidents.
"""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_playbooks import big_playbook  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from ir.adapters.clock import SystemClock  # noqa: E402
from ir.adapters.db.engine import make_engine  # noqa: E402
from ir.adapters.db.schema import upgrade  # noqa: E402
from ir.bootstrap import App, build  # noqa: E402
from ir.config import Settings  # noqa: E402
from ir.domain import commands as c  # noqa: E402

ACTOR = c.Actor(id="bench", roles=frozenset({"admin"}))
QUICK = os.environ.get("IR_BENCH_QUICK") == "1"


def make_app(folder: Path, playbooks: Path) -> App:
    url = f"sqlite:///{folder / 'ir.db'}"
    settings = Settings(database_url=url, data_dir=str(folder), playbooks_dir=str(playbooks))
    upgrade(make_engine(url))
    return build(settings, clock=SystemClock())


def transitions(app: App, incident_id: int, steps: int) -> float:
    """Start and complete `steps` steps in order; returns transitions per second."""
    t0 = time.perf_counter()
    for i in range(steps):
        app.handlers.handle(c.StartStep(actor=ACTOR, incident_id=incident_id, step_id=f"s{i}"))
        app.handlers.handle(c.CompleteStep(actor=ACTOR, incident_id=incident_id, step_id=f"s{i}"))
    return 2 * steps / (time.perf_counter() - t0)


def open_incident(app: App, pb: str) -> int:
    out = app.handlers.handle(c.OpenIncident(actor=ACTOR, playbook=pb, title="bench", level="I"))
    return out.incident_id


def raw_ceiling(folder: Path, n: int) -> float:
    """The same command shape with raw sqlite3 at the same durability."""
    db = sqlite3.connect(folder / "raw.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(
        """
        CREATE TABLE incidents (id INTEGER PRIMARY KEY, version INTEGER, updated_at TEXT);
        CREATE TABLE events (incident_id INTEGER, seq INTEGER, kind TEXT, payload TEXT, actor TEXT, at TEXT,
                             PRIMARY KEY (incident_id, seq));
        CREATE TABLE work_items (incident_id INTEGER, ref TEXT, status TEXT, due_at TEXT,
                                 PRIMARY KEY (incident_id, ref));
        CREATE TABLE audit (id TEXT PRIMARY KEY, log_id TEXT, created_at TEXT, key_id TEXT, subject_ref TEXT,
                            body BLOB);
        INSERT INTO incidents VALUES (1, 0, '');
        """
    )
    db.executemany("INSERT INTO work_items VALUES (1, ?, 'ready', NULL)", [(f"step:s{i}",) for i in range(n)])
    aes = AESGCM(os.urandom(32))
    t0 = time.perf_counter()
    for i in range(n):
        now = datetime.now(UTC).isoformat()
        db.execute("BEGIN IMMEDIATE")
        (version,) = db.execute("SELECT version FROM incidents WHERE id = 1").fetchone()
        payload = json.dumps({"step": f"s{i}", "at": now, "actor": "bench", "assignee": "bench"})
        db.execute("INSERT INTO events VALUES (1, ?, 'step_started', ?, 'bench', ?)", (version + 1, payload, now))
        db.execute(
            "UPDATE incidents SET version = ?, updated_at = ? WHERE id = 1 AND version = ?",
            (version + 1, now, version),
        )
        db.execute("UPDATE work_items SET status = 'in_progress' WHERE incident_id = 1 AND ref = ?", (f"step:s{i}",))
        nonce = os.urandom(12)
        rid = os.urandom(16).hex()
        body = nonce + aes.encrypt(nonce, payload.encode(), rid.encode())
        db.execute("INSERT INTO audit VALUES (?, 'log', ?, 'k1', 'subj', ?)", (rid, now, body))
        db.execute("COMMIT")
    rate = n / (time.perf_counter() - t0)
    db.close()
    return rate


def pad_with_notes(app: App, incident_id: int, count: int) -> None:
    for i in range(count):
        app.handlers.handle(c.AddNote(actor=ACTOR, incident_id=incident_id, text=f"observation {i}"))


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        books = folder / "playbooks"
        books.mkdir()
        (books / "big.yaml").write_text(big_playbook(200).replace("id: mini", "id: big", 1), encoding="utf-8")
        app = make_app(folder, books)

        # open (warm up first)
        open_incident(app, "big")
        opens = []
        for _ in range(15):
            t0 = time.perf_counter()
            open_incident(app, "big")
            opens.append(time.perf_counter() - t0)
        print(
            f"open an incident from a 200-step playbook: {statistics.median(opens) * 1000:.1f} ms median "
            "(target < 20 ms)"
        )

        steps = 100 if QUICK else 200
        # interleaved, so that both see the same machine: the median of each, and of the pairwise ratios
        fresh_rates, raw_rates, cpu, raw_cpu = [], [], [], []
        for _ in range(5):
            incident = open_incident(app, "big")
            c0 = time.thread_time()  # CPU of this thread: what the handlers cost beside the fsync wait
            fresh_rates.append(transitions(app, incident, steps))
            cpu.append((time.thread_time() - c0) / (2 * steps))
            c0 = time.thread_time()
            raw_rates.append(raw_ceiling(Path(tempfile.mkdtemp(dir=tmp)), 2 * steps))
            raw_cpu.append((time.thread_time() - c0) / (2 * steps))
        fresh = statistics.median(fresh_rates)
        raw = statistics.median(raw_rates)
        ratio = statistics.median(f / r for f, r in zip(fresh_rates, raw_rates, strict=True))
        print(
            f"step transitions, fresh incident: {fresh:,.0f}/s median (target >= 1,500/s and >= 50% of raw); "
            f"raw sqlite3 same shape: {raw:,.0f}/s; ratio {ratio:.0%} (median of 5 interleaved pairs)"
        )
        print(
            f"  CPU per transition (thread time, with the commit's own): {statistics.median(cpu) * 1e6:.0f} µs; "
            f"raw sqlite3: {statistics.median(raw_cpu) * 1e6:.0f} µs"
        )

        hot = open_incident(app, "big")
        padding = 2_000 if QUICK else 10_000
        t0 = time.perf_counter()
        pad_with_notes(app, hot, padding)
        print(f"  (padded one incident with {padding:,} events in {time.perf_counter() - t0:.1f} s)")
        hot_rate = transitions(app, hot, steps)
        print(
            f"step transitions on an incident holding {padding:,} events: {hot_rate:,.0f}/s "
            f"({hot_rate / fresh:.0%} of fresh; target within 20%)"
        )

        from ir.app.views import board
        from ir.bootstrap import calendar_for

        with app.db.read() as repo:
            inc = repo.get(hot)
        samples = []
        for _ in range(11):
            t0 = time.perf_counter()
            board(inc, inc.now(app.clock.now()), lang="en", calendar_for=calendar_for)
            samples.append(time.perf_counter() - t0)
        app.db.cache.evict(hot)
        t0 = time.perf_counter()
        with app.db.read() as repo:
            inc = repo.get(hot)
        load = time.perf_counter() - t0
        print(
            f"status of an incident with {inc.version:,} events, warm: {statistics.median(samples) * 1000:.1f} ms "
            f"(target < 100 ms); load from snapshot after eviction: {load * 1000:.1f} ms"
        )
        env = {
            **os.environ,
            "IR_DATABASE_URL": app.settings.database_url,
            "IR_DATA_DIR": str(folder),
            "IR_PLAYBOOKS_DIR": str(books),
        }
        cold = []
        for _ in range(5):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "ir", "status", str(hot)], env=env, check=True, capture_output=True)
            cold.append(time.perf_counter() - t0)
        bare = []
        for _ in range(5):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import sqlalchemy"], check=True, capture_output=True)
            bare.append(time.perf_counter() - t0)
        print(
            f"cold `ir status` of that incident: {statistics.median(cold) * 1000:.0f} ms (target < 1000 ms); "
            f"ceiling `python -c 'import sqlalchemy'`: {statistics.median(bare) * 1000:.0f} ms"
        )

        # memory of one incident with 10,000 events
        gc.collect()
        app.db.cache.evict(hot)
        tracemalloc.start()
        with app.db.read() as repo:
            inc = repo.get(hot)
        current, _peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"memory held by one incident with {inc.version:,} events: {current / 2**20:.1f} MB (target < 50 MB)")

        rebuild_bench(folder, books, app)


def rebuild_bench(folder: Path, books: Path, app: App) -> None:
    """Synthesize 1,000,000 events (1,000 incidents x 1,000) with bulk inserts, then rebuild."""
    from sqlalchemy import insert

    from ir.adapters.db.rebuild import rebuild
    from ir.adapters.db.tables import incident_events, incidents
    from ir.domain.events import NoteAdded, event_to_dict

    total_incidents = 100 if QUICK else 1_000
    per = 1_000
    template = app.handlers.handle(c.OpenIncident(actor=ACTOR, playbook="big", title="rebuild", level="II"))
    with app.db.read() as repo:
        first = repo.events(template.incident_id)
    at = datetime.now(UTC)
    with app.db.engine.begin() as conn:
        row = conn.execute(incidents.select().where(incidents.c.id == template.incident_id)).mappings().one()
        for _ in range(total_incidents):
            new_id = conn.execute(
                insert(incidents).values({k: v for k, v in row.items() if k != "id"})
            ).inserted_primary_key
            assert new_id is not None
            new_id = new_id[0]
            rows = [
                {
                    "incident_id": new_id,
                    "seq": s.seq,
                    "kind": s.event.kind,
                    "payload": json.dumps(event_to_dict(s.event)),
                    "actor": "bench",
                    "recorded_at": at,
                }
                for s in first
            ]
            for seq in range(len(first) + 1, per + 1):
                note = NoteAdded(at=at + timedelta(seconds=seq), actor="bench", text=f"n{seq}")
                rows.append(
                    {
                        "incident_id": new_id,
                        "seq": seq,
                        "kind": note.kind,
                        "payload": json.dumps(event_to_dict(note)),
                        "actor": "bench",
                        "recorded_at": at,
                    }
                )
            conn.execute(insert(incident_events), rows)
    t0 = time.perf_counter()
    count, events = rebuild(app.db, batch=100)
    took = time.perf_counter() - t0
    print(
        f"rebuild projections: {events:,} events of {count:,} incidents in {took:.1f} s "
        f"({events / took:,.0f} events/s; target 1,000,000 in < 60 s)"
    )
    timer_memory(app, count)


def tick_peak(app: App) -> float:
    """Peak memory (MB) of the timer service's second tick in a fresh process's state (the first compiles
    the playbooks it meets)."""
    from ir.adapters.db.timers import SqlTimerStore
    from ir.app.timers import TimerService

    with build(app.settings, clock=SystemClock()) as fresh:  # as another process: nothing cached
        service = TimerService(SqlTimerStore(fresh.db))
        later = datetime.now(UTC) + timedelta(days=30)  # every deadline long past
        service.tick(later)
        gc.collect()
        tracemalloc.start()
        service.tick(later + timedelta(minutes=1))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak / 2**20


def timer_memory(app: App, count: int) -> None:
    """The timer service's memory does not grow with closed incidents: a tick with the rebuilt incidents
    all closed, beside a tick with them all open (every one of their deadlines marked)."""
    from sqlalchemy import update

    from ir.adapters.db.tables import incidents

    open_peak = tick_peak(app)
    with app.db.engine.begin() as conn:
        conn.execute(update(incidents).values(status="closed", closed_at=datetime.now(UTC)))
    app.handlers.handle(c.OpenIncident(actor=ACTOR, playbook="big", title="the live one", level="II"))
    closed_peak = tick_peak(app)
    print(
        f"timer tick with {count:,} closed incidents and one open: peak {closed_peak:.2f} MB "
        f"(with the same incidents open: {open_peak:.2f} MB; target: no growth with closed incidents)"
    )


if __name__ == "__main__":
    main()
