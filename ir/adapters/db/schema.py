"""Migrations: `ir db upgrade`, and the refusal to run on a database that is not migrated."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, inspect, text

from ir.domain.errors import NotMigrated

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config(engine: Engine) -> object:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


_REVISION = re.compile(r'^(down_revision|revision)\s*(?::[^=]*)?=\s*["\']?([^"\'\s]*)["\']?\s*$', re.MULTILINE)


@cache
def head_revision() -> str:
    """The newest migration, read from the migration files' `revision` and `down_revision` lines
    (importing alembic to ask it costs a command-line start-up over 100 ms; a test checks they agree)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found: dict[str, str] = dict(_REVISION.findall(path.read_text(encoding="utf-8")))
        revisions.add(found["revision"])
        if found.get("down_revision", "None") not in ("", "None"):
            parents.add(found["down_revision"])
    heads = revisions - parents
    assert len(heads) == 1, f"the migrations have {len(heads)} heads: {sorted(heads)}"
    return heads.pop()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; returns (before, after)."""
    from alembic import command

    before = current_revision(engine)
    command.upgrade(_config(engine), "head")  # type: ignore[arg-type]
    return before, head_revision()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        return str(row[0]) if row else None


def require_migrated(engine: Engine) -> None:
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        where = engine.url.render_as_string(hide_password=True)
        state = "empty" if current is None else f"at revision {current}, not {head}"
        raise NotMigrated(f"the database {where} is not migrated ({state}): run `ir db upgrade`")
