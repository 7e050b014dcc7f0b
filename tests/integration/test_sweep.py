"""The always-on sweep on the private Redis: one acting cluster-wide, stranded delayed messages put back."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis

from actors import broker
from actors.file_info import probe
from autolog.broker_state import STRANDED_AFTER_MS, redeliver_from_dead_workers, requeue_stranded, wake_key
from autolog.context import Context
from autolog.errors import TransitionRefused
from autolog.lease import Lease
from autolog.local_redis import LocalRedis
from autolog.source_state import fingerprint_source
from autolog.statuses import Status
from autolog.store import NewItem
from pipelines import discovery
from pipelines.actions import SOURCE_CHANGED_AFTER_FAILURE, restart_changed_source
from pipelines.discovery import LEASE_KEY, SourceRecheck, Sweep, items_in_flight, recheck_logged_sources
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
    # (in Redis, its fetch puts it in the worker's ack set; then the consumer's thread reads the reply)
    wait_for(lambda: held in delayed_acks(redis_client) and worker.consumers["probe.DQ"].delay_queue.qsize() == 1,
             what="the worker to hold it")
    eta = int(message.options["eta"])

    # When Redis is killed and started again on its data, the worker reconnects with an empty
    # delay queue but the message stays in its still-beating ack set (dramatiq#527)
    killed = session_redis.pid()
    assert killed is not None
    os.kill(killed, signal.SIGKILL)
    wait_for(lambda: worker.consumers["probe.DQ"].delay_queue.empty(), what="the worker to drop its delay queue")
    session_redis.start()
    assert held in delayed_acks(redis_client)
    assert redis_client.llen(f"{broker.namespace}:probe.DQ") == 0
    # (and Redis, just started, has every heartbeat as old as its outage: no worker counts as dead
    # until it has been up a heartbeat timeout, however old the beats look)
    assert redeliver_from_dead_workers(redis_client, broker.namespace, ["probe"], now_ms=eta + 3_600_000,
                                       heartbeat_timeout_ms=60_000) == []
    assert held in delayed_acks(redis_client)

    # Then a message not yet overdue is left alone, an overdue one is put back and runs
    assert requeue_stranded(redis_client, broker.namespace, ["probe"], now_ms=eta) == []
    moved = requeue_stranded(redis_client, broker.namespace, ["probe"], now_ms=eta + STRANDED_AFTER_MS)
    assert moved == [message.message_id]
    drain()
    assert context.store.items.get("SW2").status is Status.FILE_INFO_COMPLETE


def fetch_as(worker_id: str, queue: str, *, beat_ms: int) -> None:
    """Fetch one message of ``queue`` as the dramatiq worker ``worker_id`` whose last heartbeat is ``beat_ms``."""
    broker.scripts["dispatch"](keys=[broker.namespace], args=[
        "fetch", beat_ms, queue, worker_id, broker.heartbeat_timeout, broker.dead_message_ttl, "0",
        broker._max_unpack_size(), 1])


def test_the_messages_of_a_worker_that_stopped_beating_go_back_at_the_next_sweep_with_an_event(
    context: Context, redis_client: redis.Redis,
) -> None:
    # Given two messages fetched by two workers: one lost (or frozen) past the heartbeat timeout, one beating
    context.store.items.create([NewItem("SW3", "/m/sw3.mp4"), NewItem("SW4", "/m/sw4.mp4")])
    wait_for(lambda: int(redis_client.info("server")["uptime_in_seconds"]) * 1000 >= broker.heartbeat_timeout,
             what="Redis to have been up a heartbeat timeout")
    lost = broker.enqueue(probe.message("SW3"))
    broker.enqueue(probe.message("SW4"))
    # (no broker command after these fetches: the tests' brokers run dramatiq's maintenance on every one)
    now_ms = int(time.time() * 1000)
    fetch_as("lost-worker", "probe", beat_ms=now_ms - broker.heartbeat_timeout - 1_000)
    fetch_as("live-worker", "probe", beat_ms=now_ms)
    acks = f"{broker.namespace}:__acks__.%s.probe"
    assert redis_client.llen(f"{broker.namespace}:probe") == 0

    # When the sweep runs
    report = Sweep(context=context, broker=broker, lease=lease(redis_client, "here")).run_once()

    # Then the lost worker's message is back on its queue, the live one's stays with it
    assert report.redelivered == (lost.message_id,)
    assert redis_client.lrange(f"{broker.namespace}:probe", 0, -1) == [lost.options["redis_message_id"].encode()]
    assert not redis_client.exists(acks % "lost-worker") and redis_client.scard(acks % "live-worker") == 1
    # And the item's timeline says so, naming the worker
    (event,) = [event for event in context.store.timeline.for_item("SW3") if event.event == "redelivered"]
    assert (event.step, event.message_id) == ("file_info", lost.message_id)
    assert event.detail is not None and event.detail["worker_id"] == "lost-worker"
    assert "stopped beating" in event.detail["reason"]
    # stamped with the sweep's time, before the put back: a worker that takes the message at once starts after it
    assert event.at == report.at.replace(microsecond=report.at.microsecond // 1000 * 1000)
    assert not [event for event in context.store.timeline.for_item("SW4") if event.event == "redelivered"]


def test_messages_the_sweep_puts_back_wake_the_idle_consumers_of_their_queues(
    context: Context, redis_client: redis.Redis,
) -> None:
    # Given a lost worker's two messages, one ready and one delayed, and a live worker's delayed message
    # overdue in its ack set (stranded), the queues' wake lists empty
    context.store.items.create([NewItem("SW5", "/m/sw5.mp4"), NewItem("SW6", "/m/sw6.mp4"),
                                NewItem("SW7", "/m/sw7.mp4")])
    wait_for(lambda: int(redis_client.info("server")["uptime_in_seconds"]) * 1000 >= broker.heartbeat_timeout,
             what="Redis to have been up a heartbeat timeout")
    broker.enqueue(probe.message("SW5"))
    broker.enqueue(probe.message("SW6"), delay=60_000)
    stranded = broker.enqueue(probe.message("SW7"), delay=1)
    # (no broker command after these fetches, as above; a queue is first in, first out)
    now_ms = int(time.time() * 1000)
    fetch_as("lost-worker", "probe", beat_ms=now_ms - broker.heartbeat_timeout - 1_000)
    fetch_as("lost-worker", "probe.DQ", beat_ms=now_ms - broker.heartbeat_timeout - 1_000)
    fetch_as("live-worker", "probe.DQ", beat_ms=now_ms)
    wakes = [wake_key(broker.namespace, queue) for queue in ("probe", "probe.DQ")]
    redis_client.delete(*wakes)

    # When the lost worker's messages are put back, Then a token wakes each queue's consumers
    moved = redeliver_from_dead_workers(redis_client, broker.namespace, ["probe"], now_ms=int(time.time() * 1000),
                                        heartbeat_timeout_ms=broker.heartbeat_timeout)
    assert len(moved) == 2
    assert [redis_client.llen(wake) for wake in wakes] == [1, 1]

    # And when the stranded delayed message is put back, its delay queue is woken again
    redis_client.delete(*wakes)
    assert requeue_stranded(redis_client, broker.namespace, ["probe"],
                            now_ms=int(stranded.options["eta"]) + STRANDED_AFTER_MS) == [stranded.message_id]
    assert [redis_client.llen(wake) for wake in wakes] == [0, 1]


def logged_item(context: Context, item_id: str, source: Path) -> None:
    """Store ``item_id`` as logged (at the last status) from ``source``, with step 1's fingerprint of it."""
    context.store.items.create([NewItem(item_id, str(source))])
    context.store.items.update(item_id, status=Status.AVID_DESCRIPTION.value, prompt="Describe the rig",
                               source_fingerprint=fingerprint_source(source).asdict())


def logged_files(context: Context, tmp_path: Path, prefix: str, count: int, *,
                 change: Callable[[Path], object]) -> None:
    """Log ``count`` items, ``prefix0`` on, each from a file of its own; then ``change`` each file."""
    for index in range(count):
        source = tmp_path / f"{prefix}{index}.mxf"
        source.write_bytes(b"\x47" * 188)
        logged_item(context, f"{prefix}{index}", source)
        change(source)


def test_a_logged_item_whose_copy_went_on_is_logged_again_from_step_1(
    context: Context, redis_client: redis.Redis, tmp_path: Path,
) -> None:
    # Given four logged items: one whose copy stalled past the settle window and then went on,
    # one whose file is as step 1 read it, one whose file is gone, one whose file only had its time moved
    grown, same, gone, touched = (tmp_path / f"{name}.ts" for name in ("grown", "same", "gone", "touched"))
    for path in (grown, same, gone, touched):
        path.write_bytes(b"\x47" * 188 * 400)
    for item_id, path in (("RC1", grown), ("RC2", same), ("RC3", gone), ("RC6", touched)):
        logged_item(context, item_id, path)
    with grown.open("ab") as file:
        file.write(b"\x47" * 188 * 600)
    gone.unlink()
    os.utime(touched, (time.time() + 3600, time.time() + 3600))

    # When the sweep runs
    report = Sweep(context=context, broker=broker, lease=lease(redis_client, "here")).run_once()

    # Then only the grown one starts again at step 1, without stopping for its prompt again
    assert report.restarted == ("RC1",)
    item = context.store.items.get("RC1")
    assert (item.status, item.force_resume, item.prompt) == (Status.PENDING_FILE_INFO, True, "Describe the rig")
    assert items_in_flight(redis_client, broker.namespace, ["probe"]) == {"RC1"}
    (event,) = [event for event in context.store.timeline.for_item("RC1") if event.event == "source_changed"]
    assert event.detail is not None and event.detail["found"]["size_bytes"] == 188 * 1000
    assert event.detail["stored"]["size_bytes"] == 188 * 400
    assert {context.store.items.get(item_id).status for item_id in ("RC2", "RC3", "RC6")} == {
        Status.AVID_DESCRIPTION}


def test_a_source_is_rechecked_only_within_the_window_after_it_was_logged(
    context: Context, tmp_path: Path,
) -> None:
    source = tmp_path / "late.ts"
    source.write_bytes(b"\x47" * 188 * 10)
    logged_item(context, "RC4", source)
    source.write_bytes(b"\x47" * 188 * 20)
    window = timedelta(seconds=context.settings.source_recheck_s)

    assert recheck_logged_sources(context, now=datetime.now(UTC) + window + timedelta(seconds=5)) == []
    assert recheck_logged_sources(dataclasses.replace(
        context, settings=dataclasses.replace(context.settings, source_recheck_s=0)), now=datetime.now(UTC)) == []
    assert context.store.items.get("RC4").status is Status.AVID_DESCRIPTION
    assert recheck_logged_sources(context, now=datetime.now(UTC)) == ["RC4"]


def test_a_restart_of_an_item_that_moved_meanwhile_is_refused(context: Context, tmp_path: Path) -> None:
    # The recheck reads the item, then restarts it: an item moved in between is refused, and the recheck
    # (which catches AutologError) goes on with the next one.
    source = tmp_path / "moved.ts"
    source.write_bytes(b"\x47" * 188)
    logged_item(context, "RC5", source)
    read = context.store.items.get("RC5")
    assert context.store.items.transition("RC5", Status.AVID_DESCRIPTION, Status.PENDING_FILE_INFO)

    with pytest.raises(TransitionRefused):
        restart_changed_source(context, read, fingerprint_source(source))
    assert [event.event for event in context.store.timeline.for_item("RC5")].count("source_changed") == 0


def test_an_item_that_failed_step_1_is_queued_again_once_its_copy_went_on(
    context: Context, redis_client: redis.Redis,
) -> None:
    # Given items that failed step 1 for good ("not media": an MP4 whose copy had stalled before its index)
    for item_id in ("RF1", "RF2", "RF3"):
        source = context.settings.resolved_media_roots[0] / f"{item_id}.mp4"
        source.write_bytes(b"\0" * 4096)
        context.store.items.create([NewItem(item_id, str(source))])
        context.store.items.update(item_id, dead_lettered=True, error={
            "step": "file_info", "type": "NotMedia", "message": "moov atom not found", "permanent": True})
        failed_at = context.store.items.get(item_id).updated_at.timestamp()
        # RF1's copy went on after the failure was written; RF2's file is as step 1 read it; RF3's is dated
        # in the future (a camera's clock), which tells nothing
        moved = {"RF1": time.time(), "RF2": failed_at - 1, "RF3": time.time() + 3600}[item_id]
        os.utime(source, (moved, moved))

    # When the sweep runs
    report = Sweep(context=context, broker=broker, lease=lease(redis_client, "here")).run_once()

    # Then RF1's step 1 is queued again, with the reason in its timeline; RF2 waits for a person
    assert report.retried == ("RF1",)
    assert items_in_flight(redis_client, broker.namespace, ["probe"]) == {"RF1"}
    timeline = context.store.timeline.for_item("RF1")
    events = [event.event for event in timeline]
    assert events[-2:] == ["retry_requested", "queued"]
    assert timeline[-2].detail == {"reason": SOURCE_CHANGED_AFTER_FAILURE}
    assert context.store.items.get("RF1").dead_lettered is False
    assert context.store.items.get("RF2").dead_lettered is True
    assert context.store.items.get("RF3").dead_lettered is True
    # And a second sweep, its message still queued, neither queues it again nor says so again
    assert Sweep(context=context, broker=broker, lease=lease(redis_client, "here")).run_once().retried == ()
    assert [event.event for event in context.store.timeline.for_item("RF1")] == events


def test_a_source_whose_time_alone_moved_is_read_once_while_its_stat_stays(
    context: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = tmp_path / "card.mxf"
    source.write_bytes(b"\x06" * 4096)
    logged_item(context, "RC7", source)
    os.utime(source, (time.time() - 3600, time.time() - 3600))  # a FAT card seen from another time zone
    reads: list[Path] = []

    def counted(before: Any, path: Path) -> Any:
        reads.append(path)
        return real(before, path)

    real = discovery.source_changed
    monkeypatch.setattr(discovery, "source_changed", counted)
    state = SourceRecheck()

    for _ in range(3):
        assert recheck_logged_sources(context, now=datetime.now(UTC), state=state) == []
    assert reads == [source]
    with source.open("ab") as file:  # and once its bytes change, it is read and logged again
        file.write(b"\x06")
    assert recheck_logged_sources(context, now=datetime.now(UTC), state=state) == ["RC7"]


def test_a_sweep_looks_at_a_share_of_the_logged_sources_and_the_next_goes_on(
    context: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(discovery, "RECHECKS_PER_SWEEP", 2)
    logged_files(context, tmp_path, "RS", 5, change=lambda source: source.write_bytes(b"\x47" * 376))
    state = SourceRecheck()

    found = [recheck_logged_sources(context, now=datetime.now(UTC), state=state) for _ in range(3)]

    assert found == [["RS0", "RS1"], ["RS2", "RS3"], ["RS4"]]
    assert state.cursor is None


def test_an_item_ingested_before_the_window_is_not_logged_again_however_recently_it_was(
    context: Context, tmp_path: Path,
) -> None:
    # A file that keeps changing (a recorder appending) is logged again within the window from its ingest, not for ever
    source = tmp_path / "recorder.ts"
    source.write_bytes(b"\x47" * 188)
    logged_item(context, "RC8", source)
    source.write_bytes(b"\x47" * 376)
    window = timedelta(seconds=context.settings.source_recheck_s)
    now = datetime.now(UTC)
    # Logged again a moment ago (its last log within the window), first ingested before it
    context.store.items.update("RC8", created_at=now - window - timedelta(minutes=1))
    assert context.store.items.get("RC8").updated_at > now - window

    assert recheck_logged_sources(context, now=now) == []
    context.store.items.update("RC8", created_at=now - timedelta(minutes=1))
    assert recheck_logged_sources(context, now=now) == ["RC8"]


def test_the_remembered_same_bytes_sources_are_bounded(
    context: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(discovery, "SAME_BYTES_KEPT", 2)
    logged_files(context, tmp_path, "RB", 3, change=lambda source: os.utime(source, (time.time() - 60,) * 2))
    state = SourceRecheck()

    assert recheck_logged_sources(context, now=datetime.now(UTC), state=state) == []

    assert list(state.same_bytes) == ["RB2"]  # cleared once full, then the third remembered
