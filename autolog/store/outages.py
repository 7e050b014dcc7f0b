"""Tell a store outage (the database unreachable or locked) from other database errors."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError

from autolog.errors import StoreUnavailable

#: ``OperationalError`` messages that are schema or query faults, not outages: waiting
#: would not fix them (SQLite reports both kinds as ``OperationalError``).
_NOT_OUTAGES = ("no such table", "no such column", "syntax error", "has no column")


def is_store_outage(exception: BaseException) -> bool:
    """Tell whether ``exception`` (or one it was raised from) means the store is unreachable for now.

    PostgreSQL stopped or restarting, a dropped connection, SQLite locked past its busy
    timeout or its file unreachable: the work should wait for the store, not fail.
    """
    seen: set[int] = set()
    current: BaseException | None = exception
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StoreUnavailable | DisconnectionError | InterfaceError):
            return True
        if isinstance(current, OperationalError):
            text = str(current.orig if current.orig is not None else current).lower()
            return not any(fault in text for fault in _NOT_OUTAGES)
        current = current.__cause__ or current.__context__
    return False


def outage_text(exception: BaseException) -> str:
    """Return what a log line says of a store error: the driver's error and its first line.

    SQLAlchemy's own text of a driver error carries the statement and its parameters (a
    start write's is twenty lines); a warning for each message waiting out an outage would
    repeat them all.
    """
    cause = exception.orig if isinstance(exception, DBAPIError) and exception.orig is not None else exception
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}".rstrip(": ")
