"""Core statements run on the driver's cursor, against SQLite and PostgreSQL: stored as SQLAlchemy stores them."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, func, insert, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError

from autolog.store import NewItem, Store
from autolog.store.driver_sql import CompiledFor, DriverStatement, driver_cursor
from autolog.store.models import Analysis, Frame, Item

_INSERT_ANALYSIS = CompiledFor(insert(Analysis.__table__))
_INSERT_FRAME = CompiledFor(insert(Frame.__table__))
_INSERT_ITEM = CompiledFor(insert(Item.__table__))
_CLEAR_TRANSCRIPTS = CompiledFor(update(Frame.__table__).where(Frame.__table__.c.item_id == bindparam("owner"))
                                 .values(transcript=None))


def test_an_insert_stores_json_and_fills_python_defaults(store: Store) -> None:
    # Given an item
    store.items.create([NewItem("LF1", "/a")])

    # When an analysis row goes in without its token counts, cost or creation time
    before = datetime.now(UTC)
    with store.engine.begin() as connection:
        _INSERT_ANALYSIS.run_many(connection, [{"item_id": "LF1", "provider": "local", "model": "m",
                                                "prompt": None, "result": {"shots": [1, 2], "note": "é"}}])

    # Then the ORM reads back what it would have written itself
    with store.sessions() as session:
        row = session.scalars(select(Analysis)).one()
        assert (row.result, row.prompt, row.input_tokens, row.output_tokens, row.cost_usd) == (
            {"shots": [1, 2], "note": "é"}, None, 0, 0, 0.0)
        assert before - timedelta(seconds=1) <= row.created_at.replace(tzinfo=UTC) <= datetime.now(UTC)


def test_a_statement_uses_the_values_it_carries_and_a_json_list(store: Store) -> None:
    # Given a frame with a transcript
    store.items.create([NewItem("LF1", "/a")])
    with store.engine.begin() as connection:
        _INSERT_FRAME.run_many(connection, [{"item_id": "LF1", "position": 0, "time_s": 1.5, "timecode": "01:00:01:12",
                                             "image_path": "/f.jpg", "description": "d", "keywords": ["a", "b"],
                                             "analysis": {"k": 1}, "transcript": "hello"}])

    # When the statement that clears it runs with only its item's id
    with store.engine.begin() as connection:
        cleared = _CLEAR_TRANSCRIPTS.run(connection, {"owner": "LF1"}).rowcount

    # Then the transcript is NULL, the rest as written
    with store.sessions() as session:
        frame = session.scalars(select(Frame)).one()
        assert (cleared, frame.transcript, frame.keywords, frame.analysis, frame.time_s) == (
            1, None, ["a", "b"], {"k": 1}, 1.5)


def test_a_column_an_insert_leaves_out_is_sql_null_not_json_null(store: Store) -> None:
    # When an item goes in without its probe or error (JSON columns) or reel, and another with an error of None
    with store.engine.begin() as connection:
        _INSERT_ITEM.run_many(connection, [{"id": "LF1", "source": "/a", "status": "0 - Pending File Info"},
                                           {"id": "LF2", "source": "/b", "status": "0 - Pending File Info",
                                            "error": None}])

    # Then the columns left out are SQL NULL, as SQLAlchemy leaves a column an insert does not name; a None
    # given is JSON 'null', as SQLAlchemy stores it; and the Python defaults are filled
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT id, probe IS NULL, error IS NULL, reel IS NULL, version, cancelled"
                                       " FROM items ORDER BY id")).all() == [
            ("LF1", True, True, True, 0, False), ("LF2", True, False, True, 0, False)]


def test_a_driver_error_is_raised_as_sqlalchemys(store: Store) -> None:
    # Given an analysis for an item
    store.items.create([NewItem("LF1", "/a")])
    row = {"item_id": "LF1", "provider": "local", "model": "m", "prompt": None, "result": {}}
    with store.engine.begin() as connection:
        _INSERT_ANALYSIS.run_many(connection, [row])

    # When a second one goes in for the same item, Then the driver's error comes as SQLAlchemy's, and nothing changed
    with pytest.raises(IntegrityError), store.engine.begin() as connection:
        _INSERT_ANALYSIS.run_many(connection, [{**row, "model": "second"}])
    with store.sessions() as session:
        assert session.scalars(select(Analysis.model)).all() == ["m"]


@pytest.mark.parametrize("default", [{"server_default": "x"}, {"default": func.lower("X")}],
                         ids=["server default", "SQL expression"])
def test_an_insert_of_a_table_with_a_database_side_default_is_refused(default: dict[str, Any]) -> None:
    # Given a table with a column whose default the database applies, When a driver insert is compiled for it,
    # Then it is refused: a row without that column would get NULL, not the default
    table = Table("with_default", MetaData(), Column("id", Integer, primary_key=True),
                  Column("name", String(10), **default))
    with pytest.raises(ValueError, match="'name'"):
        DriverStatement(insert(table), sqlite.dialect())


def test_sqlite_binds_none_as_null_without_looking_for_an_adapter(sqlite_store: Store) -> None:
    # A store's SQLite engine registers None's adapter (``create_store_engine``): the driver then takes
    # it from its table instead of raising and catching AttributeErrors for every None it binds.
    assert (type(None), sqlite3.PrepareProtocol) in sqlite3.adapters
    with sqlite_store.engine.connect() as connection:
        cursor = driver_cursor(connection)
        assert cursor.execute("SELECT ? IS NULL, typeof(?)", (None, None)).fetchone() == (1, "null")
