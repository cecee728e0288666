"""The audit log's speed, each figure beside a ceiling measured in the same run (SQLite in WAL mode with
synchronous=FULL, in a temporary folder; IR_BENCH_QUICK=1 scales the sizes down).

- durable stand-alone records from 8 writer threads, each waiting for its own commit of one record,
  through `app.appender.append` (group commit); ceilings: raw sqlite3 with one commit per record (one
  thread), and a bare group-commit queue on raw sqlite3 (8 writer threads, one committer);
- the same writers handing over batches of 100 (`append_many`); ceiling: raw sqlite3, 100 rows per commit;
- seal lag (record created -> the commit that sealed it), p50/p99, under the 8-writer load with the
  background sealer running (`app.audit.start()`): as wired (the appender seals its batches in their own
  commit and wakes the sealer only for what is left) and with writers also waking the sealer;
- auditing's cost per command: p99 of `handlers.handle(CompleteStep)` with the audit write and with it
  replaced by a no-op, and the p99 of `SqlAuditTrail.record` itself inside those commands;
- `ir audit verify` over 1,000,000 sealed records: records/s and peak RSS (in a subprocess), beside raw
  sqlite3 reading the same columns and SHA-256 over them;
- `ir audit export` of 100,000 records with inclusion proofs (time), and over all 1,000,000 (peak RSS).

Options: `--only appender,lag,command,large` runs some parts; `--records N` sizes the large log (default
1,000,000; figures at another size are for extrapolating, say so); `--log DIR` keeps the large log in DIR
and reuses it on the next run (the log takes minutes to make).
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import os
import queue
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_playbooks import big_playbook  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from ir.adapters.audit.appender import Pending  # noqa: E402
from ir.adapters.audit.sealer import Sealed  # noqa: E402
from ir.adapters.audit.writer import SqlAuditTrail  # noqa: E402
from ir.adapters.clock import SystemClock  # noqa: E402
from ir.adapters.db.engine import WRITE, make_engine  # noqa: E402
from ir.adapters.db.schema import upgrade  # noqa: E402
from ir.adapters.db.tables import audit_records  # noqa: E402
from ir.bootstrap import App, build  # noqa: E402
from ir.config import Settings  # noqa: E402
from ir.domain import commands as c  # noqa: E402
from ir.entrypoints.http.serving import SWITCH_INTERVAL  # noqa: E402

QUICK = os.environ.get("IR_BENCH_QUICK") == "1"
ACTOR = c.Actor(id="bench", roles=frozenset({"admin"}))
WRITERS = 8
PAYLOAD = {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)", "result": "ok"}


def make_app(folder: Path, playbooks: Path | None = None) -> App:
    """The application as `ir serve` runs it (its GIL switch interval included)."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder / 'ir.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    settings = Settings(database_url=url, data_dir=str(folder), playbooks_dir=str(playbooks or ROOT / "playbooks"))
    return build(settings, clock=SystemClock())


def env_for(app: App) -> dict[str, str]:
    return {
        **os.environ,
        "IR_DATABASE_URL": app.settings.database_url,
        "IR_DATA_DIR": app.settings.data_dir,
        "IR_PLAYBOOKS_DIR": app.settings.playbooks_dir,
    }


def p(values: list[float], q: int) -> float:
    """The q-th percentile."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


# -- raw sqlite3 ceilings --------------------------------------------------------------------------------


def raw_db(folder: Path) -> sqlite3.Connection:
    """A fresh raw sqlite3 database at the same durability, with the audit table's columns."""
    db = sqlite3.connect(folder / f"raw-{os.urandom(4).hex()}.db", isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(
        "CREATE TABLE audit (id TEXT PRIMARY KEY, log_id TEXT, created_at TEXT, key_id TEXT, subject_ref TEXT,"
        " ref TEXT, digest BLOB, body BLOB, seq INTEGER, prev_hash BLOB, entry_hash BLOB)"
    )
    return db


_RAW_KEY = AESGCM(os.urandom(32))


def raw_row(n: int) -> tuple[Any, ...]:
    """One record as the writer makes it: JSON, AES-256-GCM under a random nonce, a random id."""
    at = datetime.now(UTC)
    plain = json.dumps(
        {
            "action": "auth.sign_in",
            "actor": f"user-{n}",
            "subject": "console",
            "at": at.isoformat(),
            "payload": PAYLOAD,
        },
        separators=(",", ":"),
    ).encode()
    nonce = os.urandom(12)
    rid = os.urandom(16).hex()
    body = nonce + _RAW_KEY.encrypt(nonce, plain, rid.encode())
    return (rid, "ir-audit", at.isoformat(" "), "dek", "subject", "", bytes(32), body)


_RAW_INSERT = (
    "INSERT INTO audit (id, log_id, created_at, key_id, subject_ref, ref, digest, body) VALUES (?,?,?,?,?,?,?,?)"
)


def raw_one_per_commit(folder: Path, n: int) -> float:
    db = raw_db(folder)
    t0 = time.perf_counter()
    for i in range(n):
        db.execute("BEGIN IMMEDIATE")
        db.execute(_RAW_INSERT, raw_row(i))
        db.execute("COMMIT")
    rate = n / (time.perf_counter() - t0)
    db.close()
    return rate


def raw_batches(folder: Path, batches: int, size: int) -> float:
    db = raw_db(folder)
    t0 = time.perf_counter()
    for b in range(batches):
        rows = [raw_row(b * size + i) for i in range(size)]
        db.execute("BEGIN IMMEDIATE")
        db.executemany(_RAW_INSERT, rows)
        db.execute("COMMIT")
    rate = batches * size / (time.perf_counter() - t0)
    db.close()
    return rate


def raw_group_commit(folder: Path, writers: int, per_writer: int) -> float:
    """A bare group-commit queue: writers encrypt and wait; one committer commits all that is queued."""
    db = raw_db(folder)
    work: queue.Queue[tuple[tuple[Any, ...], threading.Event] | None] = queue.Queue()

    def committer() -> None:
        while True:
            first = work.get()
            if first is None:
                return
            batch = [first]
            while True:
                try:
                    item = work.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    work.put(None)
                    break
                batch.append(item)
            db.execute("BEGIN IMMEDIATE")
            db.executemany(_RAW_INSERT, [row for row, _ in batch])
            db.execute("COMMIT")
            for _, done in batch:
                done.set()

    def writer(w: int) -> None:
        for i in range(per_writer):
            done = threading.Event()
            work.put((raw_row(w * per_writer + i), done))
            done.wait()

    thread = threading.Thread(target=committer)
    thread.start()
    took = run_threads(writer, writers)
    work.put(None)
    thread.join()
    db.close()
    return writers * per_writer / took


def run_threads(target: Callable[[int], None], count: int) -> float:
    """Start `count` threads on target(i) at once and wait for them; returns the wall time."""
    start = threading.Barrier(count + 1)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        start.wait()
        try:
            target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    took = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return took


# -- 1, 2: the appender ----------------------------------------------------------------------------------


def appender_singles(app: App, per_writer: int, *, wake: bool = False) -> float:
    def writer(w: int) -> None:
        for i in range(per_writer):
            app.appender.append(
                action="auth.sign_in",
                actor=f"user-{w}",
                subject="console",
                payload={**PAYLOAD, "i": i},
                at=app.clock.now(),
            )
            if wake:
                app.audit.wake()

    return WRITERS * per_writer / run_threads(writer, WRITERS)


def appender_batches(app: App, batches_per_writer: int) -> float:
    def writer(w: int) -> None:
        for b in range(batches_per_writer):
            at = app.clock.now()
            app.appender.append_many(
                [Pending("auth.sign_in", f"user-{w}", "console", {**PAYLOAD, "i": b * 100 + i}, at) for i in range(100)]
            )

    return WRITERS * batches_per_writer * 100 / run_threads(writer, WRITERS)


def bench_appender(folder: Path) -> None:
    per_writer = 500 if QUICK else 2_000
    app = make_app(folder / "appender")
    appender_singles(app, 50)  # warm up: the month's data key, the connection
    rates = [appender_singles(app, per_writer) for _ in range(3)]
    one = statistics.median(raw_one_per_commit(folder, per_writer // 2) for _ in range(3))
    group = statistics.median(raw_group_commit(folder, WRITERS, per_writer) for _ in range(3))
    print(
        f"durable records, {WRITERS} writer threads each waiting for its own commit (appender.append): "
        f"{statistics.median(rates):,.0f}/s median of 3 (target >= 6,000/s); ceilings: raw sqlite3 one commit "
        f"per record {one:,.0f}/s, bare group-commit queue on raw sqlite3 ({WRITERS} threads) {group:,.0f}/s"
    )
    batches = 10 if QUICK else 40
    rates = [appender_batches(app, batches) for _ in range(3)]
    raw = statistics.median(raw_batches(folder, batches * WRITERS // 2, 100) for _ in range(3))
    print(
        f"durable records handed over in batches of 100 (append_many, {WRITERS} threads): "
        f"{statistics.median(rates):,.0f}/s median of 3 (target >= 25,000/s); ceiling: raw sqlite3, 100 rows per "
        f"commit: {raw:,.0f}/s"
    )
    app.close()


# -- 3: seal lag -----------------------------------------------------------------------------------------


def seal_lag(folder: Path, *, wake: bool) -> tuple[list[float], int, float]:
    """Lag of every record (created -> the commit that numbered it), in ms: the background sealer's passes
    and the appender's own transactions, which seal as they write."""
    app = make_app(folder)
    sealer = app.audit.sealer
    seal = sealer.seal
    appender = app.appender
    write = appender._write
    marks: list[tuple[int, datetime]] = []

    def timed_seal() -> Sealed:
        result = seal()
        marks.append((result.size, datetime.now(UTC)))
        return result

    def timed_write(*args: Any) -> Sealed | None:
        result = write(*args)  # committed when it returns
        if result is not None:
            marks.append((result.size, datetime.now(UTC)))
        return result

    sealer.seal = timed_seal  # type: ignore[method-assign]
    appender._write = timed_write  # type: ignore[method-assign,assignment]
    app.audit.start()
    seconds = 1.0 if QUICK else 3.0
    stop = time.perf_counter() + seconds
    total = [0]
    lock = threading.Lock()

    def writer(w: int) -> None:
        n = 0
        while time.perf_counter() < stop:
            app.appender.append(
                action="auth.sign_in", actor=f"user-{w}", subject="console", payload=PAYLOAD, at=app.clock.now()
            )
            if wake:
                app.audit.wake()
            n += 1
        with lock:
            total[0] += n

    took = run_threads(writer, WRITERS)
    rate = total[0] / took
    time.sleep(1.5)  # let the sealer catch up (its idle wake-up is 1 s)
    app.audit.stop()
    with app.db.connection() as conn:
        rows = conn.execute(select(audit_records.c.seq, audit_records.c.created_at)).all()
    app.close()
    marks.sort()
    sizes = [size for size, _ in marks]
    lags = []
    unsealed = 0
    for seq, created in rows:
        if seq is None:
            unsealed += 1
            continue
        at = bisect.bisect_right(sizes, int(seq))
        lags.append((marks[at][1] - created).total_seconds() * 1000)
    return lags, unsealed, rate


def bench_seal_lag(folder: Path) -> None:
    for wake in (False, True):
        lags, unsealed, rate = seal_lag(folder / f"lag-{wake}", wake=wake)
        how = "writers also call app.audit.wake()" if wake else "as wired"
        print(
            f"seal lag under {WRITERS} appending threads ({rate:,.0f} records/s), background sealer started, {how}: "
            f"p50 {p(lags, 50):.1f} ms, p99 {p(lags, 99):.1f} ms, max {max(lags):.1f} ms over {len(lags):,} records"
            f"{f', {unsealed} left unsealed' if unsealed else ''} (target p99 < 100 ms)"
        )


# -- 4: the cost of auditing one command -----------------------------------------------------------------


def bench_command_cost(folder: Path) -> None:
    books = folder / "playbooks"
    books.mkdir()
    steps = 200
    (books / "big.yaml").write_text(big_playbook(steps).replace("id: mini", "id: big", 1), encoding="utf-8")
    app = make_app(folder / "commands", books)
    record = SqlAuditTrail.record
    record_times: list[float] = []

    def timed_record(self: SqlAuditTrail, **kwargs: Any) -> None:
        t0 = time.perf_counter()
        record(self, **kwargs)
        record_times.append(time.perf_counter() - t0)

    def no_record(self: SqlAuditTrail, **kwargs: Any) -> None:
        return None

    def run(audited: bool) -> list[float]:
        SqlAuditTrail.record = timed_record if audited else no_record  # type: ignore[method-assign]
        try:
            iid = app.handlers.handle(c.OpenIncident(actor=ACTOR, playbook="big", title="bench", level="I")).incident_id
            took = []
            for i in range(steps):
                app.handlers.handle(c.StartStep(actor=ACTOR, incident_id=iid, step_id=f"s{i}"))
                t0 = time.perf_counter()
                app.handlers.handle(c.CompleteStep(actor=ACTOR, incident_id=iid, step_id=f"s{i}"))
                took.append(time.perf_counter() - t0)
            return took
        finally:
            SqlAuditTrail.record = record  # type: ignore[method-assign]

    run(True)  # warm up
    record_times.clear()
    with_audit: list[float] = []
    without: list[float] = []
    for _ in range(2 if QUICK else 4):  # interleaved, so both see the same machine
        with_audit += run(True)
        without += run(False)
    ms = 1000
    print(
        f"CompleteStep through the handlers ({len(with_audit)} each): p50 {p(with_audit, 50) * ms:.2f} ms, "
        f"p99 {p(with_audit, 99) * ms:.2f} ms with the audit write; p50 {p(without, 50) * ms:.2f} ms, "
        f"p99 {p(without, 99) * ms:.2f} ms with it replaced by a no-op (added at p99: "
        f"{(p(with_audit, 99) - p(without, 99)) * ms:+.2f} ms); SqlAuditTrail.record itself inside those commands: "
        f"p50 {p(record_times, 50) * ms:.3f} ms, p99 {p(record_times, 99) * ms:.3f} ms (target < 1 ms added at p99)"
    )
    app.close()


# -- 5, 6: verify and export over a large log ------------------------------------------------------------


def make_large_log(app: App, total: int) -> None:
    """Real records (JSON, AES-256-GCM, random ids), written in large transactions, sealed as they go."""
    chunk = 50_000
    at = datetime.now(UTC)
    digest = hashlib.sha256(b"an event").digest()
    t0 = time.perf_counter()
    sealing = 0.0
    for start in range(0, total, chunk):
        with app.db.engine.connect() as conn:
            conn.info[WRITE] = True
            with conn.begin():
                trail = SqlAuditTrail(conn, log_id=app.settings.audit_log_id, keys=app.db.keys)
                for k in range(start, min(total, start + chunk)):
                    trail.record(
                        action="step.complete",
                        actor=f"user-{k % 50}",
                        subject=f"incident:{k // 1000}",
                        payload={"kind": "step_completed", "seq": k % 1000, "event": PAYLOAD},
                        at=at + timedelta(microseconds=k),
                        ref=f"incident:{k // 1000}#{k % 1000}",
                        digest=digest,
                    )
        s0 = time.perf_counter()
        app.audit.sealer.seal()
        sealing += time.perf_counter() - s0
    app.audit.sealer.force_checkpoint()
    app.audit.flush()
    took = time.perf_counter() - t0
    print(
        f"  (made {total:,} records in {took:.1f} s: written at {total / (took - sealing):,.0f}/s in transactions of "
        f"{chunk:,}, sealed at {total / sealing:,.0f}/s)"
    )


MEASURED = """
import atexit, runpy, sys

def peak():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                print("peak-rss-kb", line.split()[1], file=sys.stderr, flush=True)

atexit.register(peak)
mode, target, *rest = sys.argv[1:]
if mode == "-m":
    sys.argv = [target, *rest]
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    sys.argv = ["-c", *rest]
    exec(compile(target, "<bench>", "exec"), {"__name__": "__main__"})
"""


def run_measured(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run `python -m …` or `python -c …` in a subprocess: (wall seconds, peak RSS in MB, stdout).

    The peak is the child's own high-water mark (VmHWM, read at exit): ru_maxrss from wait4 would report
    this (large) parent's size, which a forked child carries until it executes the interpreter."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", MEASURED, *args], check=False, env=env, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    peaks = [int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("peak-rss-kb ")]
    return took, peaks[-1] / 1024, proc.stdout


VERIFY_ONLY = """
import json, sys, time
from ir.adapters.audit.checkpoint import Verifier
from ir.adapters.audit.verify import verify
from ir.bootstrap import build

def rss_mb():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmRSS:"))

app = build()
with app.db.connection() as conn:
    before = rss_mb()
    t0 = time.perf_counter()
    report = verify(conn, log_id=app.settings.audit_log_id, verifiers=[Verifier(app.verifier_key)])
    took = time.perf_counter() - t0
    after = rss_mb()
print(json.dumps({"ok": report.ok, "size": report.size, "seconds": took, "rss_before": before, "rss_after": after}))
"""


def raw_verify_ceiling(db_file: Path) -> tuple[int, float]:
    """Raw sqlite3: the same columns in sequence order, SHA-256 over each record's fields."""
    db = sqlite3.connect(db_file)
    t0 = time.perf_counter()
    cursor = db.execute(
        "SELECT seq, id, log_id, created_at, key_id, subject_ref, ref, digest, body, prev_hash, entry_hash "
        "FROM audit_records WHERE log_id = ? AND seq IS NOT NULL ORDER BY seq",
        ("ir-audit",),
    )
    n = 0
    sha = hashlib.sha256
    while rows := cursor.fetchmany(5000):
        for seq, rid, log_id, created, key_id, subject_ref, ref, digest, body, prev, _entry in rows:
            h = sha(b"\x00")
            h.update(b"".join((log_id.encode(), seq.to_bytes(8, "big"), created.encode(), bytes.fromhex(rid))))
            h.update(b"".join((key_id.encode(), subject_ref.encode(), ref.encode(), digest, prev, body)))
            h.digest()
            n += 1
    took = time.perf_counter() - t0
    db.close()
    return n, n / took


def bench_large_log(folder: Path, total: int, keep: Path | None) -> None:
    where = keep or folder / "large"
    if keep is not None and (keep / "ir.db").exists():
        app = make_app(where)
        with app.db.connection() as conn:
            found = int(conn.execute(select(func.count()).select_from(audit_records)).scalar_one())
        # (each export run records itself: a reused log grows by a record or two per run)
        assert found >= total, f"{keep} holds {found:,} records, fewer than {total:,}"
        total = found
        print(f"  (reusing the log of {total:,} records in {keep})")
    else:
        app = make_large_log_app(where, total)
    env = env_for(app)
    db_file = Path(app.settings.database_url.split("///", 1)[1])
    app.close()
    engine = make_engine(app.settings.database_url)
    upgrade(engine)  # (a no-op, unless the schema moved on while the log was being made)
    engine.dispose()

    took, rss, out = run_measured(["-c", VERIFY_ONLY], env)
    inner = json.loads(out)
    assert inner["ok"] and inner["size"] >= total, inner
    total = inner["size"]
    cli_took, cli_rss, cli_out = run_measured(["-m", "ir", "audit", "verify", "--json"], env)
    assert json.loads(cli_out)["ok"], cli_out
    n, raw_rate = raw_verify_ceiling(db_file)
    assert n == total
    print(
        f"verify {total:,} sealed records: {total / inner['seconds']:,.0f} records/s in verify() itself, "
        f"peak RSS {rss:.0f} MB (RSS {inner['rss_before']:.0f} MB before verify(), {inner['rss_after']:.0f} MB after); "
        f"`ir audit verify` end to end {total / cli_took:,.0f} records/s ({cli_took:.1f} s), "
        f"peak RSS {cli_rss:.0f} MB (target >= 200,000/s, < 100 MB); ceiling: raw sqlite3 reading the same columns "
        f"+ SHA-256: {raw_rate:,.0f} records/s"
    )

    part = min(total, 20_000 if QUICK else 100_000)
    took, rss, _ = run_measured(
        ["-m", "ir", "audit", "export", "--from", "0", "--to", str(part - 1), "-o", os.devnull], env
    )
    lines = folder / "export-check.jsonl"
    run_measured(["-m", "ir", "audit", "export", "--from", "0", "--to", "2", "-o", str(lines)], env)
    first = json.loads(lines.read_text().splitlines()[1])
    assert first["inclusion"]["proof"], first
    print(
        f"export {part:,} records with inclusion proofs: {took:.1f} s ({part / took:,.0f} records/s), "
        f"peak RSS {rss:.0f} MB (target < 10 s)"
    )
    took, rss, _ = run_measured(["-m", "ir", "audit", "export", "-o", os.devnull], env)
    print(
        f"export all {total:,} records with inclusion proofs: {took:.1f} s ({total / took:,.0f} records/s), "
        f"peak RSS {rss:.0f} MB (target < 100 MB)"
    )
    bare, bare_rss, _ = run_measured(["-c", "import ir.bootstrap"], env)
    print(f"  (baseline: a Python process importing ir.bootstrap: {bare:.2f} s, peak RSS {bare_rss:.0f} MB)")


def make_large_log_app(folder: Path, total: int) -> App:
    app = make_app(folder)
    make_large_log(app, total)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--only", default="appender,lag,command,large", help="parts to run, comma-separated")
    parser.add_argument("--records", type=int, default=100_000 if QUICK else 1_000_000, help="the large log's size")
    parser.add_argument("--log", type=Path, help="keep the large log in this folder and reuse it")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if "appender" in parts:
            bench_appender(folder)
        if "lag" in parts:
            bench_seal_lag(folder)
        if "command" in parts:
            bench_command_cost(folder)
        if "large" in parts:
            bench_large_log(folder, args.records, args.log)


if __name__ == "__main__":
    main()
