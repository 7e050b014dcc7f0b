"""purged items, and reads that stay flat: a purge mark on items, an index for a page of one status

A purge marks an item so discovery leaves it alone until it is queued again; a page of the
items at one status, in id order, reads the (status, id) index.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 01:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ALTER TABLE, not a batch: SQLite's batch mode copies the table, which would drop
    # the search triggers that 0005 put on it.
    op.add_column('items', sa.Column('purged', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index('ix_items_status_id', 'items', ['status', 'id'])


def downgrade() -> None:
    op.drop_index('ix_items_status_id', table_name='items')
    # SQLite 3.35+ and PostgreSQL drop a column in place (a batch would drop the search triggers).
    op.execute('ALTER TABLE items DROP COLUMN purged')
