"""Personal data: kept sealed under the key of the person it is about, shown masked by default.

A `Personal` value is opaque to the domain: the reference of its subject (an HMAC of the subject id,
never the id itself) and the ciphertext. Revealing it is an explicit, recorded act in the service layer;
destroying the subject's key (crypto-shredding) makes it read as erased everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MASK = "••••"
ERASED = "[erased]"


@dataclass(frozen=True, slots=True)
class Personal:
    subject_ref: str
    sealed: str  # base64(nonce || AES-256-GCM ciphertext)

    def __str__(self) -> str:
        return MASK

    def to_json(self) -> dict[str, str]:
        return {"$pd": self.subject_ref, "c": self.sealed}


def from_json(value: Any) -> Any:
    """Turn stored {"$pd": …, "c": …} objects back into Personal values (recursively in lists/dicts)."""
    if isinstance(value, dict):
        if set(value) == {"$pd", "c"}:
            return Personal(str(value["$pd"]), str(value["c"]))
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def to_json(value: Any) -> Any:
    if isinstance(value, Personal):
        return value.to_json()
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


def masked(value: Any) -> Any:
    """What people see by default."""
    if isinstance(value, Personal):
        return MASK
    if isinstance(value, dict):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value
