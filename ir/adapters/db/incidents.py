"""Incident streams on SQLAlchemy Core: events appended at the expected version, a snapshot every few
hundred events, the projections kept in the same transaction, and a per-process cache of folded state
(validated against the stored version on every read, so several processes can share the database)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Update, and_, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ir.adapters.db import sqlite_fast
from ir.adapters.db.tables import (
    incident_events,
    incident_snapshots,
    incidents,
    playbook_versions,
    work_items,
)
from ir.app.ports import StaleIncident, StoredEvent, StoredRow
from ir.domain.clocks import ClockName
from ir.domain.deadlines import CalendarFor, Deadline, deadlines, touched_refs
from ir.domain.emergency import merge_playbooks
from ir.domain.errors import NotFound
from ir.domain.events import Event, event_from_dict, event_to_dict
from ir.domain.incident import Incident
from ir.domain.playbook import Playbook
from ir.domain.regimes import Regime
from ir.domain.snapshot import from_snapshot, joined_playbooks, to_snapshot

SNAPSHOT_EVERY = 250
CACHE_SIZE = 256

# Statements built once, with bound parameters: building a statement per call costs more than running it.
_HEAD_COLUMNS = ("title", "level", "status", "detected_at", "restored_at", "closed_at")
_UPDATE_HEAD = (
    update(incidents).where(incidents.c.id == bindparam("b_id")).values({n: bindparam(f"b_{n}") for n in _HEAD_COLUMNS})
)
# The stream's version is its last sequence number (the primary key (incident_id, seq) guards appends).
_SELECT_HEAD = select(
    select(func.coalesce(func.max(incident_events.c.seq), 0))
    .where(incident_events.c.incident_id == bindparam("b_id"))
    .scalar_subquery(),
    incidents.c.playbook_hash,
).where(incidents.c.id == bindparam("b_id"))
_INSERT_EVENTS = insert(incident_events)
_ITEM_COLUMNS = ("kind", "role", "status", "assignee", "due_at", "done_at")
ItemRow = tuple[Any, ...]  # one work item's _ITEM_COLUMNS, in that order
_INSERT_ITEMS = insert(work_items)
_SQLITE_INSERT_EVENT = sqlite_fast.compiled(
    insert(incident_events).values({c.name: bindparam(c.name) for c in incident_events.columns})
)
# UPDATEs of a work item that set only the columns that changed (an index whose column is in the SET list is
# rewritten even when the value is the same: a page more per row and commit), built once per column set.
_ITEM_UPDATES: dict[tuple[str, ...], tuple[Update, str]] = {}


def _item_update(columns: tuple[str, ...]) -> tuple[Update, str]:
    found = _ITEM_UPDATES.get(columns)
    if found is None:
        statement = (
            update(work_items)
            .where(and_(work_items.c.incident_id == bindparam("b_incident"), work_items.c.ref == bindparam("b_ref")))
            .values({name: bindparam(f"b_{name}") for name in columns})
        )
        found = _ITEM_UPDATES.setdefault(columns, (statement, sqlite_fast.compiled(statement)))
    return found


PlaybookLoader = Callable[[str, str], Playbook]  # (hash, source) -> compiled playbook

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # one encoder, not one per call


def _json(value: Any) -> str:
    return _ENCODER.encode(value)


@dataclass(slots=True)
class Written:
    """What this process last wrote to an incident's projection rows, at which stream version."""

    version: int
    head: tuple[object, ...]  # the incident-list row (_head)
    items: dict[str, ItemRow]  # work items by ref (those written since the incident was cached)


class IncidentCache:
    """Folded incidents by id, shared by the units of work of one process (bounded, thread-safe)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._items: OrderedDict[int, Incident] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size
        self._writers: dict[int, threading.Lock] = {}
        self._written: dict[int, Written] = {}  # the projection rows this process wrote for a cached incident

    def writer_lock(self, incident_id: int) -> threading.Lock:
        """One writer per incident per process: a cached incident is folded in place by its writer."""
        with self._lock:
            found = self._writers.get(incident_id)
            if found is None:
                found = self._writers[incident_id] = threading.Lock()
            return found

    def get(self, incident_id: int) -> Incident | None:
        with self._lock:
            found = self._items.get(incident_id)
            if found is not None:
                self._items.move_to_end(incident_id)
            return found

    def put(self, incident: Incident) -> None:
        with self._lock:
            self._items[incident.id] = incident
            self._items.move_to_end(incident.id)
            while len(self._items) > self._size:
                gone, _ = self._items.popitem(last=False)
                self._written.pop(gone, None)

    def evict(self, incident_id: int) -> None:
        with self._lock:
            self._items.pop(incident_id, None)
            self._written.pop(incident_id, None)

    def written(self, incident_id: int, version: int) -> Written | None:
        """The projection rows stored for this incident at `version`, as far as this process wrote them (a
        stream is append-only, so the rows of a version are the same whoever wrote them); None if unknown."""
        with self._lock:
            found = self._written.get(incident_id)
        return found if found is not None and found.version == version else None

    def keep_written(self, incident_id: int, written: Written) -> None:
        with self._lock:
            if incident_id in self._items:
                self._written[incident_id] = written
            else:
                self._written.pop(incident_id, None)


class PlaybookCache:
    """Compiled frozen playbooks by content hash."""

    def __init__(self, compile_source: PlaybookLoader) -> None:
        self._compile = compile_source
        self._items: dict[str, Playbook] = {}
        self._lock = threading.Lock()

    def remember(self, playbook: Playbook) -> None:
        with self._lock:
            self._items.setdefault(playbook.content_hash, playbook)

    def get(self, conn: Connection, digest: str) -> Playbook:
        with self._lock:
            found = self._items.get(digest)
        if found is not None:
            return found
        row = conn.execute(select(playbook_versions.c.source).where(playbook_versions.c.hash == digest)).first()
        if row is None:
            raise NotFound(f"the playbook version {digest[:12]} of this incident is missing from the database")
        playbook = self._compile(digest, row[0])
        with self._lock:
            self._items[digest] = playbook
        return playbook


def _status(incident: Incident) -> str:
    if incident.closed:
        return "closed"
    if incident.restored_at is not None:
        return "restored"
    if incident.level is None:
        return "triage"
    return "response"


def _head(incident: Incident) -> tuple[object, ...]:
    return (
        incident.title,
        incident.level.value if incident.level else None,
        _status(incident),
        incident.onset,
        incident.restored_at,
        incident.clock(ClockName.CLOSURE),
    )


class SqlIncidentRepository:
    def __init__(
        self,
        conn: Connection,
        *,
        cache: IncidentCache,
        playbooks: PlaybookCache,
        calendar_for: CalendarFor | None,
        touched: set[int],
        trust_cache: bool = False,
        held: list[threading.Lock] | None = None,
        regimes: Mapping[str, Regime] | None = None,
    ) -> None:
        self.conn = conn
        self.regimes: Mapping[str, Regime] = regimes or {}
        # In a write transaction the cached state need not be checked against the stored version: the
        # append is guarded by the events' primary key, and a stale cache is re-read and retried.
        self.trust_cache = trust_cache
        self.held = held  # writer locks taken by this unit of work, released when it ends
        self.cache = cache
        self.playbooks = playbooks
        self.calendar_for = calendar_for
        self.touched = touched  # incidents changed in this unit of work (evicted if it rolls back)

    # -- writing ------------------------------------------------------------------------------------

    def add(self, incident: Incident, events: Sequence[Event]) -> tuple[Incident, list[StoredRow]]:
        """Store a new incident; its id is allocated by the database."""
        pb = incident.playbook
        self.remember_playbook(pb, events[0].at)
        probe = Incident(id=0, playbook=pb)
        for e in events:
            probe.apply(e)
        assert probe.opened_at is not None and probe.updated_at is not None
        new_id = self.conn.execute(
            insert(incidents).values(
                playbook_id=pb.id,
                playbook_hash=pb.content_hash,
                title=probe.title,
                mode=probe.mode.value,
                level=None,
                status="triage",
                opened_at=probe.opened_at,
                simulated_start=probe.simulated_start,
                real_start=probe.real_start,
                speed=probe.speed,
            )
        ).inserted_primary_key
        assert new_id is not None
        incident.id = int(new_id[0])
        incident.resolve_playbook = self.resolver()
        incident.regimes = self.regimes
        stored = self._write_events(incident.id, 0, events)
        for e in events:
            incident.apply(e)
        self.touched.add(incident.id)
        self.cache.put(incident)
        head = self._update_head(incident, None)
        items = self._refresh_work_items(incident, None)
        self.cache.keep_written(incident.id, Written(incident.version, head, items))
        return incident, stored

    def append(self, incident: Incident, events: Sequence[Event]) -> list[StoredRow]:
        if not events:
            return []
        expected = incident.version
        self.touched.add(incident.id)
        try:
            stored = self._write_events(incident.id, expected, events)
        except (IntegrityError, sqlite3.IntegrityError):  # the driver's own, on the direct SQLite path
            self.cache.evict(incident.id)
            raise StaleIncident() from None
        refs = touched_refs(incident, events)
        known = self.cache.written(incident.id, expected)
        before = known.head if known is not None else _head(incident)
        for e in events:
            incident.apply(e)
        head = self._update_head(incident, before)
        items = self._refresh_work_items(incident, refs, known.items if known is not None else {})
        self.cache.keep_written(incident.id, Written(incident.version, head, items))
        if incident.version // SNAPSHOT_EVERY != expected // SNAPSHOT_EVERY:
            self._snapshot(incident)
        return stored

    def _write_events(self, incident_id: int, after: int, events: Sequence[Event]) -> list[StoredRow]:
        stored = [StoredRow(incident_id, after + i, e.kind, _json(event_to_dict(e))) for i, e in enumerate(events, 1)]
        raw = sqlite_fast.driver(self.conn)
        if raw is not None:
            at = sqlite_fast.sqlite_time
            raw.executemany(
                _SQLITE_INSERT_EVENT,
                [
                    {
                        "incident_id": incident_id,
                        "seq": s.seq,
                        "kind": s.kind,
                        "payload": s.payload,
                        "actor": e.actor,
                        "recorded_at": at(e.at),
                    }
                    for s, e in zip(stored, events, strict=True)
                ],
            )
        else:
            rows = [
                {
                    "incident_id": incident_id,
                    "seq": s.seq,
                    "kind": s.kind,
                    "payload": s.payload,
                    "actor": e.actor,
                    "recorded_at": e.at,
                }
                for s, e in zip(stored, events, strict=True)
            ]
            self.conn.execute(_INSERT_EVENTS, rows[0] if len(rows) == 1 else rows)
        return stored

    def _update_head(self, incident: Incident, before: tuple[object, ...] | None) -> tuple[object, ...]:
        """Update the incident-list row when what it shows changed (most step acts change nothing)."""
        head = _head(incident)
        if head != before:
            self.conn.execute(
                _UPDATE_HEAD,
                {"b_id": incident.id, **{f"b_{n}": v for n, v in zip(_HEAD_COLUMNS, head, strict=True)}},
            )
        return head

    def _snapshot(self, incident: Incident) -> None:
        state = _json(to_snapshot(incident))
        done = self.conn.execute(
            update(incident_snapshots)
            .where(incident_snapshots.c.incident_id == incident.id)
            .values(version=incident.version, state=state)
        )
        if done.rowcount == 0:
            self.conn.execute(
                insert(incident_snapshots).values(incident_id=incident.id, version=incident.version, state=state)
            )

    def _work_rows(self, incident: Incident, refs: set[str] | None) -> dict[str, ItemRow]:
        """The work-item rows of the incident's state (only those named by `refs`, if given), by ref."""
        items = deadlines(incident, calendar_for=self.calendar_for, refs=refs)
        steps = incident.playbook.steps
        step_ids = list(steps) if refs is None else [r[5:] for r in refs if r.startswith("step:") and r[5:] in steps]
        by_ref: dict[str, Deadline] = {d.ref: d for d in items}
        rows: dict[str, ItemRow] = {}
        for sid in step_ids:
            ref = f"step:{sid}"
            d = by_ref.pop(ref, None)
            prog = incident.steps.get(sid)
            rows[ref] = (
                "step",
                steps[sid].role,
                incident.step_status(sid).value,
                prog.assignee if prog else None,
                d.due_at if d else None,
                d.done_at if d else (prog.finished_at if prog else None),
            )
        for d in by_ref.values():
            rows[d.ref] = (d.kind, d.role, "done" if d.done_at else "open", None, d.due_at, d.done_at)
        return rows

    def _refresh_work_items(
        self, incident: Incident, refs: set[str] | None, known: dict[str, ItemRow] | None = None
    ) -> dict[str, ItemRow]:
        """Bring the incident's work items up to its state: all of them (refs None), or those named by refs,
        writing only the rows and columns that differ from `known` (rows as stored, where this process
        knows them), and every column of the others. Returns the rows now known to be stored."""
        rows = self._work_rows(incident, refs)
        if refs is None:
            self.conn.execute(delete(work_items).where(work_items.c.incident_id == incident.id))
            if rows:
                self.conn.execute(_INSERT_ITEMS, [self._item(incident.id, ref, row) for ref, row in rows.items()])
            return rows
        known = {} if known is None else known
        gone = [r for r in refs if r not in rows and not r.startswith("step:")]
        if gone:  # an obligation that no longer applies (a cancelled request, a lapsed notification)
            self.conn.execute(
                delete(work_items).where(and_(work_items.c.incident_id == incident.id, work_items.c.ref.in_(gone)))
            )
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for ref, row in rows.items():
            old = known.get(ref)
            if old == row:
                continue
            columns = (
                _ITEM_COLUMNS
                if old is None
                else tuple(n for n, a, b in zip(_ITEM_COLUMNS, old, row, strict=True) if a != b)
            )
            values: dict[str, Any] = {"b_incident": incident.id, "b_ref": ref}
            values.update((f"b_{n}", v) for n, v in zip(_ITEM_COLUMNS, row, strict=True) if n in columns)
            by_columns.setdefault(columns, []).append(values)
        raw = sqlite_fast.driver(self.conn)
        expected = changed = 0
        for columns, params in by_columns.items():
            statement, sqlite_statement = _item_update(columns)
            expected += len(params)
            if raw is not None:
                changed += raw.executemany(sqlite_statement, [sqlite_fast.bind(p) for p in params]).rowcount
            else:
                changed += self.conn.execute(statement, params[0] if len(params) == 1 else params).rowcount
        if changed != expected:  # rows that did not exist yet (a notification that newly applies)
            written = [p["b_ref"] for group in by_columns.values() for p in group]
            existing = {
                r[0]
                for r in self.conn.execute(
                    select(work_items.c.ref).where(
                        and_(work_items.c.incident_id == incident.id, work_items.c.ref.in_(written))
                    )
                )
            }
            missing = [self._item(incident.id, ref, rows[ref]) for ref in written if ref not in existing]
            if missing:
                self.conn.execute(_INSERT_ITEMS, missing)
        for ref in gone:
            known.pop(ref, None)
        known.update(rows)  # the cached rows are this writer's (it holds the incident's writer lock)
        return known

    @staticmethod
    def _item(incident_id: int, ref: str, row: ItemRow) -> dict[str, Any]:
        return {"incident_id": incident_id, "ref": ref, **dict(zip(_ITEM_COLUMNS, row, strict=True))}

    # -- reading ------------------------------------------------------------------------------------

    def get(self, incident_id: int, *, fresh: bool = False) -> Incident:
        if fresh:
            self.cache.evict(incident_id)
        if self.held is not None:
            lock = self.cache.writer_lock(incident_id)
            if lock not in self.held:
                lock.acquire()
                self.held.append(lock)
        if self.trust_cache:
            cached = self.cache.get(incident_id)
            if cached is not None:
                return cached
        row = self.conn.execute(_SELECT_HEAD, {"b_id": incident_id}).first()
        if row is None:
            raise NotFound(f"no incident {incident_id}")
        version, digest = int(row[0]), str(row[1])
        cached = self.cache.get(incident_id)
        if cached is not None and cached.version == version:
            return cached
        incident = self._load(incident_id, digest, version)
        self.cache.put(incident)
        return incident

    def resolver(self) -> Callable[[str], Playbook]:
        """How an incident loads a playbook it joined, by content hash."""
        conn, cache = self.conn, self.playbooks
        return lambda digest: cache.get(conn, digest)

    def remember_playbook(self, playbook: Playbook, at: datetime) -> None:
        """Store a playbook's exact text by content hash (frozen into the incidents that use it). Two
        processes storing the same version at once: one insert wins, the other does nothing."""
        self.playbooks.remember(playbook)
        exists = self.conn.execute(
            select(playbook_versions.c.hash).where(playbook_versions.c.hash == playbook.content_hash)
        ).first()
        if exists is not None:
            return
        values = {
            "hash": playbook.content_hash,
            "playbook_id": playbook.id,
            "version": playbook.version,
            "source": playbook.source,
            "stored_at": at,
        }
        if self.conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            self.conn.execute(pg_insert(playbook_versions).values(**values).on_conflict_do_nothing())
        else:
            self.conn.execute(insert(playbook_versions).values(**values).prefix_with("OR IGNORE"))

    def _load(self, incident_id: int, digest: str, version: int) -> Incident:
        playbook = self.playbooks.get(self.conn, digest)
        snap = self.conn.execute(
            select(incident_snapshots.c.version, incident_snapshots.c.state).where(
                and_(incident_snapshots.c.incident_id == incident_id, incident_snapshots.c.version <= version)
            )
        ).first()
        if snap is not None:
            data = json.loads(snap[1])
            for joined in joined_playbooks(data):
                playbook = merge_playbooks(playbook, self.playbooks.get(self.conn, joined))
            incident = from_snapshot(incident_id, playbook, data)
        else:
            incident = Incident(id=incident_id, playbook=playbook)
        incident.resolve_playbook = self.resolver()
        incident.regimes = self.regimes
        for stored in self.events(incident_id, after=incident.version):
            incident.apply(stored.event)
        return incident

    def events(self, incident_id: int, *, after: int = 0, limit: int | None = None) -> list[StoredEvent]:
        query = (
            select(incident_events.c.seq, incident_events.c.kind, incident_events.c.payload)
            .where(and_(incident_events.c.incident_id == incident_id, incident_events.c.seq > after))
            .order_by(incident_events.c.seq)
        )
        if limit is not None:
            query = query.limit(limit)
        return [
            StoredEvent(incident_id, int(seq), event_from_dict(kind, json.loads(payload)))
            for seq, kind, payload in self.conn.execute(query)
        ]

    def count(self) -> int:
        return int(self.conn.execute(select(func.count()).select_from(incidents)).scalar_one())
