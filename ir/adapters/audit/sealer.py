"""The sealer: the only writer of audit sequence numbers.

In batches, it gives each committed, unsealed record its sequence number (the leaf index), the previous
record's entry hash and its own entry hash, and advances the chain's head (size, last hash, and the
compact range from which the Merkle root is computed without reading the log). SQLite serializes it with
BEGIN IMMEDIATE; PostgreSQL with a row lock on the head, held only while one batch is sealed. A record
whose transaction aborted never existed, so there are no gaps. Signed checkpoints follow every N records
or T seconds.

Business transactions never touch the head: their records are sealed after they commit (`seal`). The
group-commit appender's transactions hold nothing but audit records, so the same code seals inside them
(`write_sealed`): what is pending first, then the appender's own records, inserted already sealed. Those
are written once, not written and then rewritten by a second transaction competing for the write lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, insert, select, update

from ir.adapters.audit import record_format
from ir.adapters.audit.merkle import CompactRange
from ir.adapters.audit.writer import NewRecord
from ir.adapters.db import sqlite_fast
from ir.adapters.db.engine import for_writing
from ir.adapters.db.tables import audit_checkpoints, audit_heads, audit_records
from ir.domain.clocks import Clock

_SEAL = (
    update(audit_records)
    .where(audit_records.c.id == bindparam("b_id"))
    .values(seq=bindparam("b_seq"), prev_hash=bindparam("b_prev"), entry_hash=bindparam("b_hash"))
)
_SQLITE_SEAL = sqlite_fast.compiled(_SEAL)
_SEALED_COLUMNS = (
    "id",
    "log_id",
    "created_at",
    "key_id",
    "subject_ref",
    "ref",
    "digest",
    "body",
    "seq",
    "prev_hash",
    "entry_hash",
)
_INSERT_SEALED = insert(audit_records)
_SQLITE_INSERT_SEALED = (  # positional: cheaper to bind than a dict a row (the columns of _SEALED_COLUMNS)
    "INSERT INTO audit_records (id, log_id, created_at, key_id, subject_ref, ref, digest, body, seq, prev_hash,"
    " entry_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# the reads and writes of every seal, straight to the driver on SQLite (each is a few µs there, against
# tens through SQLAlchemy's execution path)
# what a seal needs to know, in one statement: the head, whether records wait to be sealed, and the last
# checkpoint (three statements, each releasing and retaking the GIL, cost a busy appender ~8% of its rate)
_SQLITE_STATE = (
    "SELECT h.size, h.last_hash, h.frontier,"
    " EXISTS (SELECT 1 FROM audit_records WHERE seq IS NULL AND log_id = ?1), c.size, c.created_at"
    " FROM audit_heads AS h LEFT JOIN"
    " (SELECT size, created_at FROM audit_checkpoints WHERE log_id = ?1 ORDER BY size DESC LIMIT 1) AS c ON 1"
    " WHERE h.log_id = ?1"
)
_SQLITE_MOVE_HEAD = "UPDATE audit_heads SET size = ?, last_hash = ?, frontier = ?, sealed_at = ? WHERE log_id = ?"


_UNREAD = object()  # the last checkpoint, not read yet


def load_range(size: int, blob: bytes) -> CompactRange:
    return CompactRange.from_state(size, [blob[i : i + 32] for i in range(0, len(blob), 32)])


@dataclass(frozen=True, slots=True)
class Sealed:
    count: int
    size: int
    root: bytes
    lag: timedelta | None  # the oldest record's wait, for this batch
    checkpointed: bool = False  # a checkpoint was stored: it waits to be published
    more: bool = False  # the batch was full: records are still pending


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
        checkpointed = False
        with self._lock:
            while True:
                result = self._seal_batch()
                total += result.count
                checkpointed = checkpointed or result.checkpointed
                if not result.more:
                    return Sealed(total, result.size, result.root, result.lag, checkpointed)

    def _seal_batch(self) -> Sealed:
        with self.write_lock, self.engine.connect() as conn:
            for_writing(conn)
            with conn.begin():
                return self._seal_in(conn, ())

    def write_sealed(self, conn: Connection, records: Sequence[NewRecord]) -> Sealed:
        """Seal what is pending (one batch), then insert `records` already sealed after it, in the caller's
        write transaction.

        That transaction must hold nothing but audit records and be committed at once: the chain waits for
        it (SQLite: it began with BEGIN IMMEDIATE, so this connection is the only writer until it commits;
        PostgreSQL: the head row is locked here until it commits). If it rolls back, nothing was numbered.
        Unlike `seal`, this takes no lock of this process's own: the caller holds the write lock already."""
        return self._seal_in(conn, records)

    def _seal_in(self, conn: Connection, new: Sequence[NewRecord]) -> Sealed:
        raw = sqlite_fast.driver(conn)
        state = raw.execute(_SQLITE_STATE, (self.log_id,)).fetchone() if raw is not None else None
        last_checkpoint: Any = _UNREAD
        if state is not None:
            size, last = int(state[0]), bytes(state[1])
            frontier = load_range(size, bytes(state[2]))
            any_pending = bool(state[3])
            if state[4] is None:
                last_checkpoint = None
            else:  # stored as UTCDateTime stores it on SQLite
                last_checkpoint = (state[4], datetime.fromisoformat(state[5]).replace(tzinfo=UTC))
        else:  # PostgreSQL (the head's row lock), or the first seal ever (the head is made)
            size, last, frontier = self._read_head(conn)
            any_pending = True
        now = self.clock.now()
        pending: Sequence[Any] = ()
        if any_pending:
            pending = conn.execute(
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
        if not pending and not new:
            checkpointed = self._maybe_checkpoint(conn, frontier, now, last_checkpoint)
            return Sealed(0, size, frontier.root(), None, checkpointed)
        log_id = self.log_id
        header = record_format.header
        entry_hash = record_format.entry_hash
        append = frontier.append
        oldest: datetime | None = None
        updates = []
        for record_id, created_at, key_id, subject_ref, ref, digest, body in pending:
            entry = entry_hash(
                header(
                    log_id=log_id,
                    seq=size,
                    created_us=record_format.micros(created_at),
                    record_id=record_id,
                    key_id=key_id,
                    subject_ref=subject_ref,
                    ref=ref,
                    digest=bytes(digest),
                    prev_hash=last,
                ),
                bytes(body),
            )
            updates.append({"b_id": record_id, "b_seq": size, "b_prev": last, "b_hash": entry})
            append(entry)
            last = entry
            size += 1
            if oldest is None or created_at < oldest:
                oldest = created_at
        inserts = []
        prefix = record_format.log_prefix(log_id)
        sealed_hash = record_format.sealed_entry_hash
        stamp: tuple[datetime, Any] | None = None  # records of one batch mostly share their instant
        for r in new:
            entry = sealed_hash(prefix, size, r.created_us, r.fixed, last, r.body)
            if stamp is None or stamp[0] != r.created_at:
                stamp = (r.created_at, sqlite_fast.sqlite_time(r.created_at) if raw is not None else r.created_at)
            inserts.append(
                (r.id, log_id, stamp[1], r.key_id, r.subject_ref, r.ref, r.digest, r.body, size, last, entry)
            )
            append(entry)
            last = entry
            size += 1
            if oldest is None or r.created_at < oldest:
                oldest = r.created_at
        frontier_blob = b"".join(frontier.hashes)
        if raw is not None:
            if updates:
                raw.executemany(_SQLITE_SEAL, updates)
            if inserts:
                raw.executemany(_SQLITE_INSERT_SEALED, inserts)
            raw.execute(_SQLITE_MOVE_HEAD, (size, last, frontier_blob, sqlite_fast.sqlite_time(now), log_id))
        else:
            if updates:
                conn.execute(_SEAL, updates)
            if inserts:
                conn.execute(_INSERT_SEALED, [dict(zip(_SEALED_COLUMNS, row, strict=True)) for row in inserts])
            conn.execute(
                update(audit_heads)
                .where(audit_heads.c.log_id == log_id)
                .values(size=size, last_hash=last, frontier=frontier_blob, sealed_at=now)
            )
        checkpointed = self._maybe_checkpoint(conn, frontier, now, last_checkpoint)
        lag = now - oldest if oldest is not None else None
        more = len(pending) >= self.batch
        return Sealed(len(updates) + len(inserts), size, frontier.root(), lag, checkpointed, more)

    def _read_head(self, conn: Connection) -> tuple[int, bytes, CompactRange]:
        head = self._head(conn)
        size = int(head["size"])
        return size, bytes(head["last_hash"]), load_range(size, bytes(head["frontier"]))

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

    def _maybe_checkpoint(self, conn: Connection, frontier: CompactRange, now: datetime, last: Any = _UNREAD) -> bool:
        """Store a signed checkpoint if N records or T seconds have passed since the last (given as (size,
        created_at) or None if read already); says whether it did."""
        if self.checkpoint is None or frontier.size == 0:
            return False
        if last is _UNREAD:
            last = conn.execute(
                select(audit_checkpoints.c.size, audit_checkpoints.c.created_at)
                .where(audit_checkpoints.c.log_id == self.log_id)
                .order_by(audit_checkpoints.c.size.desc())
                .limit(1)
            ).first()
        if last is not None and int(last[0]) >= frontier.size:
            return False
        crossed = last is None or frontier.size // self.checkpoint_every > int(last[0]) // self.checkpoint_every
        stale = last is None or now - last[1] >= self.checkpoint_interval
        if crossed or stale:
            self.checkpoint(conn, frontier.size, frontier.root(), now)
            return True
        return False

    def force_checkpoint(self) -> tuple[int, bytes] | None:
        """Seal what is pending and checkpoint the current size (for `ir audit checkpoint`)."""
        self.seal()
        if self.checkpoint is None:
            return None
        with self.write_lock, self.engine.connect() as conn:
            for_writing(conn)
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
