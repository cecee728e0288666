"""The migrations create exactly the tables ir/adapters/db/tables.py declares (columns, types, keys,
indexes), on SQLite and PostgreSQL; and every migration goes down and up again cleanly."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from ir.adapters.db.engine import make_engine
from ir.adapters.db.schema import _config, current_revision, head_revision
from ir.adapters.db.tables import metadata
from ir.config import Settings


def differences(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))


def test_the_migrations_create_exactly_the_tables(migrated: Settings) -> None:
    engine = make_engine(migrated.database_url)
    try:
        assert differences(engine) == []
        config: Any = _config(engine)
        command.downgrade(config, "base")
        assert current_revision(engine) is None
        command.upgrade(config, "head")
        assert current_revision(engine) == head_revision()
        assert differences(engine) == []
    finally:
        engine.dispose()


def test_the_head_read_from_the_migration_files_is_alembics() -> None:
    from alembic.script import ScriptDirectory

    from ir.adapters.db.schema import MIGRATIONS, head_revision

    assert head_revision() == ScriptDirectory(str(MIGRATIONS)).get_current_head()
