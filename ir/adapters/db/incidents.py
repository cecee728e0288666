"""Incident streams on SQLAlchemy Core: events appended at the expected version, a snapshot every few
hundred events, the projections kept in the same transaction, and a per-process cache of folded state
(validated against the stored version on every read, so several processes can share the database)."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ir.app.ports import StaleIncident, StoredEvent
from ir.domain.clocks import ClockName
from ir.domain.deadlines import CalendarFor, Deadline, deadlines, touched_refs
from ir.domain.errors import NotFound
from ir.domain.events import Event, event_from_dict, event_to_dict
from ir.domain.incident import Incident, StepStatus
from ir.domain.playbook import Playbook
from ir.domain.snapshot import from_snapshot, to_snapshot
from ir.adapters.db.tables import (
    incident_events,
    incident_snapshots,
    incidents,
    playbook_versions,
    work_items,
)

SNAPSHOT_EVERY = 250
CACHE_SIZE = 256

PlaybookLoader = Callable[[str, str], Playbook]  # (hash, source) -> compiled playbook


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class IncidentCache:
    """Folded incidents by id, shared by the units of work of one process (bounded, thread-safe)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._items: OrderedDict[int, Incident] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

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
                self._items.popitem(last=False)

    def evict(self, incident_id: int) -> None:
        with self._lock:
            self._items.pop(incident_id, None)


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


class SqlIncidentRepository:
    def __init__(
        self,
        conn: Connection,
        *,
        cache: IncidentCache,
        playbooks: PlaybookCache,
        calendar_for: CalendarFor | None,
        touched: set[int],
    ) -> None:
        self.conn = conn
        self.cache = cache
        self.playbooks = playbooks
        self.calendar_for = calendar_for
        self.touched = touched  # incidents changed in this unit of work (evicted if it rolls back)

    # -- writing ------------------------------------------------------------------------------------

    def add(self, incident: Incident, events: Sequence[Event]) -> Incident:
        pb = incident.playbook
        self.playbooks.remember(pb)
        exists = self.conn.execute(select(playbook_versions.c.hash).where(playbook_versions.c.hash == pb.content_hash)).first()
        if exists is None:
            self.conn.execute(
                insert(playbook_versions).values(
                    hash=pb.content_hash, playbook_id=pb.id, version=pb.version, source=pb.source,
                    stored_at=events[0].at,
                )
            )
        probe = Incident(id=0, playbook=pb)
        for e in events:
            probe.apply(e)
        assert probe.opened_at is not None and probe.updated_at is not None
        new_id = self.conn.execute(
            insert(incidents).values(
                playbook_id=pb.id, playbook_hash=pb.content_hash, title=probe.title, mode=probe.mode.value,
                level=None, status="triage", version=0, opened_at=probe.opened_at, updated_at=probe.updated_at,
                simulated_start=probe.simulated_start, real_start=probe.real_start, speed=probe.speed,
            )
        ).inserted_primary_key[0]
        incident.id = int(new_id)
        self._write_events(incident.id, 0, events)
        for e in events:
            incident.apply(e)
        self._update_head(incident, expected=0)
        self._refresh_work_items(incident, None)
        self.touched.add(incident.id)
        self.cache.put(incident)
        return incident

    def append(self, incident: Incident, events: Sequence[Event]) -> None:
        if not events:
            return
        expected = incident.version
        self.touched.add(incident.id)
        try:
            self._write_events(incident.id, expected, events)
        except IntegrityError:
            self.cache.evict(incident.id)
            raise StaleIncident() from None
        refs = touched_refs(incident, events)
        for e in events:
            incident.apply(e)
        self._update_head(incident, expected=expected)
        self._refresh_work_items(incident, refs)
        if incident.version // SNAPSHOT_EVERY != expected // SNAPSHOT_EVERY:
            self._snapshot(incident)

    def _write_events(self, incident_id: int, after: int, events: Sequence[Event]) -> None:
        self.conn.execute(
            insert(incident_events),
            [
                {
                    "incident_id": incident_id,
                    "seq": after + i,
                    "kind": e.kind,
                    "payload": _json(event_to_dict(e)),
                    "actor": e.actor,
                    "recorded_at": e.at,
                }
                for i, e in enumerate(events, 1)
            ],
        )

    def _update_head(self, incident: Incident, *, expected: int) -> None:
        result = self.conn.execute(
            update(incidents)
            .where(and_(incidents.c.id == incident.id, incidents.c.version == expected))
            .values(
                version=incident.version,
                updated_at=incident.updated_at,
                title=incident.title,
                level=incident.level.value if incident.level else None,
                status=_status(incident),
                detected_at=incident.onset,
                restored_at=incident.restored_at,
                closed_at=incident.clock(ClockName.CLOSURE),
            )
        )
        if result.rowcount != 1:
            self.cache.evict(incident.id)
            raise StaleIncident()

    def _snapshot(self, incident: Incident) -> None:
        state = _json(to_snapshot(incident))
        done = self.conn.execute(
            update(incident_snapshots)
            .where(incident_snapshots.c.incident_id == incident.id)
            .values(version=incident.version, state=state)
        )
        if done.rowcount == 0:
            self.conn.execute(insert(incident_snapshots).values(incident_id=incident.id, version=incident.version, state=state))

    def _refresh_work_items(self, incident: Incident, refs: set[str] | None) -> None:
        items = deadlines(incident, calendar_for=self.calendar_for, refs=refs)
        statuses: dict[str, StepStatus] = {}
        step_ids = (
            list(incident.playbook.steps)
            if refs is None
            else [r[5:] for r in refs if r.startswith("step:") and r[5:] in incident.playbook.steps]
        )
        for sid in step_ids:
            statuses[sid] = incident.step_status(sid)
        by_ref: dict[str, Deadline] = {d.ref: d for d in items}
        rows = []
        for sid, status in statuses.items():
            d = by_ref.pop(f"step:{sid}", None)
            prog = incident.steps.get(sid)
            rows.append(
                {
                    "incident_id": incident.id,
                    "ref": f"step:{sid}",
                    "kind": "step",
                    "role": incident.playbook.steps[sid].role,
                    "status": status.value,
                    "assignee": prog.assignee if prog else None,
                    "due_at": d.due_at if d else None,
                    "done_at": d.done_at if d else (prog.finished_at if prog else None),
                }
            )
        for d in by_ref.values():
            rows.append(
                {
                    "incident_id": incident.id,
                    "ref": d.ref,
                    "kind": d.kind,
                    "role": d.role,
                    "status": "done" if d.done_at else "open",
                    "assignee": None,
                    "due_at": d.due_at,
                    "done_at": d.done_at,
                }
            )
        if refs is None:
            self.conn.execute(delete(work_items).where(work_items.c.incident_id == incident.id))
            if rows:
                self.conn.execute(insert(work_items), rows)
            return
        for row in rows:
            done = self.conn.execute(
                update(work_items)
                .where(and_(work_items.c.incident_id == row["incident_id"], work_items.c.ref == row["ref"]))
                .values({k: v for k, v in row.items() if k not in ("incident_id", "ref")})
            )
            if done.rowcount == 0:
                self.conn.execute(insert(work_items).values(row))

    # -- reading ------------------------------------------------------------------------------------

    def get(self, incident_id: int) -> Incident:
        row = self.conn.execute(
            select(incidents.c.version, incidents.c.playbook_hash).where(incidents.c.id == incident_id)
        ).first()
        if row is None:
            raise NotFound(f"no incident {incident_id}")
        version, digest = int(row[0]), str(row[1])
        cached = self.cache.get(incident_id)
        if cached is not None and cached.version == version:
            return cached
        incident = self._load(incident_id, digest, version)
        self.cache.put(incident)
        return incident

    def _load(self, incident_id: int, digest: str, version: int) -> Incident:
        playbook = self.playbooks.get(self.conn, digest)
        snap = self.conn.execute(
            select(incident_snapshots.c.version, incident_snapshots.c.state).where(
                and_(incident_snapshots.c.incident_id == incident_id, incident_snapshots.c.version <= version)
            )
        ).first()
        if snap is not None:
            incident = from_snapshot(incident_id, playbook, json.loads(snap[1]))
        else:
            incident = Incident(id=incident_id, playbook=playbook)
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
