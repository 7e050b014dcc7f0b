"""Discovery: queue pending items and re-queue items stuck with no message in flight.

A scan reads the items first and the broker second, so an item enqueued or advanced
between the two reads is seen in flight and left alone. Queuing an item twice is harmless
anyway: every status change is a compare-and-set and a worker skips a message whose item
has moved on. Items that failed permanently, were dead-lettered, purged or cancelled are left for
a person: re-queuing them would only fail again.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from sqlalchemy.exc import SQLAlchemyError

from autolog.broker_state import messages_in_flight
from autolog.context import Context
from autolog.errors import AutologError
from autolog.settings import Settings
from autolog.statuses import STEPS, Status
from autolog.store import ItemView, NewEvent
from pipelines.footage import enqueue_from

logger = logging.getLogger(__name__)

#: A pending item younger than this is left to the request that stored it, in seconds.
PENDING_GRACE_S = 5.0

#: Items read per query while scanning one status.
PAGE_SIZE = 500


@dataclass(frozen=True)
class DiscoveryReport:
    """What one scan did."""

    at: datetime
    queued: tuple[str, ...]
    requeued: tuple[str, ...]
    in_flight: int

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"at": self.at.isoformat(), "queued": list(self.queued), "requeued": list(self.requeued),
                "in_flight": self.in_flight}


def items_in_flight(client: redis.Redis, namespace: str, queues: Iterable[str]) -> set[str]:
    """Return the ids of items with a message queued, delayed, held by a pause or being processed."""
    return {item for message in messages_in_flight(client, namespace, queues)
            if (item := message.item_id) is not None}


def _resting(item: ItemView) -> bool:
    """True when the item waits for a person: cancelled, dead-lettered, purged or failed for good."""
    return item.cancelled or item.dead_lettered or item.purged or bool(item.error and item.error.get("permanent"))


def _candidates(context: Context, status: Status, older_than: datetime) -> Iterator[ItemView]:
    after: str | None = None
    while page := context.store.items.list(status=status, updated_before=older_than, after_id=after,
                                           limit=PAGE_SIZE):
        yield from (item for item in page if not _resting(item))
        after = page[-1].id


def scan(
    context: Context,
    broker: Any,
    *,
    now: datetime | None = None,
    stuck_after_s: float | None = None,
    pending_after_s: float = PENDING_GRACE_S,
) -> DiscoveryReport:
    """Queue pending items and re-queue stuck ones that no message is working on.

    Args:
        broker: the ``RedisBroker`` whose queues show what is in flight.
        now: the scan's clock; items updated within the grace periods before it are skipped.
        stuck_after_s: how long an item may sit at a step's status; default from settings.

    Raises:
        redis.RedisError: Redis is down; nothing was queued after the failure.
    """
    now = now or datetime.now(UTC)
    stuck = timedelta(seconds=context.settings.discovery_stuck_after_s if stuck_after_s is None else stuck_after_s)
    candidates: list[ItemView] = []
    for step in STEPS:
        grace = timedelta(seconds=pending_after_s) if step.from_status is Status.PENDING_FILE_INFO else stuck
        candidates.extend(_candidates(context, step.from_status, now - grace))
    busy = items_in_flight(broker.client, broker.namespace, sorted(broker.get_declared_queues()))
    queued: list[str] = []
    requeued: list[str] = []
    for item in candidates:
        if item.id in busy:
            continue
        pending = item.status is Status.PENDING_FILE_INFO
        context.store.timeline.record(NewEvent(
            item_id=item.id, event="rediscovered", from_status=item.status.value,
            detail={"reason": "pending, never queued" if pending else "stuck with no message in flight"}))
        enqueue_from(item.id, item.status)
        (queued if pending else requeued).append(item.id)
    if queued or requeued:
        logger.info("Discovery queued %d pending and re-queued %d stuck items.", len(queued), len(requeued))
    return DiscoveryReport(at=now, queued=tuple(queued), requeued=tuple(requeued), in_flight=len(busy))


@dataclass
class DiscoveryLoop:
    """Runs a scan now and then every ``interval_s`` until stopped; survives outages between scans."""

    scan: Callable[[], DiscoveryReport]
    interval_s: float
    reports: list[DiscoveryReport] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        """Scan until ``stop`` is called; a failed scan is logged and tried again next time."""
        while not self._stop.is_set():
            try:
                self.reports[:] = [self.scan()]
            except (redis.RedisError, SQLAlchemyError, AutologError):
                logger.warning("Discovery scan failed; retrying in %.0f s.", self.interval_s, exc_info=True)
            self._stop.wait(self.interval_s)

    def start(self) -> None:
        """Run the loop on a daemon thread."""
        self._thread = threading.Thread(target=self.run, name="autolog-discovery", daemon=True)
        self._thread.start()

    def stop(self, *, timeout_s: float = 10.0) -> None:
        """Ask the loop to stop and wait for its thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def is_running(self) -> bool:
        """True while the loop's thread runs."""
        return self._thread is not None and self._thread.is_alive()


def main(argv: Sequence[str] | None = None) -> int:
    """Run discovery in this process until SIGTERM: the entry point of ``POST /run/lf_discovery``.

    ``argv`` may hold ``--pid-file PATH``; the file is removed on a clean exit.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    pid_file = Path(args[args.index("--pid-file") + 1]) if "--pid-file" in args else None
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Imported here: importing ``actors`` builds the broker from the environment just read.
    import actors

    context = Context.build(settings)
    actors.services().install(context)
    loop = DiscoveryLoop(scan=lambda: scan(context, actors.broker), interval_s=settings.discovery_interval_s)
    signal.signal(signal.SIGTERM, lambda *_: loop.stop(timeout_s=0))
    signal.signal(signal.SIGINT, lambda *_: loop.stop(timeout_s=0))
    logger.info("Discovery started (pid %d, every %.0f s).", os.getpid(), settings.discovery_interval_s)
    started = time.monotonic()
    loop.run()
    logger.info("Discovery stopped after %.0f s.", time.monotonic() - started)
    context.close()
    if pid_file is not None and pid_file.is_file() and pid_file.read_text().strip() == str(os.getpid()):
        pid_file.unlink()
    return 0
