"""`ir audit …`: verify, export, prove, tail, checkpoint, key rotation.

Reading the log (verify, export, prove, tail, checkpoint, key) needs only the audit log's own parts, so
those commands wire just those (`_log`) instead of the whole application (`_app`: playbooks, handlers,
reports…): they start in about half the time and memory, which is what keeps a verification or an
export of a million records under 100 MB.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ir.domain.errors import InvalidInput

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from ir.adapters.audit.keys import DataKeys
    from ir.adapters.audit.service import AuditService
    from ir.bootstrap import App
    from ir.config import Settings
    from ir.domain.clocks import Clock


def _app() -> App:
    from ir.bootstrap import build

    app = build()
    click.get_current_context().call_on_close(app.close)
    return app


@dataclass
class AuditLog:
    """The audit log's parts, as `ir.bootstrap.build` wires them, and nothing else."""

    settings: Settings
    clock: Clock
    engine: Engine
    keys: DataKeys
    audit: AuditService
    verifier_key: str

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn
            conn.rollback()

    def close(self) -> None:
        try:
            self.audit.flush()
        finally:
            self.engine.dispose()


def _log() -> AuditLog:
    from ir.adapters.audit.checkpoints import CheckpointPublisher, load_signer
    from ir.adapters.audit.keys import DataKeys, Keyring
    from ir.adapters.audit.sealer import Sealer
    from ir.adapters.audit.service import AuditService
    from ir.adapters.clock import SystemClock
    from ir.adapters.db.engine import make_engine
    from ir.adapters.db.schema import require_migrated
    from ir.config import Settings

    settings = Settings()
    clock = SystemClock()
    engine = make_engine(settings.database_url)
    require_migrated(engine)
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
    )
    log = AuditLog(
        settings=settings,
        clock=clock,
        engine=engine,
        keys=DataKeys(Keyring(folder=settings.keys_dir, env_value=settings.audit_kek)),
        audit=AuditService(sealer=sealer, publisher=publisher, clock=clock),
        verifier_key=verifier_key,
    )
    click.get_current_context().call_on_close(log.close)
    return log


def _audit_act(log: AuditLog, action: str, payload: dict[str, object]) -> None:
    """Exports, reveals and key operations are themselves recorded (in their own transaction, fail closed)."""
    import getpass

    from ir.adapters.audit.writer import SqlAuditTrail
    from ir.adapters.db.engine import for_writing

    with log.engine.connect() as conn:
        for_writing(conn)
        try:
            with conn.begin():
                SqlAuditTrail(conn, log_id=log.settings.audit_log_id, keys=log.keys).record(
                    action=action,
                    actor=f"local:{getpass.getuser()}",
                    subject="audit",
                    payload=payload,
                    at=log.clock.now(),
                )
        except Exception:
            log.keys.forget()  # a data key made in the failed transaction is gone with it
            raise


@click.group()
def audit() -> None:
    """The encrypted, tamper-evident audit log."""


@audit.command()
@click.option(
    "--checkpoint",
    "checkpoint_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=True),
    help="checkpoint files (or folders of them) kept outside the database",
)
@click.option("--key", "keys", multiple=True, help="a verifier key (name+id+key); default: this deployment's")
@click.option("--events", is_flag=True, help="also check every incident event against its audit record")
@click.option("--json", "as_json", is_flag=True)
def verify(checkpoint_files: tuple[str, ...], keys: tuple[str, ...], events: bool, as_json: bool) -> None:
    """Verify the chain, the sequence and the Merkle root against signed checkpoints (no keys needed)."""
    from ir.adapters.audit.checkpoint import Verifier
    from ir.adapters.audit.verify import verify as run

    app = _log()
    app.audit.flush()
    texts: list[tuple[str, str]] = []
    for name in checkpoint_files:
        path = Path(name)
        files = sorted(path.glob("*.checkpoint")) if path.is_dir() else [path]
        texts += [(str(f), f.read_text(encoding="utf-8")) for f in files]
    try:
        verifiers = [Verifier(k.strip()) for k in (keys or (app.verifier_key,))]
    except ValueError as exc:
        raise InvalidInput(f"--key: {exc}") from None
    show = not as_json and sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if show:
            click.echo(f"\r  {done:,} / {total:,} records", err=True, nl=False)

    with app.connection() as conn:
        report = run(
            conn,
            log_id=app.settings.audit_log_id,
            verifiers=verifiers,
            checkpoint_texts=texts,
            events=events,
            progress=progress,
        )
    if show:
        click.echo("", err=True)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": report.ok,
                    "size": report.size,
                    "root": report.root.hex(),
                    "errors": report.errors,
                    "warnings": report.warnings,
                    "checkpoints_verified": report.checkpoints,
                    "events_checked": report.events_checked,
                }
            )
        )
    else:
        for w in report.warnings:
            click.echo(f"warning: {w}")
        for e in report.errors:
            click.echo(f"error: {e}")
        if report.ok:
            extra = f", {report.events_checked:,} events match their records" if events else ""
            click.echo(
                f"ok: {report.size:,} records, root {report.root.hex()[:16]}…, "
                f"{len(report.checkpoints)} checkpoint(s) verified{extra}"
            )
    if not report.ok:
        raise click.exceptions.Exit(1)


def _bound(value: str | None) -> tuple[int | None, datetime | None]:
    if value is None:
        return None, None
    if value.isdigit():
        return int(value), None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"--from/--to take a record number or an ISO 8601 instant; got '{value}'") from None
    if when.tzinfo is None:
        raise InvalidInput("give the instant with its time zone, e.g. 2026-10-01T00:00+08:00")
    return None, when


@audit.command()
@click.option("--from", "start", help="first record (number) or instant")
@click.option("--to", "end", help="last record (number, inclusive) or instant (exclusive)")
@click.option("--decrypt", is_flag=True, help="include each record's decrypted content (a recorded act)")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="write here instead of standard output")
def export(start: str | None, end: str | None, decrypt: bool, output: str | None) -> None:
    """JSON lines: each record with its inclusion proof against the latest signed checkpoint."""
    from ir.adapters.audit.export import build_index, latest_checkpoint, record_json, records
    from ir.adapters.audit.export import decrypt as decrypt_row

    app = _log()
    app.audit.flush()
    log_id = app.settings.audit_log_id
    first, after = _bound(start)
    last, before = _bound(end)
    _audit_act(app, "audit.export", {"from": start, "to": end, "decrypt": decrypt})
    with app.connection() as conn:
        checkpoint = latest_checkpoint(conn, log_id)
        tree_size = checkpoint[0] if checkpoint else 0
        sink = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
        try:
            with build_index(conn, log_id, tree_size) as index:
                proof_of = index.prover(tree_size)
                header = {
                    "log_id": log_id,
                    "checkpoint": checkpoint[2] if checkpoint else None,
                    "tree_size": tree_size,
                    "verifier_key": app.verifier_key,
                }
                sink.write(json.dumps(header, ensure_ascii=False) + "\n")
                count = 0
                for row in records(conn, log_id, first=first or 0, last=last, after_time=after, before_time=before):
                    if row.seq is None:
                        continue
                    proof = proof_of(int(row.seq)) if int(row.seq) < tree_size else None
                    item = record_json(row, proof=proof, tree_size=tree_size if proof is not None else None)
                    if decrypt:
                        result = decrypt_row(conn, app.keys, log_id, row)
                        item["content"] = result.content if result.ok else {"error": result.problem}
                    sink.write(json.dumps(item, ensure_ascii=False) + "\n")
                    count += 1
        finally:
            if output:
                sink.close()
    if output:
        click.echo(f"exported {count:,} record(s) to {output}", err=True)


@audit.command()
@click.argument("record")
@click.option("--json", "as_json", is_flag=True)
def prove(record: str, as_json: bool) -> None:
    """Inclusion proof of one record (its number or id) against the latest signed checkpoint."""
    from sqlalchemy import or_, select

    from ir.adapters.audit.export import build_index, latest_checkpoint
    from ir.adapters.audit.merkle import verify_inclusion
    from ir.adapters.db.tables import audit_records
    from ir.domain.errors import NotFound

    app = _log()
    app.audit.sealer.force_checkpoint()
    app.audit.flush()
    log_id = app.settings.audit_log_id
    with app.connection() as conn:
        cond = audit_records.c.id == record
        if record.isdigit():
            cond = or_(cond, audit_records.c.seq == int(record))
        row = conn.execute(select(audit_records).where(audit_records.c.log_id == log_id).where(cond)).first()
        if row is None or row.seq is None:
            raise NotFound(f"no sealed audit record {record}")
        checkpoint = latest_checkpoint(conn, log_id)
        assert checkpoint is not None
        size, root, note = checkpoint
        with build_index(conn, log_id, size) as index:
            proof = index.proof(int(row.seq), size)
    ok = verify_inclusion(int(row.seq), size, bytes(row.entry_hash), proof, root)
    payload = {
        "seq": row.seq,
        "id": row.id,
        "entry_hash": bytes(row.entry_hash).hex(),
        "tree_size": size,
        "root": root.hex(),
        "proof": [p.hex() for p in proof],
        "verified": ok,
        "checkpoint": note,
    }
    if as_json:
        click.echo(json.dumps(payload))
    else:
        click.echo(
            f"record #{row.seq} ({row.id}) is included in the tree of {size:,} records: "
            f"{'verified' if ok else 'NOT VERIFIED'}"
        )
        click.echo(f"entry hash {payload['entry_hash']}")
        for i, p in enumerate(payload["proof"]):
            click.echo(f"  proof[{i}] {p}")
        click.echo(note)
    if not ok:
        raise click.exceptions.Exit(1)


@audit.command()
@click.option("-n", "count", type=int, default=20, show_default=True)
@click.option("--decrypt", is_flag=True, help="show what each record says (a recorded act)")
def tail(count: int, decrypt: bool) -> None:
    """The latest records."""
    from sqlalchemy import select

    from ir.adapters.audit.export import decrypt as decrypt_row
    from ir.adapters.db.tables import audit_records

    app = _log()
    app.audit.flush()
    log_id = app.settings.audit_log_id
    if decrypt:
        _audit_act(app, "audit.tail_decrypt", {"count": count})
    with app.connection() as conn:
        rows = conn.execute(
            select(audit_records)
            .where(audit_records.c.log_id == log_id)
            .order_by(audit_records.c.seq.desc().nulls_first(), audit_records.c.created_at.desc())
            .limit(count)
        ).all()
        for row in reversed(rows):
            seq = f"#{row.seq}" if row.seq is not None else "(unsealed)"
            line = f"{seq:>10}  {row.created_at.isoformat()}  {row.ref or '-':<24} {row.key_id}"
            if decrypt:
                result = decrypt_row(conn, app.keys, log_id, row)
                if result.ok and result.content is not None:
                    c = result.content
                    line += f"  {c.get('actor')}  {c.get('action')}"
                else:
                    line += f"  [{result.problem}]"
            click.echo(line)


@audit.command()
def checkpoint() -> None:
    """Seal what is pending and write a signed checkpoint now."""
    app = _log()
    result = app.audit.sealer.force_checkpoint()
    app.audit.flush()
    if result is None:
        click.echo("the audit log is empty: nothing to checkpoint")
        return
    size, root = result
    click.echo(f"checkpoint: {size:,} records, root {root.hex()}")
    click.echo(
        f"published to {app.settings.checkpoint_dir}"
        if not app.settings.audit_checkpoint_url
        else f"published to {app.settings.audit_checkpoint_url}"
    )


@audit.command(name="key")
def verifier_key() -> None:
    """Print the verifier key auditors use to check checkpoints (it is public)."""
    app = _log()
    click.echo(app.verifier_key)


@audit.command()
@click.argument("subject")
@click.option("--reason", help="why (an erasure request, the retention period ended…)")
@click.confirmation_option(prompt="Erase this person's data everywhere? This cannot be undone")
def shred(subject: str, reason: str | None) -> None:
    """Erase a person's data everywhere by destroying their key (the chain still verifies)."""
    import getpass

    from ir.domain.commands import Actor

    app = _app()
    ref = app.personal.shred(Actor(id=f"local:{getpass.getuser()}"), subject, reason=reason)
    click.echo(f"erased: the data of subject {ref} now reads as erased everywhere")


@audit.command(name="rotate-kek")
def rotate_kek() -> None:
    """Make a new key-encryption key current and re-wrap every data key under it (records are not rewritten)."""
    app = _app()
    keyring = app.db.keys.keyring
    with app.db.uow() as uow:
        old, new, count = keyring.rotate(uow.conn)
        uow.audit.record(
            action="audit.rotate_kek",
            actor="local",
            subject="audit",
            payload={"old": old, "new": new, "data_keys": count},
            at=app.clock.now(),
        )
        uow.commit()
    click.echo(f"key-encryption key rotated: {old} -> {new}; {count} data key(s) re-wrapped")
    click.echo(f"retire the old one when you are ready: ir audit retire-kek {old}")


@audit.command(name="retire-kek")
@click.argument("kek_id")
def retire_kek(kek_id: str) -> None:
    """Retire a key-encryption key that no longer wraps any data key."""
    app = _app()
    with app.db.uow() as uow:
        app.db.keys.keyring.retire(uow.conn, kek_id)
        uow.audit.record(
            action="audit.retire_kek", actor="local", subject="audit", payload={"kek": kek_id}, at=app.clock.now()
        )
        uow.commit()
    click.echo(f"{kek_id} retired")
