"""The statements every step message runs, as driver SQL written once per dialect.

Each step message gives the item to its run (``Items.start_run``) and moves its status
(``Items.transition``); a step-1 message without its source, or whose source is still
changing, first reads the item's guard (``SourceChecks``). Through SQLAlchemy's
statement and connection layers each cost 50-100 µs of Python before the driver saw it
(a SQLite guard read took 96 µs, 4 µs of it SQLite's), and under a worker's eight threads
that Python, contending for the GIL, set the drain rate. Here they are plain SQL strings on
the driver's cursor: on SQLite in the group commit's transaction (its kept connection), on
PostgreSQL on connections of their own (``AutocommitConnections``), and a driver error is raised
as SQLAlchemy's (``DBAPIError.instance``), so ``autolog.store.outages`` still tells an
outage from a fault. Values go through the columns' own bind processors
(``TypeEngine.bind_processor`` of the dialect), so every row is stored exactly as the ORM
stores it: a datetime as SQLite's text, a JSON ``None`` as ``'null'``, a boolean as ``0``.

On PostgreSQL each write is one statement, run outside a transaction (a statement is
atomic on its own): a data-modifying CTE that updates the item and inserts its timeline
and outbox rows from JSON arrays, one round trip instead of BEGIN, UPDATE, INSERTs, COMMIT.
Measured with ``bench/orchestration_bench.py`` (issue #13).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import ColumnElement, Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError

from autolog.errors import ItemNotFound
from autolog.processes import current_pid
from autolog.store.driver_sql import driver_cursor, run_on_cursor
from autolog.store.engine import PING_AFTER_IDLE_S, POSTGRES_STEP_CONNECTIONS
from autolog.store.models import Item, OutboxMessage, TimelineEvent, utcnow
from autolog.store.outbox import DEFAULT_LEASE_S, PendingMessage, outbox_rows

#: The timeline's columns a new event fills, in insert order (``id`` is the database's).
EVENT_COLUMNS = ("item_id", "at", "event", "step", "message_id", "attempt", "worker", "wait_ms", "run_ms",
                 "from_status", "to_status", "error_type", "error_message", "detail")

#: The outbox's columns a new message fills, in insert order.
OUTBOX_COLUMNS = ("message_id", "queue_name", "message", "delay_ms", "lease_until_s", "created_at")

_PG_EVENTS = f"""INSERT INTO timeline ({", ".join(EVENT_COLUMNS)})
    SELECT moved.id, e.at, e.event, e.step, e.message_id, e.attempt, e.worker, e.wait_ms, e.run_ms, e.from_status,
           e.to_status, e.error_type, e.error_message, COALESCE(e.detail, 'null'::json)
    FROM moved CROSS JOIN json_to_recordset(CAST(%(events)s AS json)) AS e(
        at timestamptz, event varchar, step varchar, message_id varchar, attempt integer, worker varchar,
        wait_ms integer, run_ms integer, from_status varchar, to_status varchar, error_type varchar,
        error_message text, detail json)"""


def _processor(column: ColumnElement[Any], dialect: Dialect) -> Callable[[Any], Any]:
    """Return how ``dialect`` stores a Python value of ``column`` (identity where the driver does it)."""
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    return process if process is not None else (lambda value: value)


def _result_processor(column: ColumnElement[Any], dialect: Dialect) -> Callable[[Any], Any]:
    """Return how ``dialect`` reads a stored value of ``column`` back into Python."""
    process = column.type.dialect_impl(dialect).result_processor(dialect, None)
    return process if process is not None else (lambda value: value)


class StepSql:
    """The guard read and the two status writes of a step message, for one engine.

    Args:
        engine: the store's engine (``sqlite`` or ``postgresql``): its dialect, and on
            PostgreSQL where ``AutocommitConnections`` connect to.
    """

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        self._engine = engine
        self._dialect = dialect
        self.postgres = dialect.name == "postgresql"
        self._connections = AutocommitConnections(engine) if self.postgres else None
        timeline, items, outbox = TimelineEvent.__table__.c, Item.__table__.c, OutboxMessage.__table__.c
        self._event_at = _processor(timeline.at, dialect)
        self._event_detail = _processor(timeline.detail, dialect)
        self._outbox_message = _processor(outbox.message, dialect)
        self._outbox_created = _processor(outbox.created_at, dialect)
        self._item_now = _processor(items.updated_at, dialect)
        self._fingerprint = _result_processor(items.source_fingerprint, dialect)
        #: The items table's columns a start write returns, with how each is read back into Python.
        self._item_columns = [column.name for column in items]
        self._item_results = [_result_processor(column, dialect) for column in items]
        self._item_index = {name: index for index, name in enumerate(self._item_columns)}
        returned = ", ".join(self._item_columns)
        if self.postgres:
            self._guard_sql = "SELECT status, cancelled, source, source_fingerprint FROM items WHERE id = %(id)s"
            self._exists_sql = "SELECT 1 FROM items WHERE id = %(id)s"
            self._start_sql = f"""WITH moved AS (
    UPDATE items SET run_token = %(token)s WHERE id = %(id)s AND status = %(status)s AND NOT cancelled
    RETURNING {returned}
), events AS ({_PG_EVENTS}), delivered AS (
    DELETE FROM outbox WHERE message_id = %(message_id)s
)
SELECT {returned} FROM moved"""
            self._transition_sql = {fenced: _pg_transition(fenced) for fenced in (False, True)}
            self._clear_sent_sql = "DELETE FROM outbox WHERE message_id = ANY(%(ids)s)"
        else:
            self._guard_sql = "SELECT status, cancelled, source, source_fingerprint FROM items WHERE id = ?"
            self._exists_sql = "SELECT 1 FROM items WHERE id = ?"
            self._start_sql = ("UPDATE items SET run_token = ? WHERE id = ? AND status = ? AND cancelled = 0"
                               f" RETURNING {returned}")
            self._delivered_sql = self._clear_sent_sql = "DELETE FROM outbox WHERE message_id = ?"
            self._transition_sql = {
                fenced: ("UPDATE items SET status = ?, version = version + 1, updated_at = ?, error = 'null',"
                         " dead_lettered = 0, purged = 0 WHERE id = ? AND status = ? AND cancelled = 0"
                         + (" AND run_token = ?" if fenced else ""))
                for fenced in (False, True)}
            self._events_sql = (f"INSERT INTO timeline ({', '.join(EVENT_COLUMNS)})"
                                f" VALUES ({', '.join('?' for _ in EVENT_COLUMNS)})")
            self._outbox_sql = (f"INSERT INTO outbox ({', '.join(OUTBOX_COLUMNS)})"
                                f" VALUES ({', '.join('?' for _ in OUTBOX_COLUMNS)})")

    def close(self) -> None:
        """Close the idle connections of PostgreSQL's statements (the next statement opens one)."""
        if self._connections is not None:
            self._connections.close()

    @contextmanager
    def _borrowed(self) -> Iterator[Any]:
        """Lend a cursor on a PostgreSQL connection that commits each statement on its own (autocommit)."""
        assert self._connections is not None
        with self._connections.lend() as connection, connection.cursor() as cursor:
            yield cursor

    def _run(self, cursor: Any, sql: str, parameters: Any, *, many: bool = False) -> Any:
        """Run ``sql`` on ``cursor`` (``autolog.store.driver_sql.run_on_cursor``); return the cursor."""
        return run_on_cursor(cursor, sql, parameters, self._dialect, many=many)

    def guard(self, item_id: str,
              connection: Connection | None = None) -> tuple[str, bool, str, dict[str, Any] | None] | None:
        """Read the item's status, cancel mark, source and source fingerprint; None when it does not exist.

        On SQLite, in ``connection``'s transaction (the group commit's, whose kept connection spares
        the read a pool checkout: half its cost); on PostgreSQL, on a pooled connection.
        """
        if self.postgres:
            with self._borrowed() as cursor:
                row = self._run(cursor, self._guard_sql, {"id": item_id}).fetchone()
        else:
            row = self._run(_cursor(connection), self._guard_sql, (item_id,)).fetchone()
        if row is None:
            return None
        return row[0], bool(row[1]), row[2], self._fingerprint(row[3])

    def start_run(self, item_id: str, status: str, token: str, events: Sequence[dict[str, Any]],
                  message_id: str | None, connection: Connection | None = None) -> tuple[Any, ...] | None:
        """Give the item to run ``token`` if it is at ``status`` and not cancelled, with ``events``.

        With it, whether the item moved or not, the outbox row of ``message_id`` (the broker
        message being delivered) goes: the broker has the message, so no relay may send it
        again once its writer's lease runs out, even if the writer died before clearing it.
        A copy sent then would start the step once more and supersede this run.
        On SQLite, in ``connection``'s transaction; on PostgreSQL, one statement on its own.

        Returns:
            The item's row as the write left it, as the driver returned it (``read_item`` and
            ``read_column`` read it as the ORM does), when the run now holds it (what the checks
            of a step's source and the step itself read: no read of their own); None when it did
            not move.
        """
        if self.postgres:
            with self._borrowed() as cursor:
                row = self._run(cursor, self._start_sql, {
                    "id": item_id, "status": status, "token": token, "events": _events_json(events),
                    "message_id": message_id}).fetchone()
        else:
            cursor = _cursor(connection)
            row = self._run(cursor, self._start_sql, (token, item_id, status)).fetchone()
            if row is not None:
                self._insert_events(cursor, events)
            self._run(cursor, self._delivered_sql, (message_id,))
        return tuple(row) if row is not None else None

    def read_item(self, row: tuple[Any, ...]) -> dict[str, Any]:
        """Read a row ``start_run`` returned: column name → value as the ORM reads it."""
        columns = zip(self._item_columns, self._item_results, row, strict=True)
        return {name: read(value) for name, read, value in columns}

    def read_column(self, row: tuple[Any, ...], name: str) -> Any:
        """Read one column of a row ``start_run`` returned, as the ORM reads it.

        Raises:
            KeyError: the items table has no such column.
        """
        index = self._item_index[name]
        return self._item_results[index](row[index])

    def transition(self, item_id: str, expected: str, target: str, token: str | None,
                   events: Sequence[dict[str, Any]], messages: Sequence[PendingMessage],
                   connection: Connection | None = None) -> bool:
        """Move the item from ``expected`` to ``target`` (only while run ``token`` holds it, when given).

        With the move, ``events`` go to the timeline and ``messages`` to the outbox, leased to
        the caller for ``DEFAULT_LEASE_S``; nothing is written otherwise.
        On SQLite, in ``connection``'s transaction; on PostgreSQL, one statement on its own.

        Returns:
            True if it moved.

        Raises:
            ItemNotFound: it did not move because no item has that id.
        """
        now = utcnow()
        lease_until_s = time.time() + DEFAULT_LEASE_S
        if self.postgres:
            arguments = {"id": item_id, "expected": expected, "target": target, "now": now,
                         "events": _events_json(events),
                         "messages": json.dumps(outbox_rows(messages, lease_until_s=lease_until_s))}
            if token is not None:
                arguments["token"] = token
            with self._borrowed() as cursor:
                if self._run(cursor, self._transition_sql[token is not None], arguments).fetchone()[0]:
                    return True
                self._raise_if_missing(cursor, item_id)
                return False
        cursor = _cursor(connection)
        parameters: tuple[Any, ...] = (target, self._item_now(now), item_id, expected)
        if not self._run(cursor, self._transition_sql[token is not None],
                         (*parameters, token) if token is not None else parameters).rowcount:
            self._raise_if_missing(cursor, item_id)
            return False
        self._insert_events(cursor, events)
        if messages:
            created = self._outbox_created(now)
            self._run(cursor, self._outbox_sql, [
                (message.message_id, message.queue_name, self._outbox_message(message.message), message.delay_ms,
                 lease_until_s, created) for message in messages], many=True)
        return True

    def clear_sent(self, message_ids: Sequence[str], connection: Connection | None = None) -> int:
        """Delete the outbox rows of ``message_ids`` (messages the broker accepted); return how many went.

        On SQLite, in ``connection``'s transaction; on PostgreSQL, one statement on its own.
        Through SQLAlchemy, its expanding ``IN`` was compiled anew for every call: a quarter of a
        millisecond per call on SQLite, against 0.12 ms here, most of it the transaction (issue #13).
        """
        if self.postgres:
            with self._borrowed() as cursor:
                return int(self._run(cursor, self._clear_sent_sql, {"ids": list(message_ids)}).rowcount)
        cursor = self._run(_cursor(connection), self._clear_sent_sql, [(message_id,) for message_id in message_ids],
                           many=True)
        return int(cursor.rowcount)

    def _raise_if_missing(self, cursor: Any, item_id: str) -> None:
        if self._run(cursor, self._exists_sql, {"id": item_id} if self.postgres else (item_id,)).fetchone() is None:
            raise ItemNotFound(item_id)

    def _insert_events(self, cursor: Any, events: Sequence[dict[str, Any]]) -> None:
        """Insert timeline rows (SQLite), each a dict of ``EVENT_COLUMNS`` whose ``at`` is set."""
        at, detail = self._event_at, self._event_detail
        self._run(cursor, self._events_sql, [
            (event["item_id"], at(event["at"]), event["event"], event["step"], event["message_id"], event["attempt"],
             event["worker"], event["wait_ms"], event["run_ms"], event["from_status"], event["to_status"],
             event["error_type"], event["error_message"], detail(event["detail"])) for event in events], many=True)


class AutocommitConnections:
    """PostgreSQL connections for the step statements, each committing every statement on its own.

    Kept apart from the engine's pool: a checkout there, with autocommit set on the way out and
    unset and rolled back on the way in, cost more than the statement (about 100 of a guard
    read's 160 µs of Python). At most ``POSTGRES_STEP_CONNECTIONS`` are open in a process (a
    thread waits for one past that). Idle connections wait on a stack; the most recently used is
    lent first. One unused longer than ``PING_AFTER_IDLE_S`` is pinged first, as the engine's
    pool does. One the server dropped is closed, with every idle one here and in the engine's
    pool (a restart drops them all: the outbox relay's next clear must not meet a dead
    connection), and its statement's error is raised as SQLAlchemy's, as an outage. One given
    back mid-statement (a time limit's exception) or after ``close`` is closed, not kept. A
    forked child opens its own.

    Args:
        engine: where to connect, with the arguments its dialect connects with.
    """

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        self._engine = engine
        self._dialect = dialect
        self._dbapi_error: type[Exception] = dialect.loaded_dbapi.Error
        self._arguments, self._options = dialect.create_connect_args(engine.url)
        self._lock = threading.Lock()
        self._pid = -1
        self._open: threading.BoundedSemaphore
        #: Idle connections with when each was last used (``time.monotonic``), most recent last.
        self._idle: list[tuple[Any, float]]
        #: Bumped by ``close``: a connection lent before it is closed when given back.
        self._generation = 0
        self._forked()

    def _forked(self) -> None:
        """Start afresh in this process (under the lock, or before any thread can use this)."""
        self._pid = current_pid()
        self._open = threading.BoundedSemaphore(POSTGRES_STEP_CONNECTIONS)
        self._idle = []

    @contextmanager
    def lend(self) -> Iterator[Any]:
        """Lend a connection.

        Raises:
            sqlalchemy.exc.DBAPIError: none could be opened (an ``OperationalError``: an outage).
        """
        with self._lock:
            if self._pid != current_pid():  # A forked child must not touch its parent's connections.
                self._forked()
            opened, generation = self._open, self._generation
        opened.acquire()
        try:
            connection = self._take()
        except BaseException:
            opened.release()
            raise
        try:
            yield connection
        finally:
            self._give_back(connection, generation)
            opened.release()

    def _give_back(self, connection: Any, generation: int) -> None:
        if connection.closed or connection.broken:
            connection.close()
            # The server dropped it: the idle ones, here and in the engine's pool, are likely gone too.
            self.close()
            self._engine.dispose()
            return
        with self._lock:
            keep = generation == self._generation and connection.info.transaction_status.name == "IDLE"
            if keep:
                self._idle.append((connection, time.monotonic()))
        if not keep:
            connection.close()

    def _take(self) -> Any:
        while True:
            with self._lock:
                connection, used_at_s = self._idle.pop() if self._idle else (None, 0.0)
            if connection is None:
                try:
                    return self._dialect.loaded_dbapi.connect(*self._arguments, **self._options, autocommit=True)
                except self._dbapi_error as ex:
                    raise DBAPIError.instance(None, None, ex, self._dbapi_error, dialect=self._dialect) from ex
            if time.monotonic() - used_at_s < PING_AFTER_IDLE_S:
                return connection
            try:
                self._dialect.do_ping(connection)
            except Exception:  # Dropped while idle: close it and take another.
                connection.close()
                continue
            return connection

    def close(self) -> None:
        """Close the idle connections; those lent now are closed when given back."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._generation += 1
            mine = self._pid == current_pid()
        for connection, _ in idle if mine else ():
            connection.close()


def _cursor(connection: Connection | None) -> Any:
    """Return a driver cursor in ``connection``'s transaction (SQLite's writes run in the group commit's)."""
    if connection is None:
        raise TypeError("a SQLite write needs the transaction's connection")
    return driver_cursor(connection)


def _pg_transition(fenced: bool) -> str:
    fence = " AND run_token = %(token)s" if fenced else ""
    return f"""WITH moved AS (
    UPDATE items SET status = %(target)s, version = version + 1, updated_at = %(now)s, error = 'null'::json,
                     dead_lettered = false, purged = false
    WHERE id = %(id)s AND status = %(expected)s AND NOT cancelled{fence} RETURNING id
), events AS ({_PG_EVENTS}), messages AS (
    INSERT INTO outbox ({", ".join(OUTBOX_COLUMNS)})
    SELECT m.message_id, m.queue_name, m.message, m.delay_ms, m.lease_until_s, %(now)s
    FROM moved CROSS JOIN json_to_recordset(CAST(%(messages)s AS json)) AS m(
        message_id varchar, queue_name varchar, message json, delay_ms integer, lease_until_s double precision)
)
SELECT count(*) FROM moved"""


def _events_json(entries: Sequence[dict[str, Any]]) -> str:
    return json.dumps([{**entry, "at": entry["at"].isoformat()} for entry in entries])
