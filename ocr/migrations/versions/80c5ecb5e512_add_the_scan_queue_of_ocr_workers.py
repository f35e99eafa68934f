"""Add the scan queue of the OCR workers: the state of each scan stored by ingest --queue.

Revision ID: 80c5ecb5e512
Revises: 5b1e7a2c9d40
Create Date: 2026-12-04 23:35:24.926329
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '80c5ecb5e512'
down_revision = '5b1e7a2c9d40'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('scan_queue',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scan_id', sa.Integer(), nullable=False),
    sa.Column('batch', sa.String(length=200), nullable=False),
    sa.Column('engine', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('queued_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['scan_id'], ['scans.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('scan_id')
    )
    with op.batch_alter_table('scan_queue', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scan_queue_state'), ['state'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('scan_queue', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scan_queue_state'))

    op.drop_table('scan_queue')
