"""The shared Gemini rate limit across two real ``dramatiq`` worker processes.

Each test starts two ``dramatiq actors --queues analysis`` processes (as if on two hosts)
with a Gemini key pointing at the stand-in and a short window, sends analysis messages,
and judges the limiter by the call times the stand-in recorded.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from actors import analyze
from autolog.settings import Settings
from autolog.statuses import Status
from autolog.store import Store
from middleware import SharedLimiter
from tests.conftest import wait_for
from tests.gemini_standin import GeminiStandIn, add_analysis_item, max_calls_in_window

REPO = Path(__file__).resolve().parents[2]
WINDOW_S = 2.0
THREADS = 4


@dataclass(frozen=True)
class Cluster:
    """Two worker processes sharing one limit, the stand-in they call, and their store."""

    standin: GeminiStandIn
    store: Store
    frames_dir: Path
    limiter: SharedLimiter
    key: str


@pytest.fixture
def cluster_factory(
    tmp_path: Path, redis_client: redis.Redis, settings: Settings
) -> Iterator[Callable[..., Cluster]]:
    """Start two worker processes with a given limit; stop them after the test."""
    processes: list[subprocess.Popen[bytes]] = []
    standin = GeminiStandIn()
    store = Store.open(f"sqlite:///{tmp_path / 'autolog.db'}")

    def start(*, requests: int, concurrency: int = 8, latency_s: float = 0.05) -> Cluster:
        standin.latency_s = latency_s
        env = {
            **os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'autolog.db'}",
            "AUTOLOG_VAR_DIR": str(tmp_path / "var"), "AUTOLOG_GEMINI_API_KEY": "test-key",
            "AUTOLOG_GEMINI_BASE_URL": standin.base_url, "AUTOLOG_GEMINI_MODEL": "gemini-2.5-flash",
            "AUTOLOG_GEMINI_REQUESTS_PER_WINDOW": str(requests), "AUTOLOG_GEMINI_WINDOW_MS": str(int(WINDOW_S * 1000)),
            "AUTOLOG_GEMINI_CONCURRENCY": str(concurrency), "AUTOLOG_GEMINI_TOKENS_PER_WINDOW": "10000000",
            "AUTOLOG_GEMINI_TIMEOUT_MS": "10000",
        }
        for number in range(2):
            with (tmp_path / f"worker-{number}.log").open("wb") as log:
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "dramatiq", "actors", "--queues", "analysis", "--processes", "1",
                     "--threads", str(THREADS)],
                    cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        heartbeats = f"{settings.namespace}:__heartbeats__"
        wait_for(lambda: redis_client.zcard(heartbeats) >= 2, timeout_s=30, what="two workers consuming")
        limiter = SharedLimiter(redis_client, namespace=settings.namespace)
        return Cluster(standin=standin, store=store, frames_dir=tmp_path / "frames", limiter=limiter,
                       key="gemini:gemini-2.5-flash")

    yield start
    for process in processes:
        os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        process.wait(timeout=30)
    standin.close()
    store.close()


def send_items(cluster: Cluster, count: int, prefix: str) -> list[str]:
    item_ids = [f"{prefix}-{number:03d}" for number in range(count)]
    for item_id in item_ids:
        add_analysis_item(cluster.store, item_id, cluster.frames_dir, frames=2, size=(320, 180))
    for item_id in item_ids:
        analyze.send(item_id)
    return item_ids


def wait_until_analysed(cluster: Cluster, item_ids: list[str], *, timeout_s: float) -> None:
    def done() -> bool:
        statuses = cluster.store.items.count_by_status()
        return statuses.get(Status.PROCESSING_FRAME_INFO.value, 0) >= len(item_ids)
    wait_for(done, timeout_s=timeout_s, what=f"{len(item_ids)} items analysed")


def test_two_processes_never_exceed_the_limit_in_any_window_and_keep_to_the_ideal_pace(
    cluster_factory: Callable[..., Cluster],
) -> None:
    requests, messages = 5, 30
    # Calls are exact from when they finish (see middleware._limiter_scripts), so each of the
    # five waits costs a window plus one call; a short call keeps that small.
    cluster = cluster_factory(requests=requests, latency_s=0.02)

    item_ids = send_items(cluster, messages, "paced")
    wait_until_analysed(cluster, item_ids, timeout_s=60)

    arrivals = [call.arrived_s for call in cluster.standin.calls]
    assert len(arrivals) == messages and all(call.status == 200 for call in cluster.standin.calls)
    assert max_calls_in_window(arrivals, WINDOW_S) <= requests
    # M calls at N per window: the last batch can start (ceil(M/N) - 1) windows after the first.
    ideal_s = (math.ceil(messages / requests) - 1) * WINDOW_S
    span_s = max(arrivals) - min(arrivals)
    print(f"\n{messages} calls at {requests} per {WINDOW_S} s: span {span_s:.2f} s, ideal {ideal_s:.2f} s")
    # 15 %: the waits' own cost (a call each, see above) and a busy 2-core machine's scheduling.
    assert span_s <= 1.15 * ideal_s, f"calls took {span_s:.2f} s against an ideal of {ideal_s:.2f} s"
    assert not any(item.dead_lettered or item.error for item in cluster.store.items.list(limit=messages))
    counters = cluster.limiter.counters(cluster.key)
    assert counters.calls == messages and counters.waits >= messages - requests


#: How long after the first 429 a call admitted before the pause was shared may still land, in s.
STRAGGLING_S = 2.0


def test_a_burst_of_429s_pauses_every_worker_and_nothing_is_dead_lettered(
    cluster_factory: Callable[..., Cluster],
) -> None:
    retry_delay_s, burst = 5.0, 3
    cluster = cluster_factory(requests=10)
    cluster.standin.answer_next("429", burst, retry_delay_s=retry_delay_s)

    item_ids = send_items(cluster, 14, "burst")
    wait_until_analysed(cluster, item_ids, timeout_s=60)

    calls = cluster.standin.calls
    limited = [call for call in calls if call.status == 429]
    assert len(limited) == burst
    first_answered = min(call.finished_s for call in limited)
    pause_ends = first_answered + retry_delay_s
    # Calls admitted before the pause was shared may still land after the first 429 on a busy host
    # (three landed 0.97 s after it in a CI run; most likely the other worker process's first calls,
    # which build the SDK's request machinery). After those, nothing reaches the server until the pause is over.
    in_pause = [call.arrived_s - first_answered for call in calls
                if first_answered + STRAGGLING_S < call.arrived_s < pause_ends]
    assert in_pause == [], "a worker called during the shared pause"
    after = [call.arrived_s for call in calls if call.arrived_s >= pause_ends]
    assert len(after) >= burst, "the limited calls come back after the pause"
    assert len([at for at in after if at < pause_ends + WINDOW_S]) <= 10 // 2, "the limit is halved after a 429"
    assert max_calls_in_window([call.arrived_s for call in calls], WINDOW_S) <= 10
    assert sorted(frame for call in calls if call.status == 200 for frame in call.frames) == sorted(
        frame for _ in item_ids for frame in (0, 1)), "every item described exactly once"
    items = cluster.store.items.list(limit=100)
    assert not any(item.dead_lettered or item.error for item in items)
    for item_id in item_ids:
        started = [event for event in cluster.store.timeline.for_item(item_id) if event.event == "started"]
        assert {event.attempt for event in started} == {1}, "waiting out a 429 must not spend a retry"
    assert cluster.limiter.counters(cluster.key).upstream_limited == burst
