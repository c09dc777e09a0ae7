"""The address a worker last registered from (workers.registered_from): a further machine joins an
account without its secret only from an address one of the account's machines registered from.
And whether a variant's reporter took a strike for hiding it (variants.hid_gain_charged), taken back
if the promotion's audit refutes it, and how many audits a promoted head asks for once its audits
split (variants.audit_runs).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 03:00:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('workers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('registered_from', sa.String(length=64), nullable=True))
    with op.batch_alter_table('variants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hid_gain_charged', sa.Boolean(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('audit_runs', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('variants', schema=None) as batch_op:
        batch_op.drop_column('audit_runs')
        batch_op.drop_column('hid_gain_charged')
    with op.batch_alter_table('workers', schema=None) as batch_op:
        batch_op.drop_column('registered_from')
