"""A paused queue holds its messages back until it is resumed; nothing fails or retries."""

from __future__ import annotations

from collections.abc import Callable

from actors import broker
from autolog.context import Context
from autolog.statuses import Status
from autolog.store import NewItem
from pipelines import actions
from tests.conftest import SampleClips, wait_for
from web.control.queues import Queues


def test_paused_queue_holds_the_step_until_resumed(
    context: Context, test_media: SampleClips, drain: Callable[..., None], unique_id: Callable[[str], str]
) -> None:
    queues = Queues(broker.client, namespace=broker.namespace, declared=sorted(broker.get_declared_queues()))
    queues.pause("thumbnails")
    item_id = unique_id("paused")

    actions.submit(context, [NewItem(item_id, str(test_media.path("cuts_noaudio.mp4")), force_resume=True)])
    timeline = context.store.timeline
    wait_for(lambda: any(event.event == "deferred" and event.detail == {"queue": "thumbnails.DQ", "waits": 1,
                                                                        "reason": "queue paused", "wait_ms": 2000}
                         for event in timeline.for_item(item_id)), timeout_s=30, what="the step to be held back")
    assert context.store.items.get(item_id).status is Status.FILE_INFO_COMPLETE

    queues.resume("thumbnails")
    drain()

    item = context.store.items.get(item_id)
    assert (item.status, item.error) == (Status.AVID_DESCRIPTION, None)
    kinds = [(event.event, event.step) for event in timeline.for_item(item_id)]
    assert ("failed", "thumbnails") not in kinds and ("retried", "thumbnails") not in kinds
    assert kinds.count(("started", "thumbnails")) == 1
    assert kinds.count(("deferred", "thumbnails")) == 1
