"""The sealer: the only writer of audit sequence numbers.

In batches, it gives each committed, unsealed record its sequence number (the leaf index), the previous
record's entry hash and its own entry hash, and advances the chain's head (size, last hash, and the
compact range from which the Merkle root is computed without reading the log). SQLite serializes it with
BEGIN IMMEDIATE; PostgreSQL with a row lock on the head, held only while one batch is sealed. A record
whose transaction aborted never existed, so there are no gaps. Signed checkpoints follow every N records
or T seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, insert, select, update

from ir.adapters.audit import record_format
from ir.adapters.audit.merkle import EMPTY_ROOT, CompactRange
from ir.adapters.db import sqlite_fast
from ir.adapters.db.engine import WRITE
from ir.adapters.db.tables import audit_checkpoints, audit_heads, audit_records
from ir.domain.clocks import Clock

_SEAL = (
    update(audit_records)
    .where(audit_records.c.id == bindparam("b_id"))
    .values(seq=bindparam("b_seq"), prev_hash=bindparam("b_prev"), entry_hash=bindparam("b_hash"))
)


_SQLITE_SEAL = sqlite_fast.compiled(_SEAL)


def load_range(size: int, blob: bytes) -> CompactRange:
    return CompactRange.from_state(size, [blob[i : i + 32] for i in range(0, len(blob), 32)])


@dataclass(frozen=True, slots=True)
class Sealed:
    count: int
    size: int
    root: bytes
    lag: timedelta | None  # the oldest record's wait, for this batch


CheckpointHook = Callable[[Connection, int, bytes, datetime], None]


class Sealer:
    def __init__(
        self,
        engine: Engine,
        *,
        log_id: str,
        clock: Clock,
        batch: int = 5000,
        checkpoint: CheckpointHook | None = None,
        checkpoint_every: int = 1000,
        checkpoint_interval: timedelta = timedelta(seconds=60),
        write_lock: AbstractContextManager[Any] | None = None,
    ) -> None:
        self.engine = engine
        self.write_lock = write_lock or nullcontext()
        self.log_id = log_id
        self.clock = clock
        self.batch = batch
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval = checkpoint_interval
        self._lock = threading.Lock()  # one sealing pass at a time in this process

    def seal(self) -> Sealed:
        """Seal everything committed so far (in batches); returns the last batch's outcome."""
        total = 0
        result = Sealed(0, 0, EMPTY_ROOT, None)
        with self._lock:
            while True:
                result = self._seal_batch()
                total += result.count
                if result.count < self.batch:
                    return Sealed(total, result.size, result.root, result.lag)

    def _seal_batch(self) -> Sealed:
        with self.write_lock, self.engine.connect() as conn:
            conn.info[WRITE] = True
            with conn.begin():
                head = self._head(conn)
                size, last = int(head["size"]), bytes(head["last_hash"])
                frontier = load_range(size, bytes(head["frontier"]))
                rows = conn.execute(
                    select(
                        audit_records.c.id,
                        audit_records.c.created_at,
                        audit_records.c.key_id,
                        audit_records.c.subject_ref,
                        audit_records.c.ref,
                        audit_records.c.digest,
                        audit_records.c.body,
                    )
                    .where(and_(audit_records.c.log_id == self.log_id, audit_records.c.seq.is_(None)))
                    .order_by(audit_records.c.created_at, audit_records.c.id)
                    .limit(self.batch)
                ).all()
                now = self.clock.now()
                if not rows:
                    self._maybe_checkpoint(conn, frontier, now)
                    return Sealed(0, size, frontier.root(), None)
                params = []
                for record_id, created_at, key_id, subject_ref, ref, digest, body in rows:
                    header = record_format.header(
                        log_id=self.log_id,
                        seq=size,
                        created_us=record_format.micros(created_at),
                        record_id=record_id,
                        key_id=key_id,
                        subject_ref=subject_ref,
                        ref=ref,
                        digest=bytes(digest),
                        prev_hash=last,
                    )
                    entry = record_format.entry_hash(header, bytes(body))
                    params.append({"b_id": record_id, "b_seq": size, "b_prev": last, "b_hash": entry})
                    frontier.append(entry)
                    last = entry
                    size += 1
                raw = sqlite_fast.driver(conn)
                if raw is not None:  # straight to the driver, as the command path does
                    raw.executemany(_SQLITE_SEAL, params)
                else:
                    conn.execute(_SEAL, params)
                conn.execute(
                    update(audit_heads)
                    .where(audit_heads.c.log_id == self.log_id)
                    .values(size=size, last_hash=last, frontier=b"".join(frontier.hashes), sealed_at=now)
                )
                self._maybe_checkpoint(conn, frontier, now)
                lag = now - rows[0][1]
                return Sealed(len(rows), size, frontier.root(), lag)

    def _head(self, conn: Connection) -> dict[str, Any]:
        query = select(audit_heads).where(audit_heads.c.log_id == self.log_id)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:  # the first seal ever: create the head (two first sealers may race: one insert wins)
            values = {
                "log_id": self.log_id,
                "size": 0,
                "last_hash": record_format.GENESIS,
                "frontier": b"",
                "sealed_at": self.clock.now(),
            }
            if conn.dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                conn.execute(pg_insert(audit_heads).values(**values).on_conflict_do_nothing())
            else:
                conn.execute(insert(audit_heads).values(**values).prefix_with("OR IGNORE"))
            row = conn.execute(query).mappings().one()
        return dict(row)

    def _maybe_checkpoint(self, conn: Connection, frontier: CompactRange, now: datetime) -> None:
        if self.checkpoint is None or frontier.size == 0:
            return
        last = conn.execute(
            select(audit_checkpoints.c.size, audit_checkpoints.c.created_at)
            .where(audit_checkpoints.c.log_id == self.log_id)
            .order_by(audit_checkpoints.c.size.desc())
            .limit(1)
        ).first()
        if last is not None and int(last[0]) >= frontier.size:
            return
        crossed = last is None or frontier.size // self.checkpoint_every > int(last[0]) // self.checkpoint_every
        stale = last is None or now - last[1] >= self.checkpoint_interval
        if crossed or stale:
            self.checkpoint(conn, frontier.size, frontier.root(), now)

    def force_checkpoint(self) -> tuple[int, bytes] | None:
        """Seal what is pending and checkpoint the current size (for `ir audit checkpoint`)."""
        self.seal()
        if self.checkpoint is None:
            return None
        with self.write_lock, self.engine.connect() as conn:
            conn.info[WRITE] = True
            with conn.begin():
                head = self._head(conn)
                frontier = load_range(int(head["size"]), bytes(head["frontier"]))
                if frontier.size == 0:
                    return None
                exists = conn.execute(
                    select(audit_checkpoints.c.size).where(
                        and_(audit_checkpoints.c.log_id == self.log_id, audit_checkpoints.c.size == frontier.size)
                    )
                ).first()
                if exists is None:
                    self.checkpoint(conn, frontier.size, frontier.root(), self.clock.now())
                return frontier.size, frontier.root()
