"""Retries: dramatiq's backoff and dead letters, told two of autolog's faults apart.

- A **superseded run** (``StatusWrites`` marks it: a newer delivery of the step took the
  item over, or the item moved on) is acknowledged: neither retried (a retry would take
  the item back from the current run) nor dead-lettered (the item did not fail).
- A **store outage** (the database unreachable or locked) or a **full disk** (``DiskFull``)
  spends no retry: the message is put back with the same id and ``retries``, after a wait
  that doubles from 1 s up to 10 s across consecutive waits (``WAIT_OPTION``, reason
  ``store`` or ``disk full``), until the fault clears. An item resumes by itself afterwards.
  A tool killed by a signal is an ordinary transient ``ToolFailed``: retried with backoff,
  then dead-lettered.

Everything else is dramatiq's ``Retries``: exponential backoff, ``throws``, dead letters. Each
retry it makes is told to ``on_retry`` (``Metrics`` counts them there: a count made where the
retry is decided, not guessed from enqueues of a failed message's id, which a store wait makes
too, and the delay queue's move to the work queue, from another thread and maybe first).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Retries as DramatiqRetries

from autolog.errors import DiskFull
from autolog.store import is_store_outage
from middleware.status_writes import (
    DISK_FULL_REASON,
    ENDED_WAIT_OPTION,
    STORE_OUTAGE_REASON,
    SUPERSEDED_OPTION,
    wait_out,
)


class Retries(DramatiqRetries):
    """dramatiq's ``Retries`` that acknowledges superseded runs and waits out store outages.

    Args:
        outage_min_delay_ms: first wait after a store outage, doubled per wait.
        outage_max_delay_ms: longest wait between two tries while the store is out.
        options: dramatiq's ``Retries`` options (``max_retries``, ``min_backoff``, ``max_backoff``).

    Attributes:
        on_retry: called in the worker's thread with each message this middleware re-enqueued for
            another attempt (its ``retries`` option already counts it), once the enqueue is done;
            None calls nothing. Not called for a store or disk wait, which spends no retry.
    """

    def __init__(self, *, outage_min_delay_ms: int = 1_000, outage_max_delay_ms: int = 10_000,
                 **options: Any) -> None:
        super().__init__(**options)
        self.logger = logging.getLogger(__name__)
        self.outage_min_delay_ms = outage_min_delay_ms
        self.outage_max_delay_ms = outage_max_delay_ms
        self.on_retry: Callable[[MessageProxy], None] | None = None

    def after_process_message(self, broker: dramatiq.Broker, message: MessageProxy, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        if exception is None:
            return
        if message.options.get(SUPERSEDED_OPTION):
            self.logger.info("Message %r belongs to a superseded run; acknowledged.", message.message_id)
            return
        if is_store_outage(exception) or isinstance(exception, DiskFull):
            wait_out(broker, message, exception,
                     reason=DISK_FULL_REASON if isinstance(exception, DiskFull) else STORE_OUTAGE_REASON,
                     min_delay_ms=self.outage_min_delay_ms, max_delay_ms=self.outage_max_delay_ms)
            return
        # An ordinary failure ends a run of waits: its retry, and any wait after it, counts afresh.
        message.options.pop(ENDED_WAIT_OPTION, None)
        retries = message.options.get("retries", 0)
        super().after_process_message(broker, message, result=result, exception=exception)  # type: ignore[no-untyped-call]
        # dramatiq's Retries counts the attempt in the options, then re-enqueues or fails the message.
        if self.on_retry is not None and not message.failed and message.options.get("retries", 0) > retries:
            self.on_retry(message)
