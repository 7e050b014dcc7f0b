"""User actions on items, through a real worker: prompt, retry, cancel, force-resume-all."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from actors import broker
from autolog import broker_state
from autolog.context import Context
from autolog.errors import InvalidSource, ItemExists, ItemNotFound, TransitionRefused
from autolog.statuses import STEPS, Status
from autolog.store import SEND_WITHIN_S, NewEvent, NewItem
from autolog.store import outbox as outbox_module
from pipelines import actions
from pipelines.footage import outbox_messages
from tests.conftest import SampleClips, SkippingClock, wait_for

Drain = Callable[..., None]


def test_prompt_on_an_item_not_waiting_is_refused(
    context: Context, test_media: SampleClips, drain: Drain, unique_id: Callable[[str], str]
) -> None:
    item_id = unique_id("busy")
    actions.submit(context, [NewItem(item_id, str(test_media.path("cuts_noaudio.mp4")), force_resume=True)])
    drain()

    with pytest.raises(TransitionRefused, match="7 - Avid Description"):
        actions.prompt(context, item_id, "too late")


def test_prompt_on_an_unknown_item_is_not_found(context: Context) -> None:
    with pytest.raises(ItemNotFound):
        actions.prompt(context, "nobody", "hello")


def test_source_outside_the_media_roots_stores_nothing(context: Context, unique_id: Callable[[str], str]) -> None:
    item_id = unique_id("escape")

    with pytest.raises(InvalidSource, match="outside the media roots"):
        actions.submit(context, [NewItem(item_id, "/etc/passwd")])

    with pytest.raises(ItemNotFound):
        context.store.items.get(item_id)


def test_a_submitted_items_timeline_reads_created_then_queued(
    context: Context, test_media: SampleClips, unique_id: Callable[[str], str],
) -> None:
    # The "queued" event is at its message's timestamp (ms), made before the items are stored
    ids = [unique_id(f"order{index}") for index in range(20)]
    actions.submit(context, [NewItem(item_id, str(test_media.path("cuts_noaudio.mp4"))) for item_id in ids])

    for item_id in ids:
        assert [event.event for event in context.store.timeline.for_item(item_id)][:2] == ["created", "queued"]


def test_a_prompted_items_timeline_reads_prompted_then_queued(
    context: Context, test_media: SampleClips, unique_id: Callable[[str], str],
) -> None:
    # A trial read "queued analysis" before "prompted": the queued event is at its message's timestamp (ms),
    # made before the prompt was stored
    ids = [unique_id(f"prompt{index}") for index in range(10)]
    context.store.items.create([NewItem(item_id, str(test_media.path("cuts_noaudio.mp4"))) for item_id in ids])
    for item_id in ids:
        context.store.items.update(item_id, status=Status.AWAITING_USER_INPUT.value)

    for item_id in ids:
        actions.prompt(context, item_id, "Describe the bars")

    for item_id in ids:
        events = [(event.event, event.step) for event in context.store.timeline.for_item(item_id)]
        assert events[-2:] == [("prompted", None), ("queued", "analysis")], events


def test_a_move_in_the_same_millisecond_as_the_items_last_event_reads_after_it(
    context: Context, test_media: SampleClips, unique_id: Callable[[str], str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A step run's "started", then its restart from step 1 within the same millisecond (the source changed)
    # read "source_changed" first: the move was stamped down to its message's timestamp, in whole ms
    item_id = unique_id("samems")
    context.store.items.create([NewItem(item_id, str(test_media.path("cuts_noaudio.mp4")))])
    context.store.items.update(item_id, status=Status.AWAITING_USER_INPUT.value)
    [created] = context.store.timeline.for_item(item_id)
    last_s = (created.at.timestamp() // 0.001 + 1) * 0.001 + 0.0006  # 0.6 ms into the millisecond after it
    wait_for(lambda: time.time() > last_s + 0.002, what="that millisecond to be past")
    context.store.timeline.record(NewEvent(item_id=item_id, event="resume_requested",
                                           at=datetime.fromtimestamp(last_s, UTC)))
    # The prompt's message is made in that millisecond (dramatiq stamps it from time.time, in ms)
    monkeypatch.setattr(time, "time", lambda: last_s)

    actions.prompt(context, item_id, "Describe the bars")

    monkeypatch.undo()
    events = [(event.event, event.step) for event in context.store.timeline.for_item(item_id)]
    assert events[-3:] == [("resume_requested", None), ("prompted", None), ("queued", "analysis")], events


def test_resubmitting_an_id_is_refused_and_keeps_the_first(
    context: Context, test_media: SampleClips, unique_id: Callable[[str], str]
) -> None:
    item_id = unique_id("twice")
    actions.submit(context, [NewItem(item_id, str(test_media.path("cuts_noaudio.mp4")))])

    with pytest.raises(ItemExists):
        actions.submit(context, [NewItem(item_id, str(test_media.path("speech.mp4")))])

    assert context.store.items.get(item_id).source.endswith("cuts_noaudio.mp4")


def submitted_copy(context: Context, test_media: SampleClips, drain: Drain, item_id: str, clip: str) -> Path:
    """Copy the sample ``clip`` under the media root as ``item_id``'s file, submit it with force-resume, drain."""
    path = test_media.root / f"{item_id}.mp4"
    shutil.copy(test_media.path(clip), path)
    actions.submit(context, [NewItem(item_id, str(path), force_resume=True)])
    drain()
    return path


def test_retry_after_fixing_the_source_completes_a_dead_lettered_item(
    context: Context, test_media: SampleClips, drain: Drain, unique_id: Callable[[str], str]
) -> None:
    item_id = unique_id("fixed")
    path = submitted_copy(context, test_media, drain, item_id, "not_media.mp4")
    assert context.store.items.get(item_id).dead_lettered

    assert dead_letters_of(item_id) == 1

    shutil.copy(test_media.path("cuts_noaudio.mp4"), path)
    actions.retry(context, item_id)
    drain()

    item = context.store.items.get(item_id)
    assert (item.status, item.dead_lettered, item.error) == (Status.AVID_DESCRIPTION, False, None)
    assert dead_letters_of(item_id) == 0, "its dead letter is no failure to act on any more"


def dead_letters_of(item_id: str) -> int:
    """Count the dead letters of ``item_id`` in the step queues' dead-letter queues."""
    return sum(1 for step in STEPS
               for entry in broker_state.dead_letters(broker.client, broker.namespace, step.queue_name, limit=1000)
               if (message := broker_state.decode_message(entry.data)) is not None and message.item_id == item_id)


@pytest.mark.parametrize("way", ["rerun", "delete"])
def test_a_rerun_or_a_delete_takes_the_items_dead_letters_away(
    context: Context, test_media: SampleClips, drain: Drain, unique_id: Callable[[str], str], way: str,
) -> None:
    # Given two dead-lettered items, one of which is then rerun or deleted
    gone, kept = unique_id("gone"), unique_id("kept")
    for item_id in (gone, kept):
        submitted_copy(context, test_media, drain, item_id, "not_media.mp4")
    assert dead_letters_of(gone) == dead_letters_of(kept) == 1

    if way == "rerun":
        actions.rerun(context, gone, "1")
    else:
        actions.delete(context, gone)

    assert dead_letters_of(gone) == 0
    assert dead_letters_of(kept) == 1


def test_retry_of_a_finished_item_is_refused(
    context: Context, test_media: SampleClips, drain: Drain, unique_id: Callable[[str], str]
) -> None:
    item_id = unique_id("done")
    actions.submit(context, [NewItem(item_id, str(test_media.path("cuts_noaudio.mp4")), force_resume=True)])
    drain()

    with pytest.raises(TransitionRefused):
        actions.retry(context, item_id)


def test_a_moved_source_refuses_rerun_retry_and_uncancel_and_changes_nothing(
    context: Context, test_media: SampleClips, drain: Drain, unique_id: Callable[[str], str]
) -> None:
    # Given a logged item whose file was then moved away
    item_id = unique_id("moved")
    path = submitted_copy(context, test_media, drain, item_id, "cuts_noaudio.mp4")
    path.rename(path.with_name(f"{item_id}_renamed.mp4"))
    before = len(context.store.timeline.for_item(item_id))

    with pytest.raises(TransitionRefused, match=f"its source {path}: file not found; put the file back"):
        actions.rerun(context, item_id, "3")
    item = context.store.items.get(item_id)
    assert (item.status, item.dead_lettered) == (Status.AVID_DESCRIPTION, False), "still logged, exports still there"
    assert len(context.store.timeline.for_item(item_id)) == before

    # An item waiting for its prompt is refused its prompt and its resume, which run steps 4 to 6
    context.store.items.transition(item_id, Status.AVID_DESCRIPTION, Status.AWAITING_USER_INPUT)
    for text in ("the harbour", None):
        with pytest.raises(TransitionRefused, match="file not found"):
            actions.prompt(context, item_id, text)
    assert context.store.items.get(item_id).status is Status.AWAITING_USER_INPUT
    context.store.items.transition(item_id, Status.AWAITING_USER_INPUT, Status.AVID_DESCRIPTION)

    # An item stopped at a step is refused too, by retry and by uncancel
    context.store.items.transition(item_id, Status.AVID_DESCRIPTION, Status.THUMBNAILS_COMPLETE)
    with pytest.raises(TransitionRefused, match="file not found"):
        actions.retry(context, item_id)
    actions.cancel(context, item_id)
    with pytest.raises(TransitionRefused, match="file not found"):
        actions.uncancel(context, item_id)
    assert context.store.items.get(item_id).cancelled

    # Put back, the same requests run
    path.with_name(f"{item_id}_renamed.mp4").rename(path)
    actions.uncancel(context, item_id)
    drain()
    assert context.store.items.get(item_id).status is Status.AVID_DESCRIPTION
    actions.rerun(context, item_id, "3")
    drain()
    assert context.store.items.get(item_id).status is Status.AVID_DESCRIPTION


def test_cancelled_item_skips_its_queued_steps(
    context: Context, test_media: SampleClips, unique_id: Callable[[str], str], worker: object, drain: Drain
) -> None:
    item_id = unique_id("stop")
    worker.pause()  # type: ignore[attr-defined]
    actions.submit(context, [NewItem(item_id, str(test_media.path("cuts_noaudio.mp4")), force_resume=True)])
    actions.cancel(context, item_id)
    worker.resume()  # type: ignore[attr-defined]
    drain()

    item = context.store.items.get(item_id)
    assert (item.status, item.cancelled) == (Status.PENDING_FILE_INFO, True)
    kinds = [event.event for event in context.store.timeline.for_item(item_id)]
    assert "skipped" in kinds and "started" not in kinds


def test_force_resume_all_reprocesses_from_step_3(
    context: Context, test_media: SampleClips, drain: Drain, unique_id: Callable[[str], str]
) -> None:
    waiting, finished = unique_id("waiting"), unique_id("finished")
    actions.submit(context, [NewItem(waiting, str(test_media.path("cuts_noaudio.mp4"))),
                             NewItem(finished, str(test_media.path("cuts_noaudio.mp4")), force_resume=True)])
    drain()
    assert context.store.items.get(waiting).status is Status.AWAITING_USER_INPUT

    moved = actions.force_resume_all(context)
    drain()

    assert sorted(moved) == sorted([waiting, finished])
    for item_id in (waiting, finished):
        assert context.store.items.get(item_id).status is Status.AVID_DESCRIPTION
        assert context.store.results.counts(item_id)["frames"] == 4


def test_a_request_that_stalled_past_its_send_deadline_leaves_the_message_to_the_relay(
    context: Context, unique_id: Callable[[str], str],
) -> None:
    # Given an item stored with its first message by a request that then stalled past SEND_WITHIN_S
    item_id = unique_id("late")
    [message] = outbox_messages([item_id], Status.PENDING_FILE_INFO, sources={item_id: "/footage/late.mov"})
    late = replace(message, send_by_s=time.time() - 1)
    context.store.items.create([NewItem(item_id, "/footage/late.mov")], messages=[late])

    # When it goes on to send it
    sent = actions.send(context, [late])

    # Then nothing went to Redis: the row waits for the relay, and the timeline says so
    assert sent == set()
    assert [pending.message_id for pending in context.store.outbox.unsent()] == [late.message_id]
    in_redis = broker.client.hvals(f"{broker.namespace}:probe.msgs")
    assert late.message_id not in [json.loads(data)["message_id"] for data in in_redis]
    deferred = [event for event in context.store.timeline.for_item(item_id) if event.event == "queue_deferred"]
    assert [(event.message_id, "stalled" in event.detail["reason"]) for event in deferred] == [(late.message_id, True)]


def test_a_request_whose_hooks_store_write_outlasts_the_send_deadline_leaves_the_message_to_the_relay(
    context: Context, unique_id: Callable[[str], str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an item stored with its first message, and a request whose enqueue hooks' store write
    # (the "queued" events) waits past the send deadline (a locked database, a stalled server)
    item_id = unique_id("slowhooks")
    messages = outbox_messages([item_id], Status.PENDING_FILE_INFO, sources={item_id: "/footage/slow.mov"})
    context.store.items.create([NewItem(item_id, "/footage/slow.mov")], messages=messages)
    clock = SkippingClock()
    monkeypatch.setattr(outbox_module, "time", clock)
    hooks = actions._enqueue_hooks

    def stalled_hooks(*args: Any) -> None:
        hooks(*args)
        clock.skipped_s = SEND_WITHIN_S + 1

    monkeypatch.setattr(actions, "_enqueue_hooks", stalled_hooks)

    # When it sends the message
    sent = actions.send(context, messages)

    # Then it went to the relay, not to Redis
    assert sent == set()
    assert [pending.message_id for pending in context.store.outbox.unsent()] == [messages[0].message_id]
    in_redis = broker.client.hvals(f"{broker.namespace}:probe.msgs")
    assert messages[0].message_id not in [json.loads(data)["message_id"] for data in in_redis]
    assert "queue_deferred" in [event.event for event in context.store.timeline.for_item(item_id)]
