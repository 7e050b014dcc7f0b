"""Metrics of real pipeline runs through an in-process worker, and the scrape-time gauges."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import dramatiq
import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest, make_wsgi_app

from actors import broker, services
from autolog.context import Context
from autolog.errors import StoreUnavailable
from autolog.media import AnalysisResult, FrameInput, LocalAnalyzer
from autolog.metrics_cluster import ClusterCollector
from autolog.metrics_exposition import build_registry
from autolog.metrics_multiproc import multiprocess_registry
from autolog.settings import Settings
from autolog.statuses import Status
from autolog.store import NewItem
from autolog.worker_presence import WorkerInfo, WorkerPresence
from middleware import Metrics, RateLimit, RateLimits, api_metrics_registry, cluster_collector
from middleware.metrics import FLUSH_INTERVAL_S
from pipelines import actions
from pipelines.queues import Queues
from tests.conftest import SampleClips, wait_for
from tests.integration.test_pipeline import FlakyAnalyzer
from tests.integration.test_queue_pauses import pause_for_this_process_workers
from tests.metric_names import PROMETHEUS_METRICS, exported_names, queried_names

Drain = Callable[..., None]

STEP_ACTORS = {"autolog.probe": "probe", "autolog.make_thumbnails": "thumbnails", "autolog.assess": "assess",
               "autolog.analyze": "analysis", "autolog.make_frames": "frames"}


#: Released as the busy actor starts; the actor runs until ``_BUSY_RELEASE`` is set.
_BUSY_STARTED = threading.Semaphore(0)
_BUSY_RELEASE = threading.Event()


def _busy(kind: str) -> None:
    if kind == "quick":
        return
    _BUSY_STARTED.release()
    _BUSY_RELEASE.wait(60)


busy = dramatiq.actor(_busy, actor_name="autolog_test.metrics_busy", queue_name="metrics_busy", broker=broker)

#: The labels of the busy actor's series.
BUSY = {"queue_name": "metrics_busy", "actor_name": "autolog_test.metrics_busy"}


def busy_worker() -> dramatiq.Worker:
    """Start a worker of this process on the busy actor's queue alone."""
    running = dramatiq.Worker(broker, queues={"metrics_busy"}, worker_threads=1, worker_timeout=100)
    running.start()
    return running


def metrics_middleware() -> Metrics:
    return next(middleware for middleware in broker.middleware if isinstance(middleware, Metrics))


def scrape() -> CollectorRegistry:
    """Sum what every process wrote, as the pool's exporter does."""
    return multiprocess_registry(metrics_middleware().directory)


def read(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def in_files(keys: list[tuple[str, dict[str, str]]]) -> list[float]:
    """Read ``keys`` as the files hold them now, without asking this process's worker to write first."""
    registry = scrape()
    return [read(registry, name, **labels) for name, labels in keys]


def snapshot(keys: list[tuple[str, dict[str, str]]]) -> list[float]:
    """Read ``keys`` once this process's worker wrote what it gathered (it does every ``FLUSH_INTERVAL_S``)."""
    metrics_middleware().flush()
    return in_files(keys)


def moved(now: list[float], before: list[float]) -> list[int]:
    """How far each count moved from ``before``."""
    return [round(new - old) for new, old in zip(now, before, strict=True)]


def ingest(context: Context, test_media: SampleClips, name: str, item_id: str) -> None:
    actions.submit(context, [NewItem(item_id, str(test_media.path(name)), force_resume=True)])


def test_a_pipeline_run_counts_each_step_once_with_its_run_time_wait_and_status(
    context: Context, drain: Drain, test_media: SampleClips, unique_id: Callable[[str], str],
) -> None:
    # Given the counters of each step before the run
    keys = []
    for actor, queue in STEP_ACTORS.items():
        labels = {"queue_name": queue, "actor_name": actor}
        keys += [("autolog_messages_total", {**labels, "outcome": "succeeded"}),
                 ("autolog_message_duration_seconds_count", {**labels, "outcome": "succeeded"}),
                 ("autolog_message_queue_wait_seconds_count", labels)]
    terminal = {"queue_name": "frames", "actor_name": "autolog.make_frames"}
    keys += [("autolog_status_transitions_total", {**terminal, "status": "7 - Avid Description", "outcome": "applied"}),
             ("autolog_pipeline_duration_seconds_count", terminal)]
    before = snapshot(keys)

    # When one clip runs through steps 1-5
    ingest(context, test_media, "cuts_noaudio.mp4", unique_id("counted"))
    drain()

    # Then every counter moved by exactly one, and nothing is left in progress
    after = snapshot(keys)
    assert moved(after, before) == [1] * len(keys)
    registry = scrape()
    assert sum(read(registry, "autolog_messages_in_progress", queue_name=queue, actor_name=actor)
               for actor, queue in STEP_ACTORS.items()) == 0
    assert read(registry, "autolog_pipeline_duration_seconds_sum", **terminal) > 0


def retries_logged(caplog: pytest.LogCaptureFixture, item_id: str) -> list[tuple[int, int]]:
    """The ``retry_scheduled`` lines logged for ``item_id``: (attempt, delay in ms) of each."""
    return [(record.attempt, record.delay_ms) for record in caplog.records  # type: ignore[attr-defined]
            if getattr(record, "event", None) == "retry_scheduled" and getattr(record, "item_id", None) == item_id]


def test_transient_failures_count_attempts_retries_and_the_dead_letter(
    context: Context, drain: Drain, test_media: SampleClips, unique_id: Callable[[str], str], settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    labels = {"queue_name": "analysis", "actor_name": "autolog.analyze"}
    keys = [("autolog_messages_total", {**labels, "outcome": "failed"}), ("autolog_message_retries_total", labels),
            ("autolog_messages_dead_lettered_total", labels),
            ("autolog_messages_total", {**labels, "outcome": "succeeded"})]
    before = snapshot(keys)
    services().install(dataclasses.replace(context, analyzer=FlakyAnalyzer(failures=99)))

    item_id = unique_id("down")
    with caplog.at_level(logging.INFO, logger="middleware.lifecycle_logs"):
        ingest(context, test_media, "cuts_noaudio.mp4", item_id)
        drain()

    deltas = moved(snapshot(keys), before)
    assert deltas == [settings.max_retries + 1, settings.max_retries, 1, 0]
    # Each retry is logged once, for its own attempt, with the backoff it waits (not as its delay queue moves it)
    logged = retries_logged(caplog, item_id)
    assert [attempt for attempt, _ in logged] == list(range(2, settings.max_retries + 2))
    assert all(delay_ms >= 1 for _, delay_ms in logged)


class StoreOutageOnce(FlakyAnalyzer):
    """Meets a store outage on its first call (the step waits for the store, spending no retry), then analyzes."""

    def analyze(self, frames: Sequence[FrameInput], prompt: str | None) -> AnalysisResult:
        self.calls += 1
        if self.calls == 1:
            raise StoreUnavailable("the database is locked")
        return LocalAnalyzer().analyze(frames, prompt)


def test_a_wait_for_the_store_is_not_counted_or_logged_as_a_retry(
    context: Context, drain: Drain, test_media: SampleClips, unique_id: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given the analysis step's counters, and a store outage met by its first delivery
    labels = {"queue_name": "analysis", "actor_name": "autolog.analyze"}
    keys = [("autolog_messages_total", {**labels, "outcome": "failed"}), ("autolog_message_retries_total", labels),
            ("autolog_messages_total", {**labels, "outcome": "succeeded"})]
    before = snapshot(keys)
    analyzer = StoreOutageOnce(failures=0)
    services().install(dataclasses.replace(context, analyzer=analyzer))

    # When the item runs: the step waits for the store (the same message, put back), then succeeds
    item_id = unique_id("waits")
    with caplog.at_level(logging.INFO, logger="middleware.lifecycle_logs"):
        ingest(context, test_media, "cuts_noaudio.mp4", item_id)
        drain()

    # Then one delivery failed and one succeeded, and no retry was spent, counted or logged
    assert analyzer.calls == 2
    assert context.store.items.get(item_id).status is Status.AVID_DESCRIPTION
    assert moved(snapshot(keys), before) == [1, 0, 1]
    assert retries_logged(caplog, item_id) == []


def test_queue_item_and_worker_gauges_are_read_at_scrape_time(
    context: Context, redis_client: redis.Redis, test_media: SampleClips, unique_id: Callable[[str], str],
    settings: Settings,
) -> None:
    # Given two items queued with no worker running, a live worker of "assess" and one gone silent
    for index in range(2):
        ingest(context, test_media, "cuts_noaudio.mp4", unique_id(f"waiting{index}"))
    now = time.time()
    for member, beat_at in (("host:1", now + 30), ("host:2", now - 60)):
        info = WorkerInfo(pool="assess", queues=("assess",), threads=6, host="host", pid=int(member[-1]))
        WorkerPresence(broker.client, namespace=broker.namespace, member=member, info=info, interval_s=60,
                       clock=lambda at=beat_at: at).beat()

    # When the collector is scraped 30 s later
    collector = ClusterCollector(client=broker.client, namespace=broker.namespace,
                                 heartbeat_timeout_ms=settings.heartbeat_timeout_ms, queues=["probe", "frames"],
                                 pools=["transcription"], items=context.store.items.count_by_status,
                                 clock=lambda: now + 30)
    registry = build_registry([collector])

    # Then it reports the queue, its oldest message's age, the items and the live workers
    assert read(registry, "autolog_queue_ready_messages", queue_name="probe") == 2
    assert read(registry, "autolog_queue_ready_messages", queue_name="frames") == 0
    assert 29 <= read(registry, "autolog_queue_oldest_message_age_seconds", queue_name="probe") < 60
    assert read(registry, "autolog_status_items", status="0 - Pending File Info") == 2
    assert read(registry, "autolog_status_items", status="7 - Avid Description") == 0
    assert (read(registry, "autolog_pool_live_processes", pool="assess"),
            read(registry, "autolog_pool_live_threads", pool="assess")) == (1, 6)
    assert registry.get_sample_value("autolog_pool_live_processes", {"pool": "transcription"}) == 0
    assert read(registry, "autolog_scrape_source_up", source="redis") == 1


def test_a_worker_is_live_while_it_runs_and_withdrawn_when_it_stops(context: Context, settings: Settings) -> None:
    collector = cluster_collector(settings, client=broker.client, store=None, pools=["all"])
    running = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    running.start()
    try:
        live = build_registry([collector]).get_sample_value("autolog_pool_live_processes", {"pool": "all"})
    finally:
        running.stop()

    assert live == 1
    assert build_registry([collector]).get_sample_value("autolog_pool_live_processes", {"pool": "all"}) == 0


def test_shared_rate_limit_counters_are_exported_for_limits_workers_run(
    redis_client: redis.Redis, settings: Settings,
) -> None:
    # Given a limit of 2 calls a minute that a worker registered, used 3 times, then paused by a 429
    limit = RateLimit(key=f"test:{uuid.uuid4().hex[:8]}", requests=2, window_ms=60_000)
    info = WorkerInfo(pool="analysis", queues=("analysis",), threads=2, host="h", pid=9,
                      rate_limits=(dataclasses.asdict(limit),))
    WorkerPresence(broker.client, namespace=settings.namespace, member="h:9", info=info, interval_s=60).beat()
    limiter = RateLimits(client=broker.client, namespace=settings.namespace).limiter
    decisions = [limiter.acquire(limit, slot=f"s{index}", ticket=f"t{index}") for index in range(3)]
    limiter.pause(limit, retry_after_ms=30_000)

    # When the collector is scraped
    registry = build_registry([cluster_collector(settings, client=broker.client, store=None)])

    # Then calls, waits, 429s and the window are there
    assert [decision.admitted for decision in decisions] == [True, True, False]
    labels = {"limit": limit.key}
    assert read(registry, "autolog_rate_limit_calls_total", **labels) == 2
    assert read(registry, "autolog_rate_limit_waits_total", **labels) == 1
    assert read(registry, "autolog_rate_limit_upstream_429_total", **labels) == 1
    assert read(registry, "autolog_rate_limit_window_calls", **labels) == 2
    assert read(registry, "autolog_rate_limit_window_capacity_calls", **labels) == 1
    assert 20 < read(registry, "autolog_rate_limit_pause_remaining_seconds", **labels) <= 30


def test_every_dashboard_panel_and_alert_queries_a_metric_the_stack_exports(
    context: Context, drain: Drain, test_media: SampleClips, unique_id: Callable[[str], str], settings: Settings,
) -> None:
    # Given one real pipeline run, with one bad clip that is dead-lettered
    ingest(context, test_media, "cuts_noaudio.mp4", unique_id("exported"))
    ingest(context, test_media, "not_media.mp4", unique_id("bad"))
    drain()

    # When the API's registry and the worker processes' files are scraped
    api = api_metrics_registry(settings, broker=broker, client=broker.client, store=context.store)
    text = generate_latest(api).decode() + generate_latest(scrape()).decode()
    with_samples, declared = exported_names(text)

    # Then every name a panel or an alert queries is exported (rate limits only declared: none is set)
    missing = {query: names - with_samples - declared - PROMETHEUS_METRICS
               for query, names in queried_names().items() if names - with_samples - declared - PROMETHEUS_METRICS}
    assert not missing
    assert {name for name in declared if not name.startswith("autolog_rate_limit_")} == set()


def test_the_metrics_wsgi_app_answers_a_scrape(context: Context, settings: Settings) -> None:
    app = make_wsgi_app(api_metrics_registry(settings, broker=broker, client=broker.client,
                                                     store=context.store))
    answer: dict[str, Any] = {}

    body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "QUERY_STRING": ""},
                        lambda status, headers: answer.update(status=status, headers=dict(headers))))

    assert answer["status"].startswith("200")
    assert answer["headers"]["Content-Type"].startswith("text/plain")
    assert b'autolog_scrape_source_up{source="database"} 1.0' in body


def test_a_delivery_held_for_a_paused_queue_counts_and_logs_as_held_not_skipped(
    context: Context, drain: Drain, test_media: SampleClips, unique_id: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given the thumbnails step's message counters, and its queue paused
    labels = {"queue_name": "thumbnails", "actor_name": "autolog.make_thumbnails"}
    keys = [("autolog_messages_total", {**labels, "outcome": outcome}) for outcome in ("held", "skipped", "succeeded")]
    before = snapshot(keys)
    queues = Queues.of_broker(broker)
    pause_for_this_process_workers("thumbnails")
    try:
        # When a clip's step 2 reaches a worker, which holds it until the queue resumes
        with caplog.at_level(logging.INFO, logger="middleware.lifecycle_logs"):
            ingest(context, test_media, "cuts_noaudio.mp4", unique_id("held"))
            wait_for(lambda: queues.get("thumbnails").held == 1, timeout_s=30, what="the step to be held")
            drain()
    finally:
        queues.resume("thumbnails")
    drain()

    # Then the hold counts as "held" (not a skip to look into), its log line says so, and the step then ran once
    deltas = moved(snapshot(keys), before)
    assert deltas == [1, 0, 1]
    step_2 = [getattr(record, "event", None) for record in caplog.records
              if "autolog.make_thumbnails" in record.getMessage()]
    assert "stage_held" in step_2 and "stage_skipped" not in step_2


def test_a_busy_workers_counts_reach_a_scrape_within_the_flush_interval(drain: Drain) -> None:
    # Given the counters of a step-less actor, and one of its messages that runs until released
    keys = [("autolog_messages_total", {**BUSY, "outcome": "succeeded"}), ("autolog_messages_in_progress", BUSY),
            ("autolog_message_duration_seconds_count", {**BUSY, "outcome": "succeeded"})]
    before = snapshot(keys)
    _BUSY_RELEASE.clear()
    busy.send("long")
    try:
        assert _BUSY_STARTED.acquire(timeout=30)
        # When a quick message ends while the long one runs
        busy.send("quick")

        # Then a scrape sees the quick one done and the long one in progress within the flush interval
        seen = wait_for(lambda: moved(in_files(keys), before) == [1, 1, 1], timeout_s=3 * FLUSH_INTERVAL_S,
                        what="the busy worker's counts in a scrape",
                        explain=lambda: f"moved {moved(in_files(keys), before)}")
    finally:
        _BUSY_RELEASE.set()
    assert seen

    # And once the long one ended, both are done and none is in progress
    drain()
    assert moved(snapshot(keys), before) == [2, 0, 2]


def test_a_stopping_worker_writes_what_it_gathered_and_its_flushing_thread_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a worker whose thread would not write its gathered changes for a minute
    keys = [("autolog_messages_total", {**BUSY, "outcome": "succeeded"}),
            ("autolog_message_duration_seconds_count", {**BUSY, "outcome": "succeeded"})]
    before = snapshot(keys)
    monkeypatch.setattr(metrics_middleware(), "flush_interval_s", 60.0)
    running = busy_worker()
    try:
        # When it runs a message and stops
        busy.send("quick")
        broker.join("metrics_busy", timeout=30_000)
        running.join()
        unwritten = moved(in_files(keys), before)
    finally:
        running.stop()

    # Then the message's counts were in memory only until the stop, which wrote them, and its thread is gone
    assert unwritten == [0, 0]
    assert moved(in_files(keys), before) == [1, 1]
    assert not [thread for thread in threading.enumerate() if thread.name == "metrics-flush"]


def test_a_worker_whose_boot_hook_failed_half_way_still_writes_its_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a worker whose announcement as live fails at boot (the broker only logs a hook's error)
    def refused(presence: WorkerPresence) -> None:
        raise redis.ConnectionError("Redis refused the heartbeat")

    monkeypatch.setattr(WorkerPresence, "start", refused)
    keys = [("autolog_messages_total", {**BUSY, "outcome": "succeeded"})]
    before = snapshot(keys)
    running = busy_worker()
    try:
        # When it runs a message
        busy.send("quick")

        # Then its thread still writes the message's counts within the flush interval
        wait_for(lambda: moved(in_files(keys), before) == [1], timeout_s=3 * FLUSH_INTERVAL_S,
                 what="the counts of a worker whose boot hook failed")
    finally:
        running.stop()
