"""Reporting worse: workers.report_bias and workers.report_bias_checks, each worker's record of
how much worse than others it reports what others measure too.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 10:00:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('workers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('report_bias', sa.Float(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('report_bias_checks', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('workers', schema=None) as batch_op:
        batch_op.drop_column('report_bias_checks')
        batch_op.drop_column('report_bias')
