"""Reporting its own results better: workers.result_bias and workers.result_bias_checks, each
worker's record of how much better than another account reproduces them it reports its own
discarded changes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 00:00:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('workers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('result_bias', sa.Float(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('result_bias_checks', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('workers', schema=None) as batch_op:
        batch_op.drop_column('result_bias_checks')
        batch_op.drop_column('result_bias')
