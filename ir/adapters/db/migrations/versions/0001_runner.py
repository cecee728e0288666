"""The runner: playbook versions, incidents and their events, snapshots, projections, evidence,
timer marks and encrypted audit records.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

from ir.adapters.db.tables import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = [
    "playbook_versions",
    "incidents",
    "incident_events",
    "incident_snapshots",
    "work_items",
    "evidence_blobs",
    "timer_marks",
    "audit_keys",
    "audit_records",
]


def upgrade() -> None:
    bind = op.get_bind()
    for name in TABLES:
        metadata.tables[name].create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for name in reversed(TABLES):
        metadata.tables[name].drop(bind)
