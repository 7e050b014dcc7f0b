"""outbox: messages committed with the status they follow, relayed to the broker

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 01:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('message_id', sa.String(length=64), nullable=False),
    sa.Column('queue_name', sa.String(length=100), nullable=False),
    sa.Column('message', sa.JSON(), nullable=False),
    sa.Column('delay_ms', sa.Integer(), nullable=True),
    sa.Column('lease_until_s', sa.Float(), nullable=False),
    sa.Column('claimed_by', sa.String(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id'),
    )
    op.create_index('ix_outbox_lease_until_s', 'outbox', ['lease_until_s'])


def downgrade() -> None:
    op.drop_index('ix_outbox_lease_until_s', table_name='outbox')
    op.drop_table('outbox')
