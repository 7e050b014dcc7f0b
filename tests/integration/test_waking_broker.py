"""Idle consumers wake on an enqueue, not at the end of their poll: hops cost a round trip."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import dramatiq
import pytest
import redis

from actors import _waking_broker, broker
from actors._waking_broker import BLOCK_TIMER_MS, SATURATED_WAIT_S
from autolog.broker_state import wake_key
from middleware import Progress
from tests.conftest import acked, wait_for

#: The worker's idle timeout in this test: far longer than the deadline the wake must beat.
IDLE_TIMEOUT_MS = 3_000

#: Set when the probe actor runs.
RAN = threading.Event()


def _probe() -> None:
    RAN.set()


# Declared at import, before any worker of the session exists: dramatiq's stopped workers keep
# adding consumers for queues declared later, which would take this queue's message.
probe = dramatiq.actor(_probe, actor_name="autolog_test.wake", queue_name="wake_test", broker=broker)

#: The saturated-consumer tests' queues, declared at import for the same reason.
SATURATED_QUEUES = ("wake_saturated", "wake_acked", "ack_deferred", "ack_blocking", "ack_closed", "ack_outage")
for _queue in SATURATED_QUEUES:
    broker.declare_queue(_queue)
broker.declare_queue("wake_fields")
broker.declare_queue("wake_drained")
broker.declare_queue("wake_requeued")
broker.declare_queue("wake_delayed")
broker.declare_queue("wake_noscript")
broker.declare_queue("wake_outage")
broker.declare_queue("wake_refused")


@pytest.mark.parametrize("scripts_lost", [False, True], ids=["scripts loaded", "scripts lost"])
def test_an_idle_consumer_wakes_on_enqueue_well_before_its_idle_timeout(redis_client: redis.Redis,
                                                                        scripts_lost: bool) -> None:
    # Given a worker whose consumer has found its queue empty (and so blocks on the wake list), and maybe
    # a Redis that lost its scripts (as after a restart: the enqueue's script call answers NOSCRIPT)
    RAN.clear()
    worker = dramatiq.Worker(broker, queues={"wake_test"}, worker_threads=1, worker_timeout=IDLE_TIMEOUT_MS)
    worker.start()
    try:
        wait_for(lambda: getattr(worker.consumers["wake_test"].consumer, "misses", 0) > 0, timeout_s=10,
                 what="the consumer to find its queue empty")
        assert redis_client.llen(wake_key(broker.namespace, "wake_test")) == 0
        if scripts_lost:
            redis_client.script_flush()

        # When a message is enqueued, Then it runs long before the consumer's idle timeout
        probe.send()
        wait_for(RAN.is_set, timeout_s=IDLE_TIMEOUT_MS / 2000, what="the idle consumer to wake")
    finally:
        worker.stop()


def test_an_idle_worker_runs_a_delayed_message_at_its_due_time_not_at_its_idle_timeout() -> None:
    # Given a worker whose delay queue's consumer blocks on its wake list (it polled with a growing backoff)
    RAN.clear()
    worker = dramatiq.Worker(broker, queues={"wake_test", "wake_test.DQ"}, worker_threads=1,
                             worker_timeout=IDLE_TIMEOUT_MS)
    worker.start()
    try:
        wait_for(lambda: getattr(worker.consumers["wake_test.DQ"].consumer, "_blocking", False), timeout_s=10,
                 what="the delay queue's consumer to block on its wake list")

        # When a message is sent with a delay, Then it runs once due, long before the idle timeout
        delay_ms = 500
        sent = time.monotonic()
        probe.send_with_options(delay=delay_ms)
        wait_for(RAN.is_set, timeout_s=(delay_ms + IDLE_TIMEOUT_MS / 2) / 1000, what="the delayed message to run")
        assert time.monotonic() - sent >= delay_ms / 1000 * 0.95
    finally:
        worker.stop()


def next_in_thread(consumer: Any) -> tuple[threading.Thread, list[Any]]:
    """Return a thread (not started) that takes the consumer's next look, and the list its result goes to."""
    found: list[Any] = []
    return threading.Thread(target=lambda: found.append(next(consumer))), found


def test_a_delay_queue_consumer_wakes_on_a_delayed_enqueue_and_blocks_only_until_the_message_is_due(
        redis_client: redis.Redis) -> None:
    # Given a delay queue's consumer blocked on its wake list, far from its idle timeout
    consumer: Any = broker.consume("wake_delayed.DQ", prefetch=10, timeout=IDLE_TIMEOUT_MS)
    looking, found = next_in_thread(consumer)
    looking.start()
    try:
        wait_for(lambda: consumer._blocking, timeout_s=10, what="the consumer to block on the wake list")

        # When a message is enqueued with a delay, Then the consumer wakes, and that look fetches it
        message = broker.enqueue(probe.message().copy(queue_name="wake_delayed"), delay=600)
        looking.join(timeout=IDLE_TIMEOUT_MS / 2000)
        assert not looking.is_alive()
        held = found[0]
        assert held.message_id == message.message_id

        # And its looks end when the message is due (its worker then moves it), not at the idle timeout,
        # nor up to a tick of Redis's timer late, as a wait on the wake list would (100 ms at Redis's hz 10)
        while next(consumer) is None and time.time() * 1000 < message.options["eta"]:
            pass
        returned_ms = time.time() * 1000
        assert message.options["eta"] <= returned_ms <= message.options["eta"] + BLOCK_TIMER_MS / 2
        consumer.ack(held)
    finally:
        consumer.close()
        looking.join(timeout=10)
        broker.flush("wake_delayed")


def test_a_delay_queue_consumer_fetches_a_message_due_soon_while_it_holds_far_off_ones(
        redis_client: redis.Redis) -> None:
    # Given a delay queue's consumer holding far-off delayed messages, with room for one more
    consumer: Any = broker.consume("wake_delayed.DQ", prefetch=8, timeout=IDLE_TIMEOUT_MS)
    far = [broker.enqueue(probe.message().copy(queue_name="wake_delayed"), delay=60_000) for _ in range(7)]
    held = [wait_for(lambda: next(consumer), timeout_s=10, what="the fetch of a far-off message") for _ in far]
    try:
        # When a message due soon is delayed, Then the consumer fetches it (it did not while it held
        # three quarters of its prefetch: the message waited in Redis behind the far-off ones)
        soon = broker.enqueue(probe.message().copy(queue_name="wake_delayed"), delay=300)
        fetched = wait_for(lambda: next(consumer), timeout_s=IDLE_TIMEOUT_MS / 1000,
                           what="the fetch of the one due soon")
        assert fetched.message_id == soon.message_id
        held.append(fetched)
    finally:
        for message in held:
            consumer.ack(message)
        consumer.close()
        broker.flush("wake_delayed")


def test_an_enqueue_and_its_wake_token_are_one_round_trip_after_progress_announced_the_step(
        redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the wake list of a queue, empty, and an eye on the commands the broker sends and on progress
    key = wake_key(broker.namespace, "wake_test")
    redis_client.delete(key)
    sent: list[bytes] = []
    send = redis.connection.AbstractConnection.send_packed_command

    def counted(connection: Any, command: Any, check_health: bool = True) -> None:
        sent.append(command if isinstance(command, bytes) else b"".join(command))
        send(connection, command, check_health)

    progress = next(middleware for middleware in broker.middleware if isinstance(middleware, Progress))
    stored_at_announce: list[bool] = []
    publish = progress._publish

    def watched(event: Any, *, guarded: bool) -> None:
        if event.state == "queued":
            stored_at_announce.append(bool(redis_client.hlen(f"{broker.namespace}:wake_test.msgs")))
        publish(event, guarded=guarded)

    monkeypatch.setattr(progress, "_publish", watched)
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    try:
        # When a step message is enqueued
        message = broker.enqueue(probe.message().copy(options={"step": "file_info"}, args=["WAKE1"]))
        monkeypatch.undo()

        # Then progress announced it before it was put (a consumer taking it at once must find its
        # "queued" ahead of its "running"), and the message and its token went in one round trip
        assert stored_at_announce == [False]
        to_queue = [command for command in sent if b"wake_test" in command and b"HLEN" not in command]
        assert len(to_queue) == 1 and b"EVALSHA" in to_queue[0] and b"LPUSH" in to_queue[0]
        assert redis_client.hexists(f"{broker.namespace}:wake_test.msgs", message.options["redis_message_id"])
        assert redis_client.llen(key) == 1
    finally:
        redis_client.delete(key)
        broker.flush("wake_test")


class _WatchedRoom(threading.Event):
    """An event that tells when someone waits on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.waiting.set()
        return super().wait(timeout)


def _saturated_consumer(redis_client: redis.Redis, queue_name: str) -> tuple[Any, Any]:
    """Return a consumer of ``queue_name`` (one of ``SATURATED_QUEUES``) holding the one message it may prefetch."""
    assert queue_name in SATURATED_QUEUES
    broker.enqueue(probe.message().copy(queue_name=queue_name))
    consumer = broker.consume(queue_name, prefetch=1, timeout=IDLE_TIMEOUT_MS)
    held = wait_for(lambda: next(consumer), timeout_s=10, what="the consumer to fetch its message")
    assert consumer.outstanding_message_count == consumer.prefetch
    return consumer, held


def test_a_consumer_hands_each_message_with_its_fields_as_its_own_and_its_options_shared(
        redis_client: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    # Given a message sent with arguments and options, and a consumer that fetched it
    sent = broker.enqueue(probe.message_with_options(args=(), mark="sent").copy(queue_name="wake_fields"))
    consumer = broker.consume("wake_fields", prefetch=2, timeout=IDLE_TIMEOUT_MS)
    try:
        consumer.message_cache.insert(0, None)  # a None in the cache is passed over, as dramatiq does (its #266)
        with caplog.at_level(logging.WARNING):
            held = wait_for(lambda: next(consumer), timeout_s=10, what="the consumer to hand its message")
        assert "Found 'None' message in message cache for queue 'wake_fields'" in caplog.text

        # Then every field reads as the message's without the proxy's fallback lookup
        assert isinstance(held, _waking_broker.FieldProxy)
        for field in ("queue_name", "actor_name", "args", "kwargs", "options", "message_id", "message_timestamp"):
            assert field in vars(held)
            assert getattr(held, field) == getattr(held._message, field)
        assert (held.message_id, held.options["mark"]) == (sent.message_id, "sent")
        assert held.message_id in consumer.queued_message_ids

        # And an option a middleware sets on it is the message's, as on dramatiq's proxy
        held.options["marked_by"] = "middleware"
        assert held._message.options["marked_by"] == "middleware"
        assert held.asdict()["options"]["marked_by"] == "middleware"
        consumer.ack(held)
    finally:
        consumer.close()


def test_a_saturated_consumer_waits_for_room_instead_of_polling(redis_client: redis.Redis) -> None:
    # Given a consumer holding all it may prefetch, and no worker acking
    consumer, held = _saturated_consumer(redis_client, "wake_saturated")
    try:
        # When it looks for a message, Then it waits its whole bound (a 5 ms nap spun 200 loops a second)
        started = time.monotonic()
        assert next(consumer) is None
        assert time.monotonic() - started >= SATURATED_WAIT_S * 0.9
    finally:
        consumer.ack(held)
        consumer.close()


def test_a_saturated_consumer_wakes_when_a_worker_acks(redis_client: redis.Redis,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a saturated consumer waiting for room, with a bound far beyond the deadline below
    monkeypatch.setattr(_waking_broker, "SATURATED_WAIT_S", 30.0)
    consumer, held = _saturated_consumer(redis_client, "wake_acked")
    consumer.room = _WatchedRoom()
    returned = threading.Event()
    looking = threading.Thread(target=lambda: (next(consumer), returned.set()))
    looking.start()
    try:
        wait_for(consumer.room.waiting.is_set, timeout_s=10, what="the consumer to wait for room")

        # When a worker acks its message, Then the consumer looks again at once
        consumer.ack(held)
        wait_for(returned.is_set, timeout_s=5, what="the saturated consumer to wake on the ack")
    finally:
        consumer.room.set()
        looking.join(timeout=10)
        consumer.close()


def test_a_workers_ack_goes_out_with_the_consumers_next_fetch(redis_client: redis.Redis) -> None:
    # Given a consumer that holds a message and is not blocked on Redis
    consumer, held = _saturated_consumer(redis_client, "ack_deferred")
    try:
        # When a worker acks it, Then the ack waits for the consumer's next round trip, which sends it
        consumer.ack(held)
        assert not acked(redis_client, broker.namespace, "ack_deferred", held)
        assert consumer.outstanding_message_count == 0
        assert next(consumer) is None  # the fetch finds the queue empty (and blocks briefly on the wake list)
        assert acked(redis_client, broker.namespace, "ack_deferred", held)
    finally:
        consumer.close()


def test_an_ack_while_the_consumer_blocks_on_an_empty_queue_goes_out_at_once(redis_client: redis.Redis) -> None:
    # Given a consumer that holds a message and then blocks on its empty queue's wake list
    consumer, held = _saturated_consumer(redis_client, "ack_blocking")
    consumer.prefetch = 2
    redis_client.delete(wake_key(broker.namespace, "ack_blocking"))  # the enqueue's token: no wake pending
    blocked = threading.Thread(target=lambda: next(consumer))
    blocked.start()
    try:
        wait_for(lambda: consumer._blocking, timeout_s=10, what="the consumer to block on the wake list")

        # When a worker acks its message, Then Redis has the ack though the consumer still blocks
        consumer.ack(held)
        assert acked(redis_client, broker.namespace, "ack_blocking", held)
        assert blocked.is_alive()
    finally:
        redis_client.lpush(wake_key(broker.namespace, "ack_blocking"), b"1")
        blocked.join(timeout=10)
        consumer.close()


def test_closing_a_consumer_sends_the_acks_it_holds(redis_client: redis.Redis) -> None:
    # Given an ack waiting for the consumer's next round trip
    consumer, held = _saturated_consumer(redis_client, "ack_closed")
    consumer.ack(held)
    assert not acked(redis_client, broker.namespace, "ack_closed", held)

    # When the consumer closes (a graceful stop), Then the ack is sent
    consumer.close()
    assert acked(redis_client, broker.namespace, "ack_closed", held)


@pytest.mark.parametrize("error", [redis.ConnectionError("Redis went away"),
                                   redis.TimeoutError("Timeout reading from socket")])
def test_acks_a_round_trip_could_not_send_are_kept_for_the_next(redis_client: redis.Redis,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                error: redis.RedisError) -> None:
    # Given an ack waiting, and a Redis that fails the consumer's next round trip (gone, or too slow)
    consumer, held = _saturated_consumer(redis_client, "ack_outage")
    consumer.ack(held)

    def refused(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise error

    with monkeypatch.context() as patch:
        patch.setattr(redis.client.Pipeline, "execute", refused)
        with pytest.raises(dramatiq.errors.ConnectionClosed):
            next(consumer)
    assert not acked(redis_client, broker.namespace, "ack_outage", held)

    # When Redis is back, Then the next round trip sends the kept ack
    assert next(consumer) is None
    assert acked(redis_client, broker.namespace, "ack_outage", held)
    consumer.close()


def test_a_consumer_woken_while_redis_lost_its_scripts_fetches_at_its_next_look(redis_client: redis.Redis) -> None:
    # Given a consumer blocked on its wake list, and then a message on its queue without a wake token,
    # and a Redis that lost its scripts (as after a restart)
    consumer: Any = broker.consume("wake_noscript", prefetch=2, timeout=IDLE_TIMEOUT_MS)
    looking, found = next_in_thread(consumer)
    looking.start()
    try:
        wait_for(lambda: consumer._blocking, timeout_s=10, what="the consumer to block on the wake list")
        message = broker.enqueue(probe.message().copy(queue_name="wake_noscript"))
        looking.join(timeout=IDLE_TIMEOUT_MS / 2000)
        first = found[0]
        assert first.message_id == message.message_id
        second = broker.enqueue(probe.message().copy(queue_name="wake_noscript"))
        redis_client.delete(wake_key(broker.namespace, "wake_noscript"))
        redis_client.script_flush()

        # When a wake comes, so the fetch in its wait's round trip answers NOSCRIPT
        looking, found = next_in_thread(consumer)
        looking.start()
        wait_for(lambda: consumer._blocking, timeout_s=10, what="the consumer to block again")
        redis_client.rpush(wake_key(broker.namespace, "wake_noscript"), "wake")
        looking.join(timeout=IDLE_TIMEOUT_MS / 2000)
        assert found == [None]

        # Then its next look fetches on its own, loading the scripts, without waiting for a wake or the timeout
        looking, found = next_in_thread(consumer)
        looking.start()
        looking.join(timeout=IDLE_TIMEOUT_MS / 2000)
        assert not looking.is_alive()
        assert found[0].message_id == second.message_id
        for done in (first, found[0]):
            consumer.ack(done)
    finally:
        consumer.close()
        looking.join(timeout=10)
        broker.flush("wake_noscript")


def test_a_wait_whose_round_trip_fails_raises_connection_closed_and_loses_nothing(
        redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a consumer that found its queue empty (its next look blocks on the wake list at once)
    consumer: Any = broker.consume("wake_outage", prefetch=2, timeout=10)
    assert next(consumer) is None
    assert next(consumer) is None
    assert consumer._drained

    # When Redis fails its wait's round trip, Then the look raises as dramatiq's consumer does
    def refused(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise redis.ConnectionError("Redis went away")

    with monkeypatch.context() as patch:
        patch.setattr(redis.client.Pipeline, "execute", refused)
        with pytest.raises(dramatiq.errors.ConnectionClosed):
            next(consumer)

    # And once Redis is back, a message sent meanwhile is fetched
    message = broker.enqueue(probe.message().copy(queue_name="wake_outage"))
    fetched = wait_for(lambda: next(consumer), timeout_s=10, what="the fetch after the outage")
    assert fetched.message_id == message.message_id
    consumer.ack(fetched)
    consumer.close()
    broker.flush("wake_outage")


def test_a_fetch_that_ran_behind_a_failed_wait_is_returned_and_a_failed_wait_alone_raises(
        redis_client: redis.Redis) -> None:
    # Given a consumer that found its queue empty (its next look waits on the wake list at once), then a message on
    # its queue, and a wake list Redis refuses to wait on (a key of another type)
    consumer: Any = broker.consume("wake_refused", prefetch=2, timeout=10)
    assert next(consumer) is None
    assert consumer._drained
    message = broker.enqueue(probe.message().copy(queue_name="wake_refused"))
    key = wake_key(broker.namespace, "wake_refused")
    redis_client.delete(key)
    redis_client.set(key, "not a list")
    try:
        # When it looks, Then the fetch behind the refused wait is returned: its message is in this worker's ack set
        fetched = next(consumer)
        assert fetched.message_id == message.message_id

        # And a look whose wait is refused and whose fetch takes nothing raises (a consumer restart), not spin
        with pytest.raises(dramatiq.errors.ConnectionClosed):
            next(consumer)
        consumer.ack(fetched)
    finally:
        redis_client.delete(key)
        consumer.close()
        broker.flush("wake_refused")


class _Recording(dramatiq.Middleware):
    """Records the hooks it defines; ``fails`` raises from them instead."""

    def __init__(self, name: str, calls: list[str], *, fails: BaseException | None = None) -> None:
        self.name, self.calls, self.fails = name, calls, fails

    def before_process_message(self, broker: Any, message: Any) -> None:
        self.calls.append(f"{self.name}.before")
        if self.fails is not None:
            raise self.fails

    def after_process_message(self, broker: Any, message: Any, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        self.calls.append(f"{self.name}.after")
        if self.fails is not None:
            raise self.fails


def test_hooks_reach_the_middleware_that_define_them_in_dramatiqs_order_as_the_list_changes() -> None:
    calls: list[str] = []
    # Given a broker whose middleware define some hooks, one by a class and one by an instance attribute
    hooked = _waking_broker.WakingRedisBroker(url="redis://127.0.0.1:1", middleware=[
        _Recording("a", calls), dramatiq.Middleware(), _Recording("b", calls, fails=ValueError("b fails"))])
    plain = dramatiq.Middleware()
    plain.before_process_message = lambda broker, message: calls.append("plain.before")  # type: ignore[method-assign]
    hooked.middleware.append(plain)

    # When a message's hooks are emitted
    hooked.emit_before("process_message", None)
    hooked.emit_after("process_message", None, result=None)
    # Then each defining middleware is called in dramatiq's order (after_* in reverse), past one that raises
    assert calls == ["a.before", "b.before", "plain.before", "b.after", "a.after"]

    # And when the list changes (a middleware added, one removed), the next hooks follow it
    calls.clear()
    hooked.middleware.remove(plain)
    hooked.middleware.insert(0, _Recording("c", calls))
    hooked.emit_before("process_message", None)
    assert calls == ["c.before", "a.before", "b.before"]

    # And a before_* hook's MiddlewareError still stops the message, as with dramatiq's broker
    hooked.middleware.append(_Recording("skip", calls, fails=dramatiq.middleware.SkipMessage("skip")))
    with pytest.raises(dramatiq.middleware.SkipMessage):
        hooked.emit_before("process_message", None)


def test_a_hook_list_made_from_the_old_middleware_list_is_not_kept_for_the_new_one() -> None:
    calls: list[str] = []
    building, go_on = threading.Event(), threading.Event()

    class PausesWhileListed:
        """A hook whose lookup on the class (made while a hook list is built) waits, in thread "old"."""

        def __get__(self, instance: Any, owner: Any) -> Any:
            if instance is None and threading.current_thread().name == "old" and not go_on.is_set():
                building.set()
                go_on.wait(10)
            return lambda *args, **kwargs: None

    class Early(dramatiq.Middleware):
        after_ack = PausesWhileListed()

    class Late(dramatiq.Middleware):
        def after_ack(self, broker: Any, message: Any) -> None:
            calls.append("late")

    hooked = _waking_broker.WakingRedisBroker(url="redis://127.0.0.1:1", middleware=[Early()])
    hooked.emit_before("process_message", None)
    # Given a thread building after_ack's list from the middleware list [Early]
    old = threading.Thread(target=lambda: hooked.emit_after("ack", None), name="old")
    old.start()
    assert building.wait(10)
    # When the list changes meanwhile and another thread's emit sees the change
    hooked.middleware.append(Late())
    hooked.emit_before("process_message", None)
    go_on.set()
    old.join(10)
    # Then the next emits reach the middleware added (the old thread's list is not kept for the new list)
    for _ in range(3):
        hooked.emit_after("ack", None)
    assert calls == ["late"] * 3


@pytest.mark.parametrize("scripts_lost", [False, True], ids=["scripts loaded", "scripts lost"])
def test_a_wake_token_redis_refuses_is_logged_and_the_message_is_still_stored(
        redis_client: redis.Redis, caplog: pytest.LogCaptureFixture, scripts_lost: bool) -> None:
    # Given a wake list Redis refuses to push to (a key of another type in its place), and maybe a Redis
    # that lost its scripts (the enqueue then goes again through dramatiq's script call)
    key = wake_key(broker.namespace, "wake_saturated")
    redis_client.set(key, "not a list")
    if scripts_lost:
        redis_client.script_flush()
    try:
        # When a message is enqueued on its queue
        message = broker.enqueue(probe.message().copy(queue_name="wake_saturated"))

        # Then the enqueue succeeds, the message is in the queue, and the refused wake is logged
        stored = redis_client.hget(f"{broker.namespace}:wake_saturated.msgs", message.options["redis_message_id"])
        assert stored is not None
        assert "Could not wake the consumers of 'wake_saturated'" in caplog.text
    finally:
        redis_client.delete(key)
        broker.flush("wake_saturated")


def test_messages_put_back_on_their_queue_wake_a_consumer_blocked_on_it(redis_client: redis.Redis) -> None:
    # Given one consumer holding the queue's only message, and another blocked on the queue's wake list
    broker.enqueue(probe.message().copy(queue_name="wake_requeued"))
    redis_client.delete(wake_key(broker.namespace, "wake_requeued"))
    holder: Any = broker.consume("wake_requeued", prefetch=2, timeout=IDLE_TIMEOUT_MS)
    waiter: Any = broker.consume("wake_requeued", prefetch=2, timeout=IDLE_TIMEOUT_MS)
    held = wait_for(lambda: next(holder), timeout_s=10, what="the holder to fetch the message")
    blocked, found = next_in_thread(waiter)
    blocked.start()
    try:
        wait_for(lambda: waiter._blocking, timeout_s=10, what="the other consumer to block on the wake list")

        # When the holder puts it back (as a stopping worker does), Then the blocked consumer wakes, and that
        # look fetches it
        holder.requeue([held])
        blocked.join(timeout=IDLE_TIMEOUT_MS / 2000)
        assert not blocked.is_alive()
        again = found[0]
        assert again.message_id == held.message_id
        waiter.ack(again)
    finally:
        holder.close()
        waiter.close()
        blocked.join(timeout=10)
        broker.flush("wake_requeued")


def test_a_fetch_that_empties_the_queue_is_followed_by_a_block_on_the_wake_list_not_another_fetch(
        redis_client: redis.Redis) -> None:
    # Given a consumer with room for two, whose queue holds one message (its wake token already taken)
    broker.enqueue(probe.message().copy(queue_name="wake_drained"))
    redis_client.delete(wake_key(broker.namespace, "wake_drained"))
    consumer: Any = broker.consume("wake_drained", prefetch=2, timeout=IDLE_TIMEOUT_MS)
    fetches: list[int] = []
    send = consumer._send

    def counted(acks: list[str], fetch: int) -> Any:
        if fetch:
            fetches.append(fetch)
        return send(acks, fetch)

    consumer._send = counted
    looking, found = next_in_thread(consumer)
    try:
        held = wait_for(lambda: next(consumer), timeout_s=10, what="the consumer to fetch its message")
        assert fetches == [2]

        # When it looks again, Then it blocks on the wake list without fetching first
        looking.start()
        wait_for(lambda: consumer._blocking, timeout_s=10, what="the consumer to block on the wake list")
        assert fetches == [2]

        # And an enqueue wakes it, and that look returns the new message, fetched in its wait's round trip
        # (the same pipeline), not in a round trip of its own
        message = broker.enqueue(probe.message().copy(queue_name="wake_drained"))
        looking.join(timeout=IDLE_TIMEOUT_MS / 2000)
        assert not looking.is_alive()
        second = found[0]
        assert (second.message_id, fetches) == (message.message_id, [2])
        consumer.ack(held)
        consumer.ack(second)
    finally:
        consumer.close()
        looking.join(timeout=10)
        broker.flush("wake_drained")
