"""Order the audit chain by its own sequence number, assigned when a transaction commits.

Events chained by the previous revision were linked in id order and their hash
did not cover a sequence number. Their hashes are dropped and the chain head
starts again, so ``python -m ocr audit verify`` counts them as events from
before the chain, like those written before any chain existed.

Revision ID: d967a61936ac
Revises: 632027f4e19a
Create Date: 2026-12-05 00:17:33.311438
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op


revision = 'd967a61936ac'
down_revision = '632027f4e19a'
branch_labels = None
depends_on = None

# PostgreSQL's own name for the constraint, used on SQLite too so that downgrade can name it.
_UNIQUE_NAME = "audit_events_chain_seq_key"
_GENESIS_HASH = "0" * 64


def upgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chain_seq', sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(_UNIQUE_NAME, ['chain_seq'])
    op.execute("UPDATE audit_events SET prev_hash = NULL, hash = NULL")
    head = sa.table(
        "audit_chain_head",
        sa.column("id", sa.Integer),
        sa.column("last_hash", sa.String),
        sa.column("event_count", sa.Integer),
        sa.column("updated_at", sa.DateTime),
    )
    op.execute(
        head.update()
        .where(head.c.id == 1)
        .values(last_hash=_GENESIS_HASH, event_count=0, updated_at=datetime.now(UTC).replace(tzinfo=None))
    )


def downgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_constraint(_UNIQUE_NAME, type_='unique')
        batch_op.drop_column('chain_seq')
