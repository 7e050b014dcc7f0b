"""source facts: media kind, source timecode, rate, reel and fingerprint on items

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 00:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('items') as batch:
        batch.add_column(sa.Column('media_kind', sa.String(length=10), nullable=True))
        batch.add_column(sa.Column('start_timecode', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('drop_frame', sa.Boolean(), nullable=True))
        batch.add_column(sa.Column('nominal_fps', sa.String(length=24), nullable=True))
        batch.add_column(sa.Column('reel', sa.String(length=120), nullable=True))
        batch.add_column(sa.Column('source_fingerprint', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('items') as batch:
        for column in ('source_fingerprint', 'reel', 'nominal_fps', 'drop_frame', 'start_timecode', 'media_kind'):
            batch.drop_column(column)
