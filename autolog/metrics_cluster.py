"""Gauges read at scrape time: items by status, queues, live workers, rate limits.

These describe the whole deployment, not one process, so any exporter may serve them: the
API's ``/metrics`` and every worker pool's exporter do. Several exporters then report the
same value, and dashboards and alerts aggregate them with ``max by (...)``, never ``sum``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from autolog.broker_state import QueueStats, read_queue_stats
from autolog.statuses import Status
from autolog.worker_presence import live_by_pool, read_workers


@dataclass(frozen=True)
class RateLimitReading:
    """A shared rate limit's running totals and its state now."""

    limit: str
    calls: int
    waits: int
    upstream_429s: int
    tokens: int
    in_window: int
    in_flight: int
    #: Calls the window admits now: the configured limit times the current scale.
    capacity: float
    pause_remaining_s: float


class ClusterCollector(Collector):
    """Reads deployment-wide gauges from Redis and the store each time it is scraped.

    Args:
        client: Redis, where the broker's queues and the worker registry live.
        namespace: the broker's key prefix.
        heartbeat_timeout_ms: a worker silent this long is not live.
        queues: queues always reported; queues served by registered workers are added.
        pools: pools always reported (zero when none of their workers is live).
        expected: each pool's configured worker processes; for these pools
            ``autolog_pool_degraded`` says whether fewer are live (down or short).
        items: counts items per status (``store.items.count_by_status``); None skips items.
        rate_limits: reads the shared rate limits; None skips them.
    """

    def __init__(
        self, *, client: redis.Redis, namespace: str, heartbeat_timeout_ms: int, queues: Sequence[str] = (),
        pools: Sequence[str] = (), items: Callable[[], Mapping[str, int]] | None = None,
        rate_limits: Callable[[], Iterable[RateLimitReading]] | None = None,
        clock: Callable[[], float] = time.time, expected: Mapping[str, int] | None = None,
    ) -> None:
        self.logger = logging.getLogger(__name__)
        self._client = client
        self._namespace = namespace
        self._timeout_ms = heartbeat_timeout_ms
        self._queues = tuple(queues)
        self._expected: Mapping[str, int] = expected or {}
        self._pools = tuple(dict.fromkeys([*pools, *self._expected]))
        self._items = items
        self._rate_limits = rate_limits
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("autolog_scrape_source_up", "Whether this scrape could read a source (1) or not (0).",
                               labels=["source"])
        now_ms = int(self._clock() * 1000)
        try:
            families = list(self._redis_families(now_ms))
        except redis.RedisError as ex:
            self.logger.warning("Metrics: cannot read Redis: %s", ex)
            up.add_metric(["redis"], 0)
        else:
            up.add_metric(["redis"], 1)
            yield from families
        if self._items is not None:
            try:
                counts = self._items()
            except SQLAlchemyError as ex:
                self.logger.warning("Metrics: cannot read the store: %s", ex)
                up.add_metric(["database"], 0)
            else:
                up.add_metric(["database"], 1)
                yield _items_family(counts)
        if self._rate_limits is not None:
            try:
                readings = list(self._rate_limits())
            except redis.RedisError as ex:
                self.logger.warning("Metrics: cannot read the rate limits: %s", ex)
                readings = []
            yield from _rate_limit_families(readings)
        yield up

    def _redis_families(self, now_ms: int) -> Iterator[Metric]:
        entries = read_workers(self._client, self._namespace, timeout_ms=self._timeout_ms, now_ms=now_ms)
        queues = sorted(set(self._queues) | {queue for entry in entries for queue in entry.info.queues})
        stats = read_queue_stats(self._client, self._namespace, queues, now_ms=now_ms)
        yield from _queue_families(stats)
        processes = GaugeMetricFamily("autolog_pool_live_processes", "Worker processes of a pool that are live.",
                                      labels=["pool"])
        threads = GaugeMetricFamily("autolog_pool_live_threads", "Worker threads in a pool's live processes.",
                                    labels=["pool"])
        expected = GaugeMetricFamily("autolog_pool_expected_processes", "Worker processes a pool is configured with.",
                                     labels=["pool"])
        degraded = GaugeMetricFamily("autolog_pool_degraded",
                                     "Whether a pool has fewer live worker processes than configured (1: down or "
                                     "short) or not (0).", labels=["pool"])
        for pool, counts in sorted(live_by_pool(entries, self._pools).items()):
            processes.add_metric([pool], counts.processes)
            threads.add_metric([pool], counts.threads)
            if pool in self._expected:
                expected.add_metric([pool], self._expected[pool])
                degraded.add_metric([pool], int(counts.processes < self._expected[pool]))
        yield processes
        yield threads
        if self._expected:
            yield expected
            yield degraded


def _queue_families(stats: Mapping[str, QueueStats]) -> Iterator[Metric]:
    specs = (
        ("autolog_queue_ready_messages", "Messages waiting in a queue (its depth).", "ready"),
        ("autolog_queue_delayed_messages", "Messages held back until a later time (retries, waits).", "delayed"),
        ("autolog_queue_in_flight_messages", "Messages fetched by a worker and not yet acknowledged.", "in_flight"),
        ("autolog_queue_dead_lettered_messages", "Messages in a queue's dead-letter set.", "dead"),
        ("autolog_queue_oldest_message_age_seconds", "How long the next message of a queue has waited.",
         "oldest_age_s"),
    )
    for name, documentation, attribute in specs:
        family = GaugeMetricFamily(name, documentation, labels=["queue_name"])
        for queue, queue_stats in stats.items():
            family.add_metric([queue], getattr(queue_stats, attribute))
        yield family


def _items_family(counts: Mapping[str, int]) -> Metric:
    family = GaugeMetricFamily("autolog_status_items", "Items at each status.", labels=["status"])
    for status in [*(status.value for status in Status), *sorted(set(counts) - {status.value for status in Status})]:
        family.add_metric([status], counts.get(status, 0))
    return family


def _rate_limit_families(readings: Sequence[RateLimitReading]) -> Iterator[Metric]:
    counters = (
        ("autolog_rate_limit_calls", "Calls admitted by a shared rate limit.", "calls"),
        ("autolog_rate_limit_waits", "Times a message had to wait for a shared rate limit.", "waits"),
        ("autolog_rate_limit_upstream_429", "Upstream 429 / RESOURCE_EXHAUSTED answers under a limit.",
         "upstream_429s"),
        ("autolog_rate_limit_tokens", "Input tokens spent under a shared rate limit.", "tokens"),
    )
    for name, documentation, attribute in counters:
        counter = CounterMetricFamily(name, documentation, labels=["limit"])
        for reading in readings:
            counter.add_metric([reading.limit], getattr(reading, attribute))
        yield counter
    gauges = (
        ("autolog_rate_limit_window_calls", "Calls counted in a limit's current window.", "in_window"),
        ("autolog_rate_limit_window_capacity_calls", "Calls a limit's window admits now (after 429 scaling).",
         "capacity"),
        ("autolog_rate_limit_in_flight_calls", "Calls under a limit in flight now.", "in_flight"),
        ("autolog_rate_limit_pause_remaining_seconds", "Time left in a shared pause after an upstream 429.",
         "pause_remaining_s"),
    )
    for name, documentation, attribute in gauges:
        gauge = GaugeMetricFamily(name, documentation, labels=["limit"])
        for reading in readings:
            gauge.add_metric([reading.limit], getattr(reading, attribute))
        yield gauge
