"""A worker's consumers outlive a Redis killed under them, and its acks a Redis that refuses writes for a while."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis

from actors._waking_broker import WakingRedisBroker
from autolog.broker_state import requeue_stranded
from autolog.local_redis import LocalRedis
from tests.conftest import acked, wait_for


def test_a_delay_queue_whose_redis_is_killed_as_it_moves_a_due_message_runs_its_messages_once_redis_is_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # Given a worker on a private Redis (kept on disk, as autolog's), its delay queue's consumer
    # holding two delayed messages: one due in a second, one in a minute
    server = LocalRedis(tmp_path / "redis")
    private = WakingRedisBroker(url=server.start(), namespace="restarts")
    ran: list[str] = []
    done = threading.Event()

    def step(name: str) -> None:
        ran.append(name)
        done.set()

    actor = dramatiq.actor(step, actor_name="restarts.step", queue_name="restarts", broker=private)
    worker = dramatiq.Worker(private, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        soon = actor.send_with_options(args=("soon",), delay=1_000)
        actor.send_with_options(args=("later",), delay=60_000)
        delay_consumer = worker.consumers["restarts.DQ"]
        wait_for(lambda: delay_consumer.delay_queue.qsize() == 2, what="the delay queue's consumer to hold both")

        # When Redis is killed (kill -9) just as the consumer moves the due message to its queue
        real_do_enqueue = WakingRedisBroker.do_enqueue

        def killed_first(broker: WakingRedisBroker, queue_name: str, *args: Any) -> Any:
            if queue_name == "restarts" and server.pid() is not None:
                os.kill(server.pid() or 0, signal.SIGKILL)
                wait_for(lambda: server.pid() is None, what="Redis to be gone")
            return real_do_enqueue(broker, queue_name, *args)

        monkeypatch.setattr(WakingRedisBroker, "do_enqueue", killed_first)
        wait_for(lambda: server.pid() is None and delay_consumer.delay_queue.qsize() == 0, timeout_s=10,
                 what="the move to meet the dead Redis, and the consumer to close")
        monkeypatch.setattr(WakingRedisBroker, "do_enqueue", real_do_enqueue)

        # and Redis comes back on the same socket, with its data, and the sweep puts the overdue message back
        server.start()
        with redis.Redis.from_url(server.url) as client:
            wait_for(lambda: requeue_stranded(client, "restarts", ["restarts"], now_ms=int(time.time() * 1000),
                                              overdue_ms=0), what="the due message to be put back")

        # Then the consumer, started again, moves it and it runs (the one not yet due waits its turn)
        assert delay_consumer.is_alive(), "the delay queue's consumer thread ended"
        assert "Could not put back 1 message(s) of queue 'restarts.DQ'" in caplog.text
        assert done.wait(timeout=30), f"{soon.message_id} did not run after Redis came back"
        assert ran == ["soon"]
    finally:
        worker.stop()
        server.stop()
        private.client.connection_pool.disconnect()  # a pool passed in: the broker's client never closes it


@pytest.mark.parametrize("fails", [False, True], ids=["ack", "nack"])
def test_an_ack_or_nack_redis_refuses_reaches_redis_once_it_accepts_writes_again(tmp_path: Path, fails: bool) -> None:
    # Given a worker on a private Redis whose consumer has emptied its queue and blocks on its wake
    # list (a finished step's ack, or a failed one's nack to the dead letters, then goes out at once)
    server = LocalRedis(tmp_path / "redis", persist=False)
    private = WakingRedisBroker(url=server.start(), namespace="refused")
    admin = redis.Redis.from_url(server.url)
    ran = threading.Event()

    def step(name: str) -> None:
        # When Redis refuses writes just as the step ends (out of memory: ``maxmemory`` reached)
        consumer = worker.consumers["refused"].consumer
        wait_for(lambda: consumer is not None and consumer._blocking, what="the consumer to block on its wake list")
        admin.config_set("maxmemory", "1")
        ran.set()
        if fails:
            raise RuntimeError("a step that fails for good")

    actor = dramatiq.actor(step, actor_name="refused.step", queue_name="refused", broker=private, max_retries=0)
    worker = dramatiq.Worker(private, worker_threads=1, worker_timeout=1000)
    worker.start()
    try:
        first = actor.send("first")
        assert ran.wait(timeout=30), "the step did not run"
        # (the ack or nack is tried, and refused: either way the consumer no longer counts the message as its own)
        consumer = worker.consumers["refused"].consumer
        wait_for(lambda: first.message_id not in consumer.queued_message_ids, what="the ack or nack to be tried")
        assert not acked(admin, "refused", "refused", first)

        # and Redis accepts writes again (memory freed), the worker living on
        admin.config_set("maxmemory", "0")

        # Then the ack (or nack) reaches Redis: the message leaves the worker's ack set (left there, it
        # would count as in flight for the sweep, and run again once this worker exits)
        wait_for(lambda: acked(admin, "refused", "refused", first), timeout_s=15,
                 what="the refused ack or nack to reach Redis once it accepts writes")
        assert admin.hexists("refused:refused.XQ.msgs", first.options["redis_message_id"]) is fails
    finally:
        admin.config_set("maxmemory", "0")
        worker.stop()
        server.stop()
        private.client.connection_pool.disconnect()  # a pool passed in: the broker's client never closes it
        admin.close()
