"""The audit records of stored incident events: one per event, fingerprinting it (same transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from ir.app.ports import StoredRow, UnitOfWork


def record_events(uow: UnitOfWork, *, actor: str, action: str, stored: Sequence[StoredRow], at: datetime) -> None:
    for i, row in enumerate(stored):
        uow.audit.record(
            action=action,
            actor=actor,
            subject=f"incident:{row.incident_id}",
            payload={"kind": row.kind, "seq": row.seq, "event": row.payload},
            at=at + timedelta(microseconds=i),  # one command's records are sealed in event order
            ref=f"incident:{row.incident_id}#{row.seq}",
            digest=uow.audit.event_digest(row.incident_id, row.seq, row.kind, row.payload),
        )
