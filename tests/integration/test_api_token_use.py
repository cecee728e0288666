"""An API token's last use is recorded, to the minute: one write a minute for a busy token, not one a
request (the check itself only reads)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from ir.adapters.db.tables import api_tokens
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
