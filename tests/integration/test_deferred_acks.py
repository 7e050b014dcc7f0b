"""Acks sent with the consumer's next round trip (issue #13) reach Redis, soon, and delete nothing else."""

from __future__ import annotations

import threading
from typing import Any

import dramatiq
import pytest
import redis

from actors import broker
from autolog.broker_state import ack_set_key, hold, pause, resume
from tests.conftest import acked, wait_for

#: Declared at import, before any worker of the session exists (see test_waking_broker).
QUEUES = ("acks_paused", "acks_restart", "acks_saturated", "acks_noscript", "acks_reload", "acks_load_fails",
          "acks_resend_fails", "acks_refetched")
for _queue in QUEUES:
    broker.declare_queue(_queue)

RELEASE = threading.Event()
STARTED = threading.Semaphore(0)


def _blocking(kind: str) -> None:
    if kind == "quick":
        return
    STARTED.release()
    RELEASE.wait(60)


blocking = dramatiq.actor(_blocking, actor_name="autolog_test.acks_blocking", queue_name="acks_restart",
                          broker=broker)


def _hold_and_ack(redis_client: redis.Redis, consumer: Any, queue: str, fetched: Any) -> str:
    """Pause ``queue``, hold the message ``consumer`` fetched (as QueuePauses does), ack it; return its Redis id."""
    rid: str = fetched.options["redis_message_id"]
    pause(redis_client, broker.namespace, queue)
    assert hold(redis_client, broker.namespace, queue, rid, fetched.encode(), fetched.message_timestamp,
                worker_id=broker.broker_id) == 1
    consumer.ack(fetched)
    return rid


def test_a_held_message_survives_a_resume_that_comes_before_its_deferred_ack(redis_client: redis.Redis) -> None:
    # Given a worker's consumer that fetched a message of a queue that is then paused; QueuePauses
    # holds the message (hold script) and the worker acks it (the ack waits for the next round trip)
    sent = broker.enqueue(dramatiq.Message(queue_name="acks_paused", actor_name="autolog_test.acks_blocking",
                                           args=("quick",), kwargs={}, options={}))
    consumer = broker.consume("acks_paused", prefetch=1, timeout=1000)
    fetched = wait_for(lambda: next(consumer), timeout_s=10, what="the fetch")
    _hold_and_ack(redis_client, consumer, "acks_paused", fetched)

    # When the operator resumes the queue before the consumer's next round trip
    assert resume(redis_client, broker.namespace, "acks_paused") == 1
    try:
        # Then the resumed message can still be fetched and run (its data is still in Redis)
        again = wait_for(lambda: next(consumer), timeout_s=5, what="the resumed message to be fetched")
        assert again.message_id == sent.message_id
    finally:
        consumer.close()


@pytest.mark.parametrize(("queue", "reloaded_mid_round_trip"), [("acks_noscript", False), ("acks_reload", True)])
def test_a_round_trip_after_redis_lost_its_scripts_delivers_what_it_fetched_and_sends_the_acks(
        redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch, queue: str, reloaded_mid_round_trip: bool) -> None:
    # Given a consumer that fetched and acked one of three messages (the ack waits for its next round trip)
    first, second, _ = (broker.enqueue(blocking.message("quick").copy(queue_name=queue)) for _ in range(3))
    consumer = broker.consume(queue, prefetch=1, timeout=1000)
    try:
        fetched = wait_for(lambda: next(consumer), timeout_s=10, what="the first fetch")
        assert fetched.message_id == first.message_id
        # When Redis loses its scripts (as a restart does) before that round trip
        redis_client.script_flush()
        consumer.ack(fetched)
        reloaded: list[bool] = []
        if reloaded_mid_round_trip:
            # and another client loads the dispatch script between the round trip's ack (NOSCRIPT) and its fetch
            real_dispatch = consumer._dispatch

            def reload_first(pipe: Any, command: str, *args: Any) -> None:
                if not reloaded:
                    reloaded.append(True)
                    pipe.script_load(broker.scripts["dispatch"].script)
                real_dispatch(pipe, command, *args)

            monkeypatch.setattr(consumer, "_dispatch", reload_first)
        again = wait_for(lambda: next(consumer), timeout_s=10, what="the fetch after the scripts were lost")
        # Then the message the round trip fetched is delivered (not left in the ack set, never to run),
        # and the ack went out
        assert again.message_id == second.message_id
        assert reloaded == ([True] if reloaded_mid_round_trip else [])
        assert acked(redis_client, broker.namespace, queue, fetched)
    finally:
        consumer.close()


def _after_a_restart(redis_client: redis.Redis, queue: str, count: int) -> tuple[list[Any], Any, Any]:
    """Send ``count`` messages; fetch and ack the first; then Redis loses its scripts and a producer's
    enqueue loads dramatiq's dispatch script again (not the ack script): the next round trip's ack
    meets NOSCRIPT while its fetch runs. Return the messages sent, the consumer and the first delivery."""
    sent = [broker.enqueue(blocking.message("quick").copy(queue_name=queue)) for _ in range(count)]
    consumer = broker.consume(queue, prefetch=1, timeout=1000)
    fetched = wait_for(lambda: next(consumer), timeout_s=10, what="the first fetch")
    assert fetched.message_id == sent[0].message_id
    redis_client.script_flush()
    redis_client.script_load(broker.scripts["dispatch"].script)
    return sent, consumer, fetched


@pytest.mark.parametrize(("queue", "fails"), [("acks_load_fails", "load"), ("acks_resend_fails", "resend")])
def test_a_fetch_that_ran_is_delivered_when_loading_the_scripts_or_sending_the_acks_again_fails(
        redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch, queue: str, fails: str) -> None:
    sent, consumer, fetched = _after_a_restart(redis_client, queue, 3)
    try:
        consumer.ack(fetched)
        # When loading the scripts, or sending the acks again, meets a Redis failure
        if fails == "load":
            def down(*args: Any, **kwargs: Any) -> None:
                raise redis.ConnectionError("Redis went away during SCRIPT LOAD")

            monkeypatch.setattr(broker.client, "script_load", down)
        else:
            real_send = consumer._send

            def drop_the_second(acks: list[str], fetch: int) -> Any:
                if fetch == 0:
                    raise redis.ConnectionError("the connection dropped on the second send")
                return real_send(acks, fetch)

            monkeypatch.setattr(consumer, "_send", drop_the_second)
        # Then the message the fetch took is delivered (not left in the ack set, never to run)
        second = next(consumer)
        assert second is not None and second.message_id == sent[1].message_id
        # And the ack kept goes out with a later round trip, once Redis answers
        monkeypatch.undo()
        consumer.ack(second)
        wait_for(lambda: next(consumer), timeout_s=10, what="the third message")
        assert all(acked(redis_client, broker.namespace, queue, message) for message in (fetched, second))
    finally:
        consumer.close()


def test_an_ack_sent_again_after_its_round_trips_fetch_spares_the_message_a_resume_gave_that_fetch(
        redis_client: redis.Redis) -> None:
    # Given a message held by a pause, acked by its worker, and put back by a resume (same Redis id)
    sent, consumer, fetched = _after_a_restart(redis_client, "acks_refetched", 1)
    try:
        rid = _hold_and_ack(redis_client, consumer, "acks_refetched", fetched)
        assert resume(redis_client, broker.namespace, "acks_refetched") == 1
        # When the round trip's ack meets NOSCRIPT while its fetch takes the resumed message
        again = wait_for(lambda: next(consumer), timeout_s=10, what="the resumed message")
        assert again.message_id == sent[0].message_id
        # Then the ack of its earlier delivery, sent again, leaves the running message in Redis
        assert redis_client.hexists(f"{broker.namespace}:acks_refetched.msgs", rid)
        assert redis_client.sismember(ack_set_key(broker.namespace, broker.broker_id, "acks_refetched"), rid)
    finally:
        consumer.close()


def test_an_ack_made_while_the_consumer_restarts_after_a_redis_error_reaches_redis(
        redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a worker running a step, its consumer idle on the wake list
    RELEASE.clear()
    worker = dramatiq.Worker(broker, queues={"acks_restart"}, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        sent = blocking.send("block")
        assert STARTED.acquire(timeout=10)
        # When one wait on the wake list (a BLPOP, with its fetch in one pipeline) meets a Redis blip (the
        # consumer thread restarts its consumer, 1 s later)
        failed = threading.Event()
        real_execute = redis.client.Pipeline.execute

        def blip(pipe: redis.client.Pipeline, *args: Any, **kwargs: Any) -> Any:
            if pipe.command_stack and pipe.command_stack[0][0][0] == "BLPOP" and not failed.is_set():
                failed.set()
                pipe.reset()
                raise redis.ConnectionError("blip")
            return real_execute(pipe, *args, **kwargs)

        monkeypatch.setattr(redis.client.Pipeline, "execute", blip)
        wait_for(failed.is_set, timeout_s=10, what="the blip")
        # and the step finishes meanwhile
        RELEASE.set()
        # Then its ack reaches Redis (Redis is up: dramatiq acked at once before #13)
        wait_for(lambda: acked(redis_client, broker.namespace, "acks_restart", sent), timeout_s=10,
                 what="the finished step's message to be acked")
    finally:
        RELEASE.set()
        worker.stop()


def test_a_finished_message_is_acked_while_its_lanes_other_steps_run_long(redis_client: redis.Redis) -> None:
    # Given a lane of 4 threads (prefetch 8) that fetches a quick message and 7 long ones at once
    RELEASE.clear()
    quick = broker.enqueue(blocking.message("quick").copy(queue_name="acks_saturated"))
    for _ in range(7):
        broker.enqueue(blocking.message("block").copy(queue_name="acks_saturated"))
    worker = dramatiq.Worker(broker, queues={"acks_saturated"}, worker_threads=4, worker_timeout=100)
    worker.start()
    try:
        for _ in range(4):
            assert STARTED.acquire(timeout=10)
        # When the quick one has finished and the 4 threads run long steps
        # Then Redis drops the finished message (a crash now would run it again)
        wait_for(lambda: acked(redis_client, broker.namespace, "acks_saturated", quick), timeout_s=5,
                 what="the finished quick message to be acked")
    finally:
        RELEASE.set()
        worker.stop()
        while STARTED.acquire(blocking=False):
            pass


broker.declare_queue("acks_pause_lane")
GATES: dict[str, threading.Event] = {}
RAN: set[str] = set()


def _gated(name: str) -> None:
    RAN.add(name)
    if name != "H":
        STARTED.release()
        GATES.setdefault(name, threading.Event()).wait(60)


gated = dramatiq.actor(_gated, actor_name="autolog_test.acks_gated", queue_name="acks_pause_lane", broker=broker)


def test_a_message_held_by_a_pause_runs_once_its_queue_resumes_while_its_lane_is_busy(
        redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    from middleware import queue_pauses

    pauses = next(m for m in broker.middleware if isinstance(m, queue_pauses.QueuePauses))
    names = [f"B{n}" for n in range(1, 9)] + ["H"] + [f"C{n}" for n in range(1, 8)]
    GATES.clear()
    RAN.clear()
    for name in names:
        GATES[name] = threading.Event()
    for name in names:
        gated.send(name)

    # The operator resumes the queue right after the worker acknowledged H, which QueuePauses held
    class ResumeAfterH(dramatiq.Middleware):
        def after_ack(self, broker: Any, message: Any) -> None:
            if message.actor_name == "autolog_test.acks_gated" and message.args == ("H",):
                resume(redis_client, broker.namespace, "acks_pause_lane")

    resumer = ResumeAfterH()
    broker.middleware.append(resumer)
    # Given a lane of 8 threads (prefetch 16) that fetched all 16, its threads busy with long steps B1-B8
    worker = dramatiq.Worker(broker, queues={"acks_pause_lane"}, worker_threads=8, worker_timeout=100)
    worker.start()
    try:
        for _ in range(8):
            assert STARTED.acquire(timeout=10)
        # When the queue is paused, B1 ends and its thread takes H, which is held (and the queue resumed)
        pause(redis_client, broker.namespace, "acks_pause_lane")
        wait_for(lambda: "acks_pause_lane" in pauses.paused(), timeout_s=5, what="the pause to be seen")
        GATES["B1"].set()
        assert STARTED.acquire(timeout=10)  # C1 took the thread after H
        wait_for(lambda: redis_client.llen(f"{broker.namespace}:acks_pause_lane.HQ") == 0, timeout_s=5,
                 what="the resume")
        assert "H" not in RAN
        # and the lane's steps then end
        for name in names:
            GATES[name].set()
        # Then H, put back on its queue by the resume, runs
        wait_for(lambda: "H" in RAN, timeout_s=10, what="H to run after the resume")
    finally:
        for gate in GATES.values():
            gate.set()
        worker.stop()
        while STARTED.acquire(blocking=False):
            pass
        broker.middleware.remove(resumer)
