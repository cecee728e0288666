"""The public status page: what the communications role published, each update with its CAP 1.2 alert.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ir.adapters.db.tables import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "status_updates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("public_ref", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("title_zh", sa.String(length=200), nullable=False),
        sa.Column("title_en", sa.String(length=200), nullable=False),
        sa.Column("message_zh", sa.Text(), nullable=False),
        sa.Column("message_en", sa.Text(), nullable=False),
        sa.Column("area_zh", sa.String(length=200), nullable=False),
        sa.Column("area_en", sa.String(length=200), nullable=False),
        sa.Column("instruction_zh", sa.Text(), nullable=True),
        sa.Column("instruction_en", sa.Text(), nullable=True),
        sa.Column("eta", UTCDateTime(), nullable=True),
        sa.Column("warning", sa.String(length=8), nullable=True),
        sa.Column("level", sa.String(length=3), nullable=True),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=False),
        sa.Column("published_by", sa.String(length=200), nullable=False),
        sa.Column("cap_identifier", sa.String(length=80), nullable=False),
        sa.Column("cap_msg_type", sa.String(length=8), nullable=False),
        sa.Column("cap_sent", sa.String(length=32), nullable=False),
        sa.Column("cap_xml", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_status_updates_incident_id_incidents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_updates")),
        sa.UniqueConstraint("cap_identifier", name=op.f("uq_status_updates_cap_identifier")),
        sa.UniqueConstraint("incident_id", "seq", name="uq_status_updates_seq"),
    )
    op.create_index("ix_status_updates_published", "status_updates", ["mode", "published_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_status_updates_published", table_name="status_updates")
    op.drop_table("status_updates")
