"""The always-on sweep on the private Redis: one acting cluster-wide, stranded delayed messages put back."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

import dramatiq
import redis

from actors import broker
from actors.file_info import probe
from autolog.context import Context
from autolog.lease import Lease
from autolog.local_redis import LocalRedis
from autolog.statuses import Status
from autolog.store import NewItem
from pipelines.discovery import LEASE_KEY, STRANDED_AFTER_MS, Sweep, requeue_stranded
from tests.conftest import SampleClips, wait_for


def lease(client: redis.Redis, owner: str, *, ttl_ms: int = 60_000) -> Lease:
    return Lease(client, f"{broker.namespace}:{LEASE_KEY}", ttl_ms=ttl_ms, owner=owner)


def test_one_candidate_holds_the_lease_and_another_takes_it_once_it_expires(redis_client: redis.Redis) -> None:
    first, second = lease(redis_client, "a", ttl_ms=300), lease(redis_client, "b", ttl_ms=300)

    assert first.acquire() and first.acquire()
    assert not second.acquire()
    assert first.holder() == first.token

    # The first stops renewing (as a dead sweep would); the second gets it once it expires.
    wait_for(second.acquire, what="the lease to pass to the second candidate")
    assert not first.acquire()


def test_release_frees_the_lease_only_for_its_holder(redis_client: redis.Redis) -> None:
    first, second = lease(redis_client, "a"), lease(redis_client, "b")
    first.acquire()

    second.release()
    assert first.holder() == first.token
    first.release()

    assert first.holder() is None and second.acquire()


def test_a_sweep_without_the_lease_does_nothing(context: Context, redis_client: redis.Redis) -> None:
    context.store.items.create([NewItem("SW1", "/m/sw1.mp4")])
    lease(redis_client, "elsewhere").acquire()

    report = Sweep(context=context, broker=broker, lease=lease(redis_client, "here")).run_once()

    assert not report.leader and report.queued == ()
    assert context.store.items.get("SW1").status is Status.PENDING_FILE_INFO


def delayed_acks(client: redis.Redis) -> set[bytes]:
    """Ids in any worker's ack set of the probe queue's delay queue."""
    found: set[bytes] = set()
    for key in client.scan_iter(match=f"{broker.namespace}:__acks__.*.probe.DQ"):
        found |= client.smembers(key)  # type: ignore[arg-type]
    return found


def test_a_delayed_message_stranded_by_a_dropped_connection_is_put_back_and_runs(
    context: Context, worker: Any, drain: Callable[..., None], redis_client: redis.Redis, test_media: SampleClips,
    session_redis: LocalRedis,
) -> None:
    # Given an item whose step 1 waits in a worker's delay queue (as a retry's backoff does)
    context.store.items.create([NewItem("SW2", str(test_media.path("cuts_noaudio.mp4")))])
    message: dramatiq.Message[Any] = broker.enqueue(probe.message("SW2"), delay=5_000)
    held = message.options["redis_message_id"].encode()
    wait_for(lambda: held in delayed_acks(redis_client), what="the worker to hold it")
    eta = int(message.options["eta"])

    # When Redis is killed and started again on its data, the worker reconnects with an empty
    # delay queue but the message stays in its still-beating ack set (dramatiq#527)
    assert worker.consumers["probe.DQ"].delay_queue.qsize() == 1
    killed = session_redis.pid()
    assert killed is not None
    os.kill(killed, signal.SIGKILL)
    wait_for(lambda: worker.consumers["probe.DQ"].delay_queue.empty(), what="the worker to drop its delay queue")
    session_redis.start()
    assert held in delayed_acks(redis_client)
    assert redis_client.llen(f"{broker.namespace}:probe.DQ") == 0

    # Then a message not yet overdue is left alone, an overdue one is put back and runs
    assert requeue_stranded(redis_client, broker.namespace, ["probe"], now_ms=eta) == []
    moved = requeue_stranded(redis_client, broker.namespace, ["probe"], now_ms=eta + STRANDED_AFTER_MS)
    assert moved == [message.message_id]
    drain()
    assert context.store.items.get("SW2").status is Status.FILE_INFO_COMPLETE
