"""The hot write path on SQLite, straight to the driver.

A step transition runs three small statements; through SQLAlchemy's execution machinery each costs
several times the statement itself (about 9 µs against 1 µs measured here). The statements are still
SQLAlchemy's own, compiled once for SQLite, and values are bound the way UTCDateTime binds them, so what
is written is exactly what the SQLAlchemy path writes (the integration suite reads it back through it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql import ClauseElement

_DIALECT = sqlite.dialect(paramstyle="named")


def compiled(statement: ClauseElement) -> str:
    return str(statement.compile(dialect=_DIALECT))


def sqlite_time(value: datetime | None) -> str | None:
    """As SQLAlchemy's SQLite DateTime stores a UTC instant."""
    if value is None:
        return None
    # the format of SQLAlchemy's SQLite DATETIME ("%04d-%02d-%02d %02d:%02d:%02d.%06d"); isoformat is C
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def driver(conn: Connection) -> Any | None:
    """The raw sqlite3 connection under `conn`, or None on another database."""
    if conn.dialect.name != "sqlite":
        return None
    return conn.connection.driver_connection


def bind(row: dict[str, Any]) -> dict[str, Any]:
    return {k: sqlite_time(v) if isinstance(v, datetime) else v for k, v in row.items()}
