"""Add the expected arrivals of the batch overview and the search log of personal-data searches.

Revision ID: c90c8fa6b5d3
Revises: 0001
Create Date: 2026-12-04 23:33:24.545771
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 'c90c8fa6b5d3'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('expected_arrivals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('arrival_date', sa.String(length=10), nullable=False),
    sa.Column('card_type', sa.String(length=64), nullable=False),
    sa.Column('expected_count', sa.Integer(), nullable=False),
    sa.Column('serial_first', sa.String(length=20), nullable=True),
    sa.Column('serial_last', sa.String(length=20), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('updated_by', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('arrival_date', 'card_type')
    )
    with op.batch_alter_table('expected_arrivals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_expected_arrivals_arrival_date'), ['arrival_date'], unique=False)

    op.create_table('search_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('query_masked', sa.String(length=120), nullable=False),
    sa.Column('query_hmac', sa.String(length=64), nullable=False),
    sa.Column('result_count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('search_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_search_log_actor'), ['actor'], unique=False)
        batch_op.create_index(batch_op.f('ix_search_log_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_search_log_query_hmac'), ['query_hmac'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('search_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_search_log_query_hmac'))
        batch_op.drop_index(batch_op.f('ix_search_log_at'))
        batch_op.drop_index(batch_op.f('ix_search_log_actor'))

    op.drop_table('search_log')
    with op.batch_alter_table('expected_arrivals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_expected_arrivals_arrival_date'))

    op.drop_table('expected_arrivals')
