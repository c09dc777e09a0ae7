"""Paired verification: a lease's control variant, the control's scores on each run, the author's
paired gain on each variant, the track's pooled noise and promotion settings, and the reason a
worker or an account was quarantined.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 12:00:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('quarantine_reason', sa.Text(), nullable=True))

    with op.batch_alter_table('workers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('quarantine_reason', sa.Text(), nullable=True))

    with op.batch_alter_table('tracks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('noise_sum_squares', sa.Float(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('noise_df', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('claim_margin', sa.Float(), server_default='1.0', nullable=False))
        batch_op.add_column(sa.Column('max_verifications', sa.Integer(), server_default='8', nullable=False))
        batch_op.add_column(sa.Column('verify_timeout_s', sa.Float(), server_default='86400', nullable=False))

    with op.batch_alter_table('variants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_gain', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('verified_gain', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('spot_check', sa.Boolean(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('previous_head_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_variants_previous_head_id_variants'), 'variants', ['previous_head_id'], ['id']
        )

    with op.batch_alter_table('leases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('control_variant_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_leases_control_variant_id_variants'), 'variants', ['control_variant_id'], ['id']
        )

    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('control_val_bpb', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('control_holdout_bpb', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('control_metrics', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('control_metrics')
        batch_op.drop_column('control_holdout_bpb')
        batch_op.drop_column('control_val_bpb')

    with op.batch_alter_table('leases', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_leases_control_variant_id_variants'), type_='foreignkey')
        batch_op.drop_column('control_variant_id')

    with op.batch_alter_table('variants', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_variants_previous_head_id_variants'), type_='foreignkey')
        batch_op.drop_column('previous_head_id')
        batch_op.drop_column('verified_gain')
        batch_op.drop_column('spot_check')
        batch_op.drop_column('claimed_gain')

    with op.batch_alter_table('tracks', schema=None) as batch_op:
        batch_op.drop_column('verify_timeout_s')
        batch_op.drop_column('max_verifications')
        batch_op.drop_column('claim_margin')
        batch_op.drop_column('noise_df')
        batch_op.drop_column('noise_sum_squares')

    with op.batch_alter_table('workers', schema=None) as batch_op:
        batch_op.drop_column('quarantine_reason')

    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('quarantine_reason')
