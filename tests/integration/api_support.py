"""What the API tests share: a served application on SQLite or PostgreSQL with one user per system role
(each with an API token), a simulated clock, and helpers to act as the command line does (local admin).

A module of tests shares one server per database (`served`), so hundreds of requests cost one migration;
each test opens its own incidents, so tests do not depend on one another.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import make_url, text
from sqlalchemy.exc import OperationalError

from ir.adapters.clock import SimulatedClock
from ir.adapters.db.engine import make_engine
from ir.adapters.db.schema import upgrade
from ir.bootstrap import App, build
from ir.config import Settings
from ir.domain import commands as c
from ir.entrypoints.http.app import create_app
from tests.builders import MINIMAL_PLAYBOOK
from tests.conftest import PG_ENV, PLAYBOOKS, T0, _admin_engine

ROLES = ("admin", "commander", "responder", "communications", "observer", "auditor")
PASSWORD = "correct horse battery staple"
LOCAL = c.Actor(id="local:tester")  # the command line: the administrator's rights
PROBLEM = "application/problem+json"
DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

# A playbook whose first step has an automated action awaiting the commander's confirmation; its host is
# not on the allow-list, so confirming it records a refused call (no network is used).
ACTION_PLAYBOOK = MINIMAL_PLAYBOOK.replace(
    "    due: detection + 15m\n",
    "    due: detection + 15m\n"
    "    action:\n"
    "      url: http://192.0.2.1/divert\n"
    "      timeout: 1s\n"
    "      retries: 0\n"
    "      confirm: true\n",
    1,
)


@contextmanager
def cheap_hashing() -> Iterator[None]:
    """argon2id at its cheapest parameters while the API's tests run: they are about who gets in, not how
    much a guess costs (the production parameters make each sign-in take a good part of a second)."""
    from argon2 import PasswordHasher

    from ir.adapters.db import users

    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    dummy = cheap.hash("ir: equalise the time of a sign-in for an unknown user")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users, "_HASHER", cheap)
        if hasattr(users, "_dummy"):  # the hash an unknown user's sign-in is checked against
            patch.setattr(users, "_dummy", lambda: dummy)
        if isinstance(getattr(users, "_DUMMY", None), str):
            patch.setattr(users, "_DUMMY", dummy)
        yield


@contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    """A migrated database for a module of tests: a SQLite file, or a fresh PostgreSQL database dropped after."""
    if kind == "sqlite":
        url = f"sqlite:///{folder / 'ir.db'}"
        _migrate(url)
        yield url
        return
    server_url = os.environ.get(PG_ENV)
    if not server_url:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_ENV} is not set, and CI is: the PostgreSQL half of the suite must run in CI")
        pytest.skip(f"{PG_ENV} not set")
    name = f"ir_t_{secrets.token_hex(6)}"
    admin = _admin_engine(server_url)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        pytest.fail(f"{PG_ENV} is set but the PostgreSQL server is unreachable: {exc.orig}", pytrace=False)
    try:
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        _migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _migrate(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def playbook_folder(folder: Path) -> Path:
    """The shipped library, plus the playbook with a confirmed action and a file that is no playbook."""
    books = folder / "playbooks"
    shutil.copytree(PLAYBOOKS, books)
    (books / "mini.yaml").write_text(ACTION_PLAYBOOK, encoding="utf-8")
    (books / "broken.yaml").write_text("id: Not An Id\nversion: 1\n", encoding="utf-8")
    return books


@dataclass
class Api:
    app: App
    client: TestClient
    clock: SimulatedClock
    tokens: dict[str, str] = field(default_factory=dict)  # user -> token secret (read and write)
    kept: dict[str, Any] = field(default_factory=dict)  # what a module's tests keep between them

    # -- who calls --------------------------------------------------------------------------------------

    def bearer(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def add_user(self, user: str, roles: list[str], *, must_change: bool = False, token: bool = True) -> None:
        with self.app.db.uow() as uow:
            uow.users.add(user, display_name=user, password=PASSWORD, roles=roles, must_change_password=must_change)
            if token:
                _id, secret = uow.users.issue_token(user, name="tests", scopes=["read", "write"], ttl=None)
                self.tokens[user] = secret
            uow.commit()

    def token(self, user: str, *, scopes: list[str], ttl: timedelta | None = None) -> tuple[str, str]:
        with self.app.db.uow() as uow:
            found = uow.users.issue_token(user, name="tests", scopes=scopes, ttl=ttl)
            uow.commit()
        return found

    def login(self, client: TestClient, user: str, password: str = PASSWORD) -> str:
        """Sign in with a password on this client (its cookie jar keeps the session); the CSRF token."""
        self.clock.advance(timedelta(minutes=1))  # the sign-in rate limit counts per source and minute
        answer = client.post("/api/auth/login", json={"user": user, "password": password})
        assert answer.status_code == 200, answer.text
        csrf = answer.json()["csrf"]
        assert isinstance(csrf, str)
        return csrf

    # -- acting as the command line does -----------------------------------------------------------------

    def do(self, command: c.Command) -> Any:
        return self.app.handlers.handle(command)

    def open(self, playbook: str = "ddos", *, level: str | None = "III", title: str = "DDoS on IDC-3") -> int:
        outcome = self.do(c.OpenIncident(actor=LOCAL, playbook=playbook, title=title, level=level))
        return int(outcome.incident_id)

    def version(self, incident_id: int) -> int:
        with self.app.db.read() as repo:
            return repo.get(incident_id).version


@contextmanager
def serve(url: str, folder: Path) -> Iterator[Api]:
    """The application on this database, served in-process, with one user (and token) per system role."""
    settings = Settings(database_url=url, data_dir=str(folder), playbooks_dir=str(playbook_folder(folder)))
    clock = SimulatedClock(T0)
    app = build(settings, clock=clock)
    api = Api(app=app, client=None, clock=clock)  # type: ignore[arg-type]
    for role in ROLES:
        api.add_user(role, [role])
    try:
        with TestClient(create_app(app=app, background=False)) as client:
            api.client = client
            yield api
    finally:
        app.close()


def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The body of a module-scoped fixture parametrized over DATABASES."""
    folder = tmp_path_factory.mktemp(f"api-{request.param}")
    with cheap_hashing(), database(str(request.param), folder) as url, serve(url, folder) as api:
        yield api


def problem(answer: Any, status: int, *, field: str | None = None, detail: str | None = None) -> dict[str, Any]:
    """Check a refusal: problem+json with this status (and field, and words of the detail)."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM), answer.headers["content-type"]
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    if field is not None:
        assert body.get("field") == field, body
    if detail is not None:
        assert detail in body["detail"], body
    return body
