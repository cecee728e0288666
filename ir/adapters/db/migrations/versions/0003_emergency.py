"""Running a real emergency: the resource inventory and contacts (sealed personal data) with groups.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ir.adapters.db.tables import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resource_units",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("base", sa.String(length=200), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.String(length=16), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], name=op.f("fk_resource_units_incident_id_incidents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resource_units")),
    )
    op.create_index("ix_resource_units_kind", "resource_units", ["kind", "status"], unique=False)
    op.create_table(
        "contacts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("subject_ref", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
    )
    op.create_table(
        "contact_groups",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], name=op.f("fk_contact_groups_contact_id_contacts")),
        sa.PrimaryKeyConstraint("group_id", "contact_id", name=op.f("pk_contact_groups")),
    )


def downgrade() -> None:
    op.drop_table("contact_groups")
    op.drop_table("contacts")
    op.drop_index("ix_resource_units_kind", table_name="resource_units")
    op.drop_table("resource_units")
