"""Initial schema: accounts, workers, tracks, variants, leases and runs.

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 04:04:53.982145
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('name', name=op.f('uq_accounts_name'))
    )
    op.create_table('tracks',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('hardware_class', sa.String(length=64), nullable=False),
    sa.Column('vocab_size', sa.Integer(), nullable=False),
    sa.Column('seq_len', sa.Integer(), nullable=False),
    sa.Column('eval_tokens', sa.Integer(), nullable=False),
    sa.Column('eval_batch_size', sa.Integer(), nullable=False),
    sa.Column('time_budget_s', sa.Float(), nullable=False),
    sa.Column('grace_s', sa.Float(), nullable=False),
    sa.Column('harness_version', sa.String(length=20), nullable=False),
    sa.Column('brief', sa.Text(), nullable=False),
    sa.Column('assets', sa.JSON(), nullable=False),
    sa.Column('quorum', sa.Integer(), nullable=False),
    sa.Column('tolerance', sa.Float(), nullable=False),
    sa.Column('calibration_runs', sa.Integer(), nullable=False),
    sa.Column('noise_sigma', sa.Float(), nullable=True),
    sa.Column('baseline_variant_id', sa.Integer(), nullable=True),
    sa.Column('head_variant_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tracks'))
    )
    with op.batch_alter_table('tracks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tracks_hardware_class'), ['hardware_class'], unique=False)

    op.create_table('workers',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('public_key', sa.String(length=100), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('hardware_class', sa.String(length=64), nullable=False),
    sa.Column('hardware', sa.JSON(), nullable=False),
    sa.Column('valid_streak', sa.Integer(), nullable=False),
    sa.Column('invalid_results', sa.Integer(), nullable=False),
    sa.Column('quarantined', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_workers_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workers')),
    sa.UniqueConstraint('public_key', name=op.f('uq_workers_public_key')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_workers_token_hash'))
    )
    with op.batch_alter_table('workers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_workers_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_workers_hardware_class'), ['hardware_class'], unique=False)

    op.create_table('variants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('track_id', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('author_worker_id', sa.String(length=32), nullable=True),
    sa.Column('hypothesis', sa.String(length=500), nullable=True),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('val_bpb', sa.Float(), nullable=True),
    sa.Column('claimed_val_bpb', sa.Float(), nullable=True),
    sa.Column('parent_val_bpb', sa.Float(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('signature', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['author_worker_id'], ['workers.id'], name=op.f('fk_variants_author_worker_id_workers')),
    sa.ForeignKeyConstraint(['parent_id'], ['variants.id'], name=op.f('fk_variants_parent_id_variants')),
    sa.ForeignKeyConstraint(['track_id'], ['tracks.id'], name=op.f('fk_variants_track_id_tracks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_variants')),
    sa.UniqueConstraint('track_id', 'hash', name='uq_variants_track_id_hash')
    )
    with op.batch_alter_table('variants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_variants_author_worker_id'), ['author_worker_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_variants_hash'), ['hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_variants_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_variants_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_variants_track_id'), ['track_id'], unique=False)

    # tracks and variants point at each other: add the track -> variant keys once both exist.
    with op.batch_alter_table('tracks', schema=None) as batch_op:
        batch_op.create_foreign_key('fk_tracks_baseline_variant_id_variants', 'variants', ['baseline_variant_id'], ['id'])
        batch_op.create_foreign_key('fk_tracks_head_variant_id_variants', 'variants', ['head_variant_id'], ['id'])

    op.create_table('leases',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('track_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('variant_id', sa.Integer(), nullable=False),
    sa.Column('worker_id', sa.String(length=32), nullable=False),
    sa.Column('seed', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('deadline', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('release_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['track_id'], ['tracks.id'], name=op.f('fk_leases_track_id_tracks')),
    sa.ForeignKeyConstraint(['variant_id'], ['variants.id'], name=op.f('fk_leases_variant_id_variants')),
    sa.ForeignKeyConstraint(['worker_id'], ['workers.id'], name=op.f('fk_leases_worker_id_workers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leases'))
    )
    with op.batch_alter_table('leases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_leases_deadline'), ['deadline'], unique=False)
        batch_op.create_index(batch_op.f('ix_leases_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_leases_track_id'), ['track_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_leases_variant_id'), ['variant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_leases_worker_id'), ['worker_id'], unique=False)

    op.create_table('runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lease_id', sa.String(length=32), nullable=False),
    sa.Column('worker_id', sa.String(length=32), nullable=False),
    sa.Column('variant_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('seed', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('val_bpb', sa.Float(), nullable=True),
    sa.Column('steps', sa.Integer(), nullable=True),
    sa.Column('train_seconds', sa.Float(), nullable=True),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('env', sa.JSON(), nullable=False),
    sa.Column('agent', sa.JSON(), nullable=True),
    sa.Column('payload_sha256', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['lease_id'], ['leases.id'], name=op.f('fk_runs_lease_id_leases')),
    sa.ForeignKeyConstraint(['variant_id'], ['variants.id'], name=op.f('fk_runs_variant_id_variants')),
    sa.ForeignKeyConstraint(['worker_id'], ['workers.id'], name=op.f('fk_runs_worker_id_workers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runs')),
    sa.UniqueConstraint('lease_id', name=op.f('uq_runs_lease_id'))
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runs_variant_id'), ['variant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_runs_worker_id'), ['worker_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('tracks', schema=None) as batch_op:
        batch_op.drop_constraint('fk_tracks_head_variant_id_variants', type_='foreignkey')
        batch_op.drop_constraint('fk_tracks_baseline_variant_id_variants', type_='foreignkey')

    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runs_worker_id'))
        batch_op.drop_index(batch_op.f('ix_runs_variant_id'))

    op.drop_table('runs')
    with op.batch_alter_table('leases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_leases_worker_id'))
        batch_op.drop_index(batch_op.f('ix_leases_variant_id'))
        batch_op.drop_index(batch_op.f('ix_leases_track_id'))
        batch_op.drop_index(batch_op.f('ix_leases_state'))
        batch_op.drop_index(batch_op.f('ix_leases_deadline'))

    op.drop_table('leases')
    with op.batch_alter_table('variants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_variants_track_id'))
        batch_op.drop_index(batch_op.f('ix_variants_status'))
        batch_op.drop_index(batch_op.f('ix_variants_parent_id'))
        batch_op.drop_index(batch_op.f('ix_variants_hash'))
        batch_op.drop_index(batch_op.f('ix_variants_author_worker_id'))

    op.drop_table('variants')
    with op.batch_alter_table('workers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workers_hardware_class'))
        batch_op.drop_index(batch_op.f('ix_workers_account_id'))

    op.drop_table('workers')
    with op.batch_alter_table('tracks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tracks_hardware_class'))

    op.drop_table('tracks')
    op.drop_table('accounts')
