"""Acknowledgement links: a message's id signed with a key of this deployment (HMAC-SHA256), so a link
needs no sign-in and cannot be forged for another message."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets


class AckSigner:
    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_folder(cls, folder: str) -> AckSigner:
        """The key file notify-ack.key in the keys folder (mode 0600), made on first use."""
        path = os.path.join(folder, "notify-ack.key")
        if not os.path.exists(path):
            os.makedirs(folder, exist_ok=True)
            # written whole under a temporary name, then linked into place: a process that finds the file
            # never reads it half-written, and the first of two racing processes wins
            tmp = f"{path}.{os.getpid()}.{secrets.token_hex(4)}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_hex(32) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, path)
            finally:
                os.unlink(tmp)
        with open(path) as fh:
            return cls(fh.read().strip().encode())

    def _mac(self, message_id: int) -> str:
        digest = hmac.new(self._key, f"ir-ack:{message_id}".encode(), hashlib.sha256).digest()[:18]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, message_id: int) -> str:
        return f"{message_id}.{self._mac(message_id)}"

    def verify(self, token: str) -> int | None:
        """The message id a token names, or None for a token this deployment did not sign."""
        head, _, mac = token.partition(".")
        if not head.isdigit() or len(head) > 12 or not mac:
            return None
        message_id = int(head)
        return message_id if hmac.compare_digest(mac, self._mac(message_id)) else None
