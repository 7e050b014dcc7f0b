"""A Redis broker whose idle consumers wake the moment a message is enqueued.

dramatiq's Redis consumer polls an empty queue with a growing sleep, up to the worker's timeout
(1 s from the ``dramatiq`` CLI, which cannot change it), so at light load every hop between two
steps on different queues waited about half a second. Here each enqueue (in the enqueue's round
trip: ``do_enqueue``), and each requeue of messages a stopping worker held, also pushes a token
onto the queue's wake list, and an idle consumer blocks on that list (``BLPOP``, up to the same
timeout) instead of sleeping, with its fetch behind it in the same pipeline
(``_wait_then_fetch``): a hop costs a Redis round trip, and an idle consumer's look at its
timeout one round trip, not two. A delay queue's consumer blocks the same way, on its own wake
list (a delayed enqueue pushes to it), but no longer than until the earliest due time (``eta``)
of the delayed messages it has handed to its worker, which then moves the message to its queue
at that time: dramatiq's polling backoff woke each of a worker's idle delay queues about eight
times in the first second of idleness and once a second after (a third of an idle worker's CPU),
and moved a delayed message up to the worker's timeout after it was due. Redis ends a blocking
wait up to its timer's tick late (``BLOCK_TIMER_MS``), so the last stretch before a due time is
a nap of the consumer's own (a message delayed by less than a tick, sent during that nap, is
fetched when it ends: the steps' delays are a second or more). A delayed message put back on its
delay queue (a stopping worker's, a dead one's) wakes it too.

A worker thread's ack is not a round trip of its own either: the consumer sends the acks of
its queue with its next fetch, in one pipeline (``_round_trip``): all of them in one command
(``autolog.broker_state.ACK_SCRIPT``, dramatiq's ack for each), then the fetch. Each round trip a step's
thread waits for lets the worker's other threads take the GIL first, and under eight threads
the ack had cost that thread as much CPU as dramatiq's whole no-op message (measured with
``bench/orchestration_bench.py``, issue #13). An ack waits at most ``SATURATED_WAIT_S``: a
consumer holding all it may prefetch sends the acks waiting when its wait ends, fetch or not.
It goes out at once, as dramatiq sends it, while the consumer blocks on the wake list (its
queue was empty: nothing else would send it soon, and ``broker.join`` counts a message until
its ack) and once the consumer is closed (a stop, or a restart after a Redis error: the worker
thread then retries it until Redis answers, as dramatiq does). The acks waiting belong to the
queue, not the consumer: a round trip that fails keeps them, and whichever consumer of the
queue makes the next one sends them. A worker killed before that (a few milliseconds, at most
``SATURATED_WAIT_S``) leaves those messages to be delivered again once its heartbeat lapses, as a
kill between a step's status write and its ack does; the item's run fence skips the duplicate.
A paused queue's hold takes the message out of the worker's ack set itself
(``autolog.broker_state.hold``), so a late ack cannot delete the message a resume put back.

Redis moves what a fetch takes into the worker's ack set as it runs the fetch. A fetch whose
reply never came (the connection dropped in between) left those messages there, unknown to the
worker, whose heartbeat kept dramatiq's maintenance from giving them back: they waited for the
worker's stop. So the queue's consumers count what they hand to the worker until it is let go
of (acked, nacked, put back), and each consumer, before its first fetch (a worker's start, and
every start again after a Redis error), puts back what the ack set holds beyond that
(``_put_back_stranded``).
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import redis
from dramatiq.broker import Consumer, MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import current_millis, q_name
from dramatiq.errors import ConnectionClosed, DecodeError
from dramatiq.message import Message
from dramatiq.middleware import Middleware, MiddlewareError
from redis.exceptions import NoScriptError

from autolog.broker_state import (
    ACK_SCRIPT,
    WAKE_TOKENS,
    ack_keys,
    held_by_worker_on,
    purge_time_key,
    purged_while_fetched,
    stored_messages,
    wake_key,
)

#: How long a consumer that holds (nearly) all it may prefetch waits for room before looking again,
#: in s. An ack that frees ``REFILL_SHARE`` of its prefetch, or a nack, ends the wait at once; the
#: bound keeps a stop or a pause prompt, and no worker's ack waiting longer than this.
SATURATED_WAIT_S = 0.1

#: How late Redis may end a blocking wait past its timeout, in ms: it checks blocked clients' timeouts
#: on its timer (``hz``, 10 a second by default). A delay queue's consumer waiting for a due time
#: wakes this much early, and naps the rest itself.
BLOCK_TIMER_MS = 100

#: A consumer holding all it may prefetch fetches again once this share of its prefetch is free
#: (at least one message): a round trip per few messages, not per message, while its workers
#: still hold more than they can run at once (dramatiq's prefetch is twice the worker threads).
REFILL_SHARE = 4


class FieldProxy(MessageProxy):
    """A ``MessageProxy`` holding its message's fields as its own attributes.

    dramatiq's proxy reads each field through ``__getattr__``, after a failed lookup: about
    0.5 µs a read against 25 ns, and the middleware of a step message read them about a hundred
    times a delivery (issue #13). A ``Message`` is frozen, so the copies cannot go stale; its
    ``options`` is the message's own dict, so what a middleware sets there is the message's.
    """

    def __init__(self, message: Message[Any]) -> None:
        super().__init__(message)
        self.queue_name = message.queue_name
        self.actor_name = message.actor_name
        self.args = message.args
        self.kwargs = message.kwargs
        self.options = message.options
        self.message_id = message.message_id
        self.message_timestamp = message.message_timestamp


class _WaitingAcks:
    """What one queue's consumers share: the acks waiting for a round trip, and what the worker holds."""

    __slots__ = ("lock", "ids", "held")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        #: Redis ids of messages the workers have acked.
        self.ids: list[str] = []
        #: Redis ids of messages handed to the worker and not yet let go of (acked, nacked, put back), each with
        #: how many deliveries of it are held: a hold's put-back keeps its Redis id, and the next fetch may hand
        #: the message again before the held delivery's ack.
        self.held: dict[str, int] = {}

    def hold(self, redis_message_id: str) -> None:
        """Count one more delivery of ``redis_message_id`` handed to the worker (under ``lock``)."""
        self.held[redis_message_id] = self.held.get(redis_message_id, 0) + 1

    def let_go(self, redis_message_id: str) -> None:
        """Count one held delivery of ``redis_message_id`` as let go of (under ``lock``)."""
        left = self.held.get(redis_message_id, 0) - 1
        if left > 0:
            self.held[redis_message_id] = left
        else:
            self.held.pop(redis_message_id, None)


@contextlib.contextmanager
def _refused_as_closed() -> Iterator[None]:
    """Raise any Redis error of the block as ``ConnectionClosed``, as dramatiq raises a lost connection.

    dramatiq's consumer turns only redis-py's ``ConnectionError`` into its own, the one error its worker
    retries an ack or nack on (every few seconds, until Redis takes it) and its consumer thread
    survives while it closes. Redis refusing a write (out of memory, ``MISCONF`` with a full disk for
    its append-only file, a replica's ``READONLY``) was otherwise an "unhandled error": an ack dropped,
    its message left in the worker's ack set (in flight for the sweep, run again once the worker exits).
    """
    try:
        yield
    except redis.RedisError as ex:
        raise ConnectionClosed(ex) from None


class _WakingConsumer(_RedisConsumer):  # type: ignore[misc]
    """dramatiq's Redis consumer, blocking on the queue's wake list when the queue is empty."""

    def __init__(self, broker: WakingRedisBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        # dramatiq's own idle sleep is cut to 1 ms; the idle wait is the wake list's BLPOP (``__next__``).
        super().__init__(broker, queue_name, prefetch, 1)
        self.idle_timeout_ms = timeout
        self.is_delay_queue = q_name(queue_name) != queue_name
        self.wake_key = wake_key(broker.namespace, queue_name)
        #: Set by each ack and nack (a worker thread's), which make room to prefetch again.
        self.room = threading.Event()
        self._waiting = broker.waiting_acks(queue_name)
        self._ack_keys = ack_keys(broker.namespace, broker.broker_id, queue_name)
        #: Set when a fetch took fewer messages than it asked for: its queue was empty after it. A message that
        #: comes back without a token (dramatiq's maintenance giving back a dead worker's) waits for the timeout.
        self._drained = False
        #: The due times (``eta``, ms since the epoch) of the delayed messages a delay queue's consumer handed to
        #: its worker, earliest first: its wait on the wake list ends at the first (``_due_in_ms``).
        self._etas: list[int] = []
        #: True while the consumer blocks on the wake list, and once it is closed: an ack then goes out at once.
        self._blocking = False
        self._closed = False
        #: Set once ``_put_back_stranded`` ran, before the first fetch.
        self._ack_set_checked = False

    def ack(self, message: MessageProxy) -> None:
        """Acknowledge ``message``: with the consumer's next round trip, or at once (see the module docstring).

        Raises:
            ConnectionClosed: Redis could not be reached or refused the ack (``_refused_as_closed``);
                the message still counts as held (its ack is tried again).
        """
        redis_message_id = message.options["redis_message_id"]
        try:
            with self._waiting.lock:
                # The consumer's own thread acks a delayed message once it is due, at once.
                if not (self.is_delay_queue or self._blocking or self._closed):
                    self._waiting.ids.append(redis_message_id)
                    self._waiting.let_go(redis_message_id)
                    return
            with _refused_as_closed():
                super().ack(message)
            with self._waiting.lock:
                self._waiting.let_go(redis_message_id)
        finally:
            self.queued_message_ids.discard(message.message_id)
            if self.prefetch - self.outstanding_message_count >= max(1, self.prefetch // REFILL_SHARE):
                self.room.set()

    def nack(self, message: MessageProxy) -> None:
        """Move ``message`` to the dead-letter queue (dramatiq's nack).

        Raises:
            ConnectionClosed: Redis could not be reached or refused the nack (``_refused_as_closed``).
        """
        try:
            with _refused_as_closed():
                super().nack(message)
            with self._waiting.lock:
                self._waiting.let_go(message.options["redis_message_id"])
        finally:
            self.room.set()

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        """Put ``messages`` back on the queue (dramatiq's requeue); a Redis error is raised as ``ConnectionClosed``.

        dramatiq's consumer thread requeues what it holds as it closes after an error, and there it
        catches only a broker connection error (``ConnectionClosed``, what dramatiq's ack and nack
        raise), not redis-py's: with Redis down, the error ended the thread for good, and the queue
        was not consumed again by a worker that lived on. A delay queue's consumer whose Redis was
        killed while it moved a due message (a ``kill -9``: the error, then the requeue's) left its
        delayed messages stranded with nothing to run them. The messages not put back stay in this
        worker's ack set, no longer counted as held: the queue's consumer, started again, puts them
        back before its first fetch (``_put_back_stranded``); a delay queue's also go back once overdue
        (the sweep's ``autolog.broker_state.requeue_stranded``) if this worker stops first.

        Raises:
            ConnectionClosed: Redis could not be reached or failed the requeue.
        """
        held = list(messages)
        with self._waiting.lock:  # Given up by the worker, put back or not.
            for message in held:
                self._waiting.let_go(message.options["redis_message_id"])
        try:
            with _refused_as_closed():
                super().requeue(held)
        except ConnectionClosed as ex:
            # dramatiq's consumer thread passes over this error in silence.
            logging.getLogger(__name__).warning(
                "Could not put back %d message(s) of queue %r; they stay in this worker's ack set until the queue's"
                " consumer starts again and puts them back (if this worker stops first: once its heartbeat lapses): %s",
                len(held), self.queue_name, ex)
            raise

    def close(self) -> None:
        with self._waiting.lock:
            self._closed = True
        try:
            self._round_trip(fetch=0)
        except ConnectionClosed as ex:
            logging.getLogger(__name__).warning(
                "Could not send the acks waiting on queue %r; the queue's next consumer sends them (or, if this"
                " worker stops first, those messages run again once its heartbeat lapses): %s", self.queue_name, ex)
        super().close()

    def _dispatch(self, pipe: Any, command: str, *args: Any) -> None:
        """Queue one command of dramatiq's dispatch script on ``pipe``, with the arguments ``do_<command>`` sends.

        By its digest (``EVALSHA``), not as a ``Script`` of the pipeline: redis-py asks Redis whether
        a pipeline's scripts exist (``SCRIPT EXISTS``) before every execution, a round trip of its own
        each time. A Redis that lost the script (a restart) answers ``NOSCRIPT``: ``_round_trip`` loads it.
        """
        broker = self.broker
        pipe.evalsha(broker.scripts["dispatch"].sha, 1, broker.namespace,
                     *broker.dispatch_args(command, self.queue_name, *args))

    def _round_trip(self, *, fetch: int) -> list[bytes]:
        """Send the deferred acks and fetch up to ``fetch`` messages, in one round trip; return what was fetched.

        The acks and the fetch are two commands of one pipeline, the acks first, each with its own
        outcome: a fetch that ran is always returned (its messages are in this worker's ack set
        now), whatever became of the acks. A command Redis answered ``NOSCRIPT`` (it lost the
        scripts: a restart) did not run; the scripts are loaded and only those commands are sent
        again (another client may load a script between two commands of the pipeline, so the
        other one may have run). Acks that go out after a fetch that ran (sent again, or kept for
        the next round trip) leave out the messages that fetch took: a message a hold put back
        keeps its Redis id, and a late ack of its earlier delivery would delete the running one's data.

        Raises:
            ConnectionClosed: Redis could not be reached or failed the call (the acks are kept for
                the next round trip; an ack sent twice does nothing the second time).
        """
        with self._waiting.lock:
            acks, self._waiting.ids = self._waiting.ids, []
        if not acks and not fetch:
            return []
        acked: Any
        fetched: Any
        try:
            acked, fetched = self._send(acks, fetch)
        except redis.RedisError as ex:  # Unreachable, timed out, refused: none is known to have run.
            acked = fetched = ex
        acks_again, fetch_again = isinstance(acked, NoScriptError), isinstance(fetched, NoScriptError)
        if acks_again or fetch_again:
            if acks_again:
                acks = _not_taken_by(acks, fetched)
            try:
                for script in (self.broker.scripts["dispatch"], self.broker.ack_script):
                    self.broker.client.script_load(script.script)
                again = self._send(acks if acks_again else [], fetch if fetch_again else 0)
            except redis.RedisError as ex:  # Only the commands sent again failed: a fetch that ran stands.
                again = (ex, ex)
            acked = again[0] if acks_again else acked
            fetched = again[1] if fetch_again else fetched
        if isinstance(acked, Exception):
            with self._waiting.lock:
                self._waiting.ids[:0] = _not_taken_by(acks, fetched)
        if isinstance(fetched, Exception):
            raise ConnectionClosed(fetched) from None
        if not fetch and isinstance(acked, Exception):
            raise ConnectionClosed(acked) from None
        return list(fetched) if fetch else []

    def _send(self, acks: list[str], fetch: int) -> tuple[Any, Any]:
        """Send ``acks`` (if any) and a fetch of ``fetch`` messages (if any) in one pipeline.

        Returns:
            The acks' reply and the fetch's (None for a command not sent), each an exception
            instead when Redis failed that command.

        Raises:
            redis.RedisError: the pipeline itself failed (Redis unreachable, a timeout).
        """
        pipe = self.broker.client.pipeline(transaction=False)
        if acks:
            # One command for all of them (``ACK_SCRIPT``: dramatiq's ack, each), not one dispatch call each.
            pipe.evalsha(self.broker.ack_script.sha, 2, *self._ack_keys, *acks)
        if fetch:
            self._dispatch(pipe, "fetch", fetch)
        replies: list[Any] = pipe.execute(raise_on_error=False)
        return (replies[0] if acks else None), (replies[-1] if fetch else None)

    def __next__(self) -> MessageProxy | None:
        if not self._ack_set_checked:
            self._put_back_stranded()
        # Cleared before the count is read: an ack from now on ends the wait below at once.
        self.room.clear()
        if self.message_cache:
            return self._handed(self._take())  # No round trip.
        room = self.prefetch - self.outstanding_message_count
        # A delay queue's consumer fetches whenever it has room, as dramatiq's does: a message due
        # soon must not wait in Redis behind the far-off ones it holds.
        if room < (1 if self.is_delay_queue else max(1, self.prefetch // REFILL_SHARE)):
            self._wait_for_room()
            return None
        if not self._drained:
            self.message_cache = self._round_trip(fetch=room)
            if self.message_cache:
                self.misses = 0
                # Fewer than it asked for: the fetch emptied the queue, so the next look blocks on the
                # wake list at once instead of fetching again first (a round trip per message at light load).
                self._drained = len(self.message_cache) < room
                return self._handed(self._take())
            self.misses += 1
        self._drained = False
        wait_ms = max(self.idle_timeout_ms, 10)  # Redis reads a timeout of 0 as "for ever".
        due_in_ms = self._due_in_ms()
        if due_in_ms is not None:
            if due_in_ms <= BLOCK_TIMER_MS:
                # Closer than Redis's timer could end a wait: nap here, then the worker moves it on time.
                time.sleep(max(0, due_in_ms) / 1000)
                return None
            wait_ms = min(wait_ms, due_in_ms - BLOCK_TIMER_MS)
        with self._waiting.lock:
            if self._waiting.ids:
                return None  # Acks came meanwhile: the next round trip sends them.
            self._blocking = True
        try:
            # The fetch found the queue empty: block until an enqueue wakes it, the timeout, or a delayed one is due.
            fetched = self._wait_then_fetch(wait_ms, room)
        finally:
            with self._waiting.lock:
                self._blocking = False
        if fetched is None:
            return None  # The fetch did not run: the next look makes its own (``_drained`` is False).
        # Fewer than it asked for (none, at a timeout): the queue is empty again, and the next look blocks at once.
        self._drained = len(fetched) < room
        if not fetched:
            self.misses += 1
            return None
        self.message_cache, self.misses = fetched, 0
        return self._handed(self._take())

    def _wait_then_fetch(self, wait_ms: int, fetch: int) -> list[bytes] | None:
        """Block on the wake list for at most ``wait_ms``, then fetch up to ``fetch`` messages; return what was fetched.

        One round trip, not two: the two commands go in one pipeline, and Redis runs a client's
        next command as soon as its blocking one ends (a wake token, or the timeout: a message
        put back without a token, by dramatiq's maintenance, is fetched then). A Redis that lost
        the dispatch script (a restart) did not fetch: None, and the next look fetches on its own
        (``_round_trip``), which loads it.

        Raises:
            ConnectionClosed: Redis could not be reached, failed the fetch, or failed the wait
                while the fetch took nothing (a wait that fails at once must not spin this thread).
        """
        pipe = self.broker.client.pipeline(transaction=False)
        pipe.blpop([self.wake_key], timeout=wait_ms / 1000)
        self._dispatch(pipe, "fetch", fetch)
        try:
            woken, fetched = pipe.execute(raise_on_error=False)
        except redis.RedisError as ex:
            raise ConnectionClosed(ex) from None
        if isinstance(fetched, NoScriptError):
            return None
        if isinstance(fetched, Exception):
            raise ConnectionClosed(fetched) from None
        if isinstance(woken, Exception) and not fetched:
            raise ConnectionClosed(woken) from None
        # A fetch that ran is returned whatever became of the wait: its messages are in this worker's ack set.
        return list(fetched)

    def _wait_for_room(self) -> None:
        """Wait while the consumer holds (nearly) all it may prefetch, for its workers, not for Redis.

        Until their acks free ``REFILL_SHARE`` of it, or a nack, or the earliest delayed message is
        due, at most ``SATURATED_WAIT_S``: dramatiq's backoff grew to 1 s, and a fixed 5 ms nap cost a
        loop of this thread 200 times a second. Acks waiting then go out: none waits longer than that.
        """
        due_in_ms = self._due_in_ms()
        if due_in_ms is not None and due_in_ms <= 0:
            return  # A delayed message is due: the worker's consumer thread moves it to its queue now.
        self.room.wait(SATURATED_WAIT_S if due_in_ms is None else min(SATURATED_WAIT_S, due_in_ms / 1000))
        if self._waiting.ids:
            self._round_trip(fetch=0)

    def _put_back_stranded(self) -> None:
        """Put back what this worker's ack set holds of the queue beyond what the worker holds (module docstring).

        The queue's fetches are this thread's, and its acks wait for this thread's round trips
        or are counted as held until sent, so nothing moves in between. A delay queue's consumer
        starts holding nothing: its consumer thread dropped (after a Redis error) or put back
        (after any other) the delayed messages it held.

        Raises:
            ConnectionClosed: Redis could not be reached or failed a call; the consumer's next start tries again.
        """
        broker = self.broker
        with _refused_as_closed():
            in_ack_set = held_by_worker_on(broker.client, broker.namespace, broker.broker_id, self.queue_name)
        with self._waiting.lock:
            if self.is_delay_queue:
                self._waiting.held.clear()
            stranded = sorted(in_ack_set.difference(self._waiting.held, self._waiting.ids))
        if stranded:
            with _refused_as_closed():
                self._settle_stranded(stranded)
        self._ack_set_checked = True

    def _settle_stranded(self, stranded: list[str]) -> None:
        """Put back the messages of ``stranded`` (Redis ids in this worker's ack set) on the queue.

        One whose stored form cannot be decoded as a message (its fetch ended the previous
        consumer: ``_take`` raised) goes to the dead letters instead, where it stays for a person
        to read: put back, it would end every consumer that fetched it, with the messages fetched
        beside it. One no longer stored (purged since) only leaves the ack set: dramatiq's requeue
        puts back only what Redis still stores.

        Raises:
            redis.RedisError: Redis could not be reached or failed a call.
        """
        logger = logging.getLogger(__name__)
        stored = stored_messages(self.broker.client, self.broker.namespace, self.queue_name, stranded)
        broken = {redis_id for redis_id, data in zip(stranded, stored, strict=True)
                  if data is not None and not _decodes(data)}
        for redis_id in sorted(broken):
            self.broker.do_nack(self.queue_name, redis_id)
            logger.error("Message %r of queue %r could not be decoded; it is in the dead letters.",
                         redis_id, self.queue_name)
        back = [redis_id for redis_id in stranded if redis_id not in broken]
        if back:
            self.broker.do_requeue(self.queue_name, *back)
            logger.warning("Put back %d message(s) of queue %r that this worker's ack set held but none of its"
                           " threads did (a fetch whose reply never came, or the messages fetched beside one that"
                           " could not be decoded).", len(back), self.queue_name)

    def _take(self) -> MessageProxy | None:
        """Hand the next message of the cache, as dramatiq's ``__next__`` does, as a ``FieldProxy``; None if none."""
        while self.message_cache:
            data = self.message_cache.pop(0)
            if data is None:  # As dramatiq: skipped, with its warning (its issue #266).
                self.logger.warning("Found 'None' message in message cache for queue %r. This may be a bug in"
                                    " dramatiq (related to #266), please report it.", self.queue_name)
                continue
            self.misses = 0
            message = Message.decode(data)
            self.queued_message_ids.add(message.message_id)
            with self._waiting.lock:
                self._waiting.hold(message.options["redis_message_id"])
            return FieldProxy(message)
        return None

    def _handed(self, message: MessageProxy | None) -> MessageProxy | None:
        """Return ``message``, noting its due time first if it is a delayed one (``eta``)."""
        if message is not None and self.is_delay_queue:
            eta = message.options.get("eta")
            if isinstance(eta, (int, float)):
                heapq.heappush(self._etas, int(eta))
        return message

    def _due_in_ms(self) -> int | None:
        """Return in how many ms the earliest delayed message this consumer handed to its worker is due; None if none.

        At most 0 when it is due: its due time is then taken off (the worker moves the message
        when this look returns).
        """
        if not self._etas:
            return None
        due_in_ms = self._etas[0] - current_millis()
        if due_in_ms <= 0:
            heapq.heappop(self._etas)
        return due_in_ms


def _decodes(data: bytes) -> bool:
    """Whether ``data`` (a stored message) decodes as a message with its Redis id, as ``_take`` reads it."""
    try:
        return "redis_message_id" in Message.decode(data).options
    except DecodeError:
        return False


def _not_taken_by(acks: list[str], fetched: Any) -> list[str]:
    """Return ``acks`` without the Redis ids of the messages ``fetched`` (a fetch's reply) took; all if it failed."""
    if not acks or not isinstance(fetched, list) or not fetched:
        return acks
    taken = {Message.decode(data).options.get("redis_message_id") for data in fetched if data is not None}
    return [redis_message_id for redis_message_id in acks if redis_message_id not in taken]


class _PurgedWhileFetched(Exception):
    """A fetched message being put back was dropped by a purge meanwhile: nothing is stored (see ``enqueue``)."""


class _PuttingBack(threading.local):
    """Per thread: the fetched message ``enqueue`` is putting back, as (Redis id, timestamp in ms), or None."""

    fetched: tuple[str, int] | None = None


class WakingRedisBroker(RedisBroker):
    """A ``RedisBroker`` whose enqueues wake the queue's idle consumers (see the module docstring).

    Its hooks are emitted as dramatiq's are, in the same order with the same error handling,
    except that a middleware that does not define a hook (it inherits ``Middleware``'s, which
    does nothing) is not called for it: of the twenty middleware, a few define each hook, and
    calling all twenty for each of a message's hooks cost about 5 % of a no-op drain (issue #13).
    Which middleware define a hook is read when the middleware list changes: a hook must be
    defined by the class, or set on the instance before the middleware joins the list.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: The middleware list the hook lists were made from, with the middleware defining each hook: one
        #: pair, replaced whole, so a list made from one middleware list is never kept for another.
        self._hooked: tuple[tuple[Middleware, ...], dict[str, list[Middleware]]] = ((), {})
        super().__init__(*args, **kwargs)
        self._waiting_acks: dict[str, _WaitingAcks] = {}
        self._waiting_acks_lock = threading.Lock()
        #: Sends a consumer's waiting acks in one command (``autolog.broker_state.ACK_SCRIPT``).
        self.ack_script = self.client.register_script(ACK_SCRIPT)
        #: The Redis id and timestamp of the fetched message this thread is putting back (``enqueue``), if any.
        self._putting_back = _PuttingBack()

    def _defining(self, hook: str) -> list[Middleware]:
        """Return the middleware that define ``hook``, in the broker's order (made again when the list changes)."""
        current = tuple(self.middleware)
        made_from, by_hook = self._hooked
        if current != made_from:  # Middleware compare by identity.
            by_hook = {}
            self._hooked = (current, by_hook)
        defining = by_hook.get(hook)
        if defining is None:
            inherited = getattr(Middleware, hook, None)
            defining = by_hook[hook] = [
                middleware for middleware in current
                if hook in vars(middleware) or getattr(type(middleware), hook, None) is not inherited]
        return defining

    def emit_before(self, signal: str, *args: Any, **kwargs: Any) -> None:
        hook = "before_" + signal
        for middleware in self._defining(hook):
            try:
                getattr(middleware, hook)(self, *args, **kwargs)
            except MiddlewareError:
                raise
            except Exception:
                self.logger.critical("Unexpected failure in %s of %r.", hook, middleware, exc_info=True)

    def emit_after(self, signal: str, *args: Any, **kwargs: Any) -> None:
        hook = "after_" + signal
        for middleware in reversed(self._defining(hook)):
            try:
                getattr(middleware, hook)(self, *args, **kwargs)
            except Exception:
                self.logger.critical("Unexpected failure in %s of %r.", hook, middleware, exc_info=True)

    def waiting_acks(self, queue_name: str) -> _WaitingAcks:
        """Return the acks of ``queue_name``'s messages waiting for a consumer's round trip."""
        with self._waiting_acks_lock:
            return self._waiting_acks.setdefault(queue_name, _WaitingAcks())

    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]:
        """Enqueue ``message`` as dramatiq does, unless it is a fetched message a purge dropped meanwhile.

        A message put back on its queue without a delay and carrying a Redis id is one a worker
        fetched: a delayed message falling due (``ConsumerThread.handle_delayed_messages``), which
        a purge may have dropped, counted and marked while the worker held it
        (``autolog.broker_state.purged_while_fetched``). That one is not put back
        (``_put_back_unless_purged``); the worker then acknowledges it.
        """
        redis_message_id = message.options.get("redis_message_id")
        if delay is not None or redis_message_id is None:
            return super().enqueue(message, delay=delay)
        self._putting_back.fetched = (redis_message_id, message.message_timestamp)
        try:
            return super().enqueue(message, delay=delay)
        except _PurgedWhileFetched:
            self.logger.info("Message %r was purged while a worker held it; it is not queued again.",
                             message.message_id)
            return message
        finally:
            self._putting_back.fetched = None

    def _put_back_unless_purged(self, queue_name: str, redis_message_id: str, encoded: bytes,
                                fetched_id: str, timestamp_ms: int) -> Any:
        """Put a fetched message back on ``queue_name`` (as ``do_enqueue``), in one transaction with its purge check.

        The check runs under ``WATCH`` of the queue's purge time, which every purge sets: a purge
        between the check and the put fails the transaction, and the check runs again.

        Raises:
            _PurgedWhileFetched: a purge dropped it (``fetched_id``, made at ``timestamp_ms``); nothing is stored.
            redis.RedisError: Redis could not be reached or failed the enqueue.
        """
        while True:
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(purge_time_key(self.namespace, queue_name))
                    if purged_while_fetched(pipe, self.namespace, queue_name, fetched_id, timestamp_ms):
                        raise _PurgedWhileFetched(fetched_id)
                    pipe.multi()
                    enqueued, *woken = self._put_on(pipe, queue_name, redis_message_id, encoded)
                except redis.WatchError:
                    continue
            if isinstance(enqueued, NoScriptError):  # A Redis that lost the script (a restart): load it, try again.
                self.client.script_load(self.scripts["dispatch"].script)
                continue
            return self._stored(queue_name, enqueued, woken)

    @property
    def consumer_class(self) -> type[Consumer]:
        return _WakingConsumer

    def do_enqueue(self, queue_name: str, redis_message_id: str, encoded: bytes) -> Any:
        """Run dramatiq's enqueue and push a wake token for the queue's idle consumers, in one round trip.

        ``queue_name`` is the queue the message goes to: a delayed message's wakes its delay
        queue's consumer. The commands go in one pipeline, the message first, by the script's
        digest (as ``_WakingConsumer._dispatch``). The hooks that must come before a consumer can
        take the message run before this, in ``before_enqueue`` (``Progress`` announces the step
        there: after the put, a consumer could start the step first, and the progress script's
        guard then dropped its "running"). A Redis that lost the script (a restart) answers
        ``NOSCRIPT`` and stored nothing: the message goes again through dramatiq's script call,
        which loads the script, and its token after it. A token Redis refuses is logged: the
        message is stored, and the consumers find it at their timeout.

        Raises:
            redis.RedisError: Redis could not be reached or failed the enqueue.
        """
        # Taken once: only the put-back ``enqueue`` is making goes through the check, no other message.
        fetched, self._putting_back.fetched = self._putting_back.fetched, None
        if fetched is not None:
            return self._put_back_unless_purged(queue_name, redis_message_id, encoded, *fetched)
        enqueued, *woken = self._put_on(self.client.pipeline(transaction=False), queue_name, redis_message_id, encoded)
        if isinstance(enqueued, NoScriptError):
            enqueued = self._dispatch("enqueue")(queue_name, redis_message_id, encoded)  # loads it; raises on failure
            self._wake(queue_name)
            return enqueued
        return self._stored(queue_name, enqueued, woken)

    def _put_on(self, pipe: Any, queue_name: str, redis_message_id: str, encoded: bytes) -> list[Any]:
        """Send on ``pipe`` dramatiq's enqueue, by the script's digest, then a wake token; return the replies.

        Errors are replies, not raised (``NOSCRIPT`` included: the callers load the script their own way).
        """
        pipe.evalsha(self.scripts["dispatch"].sha, 1, self.namespace,
                     *self.dispatch_args("enqueue", queue_name, redis_message_id, encoded))
        return self._wake_on(pipe, queue_name).execute(raise_on_error=False)  # type: ignore[no-any-return]

    def _stored(self, queue_name: str, enqueued: Any, woken: list[Any]) -> Any:
        """Return the enqueue's reply (``_put_on``), raising it if Redis failed it; log a refused wake token."""
        if isinstance(enqueued, Exception):
            raise enqueued
        self._log_refused_wake(queue_name, woken)
        return enqueued

    def dispatch_args(self, command: str, queue_name: str, *args: Any) -> list[Any]:
        """Return the arguments dramatiq's dispatch script takes for ``command`` (what ``do_<command>`` sends)."""
        return [command, current_millis(), queue_name, self.broker_id, self.heartbeat_timeout, self.dead_message_ttl,
                self._should_do_maintenance(command), self._max_unpack_size(), *args]

    def do_requeue(self, queue_name: str, *redis_message_ids: str) -> Any:
        """Put messages a worker held back onto their queue again (dramatiq's requeue), and wake its idle consumers.

        A stopping worker's (``ShutdownRequeue``, dramatiq's own at a stop): a consumer that has just
        emptied its queue blocks on the wake list, and would otherwise find them only at its timeout.

        Raises:
            redis.RedisError: Redis could not be reached or failed the requeue.
        """
        requeued = self._dispatch("requeue")(queue_name, *redis_message_ids)
        self._wake(queue_name)
        return requeued

    def _wake(self, queue_name: str) -> None:
        """Push a wake token for ``queue_name``'s idle consumers, a round trip of its own (refused: logged)."""
        self._log_refused_wake(queue_name, self._wake_on(self.client.pipeline(transaction=False), queue_name)
                               .execute(raise_on_error=False))

    def _wake_on(self, pipe: Any, queue_name: str) -> Any:
        """Queue on ``pipe`` a wake token for ``queue_name``'s idle consumers (``WAKE_TOKENS`` kept); return it."""
        key = wake_key(self.namespace, queue_name)
        pipe.lpush(key, b"1")
        pipe.ltrim(key, 0, WAKE_TOKENS - 1)
        return pipe

    def _log_refused_wake(self, queue_name: str, replies: list[Any]) -> None:
        """Log a wake token Redis refused: the messages are stored, and the consumers find them at their timeout."""
        if any(isinstance(reply, Exception) for reply in replies):
            self.logger.warning("Could not wake the consumers of %r: %s", queue_name, replies)
