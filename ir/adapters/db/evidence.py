"""Evidence files by SHA-256, in the database or a configured folder: written once, never overwritten."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from datetime import datetime

from sqlalchemy import Connection, insert, select

from ir.adapters.db.tables import evidence_blobs
from ir.domain.errors import NotFound


class SqlEvidenceStore:
    def __init__(self, conn: Connection, *, folder: str | None, now: datetime) -> None:
        self.conn = conn
        self.folder = folder
        self.now = now

    def put(self, content: bytes, media_type: str) -> str:
        digest = hashlib.sha256(content).hexdigest()
        exists = self.conn.execute(select(evidence_blobs.c.sha256).where(evidence_blobs.c.sha256 == digest)).first()
        if exists is not None:
            return digest
        stored: bytes | None = content
        if self.folder:
            _write_once(os.path.join(self.folder, digest[:2], digest), content)
            stored = None
        self.conn.execute(
            insert(evidence_blobs).values(
                sha256=digest, size=len(content), media_type=media_type, content=stored, stored_at=self.now
            )
        )
        return digest

    def get(self, sha256: str) -> bytes:
        row = self.conn.execute(select(evidence_blobs.c.content).where(evidence_blobs.c.sha256 == sha256)).first()
        if row is None:
            raise NotFound(f"no evidence {sha256[:12]}")
        if row[0] is not None:
            return bytes(row[0])
        if not self.folder:
            raise NotFound(f"evidence {sha256[:12]} is kept in a folder that is not configured")
        path = os.path.join(self.folder, sha256[:2], sha256)
        with open(path, "rb") as fh:
            data = fh.read()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise NotFound(f"evidence {sha256[:12]} in {path} does not match its hash")
        return data


def _write_once(path: str, content: bytes) -> None:
    """Write durably to a temporary name, then link it into place; an existing file is kept."""
    if os.path.exists(path):
        return
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # fails if it exists: never overwritten
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        os.unlink(tmp)
