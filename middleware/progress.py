"""Progress: each step message publishes its item's stage and percent as it moves.

Queued (as a message is enqueued, before it is put: also in the API), waiting (put back
with a delay, as the rate limiter does), running, succeeded (with the status written), failed,
retrying, held (a delivery set aside until its paused queue resumes: it comes back), skipped
(a delivery dropped: the item was cancelled or had moved on; nothing more comes of it) and
dead-lettered, through ``autolog.progress.ProgressChannel``.
Sits before ``StatusWrites`` so its ``after_process_message`` sees the status write, and
publishes "succeeded" before ``Pipelines`` enqueues (and so announces) the next step.
Events about a message are guarded: once the item's latest state is about another message
(a duplicate delivery, a step the item has moved past), they are dropped.

In a worker, events go out through a ``BackgroundPublisher``: the step's thread queues them
and goes on, and a thread of the worker sends them, in order, a few milliseconds later (under
load, at most every ``autolog.progress.SEND_INTERVAL_S``, 50 ms; the
store's status, written before, stays the record). Waiting for them before each message's
ack cost a quarter of the no-op drain rate. Only before a message that runs at once is put
does the thread wait until its "queued" and everything before it (the "succeeded" of the
step that sends it) has gone: another process may start it at once, and its "running" must
come after them. A worker that stops sends what is queued first;
one killed loses at most those last milliseconds of events, as a kill between a status write
and its publish did before. Elsewhere (the API) events go out at once, or in one round trip
per batch request (``pipelined``).
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import AbstractContextManager
from typing import Any

import dramatiq
import redis
from dramatiq.broker import MessageProxy

from autolog.progress import BackgroundPublisher, ProgressChannel, ProgressEvent, percent_before, percent_done
from autolog.statuses import Status, Step
from middleware._steps import message_step
from middleware.queue_pauses import HELD_OPTION
from middleware.status_writes import TRANSITION_OPTION


class _ThreadState(threading.local):
    """What a worker thread's hooks tell each other about its current delivery (class defaults: nothing)."""

    #: The id of the message this thread last enqueued (a message putting itself back).
    enqueued: str | None = None
    #: The id and ``retries`` of this thread's delivery that failed, until what follows it is enqueued:
    #: ``Retries``' re-enqueue (its ``retries`` one more) or a wait for the store (the same).
    failed: tuple[str, int] | None = None


class Progress(dramatiq.Middleware):
    """Publishes the progress of every step message.

    Args:
        channel: where events go; the broker's Redis client is fine.
    """

    def __init__(self, *, channel: ProgressChannel) -> None:
        self.logger = logging.getLogger(__name__)
        self._channel = channel
        #: Ids of delayed messages this worker holds until they are due.
        self._delayed: set[str] = set()
        self._local = _ThreadState()
        #: Set in a worker process (``after_worker_boot``).
        self._publisher: BackgroundPublisher | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._publisher = BackgroundPublisher(self._channel)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None


    def pipelined(self) -> AbstractContextManager[None]:
        """Publish this thread's events in one Redis round trip at the end of the block (a batch enqueue)."""
        return self._channel.pipelined()

    def _publish(self, event: ProgressEvent, *, guarded: bool) -> None:
        guard = event.message_id if guarded else None
        publisher = self._publisher
        if publisher is not None and not self._channel.is_pipelined():
            publisher.publish(event, guard_message_id=guard)
            return
        try:
            self._channel.publish(event, guard_message_id=guard)
        except redis.RedisError as ex:
            # Progress is advisory: the status and timeline in the store remain the record.
            self.logger.warning("Could not publish progress of item %r: %s", event.item_id, ex)

    @staticmethod
    def _event(message: dramatiq.Message[Any] | MessageProxy, step: Step, state: str, *,
               status: Status | None = None, final: bool = False) -> ProgressEvent:
        return ProgressEvent(
            item_id=str(message.args[0]), stage=step.name, state=state,
            percent=percent_done(status) if status is not None and state == "succeeded" else percent_before(step),
            status=(status or step.from_status).value, message_id=message.message_id,
            attempt=message.options.get("retries", 0) + 1, final=final, at_ms=int(time.time() * 1000),
        )

    def before_delay_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._delayed.add(message.message_id)

    def before_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None) -> None:
        # Before the put, not after: the put wakes a consumer at once (``actors._waking_broker``), and a step's
        # "running" that came before its "queued" would lose to the guard. As intake does (``pipelines.actions``).
        step = message_step(broker, message)
        if step is None:
            return
        if delay is None and message.message_id in self._delayed:
            # Its move to its queue once due (see ``StatusWrites.after_enqueue``).
            self._delayed.discard(message.message_id)
            return
        failed, retried = self._local.failed, False
        if failed is not None and failed[0] == message.message_id:
            self._local.failed = None
            # A retry counts its attempt first (dramatiq's ``Retries``); a wait for the store does not.
            retried = message.options.get("retries", 0) > failed[1]
        if retried:
            self._publish(self._event(message, step, "retrying"), guarded=True)
        else:
            self._publish(self._event(message, step, "waiting" if delay else "queued"), guarded=False)
        publisher = self._publisher  # once: a stopping worker sets it to None
        if delay is None and publisher is not None and not self._channel.is_pipelined():
            # Put now, it may start at once in another process, whose "running" must come after this
            # event and after this process's "succeeded" of the step before (or the guard drops it).
            publisher.flush()

    def after_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None) -> None:
        # Once it is put: a message that puts itself back (a rate-limit wait) and then skips this delivery
        # is still coming, and its skip is no news (``after_skip_message``); a put that failed is not.
        self._local.enqueued = message.message_id

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        # A put-back or a failure of an earlier delivery tells nothing about this one.
        self._local.enqueued = self._local.failed = None
        step = message_step(broker, message)
        if step is not None:
            self._publish(self._event(message, step, "running"), guarded=True)

    def after_process_message(
        self, broker: dramatiq.Broker, message: MessageProxy, *, result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        step = message_step(broker, message)
        if step is None:
            return
        if exception is not None:
            self._local.failed = (message.message_id, message.options.get("retries", 0))
            self._publish(self._event(message, step, "failed"), guarded=True)
            return
        transition = message.options.get(TRANSITION_OPTION)
        if isinstance(transition, dict) and transition.get("applied"):
            status = Status(transition["to"])
            self._publish(self._event(message, step, "succeeded", status=status, final=status.is_terminal),
                          guarded=True)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        step = message_step(broker, message)
        # Read once: the put-back it records belongs to this delivery only. A delivery held for its paused
        # queue (``QueuePauses``, which skips it before this middleware's ``before_process_message``) did
        # not put itself back, whatever an earlier delivery of the same message on this thread did.
        enqueued, self._local.enqueued = self._local.enqueued, None
        if step is None:
            return
        if message.options.get(HELD_OPTION):
            self._publish(self._event(message, step, "held"), guarded=True)
        elif enqueued != message.message_id:  # One that put itself back (a rate-limit wait) is still coming.
            self._publish(self._event(message, step, "skipped"), guarded=True)

    def after_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        step = message_step(broker, message)
        if step is not None:
            self._publish(self._event(message, step, "dead_lettered", final=True), guarded=True)
