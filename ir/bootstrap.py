"""The composition root: settings -> adapters -> handlers. Nothing is built at import time."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from ir.adapters.audit.appender import GroupCommitAppender
from ir.adapters.audit.checkpoints import CheckpointPublisher, load_signer
from ir.adapters.audit.keys import DataKeys, Keyring
from ir.adapters.audit.sealer import Sealer
from ir.adapters.audit.service import AuditService
from ir.adapters.calendars import official_calendar
from ir.adapters.catalogue import ServiceCatalogue
from ir.adapters.clock import SystemClock
from ir.adapters.db.engine import make_engine
from ir.adapters.db.incidents import PlaybookCache
from ir.adapters.db.schema import require_migrated
from ir.adapters.db.uow import Database
from ir.adapters.http_actions import HttpActionClient
from ir.adapters.notify.service import NotifyService
from ir.adapters.notify.service import install as install_notifications
from ir.adapters.playbooks.compiler import compile_source
from ir.adapters.playbooks.library import PlaybookLibrary
from ir.adapters.regimes import load_regimes
from ir.adapters.reports.regulator import render as render_report
from ir.app.actions import ActionClient, ActionHook
from ir.app.handlers import Handlers, Outcome
from ir.app.personal_data import PersonalData
from ir.app.reports import Reports
from ir.config import Settings
from ir.domain.clocks import Clock
from ir.domain.durations import WorkingCalendar
from ir.domain.errors import InvalidInput
from ir.domain.incident import Incident
from ir.domain.playbook import Calendar, Playbook


@dataclass
class App:
    settings: Settings
    clock: Clock
    db: Database
    library: PlaybookLibrary
    handlers: Handlers
    audit: AuditService
    verifier_key: str
    personal: PersonalData
    reports: Reports
    notify: NotifyService | None = None  # notifications (None without a notifications/ folder)

    _appender: GroupCommitAppender | None = None

    @property
    def appender(self) -> GroupCommitAppender:
        """Stand-alone audit records (sign-ins, refusals, machine acts), group-committed; started on first use."""
        if self._appender is None:
            self._appender = GroupCommitAppender(self.db, sealer=self.audit.sealer, on_commit=self.audit.after_append)
        return self._appender

    def close(self) -> None:
        """Seal and publish what this process wrote, stop background work, release the database."""
        if self._appender is not None:
            self._appender.close()
        if self.notify is not None:
            self.notify.close()
        self.audit.stop()
        try:
            self.audit.flush()
        finally:
            self.db.close()

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@cache
def _calendar(country: str, zone: str) -> WorkingCalendar:
    return official_calendar(country, zone)


def calendar_for(calendar: Calendar) -> WorkingCalendar:
    return _calendar(calendar.country, calendar.zone)


def compile_stored(digest: str, source: str) -> Playbook:
    result = compile_source(source.encode(), f"<playbook {digest[:12]}>")
    if result.playbook is None:
        raise InvalidInput(f"the stored playbook {digest[:12]} no longer compiles: {result.errors[:1]}")
    return result.playbook


def build(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    check_schema: bool = True,
    action_client: ActionClient | None = None,
) -> App:
    settings = settings or Settings()
    clock = clock or SystemClock()
    engine = make_engine(settings.database_url)
    if check_schema:
        require_migrated(engine)
    keyring = Keyring(folder=settings.keys_dir, env_value=settings.audit_kek)
    regimes = load_regimes(settings.regimes_dir)
    db = Database(
        engine,
        playbooks=PlaybookCache(compile_stored),
        keys=DataKeys(keyring),
        clock=clock,
        log_id=settings.audit_log_id,
        calendar_for=calendar_for,
        evidence_folder=settings.evidence_dir,
        regimes=regimes,
    )
    signer, _verifier, verifier_key = load_signer(key_file=settings.signer_file, name=settings.audit_log_id)
    publisher = CheckpointPublisher(
        engine=engine,
        log_id=settings.audit_log_id,
        signer=signer,
        folder=settings.checkpoint_dir,
        url=settings.audit_checkpoint_url,
    )
    sealer = Sealer(
        engine,
        log_id=settings.audit_log_id,
        clock=clock,
        checkpoint=publisher.record,
        checkpoint_every=settings.audit_checkpoint_every,
        checkpoint_interval=timedelta(seconds=settings.audit_checkpoint_seconds),
        write_lock=db.write_lock,
    )
    audit = AuditService(sealer=sealer, publisher=publisher, clock=clock)
    library = PlaybookLibrary(settings.playbooks_dir, today=clock.now().date())
    catalogue = ServiceCatalogue(settings.catalogue_file)
    handlers = Handlers(
        uow=db.uow,
        clock=clock,
        playbooks=library,
        calendar_for=calendar_for,
        catalogue=catalogue,
    )

    def load(incident_id: int) -> Incident:
        with db.read() as repo:
            return repo.get(incident_id)

    if not settings.database_url.startswith("sqlite"):
        # other servers' consoles hear of this commit (SQLite needs nothing: their watchers poll the file)
        from ir.adapters.changes.postgres import PgNotifier  # psycopg: imported only for PostgreSQL

        handlers.after_commit.append(PgNotifier(engine=engine))
    handlers.after_commit.append(
        ActionHook(
            handle=handlers.handle,
            load=load,
            client=action_client or HttpActionClient(),
            allow_hosts=frozenset(h.lower() for h in settings.action_allow_hosts),
            secrets={k[len("IR_SECRET_") :]: v for k, v in os.environ.items() if k.startswith("IR_SECRET_")},
        )
    )

    def wake_sealer(outcome: Outcome) -> None:
        if not outcome.sealed:
            audit.wake()

    handlers.after_commit.append(wake_sealer)
    notify = install_notifications(
        folder=settings.notifications_dir,
        db=db,
        handlers=handlers,
        clock=clock,
        keys_dir=settings.keys_dir,
        log_id=settings.audit_log_id,
        zone=settings.timezone,
        calendar_for=calendar_for,
        on_commit=audit.wake,
    )
    return App(
        settings=settings,
        clock=clock,
        db=db,
        library=library,
        handlers=handlers,
        audit=audit,
        verifier_key=verifier_key,
        personal=PersonalData(uow=db.uow, clock=clock),
        reports=Reports(
            uow=db.uow,
            clock=clock,
            regimes=regimes,
            render=render_report,
            calendar_for=calendar_for,
            org={
                k: v
                for k, v in (
                    ("name", settings.org_name),
                    ("contact", settings.org_contact),
                    ("dpo", settings.org_dpo),
                    ("lei", settings.org_lei),
                )
                if v
            },
            zone=settings.timezone,
            service_name=catalogue.name,
        ),
        notify=notify,
    )
