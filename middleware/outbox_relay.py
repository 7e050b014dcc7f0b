"""The outbox relay: sends the messages the store committed with a status, in every worker.

A status write and the message(s) that follow it commit together in the store's outbox
(``autolog.store.outbox``). The writer hands them to this middleware (``send_after_hooks``),
whose ``after_process_message`` runs after every other autolog middleware's (it is added
early; ``after_*`` hooks run in reverse), so progress and metrics report the step's
success before its next step is announced; then it sends them at once. Its thread,
started at worker boot, sends every few seconds whatever a crash or a
broker outage left behind once its writer's lease has run out (``relay_outbox``), so an
item is never stuck between its status and its next step with nobody acting, unless Redis
still holds the message (its writer sent it and died before the clear). The always-on sweep
calls ``relay_outbox`` too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.errors import ActorNotFound, BrokerConnectionError

from autolog.broker_state import held_message_ids
from autolog.store import Outbox, PendingMessage, send_deadline
from middleware._steps import step_of
from middleware.services import Services

logger = logging.getLogger(__name__)

#: Message option holding the committed follow-ups ``OutboxRelay.after_process_message`` sends.
COMMITTED_OPTION = "autolog_committed"


def pending(message: dramatiq.Message[Any], *, delay_ms: int | None = None) -> PendingMessage:
    """Encode ``message`` for the outbox."""
    return PendingMessage(message_id=message.message_id, queue_name=message.queue_name,
                          message=dict(message.asdict()), delay_ms=delay_ms)


def _send(broker: dramatiq.Broker, message: PendingMessage) -> bool:
    if not message.sendable():
        # Its row's lease may have run out and a relay sent it: a second copy would start its step twice.
        logger.warning("Outbox message %r not sent: its sender stalled past its deadline; a relay sends it.",
                       message.message_id)
        return False
    try:
        broker.enqueue(dramatiq.Message(**message.message), delay=message.delay_ms)
    except (redis.RedisError, BrokerConnectionError) as ex:
        logger.warning("Could not send %r from the outbox, the relay will: %s", message.message_id, ex)
        return False
    return True


def clear_sent(outbox: Outbox, message_ids: Sequence[str]) -> None:
    """Clear the outbox rows of sent messages; a store that fails leaves them (logged), never raises.

    A row left behind is harmless: a step's start deletes its message's row, and a relay
    clears a row whose message Redis holds once its lease runs out (``relay_outbox``).
    """
    try:
        outbox.sent(message_ids)
    except Exception:  # The rows stay; the relay clears them (or sends them again: same ids).
        logger.exception("Could not clear %d sent message(s) from the outbox.", len(message_ids))


def send_committed(broker: dramatiq.Broker, outbox: Outbox, messages: Sequence[PendingMessage]) -> int:
    """Send messages whose outbox rows just committed, then clear those rows; return how many went.

    A message the broker refuses, or one past its deadline (``PendingMessage.sendable``), stays
    in the outbox for the relay. Never raises for a broker or store outage: the rows are there,
    and the relay sends them later.
    """
    sent = [message.message_id for message in messages if _send(broker, message)]
    clear_sent(outbox, sent)
    return len(sent)


def send_after_hooks(message: dramatiq.Message[Any] | MessageProxy, messages: Sequence[PendingMessage]) -> None:
    """Leave ``messages`` (committed to the outbox with ``message``'s status) for ``OutboxRelay`` to send.

    They go once the other middlewares' ``after_process_message`` hooks have run; if the
    process dies first, the relay sends them when the writer's lease runs out.
    """
    # Field by field, not ``dataclasses.asdict``: its deep copy of each message (a pipeline's message
    # nests every later step's) cost more than the rest of this hand-over. Nothing changes them.
    message.options[COMMITTED_OPTION] = [
        {"message_id": pending_message.message_id, "queue_name": pending_message.queue_name,
         "message": pending_message.message, "delay_ms": pending_message.delay_ms,
         "send_by_s": pending_message.send_by_s} for pending_message in messages]


def relay_outbox(broker: RedisBroker, outbox: Outbox, *, limit: int = 100, now: float | None = None) -> int:
    """Settle up to ``limit`` outbox rows whose writer's lease ran out by ``now``; return how many were settled.

    A row outlives its lease when its writer died (or lost Redis or the store) between the
    commit and the clear, before or after sending it. A message Redis still holds (queued,
    running, delayed, paused or dead-lettered: ``held_message_ids``) was sent: its row is
    cleared, not sent again, as a second copy would start its step twice and supersede the
    first run. The rest are sent if this relay still holds their rows (``Outbox.keep``, which
    renews the claim): a row gone since the claim is a message that was delivered and
    acknowledged before Redis was read (a step's start deletes its message's row), and a row
    claimed anew belongs to a relay that took over once this one's reading of a large backlog
    outlasted its claim. A message Redis refuses stays for the next relay; settled counts the
    rows cleared.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the store cannot be read.
    """
    claimed = outbox.claim(limit=limit, now=now)
    try:
        held = _held_by_redis(broker, claimed)
    except redis.RedisError as ex:
        logger.warning("Could not read Redis for %d unsent outbox message(s), the relay will: %s", len(claimed), ex)
        return 0
    if held:
        logger.info("Outbox rows left by a writer that had sent them, cleared: %s", ", ".join(sorted(held)))
        outbox.sent(sorted(held))
    # The sends keep the writer's margin from the renewed claim (``SEND_WITHIN_S``), not from the read
    # above: the deadline comes first, then the renewal, both from the clock (not from ``now``).
    send_by_s = send_deadline()
    kept = outbox.keep([message for message in claimed if message.message_id not in held])
    return len(held) + send_committed(broker, outbox, [replace(message, send_by_s=send_by_s)
                                                       for message in claimed if message.message_id in kept])


def _held_by_redis(broker: RedisBroker, messages: Sequence[PendingMessage]) -> set[str]:
    by_queue: dict[str, list[str]] = {}
    for message in messages:
        by_queue.setdefault(message.queue_name, []).append(message.message_id)
    return {message_id for queue, message_ids in by_queue.items()
            for message_id in held_message_ids(broker.client, broker.namespace, queue, message_ids)}


#: How long the outbox rows of messages a worker sent may wait to be cleared together, in s.
CLEAR_SENT_AFTER_S = 0.5


def _starts_a_step(broker: dramatiq.Broker, message: PendingMessage) -> bool:
    """Whether ``message`` runs a pipeline step (``step_of`` its stored form), whose start deletes its row."""
    try:
        return step_of(broker, message.message["actor_name"], message.message.get("options") or {}) is not None
    except ActorNotFound:
        return False


class OutboxRelay(dramatiq.Middleware):
    """Sends each step's committed follow-ups, and runs ``relay_outbox`` every ``interval_s`` in a thread.

    The rows of the follow-ups a worker sent that run pipeline steps are cleared together, not
    one transaction each (0.13 ms of a worker's CPU per message on SQLite, issue #13): by the
    first step to finish ``CLEAR_SENT_AFTER_S`` after the oldest was sent, else by the relay's
    thread at its next turn, and once the worker has stopped (after its last steps). Most are
    gone before that: a step's start deletes its message's row. Until then a purge waits for
    them as for rows being sent (``Queues.purge``); a worker that dies first leaves them to a
    relay, which finds their messages in Redis once their lease runs out and clears them, or
    finds them gone with their step's start. A follow-up that runs no step (a plain callback)
    has no start to delete its row: its row is cleared at once.

    Args:
        services: where the store comes from in this process.
        interval_s: seconds between two relays. With the writer's 10 s lease, a message left
            behind by a crash is sent within about 12 s.
    """

    def __init__(self, *, services: Services, interval_s: float = 2.0) -> None:
        self.logger = logging.getLogger(__name__)
        self._services = services
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sent_lock = threading.Lock()
        #: Ids of sent messages whose rows wait to be cleared, and when the oldest was sent (``time.monotonic``).
        self._sent: list[str] = []
        self._sent_since = 0.0

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.clear()
        # autolog's workers run on its Redis broker (``actors.broker``): the relay reads its queues.
        self._thread = threading.Thread(target=self._run, args=(cast("RedisBroker", broker),), name="outbox-relay",
                                        daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        # Once the steps running at the stop have finished and sent what follows them (the store is
        # still open: this hook runs before Services' closes it).
        self._clear_sent(every=True)

    def after_process_message(
        self, broker: dramatiq.Broker, message: MessageProxy, *, result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        committed = message.options.pop(COMMITTED_OPTION, None)
        if not committed:
            return
        steps: list[str] = []
        others: list[str] = []
        for pending_message in (PendingMessage(**committed_message) for committed_message in committed):
            if _send(broker, pending_message):
                (steps if _starts_a_step(broker, pending_message) else others).append(pending_message.message_id)
        if others:  # No start deletes their rows: a relay would send them again after their lease.
            clear_sent(self._services.current().store.outbox, others)
        self._clear_sent(steps)

    def _clear_sent(self, sent: Sequence[str] = (), *, every: bool = False) -> None:
        """Add ``sent`` to the rows waiting to be cleared; clear them all once the oldest waited, or if ``every``."""
        now = time.monotonic()
        with self._sent_lock:
            if sent:
                if not self._sent:
                    self._sent_since = now
                self._sent.extend(sent)
            if not self._sent or not every and now - self._sent_since < CLEAR_SENT_AFTER_S:
                return
            if not self._services.is_ready:
                return  # Kept for when the store is back (a worker starting or stopping).
            batch, self._sent = self._sent, []
        clear_sent(self._services.current().store.outbox, batch)

    def _run(self, broker: RedisBroker) -> None:
        while not self._stop.wait(self.interval_s):
            self._clear_sent(every=True)
            if not self._services.is_ready:
                continue
            try:
                while relay_outbox(broker, self._services.current().store.outbox) and not self._stop.is_set():
                    pass
            except Exception:  # The thread's boundary: a store outage must not end the relay.
                self.logger.warning("Outbox relay failed; trying again in %.1f s.", self.interval_s, exc_info=True)
