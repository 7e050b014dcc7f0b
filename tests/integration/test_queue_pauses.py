"""Pause holds a queue's messages in Redis (no re-enqueue loop), resume releases them in order, purge drops them all."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import dramatiq
import pytest
import redis
from dramatiq.broker import Consumer, MessageProxy
from sqlalchemy import update
from sqlalchemy.orm import sessionmaker

from actors import broker, probe
from autolog import broker_state
from autolog.broker_state import enqueue_many, wake_key
from autolog.context import Context
from autolog.progress import ProgressChannel, ProgressEvent
from autolog.statuses import Status
from autolog.store import SEND_WITHIN_S, NewItem
from autolog.store import outbox as outbox_module
from autolog.store.jobs import Jobs
from autolog.store.models import OutboxMessage
from middleware import pending, relay_outbox
from middleware.queue_pauses import QueuePauses
from middleware.status_writes import StatusWrites
from pipelines import actions, scan
from pipelines import queues as queues_module
from pipelines.intake import queue_footage
from pipelines.queues import Queues
from tests.conftest import SampleClips, SkippingClock, acked, fetch, wait_for


def queues() -> Queues:
    return Queues.of_broker(broker)


def pause_for_this_process_workers(queue: str) -> None:
    """Pause ``queue`` and wait until this process's workers see it (``QueuePauses`` reads Redis once a second).

    A message a worker takes before then runs: a pause does not stop what a worker already fetched.
    """
    queues().pause(queue)
    pauses = next(middleware for middleware in broker.middleware if isinstance(middleware, QueuePauses))
    wait_for(lambda: queue in pauses.paused(), timeout_s=10, what=f"the workers to see {queue!r} paused")


def ready_ids(queue: str) -> list[str]:
    """The Redis ids in a queue's ready list, head first."""
    client: redis.Redis = broker.client
    return [raw.decode() for raw in client.lrange(f"{broker.namespace}:{queue}", 0, -1)]  # type: ignore[union-attr]


def test_pause_holds_a_thousand_waiting_messages_and_resume_puts_them_back_in_order(context: Context) -> None:
    sent = [broker.enqueue(probe.message(f"HOLD{index:04d}")) for index in range(1000)]

    paused = queues().pause("probe")

    assert (paused.paused, paused.held, paused.queued, paused.delayed) == (True, 1000, 0, 0)
    assert ready_ids("probe") == []

    resumed = queues().resume("probe")

    assert (resumed.paused, resumed.held, resumed.queued) == (False, 0, 1000)
    assert ready_ids("probe") == [message.options["redis_message_id"] for message in sent]


def test_a_step_reaching_a_worker_of_a_paused_queue_is_held_once_then_runs_on_resume(
    context: Context, test_media: SampleClips, drain: Callable[..., None], unique_id: Callable[[str], str]
) -> None:
    pause_for_this_process_workers("thumbnails")
    item_id = unique_id("paused")

    actions.submit(context, [NewItem(item_id, str(test_media.path("cuts_noaudio.mp4")), force_resume=True)])
    wait_for(lambda: queues().get("thumbnails").held == 1, timeout_s=30, what="the step to be held")
    # Idle with the message held: the old re-enqueue loop never let the delay queue empty.
    drain()
    assert context.store.items.get(item_id).status is Status.FILE_INFO_COMPLETE
    # Its progress says it is held, not skipped: it comes back (a page waiting for the step's end waits on).
    # The worker's publisher sends it a few ms after the skip.
    channel = ProgressChannel(broker.client, namespace=broker.namespace)

    def after_queued() -> ProgressEvent | None:
        latest = channel.latest(item_id)
        return latest if latest is not None and latest.state != "queued" else None

    latest = wait_for(after_queued, timeout_s=10, what="the held delivery's progress")
    assert (latest.stage, latest.state, latest.final) == ("thumbnails", "held", False)

    queues().resume("thumbnails")
    drain()

    item = context.store.items.get(item_id)
    assert (item.status, item.error) == (Status.AVID_DESCRIPTION, None)
    kinds = [(event.event, event.step) for event in context.store.timeline.for_item(item_id)]
    assert ("failed", "thumbnails") not in kinds and ("retried", "thumbnails") not in kinds
    assert ("deferred", "thumbnails") not in kinds and ("skipped", "thumbnails") not in kinds
    assert kinds.count(("started", "thumbnails")) == 1


def _pending(context: Context, *item_ids: str) -> None:
    """Create items at step 1, each with a file under the media root (a retry looks for it)."""
    folder = context.settings.resolved_media_roots[0] / "queue-pauses"
    folder.mkdir(exist_ok=True)
    for item_id in item_ids:
        (folder / f"{item_id}.mp4").write_bytes(b"not really footage")
    context.store.items.create([NewItem(item_id, str(folder / f"{item_id}.mp4")) for item_id in item_ids])


def test_a_held_step_purged_with_its_queue_reads_skipped_so_a_page_waiting_on_it_stops(
    context: Context, worker: dramatiq.Worker, test_media: SampleClips, unique_id: Callable[[str], str]
) -> None:
    # Given an item whose step 2 a worker holds for its paused queue (its progress says "held")
    pause_for_this_process_workers("thumbnails")
    item_id = unique_id("purged-held")
    channel = ProgressChannel(broker.client, namespace=broker.namespace)
    try:
        actions.submit(context, [NewItem(item_id, str(test_media.path("cuts_noaudio.mp4")), force_resume=True)])
        held = wait_for(lambda: (latest := channel.latest(item_id)) is not None and latest.state == "held" and latest,
                        timeout_s=30, what="the step to be held")

        # When the queue is purged
        outcome = queues().purge(context, "thumbnails")

        # Then that step's progress reads "skipped", about the same message: nothing more comes of it
        assert item_id in outcome.items
        latest = channel.latest(item_id)
        assert latest is not None
        assert (latest.stage, latest.state, latest.message_id, latest.final) == (
            "thumbnails", "skipped", held.message_id, False)
    finally:
        queues().resume("thumbnails")


def test_a_purge_whose_progress_redis_refuses_still_drops_and_marks_and_logs_it(
    context: Context, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a queued step message of an item
    _pending(context, "UNANNOUNCED")
    broker.enqueue(probe.message("UNANNOUNCED"))

    # When its queue is purged while Redis refuses the progress events (advisory, after the purge itself)
    with mock.patch.object(ProgressChannel, "publish_many", side_effect=redis.ConnectionError("refused")), \
            caplog.at_level(logging.WARNING, logger="pipelines.queues"):
        outcome = queues().purge(context, "probe")

    # Then the purge stands (dropped, the item marked) and the lost progress is logged
    assert (outcome.purged, outcome.items) == (1, ("UNANNOUNCED",))
    assert context.store.items.get("UNANNOUNCED").purged
    assert ready_ids("probe") == []
    assert any("Could not publish the progress of 1 purged message(s)" in record.getMessage()
               for record in caplog.records)


def test_purge_drops_queued_delayed_and_held_messages_and_discovery_leaves_their_items(context: Context) -> None:
    _pending(context, "HELD", "READY", "LATER")
    broker.enqueue(probe.message("HELD"))
    queues().pause("probe")
    broker.enqueue(probe.message("READY"))
    broker.enqueue(probe.message("LATER"), delay=600_000)

    outcome = queues().purge(context, "step1_file_info")

    assert (outcome.queue, outcome.purged, outcome.items) == ("probe", 3, ("HELD", "LATER", "READY"))
    view = queues().get("probe")
    assert (view.queued, view.delayed, view.held) == (0, 0, 0)
    for item_id in ("HELD", "READY", "LATER"):
        item = context.store.items.get(item_id)
        assert item.purged
        assert [event.event for event in context.store.timeline.for_item(item_id)][-1] == "purged"
    report = scan(context, broker, now=datetime.now(UTC) + timedelta(hours=1))
    assert report.queued == ()

    again = actions.retry(context, "READY")

    assert (again.queued, again.already_queued, again.item.purged) == (True, False, False)
    assert not context.store.items.get("READY").purged


@pytest.fixture
def skipping_clock(monkeypatch: pytest.MonkeyPatch) -> SkippingClock:
    clock = SkippingClock()
    monkeypatch.setattr(queues_module, "time", clock)
    monkeypatch.setattr(outbox_module, "time", clock)
    return clock


def test_a_delayed_step_purged_while_a_worker_holds_it_is_let_go_by_the_worker(
    context: Context, worker: dramatiq.Worker, redis_client: redis.Redis,
) -> None:
    # Given a step-1 message delayed by a second, which the worker's delay queue has taken to hold
    _pending(context, "HELD-DELAYED")
    status_writes = next(middleware for middleware in broker.middleware if isinstance(middleware, StatusWrites))
    sent = broker.enqueue(probe.message("HELD-DELAYED"), delay=1_000)
    wait_for(lambda: sent.message_id in status_writes._delayed, timeout_s=10, what="the worker to hold it")

    # When its queue is purged meanwhile, and it falls due (the worker acknowledges it instead of moving it)
    assert queues().purge(context, "step1_file_info").purged == 1
    wait_for(lambda: acked(redis_client, broker.namespace, "probe.DQ", sent), timeout_s=10,
             what="the worker to acknowledge the purged message")

    # Then the worker no longer keeps its id among the delayed messages it holds (one per purge, for good)
    wait_for(lambda: sent.message_id not in status_writes._delayed, timeout_s=5, what="the id to be let go")
    assert context.store.items.get("HELD-DELAYED").purged


def test_a_purged_message_whose_writer_died_before_clearing_its_row_is_not_relayed(
    context: Context, skipping_clock: SkippingClock,
) -> None:
    # Given an item's step-1 message sent by a writer that died before clearing its outbox row
    message = probe.message("PURGED1")
    context.store.items.create([NewItem("PURGED1", "/footage/a.mov")], messages=[pending(message)])
    broker.enqueue(message)

    # When the queue is purged, and a relay looks at the rows once the writer's lease ran out
    assert queues().purge(context, "probe").purged == 1
    assert skipping_clock.skipped_s > SEND_WITHIN_S - 1, "the purge waited for the writer's deadline"
    settled = relay_outbox(broker, context.store.outbox, now=time.time() + 60)

    # Then the purge stands: nothing sent again
    assert (settled, context.store.outbox.count()) == (0, 0)
    assert queues().get("probe").queued == 0


def test_a_message_whose_writer_died_before_sending_it_is_purged_and_never_relayed(context: Context) -> None:
    # Given two items at step 1: one whose message is in Redis, one whose writer died after
    # committing its message and before sending it (its row waits for the relay)
    _pending(context, "QUEUED1")
    broker.enqueue(probe.message("QUEUED1"))
    unsent = probe.message("UNSENT1")
    context.store.items.create([NewItem("UNSENT1", "/footage/b.mov")], messages=[pending(unsent)])

    # When the queue is purged once the writer's lease ran out, and a relay looks at the rows
    outcome = queues().purge(context, "probe", now=time.time() + 60)
    settled = relay_outbox(broker, context.store.outbox, now=time.time() + 60)

    # Then both messages count as purged, both items are marked, and the unsent one never reaches Redis
    assert (outcome.purged, outcome.items) == (2, ("QUEUED1", "UNSENT1"))
    assert (settled, context.store.outbox.count(), queues().get("probe").queued) == (0, 0, 0)
    item = context.store.items.get("UNSENT1")
    assert (item.purged, item.status) == (True, Status.PENDING_FILE_INFO)
    purged = [event for event in context.store.timeline.for_item("UNSENT1") if event.event == "purged"]
    assert [(event.step, event.message_id) for event in purged] == [("file_info", unsent.message_id)]


def test_a_relay_right_after_the_redis_purge_does_not_send_a_purged_message_again(
    context: Context, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a step-1 message in Redis whose writer died long ago before clearing its row, and a
    # relay that runs the moment Redis has dropped the message
    message = probe.message("SENT1")
    context.store.items.create([NewItem("SENT1", "/footage/a.mov")], messages=[pending(message)])
    broker.enqueue(message)
    later = time.time() + 60
    purge_redis = broker_state.purge
    relayed: list[int] = []

    def purge_then_relay(client: redis.Redis, namespace: str, queue: str) -> broker_state.Purge:
        purged = purge_redis(client, namespace, queue)
        relayed.append(relay_outbox(broker, context.store.outbox, now=later))
        return purged

    monkeypatch.setattr(broker_state, "purge", purge_then_relay)

    # When the queue is purged
    outcome = queues().purge(context, "probe", now=later)

    # Then the relay found no row to send: the purge had dropped it before emptying Redis
    assert (outcome.purged, outcome.items, relayed) == (1, ("SENT1",), [0])
    assert (queues().get("probe").queued, context.store.outbox.count()) == (0, 0)


def test_a_message_a_worker_fetched_is_not_counted_or_marked_though_its_dead_writers_row_is_dropped(
    context: Context,
) -> None:
    # Given a step-1 message a worker has fetched (it will run), whose writer died long ago before clearing its row
    message = probe.message("FETCH1")
    context.store.items.create([NewItem("FETCH1", "/footage/a.mov")], messages=[pending(message)])
    _, fetching = _fetched(broker.enqueue(message), "probe")
    try:
        # When the (unpaused) queue is purged
        outcome = queues().purge(context, "probe", now=time.time() + 60)
    finally:
        fetching.close()

    # Then the purge neither counts the message nor marks its item, and the row is gone for good
    assert (outcome.purged, outcome.items, context.store.outbox.count()) == (0, (), 0)
    assert not context.store.items.get("FETCH1").purged


def test_a_purge_right_after_a_writer_died_before_sending_waits_for_its_deadline_and_drops_its_message(
    context: Context, skipping_clock: SkippingClock,
) -> None:
    # Given a step-1 message whose writer committed it a moment ago and died before sending it
    message = probe.message("JUSTDIED")
    context.store.items.create([NewItem("JUSTDIED", "/footage/a.mov")], messages=[pending(message)])

    # When the queue is purged at once, and a relay looks at the rows once the writer's lease ran out
    outcome = queues().purge(context, "probe")
    settled = relay_outbox(broker, context.store.outbox, now=time.time() + 60)

    # Then the purge waited until the writer could no longer send it, dropped it, and marked its item
    assert SEND_WITHIN_S - 1 < skipping_clock.skipped_s < SEND_WITHIN_S + 1
    assert (outcome.purged, outcome.items, settled, queues().get("probe").queued) == (1, ("JUSTDIED",), 0, 0)


def test_a_purge_waits_for_a_live_writer_whose_message_then_goes_with_the_queue(
    context: Context, skipping_clock: SkippingClock,
) -> None:
    # Given a step-1 message its writer has just committed, and sends (and clears) while the purge waits
    message = probe.message("LIVE1")
    context.store.items.create([NewItem("LIVE1", "/footage/a.mov")], messages=[pending(message)])

    def writer_sends() -> None:
        broker.enqueue(message)
        context.store.outbox.sent([message.message_id])

    skipping_clock.on_sleep = writer_sends

    # When the queue is purged
    outcome = queues().purge(context, "probe")

    # Then the purge emptied Redis after the send: the message went with the queue, counted once
    assert skipping_clock.skipped_s < 1
    assert (outcome.purged, outcome.items) == (1, ("LIVE1",))
    assert (queues().get("probe").queued, context.store.outbox.count()) == (0, 0)


def _backdated(context: Context, message_id: str, seconds: float) -> None:
    """Make an outbox row look made ``seconds`` earlier (its writer died that long ago)."""
    with context.store.sessions.begin() as session:
        session.execute(update(OutboxMessage).where(OutboxMessage.message_id == message_id)
                        .values(created_at=datetime.now(UTC) - timedelta(seconds=seconds)))


def test_a_purge_interrupted_while_it_waits_for_a_writer_has_dropped_nothing_yet(
    context: Context, skipping_clock: SkippingClock,
) -> None:
    # Given a message whose writer died a minute ago before sending it, and one a writer has just committed
    dead, young = probe.message("DEAD1"), probe.message("YOUNG1")
    context.store.items.create([NewItem("DEAD1", "/footage/a.mov"), NewItem("YOUNG1", "/footage/b.mov")],
                               messages=[pending(dead), pending(young)])
    _backdated(context, dead.message_id, 60)

    def interrupted() -> None:
        raise KeyboardInterrupt

    # When a purge waiting for the young one's writer is interrupted (Ctrl-C), then run again
    skipping_clock.on_sleep = interrupted
    with pytest.raises(KeyboardInterrupt):
        queues().purge(context, "probe")
    kept = sorted(pending.message_id for pending in context.store.outbox.unsent())
    outcome = queues().purge(context, "probe")

    # Then the interrupted purge had dropped nothing (no row gone without its item marked), and the next dropped both
    assert kept == sorted([dead.message_id, young.message_id])
    assert (outcome.purged, outcome.items) == (2, ("DEAD1", "YOUNG1"))


def test_a_queue_paused_while_the_purge_waits_for_a_writer_counts_as_paused(
    context: Context, skipping_clock: SkippingClock,
) -> None:
    # Given a message a worker fetched, and one a writer has just committed, so the purge waits
    _pending(context, "FETCHED1")
    _, fetching = _fetched(broker.enqueue(probe.message("FETCHED1")), "probe")
    context.store.items.create([NewItem("YOUNG1", "/footage/b.mov")], messages=[pending(probe.message("YOUNG1"))])

    # When the queue is paused while the purge waits
    def pause() -> None:
        queues().pause("probe")

    skipping_clock.on_sleep = pause
    try:
        outcome = queues().purge(context, "probe")
    finally:
        fetching.close()

    # Then the fetched message's item is marked too: its worker's pause check drops it
    assert outcome.items == ("FETCHED1", "YOUNG1")
    assert context.store.items.get("FETCHED1").purged


def test_purge_leaves_alone_an_item_that_has_moved_past_the_queues_step(context: Context) -> None:
    # Given a stale duplicate step 1 message of an item already at step 3
    _pending(context, "MOVED", "WAITING")
    context.store.items.transition("MOVED", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE)
    context.store.items.transition("MOVED", Status.FILE_INFO_COMPLETE, Status.THUMBNAILS_COMPLETE)
    broker.enqueue(probe.message("MOVED"))
    broker.enqueue(probe.message("WAITING"))

    outcome = queues().purge(context, "probe")

    # Then both messages are gone, but only the item still at step 1 is marked purged
    assert (outcome.purged, outcome.items) == (2, ("WAITING",))
    moved = context.store.items.get("MOVED")
    assert (moved.purged, moved.status) == (False, Status.THUMBNAILS_COMPLETE)
    assert "purged" not in [event.event for event in context.store.timeline.for_item("MOVED")]
    assert context.store.items.get("WAITING").purged


def test_purged_jobs_read_as_purged(context: Context) -> None:
    _pending(context, "GONE")
    [answer] = actions.queue_items(context, [context.store.items.get("GONE")])

    queues().purge(context, "probe")

    job = Jobs(sessionmaker(context.store.engine)).get(str(answer.job_id))
    assert (job.status, job.step) == ("purged", "file_info")


@pytest.mark.parametrize("how", ["resume", "batch"])
def test_a_resume_and_a_batch_enqueue_wake_the_queues_idle_consumers(
    context: Context, redis_client: redis.Redis, how: str,
) -> None:
    """Idle consumers block on the queue's wake list (``actors._waking_broker``): both must fill it."""
    wake = wake_key(broker.namespace, "probe")
    if how == "resume":
        messages = [broker.enqueue(probe.message(f"WAKE{index}")) for index in range(3)]
        queues().pause("probe")
        redis_client.delete(wake)
        queues().resume("probe")
    else:
        messages = [probe.message(f"WAKE{index}").copy(options={"redis_message_id": f"wake-{index}"})
                    for index in range(3)]
        enqueue_many(broker, [("probe", str(message.options["redis_message_id"]), message.encode())
                              for message in messages])

    assert redis_client.llen(wake) == 3
    assert ready_ids("probe") == [str(message.options["redis_message_id"]) for message in messages]


def test_lf_queue_of_a_purged_item_queues_it_with_the_real_job_id(context: Context) -> None:
    # Given an item queued twice on a paused queue (the second answer names the first message)
    _pending(context, "PURGED")
    queues().pause("probe")
    [first] = actions.queue_items(context, [context.store.items.get("PURGED")])
    [twice] = actions.queue_items(context, [context.store.items.get("PURGED")])
    assert (twice.already_queued, twice.job_id) == (True, first.job_id)
    # and then purged
    assert queues().purge(context, "probe").items == ("PURGED",)

    # When it is queued again with lf_queue
    [answer] = queue_footage(context, ["PURGED"])

    # Then one new message waits for it on the paused queue, and the answer names that message
    assert (answer.queued, answer.already_queued, answer.item.purged) == (True, False, False)
    assert answer.job_id is not None and answer.job_id != first.job_id
    view = queues().get("probe")
    assert view.queued + view.held == 1
    assert actions.in_flight(context, [context.store.items.get("PURGED")]) == {"PURGED": answer.job_id}


def test_a_request_that_finds_an_item_locked_by_another_that_sent_nothing_queues_it_itself(context: Context) -> None:
    _pending(context, "RACED")
    # Another request took the queueing lock and let it expire without sending anything
    broker.client.set(actions._lock_key("RACED"), "1", px=300)

    [answer] = actions.queue_items(context, [context.store.items.get("RACED")])

    assert (answer.queued, answer.already_queued, answer.reason) == (True, False, None)
    assert actions.in_flight(context, [context.store.items.get("RACED")]) == {"RACED": answer.job_id}


def _fetched(sent: dramatiq.Message[Any], queue: str) -> tuple[MessageProxy, Consumer]:
    """Fetch ``sent`` from ``queue`` as a worker's consumer does (not acknowledged); return it and the open consumer."""
    consumer = broker.consume(queue, prefetch=1, timeout=100)
    fetched = fetch(consumer)
    assert fetched.message_id == sent.message_id
    return fetched, consumer


def _fetch_delayed(item_id: str) -> tuple[MessageProxy, Consumer]:
    """Send ``item_id`` a delayed probe message and fetch it from the delay queue, as a worker's delay consumer does."""
    return _fetched(broker.enqueue(probe.message(item_id), delay=600_000), "probe.DQ")


def _fall_due(fetched: Any) -> None:
    """Put a fetched delayed message on its queue as dramatiq's worker does once it is due."""
    moved = fetched.copy(queue_name="probe")
    del moved.options["eta"]
    broker.enqueue(moved)


@pytest.mark.parametrize("purged", [True, False], ids=["purged meanwhile", "not purged"])
def test_a_delayed_message_a_worker_held_goes_on_its_queue_when_due_unless_purged_meanwhile(
    context: Context, purged: bool,
) -> None:
    # Given a delayed step-1 message a worker's delay consumer fetched and holds until it is due
    _pending(context, "DELAYED1")
    fetched, consumer = _fetch_delayed("DELAYED1")
    try:
        # When the queue is purged (or not) and the message falls due
        outcome = queues().purge(context, "probe") if purged else None
        _fall_due(fetched)
    finally:
        consumer.close()

    # Then a purged one, counted and marked by the purge, stays dropped; another goes on its queue
    if outcome is not None:
        assert (outcome.purged, outcome.items) == (1, ("DELAYED1",))
    assert queues().get("probe").queued == (0 if purged else 1)


def test_a_delayed_message_whose_id_redis_lost_without_a_purge_still_goes_on_its_queue(context: Context) -> None:
    # Given a purge of the queue a minute ago, and a delayed message a worker holds, whose copy Redis
    # lost since (a restart without its data)
    _pending(context, "LOST1")
    broker.client.set(f"{broker.namespace}:probe.PT", int(time.time() * 1000) - 60_000)
    fetched, consumer = _fetch_delayed("LOST1")
    try:
        broker.client.hdel(f"{broker.namespace}:probe.DQ.msgs", fetched.options["redis_message_id"])

        # When it falls due
        _fall_due(fetched)
    finally:
        consumer.close()

    # Then it goes on its queue: it was made after the purge, so nothing dropped it
    assert queues().get("probe").queued == 1


def test_a_dead_letter_retried_after_a_purge_of_its_queue_is_queued(context: Context) -> None:
    # Given a dead letter of the probe queue made before a purge of that queue
    message = broker.enqueue(probe.message("DEAD1"))
    dead = message.copy(options={"redis_message_id": "dead-letter-id"})
    broker.client.hset(f"{broker.namespace}:probe.XQ.msgs", "dead-letter-id", dead.encode())
    queues().purge(context, "probe")

    # When it is queued again without a delay, its own Redis id still in the dead letters
    broker.enqueue(dead)

    # Then it is queued: only a fetched message Redis no longer holds counts as purged
    assert queues().get("probe").queued == 1


def test_a_purge_between_the_check_and_the_put_of_a_delayed_message_falling_due_still_drops_it(
    context: Context, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a delayed message a worker holds, and a purge that lands after the check that it
    # was not purged, while its put is being built
    _pending(context, "RACE1")
    fetched, consumer = _fetch_delayed("RACE1")
    dispatch_args = broker.dispatch_args
    outcomes = []

    def purge_first(*args: Any) -> list[Any]:
        if not outcomes:
            outcomes.append(queues().purge(context, "probe"))
        return dispatch_args(*args)

    monkeypatch.setattr(broker, "dispatch_args", purge_first)
    try:
        # When it falls due
        _fall_due(fetched)
    finally:
        consumer.close()

    # Then the purge, which counted and marked it, also kept it off its queue
    assert [(outcome.purged, outcome.items) for outcome in outcomes] == [(1, ("RACE1",))]
    assert queues().get("probe").queued == 0
