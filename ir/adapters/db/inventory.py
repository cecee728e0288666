"""The registered resource inventory: units committed to one request at a time, in the command's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update

from ir.adapters.db.tables import resource_units
from ir.domain.errors import Conflict, InvalidInput, InvalidTransition, NotFound


class SqlInventory:
    def __init__(self, conn: Connection, *, now: datetime) -> None:
        self.conn = conn
        self.now = now

    def register(self, *, unit_id: str, kind: str, name: str, base: str, capacity: int = 1) -> None:
        if capacity < 1:
            raise InvalidInput("a unit's capacity is at least 1", field="capacity")
        exists = self.conn.execute(select(resource_units.c.id).where(resource_units.c.id == unit_id)).first()
        if exists is not None:
            raise InvalidTransition(f"a unit '{unit_id}' is already registered")
        self.conn.execute(
            insert(resource_units).values(
                id=unit_id, kind=kind, name=name, base=base, capacity=capacity, status="available", updated_at=self.now
            )
        )

    def set_in_service(self, unit_id: str, in_service: bool) -> None:
        row = self._unit(unit_id)
        if row["status"] == "committed":
            raise InvalidTransition(f"unit {unit_id} is committed to incident {row['incident_id']}: return it first")
        self.conn.execute(
            update(resource_units)
            .where(resource_units.c.id == unit_id)
            .values(status="available" if in_service else "out_of_service", updated_at=self.now)
        )

    def _unit(self, unit_id: str) -> Any:
        row = self.conn.execute(select(resource_units).where(resource_units.c.id == unit_id)).mappings().first()
        if row is None:
            raise NotFound(f"no unit '{unit_id}' in the inventory")
        return row

    def allocate(
        self, *, incident_id: int, request_id: str, kind: str, quantity: int, units: list[str]
    ) -> dict[str, int]:
        """Commit units to a request: the ones named, or available units of the kind (largest first) until
        the quantity is covered. Refuses a unit of another kind or already committed."""
        chosen: dict[str, int] = {}
        if units:
            for unit_id in units:
                row = self._unit(unit_id)
                if row["kind"] != kind:
                    raise InvalidInput(f"unit {unit_id} is a {row['kind']}, not a {kind}", field="units")
                if row["status"] != "available":
                    where = f" (incident {row['incident_id']})" if row["status"] == "committed" else ""
                    raise InvalidTransition(f"unit {unit_id} is {row['status'].replace('_', ' ')}{where}")
                chosen[unit_id] = int(row["capacity"])
        else:
            rows = self.conn.execute(
                select(resource_units.c.id, resource_units.c.capacity)
                .where(and_(resource_units.c.kind == kind, resource_units.c.status == "available"))
                .order_by(resource_units.c.capacity.desc(), resource_units.c.id)
            ).all()
            total = 0
            for unit_id, capacity in rows:
                if total >= quantity:
                    break
                chosen[str(unit_id)] = int(capacity)
                total += int(capacity)
            if not chosen:
                raise InvalidTransition(f"no {kind} is available in the inventory")
        for unit_id in chosen:
            done = self.conn.execute(
                update(resource_units)
                .where(and_(resource_units.c.id == unit_id, resource_units.c.status == "available"))
                .values(status="committed", incident_id=incident_id, request_id=request_id, updated_at=self.now)
            )
            if done.rowcount != 1:
                raise Conflict(f"unit {unit_id} was just committed elsewhere: try again")
        return chosen

    def release(self, units: list[str]) -> None:
        self.conn.execute(
            update(resource_units)
            .where(and_(resource_units.c.id.in_(units), resource_units.c.status == "committed"))
            .values(status="available", incident_id=None, request_id=None, updated_at=self.now)
        )

    def summary(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(
                resource_units.c.kind,
                resource_units.c.status,
                func.count().label("units"),
                func.sum(resource_units.c.capacity).label("capacity"),
            ).group_by(resource_units.c.kind, resource_units.c.status)
        ).mappings()
        return [dict(r) for r in rows]

    def units(self, kind: str | None = None) -> list[dict[str, Any]]:
        query = select(resource_units).order_by(resource_units.c.kind, resource_units.c.id)
        if kind:
            query = query.where(resource_units.c.kind == kind)
        return [dict(r) for r in self.conn.execute(query).mappings()]
