"""Idle consumers wake on an enqueue, not at the end of their poll: hops cost a round trip."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
import redis

from autolog.broker_state import wake_key
from tests.conftest import wait_for

#: The worker's idle timeout in this test: far longer than the deadline the wake must beat.
IDLE_TIMEOUT_MS = 8_000


@pytest.fixture
def woken() -> Iterator[tuple[Any, threading.Event]]:
    """A no-op actor on its own queue, and the event it sets when it runs."""
    from actors import broker

    ran = threading.Event()
    name = "autolog_test.wake"
    actor = broker.actors.get(name) or dramatiq.actor(lambda: None, actor_name=name, queue_name="wake_test",
                                                      broker=broker)
    actor.fn = ran.set
    yield actor, ran


def blocked_on_wake_list(client: redis.Redis) -> bool:
    """Tell whether a client of the private Redis is blocked in ``BLPOP`` (only this test's consumer is)."""
    return any(entry.get("cmd") == "blpop" for entry in client.client_list())


def test_an_idle_consumer_wakes_on_enqueue_well_before_its_idle_timeout(
    redis_client: redis.Redis, woken: tuple[Any, threading.Event],
) -> None:
    from actors import broker

    actor, ran = woken
    # Given a worker whose consumer has found its queue empty and blocks on the wake list
    worker = dramatiq.Worker(broker, queues={"wake_test"}, worker_threads=1, worker_timeout=IDLE_TIMEOUT_MS)
    worker.start()
    try:
        wait_for(lambda: blocked_on_wake_list(redis_client), timeout_s=10, what="the consumer to block")
        assert redis_client.llen(wake_key(broker.namespace, "wake_test")) == 0

        # When a message is enqueued, Then it runs long before the consumer's idle timeout
        actor.send()
        wait_for(ran.is_set, timeout_s=IDLE_TIMEOUT_MS / 2000, what="the idle consumer to wake")
    finally:
        worker.stop()
