"""Add the users of the review app and the holds of cards being reviewed.

Revision ID: 5b1e7a2c9d40
Revises: c90c8fa6b5d3
Create Date: 2026-12-04 23:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "5b1e7a2c9d40"
down_revision = "c90c8fa6b5d3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(), nullable=False),
        sa.Column("last_sign_in_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "card_holds",
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=False),
        sa.Column("taken_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["card_id"], ["cards.id"]),
        sa.PrimaryKeyConstraint("card_id"),
    )
    with op.batch_alter_table("card_holds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_card_holds_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("card_holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_card_holds_expires_at"))
    op.drop_table("card_holds")
    op.drop_table("users")
