"""What users do to items: queue, submit, prompt, resume, retry, cancel, uncancel, rerun, delete.

One home per use case, called alike by the API, the CLI, the webhooks and discovery. Every
action stores its change and the message that must follow it in one transaction (the
outbox, ``autolog.store.outbox``), then sends the message. With Redis down the message stays
in the outbox and a worker's relay sends it once Redis is back; the item gets a
``queue_deferred`` event and the answer says ``queued: false`` (with the job id it will have).
An item gets at most one message in flight at a time: queueing an item that already has one
(in Redis or in the outbox) answers with that message's id and ``already_queued``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import shutil
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dramatiq
import redis

from actors import broker
from autolog.broker_state import drop_dead_letters_of, enqueue_many, messages_in_flight, stored_message
from autolog.context import Context
from autolog.errors import InvalidSource, ItemCancelled, MediaMissing, TransitionRefused, UnknownStep
from autolog.source_state import SourceFingerprint
from autolog.sources import check_source, is_remote, local_path
from autolog.statuses import ASSESS, ROUTE_ACTOR, STEPS, Status, Step, step_for_status, step_named
from autolog.store import ItemView, NewEvent, NewItem, PendingMessage
from middleware import Progress, committed_queued
from pipelines.decisions import has_picture_steps
from pipelines.footage import first_message, outbox_messages

logger = logging.getLogger(__name__)

#: Statuses from which "force resume all" sends an item back through step 3.
REPROCESSABLE = frozenset({
    Status.AWAITING_USER_INPUT, Status.CREATING_FRAMES, Status.PROCESSING_FRAME_INFO,
    Status.GENERATING_DESCRIPTION, Status.AVID_DESCRIPTION,
})

#: How long one request may hold an item's queueing lock, in milliseconds.
QUEUE_LOCK_MS = 10_000

#: How often a request waiting for another request's queueing lock looks again, in seconds.
LOCK_POLL_S = 0.02


@dataclass(frozen=True)
class Queued:
    """One item after an action that queues: where it stands and which message carries it.

    ``job_id`` is the id of the item's first message, or of the message already in flight
    when ``already_queued``. ``queued`` is False when Redis was down: the item and its
    message are stored, and a worker's outbox relay sends the message once Redis is back.
    """

    item: ItemView
    job_id: str | None
    queued: bool
    already_queued: bool = False
    created: bool = False
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict: the item, its job id and what happened."""
        data: dict[str, Any] = {"item": self.item.to_dict(), "job_id": self.job_id, "queued": self.queued,
                                "already_queued": self.already_queued, "created": self.created}
        if self.reason:
            data["reason"] = self.reason
        return data


def _runnable_actors(item: ItemView) -> set[str]:
    step = step_for_status(item.status)
    return {ROUTE_ACTOR} | ({step.actor_name} if step else set())


def in_flight(context: Context, items: Sequence[ItemView]) -> dict[str, str]:
    """Return, per item that has one, the id of its message in the outbox, queued, delayed, held or running.

    Only messages that would run (the step of the item's status, or the routing callback
    that follows a branch point) count; a stale message for a step the item left is skipped
    by the worker and does not hold the item.

    Raises:
        redis.RedisError: Redis could not be reached.
    """
    wanted = {item.id: _runnable_actors(item) for item in items}
    found: dict[str, str] = {}
    if not wanted:
        return found
    stored = (stored_message(pending.message) for pending in context.store.outbox.unsent())
    in_redis = messages_in_flight(broker.client, broker.namespace, sorted(broker.get_declared_queues()))
    for message in itertools.chain(stored, in_redis):
        item_id = message.item_id if message else None
        if message and item_id in wanted and item_id not in found and message.actor in wanted[item_id]:
            found[item_id] = message.message_id
    return found


def _lock_key(item_id: str) -> str:
    return f"{broker.namespace}:autolog.queueing:{item_id}"


def send(context: Context, messages: Sequence[PendingMessage]) -> set[str]:
    """Send messages whose outbox rows just committed; clear the sent rows; return the ids sent.

    The messages go to Redis in one round trip, and the enqueue hooks' timeline events and
    progress in one transaction and one round trip, so a batch costs about what one does.
    On a Redis error the messages stay in the outbox, where a worker's relay sends them once
    Redis is back, and their items get a ``queue_deferred`` event. So do messages past their
    send deadline (``PendingMessage.sendable``: this request stalled, before or during the
    hooks' store write): a relay may have sent them already.
    """
    messages = _on_time(context, messages)
    ready = [message for message in messages if message.delay_ms is None]
    prepared = [dramatiq.Message(**message.message).copy(options={"redis_message_id": str(uuid.uuid4())})
                for message in ready]
    sent: list[str] = []
    try:
        # Redis down: no hook may record a ``queued`` that did not happen.
        broker.client.ping()
        # The enqueue hooks run before the put, not after as in ``Broker.enqueue``: a worker
        # taking a message at once must find its ``queued`` event and progress already there.
        _enqueue_hooks(context, prepared)
        # The hooks wrote to the store, which may have kept this request waiting: the deadline again.
        on_time = {message.message_id for message in _on_time(context, ready)}
        put = [message for message in prepared if message.message_id in on_time]
        enqueue_many(broker, [(message.queue_name, message.options["redis_message_id"], message.encode())
                              for message in put])
        sent.extend(message.message_id for message in put)
        for delayed in messages:
            if delayed.delay_ms is not None and _on_time(context, [delayed]):
                broker.enqueue(dramatiq.Message(**delayed.message), delay=delayed.delay_ms)
                sent.append(delayed.message_id)
    except redis.RedisError as ex:
        unsent = [message for message in messages if message.message_id not in sent]
        logger.warning("Redis is unavailable; %d message(s) left in the outbox for the relay: %s", len(unsent), ex)
        _deferred(context, unsent, f"Redis unavailable: {ex}; the outbox keeps the message")
    context.store.outbox.sent(sent)
    return set(sent)


def _on_time(context: Context, messages: Sequence[PendingMessage]) -> list[PendingMessage]:
    """Return the messages still within their send deadline; defer the others to the relay (``queue_deferred``)."""
    on_time: list[PendingMessage] = []
    late: list[PendingMessage] = []
    for message in messages:
        (on_time if message.sendable() else late).append(message)
    if late:
        logger.warning("%d message(s) left in the outbox for the relay: this request stalled past their deadline.",
                       len(late))
        _deferred(context, late, "this request stalled past its send deadline; the outbox relay sends the message")
    return on_time


def _deferred(context: Context, messages: Sequence[PendingMessage], reason: str) -> None:
    """Record ``queue_deferred`` on the items of messages left in the outbox for the relay."""
    context.store.timeline.record_many([
        NewEvent(item_id=str(message.message["args"][0]), event="queue_deferred", message_id=message.message_id,
                 detail={"reason": reason}) for message in messages])


def _enqueue_hooks(context: Context, messages: Sequence[dramatiq.Message[Any]]) -> None:
    """Emit the enqueue hooks (before, then after) of messages put in one batch, their writes batched too."""
    progress = next((middleware for middleware in broker.middleware if isinstance(middleware, Progress)), None)
    try:
        with context.store.timeline.batched(), progress.pipelined() if progress else contextlib.nullcontext():
            for message in messages:
                broker.emit_before("enqueue", message, None)
                broker.emit_after("enqueue", message, None)
    except redis.RedisError as ex:
        # Progress is advisory; the messages are queued and their timeline is written.
        logger.warning("Could not publish the progress of %d queued message(s): %s", len(messages), ex)


def _answers(items: Sequence[ItemView], messages: Sequence[PendingMessage], sent: set[str], *,
             created: bool) -> list[Queued]:
    first = {str(message.message["args"][0]): message.message_id for message in messages}
    return [Queued(item=item, job_id=first.get(item.id), queued=first.get(item.id) in sent, created=created)
            for item in items]


def queue_items(context: Context, items: Sequence[ItemView], *, created: bool = False) -> list[Queued]:
    """Queue each item from its status unless a message already carries it.

    Items nothing runs from (waiting for a prompt, done) are answered with a reason and not
    queued. The messages go to the outbox in one transaction, then to Redis; the answers
    keep the order of ``items``. An item another request is queueing at this moment (its
    queueing lock is taken) is looked at again once that request lets go, so its answer
    names the message that request sent, or queues it if that request sent none.
    """
    answers, lost = _queue_once(context, items, created=created)
    deadline = time.monotonic() + 2 * QUEUE_LOCK_MS / 1000
    while lost and time.monotonic() < deadline:
        _wait_for_locks(lost, deadline)
        fresh = context.store.items.get_many(lost)
        for item_id in [item_id for item_id in lost if item_id not in fresh]:
            answers[item_id] = replace(answers[item_id], reason="deleted while it was being queued")
        retried, lost = _queue_once(context, [fresh[item_id] for item_id in lost if item_id in fresh],
                                    created=created)
        answers.update(retried)
    return [answers[item.id] for item in items]


def _queue_once(context: Context, items: Sequence[ItemView], *, created: bool) -> tuple[dict[str, Queued], list[str]]:
    """Queue the items no message carries and whose queueing lock is free; return the answers and the others' ids.

    The ids returned are of items another request holds the lock of; their answers say so
    (not queued, with a reason) until they are looked at again.
    """
    answers: dict[str, Queued] = {}
    runnable = []
    for item in items:
        if step_for_status(item.status) is None:
            answers[item.id] = Queued(item=item, job_id=None, queued=False, created=created,
                                      reason=f"nothing runs from {item.status.value!r}")
        else:
            runnable.append(item)
    try:
        busy = in_flight(context, runnable)
        candidates = [item for item in runnable if item.id not in busy]
        with broker.client.pipeline(transaction=False) as pipe:
            for item in candidates:
                pipe.set(_lock_key(item.id), "1", nx=True, px=QUEUE_LOCK_MS)
            locked = [bool(got) for got in pipe.execute()]
    except redis.RedisError:
        # Nothing can be in Redis's flight now; the outbox (read above or not) is checked by
        # its relay's ids: a message sent twice keeps its id and runs once.
        busy, candidates, locked = {}, runnable, [True] * len(runnable)
    for item in runnable:
        if item.id in busy:
            answers[item.id] = Queued(item=item, job_id=busy[item.id], queued=True, already_queued=True,
                                      created=created)
    free, lost = [], []
    for item, got_lock in zip(candidates, locked, strict=True):
        if got_lock:
            free.append(item)
        else:
            # Another request is queueing the item right now.
            lost.append(item.id)
            answers[item.id] = Queued(item=item, job_id=None, queued=False, created=created,
                                      reason=f"another request kept item {item.id!r} locked while queueing it; "
                                             "ask again")
    messages = [message for item in free
                for message in outbox_messages([item.id], item.status, sources={item.id: item.source})]
    try:
        context.store.outbox.add(messages)
        sent = send(context, messages)
    finally:
        for item in free:
            _unlock(item.id)
    answers.update((answer.item.id, answer) for answer in _answers(free, messages, sent, created=created))
    return answers, lost


def _wait_for_locks(item_ids: Sequence[str], deadline: float) -> None:
    """Return once no request holds the queueing lock of any of ``item_ids`` (they expire), or at ``deadline``."""
    keys = [_lock_key(item_id) for item_id in item_ids]
    try:
        while broker.client.exists(*keys) and time.monotonic() < deadline:
            time.sleep(LOCK_POLL_S)
    except redis.RedisError:
        return


def _unlock(item_id: str) -> None:
    try:
        broker.client.delete(_lock_key(item_id))
    except redis.RedisError:
        logger.warning("Could not release the queueing lock of %r; it expires in %d ms.", item_id, QUEUE_LOCK_MS)


def queue_item(context: Context, item_id: str) -> Queued:
    """Queue one stored item from its status (see ``queue_items``).

    Raises:
        ItemNotFound: no such item.
    """
    [answer] = queue_items(context, [context.store.items.get(item_id)])
    return answer


def check_items(context: Context, items: Sequence[NewItem]) -> list[NewItem]:
    """Return ``items`` with canonical sources, each checked as the CLI checks a path.

    Raises:
        InvalidSource: a source is malformed, outside the media roots, missing or a folder.
    """
    roots = context.settings.resolved_media_roots
    return [NewItem(id=item.id, source=check_source(item.source, roots), force_resume=item.force_resume,
                    prompt=item.prompt) for item in items]


def submit(context: Context, items: Sequence[NewItem]) -> list[Queued]:
    """Check sources, store the items in one transaction, then queue each from step 1.

    Raises:
        InvalidSource: a source is unusable; nothing is stored.
        InvalidItemId: an id is malformed; nothing is stored.
        ItemExists: an id is taken; nothing is stored.
    """
    checked = check_items(context, items)
    # Each item and its first message commit together (the outbox), then the messages are sent.
    messages = outbox_messages([item.id for item in checked], Status.PENDING_FILE_INFO,
                               sources={item.id: item.source for item in checked})
    created = context.store.items.create(checked, messages=messages)
    return _answers(created, messages, send(context, messages), created=True)


def prompt(context: Context, item_id: str, text: str | None) -> Queued:
    """Release an item waiting at ``Awaiting User Input`` to step 4, with the user's prompt.

    Raises:
        ItemNotFound: no such item.
        ItemCancelled: it is cancelled.
        TransitionRefused: the item is not waiting for input, or its source file is missing
            (``require_source``: steps 4 to 6 would fail on it).
    """
    item = context.store.items.get(item_id)
    if item.status is Status.AWAITING_USER_INPUT and not item.cancelled:
        require_source(context, item)
    changes = {"prompt": text} if text is not None else {}
    event = NewEvent(item_id=item_id, event="prompted" if text is not None else "resumed",
                     from_status=Status.AWAITING_USER_INPUT.value, to_status=Status.CREATING_FRAMES.value)
    return _transition(context, item_id, Status.AWAITING_USER_INPUT, Status.CREATING_FRAMES, event=event,
                       changes=changes)


def _transition(context: Context, item_id: str, expected: Status, target: Status, *, event: NewEvent,
                changes: dict[str, Any], source: str | None = None) -> Queued:
    """Move an item and store the message that runs from ``target`` in one transaction, then send it.

    ``source``, the item's, goes with a step-1 message (``pipelines.footage.build_footage_pipeline``).

    Raises:
        ItemCancelled: it is cancelled.
        TransitionRefused: it is not at ``expected``.
    """
    messages, queued, event = _queued_from(item_id, target, event, source=source)
    if not context.store.items.transition(item_id, expected, target, event=event, changes=changes,
                                          messages=messages, events=queued):
        item = context.store.items.get(item_id)
        if item.cancelled:
            raise ItemCancelled(item_id)
        raise TransitionRefused(item_id, expected.value, item.status.value)
    [answer] = _answers([context.store.items.get(item_id)], messages, send(context, messages), created=False)
    return answer


def _queued_from(item_id: str, status: Status, event: NewEvent, *,
                 source: str | None = None) -> tuple[list[PendingMessage], list[NewEvent], NewEvent]:
    """Return the message that runs the item from ``status``, its "queued" event, and ``event``, stamped alike.

    The three commit in one transaction (``middleware.committed_queued``): the timeline reads the
    move, then the queued step, then (later) its start, each no earlier than what came before.
    """
    at = datetime.now(UTC)
    message = first_message(item_id, status, source=source)
    messages, queued = committed_queued(broker, [(message, None)] if message is not None else [], at=at)
    return messages, queued, replace(event, at=at)


def retry(context: Context, item_id: str, *, reason: str | None = None, drop_dead_letters: bool = True) -> Queued:
    """Queue again the step an item stopped at (failed, dead-lettered, purged or stuck).

    An item whose step already has a message in flight is answered with that message.
    ``reason``, when given, goes with the ``retry_requested`` event (who asked and why, when not a person).
    Queued again, the item's dead letters are dropped (``drop_dead_letters``), unless the caller
    drops them itself (``pipelines.dead_letters``, for many items at once).

    Raises:
        ItemNotFound: no such item.
        ItemCancelled: it is cancelled.
        TransitionRefused: no step runs from the item's status (waiting for input, or done), or
            its source file is missing (``require_source``).
    """
    item = context.store.items.get(item_id)
    step = step_for_status(item.status)
    if item.cancelled:
        raise ItemCancelled(item_id)
    if step is None:
        raise nothing_runs_from(item)
    try:
        busy = in_flight(context, [item]).get(item_id)
    except redis.RedisError:
        busy = None
    if busy is not None:
        return Queued(item=item, job_id=busy, queued=True, already_queued=True)
    require_source(context, item)
    context.store.items.update(item_id, dead_lettered=False, purged=False, event=NewEvent(
        item_id=item_id, event="retry_requested", step=step.name, from_status=item.status.value,
        detail={"reason": reason} if reason else None))
    answer = queue_item(context, item_id)
    if drop_dead_letters:
        clear_dead_letters({item_id})
    return answer


def clear_dead_letters(item_ids: Collection[str]) -> None:
    """Take the items' dead letters off the dead-letter queues: they were queued again another way, or deleted.

    Left there, ``GET /dead-letters`` and the dead-letter alert would go on showing a failure the
    item has moved past. One pass over each step's dead-letter queue, however many items. Best
    effort: Redis down leaves them (a retry of one then finds its item moved on).
    """
    if not item_ids:
        return
    try:
        drop_dead_letters_of(broker.client, broker.namespace, [step.queue_name for step in STEPS], item_ids)
    except redis.RedisError as ex:
        logger.warning("Could not drop the dead letters of items %s: %s", ", ".join(sorted(item_ids)), ex)


def require_source(context: Context, item: ItemView) -> None:
    """Refuse to queue ``item`` again while its local source is missing or has left the media roots.

    The steps read it: queued, the item would fail at once, be dead-lettered, and its
    exports stay refused until it is logged again. Remote sources are checked by the step.

    Raises:
        TransitionRefused: the file is not there (a conflict: put it back, then ask again).
    """
    if is_remote(item.source):
        return
    try:
        local_path(item.source, context.settings.resolved_media_roots)
    except MediaMissing as ex:
        raise TransitionRefused(
            item.id, "its source file", "missing",
            reason=f"item {item.id!r} cannot be queued: its source {ex}; put the file back at that path "
                   f"(a moved file is a new item: `autolog ingest` it), then ask again") from ex
    except InvalidSource as ex:
        raise TransitionRefused(item.id, "a source under the media roots", "outside them",
                                reason=f"item {item.id!r} cannot be queued: its source {ex}") from ex


def nothing_runs_from(item: ItemView) -> TransitionRefused:
    """The conflict of queueing an item no step runs from: say why, and what to do instead."""
    if item.status is Status.AWAITING_USER_INPUT:
        reason = (f"item {item.id!r} is awaiting a prompt: send one with `autolog prompt {item.id} TEXT` "
                  f"(POST /items/{item.id}/prompt), resume it without one (POST /items/{item.id}/resume), "
                  f"or rerun it from a step (`autolog rerun {item.id} --from STEP`)")
    else:
        reason = (f"item {item.id!r} is at {item.status.value!r}, where no step runs: "
                  f"rerun it from a step to log it again (`autolog rerun {item.id} --from STEP`)")
    return TransitionRefused(item.id, "a status a step runs from", item.status.value, reason=reason)


def cancel(context: Context, item_id: str, *, refuse_finished: bool = True) -> ItemView:
    """Stop an item: queued and future steps skip it, and a running step stops at its next safe point.

    Args:
        refuse_finished: refuse an item that has been logged to the end (nothing runs or will
            run to stop); False marks it cancelled anyway (its source was removed).

    Raises:
        ItemNotFound: no such item.
        TransitionRefused: ``refuse_finished`` and the item is finished.
    """
    item = context.store.items.cancel(item_id, event=NewEvent(item_id=item_id, event="cancelled"),
                                      unless_finished=refuse_finished)
    if refuse_finished and item.status.is_terminal:
        raise TransitionRefused(
            item_id, "a status a step runs from", item.status.value,
            reason=f"item {item_id!r} is finished ({item.status.value}): no step runs or will run to cancel; "
                   f"`autolog delete {item_id}` removes it")
    return item


def uncancel(context: Context, item_id: str) -> Queued:
    """Undo a cancel and queue the item again from where it stopped.

    Raises:
        ItemNotFound: no such item.
        TransitionRefused: it is not cancelled, or a step runs from its status and its source
            file is missing (``require_source``).
    """
    item = context.store.items.get(item_id)
    if not item.cancelled:
        raise TransitionRefused(item_id, "cancelled", "not cancelled", reason=f"item {item_id!r} is not cancelled")
    if step_for_status(item.status) is not None:
        require_source(context, item)
    context.store.items.update(item_id, cancelled=False, dead_lettered=False, purged=False,
                               event=NewEvent(item_id=item_id, event="uncancelled", from_status=item.status.value))
    answer = queue_item(context, item_id)
    clear_dead_letters({item_id})
    return answer


def _reached(item: ItemView) -> int:
    """Return the number of the step the item has got to: the one it runs next, or past the last when logged.

    An item awaiting its prompt has got to step 3: step 4 runs once it has a prompt (or is
    resumed without one), which a rerun from step 4 would skip.
    """
    if item.status is Status.AWAITING_USER_INPUT:
        return ASSESS.number
    current = step_for_status(item.status)
    return current.number if current else len(STEPS) + 1


def rerun_steps(item: ItemView) -> list[Step]:
    """Return the steps ``rerun`` may start the item from now, in order (none while it is cancelled).

    A step qualifies when the item has reached it and it applies (audio-only items have no
    picture steps). Whether a message is still in flight is left to ``rerun``, which asks Redis.
    """
    if item.cancelled:
        return []
    return [step for step in STEPS
            if step.number <= _reached(item) and not (step.picture and not has_picture_steps(item))]


def rerun(context: Context, item_id: str, from_step: str) -> Queued:
    """Re-log an item from ``from_step`` (a step's name, number, queue or seed name) onwards.

    The item goes back to the status that step runs from, its error and marks cleared, and
    is queued. A rerun from step 3 or earlier sets force-resume when the item had already
    got past its prompt, so it does not stop for one again.

    Raises:
        ItemNotFound: no such item.
        ItemCancelled: it is cancelled.
        UnknownStep: ``from_step`` names no step.
        TransitionRefused: a message is still in flight for it, the item has not reached
            that step yet, the step does not apply (a picture step of an audio-only item), or
            its source file is missing (``require_source``).
    """
    try:
        step = step_named(from_step)
    except KeyError as ex:
        raise UnknownStep(from_step) from ex
    item = context.store.items.get(item_id)
    if item.cancelled:
        raise ItemCancelled(item_id)
    if step.number > _reached(item):
        if item.status is Status.AWAITING_USER_INPUT:
            raise nothing_runs_from(item)
        raise TransitionRefused(item_id, f"a status at or past step {step.number} ({step.name})", item.status.value,
                                reason=f"item {item_id!r} has not reached step {step.number} ({step.name}): "
                                       f"it is at {item.status.value!r}")
    if step.picture and not has_picture_steps(item):
        raise TransitionRefused(item_id, "an item with a picture", "audio-only",
                                reason=f"item {item_id!r} is audio-only: step {step.name} never runs")
    busy = in_flight(context, [item]).get(item_id)
    if busy is not None:
        raise TransitionRefused(item_id, "no message in flight", f"message {busy} in flight",
                                reason=f"a message for item {item_id!r} is already in flight (job {busy}); "
                                       "rerun it once that step ends, or cancel the item first")
    require_source(context, item)
    past_prompt = item.status not in (Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE,
                                      Status.THUMBNAILS_COMPLETE, Status.AWAITING_USER_INPUT)
    changes = {"force_resume": True} if past_prompt and step.number <= ASSESS.number else {}
    event = NewEvent(item_id=item_id, event="rerun_requested", step=step.name, from_status=item.status.value,
                     to_status=step.from_status.value)
    answer = _transition(context, item_id, item.status, step.from_status, event=event, changes=changes,
                         source=item.source)
    clear_dead_letters({item_id})
    return answer


#: The reason of the sweep's ``retry_requested`` of an item whose source changed after step 1 failed.
SOURCE_CHANGED_AFTER_FAILURE = "its source changed after step 1 failed (the sweep's recheck)"


def restart_changed_source(context: Context, item: ItemView, found: SourceFingerprint) -> Queued:
    """Log ``item`` again from step 1: its source is not the file step 1 fingerprinted any more (``found``).

    The sweep's recheck of logged items (``pipelines.discovery.recheck_logged_sources``): a
    copy that stalled for longer than the settle window was logged from its partial file, then
    went on. As a ``rerun`` from step 1 of an item past its prompt, it gets force-resume, so it
    does not stop for a prompt again (the one it has is kept). The timeline's ``source_changed``
    event holds both fingerprints.

    Raises:
        ItemCancelled: it was cancelled meanwhile.
        TransitionRefused: it moved meanwhile.
    """
    event = NewEvent(item_id=item.id, event="source_changed", from_status=item.status.value,
                     to_status=Status.PENDING_FILE_INFO.value,
                     detail={"stored": item.source_fingerprint, "found": found.asdict(),
                             "reason": "changed after it was logged"})
    answer = _transition(context, item.id, item.status, Status.PENDING_FILE_INFO, event=event,
                         changes={"force_resume": True}, source=item.source)
    clear_dead_letters({item.id})
    return answer


def delete(context: Context, item_id: str) -> list[str]:
    """Delete an item: its row, timeline and results, its artifact files and dead letters; return the files removed.

    The timeline goes with the item, so the id is free for a new ingest; the deletion itself
    is logged. A message still in flight finds no item and is skipped by the worker; a
    running step is cancelled first and stops at its next safe point.

    Raises:
        ItemNotFound: no such item.
    """
    cancel(context, item_id, refuse_finished=False)
    root = context.settings.artifacts_root.resolve()
    removed: list[str] = []
    for path in context.store.items.delete(item_id):
        file = Path(path).resolve()
        if file.is_relative_to(root) and file.is_file():
            file.unlink()
            removed.append(str(file))
    folder = root / item_id
    # Only a folder of the root's own, never the root or above it, whatever the id.
    if folder.is_dir() and folder.resolve().parent == root:
        shutil.rmtree(folder, ignore_errors=True)
    clear_dead_letters({item_id})
    logger.info("Deleted item %r and %d artifact file(s).", item_id, len(removed))
    return removed


def reprocess_from_assess(context: Context, item: ItemView) -> bool:
    """Send one item back to step 3 with force-resume set; False if it moved meanwhile or has no picture."""
    if not has_picture_steps(item):
        return False
    event = NewEvent(item_id=item.id, event="force_resumed", step=ASSESS.name, from_status=item.status.value,
                     to_status=Status.THUMBNAILS_COMPLETE.value)
    messages, queued, event = _queued_from(item.id, Status.THUMBNAILS_COMPLETE, event)
    if not context.store.items.transition(item.id, item.status, Status.THUMBNAILS_COMPLETE, event=event,
                                          changes={"force_resume": True}, messages=messages, events=queued):
        return False
    send(context, messages)
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

