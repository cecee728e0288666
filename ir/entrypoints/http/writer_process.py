"""The command writer's database work in a process of its own (`ir serve` on SQLite).

A step transition costs the server about as much CPU in the writer (deciding, encrypting the audit records,
the statements, the commit) as in the event loop (HTTP, sign-in, the answer), and in one process both
take turns on Python's one GIL: the server used one core of two, and at 500 transitions a second it ran
near its limit, where every late request made the next ones late (bench/bench_server.py). So `ir serve`
hands each batch of changes to a child process, which carries them out exactly as the writer thread
would (`writer.carry_out`: one transaction, a savepoint each, the audit records sealed at its end) and
answers with each change's outcome or error. The server's process keeps everything else: HTTP, the
console, reads, the after-commit hooks (live updates, the notification dispatcher, the audit sealer,
automated actions), the timers and the changes the writer does not carry.

`ir serve` forks the child before it starts a thread or opens the database, so that the child shares
the modules already imported instead of importing its own; the child builds its own application (engine,
keys, playbooks) and ignores SIGINT and SIGTERM: the server stops it, in order, after the last change
(it seals and publishes its audit records), and it exits by itself if the server is gone.

The child is the only writer of most incidents, so its cache of incidents stays warm. The server's own
cache falls behind, so the server checks a cached incident against the stored version in its write
transactions too (`Database.trust_cache`), as it does in reads. The two processes share the database as
any two ir processes do: SQLite's write lock serializes them, and the audit chain's head is read in the
sealing transaction.

An outcome crosses the pipe without the incident's state (a whole playbook, per change): the child says
instead whether the change made an automated action due. If the child dies or hangs, the changes in its
hands get a 503 (the change may have been stored: reload before trying again) and from then on the writer
thread carries out the changes itself, as without a child.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import pickle
import signal
import threading
from multiprocessing.connection import Connection
from typing import Any

from ir.adapters.audit.sealer import Sealed
from ir.app.actions import automated
from ir.config import Settings
from ir.domain.commands import Command
from ir.domain.errors import IrError

log = logging.getLogger("ir.http")

START_TIMEOUT = 60.0  # seconds for the child to build its application (playbooks, keys)
HUNG = 120.0  # seconds without an answer to a batch (SQLite's busy timeout is 30): the child is stuck


class WriterGone(IrError):
    """The writer process ended while it held the change: it may or may not have been stored."""

    http_status = 503


class WriterProcess:
    """The parent's side: hands a batch over and waits for its results (on the writer thread).

    Started by forking `ir serve` before it has a thread or a database connection, so that the child
    shares the modules the server has imported already (about 60 MB) instead of importing its own."""

    def __init__(self, settings: Settings) -> None:
        if threading.active_count() > 1:
            raise RuntimeError("the writer process is forked before the server starts a thread")
        gc.collect()
        gc.freeze()  # what is imported stays shared: the child's collections do not write to those pages
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, self._conn, settings), name="ir-writer", daemon=True
        )
        self._process.start()
        child.close()
        self._ready = False

    def ready(self) -> None:
        """Wait until the child has built its application (while the server built its own)."""
        if self._ready:
            return
        try:
            state, detail = self._conn.recv() if self._conn.poll(START_TIMEOUT) else ("failed", "no answer")
        except EOFError:
            state, detail = "failed", f"it exited with {self._process.exitcode}"
        if state != "ready":
            self.close(timeout=5)
            raise RuntimeError(f"the writer process could not start: {detail}")
        self._ready = True

    def carry_out(self, commands: list[Command]) -> tuple[list[tuple[Any, BaseException | None]], Sealed | None]:
        """Each command's outcome or error, and what was sealed. WriterGone for each, if the child died."""
        try:
            self._conn.send(commands)
            if not self._conn.poll(HUNG):
                self._process.kill()
                raise TimeoutError(f"no answer in {HUNG:.0f} s: killed")
            results, sealed = self._conn.recv()
        except (EOFError, OSError) as exc:  # TimeoutError is an OSError
            self._process.join(timeout=5)
            log.error("the writer process ended (%r, exit code %s)", exc, self._process.exitcode)
            gone = WriterGone(
                "the server's writer stopped while carrying out this change: it may have been stored; "
                "reload the incident before trying again / 服务器的写入进程中断，此变更可能已保存：请重新载入事件后再试"
            )
            return [(None, gone)] * len(commands), None
        return results, sealed

    @property
    def alive(self) -> bool:
        return bool(self._process.is_alive())

    def close(self, timeout: float = 30.0) -> None:
        """The child seals and publishes its audit records, releases the database and exits. (It holds no
        change by then: the writer thread waits for each batch's results.) Once is enough."""
        if self._conn.closed:
            return
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self._conn.close()
        self._process.join(timeout=timeout)
        if self._process.is_alive():
            log.error("the writer process did not stop in %s s: killed", timeout)
            self._process.kill()
            self._process.join()


def _serve(conn: Connection, parents: Connection, settings: Settings) -> None:
    """The child: build the application, then carry out each batch handed over until told to stop."""
    parents.close()  # or the parent's end would stay open here, and its death would go unnoticed
    # Ctrl-C reaches the whole process group; the server stops this process in its own order
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from ir.bootstrap import build
    from ir.entrypoints.http.writer import carry_out

    try:
        core = build(settings)
    except Exception as exc:  # told to the parent, which refuses to start
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    gc.collect()
    gc.freeze()  # what it built lives as long as it does: a full collection under load scans only the rest
    conn.send(("ready", None))
    try:
        while True:
            try:
                commands = conn.recv()
            except EOFError:  # the server is gone
                break
            if commands is None:
                break
            results, sealed = carry_out(core.handlers, core.db, core.audit.sealer, commands)
            shipped = [(_shipped(outcome), _picklable(error)) for outcome, error in results]
            try:
                conn.send((shipped, sealed))
            except (pickle.PicklingError, TypeError, AttributeError):  # nothing was sent: it is pickled first
                conn.send(([_one_by_one(outcome, error) for outcome, error in shipped], sealed))
    finally:
        core.close()


def _shipped(outcome: Any) -> Any:
    if outcome is not None:
        outcome.automated = automated(outcome)
        outcome.incident = None  # this process's state: the other reads its own
    return outcome


def _one_by_one(outcome: Any, error: BaseException | None) -> tuple[Any, BaseException | None]:
    try:
        pickle.dumps(outcome)
    except Exception as exc:  # a fault of ours: the change is stored, but its caller cannot be told how
        log.exception("the outcome of a change to incident %s cannot be sent", outcome.incident_id)
        return None, RuntimeError(f"the change was stored, but its outcome could not be sent: {exc}")
    return outcome, error


def _picklable(error: BaseException | None) -> BaseException | None:
    """Our refusals cross as they are (IrError rebuilds itself whole); any other error, which the server
    answers as an internal error anyway, as its name and text: one that could not be rebuilt on the other
    side would fail the whole batch's answer there."""
    if error is None or isinstance(error, IrError):
        return error
    return RuntimeError(f"{type(error).__name__}: {error}")
