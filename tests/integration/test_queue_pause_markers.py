"""Which wait markers a queue pause clears, against the private Redis."""

from __future__ import annotations

import redis
from dramatiq.broker import MessageProxy

from actors import analyze, broker
from middleware import QueuePauses
from middleware.rate_limits import WAIT_OPTION


def test_an_unpaused_queue_keeps_the_rate_limiters_wait_marker(redis_client: redis.Redis) -> None:
    pauses = QueuePauses(client=redis_client, namespace=broker.namespace)
    marker = {"waits": 3, "reason": "rate", "wait_ms": 5000}
    message = MessageProxy(analyze.message_with_options(args=("LF1",), **{WAIT_OPTION: marker}))

    pauses.before_process_message(broker, message)

    assert message.options[WAIT_OPTION] == marker


def test_an_unpaused_queue_clears_its_own_pause_marker(redis_client: redis.Redis) -> None:
    pauses = QueuePauses(client=redis_client, namespace=broker.namespace)
    marker = {"waits": 2, "reason": "queue paused", "wait_ms": 2000}
    message = MessageProxy(analyze.message_with_options(args=("LF1",), **{WAIT_OPTION: marker}))

    pauses.before_process_message(broker, message)

    assert WAIT_OPTION not in message.options
