"""Group commit: the status writes of many worker threads share one transaction.

Every step message makes two writes (its run's start, then its status with the timeline
and the outbox), each a short transaction. Committed one by one, their cost is the
transaction's, not the statements': on SQLite one writer at a time with a commit each, on
PostgreSQL a commit each waits for its WAL flush. So a thread's write joins a queue; the
first thread to find no batch under way leads one: it runs every queued write, in order,
in one transaction and commits once; then it hands each writer its outcome and the lead
to the first write queued meanwhile. A thread alone runs its write at once, so a write
waits only while a batch it could not join commits.

Nothing is weakened: a caller returns only once its write committed (so a status is stored
before the step it sends is), each write's compare-and-set sees every write before it, and
a crash before the commit loses the whole batch, none of it acknowledged to anyone. When
anything in a batch fails (a write raises, the commit fails), the batch rolls back and each
of its writes runs again in a transaction of its own, so every caller gets its own outcome
or exception and no write is undone by another's.

On SQLite every batch runs on one connection the group commit keeps (its batches take turns
anyway): a connection lent by the pool and a SQLAlchemy ``Connection`` made per transaction
cost about 45 µs of Python each time, a fifth of a status write (issue #13).

On PostgreSQL writes are not batched: each runs in its own transaction on its own pooled
connection, concurrently with the others (the server already flushes concurrent commits
together). One leader running a batch's statements one round trip after another made the
no-op drain slower there, not faster (measured with ``bench/orchestration_bench.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from autolog.errors import StoreUnavailable
from autolog.processes import current_pid
from autolog.store.engine import SerialWrites

T = TypeVar("T")

#: How many writes one transaction takes at most; the rest form the next batch.
MAX_BATCH = 64


class BatchInterrupted(StoreUnavailable):
    """The batch a write was in stopped half-way: its leader's thread was interrupted (a time limit).

    The write may or may not have committed; ``GroupCommit.run`` runs an idempotent write again.
    """


class _Write(Generic[T]):
    """One caller's write, waiting for its batch."""

    __slots__ = ("write", "done", "leads", "finished", "result", "error")

    def __init__(self, write: Callable[[Connection], T]) -> None:
        self.write = write
        #: Held until the caller may go on (its outcome is in, or it leads): a bare lock, not an
        #: ``Event``, whose Python-level condition cost more than the statements of a batch.
        self.done = threading.Lock()
        self.done.acquire()
        #: Set (before ``done``) when this caller is handed the lead of the next batch.
        self.leads = False
        #: Set once ``result`` or ``error`` holds the write's outcome.
        self.finished = False
        self.result: T | None = None
        self.error: BaseException | None = None

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class GroupCommit:
    """Runs writes from many threads in shared transactions (see the module's docstring).

    Args:
        sessions: the store's session factory: its engine, and on SQLite its write turn, which a
            batch's transaction holds, as every write of the process does.
        shared: batch writes (SQLite); False runs each in a transaction of its own (PostgreSQL).
    """

    def __init__(self, sessions: sessionmaker[Session], *, shared: bool = True) -> None:
        self._engine: Engine = sessions.kw["bind"]
        self._write_turn: AbstractContextManager[Any] = (
            sessions.write_turn if isinstance(sessions, SerialWrites) else nullcontext())
        self.shared = shared
        self._lock = threading.Lock()
        self._queue: list[_Write[object]] = []
        self._leading = False
        #: The connection shared batches run on (SQLite), and the process it was opened in.
        self._kept: Connection | None = None
        self._kept_pid = 0

    def close(self) -> None:
        """Give back the connection batches run on; the next batch opens another."""
        with self._write_turn:
            if self._kept is not None and self._kept_pid == current_pid():
                self._kept.close()
            self._kept = None

    @property
    def queued(self) -> int:
        """How many writes wait for a batch (not counting those of the batch under way)."""
        with self._lock:
            return len(self._queue)

    @property
    def leading(self) -> bool:
        """Whether a batch is under way or its next leader has been handed the lead."""
        return self._leading

    def run(self, write: Callable[[Connection], T], *, idempotent: bool = False) -> T:
        """Run ``write`` on a transaction's connection, with others' writes; return its result once committed.

        ``write`` must only use the connection (it may run twice: in a batch rolled back,
        then alone), and may raise to refuse its change. An ``idempotent`` write (running it
        twice leaves what running it once does: a step's saves, which replace rows) runs again
        when another thread's interruption broke the batch it was in, where any other write's
        caller gets ``BatchInterrupted``: a step's save is not lost, and its work not redone,
        because another step hit its time limit.

        Raises:
            whatever ``write`` raises, or the commit's error (a store outage), alone in its transaction.
        """
        try:
            return self._run(write)
        except BatchInterrupted:
            if not idempotent:
                raise
            return self._run(write)

    def _run(self, write: Callable[[Connection], T]) -> T:
        if not self.shared:
            with self._transaction() as connection:
                return write(connection)
        mine: _Write[T] = _Write(write)
        with self._lock:
            self._queue.append(mine)  # type: ignore[arg-type]
            leads = not self._leading
            self._leading = True
        if not leads:
            try:
                mine.done.acquire()
            except BaseException:  # An async exception (a time limit) while waiting: never strand the lead.
                self._withdraw(mine)  # type: ignore[arg-type]
                raise
            if not mine.leads:
                return mine.outcome()
        with self._lock:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        try:
            self._run_batch(batch)
        finally:
            self._hand_over(batch)
        return mine.outcome()

    def _withdraw(self, write: _Write[object]) -> None:
        """Take back a write whose caller stopped waiting: unrun, it never runs; handed the lead, it passes it on."""
        with self._lock:
            if write in self._queue:
                self._queue.remove(write)
                if not write.leads:
                    return
            elif not write.leads:
                return  # Inside a running batch, whose leader finishes it.
        self._hand_over([])

    def _hand_over(self, batch: list[_Write[object]]) -> None:
        """Wake the batch's writers, giving the lead to the first write queued meanwhile (if any)."""
        for write in batch:
            if not write.finished:
                # The leader was interrupted mid-batch (a time limit's async exception): no outcome is
                # known, and callers treat an unreachable store by waiting and writing again.
                write.error = BatchInterrupted("the write's batch was interrupted before it was known to commit")
        with self._lock:
            if self._queue:
                self._queue[0].leads = True
                self._queue[0].done.release()
            else:
                self._leading = False
        for write in batch:
            if not write.leads:  # A leader handed the lead was released then.
                write.done.release()

    def _run_batch(self, batch: list[_Write[object]]) -> None:
        if len(batch) > 1:
            try:
                with self._transaction() as connection:
                    results = [write.write(connection) for write in batch]
            except Exception:  # Rolled back: each write runs alone below, for its own outcome.
                pass
            else:
                for write, result in zip(batch, results, strict=True):
                    write.result, write.finished = result, True
                return
        for write in batch:
            try:
                with self._transaction() as connection:
                    write.result = write.write(connection)
            except Exception as ex:  # Handed to its caller, raised in its thread.
                write.error = ex
            write.finished = True

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        # A connection's transaction, not a session's: no ORM is involved. On SQLite it takes
        # the process's write turn, as the session factory's writes do, and runs on the kept connection.
        if not self.shared:
            with self._engine.begin() as connection:
                yield connection
            return
        with self._write_turn:
            kept = self._kept
            if kept is not None and not kept.closed and not kept.invalidated and self._kept_pid == current_pid():
                connection = kept
            else:
                # First use, a connection SQLAlchemy invalidated, or a forked child (which must not
                # touch its parent's connection): open one.
                connection = self._kept = self._engine.connect()
                self._kept_pid = current_pid()
            # The driver's own commit, not a SQLAlchemy ``Transaction`` around it: begun and ended per
            # batch, that cost 1 % of a drained message's instructions (issue #13). A write that ran a statement
            # through SQLAlchemy (``Connection.execute``) began SQLAlchemy's transaction, which then
            # commits it; either way the driver's one transaction (sqlite3 begins it before the
            # first change) is what commits.
            try:
                yield connection
                if connection.in_transaction():
                    connection.commit()
                else:
                    connection.connection.driver_connection.commit()  # type: ignore[union-attr]
            except BaseException:
                # A batch that failed (a write refused, the commit failed) leaves nothing behind: the
                # connection goes back to the pool, which rolls it back, and the next batch takes another.
                self._kept = None
                connection.close()
                raise
