"""Signing in over the API, on SQLite and PostgreSQL: session cookies (HttpOnly, SameSite=Lax, expiring,
ended by signing out), CSRF tokens on every change made with a session, API tokens (scoped, expiring,
revocable), disabled users, the lockout after five wrong passwords, the per-source rate limit, and the
audit of failures: one record each, up to five per source and minute, the rest summed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ir.adapters.clock import SimulatedClock
from ir.bootstrap import App, build
from ir.entrypoints.http.app import create_app
from ir.entrypoints.http.auth import COOKIE
from tests.conftest import decrypt_audit
from tests.integration.api_support import DATABASES, PASSWORD, Api, problem, served

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
M = timedelta(minutes=1)
_serial = itertools.count(1)


@dataclass
class Server:
    api: Api

    @property
    def app(self) -> App:
        return self.api.app

    @property
    def clock(self) -> SimulatedClock:
        return self.api.clock

    @property
    def client(self) -> TestClient:
        return self.api.client

    @property
    def admin(self) -> dict[str, str]:
        return self.api.bearer("admin")

    def user(self, prefix: str = "alice") -> str:
        """A commander of one's own (each test locks, disables or signs out its own users)."""
        name = f"{prefix}{next(_serial)}"
        self.api.add_user(name, ["commander"], token=False)
        return name

    def browser(self, host: str | None = None) -> TestClient:
        """Another browser (its own cookie jar), from its own address (the rate limit counts per address)."""
        return TestClient(self.client.app, client=(host or f"198.51.100.{next(_serial) % 250 + 1}", 50000))

    def login(self, browser: TestClient, user: str, password: str = PASSWORD) -> Any:
        return browser.post("/api/auth/login", json={"user": user, "password": password})

    def token(self, user: str, scopes: list[str], ttl: timedelta | None = None) -> tuple[str, dict[str, str]]:
        token_id, secret = self.api.token(user, scopes=scopes, ttl=ttl)
        return token_id, {"Authorization": f"Bearer {secret}"}

    def incident(self) -> int:
        return self.api.open()


@pytest.fixture(scope="module", params=DATABASES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    for api in served(request, tmp_path_factory):
        yield Server(api)


def set_cookie(answer: Any) -> str:
    headers = [v for k, v in answer.headers.multi_items() if k.lower() == "set-cookie"]
    assert len(headers) == 1, headers
    return str(headers[0])


def test_the_session_cookie_is_http_only_lax_and_ends_with_the_session(server: Server) -> None:
    user, browser = server.user(), server.browser()
    answer = server.login(browser, user)
    assert answer.status_code == 200, answer.text
    cookie = set_cookie(answer)
    flags = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")}
    assert cookie.startswith(f"{COOKIE}=")
    assert "httponly" in flags
    assert flags["samesite"].lower() == "samesite=lax"
    assert flags["path"] == "Path=/"
    assert flags["max-age"] == f"Max-Age={12 * 3600}"
    assert "secure" not in flags  # served over plain HTTP by default (IR_SECURE_COOKIES for HTTPS)
    assert browser.get("/api/me").json()["user"] == user
    server.clock.advance(timedelta(hours=11, minutes=59))
    assert browser.get("/api/me").status_code == 200
    server.clock.advance(timedelta(minutes=2))
    problem(browser.get("/api/me"), 401, detail="sign in")


def test_cookies_are_secure_when_served_over_https(server: Server) -> None:
    https = build(server.app.settings.model_copy(update={"secure_cookies": True}), clock=server.clock)
    try:
        with TestClient(create_app(app=https, background=False), client=("198.51.100.200", 50000)) as browser:
            cookie = set_cookie(server.login(browser, server.user()))
    finally:
        https.close()
    assert "secure" in [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in [part.strip().lower() for part in cookie.split(";")]


def test_a_forged_or_tampered_cookie_is_not_a_session(server: Server) -> None:
    browser = server.browser()
    server.login(browser, server.user())
    value = browser.cookies[COOKIE]
    stranger = server.browser()
    stranger.cookies.set(COOKIE, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    problem(stranger.get("/api/me"), 401)
    stranger.cookies.set(COOKIE, "made-up")
    problem(stranger.get("/api/me"), 401)


def test_every_change_made_with_a_session_carries_its_csrf_token(server: Server) -> None:
    user, browser = server.user(), server.browser()
    csrf = server.login(browser, user).json()["csrf"]
    iid = server.incident()
    note = {"text": "scrubbing holds"}
    assert browser.get(f"/api/incidents/{iid}").status_code == 200  # reads need none
    problem(browser.post(f"/api/incidents/{iid}/notes", json=note), 403, detail="CSRF")
    problem(browser.post(f"/api/incidents/{iid}/notes", json=note, headers={"x-csrf-token": "x" * 43}), 403)
    other = server.browser()
    other_csrf = server.login(other, user).json()["csrf"]
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
    assert server.api.version(iid) == 5


def test_signing_out_revokes_the_session(server: Server) -> None:
    user, browser = server.user(), server.browser()
    csrf = server.login(browser, user).json()["csrf"]
    value = browser.cookies[COOKIE]
    problem(browser.post("/api/auth/logout"), 403, detail="CSRF")
    out = browser.post("/api/auth/logout", headers={"x-csrf-token": csrf})
    assert out.status_code == 204
    assert f'{COOKIE}=""' in set_cookie(out) or "Max-Age=0" in set_cookie(out)
    problem(browser.get("/api/me"), 401)
    replay = server.browser()
    replay.cookies.set(COOKIE, value)
    problem(replay.get("/api/me"), 401)
    actions = [r["action"] for r in decrypt_audit(server.app) if r.get("subject") == f"user:{user}"]
    assert actions.count("signin.ok") == 1
    assert actions.count("signout") == 1


def test_a_disabled_user_loses_sessions_and_tokens(server: Server) -> None:
    user, browser = server.user(), server.browser()
    server.login(browser, user)
    _id, token = server.token(user, ["read", "write"])
    assert browser.get("/api/me").status_code == 200
    assert server.client.get("/api/me", headers=token).status_code == 200
    assert server.client.post(f"/api/users/{user}/disable", headers=server.admin).status_code == 200
    problem(browser.get("/api/me"), 401)
    problem(server.client.get("/api/me", headers=token), 401)
    problem(server.login(server.browser(), user), 401, detail="disabled")
    assert server.client.post(f"/api/users/{user}/enable", headers=server.admin).status_code == 200
    problem(browser.get("/api/me"), 401)  # what was ended stays ended
    problem(server.client.get("/api/me", headers=token), 401)
    assert server.login(server.browser(), user).status_code == 200


def test_a_new_password_signs_out_every_other_session(server: Server) -> None:
    user, mine, stolen = server.user(), server.browser(), server.browser()
    csrf = server.login(mine, user).json()["csrf"]
    server.login(stolen, user)
    changed = mine.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": "a much newer passphrase"},
        headers={"x-csrf-token": csrf},
    )
    assert changed.status_code == 200, changed.text
    assert mine.get("/api/me").status_code == 200  # the session that made the change stays
    problem(stolen.get("/api/me"), 401)  # whoever knew the old password is out
    again = server.browser()
    server.login(again, user, "a much newer passphrase")
    assert server.client.post(f"/api/users/{user}/reset", headers=server.admin).status_code == 200
    problem(mine.get("/api/me"), 401)  # a reset by an administrator ends them all
    problem(again.get("/api/me"), 401)


def test_token_scopes_expiry_and_revocation(server: Server) -> None:
    user, iid = server.user(), server.incident()
    _id, reader = server.token(user, ["read"])
    assert server.client.get(f"/api/incidents/{iid}", headers=reader).status_code == 200
    problem(
        server.client.post(f"/api/incidents/{iid}/notes", json={"text": "x"}, headers=reader), 403, detail="only read"
    )
    _id, writer = server.token(user, ["read", "write"], ttl=timedelta(hours=1))
    assert server.client.post(f"/api/incidents/{iid}/notes", json={"text": "x"}, headers=writer).status_code == 201
    server.clock.advance(timedelta(hours=1, seconds=1))
    problem(server.client.get("/api/me", headers=writer), 401, detail="expired")
    revoked_id, revoked = server.token(user, ["read"])
    assert server.client.get("/api/me", headers=revoked).status_code == 200
    assert server.client.delete(f"/api/tokens/{revoked_id}", headers=server.admin).status_code == 204
    problem(server.client.get("/api/me", headers=revoked), 401)
    for header in ("Bearer", "Bearer ", "Bearer ir_0000_nope", "Basic YWxpY2U6cGFzcw=="):
        problem(server.client.get("/api/me", headers={"Authorization": header}), 401)


def test_five_wrong_passwords_lock_the_account_even_against_the_right_one(server: Server) -> None:
    user, browser = server.user(), server.browser()
    for _ in range(4):
        problem(server.login(browser, user, "not the password"), 401, detail="wrong")
    problem(server.login(browser, user, "not the password"), 401, detail="locked")
    problem(server.login(browser, user), 401, detail="locked")
    server.clock.advance(timedelta(minutes=14))
    problem(server.login(browser, user), 401, detail="locked")
    server.clock.advance(timedelta(minutes=1, seconds=1))
    assert server.login(browser, user).status_code == 200
    # a success starts the count again
    for _ in range(4):
        problem(server.login(browser, user, "not the password"), 401, detail="wrong")
    assert server.login(browser, user).status_code == 200


def test_sign_ins_are_rate_limited_per_source(server: Server) -> None:
    user, attacker = server.user(), server.browser("203.0.113.66")
    for _ in range(10):
        problem(server.login(attacker, "mallory", "guess"), 401)
    limited = server.login(attacker, user)  # even the right password, for another user
    body = problem(limited, 429)
    retry = int(limited.headers["Retry-After"])
    assert 1 <= retry <= 61
    assert body["retry_after"] == retry
    assert server.login(server.browser(), user).status_code == 200  # another source is not limited
    server.clock.advance(timedelta(seconds=61))
    assert server.login(attacker, user).status_code == 200


def test_failed_sign_ins_are_audited_one_by_one_then_summed(server: Server) -> None:
    server.clock.advance(M)  # a minute of its own
    minute = server.clock.now().strftime("%Y-%m-%dT%H:%M")
    user = server.user()
    flood, other = server.browser("203.0.113.5"), server.browser("203.0.113.6")
    for n in range(8):
        problem(server.login(flood, f"guess{n}", "x"), 401)
    for _ in range(2):
        problem(server.login(other, user, "x"), 401)
    server.clock.advance(M)
    problem(server.login(flood, "guess9", "x"), 401)  # the next minute's first failure
    records = decrypt_audit(server.app)
    failed = [r for r in records if r["action"] == "signin.failed"]
    by_source = {
        source: sorted(r["payload"]["user"] for r in failed if r["payload"]["source"] == source)
        for source in ("203.0.113.5", "203.0.113.6")
    }
    assert by_source == {
        "203.0.113.5": ["guess0", "guess1", "guess2", "guess3", "guess4", "guess9"],
        "203.0.113.6": [user, user],
    }
    assert all(
        r["payload"]["outcome"] in ("unknown", "wrong") for r in failed if r["payload"]["source"] == "203.0.113.5"
    )
    summed = [
        r["payload"] for r in records if r["action"] == "signin.failures" and r["subject"] == "source:203.0.113.5"
    ]
    assert summed == [{"source": "203.0.113.5", "minute": minute, "failures": 8}]
    assert not [r for r in records if r["action"] == "signin.failures" and r["subject"] == "source:203.0.113.6"]
