"""status counts that stay flat: a change row per status move, kept by triggers, folded by the sweep

Counting items per status by scanning ``items`` grows with the library (about 30 ms at
100,000 items, 15x the time at 1,000). Instead every insert, delete and status change of an
item appends rows to ``status_count_changes`` (``+1`` for the status it enters, ``-1`` for
the one it leaves), written by triggers in the writer's own transaction, so no writer can
miss one. Appending never waits on another writer, as a shared counter row would: every
status write would queue behind the one before it on PostgreSQL's row lock. The counts are
the sums per status; the sweep folds the rows into one per status every few seconds
(``Items.fold_status_counts``), so a read sums a handful of rows whatever the library's size.
Existing items are counted here.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 05:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_CHANGES = "INSERT INTO status_count_changes (status, change)"


def upgrade() -> None:
    op.create_table(
        'status_count_changes',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('status', sa.String(length=64), nullable=False),
        sa.Column('change', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""CREATE FUNCTION autolog_status_count() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_OP = 'INSERT' THEN {_CHANGES} VALUES (NEW.status, 1);
              ELSIF TG_OP = 'DELETE' THEN {_CHANGES} VALUES (OLD.status, -1);
              ELSIF OLD.status IS DISTINCT FROM NEW.status THEN
                {_CHANGES} VALUES (OLD.status, -1), (NEW.status, 1);
              END IF;
              RETURN NULL;
            END $$""")
        op.execute("CREATE TRIGGER status_count_items AFTER INSERT OR DELETE OR UPDATE OF status ON items"
                   " FOR EACH ROW EXECUTE FUNCTION autolog_status_count()")
    else:
        op.execute(f"""CREATE TRIGGER status_count_items_ai AFTER INSERT ON items BEGIN
            {_CHANGES} VALUES (new.status, 1); END""")
        op.execute(f"""CREATE TRIGGER status_count_items_ad AFTER DELETE ON items BEGIN
            {_CHANGES} VALUES (old.status, -1); END""")
        op.execute(f"""CREATE TRIGGER status_count_items_au AFTER UPDATE OF status ON items
            WHEN old.status IS NOT new.status BEGIN
            {_CHANGES} VALUES (old.status, -1), (new.status, 1); END""")
    op.execute(f"{_CHANGES} SELECT status, count(*) FROM items GROUP BY status")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER status_count_items ON items")
        op.execute("DROP FUNCTION autolog_status_count()")
    else:
        for suffix in ("ai", "ad", "au"):
            op.execute(f"DROP TRIGGER status_count_items_{suffix}")
    op.drop_table('status_count_changes')
