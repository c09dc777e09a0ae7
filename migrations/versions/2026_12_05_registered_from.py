"""The address a worker last registered from (workers.registered_from): a further machine joins an
account without its secret only from an address one of the account's machines registered from.

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


def downgrade() -> None:
    with op.batch_alter_table('workers', schema=None) as batch_op:
        batch_op.drop_column('registered_from')
