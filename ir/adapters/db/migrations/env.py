"""Alembic environment: runs on the engine ir hands it (config.attributes['engine'])."""

from __future__ import annotations

from alembic import context

from ir.adapters.db.tables import metadata

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    connection.info["ir_write"] = True
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
