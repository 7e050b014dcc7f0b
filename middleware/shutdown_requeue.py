"""ShutdownRequeue: a stopping worker gives back the messages its threads did not finish in the grace period.

dramatiq stops a worker process by letting its threads finish for ``--worker-shutdown-timeout``
and putting back the messages no thread had started; the messages still running when the grace
period ends stay in the worker's ack sets, and the process then exits. Left there, they would
wait for the worker's heartbeat to expire before dramatiq's maintenance gave them to another
worker. This middleware puts them back on their queues at once, as they are: a requeue is not a
failure, so no retry is spent. Each step put back gets a ``requeued`` event on its item's
timeline. A run that finishes in the moment before the process exits is harmless: the
redelivered message is refused by the step guard, the item having moved on.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

from autolog.broker_state import decode_message, held_by_worker, put_back_event, stored_messages
from autolog.store import NewEvent
from middleware.services import Services


class ShutdownRequeue(dramatiq.Middleware):
    """Puts back every message this worker process still holds when it has shut down.

    Args:
        services: where the store comes from, for the ``requeued`` events; it must be
            added before this middleware, so that its context is still open here
            (``after_*`` hooks run in reverse).
    """

    def __init__(self, *, services: Services) -> None:
        self.logger = logging.getLogger(__name__)
        self._services = services

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        if not isinstance(broker, RedisBroker):
            return
        events: list[NewEvent] = []
        try:
            for queue, held in held_by_worker(broker.client, broker.namespace, broker.broker_id).items():
                if not queue.endswith(".DQ"):
                    # Read before the requeue: a message another worker fetches and finishes at once
                    # would be gone from the hash afterwards.
                    events += self._requeued_events(broker, queue, held)
                broker.do_requeue(queue, *held)  # type: ignore[attr-defined]
                self.logger.warning("Requeued %d message(s) of %r still running at the end of the grace period.",
                                    len(held), queue)
        except redis.RedisError as ex:
            self.logger.warning("Could not requeue running messages at shutdown (dramatiq's maintenance will, "
                                "once this worker's heartbeat expires): %s", ex)
            return
        if events and self._services.is_ready:
            try:
                self._services.current().store.timeline.record_many(events)
            except Exception:  # The messages are back on their queues; only their events are missing.
                self.logger.exception("Could not record %d requeued event(s).", len(events))

    def _requeued_events(self, broker: RedisBroker, queue: str, held: list[str]) -> list[NewEvent]:
        """Return a ``requeued`` event for each step message among ``held`` (Redis ids of ``queue``)."""
        grace_s = self._services.current().settings.stop_grace_s if self._services.is_ready else None
        reason = ("put back on its queue as it was, no retry spent: still running when its worker stopped"
                  + (f" (after the {grace_s:g} s grace period)" if grace_s is not None else ""))
        worker = f"{socket.gethostname()}:{os.getpid()}"
        return [event for data in stored_messages(broker.client, broker.namespace, queue, held)
                if (event := put_back_event(decode_message(data) if data is not None else None, "requeued",
                                            detail={"reason": reason}, worker=worker)) is not None]
