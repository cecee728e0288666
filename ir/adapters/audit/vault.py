"""Per-subject keys for personal data (crypto-shredding).

Each person (subject) has a data key wrapped by the key-encryption key, stored under the subject's
reference (an HMAC of the subject id). Sealing uses AES-256-GCM bound to that reference. Shredding
removes the wrapped key: every value sealed for that person, wherever it is stored (events, snapshots,
audit records, evidence, reports), then reads as erased, and nobody else's data is touched.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from datetime import datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap
from sqlalchemy import Connection, insert, select, update

from ir.adapters.audit.keys import Keyring
from ir.adapters.db.tables import subject_keys
from ir.domain.errors import InvalidInput, NotFound
from ir.domain.personal import ERASED, Personal

_AAD = b"ir-personal-v1\x00"


class Vault:
    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._subject_key = keyring.subject_key

    def ref(self, subject: str) -> str:
        subject = subject.strip()
        if not subject or len(subject) > 500:
            raise InvalidInput("a subject id is 1 to 500 characters", field="subject")
        return hmac.new(self._subject_key, subject.encode(), hashlib.sha256).hexdigest()[:32]

    def _key(self, conn: Connection, subject_ref: str, *, create_at: datetime | None) -> bytes | None:
        # read every time (personal data is sealed and opened rarely): a key shredded by another
        # process is gone here too at once
        row = conn.execute(
            select(subject_keys.c.wrapped, subject_keys.c.kek_id, subject_keys.c.shredded_at).where(
                subject_keys.c.subject_ref == subject_ref
            )
        ).first()
        key: bytes | None
        if row is None:
            if create_at is None:
                return None
            key = os.urandom(32)
            kek = self.keyring.current
            conn.execute(
                insert(subject_keys).values(
                    subject_ref=subject_ref, kek_id=kek.id, wrapped=aes_key_wrap(kek.key, key), created_at=create_at
                )
            )
            return key
        if row[0] is None:
            return None
        return aes_key_unwrap(self.keyring.get(str(row[1])).key, bytes(row[0]))

    def seal(self, conn: Connection, subject: str, text: str | bytes, *, at: datetime) -> Personal:
        ref = self.ref(subject)
        key = self._key(conn, ref, create_at=at)
        if key is None:
            raise InvalidInput("this person's data was erased: nothing more can be recorded under them")
        data = text.encode() if isinstance(text, str) else text
        nonce = os.urandom(12)
        blob = nonce + AESGCM(key).encrypt(nonce, data, _AAD + ref.encode())
        return Personal(ref, base64.b64encode(blob).decode())

    def open_bytes(self, conn: Connection, value: Personal) -> bytes | None:
        """The plaintext, or None when the subject's key was shredded."""
        key = self._key(conn, value.subject_ref, create_at=None)
        return None if key is None else _decrypt(AESGCM(key), value)

    def open_many(self, conn: Connection, values: list[Personal]) -> list[str]:
        """Many values at once (one key lookup per person, one query): the erased marker for the shredded."""
        refs = sorted({v.subject_ref for v in values})
        keys: dict[str, AESGCM | None] = dict.fromkeys(refs)
        for i in range(0, len(refs), 500):
            rows = conn.execute(
                select(subject_keys.c.subject_ref, subject_keys.c.wrapped, subject_keys.c.kek_id).where(
                    subject_keys.c.subject_ref.in_(refs[i : i + 500])
                )
            )
            for ref, wrapped, kek_id in rows:
                if wrapped is not None:
                    keys[str(ref)] = AESGCM(aes_key_unwrap(self.keyring.get(str(kek_id)).key, bytes(wrapped)))
        out = []
        for value in values:
            key = keys[value.subject_ref]
            out.append(ERASED if key is None else _decrypt(key, value).decode())
        return out

    def open(self, conn: Connection, value: Personal) -> str:
        data = self.open_bytes(conn, value)
        return ERASED if data is None else data.decode()

    def shred(self, conn: Connection, subject: str, *, at: datetime) -> str:
        ref = self.ref(subject)
        row = conn.execute(select(subject_keys.c.shredded_at).where(subject_keys.c.subject_ref == ref)).first()
        if row is None:
            raise NotFound("ir holds no personal data under that subject")
        if row[0] is not None:
            raise InvalidInput("that subject's data was already erased")
        conn.execute(
            update(subject_keys)
            .where(subject_keys.c.subject_ref == ref)
            .values(wrapped=None, kek_id=None, shredded_at=at)
        )
        return ref


def _decrypt(key: AESGCM, value: Personal) -> bytes:
    blob = base64.b64decode(value.sealed)
    try:
        return key.decrypt(blob[:12], blob[12:], _AAD + value.subject_ref.encode())
    except InvalidTag:
        raise NotFound("a personal value does not decrypt: it was altered") from None
