"""The published status updates (table status_updates): the StatusBoard port on a unit of work's
transaction, and the public side's read-only StatusReader on a connection of its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, func, insert, select

from ir.adapters.db.tables import incidents, status_updates
from ir.adapters.db.uow import Database, SqlUnitOfWork
from ir.app.ports import UnitOfWork
from ir.app.status_page import PUBLIC_MODES, PublishedUpdate

_U = status_updates
_FIELDS = [c.name for c in _U.columns]


def _update(row: Any) -> PublishedUpdate:
    values = dict(row._mapping)
    return PublishedUpdate(**{name: values.get(name, "") for name in _FIELDS})


class SqlStatusBoard:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def of_incident(self, incident_id: int, *, lock: bool = False) -> list[PublishedUpdate]:
        if lock and self.conn.dialect.name != "sqlite":  # SQLite: the unit of work holds the one write lock
            self.conn.execute(select(incidents.c.id).where(incidents.c.id == incident_id).with_for_update())
        rows = self.conn.execute(select(_U).where(_U.c.incident_id == incident_id).order_by(_U.c.seq))
        return [_update(r) for r in rows]

    def add(self, update: PublishedUpdate) -> int:
        values = {name: getattr(update, name) for name in _FIELDS if name != "id"}
        found = self.conn.execute(insert(_U).values(values).returning(_U.c.id)).scalar_one()
        return int(found)


class SqlStatusReader:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def version(self) -> tuple[int, int]:
        row = self.conn.execute(select(func.coalesce(func.max(_U.c.id), 0), func.count()).select_from(_U)).one()
        return int(row[0]), int(row[1])

    def public(self, *, incidents: int, with_xml: bool = True) -> list[PublishedUpdate]:
        listed = _U.c.mode.in_(PUBLIC_MODES)
        latest = (
            select(_U.c.incident_id)
            .where(listed)
            .group_by(_U.c.incident_id)
            .order_by(func.max(_U.c.published_at).desc())
            .limit(incidents)
        )
        columns = [c for c in _U.columns if with_xml or c.name != "cap_xml"]
        query = (
            select(*columns)
            .where(listed, _U.c.incident_id.in_(latest.scalar_subquery()))
            .order_by(_U.c.published_at.desc(), _U.c.id.desc())
        )
        return [_update(r) for r in self.conn.execute(query)]

    def alert(self, identifier: str) -> PublishedUpdate | None:
        row = self.conn.execute(select(_U).where(_U.c.cap_identifier == identifier)).first()
        return _update(row) if row is not None else None

    def of_incident(self, incident_id: int) -> list[PublishedUpdate]:
        return SqlStatusBoard(self.conn).of_incident(incident_id)


def board_of(uow: UnitOfWork) -> SqlStatusBoard:
    """The board on a unit of work's transaction."""
    assert isinstance(uow, SqlUnitOfWork), "the status page runs on the SQL unit of work"
    return SqlStatusBoard(uow.conn)


def reader_of(db: Database) -> Any:
    """A factory of read-only views, each on a connection of its own for the length of a `with`."""

    @contextmanager
    def read() -> Iterator[SqlStatusReader]:
        with db.connection() as conn:
            yield SqlStatusReader(conn)

    return read
