"""A Redis broker whose idle consumers wake the moment a message is enqueued.

dramatiq's Redis consumer polls an empty queue with a growing sleep, up to the worker's
timeout (1 s from the ``dramatiq`` CLI, which cannot change it), so at light load every hop
between two steps on different queues waited about half a second. Here each immediate
enqueue also pushes a token onto the queue's wake list, and an idle consumer blocks on that
list (``BLPOP``, up to the same timeout) instead of sleeping: a hop costs a Redis round
trip. Delay queues keep dramatiq's polling: their messages become due by time, not by an
enqueue.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import redis
from dramatiq.broker import Consumer, MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import compute_backoff, q_name
from dramatiq.errors import ConnectionClosed
from dramatiq.message import Message

from autolog.broker_state import WAKE_TOKENS, wake_key

#: How long a consumer that holds all it may prefetch waits for room before looking again, in s.
#: An ack or a nack ends the wait at once; the bound only keeps a stop or a pause prompt.
SATURATED_WAIT_S = 0.1

class _WakingConsumer(_RedisConsumer):  # type: ignore[misc]
    """dramatiq's Redis consumer, blocking on the queue's wake list when the queue is empty."""

    def __init__(self, broker: RedisBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        # dramatiq's own idle sleep is cut to 1 ms; the idle wait happens in ``_wait``.
        super().__init__(broker, queue_name, prefetch, 1)
        self.idle_timeout_ms = timeout
        self.idle_misses = 0
        self.is_delay_queue = q_name(queue_name) != queue_name
        self.wake_key = wake_key(broker.namespace, queue_name)
        #: Set by each ack and nack (a worker thread's), which make room to prefetch again.
        self.room = threading.Event()

    def ack(self, message: MessageProxy) -> None:
        try:
            super().ack(message)
        finally:
            self.room.set()

    def nack(self, message: MessageProxy) -> None:
        try:
            super().nack(message)
        finally:
            self.room.set()

    def __next__(self) -> MessageProxy | None:
        # Cleared before the count is read: an ack from now on ends the wait below at once.
        self.room.clear()
        if not self.message_cache and self.outstanding_message_count >= self.prefetch:
            # Holding all it may prefetch, the consumer waits for its workers, not for Redis (no
            # fetch would happen): until one of them acks or nacks, where dramatiq's backoff
            # grows to 1 s, and a fixed 5 ms nap cost a loop of this thread 200 times a second.
            self.room.wait(SATURATED_WAIT_S)
            return None
        message: MessageProxy | None = super().__next__()
        if message is not None:
            self.idle_misses = 0
        elif self.is_delay_queue:
            # Delayed messages come due by time, not by an enqueue: dramatiq's backoff.
            self.idle_misses, backoff_ms = compute_backoff(self.idle_misses, max_backoff=self.idle_timeout_ms)
            time.sleep(backoff_ms / 1000)
        else:
            # The fetch found the queue empty: block until an enqueue wakes it, or the timeout.
            try:
                self.broker.client.blpop([self.wake_key], timeout=max(self.idle_timeout_ms, 10) / 1000)
            except redis.ConnectionError as ex:
                raise ConnectionClosed(ex) from None
        return message


class WakingRedisBroker(RedisBroker):
    """A ``RedisBroker`` whose enqueues wake the queue's idle consumers (see the module docstring)."""

    @property
    def consumer_class(self) -> type[Consumer]:
        return _WakingConsumer

    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]:
        enqueued: Message[Any] = super().enqueue(message, delay=delay)
        if delay is None:
            key = wake_key(self.namespace, message.queue_name)
            pipe = self.client.pipeline(transaction=False)
            pipe.lpush(key, b"1")
            pipe.ltrim(key, 0, WAKE_TOKENS - 1)
            pipe.execute()
        return enqueued
