"""The lineage's frozen promotion facts (the value and the runs a git commit records), where a
variant came from (an agent's explore run or a person's submission), and when an unverified
candidate was re-queued.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 16:00:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('variants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('promoted_val_bpb', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('verified_by', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('origin', sa.String(length=16), server_default='agent', nullable=False))
        batch_op.add_column(sa.Column('requeued_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('variants', schema=None) as batch_op:
        batch_op.drop_column('requeued_at')
        batch_op.drop_column('origin')
        batch_op.drop_column('verified_by')
        batch_op.drop_column('promoted_val_bpb')
