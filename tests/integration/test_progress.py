"""Progress through Redis pub/sub: every stage in order, the latest state first for late subscribers."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from actors import broker
from autolog.context import Context
from autolog.progress import ProgressChannel, ProgressEvent, format_sse, stream_progress
from autolog.store import NewItem
from pipelines import actions
from tests.conftest import SampleClips

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

    # When the item runs through steps 1-5
    actions.submit(context, [NewItem(item_id, str(test_media.path("cuts_noaudio.mp4")), force_resume=True)])
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


def test_quiet_streams_yield_keep_alives_until_their_deadline(channel: ProgressChannel) -> None:
    started = time.monotonic()

    chunks = [format_sse(event) for event in channel.stream("nothing-happens", idle_s=0.05, max_duration_s=0.4)]

    assert chunks and set(chunks) == {b": keep-alive\n\n"}
    assert time.monotonic() - started < 5
