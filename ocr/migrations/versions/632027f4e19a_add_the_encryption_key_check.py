"""Add the check value of the encryption key a store was first encrypted with.

Revision ID: 632027f4e19a
Revises: 7e294bb47eb8
Create Date: 2026-12-04 23:56:07.037639
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '632027f4e19a'
down_revision = '7e294bb47eb8'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('encryption_key_check',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key_check', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('encryption_key_check')
