"""search: one search entry per item name, frame record and transcript segment, kept by triggers

Every text a user searches (the item id, its source, each frame record's description and
keywords, each transcript segment) gets a row in ``search_entries``, written by database
triggers on ``items``, ``frames`` and ``transcript_segments``: every writer, now and future,
keeps the index right, in the writer's own transaction, and deleting or replacing rows (a
step run again, an item deleted) removes their entries. Existing rows are backfilled here.

- SQLite: an external-content FTS5 table ``search_fts`` over ``search_entries``
  (tokenizer ``unicode61 remove_diacritics 2``), kept by triggers on ``search_entries``.
- PostgreSQL: a ``tsvector`` column with a GIN index, computed by a trigger with the text
  search configuration ``autolog_search``: the ``simple`` configuration (no stemming, no stop
  words: ids, reel names and speech in any language match as written), with accents folded
  by the ``unaccent`` dictionary when that extension can be created by the migrating role
  (it is a trusted extension since PostgreSQL 13); without it, accents must match.

A later SQLite migration that rebuilds ``items``, ``frames`` or ``transcript_segments`` (Alembic
batch mode) drops their triggers and must create them again (``test_search`` checks they exist
at the newest schema); it must also run with foreign keys off, or dropping the old table
deletes every row that references it (with these triggers SQLite refuses: "table is locked").

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import DBAPIError

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

#: The FTS5 columns (SQLite) and ``search_entries`` text columns, in order.
TEXT_COLUMNS = ("ident", "source", "description", "keywords", "transcript")

_COLUMNS = ", ".join(TEXT_COLUMNS)
_NEW = ", ".join(f"new.{column}" for column in TEXT_COLUMNS)
_OLD = ", ".join(f"old.{column}" for column in TEXT_COLUMNS)

#: Where each source row's entry comes from; ``{row}`` is ``NEW`` in triggers, a table alias in the backfill.
_ITEM_ENTRY = "SELECT {row}.id, 'item', NULL, NULL, NULL, NULL, {row}.id, {row}.source, NULL, NULL, NULL"
_SPEECH_ENTRY = ("SELECT {row}.item_id, 'speech', {row}.id, {row}.position, {row}.start_s, NULL,"
                 " NULL, NULL, NULL, NULL, {row}.text")
_ENTRY_COLUMNS = f"item_id, kind, ref_id, position, time_s, timecode, {_COLUMNS}"

_SQLITE_KEYWORDS = "(SELECT group_concat(value, ', ') FROM json_each({row}.keywords))"
_POSTGRES_KEYWORDS = ("(SELECT string_agg(value, ', ') FROM json_array_elements_text("
                      "CASE WHEN json_typeof({row}.keywords) = 'array' THEN {row}.keywords ELSE '[]' END) AS value)")


def _frame_entry(keywords: str) -> str:
    return ("SELECT {row}.item_id, 'frame', {row}.id, {row}.position, {row}.time_s, {row}.timecode,"
            f" NULL, NULL, {{row}}.description, {keywords}, NULL")


def _entry_sources(keywords: str) -> dict[str, tuple[str, str, str]]:
    """Return, per source table: its entry kind, the SELECT of its entry, the columns a change of which re-indexes."""
    return {
        "items": ("item", _ITEM_ENTRY, "source"),
        "frames": ("frame", _frame_entry(keywords), "position, time_s, timecode, description, keywords"),
        "transcript_segments": ("speech", _SPEECH_ENTRY, "position, start_s, text"),
    }


def upgrade() -> None:
    op.create_table(
        'search_entries',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('item_id', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('ref_id', sa.Integer(), nullable=True),
        sa.Column('position', sa.Integer(), nullable=True),
        sa.Column('time_s', sa.Float(), nullable=True),
        sa.Column('timecode', sa.String(length=16), nullable=True),
        *(sa.Column(column, sa.Text(), nullable=True) for column in TEXT_COLUMNS),
        sa.ForeignKeyConstraint(['item_id'], ['items.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_search_entries_item_id', 'search_entries', ['item_id'])
    op.create_index('ix_search_entries_ref', 'search_entries', ['kind', 'ref_id'])
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgres()
    else:
        _upgrade_sqlite()


def _upgrade_sqlite() -> None:
    op.execute(
        f"CREATE VIRTUAL TABLE search_fts USING fts5({_COLUMNS}, content='search_entries', content_rowid='id',"
        " tokenize='unicode61 remove_diacritics 2')"
    )
    op.execute(f"""CREATE TRIGGER search_entries_ai AFTER INSERT ON search_entries BEGIN
        INSERT INTO search_fts(rowid, {_COLUMNS}) VALUES (new.id, {_NEW}); END""")
    op.execute(f"""CREATE TRIGGER search_entries_ad AFTER DELETE ON search_entries BEGIN
        INSERT INTO search_fts(search_fts, rowid, {_COLUMNS}) VALUES ('delete', old.id, {_OLD}); END""")
    op.execute(f"""CREATE TRIGGER search_entries_au AFTER UPDATE ON search_entries BEGIN
        INSERT INTO search_fts(search_fts, rowid, {_COLUMNS}) VALUES ('delete', old.id, {_OLD});
        INSERT INTO search_fts(rowid, {_COLUMNS}) VALUES (new.id, {_NEW}); END""")
    for table, (kind, entry, watched) in _entry_sources(_SQLITE_KEYWORDS).items():
        new_entry = entry.format(row="new")
        forget = ("DELETE FROM search_entries WHERE item_id = old.id AND kind = 'item'" if kind == "item"
                  else f"DELETE FROM search_entries WHERE kind = '{kind}' AND ref_id = old.id")
        op.execute(f"""CREATE TRIGGER search_{table}_ai AFTER INSERT ON {table} BEGIN
            INSERT INTO search_entries ({_ENTRY_COLUMNS}) {new_entry}; END""")
        op.execute(f"CREATE TRIGGER search_{table}_ad AFTER DELETE ON {table} BEGIN {forget}; END")
        op.execute(f"""CREATE TRIGGER search_{table}_au AFTER UPDATE OF {watched} ON {table} BEGIN
            {forget}; INSERT INTO search_entries ({_ENTRY_COLUMNS}) {new_entry}; END""")
    _backfill(_SQLITE_KEYWORDS)


#: ASCII marks the PostgreSQL parser would fuse with their neighbours into one token (file
#: paths, host names, e-mail addresses, decimals, timecodes, hyphenated words); a zero-width
#: space after each makes it a separator, so ``C0001.MP4`` is the words ``C0001`` and ``MP4``
#: as in FTS5. Readers strip the zero-width spaces from headlines.
_POSTGRES_SPLIT = r"regexp_replace(coalesce(value, ''), '([./@:\\;+_-])', '\1' || chr(8203), 'g')"


def _upgrade_postgres() -> None:
    op.execute("ALTER TABLE search_entries ADD COLUMN document tsvector NOT NULL DEFAULT ''::tsvector")
    op.execute("CREATE INDEX ix_search_entries_document ON search_entries USING GIN (document)")
    op.execute("CREATE TEXT SEARCH CONFIGURATION autolog_search (COPY = simple)")
    if _create_unaccent():
        op.execute("ALTER TEXT SEARCH CONFIGURATION autolog_search ALTER MAPPING FOR"
                   " asciiword, asciihword, hword_asciipart, word, hword, hword_part, numword, numhword, hword_numpart"
                   " WITH unaccent, simple")
    op.execute(f"""CREATE FUNCTION autolog_search_text(value text) RETURNS text
        LANGUAGE sql IMMUTABLE AS $$ SELECT {_POSTGRES_SPLIT} $$""")
    weights = dict(zip(TEXT_COLUMNS, ("A", "B", "D", "C", "D"), strict=True))
    document = " || ".join(
        f"setweight(to_tsvector('autolog_search', autolog_search_text(NEW.{column})), '{weight}')"
        for column, weight in weights.items()
    )
    op.execute(f"""CREATE FUNCTION autolog_search_document() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN NEW.document := {document}; RETURN NEW; END $$""")
    op.execute("CREATE TRIGGER search_entries_document BEFORE INSERT OR UPDATE ON search_entries"
               " FOR EACH ROW EXECUTE FUNCTION autolog_search_document()")
    for table, (kind, entry, watched) in _entry_sources(_POSTGRES_KEYWORDS).items():
        forget = ("DELETE FROM search_entries WHERE item_id = OLD.id AND kind = 'item'" if kind == "item"
                  else f"DELETE FROM search_entries WHERE kind = '{kind}' AND ref_id = OLD.id")
        op.execute(f"""CREATE FUNCTION autolog_search_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_OP IN ('DELETE', 'UPDATE') THEN {forget}; END IF;
              IF TG_OP IN ('INSERT', 'UPDATE') THEN
                INSERT INTO search_entries ({_ENTRY_COLUMNS}) {entry.format(row="NEW")};
              END IF;
              RETURN NULL;
            END $$""")
        op.execute(f"CREATE TRIGGER search_{table} AFTER INSERT OR DELETE OR UPDATE OF {watched} ON {table}"
                   f" FOR EACH ROW EXECUTE FUNCTION autolog_search_{table}()")
    _backfill(_POSTGRES_KEYWORDS)


def _create_unaccent() -> bool:
    """Create the ``unaccent`` extension if this server has it and the role may; say whether it is there."""
    bind = op.get_bind()
    available = bind.execute(sa.text(
        "SELECT count(*) FROM pg_available_extensions WHERE name = 'unaccent'")).scalar_one()
    if not available:
        return False
    savepoint = bind.begin_nested()
    try:
        bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS unaccent"))
    except DBAPIError:
        # NOTE(search): a role that may not create extensions still gets search, without accent folding.
        savepoint.rollback()
        return False
    savepoint.commit()
    return True


def _backfill(keywords: str) -> None:
    for table, (_kind, entry, _watched) in _entry_sources(keywords).items():
        op.execute(f"INSERT INTO search_entries ({_ENTRY_COLUMNS}) {entry.format(row='source_row')}"
                   f" FROM {table} AS source_row")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("items", "frames", "transcript_segments"):
            op.execute(f"DROP TRIGGER IF EXISTS search_{table} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS autolog_search_{table}()")
        op.drop_table('search_entries')
        op.execute("DROP FUNCTION IF EXISTS autolog_search_document()")
        op.execute("DROP FUNCTION IF EXISTS autolog_search_text(text)")
        op.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS autolog_search")
        return
    for table in ("items", "frames", "transcript_segments"):
        for suffix in ("ai", "ad", "au"):
            op.execute(f"DROP TRIGGER IF EXISTS search_{table}_{suffix}")
    op.execute("DROP TABLE IF EXISTS search_fts")
    op.drop_table('search_entries')
