"""`ir db upgrade`, `ir admin rebuild-projections`, `ir worker`."""

from __future__ import annotations

import click


@click.group()
def db() -> None:
    """The database: migrations."""


@db.command()
def upgrade() -> None:
    """Create or migrate the database schema to the newest revision."""
    from ir.adapters.db.engine import make_engine
    from ir.adapters.db.schema import upgrade as run
    from ir.config import Settings

    settings = Settings()
    engine = make_engine(settings.database_url)
    before, after = run(engine)
    where = engine.url.render_as_string(hide_password=True)
    if before == after:
        click.echo(f"database {where} is up to date (revision {after})")
    else:
        click.echo(f"database {where} migrated: {before or 'empty'} -> {after}")


@click.group()
def admin() -> None:
    """Administration."""


@admin.command(name="rebuild-projections")
@click.option("--batch", type=int, default=500, help="incidents per transaction")
def rebuild_projections(batch: int) -> None:
    """Rebuild the query projections (incident list, work items, snapshots) from the events."""
    from ir.adapters.db.rebuild import rebuild
    from ir.bootstrap import build

    with build() as app:
        count, events = rebuild(app.db, batch=batch)
    click.echo(f"rebuilt projections of {count} incident(s) from {events} event(s)")


@click.command()
@click.option("--once", is_flag=True, help="check once and exit (for cron and tests)")
def worker(once: bool) -> None:
    """Run the timer service: due-soon, overdue and RTO-breach marks and escalations."""
    from datetime import timedelta

    from ir.adapters.scheduler.worker import run_worker
    from ir.bootstrap import build

    with build() as app:
        app.audit.start()
        run_worker(app.db, app.clock, soon=timedelta(minutes=app.settings.due_soon_minutes), once=once)
