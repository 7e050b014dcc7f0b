"""Each step message is recorded as queued exactly once, whether its enqueue or its sender's status write did it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from autolog.context import Context
from autolog.statuses import Status
from autolog.store import NewItem
from pipelines import actions
from tests.conftest import SampleClips


def test_every_step_is_queued_once_before_it_starts(
    context: Context, drain: Callable[..., None], test_media: SampleClips, unique_id: Callable[[str], str],
) -> None:
    # Given an item run through every step with a picture (queued by the intake, by pipeline links
    # and by branch points)
    item_id = unique_id("hops")
    actions.submit(context, [NewItem(item_id, str(test_media.path("cuts_audio.mp4")), force_resume=True)])
    drain()
    assert context.store.items.get(item_id).status is Status.AVID_DESCRIPTION

    # Then each step's message has one queued event, at or before its start, and nothing else is doubled
    timeline = context.store.timeline.for_item(item_id)
    queued = {event.message_id: event for event in timeline if event.event == "queued"}
    started = {event.message_id: event for event in timeline if event.event == "started"}
    assert Counter(event.step for event in timeline if event.event == "queued") == Counter(
        {"file_info": 1, "thumbnails": 1, "assess": 1, "analysis": 1, "frames": 1, "transcription": 1})
    assert set(queued) == set(started)
    assert all(queued[message_id].at <= started[message_id].at for message_id in queued)
    # And each start's wait is its time in the queue, not the run of the step before it (a pipeline's
    # later message was built with the pipeline; 2 ms: the two clocks' rounding)
    for message_id, start in started.items():
        in_queue_ms = (start.at - queued[message_id].at).total_seconds() * 1000
        assert start.wait_ms is not None and start.wait_ms <= in_queue_ms + 2, (start.step, start.wait_ms, in_queue_ms)
    # And the timeline reads each step's success before the "queued" of the step it sent
    order = [(event.event, event.step) for event in timeline if event.event in ("queued", "succeeded")]
    for earlier, later in (("file_info", "thumbnails"), ("thumbnails", "assess"), ("assess", "analysis"),
                           ("analysis", "frames"), ("frames", "transcription")):
        assert order.index(("succeeded", earlier)) < order.index(("queued", later)), order
