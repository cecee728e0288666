"""The thread that carries out the API's and the console's changes, with group commit.

SQLite has one writer at a time. Were every change run in the server's pool of worker threads (40), they
would all queue on the write lock, and every commit would wake a crowd of threads fighting for Python's
GIL: on a 2-core machine the server spent 5 ms of CPU per step transition, most of it handing the GIL
around (bench/bench_server.py). Changes instead queue here, in order, for one thread. What queued while
it was busy is carried out together in one transaction, each change in its own savepoint, made durable
by one commit (Database.batch): a change that is refused rolls back alone, and each caller learns its
own outcome only once the commit is done and its after-commit hooks have run, on a small pool of hook
threads (an automated action's web call must not hold up everyone's changes). The event loop awaits an
outcome without a thread of its own.

The batch's audit records are kept back by its units of work and inserted already sealed at its end, in
the same transaction, as the audit appender inserts its own: the batch holds SQLite's one write lock
already, and a separate sealing transaction after each batch queued for that lock and paid a commit of its
own (inserting each record unsealed, then reading and updating it to seal it, cost a sixth of the writer's
time). If sealing fails there, the records are committed unsealed and the background sealer seals them.

`ir serve` on SQLite hands each batch to a child process, which carries it out the same way
(`carry_out`), so that deciding and storing changes no longer shares Python's GIL with the event loop
(writer_process); this thread then only waits for the child, and runs the after-commit hooks here.

On PostgreSQL, whose writers run side by side and whose commits the database itself groups, changes run
one per transaction on a few threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ir.adapters.audit.sealer import Sealed, Sealer
from ir.adapters.db.uow import Database
from ir.adapters.group_commit import gather
from ir.app.handlers import Handlers, Outcome
from ir.bootstrap import App
from ir.domain.commands import Command
from ir.entrypoints.http.writer_process import WriterProcess

log = logging.getLogger("ir.http")

BATCH = 64  # changes in one transaction at most: the write lock is not held long by one batch
POSTGRES_THREADS = 8
HOOK_THREADS = 8  # after-commit hooks of committed changes: an automated action's HTTP call waits there


@dataclass(slots=True)
class _Item:
    command: Command
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Outcome]  # belongs to `loop`: set there, never from the writer's thread
    outcome: Outcome | None = None
    error: BaseException | None = None


Result = tuple[Outcome | None, BaseException | None]
"""A command's outcome, or why it has none."""


def carry_out(
    handlers: Handlers, db: Database, sealer: Sealer, commands: list[Command]
) -> tuple[list[Result], Sealed | None]:
    """Carry out commands in one transaction, each in its own savepoint, their audit records sealed as the
    batch ends (a command alone too: sealing its records later took a transaction and a commit of its own);
    each command's outcome or error, and what was sealed (None: the records were committed unsealed)."""
    results: list[Result] = []
    try:
        with db.batch() as batch:
            for command in commands:
                try:
                    results.append((handlers.carry_out(command), None))
                except Exception as exc:  # rolled back to its savepoint: the others go on
                    results.append((None, exc))
            try:
                with batch.savepoint("ir_seal"):
                    sealed: Sealed | None = sealer.write_sealed(batch.conn, batch.records)
                batch.records = []
            except Exception as exc:  # the batch inserts its records unsealed
                log.warning("audit records committed unsealed, for the background sealer: %s", exc)
                sealed = None
    except BaseException as exc:  # the batch failed as a whole (its commit): none of it is stored
        failed: list[Result] = [(None, error or exc) for _, error in results]
        return failed + [(None, exc)] * (len(commands) - len(results)), None
    if sealed is not None:
        for outcome, _ in results:
            if outcome is not None:
                outcome.sealed = True  # its after-commit hooks need not wake the sealer
    return results, sealed


class CommandWriter:
    def __init__(self, core: App, *, batch: int = BATCH, process: WriterProcess | None = None) -> None:
        """`process`: the changes are carried out there (SQLite; see writer_process)."""
        self.handlers = core.handlers
        self.db = core.db
        self.audit = core.audit
        self.batch = batch
        self._pool: ThreadPoolExecutor | None = None
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._hooks: ThreadPoolExecutor | None = None
        self._process = process
        if core.db.engine.dialect.name == "sqlite":
            if process is not None:
                process.ready()
                core.db.trust_cache = False  # the incidents it changes are behind in this process's cache
            self._hooks = ThreadPoolExecutor(max_workers=HOOK_THREADS, thread_name_prefix="ir-after-commit")
            self._thread = threading.Thread(target=self._run, name="ir-command-writer", daemon=True)
            self._thread.start()
        else:
            self._pool = ThreadPoolExecutor(max_workers=POSTGRES_THREADS, thread_name_prefix="ir-command")

    async def handle(self, command: Command) -> Outcome:
        """Carry out a command; its outcome once it is committed and announced (the same as Handlers.handle)."""
        if self._pool is not None:
            return await asyncio.wrap_future(self._pool.submit(self.handlers.handle, command))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self._queue.put(_Item(command, loop, future))
        return await future

    def close(self) -> None:
        """Carries out what was handed over already, then stops."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        if self._hooks is not None:
            self._hooks.shutdown(wait=True)
        if self._process is not None:
            self._process.close()

    def _run(self) -> None:
        last = 0  # changes in the last batch
        while True:
            item = self._queue.get()
            if item is None:
                return
            items, stop = gather(self._queue, item, limit=self.batch, busy=last > 1)
            last = len(items)
            # a caller that went away before its change began (its request cancelled) is not acted for
            todo = [i for i in items if not i.future.cancelled()]
            if todo:
                self._carry_out(todo)
                self._deliver([i for i in todo if i.outcome is None])  # refused or failed: answered at once
                assert self._hooks is not None
                for i in todo:
                    if i.outcome is not None:  # answered once its after-commit hooks have run
                        self._hooks.submit(self._announce, i)
            if stop:
                return

    def _carry_out(self, items: list[_Item]) -> None:
        commands = [i.command for i in items]
        if self._process is not None:
            results, sealed = self._process.carry_out(commands)
            if not self._process.alive:  # its changes' callers are told; from now on, this thread does them
                self._process.close(timeout=1)
                self._process = None
        else:
            results, sealed = carry_out(self.handlers, self.db, self.audit.sealer, commands)
        for item, (outcome, error) in zip(items, results, strict=True):
            item.outcome, item.error = outcome, error
        self.audit.after_append(sealed)  # wakes the background sealer if something is left for it

    def _announce(self, item: _Item) -> None:
        """On a hook thread, not the writer's: a hook may take long (an automated action calls a web service,
        with retries), and the writer must go on with other changes meanwhile."""
        assert item.outcome is not None
        try:
            self.handlers.announce(item.outcome)
        except Exception:  # the change is stored: its caller is told so; the hook's fault is logged
            log.exception("an after-commit hook failed for incident %s", item.outcome.incident_id)
        self._deliver([item])

    @staticmethod
    def _deliver(items: list[_Item]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Item]] = defaultdict(list)
        for item in items:
            by_loop[item.loop].append(item)
        for loop, mine in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: its callers are gone
                loop.call_soon_threadsafe(_settle, mine)


def _settle(items: list[_Item]) -> None:
    """On the callers' event loop: each caller gets its outcome or its error."""
    for item in items:
        if item.future.cancelled():
            continue
        if item.outcome is not None:
            item.future.set_result(item.outcome)
        else:
            item.future.set_exception(item.error or RuntimeError("the change was not carried out"))
