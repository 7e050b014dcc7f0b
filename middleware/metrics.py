"""Metrics: Prometheus counters and histograms of every message, summed across processes.

Each worker process keeps its values in files under the host's multiprocess folder
(``autolog.metrics_multiproc``); the host's one exporter (``ops.agent``) sums them and adds the
scrape-time gauges of ``ClusterCollector``. A worker process announces itself as live once per
pool it serves: one entry per lane of a worker group (the ``lanes`` of its worker,
``actors.lanes.LaneWorker``).
Nothing is created before process boot, so in gunicorn (which never boots a dramatiq
worker) every hook does nothing.

This middleware sits before ``StatusWrites``: its ``after_*`` hooks run after the status
write, so it sees whether the item moved. Retries are counted where ``Retries`` makes them
(``count_retry``, its ``on_retry``).

What every message changes (in progress, queue wait, outcome, run time, status transition) is
gathered in a ``Tally`` and written to the files in one batch every ``FLUSH_INTERVAL_S`` by a
thread of the worker, and as the worker stops. A scrape sees a worker's counts up to about that
late (Prometheus scrapes every 15 s); a worker process that dies without a clean stop (``kill -9``,
a second SIGTERM mid-stop, the kill after the stop's grace period) loses up to about that long's
counts. The rare changes (retries, dead letters, failed status writes) are written at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.common import q_name

from autolog.lanes import Lane
from autolog.metrics_instruments import Instruments, Tally
from autolog.metrics_multiproc import enable_multiprocess, mark_process_dead, prune_stale_files
from autolog.statuses import Status, step_named
from autolog.worker_presence import WorkerInfo, WorkerPresence
from middleware._limiter import RateLimit
from middleware._metrics_export import serve_worker_metrics
from middleware.queue_pauses import HELD_OPTION
from middleware.status_writes import TRANSITION_OPTION, StatusWrites

#: How often a worker's gathered metric changes are written, in s (Prometheus scrapes every 15 s).
FLUSH_INTERVAL_S = 1.0


class Metrics(dramatiq.Middleware):
    """Counts, times and labels every message a worker process handles.

    Args:
        client: the Redis shared by every worker, for the live-worker registry.
        namespace: the broker's key prefix.
        directory: this worker group's multiprocess folder, one per pool per host.
        pool: the pool label of the live-worker gauges; None names it after the worker's queues
            (``all`` for a worker on every queue).
        exporter_port: the port of this group's exporter; None runs none.
        heartbeat_timeout_ms: a worker silent this long is not live; it beats three times as often.
        status_writes: whose failed writes to count.
        flush_interval_s: how often the worker writes the changes it gathered, in s.
    """

    def __init__(
        self, *, client: redis.Redis, namespace: str, directory: Path, pool: str | None = None,
        exporter_port: int | None = None, heartbeat_timeout_ms: int = 10_000, status_writes: StatusWrites | None = None,
        flush_interval_s: float = FLUSH_INTERVAL_S,
    ) -> None:
        self.logger = logging.getLogger(__name__)
        self._client = client
        self._namespace = namespace
        self.directory = directory
        self._pool = pool
        self._exporter_port = exporter_port
        self._heartbeat_timeout_ms = heartbeat_timeout_ms
        self._status_writes = status_writes
        self._instruments: Instruments | None = None
        self._presences: list[WorkerPresence] = []
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()
        self._failed_writes_seen = 0
        #: The changes of messages handled here, written in batches.
        self._tally = Tally()
        #: How often the worker's thread writes the gathered changes, in s.
        self.flush_interval_s = flush_interval_s
        #: The thread that writes the tally while a worker runs here, and the event that stops it.
        self._flushing: tuple[threading.Thread, threading.Event] | None = None

    @property
    def instruments(self) -> Instruments | None:
        """The metrics of this process; None until a worker boots here."""
        return self._instruments

    @property
    def forks(self) -> list[Callable[[], int]]:
        return [serve_worker_metrics] if self._exporter_port else []

    def _boot(self, *, fresh_process: bool) -> Instruments:
        prune_stale_files(self.directory, own_pid=os.getpid() if fresh_process else None)
        enable_multiprocess(self.directory)
        self._instruments = Instruments.create()
        return self._instruments

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        self._boot(fresh_process=True)

    def before_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        # An in-process worker (tests, benchmarks) has no process boot.
        instruments = self._instruments or self._boot(fresh_process=False)
        # First: should the rest fail (the broker only logs a hook's error), the changes still get written.
        if self._flushing is None:
            stop = threading.Event()
            thread = threading.Thread(target=self._flush_every_interval, args=(stop,), name="metrics-flush",
                                      daemon=True)
            thread.start()
            self._flushing = (thread, stop)
        queues = sorted(worker.consumer_whitelist or broker.get_declared_queues())
        limits: dict[str, list[dict[str, Any]]] = {queue: [] for queue in queues}
        ordered = []
        for actor_name in sorted(broker.get_declared_actors()):
            actor = broker.get_actor(actor_name)
            if actor.queue_name not in queues:
                continue
            instruments.prepare(actor.queue_name, actor_name, **_step_series(actor_name))
            if isinstance(limit := actor.options.get("rate_limit"), RateLimit):
                limits[actor.queue_name].append(asdict(limit))
                ordered.append(asdict(limit))
        host, pid = socket.gethostname(), os.getpid()
        # A worker group's worker names the pools it serves (``actors.lanes.LaneWorker``); dramatiq's has no lanes.
        served: Sequence[Lane] = getattr(worker, "lanes", ())
        lanes = [lane for lane in served if lane.queue in queues]
        if lanes:
            # One entry per pool this worker group serves, so each pool counts its live processes.
            infos = [WorkerInfo(pool=lane.pool, queues=(lane.queue,), threads=lane.threads, host=host, pid=pid,
                                rate_limits=tuple(limits[lane.queue])) for lane in lanes]
        else:
            pool = self._pool or (",".join(queues) if worker.consumer_whitelist else "all")
            infos = [WorkerInfo(pool=pool, queues=tuple(queues), threads=worker.worker_threads, host=host, pid=pid,
                                rate_limits=tuple(ordered))]
        for info in infos:
            member = f"{host}:{pid}:{info.pool}" if lanes else f"{host}:{pid}"
            presence = WorkerPresence(self._client, namespace=self._namespace, member=member, info=info,
                                      interval_s=self._heartbeat_timeout_ms / 3000)
            presence.start()
            self._presences.append(presence)

    def _flush_every_interval(self, stop: threading.Event) -> None:
        while not stop.wait(self.flush_interval_s):
            if len(self._tally):
                self.flush()

    def flush(self) -> None:
        """Write the metric changes this process gathered so far (its worker does every ``FLUSH_INTERVAL_S``).

        Errors are logged, not raised: metrics are advisory.
        """
        try:
            self._tally.flush()
        except Exception:  # Metrics are advisory: a hook or the flushing thread must go on.
            self.logger.exception("Could not write the metric changes gathered since the last flush.")

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        for presence in self._presences:
            presence.stop()
        self._presences = []
        if self._flushing is not None:
            thread, stop = self._flushing
            self._flushing = None
            stop.set()
            thread.join(timeout=5)
        self.flush()
        if self._instruments is not None:
            mark_process_dead(self.directory)
            self._instruments = None

    def count_retry(self, message: dramatiq.Message[Any] | MessageProxy) -> None:
        """Count ``message`` re-enqueued for another attempt (``Retries.on_retry``); written at once."""
        instruments = self._instruments
        if instruments is not None:
            instruments.child(instruments.retries, q_name(message.queue_name), message.actor_name).inc()

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        instruments = self._instruments
        if instruments is None:
            return
        labels = (message.queue_name, message.actor_name)
        self._started[message.message_id] = time.monotonic()
        tally = self._tally
        tally.add(instruments.child(instruments.in_progress, *labels))
        # The worker drops "eta" when a delayed message becomes due; a retry keeps its requeue time.
        due_ms = message.options.get("requeue_timestamp") or message.message_timestamp
        tally.observe(instruments.child(instruments.queue_wait, *labels), max(0.0, time.time() - int(due_ms) / 1000))

    def after_process_message(
        self, broker: dramatiq.Broker, message: MessageProxy, *, result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        instruments = self._instruments
        if instruments is None:
            return
        self._finish(instruments, message, "succeeded" if exception is None else "failed")
        transition = message.options.get(TRANSITION_OPTION)
        if exception is None and isinstance(transition, dict):
            self._count_transition(instruments, message, transition)
        self._count_failed_writes(instruments, message)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        instruments = self._instruments
        if instruments is not None:
            # A delivery held for its paused queue comes back on resume: not a skip to look into.
            self._finish(instruments, message, "held" if message.options.get(HELD_OPTION) else "skipped")

    def after_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        instruments = self._instruments
        if instruments is not None:
            instruments.child(instruments.dead_letters, q_name(message.queue_name), message.actor_name).inc()
            self._count_failed_writes(instruments, message)

    def _finish(self, instruments: Instruments, message: MessageProxy, outcome: str) -> None:
        labels = (message.queue_name, message.actor_name)
        tally = self._tally
        tally.add(instruments.child(instruments.messages, *labels, outcome))
        started = self._started.pop(message.message_id, None)
        # A message skipped by a middleware before this one never started here.
        if started is not None:
            tally.add(instruments.child(instruments.in_progress, *labels), -1)
            tally.observe(instruments.child(instruments.duration, *labels, outcome), time.monotonic() - started)

    def _count_transition(self, instruments: Instruments, message: MessageProxy, transition: dict[str, Any]) -> None:
        labels = (message.queue_name, message.actor_name)
        applied = bool(transition.get("applied"))
        target = str(transition.get("to"))
        outcome = "applied" if applied else "refused"
        self._tally.add(instruments.child(instruments.transitions, *labels, target, outcome))
        age_s = transition.get("item_age_s")
        # The age StatusWrites read with the run's start (no read of its own: issue #13).
        if applied and Status(target).is_terminal and isinstance(age_s, (int, float)):
            self._tally.observe(instruments.child(instruments.pipeline_duration, *labels), max(0.0, age_s))

    def _count_failed_writes(self, instruments: Instruments, message: dramatiq.Message[Any] | MessageProxy) -> None:
        if self._status_writes is None:
            return
        # StatusWrites counts in a plain attribute; its hook for this message ran just before.
        with self._lock:
            total = self._status_writes.failed_writes
            new, self._failed_writes_seen = total - self._failed_writes_seen, total
        if new > 0:
            labels = (q_name(message.queue_name), message.actor_name)
            instruments.child(instruments.status_write_failures, *labels).inc(new)


def _step_series(actor_name: str) -> dict[str, Any]:
    try:
        step = step_named(actor_name)
    except KeyError:
        return {}
    statuses = sorted(status.value for status in step.to_statuses)
    return {"statuses": statuses, "terminal": any(status.is_terminal for status in step.to_statuses)}
