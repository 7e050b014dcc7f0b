"""Queues as operators see them: per step, counts; pause, resume, purge.

Pausing holds a queue's messages in Redis (``autolog.broker_state``; workers hold late
arrivals through ``middleware.QueuePauses``), counted as ``held`` and released in order on
resume. Purging drops the queue's ready, delayed and held messages in one call, and those
still unsent in the outbox; it records ``purged`` on each item's timeline and marks the item, so
discovery leaves it alone until someone queues it again (retry, ``lf_queue``, rerun), and publishes
each dropped step's "skipped" progress, so a page waiting on that step stops waiting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from autolog import broker_state
from autolog.context import Context
from autolog.errors import QueueNotFound
from autolog.progress import ProgressChannel, ProgressEvent, percent_before
from autolog.statuses import STEPS, Step, step_named
from autolog.store import ABANDON_MARGIN_S, SEND_WITHIN_S, NewEvent, PendingMessage

logger = logging.getLogger(__name__)

#: How often a purge looks again at outbox rows whose writers may still send them, in s.
PURGE_POLL_S = 0.05


@dataclass(frozen=True)
class QueueView:
    """One queue's counts and whether it is paused."""

    name: str
    step: str | None
    queued: int
    delayed: int
    held: int
    in_progress: int
    dead_lettered: int
    paused: bool

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"name": self.name, "step": self.step, "queued": self.queued, "delayed": self.delayed,
                "held": self.held, "in_progress": self.in_progress, "dead_lettered": self.dead_lettered,
                "paused": self.paused}


@dataclass(frozen=True)
class PurgeOutcome:
    """What one purge dropped, and the items it marked."""

    queue: str
    purged: int
    items: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"queue": self.queue, "purged": self.purged, "items": list(self.items)}


def queue_names(declared: Sequence[str]) -> list[str]:
    """Return the step queues in pipeline order, then any other declared queue by name."""
    steps = [step.queue_name for step in STEPS]
    return steps + sorted(set(declared) - set(steps))


def _step_on(queue: str) -> Step | None:
    """Return the step whose messages go on ``queue`` (a delay queue's name without ``.DQ``), if any."""
    return next((step for step in STEPS if step.queue_name == queue), None)


def step_name_on(queue: str) -> str | None:
    """Return the name of the step whose messages go on ``queue``; None for the control queue and others."""
    step = _step_on(queue)
    return step.name if step is not None else None


class Queues:
    """Reads and controls the broker's queues through its Redis client."""

    def __init__(self, client: redis.Redis, *, namespace: str, declared: Sequence[str]) -> None:
        self._client = client
        self._namespace = namespace
        self.names = queue_names(declared)

    @classmethod
    def of_broker(cls, broker: Any, *, client: redis.Redis | None = None) -> Queues:
        """Return the queues ``broker`` declares, read through ``client`` (default: the broker's own)."""
        return cls(client or broker.client, namespace=broker.namespace, declared=sorted(broker.get_declared_queues()))

    def check(self, name: str) -> str:
        """Return the queue ``name`` means: a queue name, or a step's name, seed name or number.

        Raises:
            QueueNotFound: it names no queue.
        """
        if name in self.names:
            return name
        try:
            return step_named(name).queue_name
        except KeyError as ex:
            raise QueueNotFound(name) from ex

    def list(self) -> list[QueueView]:
        """Return every queue's counts."""
        depths = broker_state.read_queue_stats(self._client, self._namespace, self.names)
        paused = broker_state.paused_queues(self._client, self._namespace)
        return [
            QueueView(name=name, step=step_name_on(name), queued=depths[name].ready, delayed=depths[name].delayed,
                      held=depths[name].held, in_progress=depths[name].in_flight,
                      dead_lettered=depths[name].dead, paused=name in paused)
            for name in self.names
        ]

    def get(self, name: str) -> QueueView:
        """Return one queue's counts.

        Raises:
            QueueNotFound: no such queue.
        """
        queue = self.check(name)
        return next(view for view in self.list() if view.name == queue)

    def pause(self, name: str) -> QueueView:
        """Pause a queue: its waiting messages are held, and workers hold any that reach them.

        Raises:
            QueueNotFound: no such queue.
        """
        queue = self.check(name)
        broker_state.pause(self._client, self._namespace, queue)
        return self.get(queue)

    def resume(self, name: str) -> QueueView:
        """Resume a queue: its held messages go back on it, oldest first.

        Raises:
            QueueNotFound: no such queue.
        """
        queue = self.check(name)
        broker_state.resume(self._client, self._namespace, queue)
        return self.get(queue)

    def purge(self, context: Context, name: str, *, now: float | None = None) -> PurgeOutcome:
        """Drop the queue's ready, delayed and held messages, and its unsent ones; mark their items purged.

        Unsent messages are the queue's outbox rows only a relay would send (``Outbox.drop_queue``:
        a writer died between its status write and its send, or a relay claimed them); they go
        first, so a relay cannot read Redis after its purge, find a message gone and send it
        again. A row a live writer may still send is waited for (``_drop_unsent``, at most
        ``SEND_WITHIN_S`` and ``ABANDON_MARGIN_S``). Only items still at the queue's step are
        marked (and listed): a dropped message of an item that has moved on was a stale duplicate.
        A message workers fetched before the purge runs, and its item is not marked, unless the
        queue is paused: such a message is dropped when it reaches the worker's pause check, and
        its item is marked too.

        ``now`` (epoch s, default the clock) is when the purge starts: the outbox rows made by then
        are its, and their writers' send deadlines are judged at that time.

        Raises:
            QueueNotFound: no such queue.
        """
        queue = self.check(name)
        unsent = [broker_state.stored_message(row.message) for row in self._drop_unsent(context, queue, now)]
        result = broker_state.purge(self._client, self._namespace, queue)
        # Read with the purge itself: the wait for the outbox's writers above may outlast a pause or a resume.
        paused = result.paused
        # A dropped message whose row is still leased (its writer died after sending it, or is about to
        # clear it): once the lease ran out, the relay, finding it gone from Redis, would send it again.
        context.store.outbox.sent([message.message_id for message in result.dropped])
        fetched = {message.message_id: message for message in result.held_by_workers}
        # A message both in Redis and in the outbox (sent, its row not cleared) counts once; one a
        # worker fetched is not counted (the purge did not drop it), its row there or not.
        dropped = {message.message_id: message for message in (*result.dropped, *unsent)
                   if message is not None and message.message_id not in fetched}
        touched = {**dropped, **fetched} if paused else dropped
        events = [NewEvent(item_id=message.item_id, event="purged", message_id=message.message_id,
                           step=step_name_on(message.queue.removesuffix(".DQ")), detail={"queue": queue})
                  for message in touched.values() if message.item_id is not None]
        marked = context.store.items.mark_purged(events)
        self._announce_skipped(dropped.values())
        return PurgeOutcome(queue=queue, purged=len(dropped), items=tuple(marked))

    def _announce_skipped(self, messages: Iterable[broker_state.StoredMessage]) -> None:
        """Publish a "skipped" progress event for each of ``messages`` that is a step's, in one round trip.

        Each is guarded by its message id: it replaces an item's latest state only when that was
        about this message (its "queued", or its "held" in a paused queue), never news of a later
        step. Progress is advisory: a Redis error is logged, and the purge stands.
        """
        events: list[tuple[ProgressEvent, str | None]] = []
        for message in messages:
            step = _step_on(message.queue.removesuffix(".DQ"))
            if step is None or message.item_id is None:
                continue
            events.append((ProgressEvent(item_id=message.item_id, stage=step.name, state="skipped",
                                         percent=percent_before(step), status=step.from_status.value,
                                         message_id=message.message_id), message.message_id))
        try:
            ProgressChannel(self._client, namespace=self._namespace).publish_many(events)
        except redis.RedisError as ex:
            logger.warning("Could not publish the progress of %d purged message(s): %s", len(events), ex)

    @staticmethod
    def _drop_unsent(context: Context, queue: str, now: float | None) -> Sequence[PendingMessage]:
        """Drop the queue's outbox rows made before now that only a relay would send, once their writers are done.

        A row younger than ``SEND_WITHIN_S`` may still be sent by its writer: this first waits, at
        most that long (plus a margin), reading only, until each such row is either sent (its writer
        clears it, and the message is in Redis before the purge empties it) or past its writer's
        deadline; then it drops the rows in one write, just before the purge empties Redis.
        """
        outbox = context.store.outbox
        made_by_s = time.time() if now is None else now
        deadline = time.monotonic() + SEND_WITHIN_S + ABANDON_MARGIN_S + 1
        while outbox.being_sent(queue, made_by_s=made_by_s, now=now) and time.monotonic() < deadline:
            time.sleep(PURGE_POLL_S)
        return outbox.drop_queue(queue, made_by_s=made_by_s, now=now)

    def seed_status(self) -> dict[str, Any]:
        """Return seed 000's ``/queue/status`` document: queued and failed per step."""
        queues: dict[str, dict[str, int]] = {}
        for view in self.list():
            if view.step is None:
                continue
            queues[step_named(view.step).seed_name] = {"queued": view.queued + view.delayed + view.held,
                                                       "failed": view.dead_lettered}
        return {"queues": queues, "total_queued": sum(queue["queued"] for queue in queues.values()),
                "total_failed": sum(queue["failed"] for queue in queues.values())}
