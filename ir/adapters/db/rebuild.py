"""Rebuild the query projections and snapshots from the events, in batches, streaming (bounded memory)."""

from __future__ import annotations

import json

from sqlalchemy import delete, insert, select, update

from ir.adapters.db.incidents import SNAPSHOT_EVERY, SqlIncidentRepository, _json, _status
from ir.adapters.db.tables import incident_events, incident_snapshots, incidents, work_items
from ir.adapters.db.uow import Database
from ir.domain.clocks import ClockName
from ir.domain.events import event_from_dict
from ir.domain.incident import Incident
from ir.domain.snapshot import to_snapshot


def rebuild(db: Database, *, batch: int = 500) -> tuple[int, int]:
    """Returns (incidents, events) rebuilt. Each batch of incidents is one transaction."""
    with db.connection() as conn:
        ids = [int(r[0]) for r in conn.execute(select(incidents.c.id).order_by(incidents.c.id))]
    total_events = 0
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        with db.uow() as uow:
            conn = uow.conn
            repo: SqlIncidentRepository = uow.incidents
            for incident_id in chunk:
                digest = conn.execute(
                    select(incidents.c.playbook_hash).where(incidents.c.id == incident_id)
                ).scalar_one()
                inc = Incident(id=incident_id, playbook=db.playbooks.get(conn, digest))
                inc.resolve_playbook = repo.resolver()
                inc.regimes = db.regimes
                rows = conn.execute(
                    select(incident_events.c.kind, incident_events.c.payload)
                    .where(incident_events.c.incident_id == incident_id)
                    .order_by(incident_events.c.seq),
                    execution_options={"yield_per": 2000},
                )
                for kind, payload in rows:
                    inc.apply(event_from_dict(kind, json.loads(payload)))
                total_events += inc.version
                conn.execute(
                    update(incidents)
                    .where(incidents.c.id == incident_id)
                    .values(
                        title=inc.title,
                        level=inc.level.value if inc.level else None,
                        status=_status(inc),
                        detected_at=inc.onset,
                        restored_at=inc.restored_at,
                        closed_at=inc.clock(ClockName.CLOSURE),
                    )
                )
                conn.execute(delete(incident_snapshots).where(incident_snapshots.c.incident_id == incident_id))
                if inc.version >= SNAPSHOT_EVERY:
                    conn.execute(
                        insert(incident_snapshots).values(
                            incident_id=incident_id, version=inc.version, state=_json(to_snapshot(inc))
                        )
                    )
                conn.execute(delete(work_items).where(work_items.c.incident_id == incident_id))
                repo._refresh_work_items(inc, None)
                db.cache.evict(incident_id)
            uow.commit()
    return len(ids), total_events
