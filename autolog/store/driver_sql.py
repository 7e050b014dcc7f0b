"""Core statements compiled once per dialect and run on the driver's cursor.

A step's saves (``autolog.store.results``) and its fence checks (``autolog.store.fencing``)
are SQLAlchemy Core statements built once. Run through ``Connection.execute`` each still
cost 60-100 µs of SQLAlchemy's Python (the execution context, the compiled cache's lookup,
the result object) around a few µs of SQLite: a save of three statements took 0.37 ms, five
saves and fence checks an item (``bench/orchestration_bench.py``'s CPU row, issue #13).
Here each is compiled once for the dialect (its SQL, its parameters' order, the columns' own
bind processors) and run on the driver's cursor of the caller's transaction, as
``autolog.store.step_sql`` runs the status writes: every value is stored as SQLAlchemy would
store it (a JSON value as its text, a datetime as SQLite's text), an insert fills a missing
column from its Python default (``default=utcnow``), and a driver error is raised as
SQLAlchemy raises it (``DBAPIError.instance``), so ``autolog.store.outages`` still tells an
outage from a fault.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Column, Connection, Dialect, Insert, Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


def run_on_cursor(cursor: Any, sql: str, parameters: Any, dialect: Dialect, *, many: bool = False) -> Any:
    """Run ``sql`` with ``parameters`` on a driver ``cursor``; return the cursor.

    Raises:
        sqlalchemy.exc.DBAPIError: the driver's error as SQLAlchemy raises it (an
            ``OperationalError`` for an outage, an ``IntegrityError`` for a constraint).
    """
    error: type[Exception] = dialect.loaded_dbapi.Error
    try:
        if many:
            cursor.executemany(sql, parameters)
        else:
            cursor.execute(sql, parameters)
    except error as ex:
        raise DBAPIError.instance(sql, parameters, ex, error, dialect=dialect) from ex
    return cursor


def driver_cursor(connection: Connection) -> Any:
    """Return a driver cursor in ``connection``'s transaction."""
    return connection.connection.driver_connection.cursor()  # type: ignore[union-attr]


class DriverStatement:
    """A Core statement, compiled for one dialect, that runs on a transaction's driver cursor.

    Args:
        statement: a Core statement whose parameters are ``bindparam``s with names (an
            ``insert`` takes its table's columns by key). No expanding (``IN``) parameter: its
            SQL changes with each call's values.
        dialect: the engine's dialect (``sqlite`` with its ``?`` parameters, or ``postgresql``
            with psycopg's ``%(name)s``).

    An ``insert`` fills every column of its table but the autoincremented key: a row without
    one of them gets that column's Python default (a value, or a callable's result), else NULL.
    A row's key that names no column is not stored (SQLAlchemy would refuse it).

    Raises:
        ValueError: an ``insert``'s table has a column whose default is the database's (a server
            default, a SQL expression), which a row without it would not get.
    """

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        columns: list[str] | None = None
        if isinstance(statement, Insert):
            table = statement.table
            assert isinstance(table, Table)
            columns = [column.key for column in table.c if column is not table.autoincrement_column]
        compiled = cast("SQLCompiler", statement.compile(dialect=dialect, column_keys=columns))
        self.sql = compiled.string
        self._dialect = dialect
        #: Whether the driver takes the values as a sequence in the SQL's order (qmark), or as a mapping.
        self._positional = compiled.positiontup is not None
        names = list(compiled.positiontup) if compiled.positiontup is not None else list(compiled.binds)
        #: Each parameter's name and its column's bind processor (None where the driver takes the value as it is).
        self._plan = [(name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
                      for name in names]
        self._names = names
        #: The values the statement carries itself (``.values(transcript=None)``), for a call that gives none.
        self._fixed = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
        self._defaults: dict[str, Callable[[], Any]] = {}
        if columns is not None:
            self._defaults = {name: _default_of(cast("Column[Any]", table.c[name])) for name in columns}

    def _values(self, parameters: Mapping[str, Any]) -> Any:
        if self._fixed:
            parameters = {**self._fixed, **parameters}
        defaults = self._defaults
        values = []
        for name, process in self._plan:  # A plain loop: per value, a function call less than a helper's.
            value = parameters[name] if name in parameters or not defaults else defaults[name]()
            if value is _SQL_NULL:
                value = None
            elif process is not None:
                value = process(value)
            values.append(value)
        return values if self._positional else dict(zip(self._names, values, strict=True))

    def run(self, connection: Connection, parameters: Mapping[str, Any]) -> Any:
        """Run once with ``parameters`` (name → value) in ``connection``'s transaction; return the driver cursor.

        Raises:
            sqlalchemy.exc.DBAPIError: the driver refused it (see ``run_on_cursor``).
        """
        return run_on_cursor(driver_cursor(connection), self.sql, self._values(parameters), self._dialect)

    def run_many(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run once per row of ``rows`` in one ``executemany``, in ``connection``'s transaction; nothing for none.

        Raises:
            sqlalchemy.exc.DBAPIError: the driver refused it (see ``run_on_cursor``).
        """
        if rows:
            run_on_cursor(driver_cursor(connection), self.sql, [self._values(row) for row in rows], self._dialect,
                          many=True)


#: The value of a column an insert's row leaves out and that has no Python default: SQL NULL, not
#: its type's encoding of None (a JSON column would store ``'null'``, as it does for a None given).
_SQL_NULL = object()


def _default_of(column: Column[Any]) -> Callable[[], Any]:
    """Return what gives ``column``'s Python default for a row without it: its value, its callable's result, or NULL.

    Raises:
        ValueError: the column's default is the database's (a server default, a SQL expression):
            SQLAlchemy would leave the column out of the insert for it, where this binds NULL.
    """
    default = column.default
    if default is None:
        if column.server_default is not None:
            raise ValueError(f"column {column.key!r} has only a server default, which a driver insert cannot apply")
        return lambda: _SQL_NULL
    if not getattr(default, "is_scalar", False) and not getattr(default, "is_callable", False):
        raise ValueError(f"column {column.key!r} has a SQL default, which a driver insert cannot apply")
    if default.is_scalar:
        value = default.arg  # type: ignore[attr-defined]
        return lambda: value
    # SQLAlchemy wraps a callable that takes no argument into one that takes the execution context.
    call = default.arg  # type: ignore[attr-defined]
    return lambda: call(None)


class CompiledFor:
    """Compiles Core statements for each dialect once, on first use.

    Keyed by the dialect's name and driver, so the stores a process opens (or a test suite's)
    share one compiled statement each: with the bind processors of the first engine's dialect
    (every store engine is made alike, ``create_store_engine``).

    Args:
        statement: the Core statement (as ``DriverStatement`` takes it).
    """

    def __init__(self, statement: ClauseElement) -> None:
        self._statement = statement
        self._compiled: dict[tuple[str, str], DriverStatement] = {}

    def on(self, connection: Connection) -> DriverStatement:
        """Return the statement compiled for ``connection``'s dialect."""
        dialect = connection.dialect
        key = (dialect.name, dialect.driver)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = DriverStatement(self._statement, dialect)
        return compiled

    def run(self, connection: Connection, parameters: Mapping[str, Any]) -> Any:
        """Run once in ``connection``'s transaction (``DriverStatement.run``); return the driver cursor."""
        return self.on(connection).run(connection, parameters)

    def run_many(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run once per row in ``connection``'s transaction (``DriverStatement.run_many``)."""
        self.on(connection).run_many(connection, rows)
