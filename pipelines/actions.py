"""What users do to items: submit, prompt, resume, retry, cancel, reprocess from step 3.

Every action stores its change first and enqueues second, so an item accepted while
Redis is down is kept and picked up later. A change that calls for a step (a new item, a
prompt, a reprocess) stores that step's message in the outbox in the same transaction,
so a crash or a Redis outage after the commit leaves it to a worker's outbox relay.
"""

from __future__ import annotations

from collections.abc import Sequence

from autolog.context import Context
from autolog.errors import TransitionRefused
from autolog.sources import validate_source
from autolog.statuses import ASSESS, Status, step_for_status
from autolog.store import ItemView, NewEvent, NewItem
from pipelines.decisions import has_picture_steps
from pipelines.footage import enqueue_from, outbox_messages, send_stored

#: Statuses from which "force resume all" sends an item back through step 3.
REPROCESSABLE = frozenset({
    Status.AWAITING_USER_INPUT, Status.CREATING_FRAMES, Status.PROCESSING_FRAME_INFO,
    Status.GENERATING_DESCRIPTION, Status.AVID_DESCRIPTION,
})


def submit(context: Context, items: Sequence[NewItem]) -> list[ItemView]:
    """Validate sources, store the items in one transaction, then queue each from step 1.

    Raises:
        InvalidSource: a source is outside the media roots; nothing is stored.
        ItemExists: an id is taken; nothing is stored.
    """
    roots = context.settings.resolved_media_roots
    checked = [NewItem(id=item.id, source=validate_source(item.source, roots), force_resume=item.force_resume,
                       prompt=item.prompt) for item in items]
    # Each item and its first message commit together: a crash or a Redis outage after the
    # commit leaves the message in the outbox, and a worker's relay sends it.
    messages = outbox_messages([item.id for item in checked], Status.PENDING_FILE_INFO)
    created = context.store.items.create(checked, messages=messages)
    send_stored(context, messages)
    return created


def prompt(context: Context, item_id: str, text: str | None) -> ItemView:
    """Release an item waiting at ``Awaiting User Input`` to step 4, with the user's prompt.

    Raises:
        ItemNotFound: no such item.
        TransitionRefused: the item is not waiting for input.
    """
    changes = {"prompt": text} if text is not None else {}
    event = NewEvent(item_id=item_id, event="prompted" if text is not None else "resumed",
                     from_status=Status.AWAITING_USER_INPUT.value, to_status=Status.CREATING_FRAMES.value)
    messages = outbox_messages([item_id], Status.CREATING_FRAMES)
    if not context.store.items.transition(item_id, Status.AWAITING_USER_INPUT, Status.CREATING_FRAMES,
                                          event=event, changes=changes, messages=messages):
        raise TransitionRefused(item_id, Status.AWAITING_USER_INPUT.value,
                                context.store.items.get(item_id).status.value)
    send_stored(context, messages)
    return context.store.items.get(item_id)


def retry(context: Context, item_id: str) -> ItemView:
    """Queue again the step an item stopped at, typically after it failed or was dead-lettered.

    Raises:
        ItemNotFound: no such item.
        TransitionRefused: no step runs from the item's status (waiting for input, or done).
    """
    item = context.store.items.get(item_id)
    step = step_for_status(item.status)
    if step is None or item.cancelled:
        raise TransitionRefused(item_id, "a status a step runs from", item.status.value)
    context.store.items.update(item_id, dead_lettered=False, event=NewEvent(
        item_id=item_id, event="retry_requested", step=step.name, from_status=item.status.value))
    enqueue_from(item_id, item.status)
    return context.store.items.get(item_id)


def cancel(context: Context, item_id: str) -> ItemView:
    """Stop an item: queued and future steps skip it; a running step's status write is refused.

    Raises:
        ItemNotFound: no such item.
    """
    context.store.items.update(item_id, cancelled=True, event=NewEvent(item_id=item_id, event="cancelled"))
    return context.store.items.get(item_id)


def reprocess_from_assess(context: Context, item: ItemView) -> bool:
    """Send one item back to step 3 with force-resume set; False if it moved meanwhile or has no picture."""
    if not has_picture_steps(item):
        return False
    event = NewEvent(item_id=item.id, event="force_resumed", step=ASSESS.name, from_status=item.status.value,
                     to_status=Status.THUMBNAILS_COMPLETE.value)
    messages = outbox_messages([item.id], Status.THUMBNAILS_COMPLETE)
    if not context.store.items.transition(item.id, item.status, Status.THUMBNAILS_COMPLETE, event=event,
                                          changes={"force_resume": True}, messages=messages):
        return False
    send_stored(context, messages)
    return True


def force_resume_all(context: Context, *, page_size: int = 500) -> list[str]:
    """Reprocess from step 3, with force-resume, every item step 3 has already run for.

    Audio-only items are left alone: step 3 never ran for them.
    """
    moved: list[str] = []
    for status in sorted(REPROCESSABLE):
        after: str | None = None
        while page := context.store.items.list(status=status, after_id=after, limit=page_size):
            moved.extend(item.id for item in page if not item.cancelled and reprocess_from_assess(context, item))
            after = page[-1].id
    return moved
