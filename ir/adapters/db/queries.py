"""Read-side queries on the projections (incident list, open work by role, due items)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select

from ir.adapters.db.tables import incident_events, incidents, timer_marks, work_items

OPEN_STEP_STATUSES = ("pending", "ready", "in_progress", "failed")


def list_incidents(
    conn: Connection, *, open_only: bool = False, limit: int = 200, offset: int = 0
) -> list[dict[str, Any]]:
    overdue = (
        select(func.count())
        .select_from(timer_marks)
        .where(and_(timer_marks.c.incident_id == incidents.c.id, timer_marks.c.mark == "overdue"))
        .scalar_subquery()
    )
    open_steps = (
        select(func.count())
        .select_from(work_items)
        .where(
            and_(
                work_items.c.incident_id == incidents.c.id,
                work_items.c.kind == "step",
                work_items.c.status.in_(OPEN_STEP_STATUSES),
            )
        )
        .scalar_subquery()
    )
    last = (
        select(func.max(incident_events.c.seq)).where(incident_events.c.incident_id == incidents.c.id).scalar_subquery()
    )
    last_at = (
        select(func.max(incident_events.c.recorded_at))
        .where(incident_events.c.incident_id == incidents.c.id)
        .scalar_subquery()
    )
    query = select(
        incidents.c.id,
        incidents.c.title,
        incidents.c.playbook_id,
        incidents.c.mode,
        incidents.c.level,
        incidents.c.status,
        last.label("version"),
        incidents.c.opened_at,
        last_at.label("updated_at"),
        incidents.c.detected_at,
        incidents.c.restored_at,
        incidents.c.closed_at,
        open_steps.label("open_steps"),
        overdue.label("overdue_marks"),
    ).order_by(incidents.c.id.desc())
    if open_only:
        query = query.where(incidents.c.status != "closed")
    rows = conn.execute(query.limit(limit).offset(offset)).mappings().all()
    return [dict(r) for r in rows]


def open_work_by_role(conn: Connection, role: str) -> list[dict[str, Any]]:
    query = (
        select(work_items, incidents.c.title)
        .join(incidents, incidents.c.id == work_items.c.incident_id)
        .where(
            and_(
                work_items.c.role == role,
                work_items.c.kind == "step",
                work_items.c.status.in_(OPEN_STEP_STATUSES),
                incidents.c.status != "closed",
            )
        )
        .order_by(work_items.c.due_at)
    )
    return [dict(r) for r in conn.execute(query).mappings().all()]


def marks_of(conn: Connection, incident_id: int) -> list[dict[str, Any]]:
    query = (
        select(timer_marks)
        .where(timer_marks.c.incident_id == incident_id)
        .order_by(timer_marks.c.marked_at, timer_marks.c.id)
    )
    return [dict(r) for r in conn.execute(query).mappings().all()]


def due_before(conn: Connection, horizon: datetime) -> list[dict[str, Any]]:
    """Open steps and obligations of open incidents due before `horizon`."""
    query = (
        select(
            work_items.c.incident_id,
            work_items.c.ref,
            work_items.c.kind,
            work_items.c.role,
            work_items.c.due_at,
            incidents.c.level,
            incidents.c.playbook_hash,
            incidents.c.mode,
        )
        .join(incidents, incidents.c.id == work_items.c.incident_id)
        .where(
            and_(
                incidents.c.status != "closed",
                work_items.c.done_at.is_(None),
                work_items.c.due_at.is_not(None),
                work_items.c.due_at <= horizon,
                work_items.c.status.in_((*OPEN_STEP_STATUSES, "open")),
            )
        )
        .order_by(work_items.c.due_at)
    )
    return [dict(r) for r in conn.execute(query).mappings().all()]


def next_due_after(conn: Connection, instant: datetime) -> datetime | None:
    query = (
        select(func.min(work_items.c.due_at))
        .join(incidents, incidents.c.id == work_items.c.incident_id)
        .where(
            and_(
                incidents.c.status != "closed",
                work_items.c.done_at.is_(None),
                work_items.c.due_at > instant,
                work_items.c.status.in_((*OPEN_STEP_STATUSES, "open")),
            )
        )
    )
    value: datetime | None = conn.execute(query).scalar()
    return value
