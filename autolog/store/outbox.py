"""The outbox: broker messages committed together with the change that calls for them.

A status write (or an item's creation) and the message(s) that must follow it are one
transaction: ``add_messages`` puts the messages in the caller's session. The writer
holds a lease on its rows (``lease_s``) and sends them right after the commit, then marks
them sent (``Outbox.sent`` deletes them). Anything a crash or a broker outage left behind
outlives its lease, and any relay may then claim it (``Outbox.claim``: a compare-and-set
on the lease, so two relays never claim one row at once) and send it, unless the broker
still holds it: its writer may have died after the send, before the clear, with the message
waiting in a backlog, a pause or a delay, and a second copy would start its step twice
(``middleware.outbox_relay.relay_outbox``). A delivered message's row goes in the write that
starts its step (``StepSql.start_run``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, Connection, Table, delete, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from autolog.store.driver_sql import CompiledFor
from autolog.store.group_commit import GroupCommit
from autolog.store.models import OutboxMessage

if TYPE_CHECKING:
    from autolog.store.step_sql import StepSql

#: How long the writer of a row has to send it before a relay may, in seconds. Sending
#: takes milliseconds; the lease only has to outlast a slow broker round trip.
DEFAULT_LEASE_S = 10.0

#: How long after a message is made (just before the write that leases its row) its writer may
#: still send it, in seconds: half the lease. A writer that stalled longer between its write and
#: its send (a stopped process, a frozen machine, a store outage its write waited through) leaves
#: the message to a relay, whose claim needs the lease to have run out: sending it then could
#: make a second copy of one a relay had sent meanwhile. A relay's own sends keep the same margin
#: from the claim it renewed (``Outbox.keep``).
SEND_WITHIN_S = DEFAULT_LEASE_S / 2


#: How much longer than ``SEND_WITHIN_S`` a purge gives a writer before it takes the writer's row for
#: abandoned, in seconds: a writer that passed its check just before its deadline is still sending.
ABANDON_MARGIN_S = 1.0


def send_deadline() -> float:
    """Return until when (epoch s) a message made now may be sent by its writer (``SEND_WITHIN_S``)."""
    return time.time() + SEND_WITHIN_S


@dataclass(frozen=True)
class PendingMessage:
    """A broker message to send: its id, queue, encoded body and delay."""

    message_id: str
    queue_name: str
    #: The message as the broker encodes it: ``queue_name``, ``actor_name``, ``args``,
    #: ``kwargs``, ``options``, ``message_id``, ``message_timestamp``.
    message: dict[str, Any]
    delay_ms: int | None = None
    #: The token of the relay's claim it was read under (``Outbox.claim``); None for a writer's.
    claim: str | None = None
    #: Until when (epoch s) it may be sent (``SEND_WITHIN_S``); past it, the message is left to a relay.
    send_by_s: float = field(default_factory=send_deadline, compare=False)

    def sendable(self) -> bool:
        """Whether its sender may still send it: its row's lease cannot have run out yet."""
        return time.time() < self.send_by_s


_OUTBOX = cast("Table", OutboxMessage.__table__)
#: A driver statement (``autolog.store.driver_sql``): intake adds a message per item.
_INSERT = CompiledFor(insert(_OUTBOX))


def outbox_rows(messages: Iterable[PendingMessage], *, lease_until_s: float) -> list[dict[str, Any]]:
    """Return the outbox's column values for ``messages``, leased to the writer until ``lease_until_s`` (epoch s)."""
    return [{"message_id": pending.message_id, "queue_name": pending.queue_name, "message": pending.message,
             "delay_ms": pending.delay_ms, "lease_until_s": lease_until_s} for pending in messages]


def add_messages(transaction: Session | Connection, messages: Iterable[PendingMessage], *,
                 lease_s: float = DEFAULT_LEASE_S) -> None:
    """Add ``messages`` to ``transaction`` (a session's or a connection's), leased to the writer for ``lease_s``.

    Other repositories call this so the messages commit (or roll back) with their change.
    """
    rows = outbox_rows(messages, lease_until_s=time.time() + lease_s)
    if rows:
        _INSERT.run_many(transaction.connection() if isinstance(transaction, Session) else transaction, rows)


def _made_by_and_abandoned(made_by_s: float, now: float | None) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """Return the row conditions: made by ``made_by_s``; past its writer's send deadline at ``now``, with a margin."""
    now = time.time() if now is None else now
    return (OutboxMessage.created_at <= datetime.fromtimestamp(made_by_s, UTC),
            OutboxMessage.created_at <= datetime.fromtimestamp(now - SEND_WITHIN_S - ABANDON_MARGIN_S, UTC))


class Outbox:
    """Claims and clears the outbox's rows.

    Args:
        sessions: the store's session factory.
        group: where ``sent`` runs on SQLite: the items' group commit (a clear shares a
            transaction with other threads' writes; after nearly every step message).
        statements: the items' driver statements (``StepSql``), which ``sent`` runs.
    """

    def __init__(self, sessions: sessionmaker[Session], group: GroupCommit, statements: StepSql) -> None:
        self._sessions = sessions
        self._group = group
        self._sql = statements

    def add(self, messages: Sequence[PendingMessage], *, lease_s: float = DEFAULT_LEASE_S) -> None:
        """Store ``messages`` on their own, leased to the caller for ``lease_s``."""
        with self._sessions.begin() as session:
            add_messages(session, messages, lease_s=lease_s)

    def claim(self, *, limit: int = 100, lease_s: float = DEFAULT_LEASE_S,
              now: float | None = None) -> list[PendingMessage]:
        """Claim up to ``limit`` rows whose lease ran out by ``now`` (default: now), oldest first, for ``lease_s``.

        A row is claimed by one caller only: the claim is an update conditioned on the
        lease still being out, and each caller tags its claim with a token of its own.
        """
        now = time.time() if now is None else now
        token = uuid.uuid4().hex
        with self._sessions.begin() as session:
            due = session.scalars(select(OutboxMessage.id).where(OutboxMessage.lease_until_s <= now)
                                  .order_by(OutboxMessage.id).limit(limit)).all()
            if not due:
                return []
            session.execute(update(OutboxMessage)
                            .where(OutboxMessage.id.in_(due), OutboxMessage.lease_until_s <= now)
                            .values(lease_until_s=now + lease_s, claimed_by=token))
            rows = session.scalars(select(OutboxMessage)
                                   .where(OutboxMessage.id.in_(due), OutboxMessage.claimed_by == token)
                                   .order_by(OutboxMessage.id)).all()
            return [PendingMessage(message_id=row.message_id, queue_name=row.queue_name, message=row.message,
                                   delay_ms=row.delay_ms, claim=token) for row in rows]

    def keep(self, claimed: Sequence[PendingMessage], *, lease_s: float = DEFAULT_LEASE_S) -> set[str]:
        """Renew the claim on ``claimed`` (rows ``claim`` returned) for ``lease_s`` from now; return the ids kept.

        A row is kept only if it is still there and still under this claim: gone, its message
        was delivered (a step's start deletes it) or cleared; claimed anew, another relay took
        it over after this claim's lease ran out, and that relay sends it. The renewal runs from
        the clock, never from a time the caller read earlier: a relay sends within
        ``SEND_WITHIN_S`` of a deadline it takes before this call, so always inside the lease.
        """
        now = time.time()
        kept: set[str] = set()
        by_claim: dict[str, list[str]] = {}
        for message in claimed:
            if message.claim is not None:
                by_claim.setdefault(message.claim, []).append(message.message_id)
        with self._sessions.begin() as session:
            for token, message_ids in by_claim.items():
                kept.update(session.scalars(
                    update(OutboxMessage)
                    .where(OutboxMessage.message_id.in_(message_ids), OutboxMessage.claimed_by == token)
                    .values(lease_until_s=now + lease_s)
                    .returning(OutboxMessage.message_id)).all())
        return kept

    def sent(self, message_ids: Sequence[str]) -> int:
        """Clear the rows of messages the broker has accepted; return how many were cleared."""
        if not message_ids:
            return 0
        if self._sql.postgres:
            return self._sql.clear_sent(message_ids)
        return self._group.run(lambda connection: self._sql.clear_sent(message_ids, connection), idempotent=True)

    def being_sent(self, queue_name: str, *, made_by_s: float, now: float | None = None) -> int:
        """Count the rows of ``queue_name`` made by ``made_by_s`` (epoch s) their writers may still send at ``now``.

        Those are unclaimed rows made less than ``SEND_WITHIN_S`` (plus ``ABANDON_MARGIN_S``) ago:
        their writer sends each within milliseconds and clears it within about 2 s (a worker clears
        its sent rows together: ``middleware.outbox_relay.OutboxRelay``), or dies and leaves it
        (``drop_queue``).
        """
        made_by, abandoned = _made_by_and_abandoned(made_by_s, now)
        with self._sessions() as session:
            return int(session.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.queue_name == queue_name, made_by, ~abandoned, OutboxMessage.claimed_by.is_(None))) or 0)

    def drop_queue(self, queue_name: str, *, made_by_s: float, now: float | None = None) -> list[PendingMessage]:
        """Delete the rows of ``queue_name`` made by ``made_by_s`` that only a relay would send (a purge's).

        Those are rows a relay claimed, and rows whose writer can no longer send them: made more
        than ``SEND_WITHIN_S`` before ``now`` (default: now), past their send deadline, so their
        writer died or stalled (``PendingMessage.sendable``), with ``ABANDON_MARGIN_S`` more for a
        writer between its check and Redis. A relay that claimed one finds it gone when it renews
        its claim (``keep``), and sends nothing; one that renewed it already is sending it, and its
        message reaches the queue just after the purge.

        Returns:
            The deleted rows' messages.
        """
        made_by, abandoned = _made_by_and_abandoned(made_by_s, now)
        with self._sessions.begin() as session:
            rows = session.execute(
                delete(OutboxMessage)
                .where(OutboxMessage.queue_name == queue_name, made_by,
                       abandoned | OutboxMessage.claimed_by.is_not(None))
                .returning(OutboxMessage.message_id, OutboxMessage.queue_name, OutboxMessage.message,
                           OutboxMessage.delay_ms)).all()
        return [PendingMessage(message_id=row.message_id, queue_name=row.queue_name, message=row.message,
                               delay_ms=row.delay_ms) for row in rows]

    def unsent(self, *, limit: int = 10_000) -> list[PendingMessage]:
        """Return up to ``limit`` messages not yet sent, oldest first, without claiming them."""
        with self._sessions() as session:
            rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id).limit(limit)).all()
            return [PendingMessage(message_id=row.message_id, queue_name=row.queue_name, message=row.message,
                                   delay_ms=row.delay_ms) for row in rows]

    def count(self) -> int:
        """Count the messages not yet sent."""
        with self._sessions() as session:
            return int(session.scalar(select(func.count()).select_from(OutboxMessage)) or 0)
