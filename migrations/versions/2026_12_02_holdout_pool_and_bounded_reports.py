"""Held-out pool and bounded reports: tracks.holdout_sha256, variants.holdout_bpb, runs.holdout_bpb,
runs.layer and runs.code, and runs.steps widened to 64 bits (a worker may report up to 2**53 - 1).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 04:00:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('tracks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('holdout_sha256', sa.String(length=64), nullable=True))

    with op.batch_alter_table('variants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('holdout_bpb', sa.Float(), nullable=True))

    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('layer', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('code', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('holdout_bpb', sa.Float(), nullable=True))
        batch_op.alter_column('steps', existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=True)


def downgrade() -> None:
    # Narrowing steps fails on PostgreSQL if a stored count no longer fits 32 bits: nothing is lost silently.
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.alter_column('steps', existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=True)
        batch_op.drop_column('holdout_bpb')
        batch_op.drop_column('code')
        batch_op.drop_column('layer')

    with op.batch_alter_table('variants', schema=None) as batch_op:
        batch_op.drop_column('holdout_bpb')

    with op.batch_alter_table('tracks', schema=None) as batch_op:
        batch_op.drop_column('holdout_sha256')
