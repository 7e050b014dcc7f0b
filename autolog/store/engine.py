"""Database engines for SQLite (WAL, busy timeout) and PostgreSQL, and schema migration."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from autolog.errors import ConfigError

#: How long SQLite waits on a locked database before giving up, in ms. Steps write small
#: rows; 30 s covers any burst of 30+ worker threads without surfacing "database is locked".
#: ``AUTOLOG_SQLITE_BUSY_TIMEOUT_MS`` overrides it for every store this process opens.
SQLITE_BUSY_TIMEOUT_MS = 30_000


def sqlite_busy_timeout_ms(environ: Mapping[str, str] = os.environ) -> int:
    """Return the SQLite busy timeout in ms: ``AUTOLOG_SQLITE_BUSY_TIMEOUT_MS``, else ``SQLITE_BUSY_TIMEOUT_MS``.

    Read from the environment, not ``Settings``: a store is opened from its URL alone.

    Raises:
        ConfigError: the variable is set but is not a whole number of ms above 0.
    """
    text = environ.get("AUTOLOG_SQLITE_BUSY_TIMEOUT_MS", "").strip()
    if not text:
        return SQLITE_BUSY_TIMEOUT_MS
    if not text.isdigit() or int(text) <= 0:
        raise ConfigError("AUTOLOG_SQLITE_BUSY_TIMEOUT_MS", f"expected a whole number of ms above 0, got {text!r}")
    return int(text)

#: A pooled PostgreSQL connection that sat unused longer than this is pinged before its
#: next use, in s. One in steady use is not: a ping per checkout was a round trip per
#: store call, a third of a status write. A connection the server dropped within this
#: window fails its statement, which callers treat as a store outage and retry
#: (``autolog.store.outages``); the pool then replaces every connection older than it.
PING_AFTER_IDLE_S = 2.0

#: Connections a process keeps open to PostgreSQL in the engine's pool, at most: worker threads,
#: the outbox relay and the API's threads each hold one at a time (the step statements have
#: ``POSTGRES_STEP_CONNECTIONS`` more of their own). All are kept once opened, so a
#: burst does not open and close connections per call.
POSTGRES_POOL_SIZE = 15

#: Connections a process keeps open to PostgreSQL for the step statements, at most
#: (``autolog.store.step_sql.AutocommitConnections``), beside the engine's pool: a status write
#: or a start is one statement, so a few connections serve many worker threads.
POSTGRES_STEP_CONNECTIONS = 8

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _bind_null(value: None) -> None:
    """Bind None as SQL NULL, as the driver does without an adapter."""
    return value


def create_store_engine(url: str) -> Engine:
    """Create an engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        # Python's sqlite3 looks for a None parameter's adapter by raising and catching two
        # AttributeErrors (``__adapt__``, ``__conform__``) unless one is registered: a timeline row
        # binds five to eight Nones (issue #13). Process-wide, and None still binds as NULL.
        sqlite3.register_adapter(type(None), _bind_null)
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        busy_timeout_ms = sqlite_busy_timeout_ms()
        engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})
        event.listen(engine, "connect", lambda connection, _record: _configure_sqlite(connection, busy_timeout_ms))
        return engine
    engine = create_engine(url, pool_size=POSTGRES_POOL_SIZE, max_overflow=0)
    event.listen(engine, "connect", _stamp_use)
    event.listen(engine, "checkin", _stamp_use)
    event.listen(engine, "checkout", lambda connection, record, _proxy: _ping_if_idle(engine, connection, record))
    return engine


def _stamp_use(_dbapi_connection: Any, record: Any) -> None:
    record.info["used_at_s"] = time.monotonic()


def _ping_if_idle(engine: Engine, dbapi_connection: Any, record: Any) -> None:
    """Ping a connection idle past ``PING_AFTER_IDLE_S``; a dead one makes the pool take another.

    Raises:
        DisconnectionError: the ping failed (the pool retries the checkout with a new connection).
    """
    if time.monotonic() - record.info.get("used_at_s", 0.0) < PING_AFTER_IDLE_S:
        return
    try:
        engine.dialect.do_ping(dbapi_connection)
    except Exception as ex:
        raise DisconnectionError(f"pooled connection failed its ping: {ex}") from ex


def _configure_sqlite(dbapi_connection: Any, busy_timeout_ms: int) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def alembic_config() -> Config:
    """Return an Alembic config pointing at autolog's migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema up to the newest migration. Safe to run again."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class SerialWrites(sessionmaker[Session]):
    """A session factory whose write transactions (``begin()``) take turns within the process.

    For SQLite, which has one writer at a time: threads of one process that wait on each
    other's write lock in SQLite sleep in its busy handler (1 to 100 ms steps), where a
    Python lock hands over at once. Reads (``sessions()``) do not take the lock.
    """

    def __init__(self, engine: Engine, **options: Any) -> None:
        super().__init__(engine, **options)
        #: Held by each write transaction of this process; reentrant.
        self.write_turn = threading.RLock()

    @contextmanager
    def begin(self) -> Iterator[Session]:  # type: ignore[override]
        with self.write_turn, super().begin() as session:
            yield session


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return the store's session factory: writes take turns within the process on SQLite."""
    if engine.dialect.name == "sqlite":
        return SerialWrites(engine, expire_on_commit=False)
    return sessionmaker(engine, expire_on_commit=False)
