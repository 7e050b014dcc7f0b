"""one index on an item's status: ``ix_items_status_id`` (status, id) serves every status filter

``ix_items_status`` (status alone) duplicated the leading column of ``ix_items_status_id``,
which 0007 added for paged listings. Every status write updated both: on SQLite two more
B-tree pages in each step's commit (issue #13, the status-tracked drain).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 04:20:00
"""

from __future__ import annotations

from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_items_status', table_name='items')


def downgrade() -> None:
    op.create_index('ix_items_status', 'items', ['status'], unique=False)
