"""Signed checkpoints of the audit log, recorded in the database and published outside it.

A checkpoint (C2SP signed note: origin, tree size, root) is signed with an Ed25519 key whose private
half lives in a key file (mode 0600) and whose public half auditors keep. It is stored with the seal
that produced it and, after that commits, written to the configured place outside the database: a
folder (one file per size, plus `latest`) or an HTTP endpoint (POST, text/plain). Truncation and
rollback of the database are detectable only against such copies.
"""

from __future__ import annotations

import os
from datetime import datetime

from sqlalchemy import Connection, Engine, and_, insert, select, update

from ir.adapters.audit.checkpoint import Signer, Verifier, generate_signer, sign_checkpoint
from ir.adapters.db.engine import for_writing
from ir.adapters.db.tables import audit_checkpoints


def origin_for(log_id: str) -> str:
    return f"ir-audit/{log_id}"


def load_signer(*, key_file: str, name: str) -> tuple[Signer, Verifier, str]:
    """The checkpoint signing key (created, mode 0600, on first use), its verifier and the verifier key text."""
    pub_file = key_file.removesuffix(".key") + ".pub"
    if not os.path.exists(key_file):
        os.makedirs(os.path.dirname(os.path.abspath(key_file)), exist_ok=True)
        signer_key, verifier_key = generate_signer(name)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(signer_key + "\n")
        with open(pub_file, "w") as fh:
            fh.write(verifier_key + "\n")
    mode = os.stat(key_file).st_mode & 0o777
    if mode & 0o077:
        raise PermissionError(f"the signing key {key_file} is readable by others (mode {mode:o}): chmod 600 it")
    with open(key_file) as fh:
        signer = Signer(fh.read().strip())
    with open(pub_file) as fh:
        verifier_text = fh.read().strip()
    return signer, Verifier(verifier_text), verifier_text


class CheckpointPublisher:
    def __init__(
        self,
        *,
        engine: Engine,
        log_id: str,
        signer: Signer,
        folder: str | None,
        url: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.engine = engine
        self.log_id = log_id
        self.signer = signer
        self.folder = folder
        self.url = url
        self.timeout = timeout

    def record(self, conn: Connection, size: int, root: bytes, at: datetime) -> None:
        """Called by the sealer inside its transaction: sign and store the checkpoint."""
        note = sign_checkpoint(origin_for(self.log_id), size, root, self.signer)
        conn.execute(
            insert(audit_checkpoints).values(log_id=self.log_id, size=size, root=root, note=note, created_at=at)
        )

    def publish_pending(self, now: datetime) -> list[int]:
        """After the seal commits: publish every checkpoint not yet published. Returns their sizes."""
        if not self.folder and not self.url:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(audit_checkpoints.c.size, audit_checkpoints.c.note)
                .where(and_(audit_checkpoints.c.log_id == self.log_id, audit_checkpoints.c.published_at.is_(None)))
                .order_by(audit_checkpoints.c.size)
            ).all()
        done = []
        for size, note in rows:
            self._write(int(size), str(note))
            done.append(int(size))
        if done:
            with self.engine.connect() as conn:
                for_writing(conn)
                with conn.begin():
                    conn.execute(
                        update(audit_checkpoints)
                        .where(and_(audit_checkpoints.c.log_id == self.log_id, audit_checkpoints.c.size.in_(done)))
                        .values(published_at=now)
                    )
        return done

    def _write(self, size: int, note: str) -> None:
        if self.folder:
            os.makedirs(self.folder, exist_ok=True)
            path = os.path.join(self.folder, f"{self.log_id}-{size:012d}.checkpoint")
            if not os.path.exists(path):
                _atomic_write(path, note)
            _atomic_write(os.path.join(self.folder, f"{self.log_id}-latest.checkpoint"), note)
        if self.url:
            import httpx

            response = httpx.post(
                self.url,
                content=note.encode(),
                headers={"Content-Type": "text/plain; charset=utf-8"},
                timeout=self.timeout,
            )
            response.raise_for_status()


def _atomic_write(path: str, text: str) -> None:
    tmp = f"{path}.part-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
