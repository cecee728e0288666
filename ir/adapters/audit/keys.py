"""The audit log's keys.

A key-encryption key (KEK) lives outside the database: in a key ring folder of key files (each created
with mode 0600, named by its id, with a `current` file naming the one in use) or in the environment
(IR_AUDIT_KEK, base64). It wraps (AES key wrap, RFC 3394) the data keys kept in the database: one per
calendar month for audit records, and one per person for personal data. Rotating the KEK re-wraps the
data keys and never rewrites a record; a KEK that still wraps a data key cannot be retired.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
from sqlalchemy import Connection, func, insert, select, update

from ir.adapters.db.tables import audit_keys, subject_keys
from ir.domain.errors import InvalidTransition, NotFound


@dataclass(frozen=True, slots=True)
class Kek:
    id: str
    key: bytes


def kek_id_of(raw: bytes) -> str:
    return "kek-" + hashlib.sha256(b"ir kek id" + raw).hexdigest()[:12]


def _write_secret(path: str, raw: bytes) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(raw).decode() + "\n")


def _read_secret(path: str) -> bytes:
    mode = os.stat(path).st_mode & 0o777
    if mode & 0o077:
        raise PermissionError(f"the key file {path} is readable by others (mode {mode:o}): chmod 600 it")
    with open(path) as fh:
        raw = base64.b64decode(fh.read().strip())
    if len(raw) != 32:
        raise ValueError(f"the key file {path} does not hold a 32-byte key")
    return raw


class Keyring:
    """The KEKs this deployment knows, and which one wraps new data keys."""

    def __init__(self, *, folder: str, env_value: str | None = None) -> None:
        self.folder = folder
        self._keks: dict[str, Kek] = {}
        self._current: str
        self._env_id: str | None = None
        self._current_mtime = -1
        self._subject_key: bytes | None = None
        if env_value:
            raw = base64.b64decode(env_value)
            if len(raw) != 32:
                raise ValueError("IR_AUDIT_KEK must be 32 bytes, base64-encoded")
            kek = Kek(kek_id_of(raw), raw)
            self._keks[kek.id] = kek
            self._current = kek.id
            self._env_id = kek.id
            self._load_folder(required=False)
            return
        self._load_folder(required=False)
        current_file = os.path.join(folder, "current")
        if os.path.exists(current_file):
            with open(current_file) as fh:
                self._current = fh.read().strip()
            if self._current not in self._keks:
                raise NotFound(f"the current key-encryption key {self._current} has no key file in {folder}")
        else:
            self._current = self._new_key().id

    def _load_folder(self, *, required: bool) -> None:
        if not os.path.isdir(self.folder):
            return
        for name in os.listdir(self.folder):
            if name.startswith("kek-") and name.endswith(".key") and name[:-4] not in self._keks:
                raw = _read_secret(os.path.join(self.folder, name))
                kek = Kek(kek_id_of(raw), raw)
                self._keks[kek.id] = kek

    def _new_key(self) -> Kek:
        raw = secrets.token_bytes(32)
        kek = Kek(kek_id_of(raw), raw)
        _write_secret(os.path.join(self.folder, f"{kek.id}.key"), raw)
        self._set_current(kek.id)
        self._keks[kek.id] = kek
        return kek

    def _set_current(self, kek_id: str) -> None:
        os.makedirs(self.folder, exist_ok=True)
        tmp = os.path.join(self.folder, f".current-{os.getpid()}")
        with open(tmp, "w") as fh:
            fh.write(kek_id + "\n")
        os.replace(tmp, os.path.join(self.folder, "current"))
        self._current = kek_id

    def _refresh(self) -> None:
        """Another process may have rotated or retired a key: re-read the folder and the current pointer."""
        self._keks = {k: v for k, v in self._keks.items() if k == self._env_id}
        self._load_folder(required=False)
        current_file = os.path.join(self.folder, "current")
        if self._env_id is None and os.path.exists(current_file):
            with open(current_file) as fh:
                self._current = fh.read().strip()

    @property
    def current(self) -> Kek:
        """The KEK new data keys are wrapped with (re-read when the key ring changed on disk)."""
        if self._env_id is None:
            current_file = os.path.join(self.folder, "current")
            try:
                mtime = os.stat(current_file).st_mtime_ns
            except OSError:
                mtime = 0
            if mtime != self._current_mtime:
                self._current_mtime = mtime
                self._refresh()
        return self._keks[self._current]

    def get(self, kek_id: str) -> Kek:
        found = self._keks.get(kek_id)
        if found is None:
            self._refresh()
            found = self._keks.get(kek_id)
        if found is None:
            raise NotFound(f"no key-encryption key {kek_id} in {self.folder} (was it retired too early?)")
        return found

    @property
    def ids(self) -> list[str]:
        return sorted(self._keks)

    @property
    def subject_key(self) -> bytes:
        """The key of the HMAC turning a subject id into its reference. Derived from the first KEK ever
        made, so references stay the same across rotations: kept in its own file."""
        if self._subject_key is not None:  # written once, never changed: read it once per process
            return self._subject_key
        path = os.path.join(self.folder, "subject-ref.key")
        if not os.path.exists(path):
            _write_secret(path, hmac.new(self.current.key, b"ir subject reference v1", hashlib.sha256).digest())
        self._subject_key = _read_secret(path)
        return self._subject_key

    # -- rotation -------------------------------------------------------------------------------------

    def rotate(self, conn: Connection) -> tuple[str, str, int]:
        """A new KEK becomes current; every data key is re-wrapped under it. Returns (old, new, count)."""
        old = self.current
        new = self._new_key()
        count = 0
        for table, key_col in ((audit_keys, audit_keys.c.key_id), (subject_keys, subject_keys.c.subject_ref)):
            rows = conn.execute(select(key_col, table.c.kek_id, table.c.wrapped).where(table.c.wrapped.is_not(None)))
            for key_id, kek_id, wrapped in rows.all():
                raw = aes_key_unwrap(self.get(kek_id).key, bytes(wrapped))
                conn.execute(
                    update(table).where(key_col == key_id).values(kek_id=new.id, wrapped=aes_key_wrap(new.key, raw))
                )
                count += 1
        return old.id, new.id, count

    def retire(self, conn: Connection, kek_id: str) -> None:
        if kek_id == self._current:
            raise InvalidTransition(f"{kek_id} is the current key-encryption key: rotate first (ir audit rotate-kek)")
        self.get(kek_id)
        used = sum(
            int(conn.execute(select(func.count()).select_from(t).where(t.c.kek_id == kek_id)).scalar_one())
            for t in (audit_keys, subject_keys)
        )
        if used:
            raise InvalidTransition(f"{kek_id} still wraps {used} data key(s): it cannot be retired")
        path = os.path.join(self.folder, f"{kek_id}.key")
        os.replace(path, path + ".retired")
        os.chmod(path + ".retired", 0o600)
        del self._keks[kek_id]


class DataKeys:
    """Data keys per calendar month, unwrapped once per process."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._keys: dict[str, bytes] = {}
        self._current: dict[str, str] = {}  # period -> key id
        self._lock = threading.Lock()

    @property
    def subject_key(self) -> bytes:
        return self.keyring.subject_key

    def current(self, conn: Connection, at: datetime) -> tuple[str, bytes]:
        period = f"{at.year:04d}{at.month:02d}"
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
            key = self._unwrap(str(row[2]), bytes(row[1]))
            key_id = str(row[0])
        else:
            key = secrets.token_bytes(32)
            key_id = f"dek-{period}-{secrets.token_hex(4)}"
            kek = self.keyring.current
            conn.execute(
                insert(audit_keys).values(
                    key_id=key_id, kek_id=kek.id, wrapped=aes_key_wrap(kek.key, key), created_at=at, retired=False
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
            raise NotFound(f"no data key {key_id}")
        key = self._unwrap(str(row[1]), bytes(row[0]))
        with self._lock:
            self._keys[key_id] = key
        return key

    def _unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        try:
            return aes_key_unwrap(self.keyring.get(kek_id).key, wrapped)
        except InvalidUnwrap:
            raise PermissionError(f"a data key wrapped by {kek_id} does not unwrap: wrong key file?") from None

    def forget(self) -> None:
        with self._lock:
            self._keys.clear()
            self._current.clear()
