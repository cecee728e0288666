"""Shared fixtures: a migrated database on SQLite and on PostgreSQL, and the runner built on it.

`database_url` runs each test that uses it twice: on a SQLite file in the test's folder, and on a fresh
PostgreSQL database created for the test (and dropped after it) on the server IR_TEST_DATABASE_URL names.
Without IR_TEST_DATABASE_URL the PostgreSQL run is skipped, except under CI (CI set), where it fails: a
CI run that silently tested one database would be a lie. With IR_TEST_DATABASE_URL set and the server
unreachable, the test fails with the reason.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Table, create_engine, make_url, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from ir.adapters.audit.export import decrypt
from ir.adapters.audit.keys import DataKeys
from ir.adapters.clock import SimulatedClock
from ir.adapters.db.engine import make_engine
from ir.adapters.db.schema import upgrade
from ir.adapters.db.tables import audit_records
from ir.bootstrap import App, build
from ir.config import Settings
from ir.domain.commands import Actor

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOKS = ROOT / "playbooks"
PG_ENV = "IR_TEST_DATABASE_URL"

# 2026-10-01 09:00 in Shanghai: every test starts its simulated clock here.
T0 = datetime(2026, 10, 1, 1, 0, tzinfo=UTC)

AppFactory = Callable[..., App]


def _admin_engine(server_url: str) -> Engine:
    # CREATE/DROP DATABASE cannot run in a transaction; the database the URL names serves as the admin DB
    return create_engine(
        server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool, connect_args={"connect_timeout": 5}
    )


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database for one test, dropped afterwards."""
    server_url = os.environ.get(PG_ENV)
    if not server_url:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_ENV} is not set, and CI is: the PostgreSQL half of the suite must run in CI")
        pytest.skip(f"{PG_ENV} not set")
    url = make_url(server_url)
    where = url.render_as_string(hide_password=True)
    name = f"ir_t_{secrets.token_hex(6)}"
    admin = _admin_engine(server_url)
    try:
        conn = admin.connect()
    except OperationalError as exc:
        admin.dispose()
        pytest.fail(f"{PG_ENV}={where} is set but the PostgreSQL server is unreachable: {exc.orig}", pytrace=False)
    try:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        pytest.fail(f"cannot create the test database {name} on {where}: {exc}", pytrace=False)
    finally:
        conn.close()
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ir.db'}"
    url: str = request.getfixturevalue("pg_database")
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, data_dir=str(tmp_path), playbooks_dir=str(PLAYBOOKS))


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0)


@pytest.fixture
def migrated(settings: Settings) -> Iterator[Settings]:
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    yield settings


@pytest.fixture
def make_app(migrated: Settings, clock: SimulatedClock) -> Iterator[AppFactory]:
    """Build the runner again, as another process would (its own engine and caches); all disposed after."""
    built: list[App] = []

    def factory(**overrides: object) -> App:
        settings = migrated.model_copy(update=overrides) if overrides else migrated
        app = build(settings, clock=clock)
        built.append(app)
        return app

    yield factory
    for app in built:
        app.db.engine.dispose()


@pytest.fixture
def app(make_app: AppFactory) -> App:
    return make_app()


# -- helpers the runner's tests share ------------------------------------------------------------------

ACTOR = Actor(id="local:tester")


def table_rows(app: App, table: Table) -> list[dict[str, Any]]:
    """Every row of a table, in primary-key order (what a projection holds, to compare)."""
    key = list(table.primary_key.columns)
    with app.db.connection() as conn:
        return [dict(r) for r in conn.execute(select(table).order_by(*key)).mappings()]


def decrypt_audit(app: App) -> list[dict[str, Any]]:
    """Every audit record, decrypted as an auditor's tool does: data keys unwrapped afresh from the
    database with the key-encryption keys (none of the keys the writing process cached)."""
    keys = DataKeys(app.db.keys.keyring)
    out = []
    with app.db.connection() as conn:
        rows = conn.execute(select(audit_records).order_by(audit_records.c.created_at, audit_records.c.id)).all()
        for row in rows:
            found = decrypt(conn, keys, row.log_id, row)
            assert found.ok and found.content is not None, f"audit record {row.id} unreadable: {found.problem}"
            out.append(found.content)
    return out
