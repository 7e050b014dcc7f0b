"""Discovery, the always-on sweep: the recovery that runs with the stack, nobody acting.

Every ``discovery_interval_s`` the one sweep holding the cluster-wide lease relays the
outbox (what a crash or outage left there), gives back the messages of workers whose
heartbeat expired (lost or frozen), puts back delayed messages stranded by a Redis
reconnect, queues pending items and re-queues items stuck with no message in flight (lost to a
crash, a Redis restart or a failed enqueue). It also folds the status count changes, so
counting items per status stays as quick at 100,000 items as at 1,000.

A scan reads the items first and the broker second, so an item enqueued or advanced
between the two reads is seen in flight and left alone. Queuing an item twice is harmless
anyway: every status change is a compare-and-set and a worker skips a message whose item
has moved on. Items that failed permanently, were dead-lettered, purged or cancelled are left for
a person: re-queuing them would only fail again.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from sqlalchemy.exc import SQLAlchemyError

from autolog.broker_state import (
    Redelivery,
    messages_in_flight,
    put_back_event,
    redeliver_from_dead_workers,
    requeue_stranded,
    stored_message,
)
from autolog.context import Context
from autolog.errors import AutologError
from autolog.lease import Lease
from autolog.source_state import SourceFingerprint, SourceStat, source_changed
from autolog.sources import is_remote
from autolog.statuses import STEPS, Status
from autolog.store import ItemView, NewEvent
from middleware import relay_outbox
from pipelines.actions import SOURCE_CHANGED_AFTER_FAILURE, restart_changed_source, retry
from pipelines.footage import enqueue_from

logger = logging.getLogger(__name__)

#: A pending item younger than this is left to the request that stored it, in seconds.
PENDING_GRACE_S = 5.0

#: Items read per query while scanning one status.
PAGE_SIZE = 500


#: The lease that makes one sweep cluster-wide act, under the broker's namespace.
LEASE_KEY = "__autolog_sweep__"


@dataclass(frozen=True)
class DiscoveryReport:
    """What one sweep did; a sweep that did not hold the lease did nothing (``leader`` False)."""

    at: datetime
    queued: tuple[str, ...]
    requeued: tuple[str, ...]
    in_flight: int
    #: Delayed messages found stranded in a live worker's ack set and put back on their delay queue.
    stranded: tuple[str, ...] = ()
    leader: bool = True
    #: Messages a dead (lost or frozen) worker held, put back on their queues.
    redelivered: tuple[str, ...] = ()
    #: Logged items whose source changed since step 1, started again at step 1 (``recheck_logged_sources``).
    restarted: tuple[str, ...] = ()
    #: Items that failed step 1 and whose source changed since, queued again (``retry_changed_failures``).
    retried: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"at": self.at.isoformat(), "queued": list(self.queued), "requeued": list(self.requeued),
                "in_flight": self.in_flight, "stranded": list(self.stranded), "leader": self.leader,
                "redelivered": list(self.redelivered), "restarted": list(self.restarted),
                "retried": list(self.retried)}


def items_in_flight(client: redis.Redis, namespace: str, queues: Iterable[str]) -> set[str]:
    """Return the ids of items with a message queued, delayed, held by a pause or being processed."""
    return {item for message in messages_in_flight(client, namespace, queues)
            if (item := message.item_id) is not None}


def redeliver_lost(context: Context, broker: Any, queues: Iterable[str], *, now_ms: int) -> list[str]:
    """Give back the messages of workers whose heartbeat expired; return their (dramatiq) message ids.

    A step message put back gets a ``redelivered`` event on its item's timeline, naming the
    worker and how long ago it last beat. The rule is dramatiq's (``broker.heartbeat_timeout``,
    see ``autolog.broker_state.redeliver_from_dead_workers``), applied on every sweep.

    Raises:
        redis.RedisError: Redis could not be reached.
    """
    moved = redeliver_from_dead_workers(broker.client, broker.namespace, queues, now_ms=now_ms,
                                        heartbeat_timeout_ms=int(broker.heartbeat_timeout))
    if not moved:
        return []
    logger.warning("Put back %d message(s) of worker(s) whose heartbeat expired: %s", len(moved),
                   ", ".join(sorted({redelivery.worker_id for redelivery in moved})))
    try:
        context.store.timeline.record_many([event for redelivery in moved
                                            if (event := _redelivered_event(redelivery, now_ms)) is not None])
    except SQLAlchemyError:  # The messages are back on their queues; only their events are missing.
        logger.warning("Could not record %d redelivery event(s).", len(moved), exc_info=True)
    return [redelivery.message.message_id for redelivery in moved]


def _redelivered_event(redelivery: Redelivery, now_ms: int) -> NewEvent | None:
    silent_s = round((now_ms - redelivery.last_beat_ms) / 1000, 1)
    # Stamped with the sweep's time, taken before the put back: recorded after it, the event must
    # still read before the start of the worker that took the message meanwhile (timelines order by time).
    return put_back_event(redelivery.message, "redelivered", at=datetime.fromtimestamp(now_ms / 1000, UTC), detail={
        "worker_id": redelivery.worker_id, "silent_s": silent_s,
        "reason": f"put back on its queue: its worker stopped beating {silent_s:g} s ago (lost or frozen)"})


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
    """Queue pending items and re-queue stuck ones that no message is working on, in Redis or in the outbox.

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
    # A message still in the outbox (its sender's lease not yet run out: the relay leaves it to its
    # sender until then) is on its way: another of the scan's own ran the item's step twice at once.
    sending = {message.item_id for pending in context.store.outbox.unsent()
               if (message := stored_message(pending.message)) is not None} if candidates else set()
    queued: list[str] = []
    requeued: list[str] = []
    for item in candidates:
        if item.id in busy or item.id in sending:
            continue
        pending = item.status is Status.PENDING_FILE_INFO
        context.store.timeline.record(NewEvent(
            item_id=item.id, event="rediscovered", from_status=item.status.value,
            detail={"reason": "pending, never queued" if pending else "stuck with no message in flight"}))
        enqueue_from(item.id, item.status, source=item.source)
        (queued if pending else requeued).append(item.id)
    if queued or requeued:
        logger.info("Discovery queued %d pending and re-queued %d stuck items.", len(queued), len(requeued))
    return DiscoveryReport(at=now, queued=tuple(queued), requeued=tuple(requeued), in_flight=len(busy))


#: How many logged items' sources one sweep looks at, at most; the next sweep goes on from there.
RECHECKS_PER_SWEEP = 2_000


#: How many sources found to hold their logged bytes ``SourceRecheck`` remembers, at most.
SAME_BYTES_KEPT = 100_000


@dataclass
class SourceRecheck:
    """What a sweep's recheck of logged sources keeps between sweeps (``recheck_logged_sources``)."""

    #: The last item id looked at when a sweep's share ran out; the next sweep starts after it (None: from the start).
    cursor: str | None = None
    #: Per item, the size and modification time of a source found to hold the bytes step 1 read
    #: (only its time had moved): not read again while its stat stays so.
    same_bytes: dict[str, tuple[int, int]] = field(default_factory=dict)


def recheck_logged_sources(context: Context, *, now: datetime, state: SourceRecheck | None = None) -> list[str]:
    """Start again at step 1 each item ingested within ``Settings.source_recheck_s`` and logged whose source changed.

    Step 1 waits for a source to settle (``Settings.source_settle_s`` without a change), and
    steps 2 to 6 check it has not changed since step 1; a copy that stalls for longer than the
    window and then goes on after the last step would leave a log of the partial file, which
    nothing looked at again (``16_full.ts`` of the footage cases, its copy paused for 9 s).
    A source is looked at with a stat first: its full fingerprint (``source_changed``: size,
    times and a hash of both ends) is read only when the size or modification time differs;
    a file whose size and ends are unchanged (only its time moved) is not logged again, nor read
    again while its stat stays so (``state``). The window runs from the item's creation, so a file
    that keeps changing (a recorder appending) is logged again for that long, not for ever. At most
    ``RECHECKS_PER_SWEEP`` items a sweep, the next going on after the last (``state``): a bulk
    ingest's stats are spread over sweeps. ``s3://`` sources, items without a fingerprint, items
    waiting for a person and missing files are left alone.

    Returns:
        The ids of the items started again (``pipelines.actions.restart_changed_source``).
    """
    window_s = context.settings.source_recheck_s
    if window_s <= 0:
        return []
    state = state if state is not None else SourceRecheck()
    restarted: list[str] = []
    looked = 0
    since = now - timedelta(seconds=window_s)
    after, state.cursor = state.cursor, None
    while looked < RECHECKS_PER_SWEEP and (page := context.store.items.list(
            status=Status.AVID_DESCRIPTION, updated_after=since, after_id=after, limit=PAGE_SIZE)):
        for item in page:
            after = item.id
            if (item.created_at < since or _resting(item) or is_remote(item.source)
                    or not item.source_fingerprint):
                continue
            looked += 1
            if _changed_since_logged(context, item, state):
                restarted.append(item.id)
            if looked >= RECHECKS_PER_SWEEP:
                state.cursor = item.id  # The share ran out: the next sweep goes on after this one.
                break
    if restarted:
        logger.warning("Sources of %d logged items changed since step 1; logging them again: %s", len(restarted),
                       ", ".join(restarted))
    return restarted


def _changed_since_logged(context: Context, item: ItemView, state: SourceRecheck) -> bool:
    """Restart ``item`` at step 1 if its source's bytes changed since step 1; tell whether it was."""
    stored = SourceFingerprint.from_dict(item.source_fingerprint or {})
    path = Path(item.source)
    try:
        stat = SourceStat.of(path)
        current = (stat.size_bytes, stat.mtime_ns)
        if current == (stored.size_bytes, stored.mtime_ns) or state.same_bytes.get(item.id) == current:
            return False
        found = source_changed(stored, path)
    except (AutologError, OSError):
        return False  # A file gone or unreadable is the next step's (or a person's) to report, not a change.
    if found is None or (found.size_bytes, found.head_tail_sha256) == (stored.size_bytes, stored.head_tail_sha256):
        # Only its time moved (a touch, a card mounted again where the zone moved FAT's local times):
        # the same bytes, already logged.
        if len(state.same_bytes) >= SAME_BYTES_KEPT:
            state.same_bytes.clear()  # Bounded: those left the window long ago, or are read once more.
        state.same_bytes[item.id] = current
        return False
    state.same_bytes.pop(item.id, None)
    try:
        restart_changed_source(context, item, found)
    except AutologError:
        return False  # Cancelled or moved on meanwhile.
    return True


def retry_changed_failures(context: Context, *, now: datetime) -> list[str]:
    """Queue step 1 again for each item that failed it within ``Settings.source_recheck_s``, its source changed since.

    The other half of ``recheck_logged_sources``: a copy that stalled for longer than the settle
    window can fail step 1 for good (an MP4 whose index comes last: "not media"), dead-lettered
    at once, and nobody retried it when the copy went on (``16_full.mp4`` of the footage cases, its
    copy paused for 9 s). Step 1 stored no fingerprint, so a change is a modification time after the
    item's failure was written (its ``updated_at``) and not after ``now``: a file dated in the future
    would be retried at every sweep. A copy that went on in the milliseconds between
    the probe's read and that write is not seen; a person's retry remains. The ``retry``'s
    ``retry_requested`` event gives the reason (``SOURCE_CHANGED_AFTER_FAILURE``), in the same write;
    an item with a message in flight (queued again already, by this or by a person) is answered
    with it, and nothing is written.

    Returns:
        The ids of the items queued again.

    Raises:
        redis.RedisError: Redis is down; nothing was queued after the failure.
    """
    window_s = context.settings.source_recheck_s
    if window_s <= 0:
        return []
    retried: list[str] = []
    after: str | None = None
    since = now - timedelta(seconds=window_s)
    while page := context.store.items.list(status=Status.PENDING_FILE_INFO, failed=True, updated_after=since,
                                           after_id=after, limit=PAGE_SIZE):
        after = page[-1].id
        for item in page:
            if item.cancelled or item.purged or is_remote(item.source):
                continue
            try:
                modified_s = SourceStat.of(Path(item.source)).mtime_ns / 1e9
                # A time in the future (a camera's clock, a FAT card's zone) tells nothing: it would retry for ever.
                changed = item.updated_at.timestamp() < modified_s <= now.timestamp()
            except (AutologError, OSError):
                continue  # Gone or unreadable: step 1 said what it found.
            if not changed:
                continue
            try:
                answer = retry(context, item.id, reason=SOURCE_CHANGED_AFTER_FAILURE)
            except AutologError:
                continue  # Cancelled or deleted meanwhile.
            if not answer.already_queued:
                retried.append(item.id)
    if retried:
        logger.warning("Sources of %d items that failed step 1 changed since; queueing step 1 again: %s",
                       len(retried), ", ".join(retried))
    return retried


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


@dataclass
class Sweep:
    """One sweep: outbox relayed, lost and stranded messages put back, pending and stuck items queued, counts folded.

    Only the holder of the cluster-wide lease acts; every other sweep (another host's, or a
    spare) renews nothing and does nothing until the lease expires.
    """

    context: Context
    broker: Any
    lease: Lease
    #: What the recheck of logged sources keeps from one sweep to the next.
    recheck: SourceRecheck = field(default_factory=SourceRecheck)

    def run_once(self) -> DiscoveryReport:
        """Sweep once if this sweep holds (or can take) the lease.

        Raises:
            redis.RedisError, SQLAlchemyError: Redis or the database could not be reached.
        """
        now = datetime.now(UTC)
        if not self.lease.acquire():
            return DiscoveryReport(at=now, queued=(), requeued=(), in_flight=0, leader=False)
        # What a crash or an outage left in the outbox goes first, so its items are in flight for the scan.
        relay_outbox(self.broker, self.context.store.outbox, now=now.timestamp())
        queues = sorted(self.broker.get_declared_queues())
        now_ms = int(now.timestamp() * 1000)
        redelivered = redeliver_lost(self.context, self.broker, queues, now_ms=now_ms)
        stranded = requeue_stranded(self.broker.client, self.broker.namespace, queues, now_ms=now_ms)
        if stranded:
            logger.warning("Put back %d delayed message(s) stranded in live workers' ack sets: %s",
                           len(stranded), ", ".join(stranded))
        self.context.store.items.fold_status_counts()
        restarted = recheck_logged_sources(self.context, now=now, state=self.recheck)
        retried = retry_changed_failures(self.context, now=now)
        return dataclasses.replace(scan(self.context, self.broker, now=now), stranded=tuple(stranded),
                                   redelivered=tuple(redelivered), restarted=tuple(restarted),
                                   retried=tuple(retried))


def lease_ttl_ms(interval_s: float) -> int:
    """How long the sweep's lease lasts: three sweeps, at least two seconds."""
    return int(max(3 * interval_s, 2.0) * 1000)
