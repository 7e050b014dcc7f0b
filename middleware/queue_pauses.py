"""Queue pauses: messages of a paused queue wait in Redis instead of running.

An operator pauses a queue through the API, which adds its name to the Redis set
``<namespace>:__paused__``. Workers hold such messages back: each is re-enqueued with a
short delay and this delivery skipped, so a pause costs no retry and no thread.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import dramatiq
import redis
from dramatiq.broker import MessageProxy

from middleware.rate_limits import WAIT_OPTION, wait_again

#: The set of paused queue names, under the broker's namespace.
PAUSED_KEY = "__paused__"

#: The ``reason`` a held-back message's wait marker carries.
PAUSE_REASON = "queue paused"


class QueuePauses(dramatiq.Middleware):
    """Holds back the messages of paused queues.

    Args:
        client: the broker's Redis client.
        namespace: the broker's key namespace.
        refresh_s: how stale the cached set of paused queues may be.
        delay_ms: how long a held-back message waits before it is looked at again.
    """

    def __init__(self, *, client: redis.Redis, namespace: str, refresh_s: float = 1.0,
                 delay_ms: int = 2_000) -> None:
        self.logger = logging.getLogger(__name__)
        self._client = client
        self._key = f"{namespace}:{PAUSED_KEY}"
        self.refresh_s = refresh_s
        self.delay_ms = delay_ms
        self._lock = threading.Lock()
        self._paused: frozenset[str] = frozenset()
        self._read_at = float("-inf")

    def paused(self) -> frozenset[str]:
        """Return the paused queues, reading Redis at most once per ``refresh_s``."""
        with self._lock:
            if time.monotonic() - self._read_at >= self.refresh_s:
                try:
                    members: set[bytes] = self._client.smembers(self._key)  # type: ignore[assignment]
                    self._paused = frozenset(member.decode() for member in members)
                except redis.RedisError:
                    # Keep the last known set: the broker itself needs Redis to deliver anything.
                    self.logger.warning("Could not read the paused queues; keeping %r.", sorted(self._paused))
                self._read_at = time.monotonic()
            return self._paused

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        queue = message.queue_name.removesuffix(".DQ")
        previous: dict[str, Any] = message.options.get(WAIT_OPTION) or {}
        if queue not in self.paused():
            # A pause's marker ends with the pause, so the timeline can tell a later retry from
            # a wait (see ``StatusWrites``); a rate limiter's marker is the limiter's to clear.
            if previous.get("reason") == PAUSE_REASON:
                message.options.pop(WAIT_OPTION, None)
            return
        waits = int(previous.get("waits", 0)) + 1 if previous.get("reason") == PAUSE_REASON else 1
        wait = {"waits": waits, "reason": PAUSE_REASON, "wait_ms": self.delay_ms}
        wait_again(broker, message, wait, delay_ms=self.delay_ms, reason=f"queue {queue!r} is paused")
