"""Alert intake's speed: Alertmanager webhooks against a real `uvicorn` server on 127.0.0.1 (SQLite, WAL,
synchronous=FULL, the audit sealer and timers running as in `ir serve`), beside a ceiling measured in
the same run: a bare FastAPI endpoint on the same server stack accepting the same payloads and doing
nothing.

- open loop: 100 webhooks a second of 20 alerts each (2,000 alerts/s), sent at a constant rate whatever
  the answers (latency counted from when each webhook was due, so a stall is not hidden), for ~10 s;
  mostly repeated fingerprints: 400 alerts in 20 groups fire again and again, one webhook in ten carries
  an alert never seen before (it attaches to its group's incident), one in twenty a resolution;
- saturation: as many webhooks as 16 connections carry, for a few seconds, for both servers.

Run: .venv/bin/python bench/bench_alerts.py   (IR_BENCH_QUICK=1: shorter)
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUICK = os.environ.get("IR_BENCH_QUICK") == "1"
RATE = 100  # webhooks per second
ALERTS = 20  # per webhook
SECONDS = 4 if QUICK else 10
WARMUP = 1.0
SATURATION_SECONDS = 2 if QUICK else 4
GROUPS = 20
POOL = 400

RULES = """\
version: 1
rules:
  - id: ddos
    match: {alertname: DDoSAttackDetected}
    match_re: {severity: critical|page}
    playbook: ddos
    title: "DDoS on {labels.target}: {annotations.summary}"
    group_by: [alertname, target]
    facts:
      peak_gbps: "{annotations.peak_gbps}"
      affected_users: "{annotations.affected_users}"
"""


# -- the two servers (uvicorn factories, run in a child process) ---------------------------------------------


def intake_server() -> Any:
    from ir.config import Settings
    from ir.entrypoints.http.app import create_app

    return create_app(Settings())  # IR_* from the environment the bench sets


def bare_server() -> Any:
    api = FastAPI()

    @api.get("/api/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @api.post("/api/alerts/alertmanager", status_code=202)
    async def sink(request: Request) -> dict[str, int]:
        await request.body()
        return {"received": 0}

    return api


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    def __init__(self, factory: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                f"bench_alerts:{factory}",
                "--factory",
                "--app-dir",
                str(ROOT / "bench"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the {factory} server did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# -- payloads ------------------------------------------------------------------------------------------------------


def alert(n: int, *, status: str = "firing", starts: datetime) -> dict[str, Any]:
    """Alert `n` of the pool (a DDoS probe), in group n % GROUPS."""
    return {
        "status": status,
        "labels": {
            "alertname": "DDoSAttackDetected",
            "severity": "critical",
            "target": f"idc-{n % GROUPS:02d}",
            "instance": f"probe-{n}",
            "job": "flow-collector",
        },
        "annotations": {
            "summary": "inbound traffic far above baseline",
            "description": f"probe {n} sees the attack",
            "peak_gbps": str(10 + n % 7),
            "affected_users": "120,000",
        },
        "startsAt": starts.isoformat().replace("+00:00", "Z"),
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else datetime.now(UTC).isoformat(),
        "generatorURL": "http://prometheus:9090/graph?g0.expr=ddos",
        "fingerprint": f"{n:016x}",
    }


def envelope(alerts: list[dict[str, Any]]) -> bytes:
    body = {
        "version": "4",
        "groupKey": '{}:{alertname="DDoSAttackDetected"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "ir",
        "groupLabels": {"alertname": "DDoSAttackDetected"},
        "commonLabels": {"alertname": "DDoSAttackDetected", "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
    }
    return json.dumps(body, separators=(",", ":")).encode()


STARTS = datetime.now(UTC) - timedelta(minutes=5)


def pool() -> list[bytes]:
    """Every alert of the pool once, 20 to a webhook: what opens the 20 incidents (sent before measuring)."""
    return [envelope([alert(n, starts=STARTS) for n in range(i, i + ALERTS)]) for i in range(0, POOL, ALERTS)]


def webhooks(count: int, seed: int) -> list[bytes]:
    """`count` webhook bodies: 20 alerts each from the pool (repeats), now and then a new one or a resolution."""
    rng = random.Random(seed)
    fresh = POOL * (seed + 1) * 100
    out = []
    for i in range(count):
        picks = rng.sample(range(POOL), ALERTS)
        alerts = [alert(n, starts=STARTS) for n in picks]
        if i % 10 == 5:
            alerts[0] = alert(fresh, starts=STARTS)  # never seen: attaches to its group's incident
            fresh += 1
        if i % 20 == 7:
            alerts[1] = alert(picks[1], status="resolved", starts=STARTS)
        out.append(envelope(alerts))
    return out


def prime(url: str, token: str | None) -> None:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    with httpx.Client(headers=headers, timeout=60) as client:
        for body in pool():
            answer = client.post(url, content=body)
            if answer.status_code != 202:
                raise SystemExit(f"priming failed: {answer.status_code} {answer.text[:300]}")


# -- load ---------------------------------------------------------------------------------------------------------


@dataclass
class Run:
    sent: int = 0
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    @property
    def p99(self) -> float:
        lat = sorted(self.latencies) or [0.0]
        return lat[min(len(lat) - 1, int(len(lat) * 0.99))]

    def line(self, name: str) -> str:
        wall = max(self.finished - self.started, 1e-9)
        p50 = statistics.median(self.latencies or [0.0]) * 1000
        p99 = self.p99 * 1000
        errors = sum(self.errors.values())
        detail = f" {self.errors}" if errors else ""
        return (
            f"{name}: {self.ok * ALERTS / wall:,.0f} alerts/s ({self.ok / wall:,.1f} webhooks/s of {self.sent} sent), "
            f"p50 {p50:,.1f} ms, p99 {p99:,.1f} ms, errors {errors}{detail}"
        )


async def post(client: httpx.AsyncClient, url: str, body: bytes, due: float, run: Run) -> None:
    try:
        answer = await client.post(url, content=body)
        if answer.status_code == 202:
            run.ok += 1
        else:
            run.error(str(answer.status_code))
    except httpx.HTTPError as exc:
        run.error(type(exc).__name__)
    done = time.perf_counter()
    run.latencies.append(done - due)
    run.finished = max(run.finished, done)


async def open_loop(url: str, token: str | None, bodies: list[bytes], warmup: int) -> Run:
    """Send bodies at RATE a second, never waiting for answers; the first `warmup` are not counted."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    run, ignored = Run(), Run()
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=60) as client:
        tasks = []
        t0 = time.perf_counter() + 0.05
        for i, body in enumerate(bodies):
            due = t0 + i / RATE
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            target = ignored if i < warmup else run
            if i == warmup:
                run.started = due
            target.sent += 1
            tasks.append(asyncio.create_task(post(client, url, body, due, target)))
        await asyncio.gather(*tasks)
    return run


async def saturate(url: str, token: str | None, bodies: list[bytes], seconds: float, connections: int = 16) -> Run:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    run = Run()
    stop = time.perf_counter() + seconds
    counter = iter(range(10**9))

    async def worker(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < stop:
            i = next(counter)
            run.sent += 1
            await post(client, url, bodies[i % len(bodies)], time.perf_counter(), run)

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=60) as client:
        run.started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    return run


# -- the run ----------------------------------------------------------------------------------------------------


def prepare(folder: Path) -> tuple[dict[str, str], str]:
    """A migrated database, the rules, and a machine user's token; the server's environment."""
    from ir.adapters.db.engine import make_engine
    from ir.adapters.db.schema import upgrade
    from ir.bootstrap import build
    from ir.config import Settings

    rules = folder / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    env = {
        "IR_DATABASE_URL": f"sqlite:///{folder / 'ir.db'}",
        "IR_DATA_DIR": str(folder),
        "IR_PLAYBOOKS_DIR": str(ROOT / "playbooks"),
        "IR_ALERT_RULES": str(rules),
    }
    settings = Settings(
        database_url=env["IR_DATABASE_URL"],
        data_dir=str(folder),
        playbooks_dir=env["IR_PLAYBOOKS_DIR"],
        alert_rules=str(rules),
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    with build(settings) as app, app.db.uow() as uow:
        uow.users.add("alertmanager", display_name="Alertmanager", password="bench-machine-1234", roles=["commander"])
        _, token = uow.users.issue_token("alertmanager", name="bench", scopes=["read", "write"], ttl=None)
        uow.commit()
    return env, token


def stored(folder: Path) -> tuple[int, int, int]:
    """(fingerprints, alerts counted, incidents) as the database holds them."""
    import sqlite3

    db = sqlite3.connect(folder / "ir.db")
    try:
        query = "SELECT count(*), coalesce(sum(count), 0) FROM alert_fingerprints"
        fingerprints, counted = db.execute(query).fetchone()
        (incidents,) = db.execute("SELECT count(*) FROM incidents").fetchone()
        return int(fingerprints), int(counted), int(incidents)
    finally:
        db.close()


def main() -> None:
    total = int((SECONDS + WARMUP) * RATE)
    warmup = int(WARMUP * RATE)
    bodies = webhooks(total, seed=1)
    more = webhooks(2000, seed=2)
    print(
        f"alert intake: {RATE} webhooks/s x {ALERTS} alerts = {RATE * ALERTS:,} alerts/s offered for {SECONDS} s "
        f"(after {WARMUP:.0f} s warm-up), open loop, httpx client, uvicorn on 127.0.0.1, SQLite; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start"
    )
    with tempfile.TemporaryDirectory(prefix="ir-bench-alerts-") as tmp:
        folder = Path(tmp)
        env, token = prepare(folder)

        bare = Server("bare_server", {})
        try:
            url = f"{bare.url}/api/alerts/alertmanager"
            prime(url, None)
            ceiling = asyncio.run(open_loop(url, None, bodies, warmup))
            ceiling_max = asyncio.run(saturate(url, None, more, SATURATION_SECONDS))
        finally:
            bare.stop()

        server = Server("intake_server", env)
        try:
            url = f"{server.url}/api/alerts/alertmanager"
            prime(url, token)  # the 400 alerts of the pool open their 20 incidents
            intake = asyncio.run(open_loop(url, token, bodies, warmup))
            after_open_loop = stored(folder)
            intake_max = asyncio.run(saturate(url, token, more, SATURATION_SECONDS))
        finally:
            server.stop()

        print(intake.line("intake (open loop)                 "))
        print(ceiling.line("ceiling: bare endpoint (open loop) "))
        kept_up = (
            not intake.errors
            and intake.ok / max(intake.finished - intake.started, 1e-9) >= RATE * 0.98
            and intake.p99 < 1.0
        )
        print(
            f"  target {RATE * ALERTS:,} alerts/s with every webhook answered and p99 under 1 s: "
            f"{'met' if kept_up else 'NOT met'}"
        )
        print(intake_max.line("intake (saturation, 16 connections)"))
        print(ceiling_max.line("bare   (saturation, 16 connections)"))
        print(f"  intake's capacity: {intake_max.ok / max(ceiling_max.ok, 1):.0%} of the bare endpoint's")
        fingerprints, counted, incidents = after_open_loop
        sent_alerts = (len(pool()) + intake.sent + warmup) * ALERTS
        print(
            f"  stored after the open loop: {fingerprints:,} fingerprints counting {counted:,} alerts "
            f"(of {sent_alerts:,} sent) in {incidents} incidents"
        )


if __name__ == "__main__":
    main()
