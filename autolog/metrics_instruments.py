"""The per-process metrics of message processing, created at process boot.

Every metric is labelled by ``queue_name`` and ``actor_name``; some add an ``outcome`` or a
``status``. They are registered nowhere: in a worker their values go to the multiprocess
folder, and the pool's exporter sums every process's files.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge, Histogram

Metric = TypeVar("Metric", Counter, Gauge, Histogram)

LABELS = ("queue_name", "actor_name")

#: How a delivered message ended: its actor returned, raised, or a middleware skipped it.
OUTCOMES = ("succeeded", "failed", "skipped")

#: A status write either moved the item or was refused (moved or cancelled meanwhile).
TRANSITION_OUTCOMES = ("applied", "refused")

#: Step run times, in seconds: from sub-second probes to the 30 min time limit of steps 3 and 4.
DURATION_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)

#: Waits in a queue, in seconds.
WAIT_BUCKETS_S = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200)

#: First enqueue to a terminal status, in seconds; includes time spent waiting for a prompt.
PIPELINE_BUCKETS_S = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400, 604800)


@dataclass(frozen=True)
class Instruments:
    """The counters, gauges and histograms the ``Metrics`` middleware updates."""

    messages: Counter
    retries: Counter
    dead_letters: Counter
    in_progress: Gauge
    duration: Histogram
    queue_wait: Histogram
    transitions: Counter
    pipeline_duration: Histogram
    status_write_failures: Counter
    #: Labelled children already looked up: ``labels()`` takes a lock on every call.
    _children: dict[tuple[int, tuple[str, ...]], Any] = field(default_factory=dict, compare=False, repr=False)

    def child(self, metric: Metric, *labels: str) -> Metric:
        """Return ``metric.labels(*labels)``, remembered."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        child: Metric = found
        return child

    @classmethod
    def create(cls) -> Instruments:
        """Create the metrics, unregistered: their values go wherever this process keeps values."""
        return cls(
            messages=Counter("autolog_messages", "Messages delivered to a worker, by outcome.",
                             [*LABELS, "outcome"], registry=None),
            retries=Counter("autolog_message_retries", "Messages re-enqueued for another attempt.",
                            LABELS, registry=None),
            dead_letters=Counter("autolog_messages_dead_lettered", "Messages moved to the dead-letter queue.",
                                 LABELS, registry=None),
            in_progress=Gauge("autolog_messages_in_progress", "Messages being processed now.", LABELS,
                              registry=None, multiprocess_mode="livesum"),
            duration=Histogram("autolog_message_duration_seconds", "Time to process a message, by outcome.",
                               [*LABELS, "outcome"], buckets=DURATION_BUCKETS_S, registry=None),
            queue_wait=Histogram("autolog_message_queue_wait_seconds",
                                 "Time from a message being due (enqueued, or its delay over) to its start.",
                                 LABELS, buckets=WAIT_BUCKETS_S, registry=None),
            transitions=Counter("autolog_status_transitions", "Item status writes after a step, by target status.",
                                [*LABELS, "status", "outcome"], registry=None),
            pipeline_duration=Histogram("autolog_pipeline_duration_seconds",
                                        "Time from an item's creation (its first enqueue) to a terminal status.",
                                        LABELS, buckets=PIPELINE_BUCKETS_S, registry=None),
            status_write_failures=Counter("autolog_status_write_failures",
                                          "Status or timeline writes that failed (logged; the item stays put).",
                                          LABELS, registry=None),
        )

    def prepare(self, queue_name: str, actor_name: str, *, statuses: Iterable[str] = (),
                terminal: bool = False) -> None:
        """Create an actor's series at zero, so rates and alerts see it before its first message."""
        labels = (queue_name, actor_name)
        for outcome in OUTCOMES:
            self.messages.labels(*labels, outcome)
            self.duration.labels(*labels, outcome)
        self.retries.labels(*labels)
        self.dead_letters.labels(*labels)
        self.in_progress.labels(*labels)
        self.queue_wait.labels(*labels)
        self.status_write_failures.labels(*labels)
        for status in statuses:
            for outcome in TRANSITION_OUTCOMES:
                self.transitions.labels(*labels, status, outcome)
        if terminal:
            self.pipeline_duration.labels(*labels)


class Tally:
    """Metric changes gathered in memory, then written to the metric values in one batch.

    In a worker every change of a metric value is a write to the process's file of values
    (``autolog.metrics_multiproc``): a lock, a pid check and a packed double, eight for each
    message, about a tenth of what autolog's middleware costs a no-op message (issue #13,
    ``bench/chain_instructions.py``). Here a change is a pair appended to a deque (thread-safe
    without a lock: a worker's threads add while another flushes) and ``flush`` writes each
    series once for all of its changes: a counter or gauge its summed change, a histogram its
    sum and each bucket's count, as ``Histogram.observe`` would have written them one by one.

    Until a flush the changes are in this process only: a scrape shows them once flushed, and a
    process that dies before then loses them (about one flush interval's counts). Additions and
    observations wait apart: telling a histogram from a counter by ``isinstance`` at each flushed
    change cost about half a µs (prometheus_client's metrics derive from its ``Collector`` protocol,
    whose metaclass is ``typing``'s): 135 of the flush thread's 334 samples in a drain's profile.
    """

    def __init__(self) -> None:
        self._added: deque[tuple[Counter | Gauge, float]] = deque()
        self._observed: deque[tuple[Histogram, float]] = deque()
        self._flushing = threading.Lock()

    def __len__(self) -> int:
        """How many changes wait for a flush."""
        return len(self._added) + len(self._observed)

    def add(self, child: Counter | Gauge, amount: float = 1.0) -> None:
        """Add ``amount`` to a labelled counter or gauge (negative: a gauge's decrease) at the next flush."""
        self._added.append((child, amount))

    def observe(self, child: Histogram, value: float) -> None:
        """Observe ``value`` in a labelled histogram at the next flush."""
        self._observed.append((child, value))

    def flush(self) -> int:
        """Write every change added so far (one flush at a time); return how many there were.

        Raises:
            the first error of a series that could not be written, once every other series is written
            (the changes taken are not kept: a metric file that cannot be written loses them).
        """
        with self._flushing:
            sums: dict[Any, float] = {}
            observed: dict[Any, tuple[list[float], list[int]]] = {}
            taken = 0
            added, observations = self._added, self._observed
            while added:
                child, amount = added.popleft()
                taken += 1
                sums[child] = sums.get(child, 0.0) + amount
            while observations:
                histogram, value = observations.popleft()
                taken += 1
                # NOTE(metrics): a labelled histogram's bounds, sum and bucket values are
                # prometheus_client's own (``Histogram._metric_init``); ``observe`` adds to the sum
                # and to the first bucket whose bound is >= the value, which ``bisect_left`` finds.
                # tests/unit/observability pins this against upgrades.
                total, counts = observed.setdefault(histogram, ([0.0], [0] * len(histogram._upper_bounds)))
                total[0] += value
                if value == value:  # NaN is in no bucket (no bound is >= it), only in the sum
                    counts[bisect.bisect_left(histogram._upper_bounds, value)] += 1
            failed: Exception | None = None
            # Each series on its own: one that cannot be written does not lose the others.
            for child, change in sums.items():
                try:
                    if change:  # a gauge's +1 and -1 of a message both flushed together write nothing
                        child.inc(change)
                except Exception as ex:
                    failed = failed or ex
            for child, (total, counts) in observed.items():
                try:
                    child._sum.inc(total[0])
                    for bucket, count in zip(child._buckets, counts, strict=True):
                        if count:
                            bucket.inc(count)
                except Exception as ex:
                    failed = failed or ex
            if failed is not None:
                raise failed
            return taken
