"""The unit of work: one connection, one transaction, every repository of a command inside it."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine

from ir.adapters.audit.keys import DataKeys
from ir.adapters.audit.vault import Vault
from ir.adapters.audit.writer import NewRecord, RecordMaker, SqlAuditTrail
from ir.adapters.db.engine import for_writing
from ir.adapters.db.evidence import SqlEvidenceStore
from ir.adapters.db.incidents import IncidentCache, PlaybookCache, SqlIncidentRepository
from ir.adapters.db.inventory import SqlInventory
from ir.adapters.db.users import SqlUsers
from ir.domain.clocks import Clock
from ir.domain.deadlines import CalendarFor
from ir.domain.personal import Personal
from ir.domain.regimes import Regime


class Database:
    """Everything the units of work of one process share: the engine, caches and keys."""

    def __init__(
        self,
        engine: Engine,
        *,
        playbooks: PlaybookCache,
        keys: DataKeys,
        clock: Clock,
        log_id: str,
        calendar_for: CalendarFor | None = None,
        evidence_folder: str | None = None,
        regimes: Mapping[str, Regime] | None = None,
    ) -> None:
        self.engine = engine
        self.cache = IncidentCache()
        self.playbooks = playbooks
        self.keys = keys
        self.vault = Vault(keys.keyring)
        self.clock = clock
        self.log_id = log_id
        self.records = RecordMaker(log_id=log_id, keys=keys)  # shared: it keeps each subject's HMAC
        self.calendar_for = calendar_for
        self.evidence_folder = evidence_folder
        self.regimes: Mapping[str, Regime] = regimes or {}
        # SQLite has one writer: writers of this process queue here rather than poll the busy handler
        self.write_lock: AbstractContextManager[Any] = (
            threading.RLock() if engine.dialect.name == "sqlite" else nullcontext()
        )
        self._local = threading.local()
        # A write transaction may take a cached incident as it is: an append at a stale version fails on the
        # events' key and the command is decided again. False where another process writes most incidents
        # (`ir serve`'s command writer): then a cached incident is checked against the stored version first,
        # as in a read, because a report or a status update also reads it in a write transaction.
        self.trust_cache = True
        # bumped after each commit that changed who may sign in: remembered token checks older than it are stale
        self.users_version = 0
        self._users_version_lock = threading.Lock()

    def users_changed(self) -> None:
        with self._users_version_lock:
            self.users_version += 1

    def writer_connection(self) -> Connection:
        """This thread's write connection, kept open between units of work (a pool checkout per command
        costs as much as a statement)."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.invalidated:
            conn = self.engine.connect()
            for_writing(conn)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        self.engine.dispose()

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self)

    @contextmanager
    def batch(self) -> Iterator[Batch]:
        """Group commit: the units of work this thread runs inside are savepoints of one transaction, made
        durable by one commit. A unit of work that fails rolls back to its savepoint alone; if the batch
        fails (its commit, or an error out of the block) none of it is stored, and every incident it
        touched leaves the cache. Callers run their after-commit work once this returns."""
        with self.write_lock:
            conn = self.writer_connection()
            if conn.in_transaction():  # left over by an interrupted unit of work
                conn.rollback()
            batch = Batch(conn)
            transaction = conn.begin()
            self._local.batch = batch
            try:
                yield batch
                self._local.batch = None
                if batch.records:  # not sealed by the caller: written unsealed, for the background sealer
                    trail = SqlAuditTrail(conn, log_id=self.log_id, keys=self.keys, maker=self.records)
                    for record in batch.records:
                        trail.insert(record)
                transaction.commit()
            except BaseException:
                self._local.batch = None
                for incident_id in batch.touched:
                    self.cache.evict(incident_id)
                self.keys.forget()
                try:
                    if transaction.is_active:
                        transaction.rollback()
                except Exception:
                    conn.invalidate()  # a broken connection is replaced on the next unit of work
                raise
        if batch.users_changed:
            self.users_changed()

    def current_batch(self) -> Batch | None:
        found: Batch | None = getattr(self._local, "batch", None)
        return found

    @contextmanager
    def read(self) -> Iterator[SqlIncidentRepository]:
        """A read-only view (a deferred transaction): incidents folded from the cache or the database."""
        with self.engine.connect() as conn:
            yield SqlIncidentRepository(
                conn,
                cache=self.cache,
                playbooks=self.playbooks,
                calendar_for=self.calendar_for,
                touched=set(),
                regimes=self.regimes,  # what it loads goes into the shared cache, which writers trust
            )
            conn.rollback()

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn
            conn.rollback()


_UNIT = "ir_unit"  # the savepoint of a unit of work inside a batch


def _driver_sql(conn: Connection, sql: str) -> None:
    """A savepoint statement straight to the driver (sqlite3 and psycopg connections both have `execute`):
    SQLAlchemy's nested transactions compile each SAVEPOINT and RELEASE anew, which cost more than the
    statements of a step transition. SQLAlchemy keeps managing the enclosing transaction."""
    conn.connection.driver_connection.execute(sql)  # type: ignore[union-attr]


class Batch:
    """One transaction holding several units of work of one thread (see Database.batch)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.touched: set[int] = set()  # incidents changed by its committed units of work
        self.users_changed = False
        # the audit records of its committed units of work, kept back: whoever runs the batch inserts them
        # sealed before it ends (Sealer.write_sealed, then clears this), which spares inserting each one
        # unsealed and then reading and updating it to seal it; what is left is inserted unsealed
        self.records: list[NewRecord] = []

    def open_savepoint(self, name: str) -> None:
        _driver_sql(self.conn, f"SAVEPOINT {name}")

    def release(self, name: str) -> None:
        _driver_sql(self.conn, f"RELEASE SAVEPOINT {name}")

    def roll_back(self, name: str) -> None:
        """Undo what was done since the savepoint, and end it."""
        _driver_sql(self.conn, f"ROLLBACK TO SAVEPOINT {name}")
        self.release(name)

    @contextmanager
    def savepoint(self, name: str) -> Iterator[None]:
        """Work that rolls back alone if it fails (the exception goes on)."""
        self.open_savepoint(name)
        try:
            yield
        except BaseException:
            self.roll_back(name)
            raise
        self.release(name)


class BoundVault:
    """The vault on one unit of work's connection."""

    def __init__(self, vault: Vault, conn: Connection, clock: Clock) -> None:
        self.vault = vault
        self.conn = conn
        self.clock = clock

    def seal(self, subject: str, data: str | bytes) -> Personal:
        return self.vault.seal(self.conn, subject, data, at=self.clock.now())

    def open(self, value: Personal) -> str:
        return self.vault.open(self.conn, value)

    def open_bytes(self, value: Personal) -> bytes | None:
        return self.vault.open_bytes(self.conn, value)

    def shred(self, subject: str) -> str:
        return self.vault.shred(self.conn, subject, at=self.clock.now())

    def ref(self, subject: str) -> str:
        return self.vault.ref(subject)


class SqlUnitOfWork:
    """One transaction on this thread's write connection. The repositories are made on first use (most
    commands use two of them), each bound to the connection and to one `now` per unit of work."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: Connection | None = None
        self._committed = False
        self._touched: set[int] = set()
        self._held: list[threading.Lock] = []
        self._locked = False
        self._batch: Batch | None = None  # inside a batch: a savepoint of its transaction
        self._records: list[NewRecord] = []  # inside a batch: its audit records, the batch's once committed
        self._reset()

    def _reset(self) -> None:
        self._now: datetime | None = None
        self._incidents: SqlIncidentRepository | None = None
        self._evidence: SqlEvidenceStore | None = None
        self._audit: SqlAuditTrail | None = None
        self._personal: BoundVault | None = None
        self._inventory: SqlInventory | None = None
        self._users: SqlUsers | None = None

    def __enter__(self) -> SqlUnitOfWork:
        self.db.write_lock.__enter__()
        self._locked = True
        batch = self._batch = self.db.current_batch()
        if batch is not None:
            conn = batch.conn
            batch.open_savepoint(_UNIT)
        else:
            conn = self.db.writer_connection()
            if conn.in_transaction():  # left over by an interrupted unit of work
                conn.rollback()
            conn.begin()
        self._conn = conn
        self._records = []
        self._reset()
        return self

    def now(self) -> datetime:
        """The unit of work's instant, read once."""
        if self._now is None:
            self._now = self.db.clock.now()
        return self._now

    @property
    def incidents(self) -> SqlIncidentRepository:
        if self._incidents is None:
            self._incidents = SqlIncidentRepository(
                self.conn,
                cache=self.db.cache,
                playbooks=self.db.playbooks,
                calendar_for=self.db.calendar_for,
                touched=self._touched,
                trust_cache=self.db.trust_cache,
                held=self._held,
                regimes=self.db.regimes,
            )
        return self._incidents

    @property
    def evidence(self) -> SqlEvidenceStore:
        if self._evidence is None:
            self._evidence = SqlEvidenceStore(self.conn, folder=self.db.evidence_folder, now=self.now())
        return self._evidence

    @property
    def audit(self) -> SqlAuditTrail:
        if self._audit is None:
            self._audit = SqlAuditTrail(
                self.conn,
                log_id=self.db.log_id,
                keys=self.db.keys,
                maker=self.db.records,
                held=self._records if self._batch is not None else None,
            )
        return self._audit

    @property
    def personal(self) -> BoundVault:
        if self._personal is None:
            self._personal = BoundVault(self.db.vault, self.conn, self.db.clock)
        return self._personal

    @property
    def inventory(self) -> SqlInventory:
        if self._inventory is None:
            self._inventory = SqlInventory(self.conn, now=self.now())
        return self._inventory

    @property
    def users(self) -> SqlUsers:
        if self._users is None:
            self._users = SqlUsers(self.conn, now=self.now())
        return self._users

    @property
    def conn(self) -> Connection:
        assert self._conn is not None, "outside the unit of work"
        return self._conn

    def commit(self) -> None:
        assert self._conn is not None
        users_changed = self._users is not None and self._users.changed
        batch = self._batch
        if batch is not None:  # durable when the batch commits
            batch.release(_UNIT)
            self._committed = True
            batch.records += self._records
            batch.touched |= self._touched
            batch.users_changed = batch.users_changed or users_changed
            return
        self._conn.commit()
        self._committed = True
        if users_changed:
            self.db.users_changed()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn = self._conn
        self._conn = None
        if conn is None:
            return
        try:
            if not self._committed:
                for incident_id in self._touched:  # the cached state ran ahead of what was stored
                    self.db.cache.evict(incident_id)
                self.db.keys.forget()  # a data key made in this transaction is gone with it
                if self._batch is not None:
                    self._batch.roll_back(_UNIT)
                else:
                    conn.rollback()
        except Exception:
            if self._batch is None:  # (a batch's connection is dealt with by the batch)
                conn.invalidate()  # a broken connection is replaced on the next unit of work
            raise
        finally:
            while self._held:
                self._held.pop().release()
            if self._locked:
                self._locked = False
                self.db.write_lock.__exit__(None, None, None)
