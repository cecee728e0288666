"""The change feed: every committed change to an incident, whichever process made it.

A server announces its own commits at once (an after-commit hook); the feed adds the commits of every
other process on the same database — the command line on the same SQLite file, other `ir serve`
processes on PostgreSQL — and hands each `(incident, version)` to `publish`, from its own thread:

- PostgreSQL: every command's commit is followed by `NOTIFY ir_changes, '<incident>:<version>'`
  (`PgNotifier`, an after-commit hook every process installs); each server holds one `LISTEN`
  connection (`PgListener`), reconnecting when it drops and then announcing what changed meanwhile.
- SQLite (no NOTIFY): `SqliteWatcher` asks a dedicated connection for `PRAGMA data_version` four times a
  second — a read of a counter in shared memory, nothing measurable when idle — and only when it moved
  reads the events appended since the last look (by rowid: SQLite's writers are serialized, so rowids
  grow in commit order).

A version may be announced more than once (a server's own commit, seen again by the feed): the consumer
drops versions it has already announced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

CHANNEL = "ir_changes"

Publish = Callable[[int, int], None]
"""Announce (incident id, version)."""


class Feed(Protocol):
    def start(self) -> None: ...

    def stop(self, timeout: float = ...) -> None: ...


def change_feed(url: str, *, publish: Publish) -> Feed:
    """The feed for a database URL (SQLAlchemy form), not yet started."""
    if url.startswith("sqlite"):
        from ir.adapters.changes.sqlite import SqliteWatcher

        return SqliteWatcher(url=url, publish=publish)
    from ir.adapters.changes.postgres import PgListener

    return PgListener(url=url, publish=publish)
