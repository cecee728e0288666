"""Notifications made due by an incident's own acts, handed to the outbox in the command's transaction.

A playbook's notification becomes due when the incident reaches a level or a warning it applies to (and
its `when` holds). Each (notification, level or warning) is told once: the outbox keeps one notice per
cause, so a command repeated, retried or replayed never tells anyone twice. The check is one pass over
the command's events: a command that declares no level, issues no warning and sets no fact returns at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ir.app.ports import UnitOfWork
from ir.domain.events import (
    Event,
    FactsSet,
    IncidentOpened,
    IncidentReopened,
    LevelDeclared,
    PlaybookAdded,
    WarningIssued,
)
from ir.domain.incident import Incident
from ir.domain.playbook import Channel, Notification

# the events that can make a notification due; any other command costs one isinstance pass
ACTIVATING = (LevelDeclared, WarningIssued, FactsSet, IncidentOpened, IncidentReopened, PlaybookAdded)

# published by the communications role (CAP alerts, the public status page), never by the dispatcher
PUBLISHED = frozenset({Channel.CAP, Channel.STATUS_PAGE})


@dataclass(frozen=True, slots=True)
class DueNotice:
    notification: Notification
    cause: str  # level:II | warning:red


class Outbox(Protocol):
    def enqueue(
        self, uow: UnitOfWork, *, incident: Incident, notices: Sequence[DueNotice], actor: str, at: datetime
    ) -> int:
        """Write one message per recipient and channel for each notice not told before (same transaction);
        returns how many messages were written."""
        ...


def due_notices(incident: Incident, events: Sequence[Event]) -> list[DueNotice]:
    """The notifications the incident's state (after `events`) makes due, each with its cause."""
    if not any(isinstance(e, ACTIVATING) for e in events):
        return []
    only_facts = all(isinstance(e, FactsSet) for e in events)
    if only_facts and not any(n.when is not None for n in incident.playbook.notifications.values()):
        return []  # facts only move notifications that have a condition
    out: list[DueNotice] = []
    level, warning = incident.level, incident.emergency.warning
    for note in incident.playbook.notifications.values():
        if not set(note.channels) - PUBLISHED or not incident.notification_active(note):
            continue
        cause = f"level:{level.value}" if level is not None and note.applies_to_level(level) else None
        if cause is None and warning is not None and note.applies_to_warning(warning):
            cause = f"warning:{warning.value}"
        if cause is not None:
            out.append(DueNotice(note, cause))
    return out
