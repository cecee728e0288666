"""An API token's last use is recorded, to the minute: one write a minute for a busy token, not one a
request (the check itself only reads). A token checked a moment ago is trusted from memory for a short
while, ended at once by a change made through the server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from ir.adapters.db.tables import api_tokens
from ir.adapters.db.users import SqlUsers
from ir.app.signin import SignIn
from ir.bootstrap import App, build
from ir.domain.errors import NotAuthenticated
from tests.integration.api_support import DATABASES, Api, served


@pytest.fixture(scope="module", params=DATABASES)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from served(request, tmp_path_factory)


def last_used(api: Api, token_id: str) -> datetime | None:
    with api.app.db.connection() as conn:
        found: datetime | None = conn.execute(
            select(api_tokens.c.last_used_at).where(api_tokens.c.id == token_id)
        ).scalar_one()
    return found


def test_a_tokens_last_use_is_written_at_most_once_a_minute(api: Api) -> None:
    token_id, secret = api.token("observer", scopes=["read"])
    headers = {"Authorization": f"Bearer {secret}"}
    assert last_used(api, token_id) is None

    assert api.client.get("/api/incidents", headers=headers).status_code == 200
    first = last_used(api, token_id)
    assert first == api.clock.now()

    api.clock.advance(timedelta(seconds=59))
    for _ in range(3):
        assert api.client.get("/api/incidents", headers=headers).status_code == 200
    assert last_used(api, token_id) == first  # within the minute: not written again

    api.clock.advance(timedelta(seconds=1))
    assert api.client.get("/api/incidents", headers=headers).status_code == 200
    assert last_used(api, token_id) == api.clock.now()


def test_a_refused_token_is_not_marked_used(api: Api) -> None:
    token_id, secret = api.token("observer", scopes=["read"])
    with api.app.db.uow() as uow:
        uow.users.revoke_token(token_id)
        uow.commit()
    answer = api.client.get("/api/incidents", headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 401
    assert last_used(api, token_id) is None


def test_the_administrators_list_of_tokens_shows_their_last_use(api: Api) -> None:
    token_id, secret = api.token("observer", scopes=["read"])
    assert api.client.get("/api/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    listed = api.client.get("/api/tokens", params={"user": "observer"}, headers=api.bearer("admin")).json()
    found = next(t for t in listed["items"] if t["id"] == token_id)
    assert found["last_used_at"] is not None
    assert datetime.fromisoformat(found["last_used_at"]) == api.clock.now()


def test_checking_a_token_waits_for_no_writer(api: Api) -> None:
    """A request with a token (used within the minute) is answered while a unit of work holds the write
    lock: the check reads on its own connection, it no longer opens a write transaction."""
    _token_id, secret = api.token("observer", scopes=["read"])
    headers = {"Authorization": f"Bearer {secret}"}
    assert api.client.get("/api/incidents", headers=headers).status_code == 200  # last use: now
    answers: list[int] = []
    with api.app.db.uow():  # a writer, holding the lock (and, on SQLite, the database's write lock)
        asking = threading.Thread(
            target=lambda: answers.append(api.client.get("/api/incidents", headers=headers).status_code)
        )
        asking.start()
        asking.join(timeout=60)  # a liveness guard, not a measurement: it used to wait for the writer
        assert answers == [200]


def test_a_token_revoked_or_its_user_disabled_through_the_server_is_refused_at_once(api: Api) -> None:
    """A token checked a moment ago is trusted from memory, but not past a change made through the server."""
    api.add_user("night-shift", ["observer"], token=False)
    token_id, secret = api.token("night-shift", scopes=["read"])
    headers = {"Authorization": f"Bearer {secret}"}
    assert api.client.get("/api/me", headers=headers).status_code == 200  # checked: remembered now
    assert api.client.delete(f"/api/tokens/{token_id}", headers=api.bearer("admin")).status_code == 204
    assert api.client.get("/api/me", headers=headers).status_code == 401

    _other_id, other = api.token("night-shift", scopes=["read"])
    headers = {"Authorization": f"Bearer {other}"}
    assert api.client.get("/api/me", headers=headers).status_code == 200
    assert api.client.post("/api/users/night-shift/disable", headers=api.bearer("admin")).status_code == 200
    assert api.client.get("/api/me", headers=headers).status_code == 401


def test_a_token_revoked_by_another_process_is_refused_within_the_recheck_time(api: Api) -> None:
    """Another process (the command line on the same database) changes nothing in the server's memory: its
    revocation is seen once the remembered check is older than `recheck` seconds."""
    token_id, secret = api.token("observer", scopes=["read"])
    app = api.app
    signin = SignIn(
        uow=app.db.uow,
        clock=app.clock,
        appender=app.appender,
        reader=lambda: _reader(app),
        users_version=lambda: app.db.users_version,
        recheck=0.5,
    )
    assert signin.token(secret, source="test").actor.id == "observer"
    other = build(app.settings, clock=api.clock)  # another process: its own engine, caches and memory
    try:
        with other.db.uow() as uow:
            uow.users.revoke_token(token_id)
            uow.commit()
    finally:
        other.close()
    remembered = signin.remembered_token(secret)
    assert remembered is not None and remembered.actor.id == "observer"  # within the documented window
    time.sleep(0.6)
    assert signin.remembered_token(secret) is None
    with pytest.raises(NotAuthenticated):
        signin.token(secret, source="test")


@contextmanager
def _reader(app: App) -> Iterator[SqlUsers]:
    with app.db.connection() as conn:
        yield SqlUsers(conn, now=app.clock.now())
