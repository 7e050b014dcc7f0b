"""Step stops: a running step whose item is cancelled or deleted stops at its next safe point.

For each step message a worker runs, this middleware installs a stop check for the worker's
thread (``autolog.stops``): the item is read at most every ``every_s`` seconds while the
step's subprocesses run or its transcriber moves between speech windows (a read the store
cannot answer, an outage, stops nothing). When the check
fires, the subprocess is killed and the actor raises ``StepCancelled``, which the actor's
``stoppable`` wrapper turns into a skip, so nothing is stored, retried or dead-lettered; this
middleware removes the files the stopped run wrote (its own run folder, which the store never
pointed at) and records a ``stopped`` event on the item's timeline.
"""

from __future__ import annotations

import logging
import shutil
import threading
from contextvars import Token
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy

from autolog.errors import ItemNotFound
from autolog.steps import run_folder
from autolog.stops import install_check, remove_check, throttled
from autolog.store import NewEvent, is_store_outage
from middleware._steps import message_step
from middleware.services import Services
from middleware.status_writes import RUN_OPTION


class StepStops(dramatiq.Middleware):
    """Lets a running step notice that its item was cancelled.

    Args:
        services: the process's services, for the store.
        every_s: how often a running step reads its item, at most.
    """

    def __init__(self, *, services: Services, every_s: float = 0.5) -> None:
        self.logger = logging.getLogger(__name__)
        self._services = services
        self.every_s = every_s
        self._lock = threading.Lock()
        self._tokens: dict[str, Token[Any]] = {}
        self._stopped: set[str] = set()

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if message_step(broker, message) is None or not self._services.is_ready:
            return
        item_id = message.args[0]
        store = self._services.current().store
        message_id = message.message_id

        def cancelled() -> bool:
            try:
                stop = store.items.get(item_id).cancelled
            except ItemNotFound:
                stop = True
            except Exception as ex:
                if not is_store_outage(ex):
                    raise
                # A store that does not answer cancelled nothing: the step goes on (its status write waits
                # the outage out) and the next check reads again. Raised, it killed the step's tool mid-run
                # and lost its work to a failover of a second.
                self.logger.debug("Cancel check of item %r skipped: the store is unavailable: %s", item_id, ex)
                return False
            if stop:
                with self._lock:
                    self._stopped.add(message_id)
            return stop

        token = install_check(throttled(cancelled, every_s=self.every_s))
        with self._lock:
            self._tokens[message_id] = token

    def _end(self, message: MessageProxy) -> bool:
        with self._lock:
            token = self._tokens.pop(message.message_id, None)
            stopped = message.message_id in self._stopped
            self._stopped.discard(message.message_id)
        if token is not None:
            remove_check(token)
        return stopped

    def after_process_message(
        self, broker: dramatiq.Broker, message: MessageProxy, *, result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._end(message)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if not self._end(message):
            return
        step = message_step(broker, message)
        context = self._services.current()
        token = message.options.get(RUN_OPTION)
        if step is not None and token:
            shutil.rmtree(run_folder(context.settings.artifacts_root, message.args[0], step.name, str(token)),
                          ignore_errors=True)
        try:
            context.store.timeline.record(NewEvent(
                item_id=message.args[0], event="stopped", step=step.name if step else None,
                message_id=message.message_id, attempt=message.options.get("retries", 0) + 1,
                detail={"reason": "the item was cancelled while the step ran"}))
        except ItemNotFound:
            pass
        except Exception:  # A hook must never raise; the stop itself already happened.
            self.logger.exception("Could not record the stop of %r.", message.message_id)

