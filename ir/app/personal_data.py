"""Revealing and erasing personal data: explicit, permitted and recorded acts."""

from __future__ import annotations

from dataclasses import dataclass

from ir.app.permissions import authorize
from ir.app.ports import UnitOfWorkFactory
from ir.domain.clocks import Clock
from ir.domain.commands import Actor
from ir.domain.errors import InvalidInput, NotFound
from ir.domain.personal import Personal


@dataclass(slots=True)
class PersonalData:
    uow: UnitOfWorkFactory
    clock: Clock

    def reveal(
        self,
        actor: Actor,
        incident_id: int,
        *,
        fact: str | None = None,
        note: int | None = None,
        reason: str | None = None,
    ) -> str:
        """The plaintext of a personal fact or note of an incident; the reveal is audited first."""
        authorize(actor, "personal.reveal")
        if not reason or not reason.strip():
            raise InvalidInput("revealing personal data needs a reason (--reason)", field="reason")
        with self.uow() as uow:
            incident = uow.incidents.get(incident_id)
            value: object
            what: str
            if fact is not None:
                if fact not in incident.facts:
                    raise NotFound(f"incident {incident_id} has no value for fact '{fact}'")
                value, what = incident.facts[fact], f"fact:{fact}"
            elif note is not None:
                if not 1 <= note <= len(incident.notes):
                    raise NotFound(f"incident {incident_id} has {len(incident.notes)} note(s); no note {note}")
                value, what = incident.notes[note - 1].text, f"note:{note}"
            else:
                raise InvalidInput("say what to reveal: --fact NAME or --note N")
            if not isinstance(value, Personal):
                raise InvalidInput(f"{what} of incident {incident_id} is not personal data: it is not masked")
            uow.audit.record(
                action="personal.reveal",
                actor=actor.id,
                subject=f"incident:{incident_id}",
                payload={"what": what, "subject_ref": value.subject_ref, "reason": reason.strip()},
                at=self.clock.now(),
            )
            text = uow.personal.open(value)
            uow.commit()  # no record of the reveal, no reveal
        return text

    def shred(self, actor: Actor, subject: str, *, reason: str | None) -> str:
        """Erase a person: destroy their key, so their data reads as erased everywhere."""
        authorize(actor, "personal.shred")
        with self.uow() as uow:
            ref = uow.personal.shred(subject)
            uow.audit.record(
                action="personal.shred",
                actor=actor.id,
                subject="personal-data",
                payload={"subject_ref": ref, "reason": (reason or "").strip() or None},
                at=self.clock.now(),
            )
            uow.commit()
        return ref
