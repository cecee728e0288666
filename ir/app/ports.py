"""The service layer's view of the outside world: Protocols the adapters implement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol

from ir.domain.errors import Conflict
from ir.domain.events import Event
from ir.domain.incident import Incident
from ir.domain.personal import Personal
from ir.domain.playbook import Playbook


class PlaybookSource(Protocol):
    def get(self, ref: str) -> Playbook:
        """A playbook by id from the library, or by path to a file (NotFound / InvalidInput)."""
        ...


@dataclass(frozen=True, slots=True)
class StoredEvent:
    incident_id: int
    seq: int
    event: Event


@dataclass(frozen=True, slots=True)
class StoredRow:
    """An event as stored: what its audit record fingerprints."""

    incident_id: int
    seq: int
    kind: str
    payload: str


class IncidentRepository(Protocol):
    def add(self, incident: Incident, events: Sequence[Event]) -> tuple[Incident, list[StoredRow]]:
        """Store a new incident (its id is allocated here) and fold its first events into it."""
        ...

    def get(self, incident_id: int, *, fresh: bool = False) -> Incident:
        """The incident folded up to its latest event (NotFound); `fresh` bypasses any cache."""
        ...

    def append(self, incident: Incident, events: Sequence[Event]) -> list[StoredRow]:
        """Append events at the incident's version (StaleIncident if it moved on), fold them into it, and
        update the projections they touch, in the current transaction; returns the rows as stored."""
        ...

    def events(self, incident_id: int, *, after: int = 0, limit: int | None = None) -> list[StoredEvent]: ...

    def remember_playbook(self, playbook: Playbook, at: datetime) -> None:
        """Store a playbook's exact text by content hash."""
        ...


class EvidenceStore(Protocol):
    def put(self, content: bytes, media_type: str) -> str:
        """Store content by its SHA-256 (never overwritten) and return the digest."""
        ...

    def get(self, sha256: str) -> bytes: ...


class AuditTrail(Protocol):
    def record(
        self,
        *,
        action: str,
        actor: str,
        subject: str,
        payload: dict[str, Any],
        at: datetime,
        ref: str = "",
        digest: bytes = ...,
    ) -> None:
        """Write one encrypted audit record in the current transaction (fail closed). `ref` and `digest`
        name and fingerprint the stored row it records (an incident event), for keyless checking."""
        ...

    def event_digest(self, incident_id: int, seq: int, kind: str, payload: str) -> bytes: ...


class PersonalVault(Protocol):
    """Personal data sealed per person (in the current transaction's database)."""

    def seal(self, subject: str, data: str | bytes) -> Personal: ...

    def open(self, value: Personal) -> str:
        """The plaintext, or the erased marker when the person's key was shredded."""
        ...

    def open_bytes(self, value: Personal) -> bytes | None: ...

    def shred(self, subject: str) -> str:
        """Destroy the person's key; returns their subject reference."""
        ...

    def ref(self, subject: str) -> str: ...


class Inventory(Protocol):
    def allocate(
        self, *, incident_id: int, request_id: str, kind: str, quantity: int, units: list[str]
    ) -> dict[str, int]:
        """Commit units (named, or available ones of the kind) to a request; unit id -> capacity."""
        ...

    def release(self, units: list[str]) -> None: ...


class Users(Protocol):
    def verify(self, user_id: str, password: str, *, lock_after: int, lock_for: timedelta) -> tuple[Any, str]: ...

    def open_session(self, user_id: str, ttl: timedelta) -> tuple[str, str]: ...

    def session(self, session_id: str) -> tuple[Any, str] | None: ...

    def close_session(self, session_id: str) -> None: ...

    def token(self, secret: str) -> tuple[Any, frozenset[str], str] | None: ...

    def find_token(self, secret: str) -> Any:
        """The live token with this secret (user, scopes, id, last_used_at), or None."""
        ...

    def touch_token(self, token_id: str, *, every: timedelta) -> bool: ...


class ServiceCatalogue(Protocol):
    def ids(self) -> set[str]: ...


class UnitOfWork(Protocol):
    @property
    def incidents(self) -> IncidentRepository: ...

    @property
    def evidence(self) -> EvidenceStore: ...

    @property
    def audit(self) -> AuditTrail: ...

    @property
    def personal(self) -> PersonalVault: ...

    @property
    def inventory(self) -> Inventory: ...

    @property
    def users(self) -> Users: ...

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...


class StaleIncident(Conflict):
    """The incident changed since it was read (another process or request); re-read and decide again.
    Where nobody retries, it is a conflict (409, exit 4)."""

    def __init__(self, message: str = "the incident was changed by someone else meanwhile: try again") -> None:
        super().__init__(message)
