"""Signing in: passwords with lockout, a per-source rate limit, sessions, API tokens, and the audit of
every sign-in, sign-out and failure (a flood of failures is recorded in aggregate per source and minute,
so an attack cannot flood the log)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from ir.app.ports import UnitOfWorkFactory, Users
from ir.domain.clocks import Clock
from ir.domain.commands import Actor
from ir.domain.errors import IrError, NotAuthenticated, NotPermitted


class TooManyAttempts(IrError):
    exit_code = 5
    http_status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Appender(Protocol):
    def append(self, *, action: str, actor: str, subject: str, payload: dict[str, Any], at: datetime) -> None: ...


@dataclass(frozen=True, slots=True)
class Principal:
    actor: Actor
    display_name: str
    lang: str
    session_id: str | None = None
    csrf: str | None = None
    scopes: frozenset[str] = frozenset({"read", "write"})
    must_change_password: bool = False


@dataclass(slots=True)
class SignIn:
    uow: UnitOfWorkFactory
    clock: Clock
    appender: Appender
    session_ttl: timedelta = timedelta(hours=12)
    reader: Callable[[], AbstractContextManager[Users]] | None = None  # yields the users, read only
    touch_every: timedelta = timedelta(minutes=1)  # how often a token's last use is written
    lock_after: int = 5
    lock_for: timedelta = timedelta(minutes=15)
    per_source_per_minute: int = 10
    individually_audited: int = 5  # failures per source and minute recorded one by one; the rest summed
    # A token checked against the database is trusted from memory for `recheck` seconds, unless a change of
    # users, tokens or sessions was committed since (this process at once; another process within `recheck`)
    recheck: float = 2.0
    users_version: Callable[[], int] = lambda: 0
    _tokens: dict[str, tuple[float, int, Any]] = field(default_factory=dict)  # secret: (checked, version, match)
    _recent: dict[str, deque[datetime]] = field(default_factory=lambda: defaultdict(deque))
    _failures: dict[tuple[str, str], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _limit(self, source: str, now: datetime) -> None:
        with self._lock:
            window = self._recent[source]
            while window and now - window[0] > timedelta(minutes=1):
                window.popleft()
            if len(window) >= self.per_source_per_minute:
                retry = int(60 - (now - window[0]).total_seconds()) + 1
                raise TooManyAttempts("too many sign-in attempts from here: wait a minute", retry)
            window.append(now)

    def _audit_failure(self, source: str, user: str, outcome: str, now: datetime) -> None:
        minute = now.strftime("%Y-%m-%dT%H:%M")
        with self._lock:
            stale = [k for k in self._failures if k[1] != minute]
            summaries = [(k, self._failures.pop(k)) for k in stale]
            key = (source, minute)
            count = self._failures.get(key, 0) + 1
            self._failures[key] = count
        for (src, at_minute), n in summaries:
            if n > self.individually_audited:
                self.appender.append(
                    action="signin.failures",
                    actor="system:signin",
                    subject=f"source:{src}",
                    payload={"source": src, "minute": at_minute, "failures": n},
                    at=now,
                )
        if count <= self.individually_audited:
            self.appender.append(
                action="signin.failed",
                actor=f"source:{source}",
                subject=f"user:{user}",
                payload={"user": user, "outcome": outcome, "source": source},
                at=now,
            )

    def password(self, user_id: str, password: str, *, source: str) -> Principal:
        now = self.clock.now()
        self._limit(source, now)
        with self.uow() as uow:
            user, outcome = uow.users.verify(user_id, password, lock_after=self.lock_after, lock_for=self.lock_for)
            uow.commit()  # the failure count and any lockout are kept
        if user is None or outcome != "ok":
            self._audit_failure(source, user_id, outcome, now)
            if outcome == "locked":
                raise NotAuthenticated("this account is locked for a while after repeated failures")
            if outcome == "disabled":
                raise NotAuthenticated("this account is disabled")
            raise NotAuthenticated("wrong user name or password")
        with self.uow() as uow:
            session_id, csrf = uow.users.open_session(user.id, self.session_ttl)
            uow.audit.record(
                action="signin.ok",
                actor=user.id,
                subject=f"user:{user.id}",
                payload={"source": source, "method": "password"},
                at=now,
            )
            uow.commit()
        return Principal(
            Actor(user.id, user.roles),
            user.display_name,
            user.lang,
            session_id,
            csrf,
            must_change_password=user.must_change_password,
        )

    @contextmanager
    def _reading(self) -> Iterator[Users]:
        """Users read without a write transaction (a sign-in check must not queue behind writers)."""
        if self.reader is None:
            with self.uow() as uow:
                yield uow.users
            return
        with self.reader() as users:
            yield users

    def session(self, session_id: str) -> Principal:
        with self._reading() as users:
            found = users.session(session_id)
        if found is None:
            raise NotAuthenticated("sign in again: the session has ended")
        user, csrf = found
        return Principal(
            Actor(user.id, user.roles),
            user.display_name,
            user.lang,
            session_id,
            csrf,
            must_change_password=user.must_change_password,
        )

    def sign_out(self, principal: Principal) -> None:
        if principal.session_id is None:
            return
        with self.uow() as uow:
            uow.users.close_session(principal.session_id)
            uow.audit.record(
                action="signout",
                actor=principal.actor.id,
                subject=f"user:{principal.actor.id}",
                payload={},
                at=self.clock.now(),
            )
            uow.commit()

    def token(self, secret: str, *, source: str) -> Principal:
        """The principal of an API token. Its last use is recorded, at most once per `touch_every`."""
        found = self._remembered(secret)
        if found is None:
            version = self.users_version()  # read before the database: a change committed meanwhile shows
            with self._reading() as users:
                found = users.find_token(secret)
            if found is None:
                self._audit_failure(source, "token", "bad token", self.clock.now())
                raise NotAuthenticated("the API token is unknown, expired or revoked")
            self._remember(secret, found, version)
        now = self.clock.now()
        if found.last_used_at is None or now - found.last_used_at >= self.touch_every:
            with self.uow() as uow:
                if uow.users.touch_token(found.id, every=self.touch_every):
                    uow.commit()
            self._note_use(secret, replace(found, last_used_at=now))
        return _token_principal(found)

    def remembered_token(self, secret: str) -> Principal | None:
        """The principal of a token checked a moment ago, if nothing needs the database (no query, no write):
        callers on an event loop try this before handing `token` to a worker thread."""
        found = self._remembered(secret)
        if found is None or found.last_used_at is None or self.clock.now() - found.last_used_at >= self.touch_every:
            return None
        return _token_principal(found)

    def _remembered(self, secret: str) -> Any:
        if self.recheck <= 0:
            return None
        entry = self._tokens.get(secret)
        if entry is None:
            return None
        checked, version, found = entry
        if time.monotonic() - checked > self.recheck or version != self.users_version():
            return None
        if found.expires_at is not None and found.expires_at <= self.clock.now():
            return None
        return found

    def _note_use(self, secret: str, found: Any) -> None:
        """The remembered check, its last use now recorded."""
        with self._lock:
            entry = self._tokens.get(secret)
            if entry is not None:
                self._tokens[secret] = (entry[0], entry[1], found)

    def _remember(self, secret: str, found: Any, version: int) -> None:
        with self._lock:
            if len(self._tokens) >= 1000:  # a bound on memory: remembering is only a shortcut
                self._tokens.clear()
            self._tokens[secret] = (time.monotonic(), version, found)

    def refused(self, principal: Principal | None, what: str, source: str) -> None:
        """Every permission refused is recorded."""
        self.appender.append(
            action="permission.refused",
            actor=principal.actor.id if principal else f"source:{source}",
            subject="permission",
            payload={"what": what, "source": source},
            at=self.clock.now(),
        )


def _token_principal(found: Any) -> Principal:
    user = found.user
    return Principal(
        Actor(user.id, user.roles),
        user.display_name,
        user.lang,
        scopes=found.scopes,
        must_change_password=user.must_change_password,
    )


def require_scope(principal: Principal, write: bool) -> None:
    if write and "write" not in principal.scopes:
        raise NotPermitted("this API token may only read")
