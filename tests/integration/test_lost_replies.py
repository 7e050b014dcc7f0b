"""A fetch that ran in Redis but whose reply never reached the worker does not strand its messages.

Redis moves what a consumer fetches into the worker's ack set as it runs the fetch; a worker
that never got the reply (the connection dropped in between) does not know it holds them, and
while it lives its heartbeat keeps dramatiq's maintenance from giving them back. A real network
drop is made here with a proxy that closes the connection whose reply carries the message.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis

from actors._waking_broker import WakingRedisBroker
from autolog.local_redis import LocalRedis
from tests.conftest import acked, wait_for
from tests.redis_fault_proxy import ReplyCuttingProxy


@pytest.fixture
def cut_redis(tmp_path: Path) -> Iterator[tuple[ReplyCuttingProxy, redis.Redis]]:
    """A private Redis behind a ``ReplyCuttingProxy``, with a client of its own (not through the proxy)."""
    server = LocalRedis(tmp_path / "redis", persist=False)
    admin = redis.Redis.from_url(server.start())
    proxy = ReplyCuttingProxy(server.socket)
    try:
        yield proxy, admin
    finally:
        proxy.close()
        admin.close()
        server.stop()


@contextlib.contextmanager
def consuming(proxy: ReplyCuttingProxy, namespace: str, ran: list[str], *, step: Callable[[str], Any] | None = None,
              threads: int = 1, start: bool = True) -> Iterator[tuple[dramatiq.Actor[Any, Any], dramatiq.Worker]]:
    """Yield an actor on queue ``namespace`` and a worker for it (started unless ``start`` is False), through ``proxy``.

    The actor runs ``step``, by default one that appends its argument to ``ran``.
    """
    private = WakingRedisBroker(url=proxy.url, namespace=namespace)
    actor = dramatiq.actor(step or ran.append, actor_name=f"{namespace}.step", queue_name=namespace, broker=private)
    worker = dramatiq.Worker(private, worker_threads=threads, worker_timeout=100)
    if start:
        worker.start()
    try:
        yield actor, worker
    finally:
        worker.stop()
        private.client.connection_pool.disconnect()


def lose_reply(proxy: ReplyCuttingProxy, send: Callable[[str], dramatiq.Message[Any]]) -> tuple[str, Any]:
    """Send a message whose argument is a fresh marker with ``send``, and lose the reply that carries it back."""
    marker = f"lost-reply-{uuid.uuid4().hex}"
    proxy.cut_reply_with(marker.encode())
    sent = send(marker)
    assert proxy.cut.wait(timeout=30), "no reply carried the message"
    return marker, sent


def _queues_empty(admin: redis.Redis, namespace: str) -> bool:
    """Whether nothing waits in any queue of ``namespace`` and no worker holds anything."""
    held = sum(admin.scard(key) for key in admin.scan_iter(match=f"{namespace}:__acks__.*"))
    queued = sum(admin.llen(key) for key in admin.scan_iter(match=f"{namespace}:*") if admin.type(key) == b"list")
    return not held and not queued


def test_a_fetch_whose_reply_is_lost_runs_its_message_once_the_consumer_starts_again(
        cut_redis: tuple[ReplyCuttingProxy, redis.Redis], caplog: pytest.LogCaptureFixture) -> None:
    # Given a worker whose Redis connection goes through a proxy
    proxy, admin = cut_redis
    ran: list[str] = []
    with consuming(proxy, "cut", ran) as (actor, _):

        # When the reply of the fetch that takes a message is lost (the fetch ran: the message is in the ack set)
        marker, sent = lose_reply(proxy, actor.send)

        # Then the consumer, started again, puts it back, and it runs, once
        wait_for(lambda: ran == [marker], timeout_s=30, what="the message whose fetch reply was lost to run",
                 explain=lambda: f"ran {ran}; ack sets {[admin.smembers(k) for k in admin.scan_iter('cut:__acks__*')]}")
        wait_for(lambda: acked(admin, "cut", "cut", sent) and _queues_empty(admin, "cut"), what="its ack")
        assert ran == [marker]
        assert "Put back 1 message(s) of queue 'cut'" in caplog.text


def test_what_the_workers_threads_hold_stays_with_them_when_a_lost_reply_restarts_the_consumer(
        cut_redis: tuple[ReplyCuttingProxy, redis.Redis]) -> None:
    # Given a worker running a long message, its consumer free to fetch more
    proxy, admin = cut_redis
    ran: list[str] = []
    running, release = threading.Event(), threading.Event()

    def step(name: str) -> None:
        ran.append(name)
        if name == "long":
            running.set()
            assert release.wait(timeout=60)

    try:
        with consuming(proxy, "held", ran, step=step, threads=2) as (actor, _):
            long = actor.send("long")
            assert running.wait(timeout=30), "the long message did not start"

            # When the reply of the fetch that takes a second message is lost, and the consumer starts again
            marker, _ = lose_reply(proxy, actor.send)
            wait_for(lambda: marker in ran, timeout_s=30, what="the second message to be put back and run")

            # Then only the message no thread held was put back: the long one runs once, and is acknowledged
            release.set()
            wait_for(lambda: acked(admin, "held", "held", long) and _queues_empty(admin, "held"), what="both acks")
            assert sorted(ran) == sorted(["long", marker])
    finally:
        release.set()


def test_a_delayed_message_whose_fetch_reply_is_lost_runs_at_its_due_time(
        cut_redis: tuple[ReplyCuttingProxy, redis.Redis]) -> None:
    # Given a worker whose delay queue's consumer fetches a message due in two seconds
    proxy, admin = cut_redis
    ran: list[str] = []
    with consuming(proxy, "later", ran) as (actor, _):

        # When that fetch's reply is lost
        marker, _ = lose_reply(proxy, lambda name: actor.send_with_options(args=(name,), delay=2_000))

        # Then it runs once due, once (not only once the sweep finds it overdue)
        wait_for(lambda: ran == [marker], timeout_s=30, what="the delayed message to run")
        wait_for(lambda: _queues_empty(admin, "later"), what="its ack")
        assert ran == [marker]


def test_a_stored_message_that_cannot_be_decoded_is_dead_lettered_and_the_rest_of_its_fetch_runs(
        cut_redis: tuple[ReplyCuttingProxy, redis.Redis], caplog: pytest.LogCaptureFixture) -> None:
    # Given a queue holding a message whose stored form is not a message (written by hand, or corrupted),
    # ahead of a good one, so that one fetch takes both
    proxy, admin = cut_redis
    ran: list[str] = []
    with consuming(proxy, "bad", ran, start=False) as (actor, worker):
        actor.broker.declare_queue("bad")
        admin.hset("bad:bad.msgs", "corrupt-id", b"\xff not a message")
        admin.rpush("bad:bad", "corrupt-id")
        good = actor.send("good")

        # When a worker consumes the queue (its consumer fails on the corrupt one and starts again)
        worker.start()

        # Then the good message runs, once, and the corrupt one ends in the dead letters, not in a loop
        wait_for(lambda: ran == ["good"], timeout_s=30, what="the good message to run")
        wait_for(lambda: acked(admin, "bad", "bad", good) and _queues_empty(admin, "bad"), what="its ack")
        assert admin.zrange("bad:bad.XQ", 0, -1) == [b"corrupt-id"]
        assert admin.hget("bad:bad.XQ.msgs", "corrupt-id") == b"\xff not a message"
        assert ran == ["good"]
        assert "could not be decoded" in caplog.text


def test_a_message_purged_while_its_fetch_reply_was_lost_only_leaves_the_ack_set(
        cut_redis: tuple[ReplyCuttingProxy, redis.Redis]) -> None:
    # Given a worker whose fetch of a message loses its reply
    proxy, admin = cut_redis
    ran: list[str] = []
    with consuming(proxy, "gone", ran) as (actor, _):
        _, sent = lose_reply(proxy, actor.send)

        # When the message's stored form goes before the consumer starts again (a purge: its data is deleted)
        assert admin.hdel("gone:gone.msgs", sent.options["redis_message_id"]) == 1

        # Then the restarted consumer drops its id from the ack set, puts nothing back, and nothing runs
        wait_for(lambda: _queues_empty(admin, "gone"), what="the ack set and the queue to be empty",
                 explain=lambda: f"ack sets {[admin.smembers(k) for k in admin.scan_iter('gone:__acks__*')]},"
                                 f" queue {admin.lrange('gone:gone', 0, -1)}")
        assert ran == []
