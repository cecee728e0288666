"""The server's speed (issue 6), against a real `ir serve` on 127.0.0.1 (SQLite, WAL, synchronous=FULL,
the timers and the audit sealer running), beside a ceiling measured in the same run: a bare FastAPI
endpoint on the same server stack (uvicorn, httptools) answering the same requests and doing nothing.

(a) step transitions (start, complete) through the API, offered open loop at a constant RATE per second
    over 50 connections for SECONDS: each request is due at its instant on the clock whatever the answers
    (it waits for a free connection if all 50 are busy), and its latency counts from that instant, so a
    stall is not hidden; the same generator against the bare endpoint;
(b) saturation: as many transitions as 50 connections carry, for both servers, and the ratio. The two
    servers run side by side (the idle one costs nothing) and are measured in alternating slices, bare, ir,
    ir, bare, twice over (SLICE seconds each): the machine's speed drifts by a third between minutes, and
    slices measured minutes apart compared the drift as much as the servers;
(c) 500 consoles connected to GET /api/stream: the time from sending a transition until the last of
    them has its `change` event;
(d) the resident memory of `ir serve`, whose command writer is a process of its own: PSS summed over its
    processes (a page they share counted once), beside their RSS summed (counted in each) and peak: idle
    after starting, with the 500 consoles connected, and after the load. Server CPU in (b) is also summed
    over the processes.

The generator is raw HTTP/1.1 on asyncio streams (one coroutine per connection), lighter than an HTTP
client library: the client shares the machine's cores with the server. Each transition acts on one of
INCIDENTS incidents of a 100-step playbook with independent steps, round robin, every step started then
later completed, so a request never depends on the answer to one before it; 409 would be a conflict.

Run: .venv/bin/python bench/bench_server.py   (IR_BENCH_QUICK=1: shorter; IR_BENCH_ROUNDS=n rounds, default 3)
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUICK = os.environ.get("IR_BENCH_QUICK") == "1"
ROUNDS = int(os.environ.get("IR_BENCH_ROUNDS", "1" if QUICK else "3"))
RATE = 500  # transitions per second offered
CONNECTIONS = 50
SECONDS = 5 if QUICK else 20
WARMUP = 1.0
SLICE = 0.75 if QUICK else 1.5  # seconds of one saturation slice; each server gets 4
CONSOLES = 500
DRAIN = 10.0  # seconds the open loop waits for answers after the last request was due
UPDATES = 5 if QUICK else 10  # updates sent to the consoles, one at a time
STEPS = 100
INCIDENTS = 150  # 150 x 200 transitions: enough for the open loop and the saturation runs


# -- the bare server (a uvicorn factory, run in a child process) ---------------------------------------------


def bare_server() -> Any:
    api = FastAPI()

    @api.get("/api/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @api.post("/api/incidents/{incident_id}/steps/{step_id}/{act}")
    async def transition(incident_id: int, step_id: str, act: str) -> dict[str, Any]:
        return {"incident": incident_id, "version": 1, "events": [{"kind": f"step_{act}", "step": step_id}]}

    return api


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [*argv, "--port", str(self.port)],
                env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while not self._healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start: {log.read_text()}")
            time.sleep(0.1)

    def _healthy(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return s.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def processes(self) -> list[int]:
        """The server and its children (`ir serve` on SQLite forks its command writer)."""
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo.extend(int(child) for child in (task / "children").read_text().split())
        return found

    def memory(self) -> tuple[float, float, float]:
        """(PSS, RSS, peak) in MB, summed over the server's processes. PSS (/proc/<pid>/smaps_rollup) counts a
        page the processes share once, split between them: the memory the server costs the machine. RSS
        counts it in each; the peak is the sum of each process's VmHWM, at most what they held at once."""
        pss = rss = hwm = 0.0
        for pid in self.processes():
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1]) / 1024
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                name, _, value = line.partition(":")
                if name == "VmRSS":
                    rss += int(value.split()[0]) / 1024
                elif name == "VmHWM":
                    hwm += int(value.split()[0]) / 1024
        return pss, rss, hwm

    def cpu(self) -> float:
        """CPU seconds the server's processes have used (user + system, all threads)."""
        total = 0.0
        for pid in self.processes():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def ir_server(env: dict[str, str], log: Path) -> Server:
    return Server([sys.executable, "-m", "ir", "serve"], env, log)


def bare(log: Path) -> Server:
    argv = [sys.executable, "-m", "uvicorn", "bench_server:bare_server", "--factory", "--app-dir", str(ROOT / "bench")]
    return Server(
        [*argv, "--host", "127.0.0.1", "--http", "httptools", "--log-level", "warning", "--no-access-log"], {}, log
    )


# -- raw HTTP/1.1 -------------------------------------------------------------------------------------------


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


def transition_request(token: str, incident: int, step: int, act: str) -> bytes:
    return (
        f"POST /api/incidents/{incident}/steps/s{step}/{act} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: 0\r\n\r\n"
    ).encode()


class Transitions:
    """The endless round robin: request i acts on incident i % K, its (i // K)-th transition: the starts of
    its steps, then their completions."""

    def __init__(self, token: str, incidents: list[int], *, wrap: bool = False) -> None:
        self.token, self.incidents, self.next = token, incidents, 0
        self.wrap = wrap  # the bare endpoint acts on nothing: its requests may go round again

    def take(self) -> bytes:
        i = self.next
        self.next += 1
        k = len(self.incidents)
        incident, n = self.incidents[i % k], i // k
        if self.wrap:
            n %= 2 * STEPS
        if n >= 2 * STEPS:
            raise SystemExit("out of transitions: raise INCIDENTS")
        return transition_request(self.token, incident, n % STEPS, "start" if n < STEPS else "complete")


@dataclass
class Run:
    sent: int = 0
    ok: int = 0
    conflicts: int = 0
    unanswered: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    cpu: float = 0.0  # the server's CPU seconds during the run
    throughput: float = 0.0  # open loop: every answer (the warm-up's too) over the whole run

    def answer(self, status: int, body: bytes) -> None:
        if status == 200:
            self.ok += 1
        elif status == 409:
            self.conflicts += 1
        else:
            key = f"{status} {body[:120].decode(errors='replace')}"
            self.errors[key] = self.errors.get(key, 0) + 1

    def quantile(self, q: float) -> float:
        lat = sorted(self.latencies) or [0.0]
        return lat[min(len(lat) - 1, int(len(lat) * q))] * 1000

    @property
    def rate(self) -> float:
        return self.ok / max(self.finished - self.started, 1e-9)

    @classmethod
    def of_slices(cls, slices: list[Run]) -> Run:
        """One run of several slices: their answers over the sum of their durations."""
        whole = cls(finished=sum(r.finished - r.started for r in slices), cpu=sum(r.cpu for r in slices))
        for r in slices:
            whole.sent += r.sent
            whole.ok += r.ok
            whole.conflicts += r.conflicts
            whole.latencies += r.latencies
            for key, n in r.errors.items():
                whole.errors[key] = whole.errors.get(key, 0) + n
        return whole

    def line(self, name: str) -> str:
        errors = sum(self.errors.values())
        detail = f" {dict(list(self.errors.items())[:3])}" if errors else ""
        return (
            f"{name}: {self.throughput or self.rate:,.0f}/s answered 200 of {self.sent} sent, "
            f"p50 {self.quantile(0.5):,.1f} ms, "
            f"p99 {self.quantile(0.99):,.1f} ms, 409 {self.conflicts}, other errors {errors}{detail}"
            + (f", unanswered {DRAIN:.0f} s after the end {self.unanswered}" if self.unanswered else "")
        )


async def open_loop(port: int, make: Callable[[], bytes], seconds: float) -> Run:
    """RATE requests a second over CONNECTIONS connections, each due at its instant on the clock. What is
    still unanswered DRAIN seconds after the last was due counts as unanswered, its latency as at least
    that long (a server far slower than the offered rate would otherwise take minutes to drain)."""
    run, ignored = Run(), Run()
    due_queue: asyncio.Queue[tuple[float, bytes, Run] | None] = asyncio.Queue()
    connections = [await Connection.open(port) for _ in range(CONNECTIONS)]
    in_flight: dict[int, tuple[float, Run]] = {}

    async def worker(n: int, conn: Connection) -> None:
        while (item := await due_queue.get()) is not None:
            due, raw, target = item
            in_flight[n] = (due, target)
            try:
                status, body = await conn.request(raw)
                target.answer(status, body)
            except (OSError, asyncio.IncompleteReadError) as exc:
                target.errors[type(exc).__name__] = target.errors.get(type(exc).__name__, 0) + 1
                conn.close()
                conn = await Connection.open(port)
            del in_flight[n]
            done = time.perf_counter()
            target.latencies.append(done - due)
            target.finished = max(target.finished, done)

    workers = [asyncio.create_task(worker(n, c)) for n, c in enumerate(connections)]
    total = int((seconds + WARMUP) * RATE)
    warmup = int(WARMUP * RATE)
    t0 = time.perf_counter() + 0.05
    for i in range(total):
        due = t0 + i / RATE
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        target = ignored if i < warmup else run
        if i == warmup:
            run.started = due
        target.sent += 1
        due_queue.put_nowait((due, make(), target))
    for _ in workers:
        due_queue.put_nowait(None)
    _done, pending = await asyncio.wait(workers, timeout=max(t0 + total / RATE + DRAIN - time.perf_counter(), 0))
    for task in pending:
        task.cancel()
    cut = time.perf_counter()
    left = [(due, target) for due, _raw, target in (i for i in _drain(due_queue) if i is not None)]
    for due, target in [*left, *in_flight.values()]:
        target.unanswered += 1
        target.latencies.append(cut - due)
    for c in connections:
        c.close()
    run.throughput = (run.ok + ignored.ok) / (cut - t0)
    return run


def _drain(queue: asyncio.Queue[tuple[float, bytes, Run] | None]) -> list[tuple[float, bytes, Run] | None]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


async def saturate(port: int, make: Callable[[], bytes], seconds: float) -> Run:
    run = Run()
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        conn = await Connection.open(port)
        while time.perf_counter() < stop:
            run.sent += 1
            sent = time.perf_counter()
            status, body = await conn.request(make())
            run.answer(status, body)
            run.finished = time.perf_counter()
            run.latencies.append(run.finished - sent)
        conn.close()

    run.started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    return run


# -- consoles ---------------------------------------------------------------------------------------------


async def consoles(server: Server, token: str, incident: int, transitions: Transitions) -> dict[str, Any]:
    """CONSOLES streams; then UPDATES transitions one at a time, each timed until every console has it."""
    request = (
        f"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()
    streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    for _ in range(CONSOLES):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(request)
        streams.append((reader, writer))
    for reader, _ in streams:
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        await reader.readuntil(b": connected\n\n")
    await asyncio.sleep(1.0)
    pss, rss, _hwm = server.memory()

    spreads, answers, firsts = [], [], []
    actor = await Connection.open(server.port)
    for _ in range(UPDATES):
        raw = transitions.take()
        incident_of = int(raw.split(b"/")[3])
        t0 = time.perf_counter()

        async def wait(reader: asyncio.StreamReader, incident_of: int = incident_of) -> float:
            needle = f'"incident": {incident_of}, '.encode()
            while True:
                line = await reader.readline()
                if not line:
                    raise SystemExit("a console's stream ended")
                if line.startswith(b"data: ") and needle in line:
                    return time.perf_counter()

        waiting = [asyncio.create_task(wait(reader)) for reader, _ in streams]
        status, body = await actor.request(raw)
        answered = time.perf_counter()
        if status != 200:
            raise SystemExit(f"the update failed: {status} {body[:200]!r}")
        arrived = await asyncio.wait_for(asyncio.gather(*waiting), timeout=60)
        spreads.append(max(arrived) - t0)
        answers.append(answered - t0)
        firsts.append(max(arrived) - min(arrived))
        await asyncio.sleep(0.2)
    actor.close()
    _pss, _rss, hwm = server.memory()
    for _, writer in streams:
        writer.close()
    return {"pss": pss, "rss": rss, "hwm": hwm, "all": spreads, "answer": answers, "spread": firsts}


# -- the run ----------------------------------------------------------------------------------------------


def playbook() -> str:
    head = (ROOT / "tests" / "builders.py").read_text(encoding="utf-8")
    start = head.index('"""\\\n') + 5
    minimal = head[start : head.index('"""', start)]
    before = minimal[: minimal.index("steps:\n")].replace("id: mini\n", "id: wide\n", 1)
    after = minimal[minimal.index("notifications:\n") :]
    steps = "".join(
        f"  - id: s{i}\n    title: {{zh-CN: 第{i}步, en: Step {i}}}\n"
        f"    instructions: {{zh-CN: 核查并记录, en: Check and record}}\n    role: commander\n"
        f"    due: detection + {i % 20 + 10}d\n" + ("    kind: restore\n    restores: full\n" if i == STEPS - 1 else "")
        for i in range(STEPS)
    )
    return before + "steps:\n" + steps + after


def disk_commits(folder: Path, seconds: float = 2.0) -> float:
    """The disk's ceiling for durable commits: one-row transactions on raw sqlite3, WAL, synchronous=FULL."""
    import sqlite3

    db = sqlite3.connect(folder / "fsync.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (x INTEGER)")
    n, stop = 0, time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < stop:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?)", (n,))
        db.execute("COMMIT")
        n += 1
    rate = n / (time.perf_counter() - started)
    db.close()
    return rate


def prepare(folder: Path) -> tuple[dict[str, str], str, str, list[int]]:
    """A migrated database with INCIDENTS open incidents at level IV, a commander's and an observer's token."""
    from ir.adapters.db.engine import make_engine
    from ir.adapters.db.schema import upgrade
    from ir.bootstrap import build
    from ir.config import Settings
    from ir.domain import commands as c

    books = folder / "playbooks"
    books.mkdir()
    (books / "wide.yaml").write_text(playbook(), encoding="utf-8")
    env = {
        "IR_DATABASE_URL": f"sqlite:///{folder / 'ir.db'}",
        "IR_DATA_DIR": str(folder),
        "IR_PLAYBOOKS_DIR": str(books),
    }
    settings = Settings(database_url=env["IR_DATABASE_URL"], data_dir=str(folder), playbooks_dir=str(books))
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    actor = c.Actor(id="local:bench", roles=frozenset({"admin"}))
    with build(settings) as app:
        with app.db.uow() as uow:
            uow.users.add("commander", display_name="Commander", password="bench-commander-1234", roles=["commander"])
            _, cmd = uow.users.issue_token("commander", name="bench", scopes=["read", "write"], ttl=None)
            uow.users.add("observer", display_name="Observer", password="bench-observer-12345", roles=["observer"])
            _, obs = uow.users.issue_token("observer", name="bench", scopes=["read"], ttl=None)
            uow.commit()
        incidents = [
            app.handlers.handle(c.OpenIncident(actor=actor, playbook="wide", title=f"wave {n}", level="IV")).incident_id
            for n in range(INCIDENTS)
        ]
    return env, cmd, obs, incidents


def measured(server: Server, load: Coroutine[Any, Any, Run]) -> Run:
    before = server.cpu()
    run = asyncio.run(load)
    run.cpu = server.cpu() - before
    return run


def one_round(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ir-bench-server-") as tmp:
        folder = Path(tmp)
        env, cmd, obs, incidents = prepare(folder)
        out: dict[str, Any] = {}

        ceiling_server = bare(folder / "bare.log")
        server: Server | None = None
        try:
            fake = Transitions("bare", incidents, wrap=True)
            out["bare_open"] = asyncio.run(open_loop(ceiling_server.port, fake.take, SECONDS))
            out["disk"] = disk_commits(folder)

            server = ir_server(env, folder / "serve.log")
            time.sleep(2.0)
            out["idle"] = server.memory()
            transitions = Transitions(cmd, incidents[:100])
            out["consoles"] = asyncio.run(consoles(server, obs, incidents[0], transitions))
            time.sleep(1.0)
            out["ir_open"] = asyncio.run(open_loop(server.port, transitions.take, SECONDS))
            time.sleep(1.0)
            more = Transitions(cmd, incidents[100:])  # untouched by what the open loop left unanswered
            slices: dict[str, list[Run]] = {"bare_max": [], "ir_max": []}
            for name in ("bare_max", "ir_max", "ir_max", "bare_max") * 2:
                target, take = (ceiling_server, fake.take) if name == "bare_max" else (server, more.take)
                slices[name].append(measured(target, saturate(target.port, take, SLICE)))
            out.update((name, Run.of_slices(runs)) for name, runs in slices.items())
            out["after"] = server.memory()
        finally:
            ceiling_server.stop()
            out["exit"] = server.stop() if server is not None else None
        print_round(n, out)
        return out


def print_round(n: int, r: dict[str, Any]) -> None:
    print(f"round {n}:")
    print("  " + r["ir_open"].line(f"(a) transitions, open loop {RATE}/s "))
    print("  " + r["bare_open"].line(f"    ceiling: bare endpoint, {RATE}/s "))
    print("  " + r["ir_max"].line(f"(b) transitions, saturation ({CONNECTIONS} conn.)"))
    print("  " + r["bare_max"].line(f"    ceiling: bare, saturation ({CONNECTIONS} conn.)"))
    print(f"      capacity: {r['ir_max'].rate / max(r['bare_max'].rate, 1e-9):.0%} of the bare endpoint's")
    for name, run in (("ir serve", r["ir_max"]), ("bare", r["bare_max"])):
        per = run.cpu / max(run.ok + run.conflicts, 1) * 1000
        print(
            f"      {name}: {per:.2f} ms of server CPU per request "
            f"({run.cpu / max(run.finished - run.started, 1e-9):.0%} of a core)"
        )
    print(f"      the disk's durable commits (raw sqlite3, one row each, WAL, synchronous=FULL): {r['disk']:,.0f}/s")
    cons = r["consoles"]
    print(
        f"  (c) {CONSOLES} consoles: an update reaches all of them in median "
        f"{statistics.median(cons['all']) * 1000:,.0f} ms, max {max(cons['all']) * 1000:,.0f} ms "
        f"(the API's answer to the change: median {statistics.median(cons['answer']) * 1000:,.0f} ms; "
        f"first to last console: median {statistics.median(cons['spread']) * 1000:,.0f} ms)"
    )
    print(
        f"  (d) ir serve memory (PSS of its processes; their RSS summed): idle {r['idle'][0]:,.0f} MB "
        f"(RSS {r['idle'][1]:,.0f}); with {CONSOLES} consoles {cons['pss']:,.0f} MB (RSS {cons['rss']:,.0f}, "
        f"peak {cons['hwm']:,.0f}); after the load {r['after'][0]:,.0f} MB (RSS {r['after'][1]:,.0f}, "
        f"peak {r['after'][2]:,.0f}); "
        f"exit code on SIGTERM {r['exit']}"
    )


def main() -> None:
    print(
        f"ir serve on 127.0.0.1 (SQLite WAL, synchronous=FULL), raw HTTP/1.1 client in one asyncio process; "
        f"{os.cpu_count()} CPUs shared with other work, load average {os.getloadavg()[0]:.1f} at the start; "
        f"{ROUNDS} round(s), medians last"
    )
    rounds = [one_round(n + 1) for n in range(ROUNDS)]

    def med(f: Callable[[dict[str, Any]], float]) -> float:
        return statistics.median(f(r) for r in rounds)

    p99 = med(lambda r: r["ir_open"].quantile(0.99))
    errors = sum(sum(r["ir_open"].errors.values()) + sum(r["ir_max"].errors.values()) for r in rounds)
    ratio = med(lambda r: r["ir_max"].rate / max(r["bare_max"].rate, 1e-9))
    fanout = med(lambda r: statistics.median(r["consoles"]["all"])) * 1000
    idle = med(lambda r: r["idle"][0])
    live = med(lambda r: r["consoles"]["pss"])
    print(f"medians of {len(rounds)} round(s) (the machine is shared and noisy: figures vary between runs):")
    print(
        f"  (a) transitions at {RATE}/s: p50 {med(lambda r: r['ir_open'].quantile(0.5)):,.1f} ms, p99 {p99:,.1f} ms "
        f"(bare endpoint p50 {med(lambda r: r['bare_open'].quantile(0.5)):,.1f} ms, "
        f"p99 {med(lambda r: r['bare_open'].quantile(0.99)):,.1f} ms); answered "
        f"{med(lambda r: r['ir_open'].throughput):,.0f}/s; errors other than 409 in all rounds: {errors}; unanswered "
        f"{DRAIN:.0f} s after the end: {med(lambda r: r['ir_open'].unanswered):,.0f}; "
        f"target p99 < 50 ms: {'met' if p99 < 50 else 'NOT met'}"
    )
    print(
        f"  (b) saturation: {med(lambda r: r['ir_max'].rate):,.0f}/s "
        f"vs bare {med(lambda r: r['bare_max'].rate):,.0f}/s "
        f"= {ratio:.0%} (target >= 25%: {'met' if ratio >= 0.25 else 'NOT met'}); the disk's durable commits "
        f"{med(lambda r: r['disk']):,.0f}/s"
    )
    print(
        f"  (c) {CONSOLES} consoles: all have the update in {fanout:,.0f} ms "
        f"(target < 1 s: {'met' if fanout < 1000 else 'NOT met'})"
    )
    print(
        f"  (d) memory (PSS): idle {idle:,.0f} MB, RSS {med(lambda r: r['idle'][1]):,.0f} "
        f"(target < 150: {'met' if idle < 150 else 'NOT met'}); "
        f"with {CONSOLES} consoles "
        f"{live:,.0f} MB (target < 300: {'met' if live < 300 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
