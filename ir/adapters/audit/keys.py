"""The audit log's keys: a key-encryption key kept outside the database (a key file created with mode
0600, or the environment) wraps per-period data keys (AES key wrap) stored in the database."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap
from sqlalchemy import Connection, insert, select

from ir.adapters.db.tables import audit_keys


@dataclass(frozen=True, slots=True)
class Kek:
    id: str
    key: bytes

    @property
    def subject_key(self) -> bytes:
        """The key of the HMAC that turns a subject id into its reference (never the id itself)."""
        return hmac.new(self.key, b"ir subject reference v1", hashlib.sha256).digest()


def load_kek(*, key_file: str, env_value: str | None = None) -> Kek:
    """The KEK from IR_AUDIT_KEK (base64) or a key file, created with mode 0600 on first use."""
    if env_value:
        raw = base64.b64decode(env_value)
        if len(raw) != 32:
            raise ValueError("IR_AUDIT_KEK must be 32 bytes, base64-encoded")
        return Kek(_kek_id(raw), raw)
    if not os.path.exists(key_file):
        os.makedirs(os.path.dirname(os.path.abspath(key_file)), exist_ok=True)
        raw = secrets.token_bytes(32)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(raw).decode() + "\n")
    mode = os.stat(key_file).st_mode & 0o777
    if mode & 0o077:
        raise PermissionError(f"the key file {key_file} is readable by others (mode {mode:o}): chmod 600 it")
    with open(key_file) as fh:
        raw = base64.b64decode(fh.read().strip())
    if len(raw) != 32:
        raise ValueError(f"the key file {key_file} does not hold a 32-byte key")
    return Kek(_kek_id(raw), raw)


def _kek_id(raw: bytes) -> str:
    return "kek-" + hashlib.sha256(b"ir kek id" + raw).hexdigest()[:12]


class DataKeys:
    """Data keys per calendar month, unwrapped once per process."""

    def __init__(self, kek: Kek) -> None:
        self.kek = kek
        self._keys: dict[str, bytes] = {}
        self._current: dict[str, str] = {}  # period -> key id
        self._lock = threading.Lock()

    def current(self, conn: Connection, at: datetime) -> tuple[str, bytes]:
        period = at.strftime("%Y%m")
        with self._lock:
            key_id = self._current.get(period)
            if key_id is not None:
                return key_id, self._keys[key_id]
        row = conn.execute(
            select(audit_keys.c.key_id, audit_keys.c.wrapped, audit_keys.c.kek_id)
            .where(audit_keys.c.key_id.like(f"dek-{period}-%"))
            .where(audit_keys.c.retired.is_(False))
            .order_by(audit_keys.c.created_at.desc())
        ).first()
        if row is not None:
            key = self._unwrap(row[2], row[1])
            key_id = str(row[0])
        else:
            key = secrets.token_bytes(32)
            key_id = f"dek-{period}-{secrets.token_hex(4)}"
            conn.execute(
                insert(audit_keys).values(
                    key_id=key_id,
                    kek_id=self.kek.id,
                    wrapped=aes_key_wrap(self.kek.key, key),
                    created_at=at,
                    retired=False,
                )
            )
        with self._lock:
            self._keys[key_id] = key
            self._current[period] = key_id
        return key_id, key

    def get(self, conn: Connection, key_id: str) -> bytes:
        with self._lock:
            found = self._keys.get(key_id)
        if found is not None:
            return found
        row = conn.execute(
            select(audit_keys.c.wrapped, audit_keys.c.kek_id).where(audit_keys.c.key_id == key_id)
        ).first()
        if row is None:
            raise KeyError(key_id)
        key = self._unwrap(row[1], row[0])
        with self._lock:
            self._keys[key_id] = key
        return key

    def _unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        if kek_id != self.kek.id:
            raise PermissionError(f"data key wrapped by {kek_id}, but the key-encryption key in use is {self.kek.id}")
        return aes_key_unwrap(self.kek.key, bytes(wrapped))

    def forget(self) -> None:
        with self._lock:
            self._keys.clear()
            self._current.clear()
