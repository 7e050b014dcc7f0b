"""ShutdownRequeue: a stopping worker gives back the messages its threads did not finish in the grace period.

dramatiq stops a worker process by letting its threads finish for ``--worker-shutdown-timeout``
and putting back the messages no thread had started; the messages still running when the grace
period ends stay in the worker's ack sets, and the process then exits. Left there, they would
wait for the worker's heartbeat to expire before dramatiq's maintenance gave them to another
worker. This middleware puts them back on their queues at once, as they are: a requeue is not a
failure, so no retry is spent. A run that finishes in the moment before the process exits is
harmless: the redelivered message is refused by the step guard, the item having moved on.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker


class ShutdownRequeue(dramatiq.Middleware):
    """Puts back every message this worker process still holds when it has shut down."""

    def __init__(self) -> None:
        self.logger = logging.getLogger(__name__)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        if not isinstance(broker, RedisBroker):
            return
        # dramatiq's Redis layout (dramatiq/brokers/redis/dispatch.lua): ``__acks__.<worker>.<queue>``
        # holds what this broker id fetched and has not acknowledged.
        prefix = f"{broker.namespace}:__acks__.{broker.broker_id}."
        try:
            for key in broker.client.scan_iter(match=f"{prefix}*", count=500):
                queue = (key.decode() if isinstance(key, bytes) else str(key))[len(prefix):]
                held = [member.decode() if isinstance(member, bytes) else str(member)
                        for member in broker.client.smembers(key)]
                if held:
                    broker.do_requeue(queue, *held)  # type: ignore[attr-defined]
                    self.logger.warning("Requeued %d message(s) of %r still running at the end of the grace period.",
                                        len(held), queue)
        except redis.RedisError as ex:
            self.logger.warning("Could not requeue running messages at shutdown (dramatiq's maintenance will, "
                                "once this worker's heartbeat expires): %s", ex)
