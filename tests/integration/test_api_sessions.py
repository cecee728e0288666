"""Signing in over the API, on SQLite and PostgreSQL: session cookies (HttpOnly, SameSite=Lax, expiring,
ended by signing out), CSRF tokens on every change made with a session, API tokens (scoped, expiring,
revocable), disabled users, the lockout after five wrong passwords, the per-source rate limit, and the
audit of failures: one record each, up to five per source and minute, the rest summed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ir.adapters.clock import SimulatedClock
from ir.bootstrap import App
from ir.entrypoints.http.app import create_app
from ir.entrypoints.http.auth import COOKIE
from tests.conftest import AppFactory, decrypt_audit
from tests.integration.api_support import LOCAL, PASSWORD, cheap_hashing, problem

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
M = timedelta(minutes=1)


@pytest.fixture(autouse=True, scope="module")
def _cheap_hashing() -> Iterator[None]:
    with cheap_hashing():
        yield


@dataclass
class Server:
    app: App
    clock: SimulatedClock
    client: TestClient
    admin: dict[str, str]  # an administrator's token header

    def browser(self, host: str = "198.51.100.7") -> TestClient:
        """Another browser (its own cookie jar), from its own address."""
        return TestClient(self.client.app, client=(host, 50000))

    def login(self, browser: TestClient, user: str = "alice", password: str = PASSWORD) -> Any:
        return browser.post("/api/auth/login", json={"user": user, "password": password})

    def token(self, user: str, scopes: list[str], ttl: timedelta | None = None) -> tuple[str, dict[str, str]]:
        with self.app.db.uow() as uow:
            token_id, secret = uow.users.issue_token(user, name="t", scopes=scopes, ttl=ttl)
            uow.commit()
        return token_id, {"Authorization": f"Bearer {secret}"}

    def incident(self) -> int:
        from ir.domain.commands import OpenIncident

        return int(self.app.handlers.handle(OpenIncident(actor=LOCAL, playbook="ddos", title="t")).incident_id)


def start(app: App, clock: SimulatedClock) -> Iterator[Server]:
    with app.db.uow() as uow:
        uow.users.add("root", display_name="root", password=PASSWORD, roles=["admin"])
        uow.users.add("alice", display_name="Alice", password=PASSWORD, roles=["commander"])
        _id, secret = uow.users.issue_token("root", name="admin", scopes=["read", "write"], ttl=None)
        uow.commit()
    try:
        with TestClient(create_app(app=app, background=False)) as client:
            yield Server(app, clock, client, {"Authorization": f"Bearer {secret}"})
    finally:
        app.close()


@pytest.fixture
def server(app: App, clock: SimulatedClock) -> Iterator[Server]:
    yield from start(app, clock)


def set_cookie(answer: Any) -> str:
    headers = [v for k, v in answer.headers.multi_items() if k.lower() == "set-cookie"]
    assert len(headers) == 1, headers
    return str(headers[0])


def test_the_session_cookie_is_http_only_lax_and_ends_with_the_session(server: Server) -> None:
    browser = server.browser()
    answer = server.login(browser)
    assert answer.status_code == 200, answer.text
    cookie = set_cookie(answer)
    flags = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")}
    assert cookie.startswith(f"{COOKIE}=")
    assert "httponly" in flags
    assert flags["samesite"].lower() == "samesite=lax"
    assert flags["path"] == "Path=/"
    assert flags["max-age"] == f"Max-Age={12 * 3600}"
    assert "secure" not in flags  # served over plain HTTP by default (IR_SECURE_COOKIES for HTTPS)
    assert browser.get("/api/me").json()["user"] == "alice"
    server.clock.advance(timedelta(hours=11, minutes=59))
    assert browser.get("/api/me").status_code == 200
    server.clock.advance(timedelta(minutes=2))
    problem(browser.get("/api/me"), 401, detail="sign in")


def test_cookies_are_secure_when_served_over_https(make_app: AppFactory, clock: SimulatedClock) -> None:
    for server in start(make_app(secure_cookies=True), clock):
        cookie = set_cookie(server.login(server.browser()))
        assert "secure" in [part.strip().lower() for part in cookie.split(";")]


def test_a_forged_or_tampered_cookie_is_not_a_session(server: Server) -> None:
    browser = server.browser()
    server.login(browser)
    value = browser.cookies[COOKIE]
    stranger = server.browser()
    stranger.cookies.set(COOKIE, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    problem(stranger.get("/api/me"), 401)
    stranger.cookies.set(COOKIE, "made-up")
    problem(stranger.get("/api/me"), 401)


def test_every_change_made_with_a_session_carries_its_csrf_token(server: Server) -> None:
    browser = server.browser()
    csrf = server.login(browser).json()["csrf"]
    iid = server.incident()
    note = {"text": "scrubbing holds"}
    assert browser.get(f"/api/incidents/{iid}").status_code == 200  # reads need none
    problem(browser.post(f"/api/incidents/{iid}/notes", json=note), 403, detail="CSRF")
    problem(browser.post(f"/api/incidents/{iid}/notes", json=note, headers={"x-csrf-token": "x" * 43}), 403)
    other = server.browser("198.51.100.8")
    other_csrf = server.login(other).json()["csrf"]
    assert other_csrf != csrf
    problem(browser.post(f"/api/incidents/{iid}/notes", json=note, headers={"x-csrf-token": other_csrf}), 403)
    assert browser.post(f"/api/incidents/{iid}/notes", json=note, headers={"x-csrf-token": csrf}).status_code == 201
    upload = browser.post(
        f"/api/incidents/{iid}/steps/scrubbing/evidence",
        files={"file": ("graph.png", b"PNG", "image/png")},
        data={"csrf": csrf},
    )
    assert upload.status_code == 200, upload.text
    # a token is no session: no CSRF token, and none needed
    assert server.client.post(f"/api/incidents/{iid}/notes", json=note, headers=server.admin).status_code == 201


def test_signing_out_revokes_the_session(server: Server) -> None:
    browser = server.browser()
    csrf = server.login(browser).json()["csrf"]
    value = browser.cookies[COOKIE]
    problem(browser.post("/api/auth/logout"), 403, detail="CSRF")
    out = browser.post("/api/auth/logout", headers={"x-csrf-token": csrf})
    assert out.status_code == 204
    assert f'{COOKIE}=""' in set_cookie(out) or "Max-Age=0" in set_cookie(out)
    replay = server.browser()
    replay.cookies.set(COOKIE, value)
    problem(replay.get("/api/me"), 401)
    actions = [r["action"] for r in decrypt_audit(server.app) if r.get("subject") == "user:alice"]
    assert actions.count("signin.ok") == 1
    assert actions.count("signout") == 1


def test_a_disabled_user_loses_sessions_and_tokens(server: Server) -> None:
    browser = server.browser()
    server.login(browser)
    _id, token = server.token("alice", ["read", "write"])
    assert browser.get("/api/me").status_code == 200
    assert server.client.get("/api/me", headers=token).status_code == 200
    assert server.client.post("/api/users/alice/disable", headers=server.admin).status_code == 200
    problem(browser.get("/api/me"), 401)
    problem(server.client.get("/api/me", headers=token), 401)
    problem(server.login(server.browser("198.51.100.9")), 401, detail="disabled")
    assert server.client.post("/api/users/alice/enable", headers=server.admin).status_code == 200
    problem(browser.get("/api/me"), 401)  # what was ended stays ended
    problem(server.client.get("/api/me", headers=token), 401)
    assert server.login(server.browser("198.51.100.10")).status_code == 200


def test_token_scopes_expiry_and_revocation(server: Server) -> None:
    iid = server.incident()
    _id, reader = server.token("alice", ["read"])
    assert server.client.get(f"/api/incidents/{iid}", headers=reader).status_code == 200
    problem(
        server.client.post(f"/api/incidents/{iid}/notes", json={"text": "x"}, headers=reader), 403, detail="only read"
    )
    token_id, writer = server.token("alice", ["read", "write"], ttl=timedelta(hours=1))
    assert server.client.post(f"/api/incidents/{iid}/notes", json={"text": "x"}, headers=writer).status_code == 201
    server.clock.advance(timedelta(hours=1, seconds=1))
    problem(server.client.get("/api/me", headers=writer), 401, detail="expired")
    revoked_id, revoked = server.token("alice", ["read"])
    assert server.client.get("/api/me", headers=revoked).status_code == 200
    assert server.client.delete(f"/api/tokens/{revoked_id}", headers=server.admin).status_code == 204
    problem(server.client.get("/api/me", headers=revoked), 401)
    for header in ("Bearer", "Bearer ", "Bearer ir_0000_nope", "Basic YWxpY2U6cGFzcw=="):
        problem(server.client.get("/api/me", headers={"Authorization": header}), 401)


def test_five_wrong_passwords_lock_the_account_even_against_the_right_one(server: Server) -> None:
    browser = server.browser()
    for _ in range(4):
        problem(server.login(browser, password="not the password"), 401, detail="wrong")
    problem(server.login(browser, password="not the password"), 401, detail="locked")
    problem(server.login(browser), 401, detail="locked")
    server.clock.advance(timedelta(minutes=14))
    problem(server.login(browser), 401, detail="locked")
    server.clock.advance(timedelta(minutes=1, seconds=1))
    assert server.login(browser).status_code == 200
    # a success starts the count again
    for _ in range(4):
        problem(server.login(browser, password="not the password"), 401, detail="wrong")
    assert server.login(browser).status_code == 200


def test_sign_ins_are_rate_limited_per_source(server: Server) -> None:
    attacker = server.browser("203.0.113.66")
    for _ in range(10):
        problem(server.login(attacker, user="mallory", password="guess"), 401)
    limited = server.login(attacker)  # even the right password, for another user
    body = problem(limited, 429)
    retry = int(limited.headers["Retry-After"])
    assert 1 <= retry <= 61
    assert body["retry_after"] == retry
    assert server.login(server.browser("198.51.100.20")).status_code == 200  # another source is not limited
    server.clock.advance(timedelta(seconds=61))
    assert server.login(attacker).status_code == 200


def test_failed_sign_ins_are_audited_one_by_one_then_summed(server: Server) -> None:
    minute = server.clock.now().strftime("%Y-%m-%dT%H:%M")
    flood, other = server.browser("203.0.113.5"), server.browser("203.0.113.6")
    for n in range(8):
        problem(server.login(flood, user=f"guess{n}", password="x"), 401)
    for _ in range(2):
        problem(server.login(other, user="alice", password="x"), 401)
    server.clock.advance(M)
    problem(server.login(flood, user="guess9", password="x"), 401)  # the next minute's first failure
    records = decrypt_audit(server.app)
    failed = [r for r in records if r["action"] == "signin.failed"]
    by_source = {
        source: sorted(r["payload"]["user"] for r in failed if r["payload"]["source"] == source)
        for source in ("203.0.113.5", "203.0.113.6")
    }
    assert by_source == {
        "203.0.113.5": ["guess0", "guess1", "guess2", "guess3", "guess4", "guess9"],
        "203.0.113.6": ["alice", "alice"],
    }
    assert all(r["payload"]["outcome"] in ("unknown", "wrong") for r in failed)
    summed = [r["payload"] for r in records if r["action"] == "signin.failures"]
    assert summed == [{"source": "203.0.113.5", "minute": minute, "failures": 8}]
