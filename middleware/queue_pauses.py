"""Queue pauses: messages of a paused queue are held in Redis, out of every worker's reach.

An operator pauses a queue through the API (``autolog.broker_state.pause``), which flags it
in the set ``<namespace>:__paused__`` and moves its ready messages to the queue's held list.
Messages that reach a worker anyway (prefetched before the pause, enqueued after it, or
delayed ones falling due) are held here: moved to the same list in one atomic call and
acknowledged, so a paused queue costs no re-enqueue loop, no retry and no thread. Resuming
puts the held messages back on the queue in their order.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import cast

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import SkipMessage

from autolog.broker_state import hold, paused_queues

#: The ``reason`` a held message's skip carries.
PAUSE_REASON = "queue paused"

#: Set (to the queue's name) on a delivery this worker held for its paused queue, before its
#: skip: the message comes back when the queue resumes, so its skip is not the step's end
#: (``Progress`` publishes it as "held", ``Metrics`` counts it as "held", ``LifecycleLogs`` logs
#: ``stage_held``). Only on the skipped delivery: the held copy in Redis was encoded before.
HELD_OPTION = "autolog_held"


class QueuePauses(dramatiq.Middleware):
    """Holds the messages of paused queues.

    Args:
        client: the broker's Redis client.
        namespace: the broker's key namespace.
        refresh_s: how stale the cached set of paused queues may be; a queue paused within
            it may still run a message the worker already fetched.
    """

    def __init__(self, *, client: redis.Redis, namespace: str, refresh_s: float = 1.0) -> None:
        self.logger = logging.getLogger(__name__)
        self._client = client
        self._namespace = namespace
        self.refresh_s = refresh_s
        self._lock = threading.Lock()
        self._paused: frozenset[str] = frozenset()
        self._read_at = float("-inf")

    def paused(self) -> frozenset[str]:
        """Return the paused queues, reading Redis at most once per ``refresh_s``."""
        with self._lock:
            if time.monotonic() - self._read_at >= self.refresh_s:
                try:
                    self._paused = paused_queues(self._client, self._namespace)
                except redis.RedisError:
                    # Keep the last known set: the broker itself needs Redis to deliver anything.
                    self.logger.warning("Could not read the paused queues; keeping %r.", sorted(self._paused))
                self._read_at = time.monotonic()
            return self._paused

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        queue = message.queue_name.removesuffix(".DQ")
        if queue not in self.paused():
            return
        # The script checks the flag again: a resume since the cached read lets the message run.
        outcome = hold(self._client, self._namespace, queue, message.options["redis_message_id"],
                       message.encode(), message.message_timestamp,
                       worker_id=cast(RedisBroker, broker).broker_id)
        if outcome == 1:
            message.options[HELD_OPTION] = queue
            raise SkipMessage(f"{PAUSE_REASON}: held until {queue!r} resumes")
        if outcome == -1:
            raise SkipMessage(f"queue {queue!r} was purged")
