"""The runner: playbook versions, incidents and their events, snapshots, projections, evidence,
timer marks and encrypted audit records.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ir.adapters.db.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_keys',
    sa.Column('key_id', sa.String(length=40), nullable=False),
    sa.Column('kek_id', sa.String(length=40), nullable=False),
    sa.Column('wrapped', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('retired', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('key_id', name=op.f('pk_audit_keys'))
    )
    op.create_table('audit_records',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('log_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('key_id', sa.String(length=40), nullable=False),
    sa.Column('subject_ref', sa.String(length=64), nullable=False),
    sa.Column('ref', sa.String(length=80), nullable=False),
    sa.Column('digest', sa.LargeBinary(), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=True),
    sa.Column('prev_hash', sa.LargeBinary(), nullable=True),
    sa.Column('entry_hash', sa.LargeBinary(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_records')),
    sa.UniqueConstraint('log_id', 'seq', name='uq_audit_records_seq')
    )
    op.create_index('ix_audit_records_unsealed', 'audit_records', ['seq'], unique=False)
    op.create_table('evidence_blobs',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('media_type', sa.String(length=200), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=True),
    sa.Column('stored_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('sha256', name=op.f('pk_evidence_blobs'))
    )
    op.create_table('playbook_versions',
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('playbook_id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.String(length=32), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('stored_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('hash', name=op.f('pk_playbook_versions'))
    )
    op.create_table('incidents',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('playbook_id', sa.String(length=64), nullable=False),
    sa.Column('playbook_hash', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('level', sa.String(length=3), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('opened_at', UTCDateTime(), nullable=False),
    sa.Column('detected_at', UTCDateTime(), nullable=True),
    sa.Column('restored_at', UTCDateTime(), nullable=True),
    sa.Column('closed_at', UTCDateTime(), nullable=True),
    sa.Column('simulated_start', UTCDateTime(), nullable=True),
    sa.Column('real_start', UTCDateTime(), nullable=True),
    sa.Column('speed', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['playbook_hash'], ['playbook_versions.hash'], name=op.f('fk_incidents_playbook_hash_playbook_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incidents'))
    )
    op.create_index('ix_incidents_status', 'incidents', ['status'], unique=False)
    op.create_table('incident_events',
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('recorded_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_events_incident_id_incidents')),
    sa.PrimaryKeyConstraint('incident_id', 'seq', name=op.f('pk_incident_events'))
    )
    op.create_table('incident_snapshots',
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('state', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_snapshots_incident_id_incidents')),
    sa.PrimaryKeyConstraint('incident_id', name=op.f('pk_incident_snapshots'))
    )
    op.create_table('timer_marks',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('ref', sa.String(length=80), nullable=False),
    sa.Column('mark', sa.String(length=20), nullable=False),
    sa.Column('due_at', UTCDateTime(), nullable=False),
    sa.Column('marked_at', UTCDateTime(), nullable=False),
    sa.Column('target', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_timer_marks_incident_id_incidents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_timer_marks')),
    sa.UniqueConstraint('incident_id', 'ref', 'mark', 'due_at', name='uq_timer_marks_key')
    )
    op.create_table('work_items',
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('ref', sa.String(length=80), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('role', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('assignee', sa.String(length=200), nullable=True),
    sa.Column('due_at', UTCDateTime(), nullable=True),
    sa.Column('done_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_work_items_incident_id_incidents')),
    sa.PrimaryKeyConstraint('incident_id', 'ref', name=op.f('pk_work_items'))
    )
    op.create_index('ix_work_items_due', 'work_items', ['due_at'], unique=False)
    op.create_index('ix_work_items_role', 'work_items', ['role', 'status'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_work_items_role', table_name='work_items')
    op.drop_index('ix_work_items_due', table_name='work_items')
    op.drop_table('work_items')
    op.drop_table('timer_marks')
    op.drop_table('incident_snapshots')
    op.drop_table('incident_events')
    op.drop_index('ix_incidents_status', table_name='incidents')
    op.drop_table('incidents')
    op.drop_table('playbook_versions')
    op.drop_table('evidence_blobs')
    op.drop_index('ix_audit_records_unsealed', table_name='audit_records')
    op.drop_table('audit_records')
    op.drop_table('audit_keys')
