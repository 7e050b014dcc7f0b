"""Status writes: the item's status and timeline follow each message's lifecycle.

The status changes here, after the actor has stored its work, as a compare-and-set from
the step's expected status. What follows the step (its ``pipe_target``, and for an
``on_success`` callback that declares a ``follow_up``, the messages it would send) is
committed to the store's outbox in the same transaction as the status, then sent once the
other middlewares have reported the step's success (``OutboxRelay.after_process_message``);
a crash or a broker outage between the two leaves the message in the outbox, where the
relay (``middleware.outbox_relay``) finds it. The message's ``pipe_target`` and
``on_success`` are then removed, so dramatiq's ``Pipelines`` and ``Callbacks`` (whose
``after_*`` hooks run after this one: this middleware is added last) send nothing twice;
a refused write removes them too, and the chain stops there.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import random
import socket
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.common import q_name
from dramatiq.middleware import SkipMessage

from autolog.errors import ItemNotFound, PermanentError, StaleRun
from autolog.processes import current_pid
from autolog.statuses import Status, Step, is_allowed
from autolog.store import (
    ItemGuard,
    NewEvent,
    PendingMessage,
    RunFence,
    Store,
    is_store_outage,
    outage_text,
    send_deadline,
)
from middleware._steps import message_step
from middleware.outbox_relay import pending, send_after_hooks
from middleware.rate_limits import WAIT_OPTION
from middleware.services import Services

#: Key under which the outcome of the status write is stamped into the message's options,
#: so callbacks (which receive the message's data) can see whether the item moved: ``from`` and
#: ``to`` (status values), ``applied`` (bool) and, once applied, ``item_age_s``: the item's age
#: at the write, in s (the pipeline duration metric of a terminal status).
TRANSITION_OPTION = "autolog_transition"

#: Key under which the fencing token of the run a delivery started is stamped into its options
#: (``autolog.store.fencing``); the actor fences its writes with it.
RUN_OPTION = "autolog_run"

#: Set on a message whose run was superseded (a newer delivery took the item over, or the item
#: moved on): ``Retries`` acknowledges it instead of retrying or dead-lettering it.
SUPERSEDED_OPTION = "autolog_superseded"

#: Set on a step message whose "queued" event was committed with the status write that sent
#: it (one transaction fewer per hop); its enqueue then records nothing more.
QUEUED_RECORDED_OPTION = "autolog_queued_recorded"

#: ``WAIT_OPTION`` reason of a message put back to wait for the store (``middleware.retries``).
STORE_OUTAGE_REASON = "store"

#: ``WAIT_OPTION`` reason of a message put back to wait for disk space (``middleware.retries``).
DISK_FULL_REASON = "disk full"

#: The wait marker of a store or disk wait that ended with this delivery, set aside (it is not a
#: wait any more: a retry must not read as one) so that meeting the same fault again waits
#: longer, not the first wait over again (``wait_out``).
ENDED_WAIT_OPTION = "autolog_ended_wait"

#: Actor option of a callback actor: ``follow_up(message_data, result) -> list[Message]``
#: returns what the callback would send. A step whose ``on_success`` names such an actor
#: has those messages committed with its status instead of a hop through the callback.
FOLLOW_UP_OPTION = "follow_up"


def _now_ms() -> int:
    return int(time.time() * 1000)


@functools.cache
def _host_pid(pid: int) -> str:
    # Once per process (a fork asks again): the host name is a system call.
    return f"{socket.gethostname()}:{pid}"


def worker_name() -> str:
    """Name the current thread as ``host:pid:thread`` for the timeline."""
    return f"{_host_pid(current_pid())}:{threading.current_thread().name}"


def wait_out(broker: dramatiq.Broker, message: MessageProxy, exception: BaseException, *,
             reason: str = STORE_OUTAGE_REASON, min_delay_ms: int = 1_000, max_delay_ms: int = 10_000) -> None:
    """Put ``message`` back to run once the fault (``reason``: the store, a full disk) may be over.

    Same message id and ``retries``: no retry is spent. The wait doubles from
    ``min_delay_ms`` up to ``max_delay_ms`` per consecutive wait, counted in the
    ``WAIT_OPTION`` marker, or in ``ENDED_WAIT_OPTION`` when the fault is met again by the
    delivery that ended the previous wait. The marker's ``since_ms`` (ms since the epoch) is
    when this stretch of waits began: a store wait's ``deferred`` event is recorded with it by
    the start that ends the stretch (the store is out when it begins). Always delayed: the copy
    goes to the delay queue, so acknowledging this delivery (same id, work queue) cannot remove it.
    """
    waiting_now: dict[str, Any] = message.options.get(WAIT_OPTION) or {}
    previous: dict[str, Any] = waiting_now or message.options.get(ENDED_WAIT_OPTION) or {}
    waits = int(previous.get("waits", 0)) + 1 if previous.get("reason") == reason else 1
    delay_ms = min(min_delay_ms * 2 ** min(waits - 1, 10), max_delay_ms)
    since_ms = waiting_now.get("since_ms") if waiting_now.get("reason") == reason else None
    logging.getLogger(__name__).warning(
        "Message %r waits %d ms for the %s without spending a retry: %s", message.message_id, delay_ms,
        "store" if reason == STORE_OUTAGE_REASON else "disk", outage_text(exception))
    waiting = message.copy(options={WAIT_OPTION: {"waits": waits, "reason": reason, "wait_ms": delay_ms,
                                                  "since_ms": since_ms or _now_ms()}})
    waiting.options.pop(ENDED_WAIT_OPTION, None)
    broker.enqueue(waiting, delay=delay_ms)


def store_wait_event(step: Step, message: MessageProxy, *, now_ms: int) -> NewEvent | None:
    """Return the ``deferred`` event of the store wait that the delivery of ``message`` ends, if it ends one.

    Recorded by the delivery that ends the wait, with its run's start: while the store is out
    nothing can be written, and a wait recorded when it began was lost with the outage (the
    timeline showed a started attempt with no outcome). Stamped when the stretch of waits began
    (``wait_out``'s ``since_ms``); its detail also gives the waits and ``waited_ms`` in all.
    """
    wait = message.options.get(WAIT_OPTION)
    if not wait or wait.get("reason") != STORE_OUTAGE_REASON:
        return None
    since_ms = int(wait.get("since_ms") or now_ms)
    return NewEvent(item_id=message.args[0], event="deferred", step=step.name, message_id=message.message_id,
                    attempt=message.options.get("retries", 0) + 1,
                    at=datetime.fromtimestamp(since_ms / 1000, UTC),
                    detail={"queue": message.queue_name, "reason": STORE_OUTAGE_REASON,
                            "waits": wait.get("waits", 1), "waited_ms": max(0, now_ms - since_ms)})


def queued_event(step: Step, message: dramatiq.Message[Any], *, retries: int = 0, delay: int | None = None) -> NewEvent:
    """Return the timeline's "queued" (or, for a retry, "retried") event of a step message."""
    return NewEvent(
        item_id=message.args[0], event="retried" if retries else "queued", step=step.name,
        message_id=message.message_id, attempt=retries + 1,
        detail={"queue": message.queue_name, **({"delay_ms": delay} if delay else {})},
        at=None if retries else datetime.fromtimestamp(message.message_timestamp / 1000, UTC),
    )


def committed_queued(broker: dramatiq.Broker, built: Sequence[tuple[dramatiq.Message[Any], int | None]], *,
                     at: datetime, sent_ms: int | None = None) -> tuple[list[PendingMessage], list[NewEvent]]:
    """Encode ``built`` (each message with its delay in ms, or None) for the outbox, with the "queued" events to commit.

    A step message sent at once has its "queued" event committed with the move that stores it,
    stamped ``at`` (the move's own event's time: the timeline, ordered by time and then by
    insertion, reads the move first, then the queued step, then its start); the message is
    marked, so its enqueue records nothing more. A delayed one records its event when enqueued.
    ``sent_ms`` (ms since the epoch), when given, becomes each message's timestamp.

    Returns:
        The messages for the outbox, and the events to commit with them (``Items.transition``'s
        ``messages`` and ``events``).
    """
    messages: list[PendingMessage] = []
    queued: list[NewEvent] = []
    for message, delay in built:
        step = message_step(broker, message) if delay is None else None
        options = {QUEUED_RECORDED_OPTION: True} if step is not None else {}
        sent = message.copy(options=options) if sent_ms is None else message.copy(message_timestamp=sent_ms,
                                                                                   options=options)
        if step is not None:
            queued.append(dataclasses.replace(queued_event(step, sent), at=at))
        messages.append(pending(sent, delay_ms=delay))
    return messages, queued


class StatusWrites(dramatiq.Middleware):
    """Writes item statuses and timeline events around every step message.

    Args:
        services: where the store comes from in this process.
        outage_wait_s: how long a finished step's status write is retried while the store
            is unreachable (a PostgreSQL restart, a locked SQLite file).
        after_start: called once a delivery's run holds its item, with the item's guard as
            the start write returned it (``SourceChecks.check_started``); may raise
            ``SkipMessage`` to skip the step.
    """

    def __init__(self, *, services: Services, outage_wait_s: float = 600.0,
                 after_start: Callable[[dramatiq.Broker, MessageProxy, Step, ItemGuard], None] | None = None) -> None:
        self.logger = logging.getLogger(__name__)
        self._services = services
        self._after_start = after_start
        #: How long a finished step's status write is retried while the store is unreachable, in s.
        self.outage_wait_s = outage_wait_s
        #: Per message started here: when it started (ms since the epoch), and when its item was created.
        self._started: dict[str, tuple[int, datetime | None]] = {}
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
        except Exception as ex:  # A hook must never raise: the broker would only log it, mid-lifecycle.
            self._count_failed_write()
            outage = is_store_outage(ex)
            self.logger.error("Could not record %r for item %r: %s", event.event, event.item_id,
                              outage_text(ex) if outage else ex, exc_info=not outage)

    def after_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None) -> None:
        step = message_step(broker, message)
        if step is None:
            return
        if delay is None and message.message_id in self._delayed:
            # A delayed message moving to its queue once due: recorded when it was delayed. Only
            # an enqueue without a delay can be that move: the delay queue's consumer may take a
            # message (``before_delay_message``) before its delayed enqueue's hooks have run.
            self._delayed.discard(message.message_id)
            return
        retries = message.options.get("retries", 0)
        wait = message.options.get(WAIT_OPTION)
        if wait:
            # One event per stretch of waiting, not one per re-enqueue: a long pause re-enqueues
            # the message every few seconds. A store wait's is recorded by the start that ends it.
            if wait.get("waits", 1) > 1 or wait.get("reason") == STORE_OUTAGE_REASON:
                return
            self._record(NewEvent(item_id=message.args[0], event="deferred", step=step.name,
                                  message_id=message.message_id, attempt=retries + 1,
                                  detail={"queue": message.queue_name, **wait}))
            return
        if not retries and message.options.get(QUEUED_RECORDED_OPTION):
            # Its "queued" event was committed with the status write that sent it.
            return
        self._record(queued_event(step, message, retries=retries, delay=delay))

    def before_delay_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._delayed.add(message.message_id)

    def after_ack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        # A delayed message's delivery from its delay queue ends with this ack: moved to its queue (that enqueue
        # let go of its id already), or dropped because a purge took it while this worker held it
        # (``actors._waking_broker``), which no enqueue follows: its id must not stay here for good.
        if message.queue_name != q_name(message.queue_name):
            self._delayed.discard(message.message_id)

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        step = message_step(broker, message)
        if step is None:
            return
        item_id = message.args[0]
        now = _now_ms()
        # Random, not uuid4: os.urandom is a system call, and each lets the worker's other
        # threads take the GIL first. ``random`` reseeds itself in a forked child.
        token = f"{random.getrandbits(128):032x}"
        # The worker drops "eta" when a delayed message becomes due; a retry keeps its requeue time.
        enqueued = message.options.get("requeue_timestamp") or message.message_timestamp
        attempt = message.options.get("retries", 0) + 1
        started = NewEvent(item_id=item_id, event="started", step=step.name, message_id=message.message_id,
                           attempt=attempt, worker=worker_name(), wait_ms=max(0, now - int(enqueued)),
                           from_status=step.from_status.value, detail={"run": token})
        # The guard and the start are one write: the item takes this run's token only if it is
        # at the step's status and not cancelled (a store outage raises, and Retries waits it out).
        waited = store_wait_event(step, message, now_ms=now) if WAIT_OPTION in message.options else None
        earlier = (waited,) if waited is not None else ()
        store = self._services.current().store
        try:
            held = store.items.start_run(item_id, step.from_status, token, event=started, earlier=earlier)
        except Exception as ex:  # A hook's error would only be logged and the step run unguarded.
            outage = is_store_outage(ex)
            self.logger.warning("Cannot start %r of item %r; it waits for the store: %s", step.name, item_id,
                                outage_text(ex) if outage else ex, exc_info=not outage)
            wait_out(broker, message, ex)
            raise SkipMessage(f"store unavailable: {ex}") from ex
        if held is None:
            try:
                item = store.items.get(item_id)
            except ItemNotFound as ex:
                self.logger.warning("Skipping %r: no item %r.", message.message_id, item_id)
                raise SkipMessage(str(ex)) from ex
            reason = "cancelled" if item.cancelled else f"item is at {item.status.value!r}"
            for event in earlier:
                self._record(event)
            self._record(NewEvent(item_id=item_id, event="skipped", step=step.name, message_id=message.message_id,
                                  attempt=attempt, worker=worker_name(), detail={"reason": reason}))
            raise SkipMessage(reason)
        message.options[RUN_OPTION] = token
        if (message.options.get(WAIT_OPTION) or {}).get("reason") in (STORE_OUTAGE_REASON, DISK_FULL_REASON):
            # The wait is over: a later retry of this message must not read as a wait. Set aside,
            # the marker makes a second meeting with the same fault wait longer (``wait_out``).
            message.options[ENDED_WAIT_OPTION] = message.options.pop(WAIT_OPTION)
        self._started[message.message_id] = (now, held.created_at)
        if self._after_start is not None:
            self._after_start(broker, message, step, held)

    def after_process_message(
        self, broker: dramatiq.Broker, message: MessageProxy, *, result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        step = message_step(broker, message)
        if step is None:
            return
        started, created_at = self._started.pop(message.message_id, (_now_ms(), None))
        base = NewEvent(item_id=message.args[0], event="", step=step.name, message_id=message.message_id,
                        attempt=message.options.get("retries", 0) + 1, worker=worker_name(),
                        run_ms=_now_ms() - started)
        if exception is None:
            self._advance(broker, message, step, base, result, created_at)
        elif is_store_outage(exception):
            # Nothing can be written now; Retries puts the message back without spending a retry.
            self.logger.warning("Store unavailable during %r of item %r: %s", step.name, base.item_id,
                                outage_text(exception))
        else:
            self._fail(message, step, base, exception)

    def _store(self, message: MessageProxy, step: Step) -> Store:
        """Return the store, fenced to the run this delivery of ``message`` started (if it started one)."""
        store = self._services.current().store
        token = message.options.get(RUN_OPTION)
        return store.fenced(RunFence(message.args[0], token, step.from_status)) if token else store

    def _advance(self, broker: dramatiq.Broker, message: MessageProxy, step: Step, base: NewEvent,
                 result: Any, created_at: datetime | None) -> None:
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
                # One time for the success and the "queued" of what follows it, so the timeline
                # (ordered by time, then by insertion) reads success first.
                at = datetime.now(UTC)
                follow_ups, queued = self._follow_ups(broker, message, result, at=at)
                # The step's result goes with its success, for the jobs API (no separate results store).
                event = NewEvent(**{**base.__dict__, "event": "succeeded", "from_status": step.from_status.value,
                                    "to_status": target.value, "at": at, "detail": {"result": result}})
                store = self._store(message, step)
                attempts = 0

                def write() -> bool:
                    nonlocal attempts, follow_ups
                    attempts += 1
                    if attempts > 1:  # Again after an outage: the send deadline runs from this write.
                        follow_ups = [dataclasses.replace(follow, send_by_s=send_deadline()) for follow in follow_ups]
                    return store.items.transition(base.item_id, step.from_status, target, event=event,
                                                  messages=follow_ups, events=queued)

                applied = self._until_stored(write)
                if applied:
                    send_after_hooks(message, follow_ups)
        except Exception:  # Logged and counted; the item stays put and discovery re-queues it.
            self._count_failed_write()
            self.logger.exception("Could not move item %r after step %r.", base.item_id, step.name)
        finally:
            # Sent through the outbox above, or, when the write was refused, not at all: nothing
            # downstream may run for a status we did not write.
            message.options.pop("pipe_target", None)
            message.options.pop("on_success", None)
        to_status = target.value if target is not None else None
        transition: dict[str, Any] = {"from": step.from_status.value, "to": to_status, "applied": applied}
        if applied and created_at is not None:
            transition["item_age_s"] = (datetime.now(UTC) - created_at).total_seconds()
        message.options[TRANSITION_OPTION] = transition
        if not applied:
            self._record(NewEvent(**{**base.__dict__, "event": "refused", "to_status": to_status}))

    def _follow_ups(self, broker: dramatiq.Broker, message: MessageProxy, result: Any,
                    *, at: datetime) -> tuple[list[PendingMessage], list[NewEvent]]:
        """Build what dramatiq's ``Pipelines`` and ``Callbacks`` would send after ``message``.

        Each is stamped ``at``, the time of the status write that sends it, not the time a
        pipeline's later message was built with its pipeline: its wait (the step's ``wait_ms``,
        the queue-wait metric) must not count the steps that ran before it.

        Returns the messages encoded for the outbox, and the "queued" events of those that
        are steps: both commit with the status (``committed_queued``).
        """
        built: list[tuple[dramatiq.Message[Any], int | None]] = []
        actor = broker.get_actor(message.actor_name)
        target_data = message.options.get("pipe_target")
        if target_data is not None:
            # As dramatiq's Pipelines middleware builds the next message of a pipeline.
            next_message: dramatiq.Message[Any] = dramatiq.Message(**target_data)
            if not (next_message.options.get("pipe_ignore") or actor.options.get("pipe_ignore")):
                next_message = next_message.copy(args=(*next_message.args, result))
            built.append((next_message, next_message.options.get("delay")))
        callback_name = message.options.get("on_success")
        if callback_name is not None:
            callback = broker.get_actor(callback_name)
            follow_up = callback.options.get(FOLLOW_UP_OPTION)
            message_data = message.asdict()
            if follow_up is not None:
                built.extend((follow, None) for follow in follow_up(message_data, result))
            else:
                # As dramatiq's Callbacks middleware sends an on_success callback.
                built.append((callback.message(message_data, result), None))
        return committed_queued(broker, built, at=at, sent_ms=int(at.timestamp() * 1000))

    def _until_stored(self, write: Callable[[], bool]) -> bool:
        """Run a status write, again and again with backoff while the store is unreachable.

        The step's work is done and stored; only its status is missing. Waiting here keeps
        the message (and its next step) instead of redoing the work, up to ``outage_wait_s``;
        after that the item is left at its status for the sweep to re-queue.
        """
        deadline = time.monotonic() + self.outage_wait_s
        pause_s = 0.25
        while True:
            try:
                return write()
            except Exception as ex:
                if not is_store_outage(ex) or time.monotonic() + pause_s > deadline:
                    raise
                self.logger.warning("Store unavailable for a status write; trying again in %.2f s: %s", pause_s,
                                    outage_text(ex))
            time.sleep(pause_s)
            pause_s = min(pause_s * 2, 5.0)

    def _fail(self, message: MessageProxy, step: Step, base: NewEvent, exception: BaseException) -> None:
        if isinstance(exception, StaleRun):
            self._supersede(message, base, exception)
            return
        error = {
            "step": step.name, "type": type(exception).__name__, "message": str(exception),
            "attempt": base.attempt, "permanent": isinstance(exception, PermanentError),
            "traceback": "".join(traceback.format_exception(exception, limit=30)),
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        event = NewEvent(**{**base.__dict__, "event": "failed", "error_type": error["type"],
                            "error_message": error["message"]})
        try:
            self._store(message, step).items.update(base.item_id, error=error, event=event)
        except StaleRun as ex:
            # A superseded run's failure is not the item's: the current run (or status) stands.
            self._supersede(message, base, ex)
        except Exception:  # Logged and counted; the message's own retry or dead letter still happens.
            self._count_failed_write()
            self.logger.exception("Could not record the failure of item %r.", base.item_id)

    def _supersede(self, message: MessageProxy, base: NewEvent, exception: StaleRun) -> None:
        """Mark ``message`` as a superseded run's, so ``Retries`` acknowledges it, and record that."""
        message.options[SUPERSEDED_OPTION] = True
        self.logger.warning("Run %r of item %r was superseded; its work is dropped.", exception.token, base.item_id)
        self._record(NewEvent(**{**base.__dict__, "event": "superseded", "detail": {"run": exception.token}}))

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._started.pop(message.message_id, None)

    def after_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        step = message_step(broker, message)
        if step is None:
            return
        event = NewEvent(item_id=message.args[0], event="dead_lettered", step=step.name,
                         message_id=message.message_id, worker=worker_name(),
                         detail={"retries": message.options.get("retries", 0), "queue": message.queue_name})
        try:
            self._store(message, step).items.update(message.args[0], dead_lettered=True, event=event)
        except StaleRun:
            self.logger.warning("Dead letter %r belongs to a superseded run of item %r; item left as it is.",
                                message.message_id, message.args[0])
        except Exception:  # Logged and counted; the message itself is already in the dead-letter queue.
            self._count_failed_write()
            self.logger.exception("Could not mark item %r dead-lettered.", message.args[0])

