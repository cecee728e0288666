"""Audit records that stand alone (sign-ins, refusals, reveals, exports, machine acts), from many threads,
made durable by group commit: one writer thread commits everything queued so far in one transaction,
and each caller returns only once its own record is committed (or gets the error: fail closed)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ir.adapters.audit.writer import SqlAuditTrail
from ir.adapters.db.engine import WRITE
from ir.adapters.db.uow import Database


@dataclass(frozen=True, slots=True)
class Pending:
    action: str
    actor: str
    subject: str
    payload: dict[str, Any]
    at: datetime


class GroupCommitAppender:
    def __init__(self, db: Database, *, max_batch: int = 2000, on_commit: Callable[[], None] | None = None) -> None:
        self.db = db
        self.on_commit = on_commit  # wakes the sealer
        self.max_batch = max_batch
        self._queue: queue.Queue[tuple[list[Pending], Future[None]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="ir-audit-appender", daemon=True)
        self._thread.start()

    def append(self, *, action: str, actor: str, subject: str, payload: dict[str, Any], at: datetime) -> None:
        """Record one entry; returns when it is durable."""
        self.append_many([Pending(action, actor, subject, payload, at)])

    def append_many(self, records: list[Pending]) -> None:
        done: Future[None] = Future()
        self._queue.put((records, done))
        done.result()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        conn = self.db.engine.connect()
        conn.info[WRITE] = True
        trail = SqlAuditTrail(conn, log_id=self.db.log_id, keys=self.db.keys)
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch = [first]
                count = len(first[0])
                while count < self.max_batch:  # everything queued meanwhile joins this commit
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        self._queue.put(None)
                        break
                    batch.append(item)
                    count += len(item[0])
                try:
                    with self.db.write_lock, conn.begin():
                        for records, _ in batch:
                            for r in records:
                                trail.record(
                                    action=r.action, actor=r.actor, subject=r.subject, payload=r.payload, at=r.at
                                )
                except Exception as exc:
                    self.db.keys.forget()  # a data key made in the failed transaction is gone with it
                    for _, done in batch:
                        done.set_exception(exc)
                    continue
                for _, done in batch:
                    done.set_result(None)
                if self.on_commit is not None:
                    self.on_commit()
        finally:
            conn.close()
