"""Alert intake: alert fingerprints (deduplication) and alert groups (the incident they attach to).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ir.adapters.db.tables import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_fingerprints",
        sa.Column("fingerprint", sa.String(length=255), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("group_key", sa.String(length=64), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=True),
        sa.Column("ends_at", UTCDateTime(), nullable=True),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_alert_fingerprints_incident_id_incidents")
        ),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_alert_fingerprints")),
    )
    op.create_index("ix_alert_fingerprints_incident", "alert_fingerprints", ["incident_id"], unique=False)
    op.create_table(
        "alert_groups",
        sa.Column("group_key", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], name=op.f("fk_alert_groups_incident_id_incidents")),
        sa.PrimaryKeyConstraint("group_key", name=op.f("pk_alert_groups")),
    )


def downgrade() -> None:
    op.drop_table("alert_groups")
    op.drop_index("ix_alert_fingerprints_incident", table_name="alert_fingerprints")
    op.drop_table("alert_fingerprints")
