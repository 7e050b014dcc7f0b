"""Status writes: the item's status and timeline follow each message's lifecycle.

The status changes here, after the actor has stored its work, as a compare-and-set from
the step's expected status. What follows the step (its ``pipe_target``, and for an
``on_success`` callback that declares a ``follow_up``, the messages it would send) is
committed to the store's outbox in the same transaction as the status, then sent at once;
a crash or a broker outage between the two leaves the message in the outbox, where the
relay (``middleware.outbox_relay``) finds it. The message's ``pipe_target`` and
``on_success`` are then removed, so dramatiq's ``Pipelines`` and ``Callbacks`` (whose
``after_*`` hooks run after this one: this middleware is added last) send nothing twice;
a refused write removes them too, and the chain stops there.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from datetime import UTC, datetime
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import SkipMessage

from autolog.errors import ItemNotFound, PermanentError
from autolog.statuses import Status, Step, is_allowed, step_named
from autolog.store import NewEvent, PendingMessage
from middleware.outbox_relay import pending, send_committed
from middleware.rate_limits import WAIT_OPTION
from middleware.services import Services

#: Key under which the outcome of the status write is stamped into the message's options,
#: so callbacks (which receive the message's data) can see whether the item moved.
TRANSITION_OPTION = "autolog_transition"

#: Actor option of a callback actor: ``follow_up(message_data, result) -> list[Message]``
#: returns what the callback would send. A step whose ``on_success`` names such an actor
#: has those messages committed with its status instead of a hop through the callback.
FOLLOW_UP_OPTION = "follow_up"


def _now_ms() -> int:
    return int(time.time() * 1000)


def worker_name() -> str:
    """Name the current thread as ``host:pid:thread`` for the timeline."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"


def message_step(broker: dramatiq.Broker, message: dramatiq.Message[Any] | MessageProxy) -> Step | None:
    """Return the pipeline step a message runs (its ``step`` option, else its actor's); None for others."""
    name = message.options.get("step") or broker.get_actor(message.actor_name).options.get("step")
    return step_named(name) if name else None


class StatusWrites(dramatiq.Middleware):
    """Writes item statuses and timeline events around every step message.

    Args:
        services: where the store comes from in this process.
    """

    def __init__(self, *, services: Services) -> None:
        self.logger = logging.getLogger(__name__)
        self._services = services
        self._started_ms: dict[str, int] = {}
        #: Ids of delayed messages this worker holds until they are due.
        self._delayed: set[str] = set()
        #: Writes that failed and were logged; exported as a metric.
        self.failed_writes = 0
        self._lock = threading.Lock()

    def _count_failed_write(self) -> None:
        with self._lock:
            self.failed_writes += 1

    @property
    def actor_options(self) -> set[str]:
        return {"step", FOLLOW_UP_OPTION}

    def _record(self, event: NewEvent) -> None:
        if not self._services.is_ready:
            return
        try:
            self._services.current().store.timeline.record(event)
        except Exception:  # A hook must never raise: the broker would only log it, mid-lifecycle.
            self._count_failed_write()
            self.logger.exception("Could not record %r for item %r.", event.event, event.item_id)

    def after_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None) -> None:
        step = message_step(broker, message)
        if step is None:
            return
        if message.message_id in self._delayed:
            # A delayed message moving to its queue once due: recorded when it was delayed.
            self._delayed.discard(message.message_id)
            return
        retries = message.options.get("retries", 0)
        wait = message.options.get(WAIT_OPTION)
        if wait:
            # One event per stretch of waiting, not one per re-enqueue: a long pause re-enqueues
            # the message every few seconds.
            if wait.get("waits", 1) > 1:
                return
            self._record(NewEvent(item_id=message.args[0], event="deferred", step=step.name,
                                  message_id=message.message_id, attempt=retries + 1,
                                  detail={"queue": message.queue_name, **wait}))
            return
        self._record(NewEvent(
            item_id=message.args[0], event="retried" if retries else "queued", step=step.name,
            message_id=message.message_id, attempt=retries + 1,
            detail={"queue": message.queue_name, **({"delay_ms": delay} if delay else {})},
            at=None if retries else datetime.fromtimestamp(message.message_timestamp / 1000, UTC),
        ))

    def before_delay_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._delayed.add(message.message_id)

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        step = message_step(broker, message)
        if step is None:
            return
        item_id = message.args[0]
        try:
            item = self._services.current().store.items.get(item_id)
        except ItemNotFound as ex:
            self.logger.warning("Skipping %r: no item %r.", message.message_id, item_id)
            raise SkipMessage(str(ex)) from ex
        if item.status is not step.from_status or item.cancelled:
            reason = "cancelled" if item.cancelled else f"item is at {item.status.value!r}"
            self._record(NewEvent(item_id=item_id, event="skipped", step=step.name, message_id=message.message_id,
                                  attempt=message.options.get("retries", 0) + 1, worker=worker_name(),
                                  detail={"reason": reason}))
            raise SkipMessage(reason)
        now = _now_ms()
        self._started_ms[message.message_id] = now
        # The worker drops "eta" when a delayed message becomes due; a retry keeps its requeue time.
        enqueued = message.options.get("requeue_timestamp") or message.message_timestamp
        self._record(NewEvent(item_id=item_id, event="started", step=step.name, message_id=message.message_id,
                              attempt=message.options.get("retries", 0) + 1, worker=worker_name(),
                              wait_ms=max(0, now - int(enqueued)), from_status=item.status.value))

    def after_process_message(
        self, broker: dramatiq.Broker, message: MessageProxy, *, result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        step = message_step(broker, message)
        if step is None:
            return
        started = self._started_ms.pop(message.message_id, _now_ms())
        base = NewEvent(item_id=message.args[0], event="", step=step.name, message_id=message.message_id,
                        attempt=message.options.get("retries", 0) + 1, worker=worker_name(),
                        run_ms=_now_ms() - started)
        if exception is None:
            self._advance(broker, message, step, base, result)
        else:
            self._fail(step, base, exception)

    def _advance(self, broker: dramatiq.Broker, message: MessageProxy, step: Step, base: NewEvent,
                 result: Any) -> None:
        applied = False
        target: Status | None = None
        follow_ups: list[PendingMessage] = []
        try:
            target = Status(result["status"])
            if not is_allowed(step, target):
                self.logger.error("Step %r may not move item %r to %r.", step.name, base.item_id, target.value)
            else:
                message.options[TRANSITION_OPTION] = {"from": step.from_status.value, "to": target.value,
                                                      "applied": True}
                follow_ups = self._follow_ups(broker, message, result)
                event = NewEvent(**{**base.__dict__, "event": "succeeded", "from_status": step.from_status.value,
                                    "to_status": target.value})
                store = self._services.current().store
                applied = store.items.transition(base.item_id, step.from_status, target, event=event,
                                                 messages=follow_ups)
                if applied:
                    send_committed(broker, store.outbox, follow_ups)
        except Exception:  # Logged and counted; the item stays put and discovery re-queues it.
            self._count_failed_write()
            self.logger.exception("Could not move item %r after step %r.", base.item_id, step.name)
        finally:
            # Sent through the outbox above, or, when the write was refused, not at all: nothing
            # downstream may run for a status we did not write.
            message.options.pop("pipe_target", None)
            message.options.pop("on_success", None)
        to_status = target.value if target is not None else None
        message.options[TRANSITION_OPTION] = {"from": step.from_status.value, "to": to_status, "applied": applied}
        if not applied:
            self._record(NewEvent(**{**base.__dict__, "event": "refused", "to_status": to_status}))

    def _follow_ups(self, broker: dramatiq.Broker, message: MessageProxy, result: Any) -> list[PendingMessage]:
        """Build what dramatiq's ``Pipelines`` and ``Callbacks`` would send after ``message``, encoded."""
        follow_ups: list[PendingMessage] = []
        actor = broker.get_actor(message.actor_name)
        target_data = message.options.get("pipe_target")
        if target_data is not None:
            # As dramatiq's Pipelines middleware builds the next message of a pipeline.
            next_message: dramatiq.Message[Any] = dramatiq.Message(**target_data)
            if not (next_message.options.get("pipe_ignore") or actor.options.get("pipe_ignore")):
                next_message = next_message.copy(args=(*next_message.args, result))
            follow_ups.append(pending(next_message, delay_ms=next_message.options.get("delay")))
        callback_name = message.options.get("on_success")
        if callback_name is not None:
            callback = broker.get_actor(callback_name)
            follow_up = callback.options.get(FOLLOW_UP_OPTION)
            message_data = message.asdict()
            if follow_up is not None:
                follow_ups.extend(pending(built) for built in follow_up(message_data, result))
            else:
                # As dramatiq's Callbacks middleware sends an on_success callback.
                follow_ups.append(pending(callback.message(message_data, result)))
        return follow_ups

    def _fail(self, step: Step, base: NewEvent, exception: BaseException) -> None:
        error = {
            "step": step.name, "type": type(exception).__name__, "message": str(exception),
            "attempt": base.attempt, "permanent": isinstance(exception, PermanentError),
            "traceback": "".join(traceback.format_exception(exception, limit=30)),
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        event = NewEvent(**{**base.__dict__, "event": "failed", "error_type": error["type"],
                            "error_message": error["message"]})
        try:
            self._services.current().store.items.update(base.item_id, error=error, event=event)
        except Exception:  # Logged and counted; the message's own retry or dead letter still happens.
            self._count_failed_write()
            self.logger.exception("Could not record the failure of item %r.", base.item_id)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._started_ms.pop(message.message_id, None)

    def after_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        step = message_step(broker, message)
        if step is None:
            return
        event = NewEvent(item_id=message.args[0], event="dead_lettered", step=step.name,
                         message_id=message.message_id, worker=worker_name(),
                         detail={"retries": message.options.get("retries", 0), "queue": message.queue_name})
        try:
            self._services.current().store.items.update(message.args[0], dead_lettered=True, event=event)
        except Exception:  # Logged and counted; the message itself is already in the dead-letter queue.
            self._count_failed_write()
            self.logger.exception("Could not mark item %r dead-lettered.", message.args[0])

