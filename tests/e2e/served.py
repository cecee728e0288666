"""A real `ir serve` in a subprocess on a free port, for the tests that need the whole server: live
updates across processes and stopping it in order. The database (SQLite file or PostgreSQL) is the
`migrated` fixture's; a commander and an observer with API tokens are added before it starts."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ir.bootstrap import build
from ir.config import Settings
from tests.e2e.cli import ROOT, Run, ir

START_TIMEOUT = 60  # seconds: generous, the machine may be busy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def environment(settings: Settings) -> dict[str, str]:
    return {
        "IR_DATABASE_URL": settings.database_url,
        "IR_DATA_DIR": settings.data_dir,
        "IR_PLAYBOOKS_DIR": settings.playbooks_dir,
        "IR_LANG": "en",
    }


def add_users(settings: Settings) -> dict[str, str]:
    """A commander and an observer, each with an API token; user -> token."""
    tokens = {}
    with build(settings) as app, app.db.uow() as uow:
        for user, role in (("cmd", "commander"), ("obs", "observer")):
            uow.users.add(user, display_name=user, password="a long pass phrase 2026", roles=[role])
            _id, tokens[user] = uow.users.issue_token(user, name="tests", scopes=["read", "write"], ttl=None)
        uow.commit()
    return tokens


@dataclass
class Served:
    settings: Settings
    tokens: dict[str, str]
    port: int
    proc: subprocess.Popen[str]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def headers(self, user: str = "cmd") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def ir(self, *args: str) -> Run:
        """The real command line on the same database (another process)."""
        return ir(*args, env=environment(self.settings))

    def stop(self, sig: signal.Signals = signal.SIGTERM, *, grace: float = 60) -> int:
        """Send the signal; the exit code (a hang past `grace` fails the test)."""
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"ir serve did not stop within {grace} s of {sig.name}: {self.output()}") from None

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def serve(settings: Settings, folder: Path, *, tokens: dict[str, str] | None = None) -> Iterator[Served]:
    """`ir serve` on the database; `tokens` from a server already serving it (else users are added)."""
    tokens = tokens if tokens is not None else add_users(settings)
    port = free_port()
    log = folder / f"serve-{port}.log"
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ir", "serve", "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, **environment(settings)},
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    served = Served(settings, tokens, port, proc, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if httpx.get(f"{served.url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"ir serve did not start: {served.output()}")
            time.sleep(0.1)
        yield served
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@dataclass
class Stream:
    """GET /api/stream read in a thread: each `change` event's data lands in `changes`; `ended` is set when
    the server ends the stream."""

    changes: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    connected: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)

    def wait_for(self, incident: int, version: int, timeout: float = 30) -> dict[str, Any]:
        """The first change announcing at least this version of this incident (fails after `timeout`)."""
        deadline = time.monotonic() + timeout
        seen: list[dict[str, Any]] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no change for incident {incident} version {version}; saw {seen} {self.errors}")
            try:
                change = self.changes.get(timeout=left)
            except queue.Empty:
                continue
            seen.append(change)
            if change["incident"] == incident and change["version"] >= version:
                return change


@contextmanager
def listening(served: Served, user: str = "obs") -> Iterator[Stream]:
    stream = Stream()
    client = httpx.Client(headers=served.headers(user), timeout=httpx.Timeout(5, read=60))

    def read() -> None:
        try:
            with client.stream("GET", f"{served.url}/api/stream") as answer:
                assert answer.status_code == 200, answer.status_code
                event = None
                for line in answer.iter_lines():
                    if line.startswith(": connected"):
                        stream.connected.set()
                    elif line.startswith("event: "):
                        event = line.removeprefix("event: ")
                    elif line.startswith("data: ") and event == "change":
                        stream.changes.put(json.loads(line.removeprefix("data: ")))
            stream.ended.set()
        except BaseException as exc:
            stream.errors.append(exc)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    try:
        assert stream.connected.wait(30), f"the stream did not connect: {stream.errors}"
        yield stream
    finally:
        client.close()
        thread.join(timeout=10)
