"""Idle consumers wake on an enqueue, not at the end of their poll: hops cost a round trip."""

from __future__ import annotations

import threading

import dramatiq
import redis

from actors import broker
from autolog.broker_state import wake_key
from tests.conftest import wait_for

#: The worker's idle timeout in this test: far longer than the deadline the wake must beat.
IDLE_TIMEOUT_MS = 8_000

#: Set when the probe actor runs.
RAN = threading.Event()


def _probe() -> None:
    RAN.set()


# Declared at import, before any worker of the session exists: dramatiq's stopped workers keep
# adding consumers for queues declared later, which would take this queue's message.
probe = dramatiq.actor(_probe, actor_name="autolog_test.wake", queue_name="wake_test", broker=broker)


def test_an_idle_consumer_wakes_on_enqueue_well_before_its_idle_timeout(redis_client: redis.Redis) -> None:
    # Given a worker whose consumer has found its queue empty (and so blocks on the wake list)
    RAN.clear()
    worker = dramatiq.Worker(broker, queues={"wake_test"}, worker_threads=1, worker_timeout=IDLE_TIMEOUT_MS)
    worker.start()
    try:
        wait_for(lambda: getattr(worker.consumers["wake_test"].consumer, "misses", 0) > 0, timeout_s=10,
                 what="the consumer to find its queue empty")
        assert redis_client.llen(wake_key(broker.namespace, "wake_test")) == 0

        # When a message is enqueued, Then it runs long before the consumer's idle timeout
        probe.send()
        wait_for(RAN.is_set, timeout_s=IDLE_TIMEOUT_MS / 2000, what="the idle consumer to wake")
    finally:
        worker.stop()
