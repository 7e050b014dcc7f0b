"""Lifecycle logs: one structured line per message event, with the message bound as log context.

While a message is processed, its item id, message id, actor, queue and attempt are bound
to the log context (``autolog.logs``), so every line any code logs for it carries them. It is
the first middleware: its ``before_*`` hooks run before all others and its ``after_*`` hooks
after all others, so the context covers every other middleware's logs for the message.

Events (the ``event`` field), after seed 004: ``worker_started``, ``stage_started``,
``stage_completed``, ``item_completed``, ``stage_failed``, ``retry_scheduled``,
``stage_skipped``, ``stage_held`` (a delivery held for its paused queue, ``QueuePauses``),
``dead_lettered``, ``worker_shutdown_complete``.
"""

from __future__ import annotations

import logging
import logging.config
import threading
import time
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy

from autolog.logs import bind_log_context, reset_log_context
from autolog.statuses import Status
from autolog.store import is_store_outage, outage_text
from middleware.queue_pauses import HELD_OPTION
from middleware.status_writes import TRANSITION_OPTION


def _context(message: dramatiq.Message[Any] | MessageProxy) -> dict[str, Any]:
    return {
        "item_id": message.args[0] if message.args and isinstance(message.args[0], str) else None,
        "message_id": message.message_id,
        "actor_name": message.actor_name,
        "queue_name": message.queue_name,
        "attempt": message.options.get("retries", 0) + 1,
    }


class _ThreadState(threading.local):
    """The delivery a worker thread runs, for its hooks (class defaults: none)."""

    #: The log context bound for it (``autolog.logs``).
    token: Any = None
    #: Its message's id and ``retries``: ``Retries`` re-enqueues a failure with one more.
    delivered: tuple[str, int] | None = None


class LifecycleLogs(dramatiq.Middleware):
    """Logs the lifecycle of every message and worker, and binds each message's log context.

    Args:
        log_config: a ``logging.config.dictConfig`` document applied when a worker process
            boots (dramatiq's CLI has already pointed stderr at its log pipe); None keeps
            dramatiq's own configuration.
    """

    def __init__(self, *, log_config: dict[str, Any] | None = None) -> None:
        self.logger = logging.getLogger(__name__)
        self._log_config = log_config
        self._started: dict[str, float] = {}
        self._local = _ThreadState()

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        if self._log_config is not None:
            logging.config.dictConfig(self._log_config)

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        queues = sorted(worker.consumer_whitelist or broker.get_declared_queues())
        self.logger.info("Worker started on %s with %d threads.", ", ".join(queues), worker.worker_threads,
                         extra={"event": "worker_started", "queues": queues, "threads": worker.worker_threads})

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        self.logger.info("Worker shut down.", extra={"event": "worker_shutdown_complete"})

    def after_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None) -> None:
        # A retry is enqueued by ``Retries`` in the thread whose delivery failed, inside its hooks (this
        # middleware's after_process_message runs last), with a delay and one more retry counted; a wait for
        # the store keeps the count, and a delayed message's move to its queue (another thread) has no delay.
        delivered = self._local.delivered
        if (delay is not None and delivered is not None and delivered[0] == message.message_id
                and message.options.get("retries", 0) > delivered[1]):
            self.logger.info("Retry of %r scheduled in %d ms.", message.message_id, delay,
                             extra={**_context(message), "event": "retry_scheduled", "delay_ms": delay})

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._local.token = bind_log_context(**_context(message))
        self._local.delivered = (message.message_id, message.options.get("retries", 0))
        self._started[message.message_id] = time.monotonic()
        self.logger.info("Started %s.", message.actor_name, extra={"event": "stage_started"})

    def _duration_ms(self, message: MessageProxy) -> float | None:
        started = self._started.pop(message.message_id, None)
        return None if started is None else round((time.monotonic() - started) * 1000, 1)

    def after_process_message(
        self, broker: dramatiq.Broker, message: MessageProxy, *, result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        duration_ms = self._duration_ms(message)
        if exception is not None:
            said = outage_text(exception) if is_store_outage(exception) else f"{type(exception).__name__}: {exception}"
            self.logger.warning("Failed %s: %s", message.actor_name, said,
                                extra={"event": "stage_failed", "duration_ms": duration_ms,
                                       "error_type": type(exception).__name__})
        else:
            transition = message.options.get(TRANSITION_OPTION)
            moved: dict[str, Any] = transition if isinstance(transition, dict) else {}
            status = {"from_status": moved["from"], "to_status": moved["to"], "status_applied": moved["applied"]} \
                if moved else {}
            self.logger.info("Completed %s.", message.actor_name,
                             extra={"event": "stage_completed", "duration_ms": duration_ms, **status})
            if moved.get("applied") and Status(moved["to"]).is_terminal:
                self.logger.info("Item reached %r.", moved["to"], extra={"event": "item_completed"})
        self._clear()

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if queue := message.options.get(HELD_OPTION):
            self.logger.info("Held %s until queue %r resumes.", message.actor_name, queue,
                             extra={"event": "stage_held", "duration_ms": self._duration_ms(message)})
        else:
            self.logger.info("Skipped %s.", message.actor_name,
                             extra={"event": "stage_skipped", "duration_ms": self._duration_ms(message)})
        self._clear()

    def after_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self.logger.error("Dead-lettered %r after %d retries.", message.message_id, message.options.get("retries", 0),
                          extra={**_context(message), "event": "dead_lettered"})

    def _clear(self) -> None:
        token = self._local.token
        self._local.token = self._local.delivered = None
        if token is not None:
            reset_log_context(token)
