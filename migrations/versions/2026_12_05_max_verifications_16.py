"""A new track's cap on verify runs per candidate is 16 (tracks.max_verifications' server default);
existing tracks keep the cap they were created with.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 01:00:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('tracks', schema=None) as batch_op:
        batch_op.alter_column('max_verifications', server_default='16')


def downgrade() -> None:
    with op.batch_alter_table('tracks', schema=None) as batch_op:
        batch_op.alter_column('max_verifications', server_default='8')
