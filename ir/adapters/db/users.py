"""Users, API tokens and sessions in the database; passwords hashed with argon2id."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, and_, func, insert, or_, select, update

from ir.adapters.db.tables import api_tokens, sessions, users
from ir.domain.errors import InvalidInput, InvalidTransition, NotFound

SYSTEM_ROLES = ("admin", "commander", "responder", "communications", "observer", "auditor")
_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters
_DUMMY: list[str] = []  # a hash to verify against for unknown users (made on first need, not at import)


def _dummy() -> str:
    if not _DUMMY:
        _DUMMY.append(_HASHER.hash("ir: equalise the time of a sign-in for an unknown user"))
    return _DUMMY[0]


@dataclass(frozen=True, slots=True)
class User:
    id: str
    display_name: str
    roles: frozenset[str]
    lang: str
    disabled: bool
    must_change_password: bool
    failed_attempts: int
    locked_until: datetime | None


@dataclass(frozen=True, slots=True)
class TokenMatch:
    user: User
    scopes: frozenset[str]
    id: str
    last_used_at: datetime | None
    expires_at: datetime | None = None


def _user(row: Any) -> User:
    return User(
        id=row.id,
        display_name=row.display_name,
        roles=frozenset(r for r in row.roles.split(",") if r),
        lang=row.lang,
        disabled=bool(row.disabled),
        must_change_password=bool(row.must_change_password),
        failed_attempts=int(row.failed_attempts),
        locked_until=row.locked_until,
    )


def check_roles(roles: list[str]) -> list[str]:
    unknown = [r for r in roles if r not in SYSTEM_ROLES]
    if unknown or not roles:
        raise InvalidInput(
            f"roles are some of {', '.join(SYSTEM_ROLES)}; got {', '.join(roles) or 'none'}", field="roles"
        )
    return roles


def check_password(password: str) -> str:
    if len(password) < 12:
        raise InvalidInput("a password has at least 12 characters", field="password")
    if len(password) > 1024:
        raise InvalidInput("a password has at most 1,024 characters", field="password")
    return password


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SqlUsers:
    def __init__(self, conn: Connection, *, now: datetime) -> None:
        self.conn = conn
        self.now = now
        self.changed = False  # who may sign in, as what, has changed: checks remembered in memory are stale

    # -- users ----------------------------------------------------------------------------------------

    def count(self) -> int:
        return int(self.conn.execute(select(func.count()).select_from(users)).scalar_one())

    def get(self, user_id: str) -> User | None:
        row = self.conn.execute(select(users).where(users.c.id == user_id)).first()
        return _user(row) if row else None

    def all(self) -> list[User]:
        return [_user(r) for r in self.conn.execute(select(users).order_by(users.c.id))]

    def add(
        self,
        user_id: str,
        *,
        display_name: str,
        password: str,
        roles: list[str],
        lang: str = "zh-CN",
        must_change_password: bool = False,
    ) -> User:
        if not user_id or len(user_id) > 64 or not all(c.isalnum() or c in "._-@" for c in user_id):
            raise InvalidInput("a user name is 1-64 letters, digits, '.', '_', '-' or '@'", field="user")
        if self.get(user_id) is not None:
            raise InvalidTransition(f"a user '{user_id}' already exists")
        self.conn.execute(
            insert(users).values(
                id=user_id,
                display_name=display_name or user_id,
                password_hash=_HASHER.hash(check_password(password)),
                roles=",".join(check_roles(roles)),
                lang=lang if lang in ("zh-CN", "en") else "zh-CN",
                disabled=False,
                must_change_password=must_change_password,
                failed_attempts=0,
                locked_until=None,
                created_at=self.now,
                updated_at=self.now,
            )
        )
        found = self.get(user_id)
        assert found is not None
        return found

    def set_password(
        self, user_id: str, password: str, *, must_change: bool = False, keep_session: str | None = None
    ) -> None:
        """A new password ends every other open session of the user: whoever knew the old one is signed
        out. `keep_session` is the session making the change, which stays signed in."""
        self._require(user_id)
        self._end_sessions(user_id, keep=keep_session)
        self.conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(
                password_hash=_HASHER.hash(check_password(password)),
                must_change_password=must_change,
                failed_attempts=0,
                locked_until=None,
                updated_at=self.now,
            )
        )

    def set_disabled(self, user_id: str, disabled: bool) -> None:
        self._require(user_id)
        self.changed = True
        self.conn.execute(update(users).where(users.c.id == user_id).values(disabled=disabled, updated_at=self.now))
        if disabled:
            self._end_sessions(user_id)
            self.conn.execute(
                update(api_tokens)
                .where(and_(api_tokens.c.user_id == user_id, api_tokens.c.revoked_at.is_(None)))
                .values(revoked_at=self.now)
            )

    def _end_sessions(self, user_id: str, *, keep: str | None = None) -> None:
        self.changed = True
        open_ones = and_(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
        if keep is not None:
            open_ones = and_(open_ones, sessions.c.id != keep)
        self.conn.execute(update(sessions).where(open_ones).values(revoked_at=self.now))

    def set_roles(self, user_id: str, roles: list[str]) -> None:
        self._require(user_id)
        self.changed = True
        self.conn.execute(update(users).where(users.c.id == user_id).values(roles=",".join(check_roles(roles))))

    def _require(self, user_id: str) -> User:
        found = self.get(user_id)
        if found is None:
            raise NotFound(f"no user '{user_id}'")
        return found

    def verify(self, user_id: str, password: str, *, lock_after: int, lock_for: timedelta) -> tuple[User | None, str]:
        """(user, outcome): outcome is ok, unknown, wrong, locked or disabled. Failures count towards a lockout."""
        row = self.conn.execute(select(users).where(users.c.id == user_id)).first()
        if row is None:
            with contextlib.suppress(VerificationError):  # the same work as for a real user: no timing oracle
                _HASHER.verify(_dummy(), password)
            return None, "unknown"
        user = _user(row)
        if user.disabled:
            return user, "disabled"
        if user.locked_until is not None and user.locked_until > self.now:
            return user, "locked"
        try:
            _HASHER.verify(row.password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            attempts = user.failed_attempts + 1
            locked = self.now + lock_for if attempts >= lock_after else None
            self.conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(failed_attempts=0 if locked else attempts, locked_until=locked)
            )
            return user, "locked" if locked else "wrong"
        values: dict[str, Any] = {"failed_attempts": 0, "locked_until": None}
        if _HASHER.check_needs_rehash(row.password_hash):
            values["password_hash"] = _HASHER.hash(password)
        self.conn.execute(update(users).where(users.c.id == user_id).values(**values))
        return user, "ok"

    # -- sessions -------------------------------------------------------------------------------------

    def open_session(self, user_id: str, ttl: timedelta) -> tuple[str, str]:
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self.conn.execute(
            insert(sessions).values(
                id=session_id, user_id=user_id, csrf=csrf, created_at=self.now, expires_at=self.now + ttl
            )
        )
        return session_id, csrf

    def session(self, session_id: str) -> tuple[User, str] | None:
        row = self.conn.execute(
            select(sessions.c.user_id, sessions.c.csrf).where(
                and_(sessions.c.id == session_id, sessions.c.revoked_at.is_(None), sessions.c.expires_at > self.now)
            )
        ).first()
        if row is None:
            return None
        user = self.get(row.user_id)
        if user is None or user.disabled:
            return None
        return user, str(row.csrf)

    def close_session(self, session_id: str) -> None:
        self.changed = True
        self.conn.execute(update(sessions).where(sessions.c.id == session_id).values(revoked_at=self.now))

    # -- API tokens -----------------------------------------------------------------------------------

    def issue_token(self, user_id: str, *, name: str, scopes: list[str], ttl: timedelta | None) -> tuple[str, str]:
        self._require(user_id)
        bad = [s for s in scopes if s not in ("read", "write")]
        if bad or not scopes:
            raise InvalidInput("token scopes are read and/or write", field="scopes")
        token_id = secrets.token_hex(8)
        secret = f"ir_{token_id}_{secrets.token_urlsafe(32)}"
        self.conn.execute(
            insert(api_tokens).values(
                id=token_id,
                user_id=user_id,
                name=name or token_id,
                token_hash=token_hash(secret),
                scopes=",".join(scopes),
                created_at=self.now,
                expires_at=self.now + ttl if ttl else None,
            )
        )
        return token_id, secret

    def find_token(self, secret: str) -> TokenMatch | None:
        """The live token with this secret (not revoked, not expired, its user enabled), read only."""
        row = self.conn.execute(
            select(api_tokens).where(
                and_(api_tokens.c.token_hash == token_hash(secret), api_tokens.c.revoked_at.is_(None))
            )
        ).first()
        if row is None or (row.expires_at is not None and row.expires_at <= self.now):
            return None
        user = self.get(row.user_id)
        if user is None or user.disabled:
            return None
        return TokenMatch(user, frozenset(row.scopes.split(",")), str(row.id), row.last_used_at, row.expires_at)

    def token(self, secret: str) -> tuple[User, frozenset[str], str] | None:
        found = self.find_token(secret)
        return (found.user, found.scopes, found.id) if found else None

    def touch_token(self, token_id: str, *, every: timedelta) -> bool:
        """Record that the token was used now, unless that was recorded less than `every` ago (so a busy
        token costs one write a minute, not one per request; concurrent requests write it once)."""
        done = self.conn.execute(
            update(api_tokens)
            .where(
                and_(
                    api_tokens.c.id == token_id,
                    or_(api_tokens.c.last_used_at.is_(None), api_tokens.c.last_used_at <= self.now - every),
                )
            )
            .values(last_used_at=self.now)
        )
        return bool(done.rowcount)

    def revoke_token(self, token_id: str) -> None:
        self.changed = True
        done = self.conn.execute(
            update(api_tokens)
            .where(and_(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None)))
            .values(revoked_at=self.now)
        )
        if done.rowcount == 0:
            raise NotFound(f"no active token '{token_id}'")

    def tokens(self, user_id: str | None = None) -> list[dict[str, Any]]:
        query = select(
            api_tokens.c.id,
            api_tokens.c.user_id,
            api_tokens.c.name,
            api_tokens.c.scopes,
            api_tokens.c.created_at,
            api_tokens.c.expires_at,
            api_tokens.c.revoked_at,
            api_tokens.c.last_used_at,
        )
        if user_id:
            query = query.where(api_tokens.c.user_id == user_id)
        return [dict(r) for r in self.conn.execute(query.order_by(api_tokens.c.created_at)).mappings()]
