"""Engines: SQLite in WAL mode with synchronous=FULL on every connection, or PostgreSQL.

SQLite write transactions start with BEGIN IMMEDIATE (the pysqlite recipe: the driver's own
transaction handling is turned off and SQLAlchemy's `begin` emits it), so two writers never deadlock
upgrading a read lock, and every commit is durable.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.pool import ConnectionPoolEntry

WRITE = "ir_write"


def for_writing(conn: Connection) -> Connection:
    """Mark this checkout of a connection as a writer's: on SQLite its transactions begin IMMEDIATE. The mark
    is an execution option of this Connection, not of the pooled driver connection, so a reader that is
    handed the same driver connection later does not take the write lock."""
    return conn.execution_options(**{WRITE: True})


def make_engine(url: str, *, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url, echo=echo)
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=50)


def _sqlite_engine(url: str, *, echo: bool) -> Engine:
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
    # each worker thread keeps its write connection between commands (see Database.writer_connection):
    # SQLite connections are cheap, so the pool allows as many as the server has threads
    engine = create_engine(
        url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=10, max_overflow=100
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # straight to the driver: this runs once per command, and SQLAlchemy's statement path costs
        # as much as a small INSERT
        conn.connection.driver_connection.execute(  # type: ignore[union-attr]
            "BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN"
        )

    return engine
