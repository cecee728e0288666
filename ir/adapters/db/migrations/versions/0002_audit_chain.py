"""The audit chain: heads, checkpoints, per-subject keys, and triggers refusing to change sealed records.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ir.adapters.db.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_heads",
        sa.Column("log_id", sa.String(length=40), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.LargeBinary(), nullable=False),
        sa.Column("frontier", sa.LargeBinary(), nullable=False),
        sa.Column("sealed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("log_id", name=op.f("pk_audit_heads")),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("log_id", sa.String(length=40), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("log_id", "size", name=op.f("pk_audit_checkpoints")),
    )
    op.create_table(
        "subject_keys",
        sa.Column("subject_ref", sa.String(length=64), nullable=False),
        sa.Column("kek_id", sa.String(length=40), nullable=True),
        sa.Column("wrapped", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("shredded_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("subject_ref", name=op.f("pk_subject_keys")),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION ir_refuse_sealed_change() RETURNS trigger AS $$
            BEGIN
              IF TG_OP = 'DELETE' THEN
                IF OLD.seq IS NOT NULL THEN
                  RAISE EXCEPTION 'audit record % is sealed: it cannot be deleted', OLD.id;
                END IF;
                RETURN OLD;
              END IF;
              IF OLD.seq IS NOT NULL THEN
                RAISE EXCEPTION 'audit record % is sealed: it cannot be changed', OLD.id;
              END IF;
              IF NEW.body IS DISTINCT FROM OLD.body OR NEW.id IS DISTINCT FROM OLD.id
                 OR NEW.key_id IS DISTINCT FROM OLD.key_id OR NEW.subject_ref IS DISTINCT FROM OLD.subject_ref
                 OR NEW.log_id IS DISTINCT FROM OLD.log_id OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
                RAISE EXCEPTION 'audit record %: only the sealer may change it, and only to seal it', OLD.id;
              END IF;
              RETURN NEW;
            END $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER audit_records_sealed BEFORE UPDATE OR DELETE ON audit_records "
            "FOR EACH ROW EXECUTE FUNCTION ir_refuse_sealed_change()"
        )
        op.execute(
            """
            CREATE FUNCTION ir_refuse_truncate() RETURNS trigger AS $$
            BEGIN
              RAISE EXCEPTION 'audit records are append-only: % cannot be truncated', TG_TABLE_NAME;
            END $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records "
            "FOR EACH STATEMENT EXECUTE FUNCTION ir_refuse_truncate()"
        )
    else:
        op.execute(
            "CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records "
            "WHEN OLD.seq IS NOT NULL OR NEW.body IS NOT OLD.body OR NEW.id IS NOT OLD.id "
            "OR NEW.key_id IS NOT OLD.key_id OR NEW.subject_ref IS NOT OLD.subject_ref "
            "BEGIN SELECT RAISE(ABORT, 'audit records are append-only: a sealed record cannot be changed'); END"
        )
        op.execute(
            "CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records "
            "WHEN OLD.seq IS NOT NULL "
            "BEGIN SELECT RAISE(ABORT, 'audit records are append-only: a sealed record cannot be deleted'); END"
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_records_sealed ON audit_records")
        op.execute("DROP TRIGGER IF EXISTS audit_records_no_truncate ON audit_records")
        op.execute("DROP FUNCTION IF EXISTS ir_refuse_sealed_change()")
        op.execute("DROP FUNCTION IF EXISTS ir_refuse_truncate()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_records_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_records_no_delete")
    op.drop_table("subject_keys")
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_heads")
