"""Progress through Redis pub/sub: every stage in order, the latest state first for late subscribers."""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import redis
from dramatiq.broker import MessageProxy

from actors import broker, make_thumbnails, probe
from autolog.context import Context
from autolog.local_redis import LocalRedis, free_port
from autolog.progress import (
    BackgroundPublisher,
    ProgressChannel,
    ProgressEvent,
    format_sse,
    percent_before,
    stream_progress,
)
from autolog.source_state import SourceStat, settle_remaining_s
from autolog.statuses import Status, step_named
from autolog.store import NewItem
from middleware import TRANSITION_OPTION, Progress
from middleware.queue_pauses import HELD_OPTION
from middleware.rate_limits import WAIT_OPTION
from pipelines import actions
from tests.conftest import SampleClips, wait_for

Drain = Callable[..., None]

STAGES = ["file_info", "thumbnails", "assess", "analysis", "frames"]


@pytest.fixture
def channel(redis_client: redis.Redis) -> ProgressChannel:
    return ProgressChannel(broker.client, namespace=broker.namespace)


class Subscriber:
    """Collects an item's stream on a thread until its final event."""

    def __init__(self, item_id: str) -> None:
        self.events: queue.Queue[ProgressEvent | None] = queue.Queue()
        self.subscribed = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(item_id,), daemon=True)
        self._thread.start()

    def _run(self, item_id: str) -> None:
        stream = stream_progress(broker.client, broker.namespace, item_id, idle_s=0.05, max_duration_s=120)
        for event in stream:
            self.subscribed.set()
            if event is not None:
                self.events.put(event)
        self.events.put(None)

    def collect(self, timeout_s: float = 120) -> list[ProgressEvent]:
        deadline = time.monotonic() + timeout_s
        events: list[ProgressEvent] = []
        while (event := self.events.get(timeout=max(0.0, deadline - time.monotonic()))) is not None:
            events.append(event)
        return events


def test_a_live_subscriber_sees_every_stage_in_order_up_to_the_final_state(
    context: Context, drain: Drain, test_media: SampleClips, unique_id: Callable[[str], str],
) -> None:
    # Given a subscriber listening before the item exists
    item_id = unique_id("live")
    subscriber = Subscriber(item_id)
    assert subscriber.subscribed.wait(10), "the subscriber did not start"

    # When the item runs through steps 1-5, its clip settled (a clip this session just made is
    # held first: a "waiting" event, tested with the source checks)
    clip = test_media.path("cuts_noaudio.mp4")
    wait_for(lambda: settle_remaining_s(SourceStat.of(clip), now_s=time.time(),
                                        settle_s=context.settings.source_settle_s) == 0,
             what="the clip to settle")
    actions.submit(context, [NewItem(item_id, str(clip), force_resume=True)])
    events = subscriber.collect()
    drain()

    # Then it saw queued, running and succeeded for each stage, in order, ending final at 100 %
    assert [event.seq for event in events] == sorted({event.seq for event in events})
    assert [(event.stage, event.state) for event in events] == [
        (stage, state) for stage in STAGES for state in ("queued", "running", "succeeded")]
    percents = [event.percent for event in events]
    assert percents == sorted(percents) and percents[-1] == 100
    assert events[-1].final and events[-1].status == "7 - Avid Description"
    assert sum(event.final for event in events) == 1


def test_a_late_subscriber_gets_the_latest_state_first(
    context: Context, drain: Drain, test_media: SampleClips, unique_id: Callable[[str], str],
) -> None:
    item_id = unique_id("late")
    actions.submit(context, [NewItem(item_id, str(test_media.path("cuts_audio.mp4")), force_resume=False)])
    drain()
    # The worker's publisher sends events a few ms after the step (BackgroundPublisher).
    channel = ProgressChannel(broker.client, namespace=broker.namespace)
    wait_for(lambda: (latest := channel.latest(item_id)) is not None and latest.state == "succeeded",
             what="the last event published")

    first = next(stream_progress(broker.client, broker.namespace, item_id, idle_s=0.05, max_duration_s=5))

    assert first is not None
    assert (first.stage, first.state, first.status, first.percent) == (
        "assess", "succeeded", "Awaiting User Input", 50)
    assert not first.final


def test_a_dead_lettered_item_ends_its_stream(
    context: Context, drain: Drain, test_media: SampleClips, unique_id: Callable[[str], str],
) -> None:
    item_id = unique_id("dead")
    actions.submit(context, [NewItem(item_id, str(test_media.path("empty.mp4")), force_resume=True)])
    drain()
    # The worker's publisher sends events a few ms after the step (BackgroundPublisher).
    channel = ProgressChannel(broker.client, namespace=broker.namespace)
    wait_for(lambda: (latest := channel.latest(item_id)) is not None and latest.final, what="the final event")

    events = list(stream_progress(broker.client, broker.namespace, item_id, idle_s=0.05, max_duration_s=5))

    assert [(event.stage, event.state, event.final) for event in events if event] == [
        ("file_info", "dead_lettered", True)]


def test_a_reconnecting_client_skips_what_it_has_seen(channel: ProgressChannel) -> None:
    events = [ProgressEvent(item_id="resume-me", stage="assess", state=state, percent=33, message_id="m")
              for state in ("queued", "running")]
    seqs = [channel.publish(event) for event in events]

    stream: Iterator[ProgressEvent | None] = channel.stream("resume-me", after_seq=seqs[-1], idle_s=0.05,
                                                            max_duration_s=0.3)

    assert [event for event in stream if event is not None] == []


def test_news_of_a_message_the_item_has_moved_past_is_dropped(channel: ProgressChannel) -> None:
    channel.publish(ProgressEvent(item_id="moved-on", stage="thumbnails", state="queued", percent=17, message_id="new"))

    seq = channel.publish(ProgressEvent(item_id="moved-on", stage="file_info", state="running", percent=0,
                                        message_id="old"), guard_message_id="old")

    latest = channel.latest("moved-on")
    assert seq == 0
    assert latest is not None and (latest.stage, latest.message_id) == ("thumbnails", "new")


def test_one_call_publishes_many_events_in_order_each_guarded_as_alone(channel: ProgressChannel) -> None:
    def event(item_id: str, state: str, message_id: str) -> ProgressEvent:
        return ProgressEvent(item_id=item_id, stage="assess", state=state, percent=33, message_id=message_id)

    seqs = channel.publish_many([
        (event("one", "running", "m1"), "m1"),
        (event("one", "running", "m2"), "m2"),  # the item's latest state is about m1: dropped
        (event("two", "running", "m3"), "m3"),
        (event("one", "succeeded", "m1"), "m1"),
    ])

    assert seqs == [1, 0, 1, 2]
    latest = channel.latest("one")
    assert latest is not None and (latest.state, latest.seq) == ("succeeded", 2)


def test_quiet_streams_yield_keep_alives_until_their_deadline(channel: ProgressChannel) -> None:
    started = time.monotonic()

    chunks = [format_sse(event) for event in channel.stream("nothing-happens", idle_s=0.05, max_duration_s=0.4)]

    assert chunks and set(chunks) == {b": keep-alive\n\n"}
    assert time.monotonic() - started < 5


def test_the_background_publisher_sends_an_items_events_in_order_and_what_is_queued_at_close(
    channel: ProgressChannel,
) -> None:
    subscriber = Subscriber("many")
    assert subscriber.subscribed.wait(10), "the subscriber did not start"
    publisher = BackgroundPublisher(channel)
    events = [ProgressEvent(item_id="many", stage="assess", state="running", percent=index % 100, message_id="m",
                            final=index == 299) for index in range(300)]

    for event in events:
        publisher.publish(event, guard_message_id=None)
    publisher.close()

    seen = subscriber.collect(timeout_s=30)
    assert [event.percent for event in seen] == [event.percent for event in events]
    assert [event.seq for event in seen] == list(range(1, 301))
    latest = channel.latest("many")
    assert latest is not None and latest.final


class CountingChannel(ProgressChannel):
    """A channel that records each send: when it began (``time.monotonic``) and which items' events it held."""

    def __init__(self) -> None:
        super().__init__(broker.client, namespace=broker.namespace)
        self.sends: list[tuple[float, list[str]]] = []

    def publish_many(self, events: Sequence[tuple[ProgressEvent, str | None]]) -> list[int]:
        self.sends.append((time.monotonic(), [event.item_id for event, _ in events]))
        return super().publish_many(events)


def test_under_load_the_background_publisher_sends_at_most_once_an_interval(redis_client: redis.Redis) -> None:
    channel = CountingChannel()
    publisher = BackgroundPublisher(channel, interval_s=0.4)
    try:
        # Given a send just made
        publisher.publish(ProgressEvent(item_id="first", stage="assess", state="running", percent=33))
        wait_for(lambda: channel.sends, what="the first send")

        # When more events come at once, one after another
        for item_id in ("second", "third"):
            publisher.publish(ProgressEvent(item_id=item_id, stage="assess", state="running", percent=33))
        wait_for(lambda: len(channel.sends) == 2, what="the second send")
    finally:
        publisher.close()

    # Then they waited out the interval since the first send, and went in one send
    (first_at, _), (second_at, items) = channel.sends
    assert second_at - first_at >= 0.4
    assert items == ["second", "third"]


def test_a_flush_sends_at_once_whatever_the_interval(redis_client: redis.Redis) -> None:
    channel = CountingChannel()
    publisher = BackgroundPublisher(channel, interval_s=3600)
    try:
        publisher.publish(ProgressEvent(item_id="first", stage="assess", state="running", percent=33))
        wait_for(lambda: channel.sends, what="the first send")

        # When a step hands its item over (its "queued" must be out before the next step may start)
        publisher.publish(ProgressEvent(item_id="handed", stage="assess", state="queued", percent=33))
        publisher.flush(timeout_s=60)

        # Then the event went without waiting out the interval
        assert [items for _, items in channel.sends] == [["first"], ["handed"]]
    finally:
        publisher.close()


def test_a_batch_redis_refuses_is_logged_and_dropped_and_the_publisher_goes_on(
    channel: ProgressChannel, caplog: pytest.LogCaptureFixture,
) -> None:
    unreachable = ProgressChannel(redis.Redis(port=free_port(), socket_connect_timeout=0.2),
                                  namespace=broker.namespace)
    publisher = BackgroundPublisher(unreachable)

    publisher.publish(ProgressEvent(item_id="lost", stage="assess", state="running", percent=33))
    publisher.flush(timeout_s=30)  # returns once the batch is dropped, as once it is sent
    assert "Could not publish 1 progress events" in caplog.text
    publisher.publish(ProgressEvent(item_id="lost", stage="assess", state="succeeded", percent=50))
    wait_for(lambda: caplog.text.count("Could not publish") == 2, what="a second batch tried")
    publisher.close()

    assert channel.latest("lost") is None


def test_a_batch_that_fails_otherwise_is_logged_and_the_publisher_goes_on(
    channel: ProgressChannel, caplog: pytest.LogCaptureFixture,
) -> None:
    publisher = BackgroundPublisher(channel)

    # A caller's bug: a field JSON cannot encode
    publisher.publish(ProgressEvent(item_id="bad", stage="assess", state="running", percent=33,
                                    status=object()))  # type: ignore[arg-type]
    publisher.flush(timeout_s=30)
    publisher.publish(ProgressEvent(item_id="bad", stage="assess", state="succeeded", percent=50))
    publisher.flush(timeout_s=30)
    publisher.close()

    assert "Could not publish 1 progress events" in caplog.text
    latest = channel.latest("bad")
    assert latest is not None and latest.state == "succeeded"


def test_a_hung_redis_holds_up_one_flush_not_each(tmp_path: Path) -> None:
    # Given a publisher on a Redis of its own that stops answering (SIGSTOP: connected, silent)
    server = LocalRedis(tmp_path / "redis")
    client = redis.Redis.from_url(server.start())
    try:
        channel = ProgressChannel(client, namespace="hung")
        publisher = BackgroundPublisher(channel)
        publisher.publish(ProgressEvent(item_id="LF1", stage="assess", state="queued", percent=30))
        publisher.flush(timeout_s=30)
        pid = server.pid()
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            # When a step hands over (flush) twice while it hangs
            publisher.publish(ProgressEvent(item_id="LF1", stage="assess", state="running", percent=33))
            publisher.flush(timeout_s=0.2)
            publisher.publish(ProgressEvent(item_id="LF1", stage="assess", state="succeeded", percent=50))
            second = threading.Thread(target=publisher.flush, kwargs={"timeout_s": 60})
            second.start()
            second.join(timeout=2)

            # Then only the first waited: the second returned without waiting on the hung send
            # (which lasts until the client's socket timeout, 5 s)
            assert not second.is_alive(), "a second flush waited on the hung Redis"
        finally:
            os.kill(pid, signal.SIGCONT)

        # And once Redis answers, the latest event goes out
        wait_for(lambda: getattr(channel.latest("LF1"), "state", None) == "succeeded", what="the events to go")
        publisher.close()
    finally:
        client.close()
        server.stop()


def test_a_forked_process_publishes_through_a_thread_of_its_own(channel: ProgressChannel) -> None:
    publisher = BackgroundPublisher(channel)
    pid = os.fork()
    if pid == 0:  # The child: the parent's publisher thread did not survive the fork.
        code = 1
        try:
            publisher.publish(ProgressEvent(item_id="forked", stage="assess", state="running", percent=33))
            publisher.close()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    publisher.close()

    assert os.waitstatus_to_exitcode(status) == 0
    latest = channel.latest("forked")
    assert latest is not None and latest.state == "running"


def test_a_delayed_enqueue_publishes_waiting_and_its_move_to_its_queue_once_due_nothing(
    channel: ProgressChannel,
) -> None:
    progress = Progress(channel=channel)
    waiting = probe.message("delayed-first")
    delayed = waiting.copy(queue_name=f"{waiting.queue_name}.DQ")

    progress.before_enqueue(broker, delayed, 1000)
    progress.before_delay_message(broker, MessageProxy(delayed))
    published = channel.latest("delayed-first")
    progress.before_enqueue(broker, waiting, None)  # due: moved to its queue, announced already

    assert published is not None and published.state == "waiting"
    latest = channel.latest("delayed-first")
    assert latest is not None and latest.seq == published.seq


def test_a_failed_delivery_put_back_to_wait_for_the_store_reads_waiting_and_one_retried_reads_retrying(
    channel: ProgressChannel,
) -> None:
    # Given a step-1 delivery that fails (its hooks in a worker thread, as the broker runs them)
    progress = Progress(channel=channel)
    message = probe.message("fails-then-waits")
    progress.before_process_message(broker, MessageProxy(message))
    progress.after_process_message(broker, MessageProxy(message), exception=RuntimeError("store locked"))

    # When it is put back to wait for the store (the same ``retries``: no attempt spent)
    progress.before_enqueue(broker, message.copy(options={WAIT_OPTION: {"waits": 1, "reason": "store"}}), 1000)
    waited = channel.latest("fails-then-waits")
    # and its next delivery fails too, and dramatiq's Retries re-enqueues it with one more retry counted
    progress.before_process_message(broker, MessageProxy(message))
    progress.after_process_message(broker, MessageProxy(message), exception=RuntimeError("upstream busy"))
    progress.before_enqueue(broker, message.copy(options={"retries": 1}), 2000)
    retried = channel.latest("fails-then-waits")

    # Then the wait reads as one, and only the retry as a retry
    assert waited is not None and waited.state == "waiting"
    assert retried is not None and retried.state == "retrying"


def test_a_queued_event_older_than_the_latest_state_is_dropped(channel: ProgressChannel) -> None:
    # Another worker process ran the step and published its final state before this process's
    # publisher sent the step's (earlier) "queued" event.
    channel.publish(ProgressEvent(item_id="late-queued", stage="frames", state="succeeded", percent=100,
                                  message_id="m5", at_ms=2_000, final=True), guard_message_id="m5")

    late = channel.publish(ProgressEvent(item_id="late-queued", stage="frames", state="queued", percent=67,
                                         message_id="m5", at_ms=1_000))
    latest = channel.latest("late-queued")
    newer = channel.publish(ProgressEvent(item_id="late-queued", stage="frames", state="queued", percent=67,
                                          message_id="m6", at_ms=3_000))

    assert late == 0 and latest is not None and latest.final
    assert newer > 0


def test_a_running_step_whose_queued_event_is_still_in_another_process_is_not_dropped(
    channel: ProgressChannel,
) -> None:
    # Given an item whose step 2 succeeded in one worker process, whose publisher has not yet sent
    # step 3's "queued" when another process starts step 3
    item = "cross-process"
    channel.publish(ProgressEvent(item_id=item, stage="thumbnails", state="succeeded", percent=33,
                                  message_id="m2", at_ms=1_000), guard_message_id="m2")

    # When that process's "running" arrives first, then the late "queued", then its success
    running = channel.publish(ProgressEvent(item_id=item, stage="assess", state="running", percent=33,
                                            message_id="m3", at_ms=1_002), guard_message_id="m3")
    queued = channel.publish(ProgressEvent(item_id=item, stage="assess", state="queued", percent=33,
                                           message_id="m3", at_ms=1_001))
    succeeded = channel.publish(ProgressEvent(item_id=item, stage="assess", state="succeeded", percent=50,
                                              message_id="m3", at_ms=1_003), guard_message_id="m3")

    # Then the stream keeps running and succeeded, and drops only the late queued
    assert running > 0 and queued == 0 and succeeded > running
    latest = channel.latest(item)
    assert latest is not None and (latest.stage, latest.state) == ("assess", "succeeded")


def test_a_step_handed_to_another_process_is_put_only_after_its_queued_and_the_success_before_it_went(
    channel: ProgressChannel,
) -> None:
    # Given a worker process whose step 1 of an item just succeeded: its publisher holds the "succeeded"
    item = "handed-over"
    progress = Progress(channel=channel)
    progress.after_worker_boot(broker, None)  # type: ignore[arg-type]  # the worker is not used
    first, second = probe.message(item), make_thumbnails.message(item)
    channel.publish(ProgressEvent(item_id=item, stage="file_info", state="running", percent=0,
                                  message_id=first.message_id), guard_message_id=first.message_id)
    done = MessageProxy(first)
    done.options[TRANSITION_OPTION] = {"from": Status.PENDING_FILE_INFO.value,
                                       "to": Status.FILE_INFO_COMPLETE.value, "applied": True}
    progress.after_process_message(broker, done, result={"status": Status.FILE_INFO_COMPLETE.value})

    # When it sends step 2 on, and another process publishes step 2's "running" the moment it is put
    progress.before_enqueue(broker, second, None)
    running = channel.publish(
        ProgressEvent(item_id=item, stage="thumbnails", state="running", message_id=second.message_id,
                      percent=percent_before(step_named("thumbnails"))), guard_message_id=second.message_id)
    progress.after_worker_shutdown(broker, None)  # type: ignore[arg-type]

    # Then that "running" is kept: this process's "succeeded" of step 1 and "queued" of step 2 came first
    assert running > 0
    latest = channel.latest(item)
    assert latest is not None and (latest.stage, latest.state, latest.seq) == ("thumbnails", "running", running)


@pytest.mark.parametrize(("latest_state", "stage", "percent", "final"), [
    ("succeeded", "file_info", 0, False),  # a stale duplicate of an earlier step
    ("queued", "assess", 33, False),  # the latest is another message's queued, not a success
    ("succeeded", "frames", 100, True),  # the item is finished
], ids=["earlier step", "after a queued", "after the final state"])
def test_a_running_of_another_message_is_still_dropped_otherwise(
    channel: ProgressChannel, latest_state: str, stage: str, percent: int, final: bool,
) -> None:
    item = f"stale-running-{latest_state}-{final}"
    channel.publish(ProgressEvent(item_id=item, stage="thumbnails", state=latest_state, percent=33,
                                  message_id="m2", at_ms=1_000, final=final), guard_message_id=None)

    seq = channel.publish(ProgressEvent(item_id=item, stage=stage, state="running", percent=percent,
                                        message_id="m9", at_ms=1_001), guard_message_id="m9")

    assert seq == 0


def test_news_of_a_redelivered_duplicate_does_not_replace_the_final_state(channel: ProgressChannel) -> None:
    channel.publish(ProgressEvent(item_id="done-twice", stage="frames", state="succeeded", percent=100,
                                  message_id="m5", final=True), guard_message_id="m5")

    seq = channel.publish(ProgressEvent(item_id="done-twice", stage="frames", state="skipped", percent=67,
                                        message_id="m5"), guard_message_id="m5")

    latest = channel.latest("done-twice")
    assert seq == 0 and latest is not None and latest.final and latest.state == "succeeded"


def test_a_delivery_held_for_a_paused_queue_is_news_after_an_earlier_one_put_itself_back_on_the_thread(
    channel: ProgressChannel,
) -> None:
    # Given a step message that put itself back to wait (as a source-settle or rate-limit wait does) and skipped
    progress = Progress(channel=channel)
    sent = probe.message("held-after-wait")
    running = MessageProxy(sent)
    progress.before_process_message(broker, running)
    again = sent.copy(queue_name=f"{sent.queue_name}.DQ")
    progress.before_enqueue(broker, again, 1000)
    progress.after_enqueue(broker, again, 1000)
    progress.after_skip_message(broker, running)

    # When its next delivery, on the same thread, is held for its paused queue (QueuePauses skips it before
    # Progress sees it start)
    held = MessageProxy(again.copy(queue_name=sent.queue_name))
    held.options[HELD_OPTION] = sent.queue_name
    progress.after_skip_message(broker, held)

    # Then its stream says "held"
    latest = channel.latest("held-after-wait")
    assert latest is not None and latest.state == "held"


@pytest.mark.parametrize("put", [True, False], ids=["put back", "put failed"])
def test_a_delivery_skipped_after_putting_itself_back_is_no_news_unless_the_put_failed(
    channel: ProgressChannel, put: bool,
) -> None:
    # Given a running step message that puts itself back to wait (as a rate-limit wait does), or fails to
    progress = Progress(channel=channel)
    sent = probe.message(f"skip-{put}")
    running = MessageProxy(sent)
    progress.before_process_message(broker, running)
    again = sent.copy(queue_name=f"{sent.queue_name}.DQ")
    progress.before_enqueue(broker, again, 1000)
    if put:
        progress.after_enqueue(broker, again, 1000)

    # When this delivery is skipped
    progress.after_skip_message(broker, running)

    # Then its stream says "waiting" (it is still coming), or "skipped" when it did not go back
    latest = channel.latest(f"skip-{put}")
    assert latest is not None and latest.state == ("waiting" if put else "skipped")

    # And a later delivery on the same thread, skipped for good, is news
    later = MessageProxy(again.copy(queue_name=sent.queue_name))
    progress.before_process_message(broker, later)
    progress.after_skip_message(broker, later)
    latest = channel.latest(f"skip-{put}")
    assert latest is not None and latest.state == "skipped"
