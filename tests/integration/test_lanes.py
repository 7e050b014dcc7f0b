"""A worker group's ``LaneWorker``: each pool's queue has its own threads, and each pool is announced as live."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest

from actors import broker
from actors.lanes import LaneWorker, join_by_deadline, main
from autolog.lanes import Lane, format_lanes, parse_lanes
from autolog.settings import Settings
from autolog.worker_presence import read_workers
from tests.conftest import wait_for

#: Holds the slow lane's messages until the test lets them go.
RELEASE = threading.Event()
#: Messages running now and at most at once on the slow lane, and the fast lane's runs.
RUNNING = {"now": 0, "most": 0, "fast": 0}
LOCK = threading.Lock()


def _slow() -> None:
    with LOCK:
        RUNNING["now"] += 1
        RUNNING["most"] = max(RUNNING["most"], RUNNING["now"])
    RELEASE.wait(30)
    with LOCK:
        RUNNING["now"] -= 1


def _fast() -> None:
    with LOCK:
        RUNNING["fast"] += 1


# Declared at import, before any worker of the session exists (see test_waking_broker).
slow = dramatiq.actor(_slow, actor_name="autolog_test.lane_slow", queue_name="lane_slow", broker=broker)
fast = dramatiq.actor(_fast, actor_name="autolog_test.lane_fast", queue_name="lane_fast", broker=broker)

LANES = (Lane(pool="slow_pool", queue="lane_slow", threads=1), Lane(pool="fast_pool", queue="lane_fast", threads=1))


@pytest.fixture
def lane_worker(context: Any) -> Iterator[LaneWorker]:
    """A running LaneWorker of one thread per lane, announcing each lane's pool; stopped after."""
    RELEASE.clear()
    RUNNING.update(now=0, most=0, fast=0)
    worker = LaneWorker(broker, queues={"lane_slow", "lane_fast"}, worker_timeout=100, lanes=LANES)
    worker.start()
    yield worker
    RELEASE.set()
    worker.stop()


def test_a_busy_lane_keeps_its_limit_and_never_takes_another_lanes_threads(
    lane_worker: LaneWorker, settings: Settings,
) -> None:
    # Given the slow lane's one thread busy and two more of its messages waiting
    for _ in range(3):
        slow.send()
    wait_for(lambda: RUNNING["now"] == 1, what="the slow lane to start a message")

    # When the fast lane gets messages, Then they run at once, while the slow lane still runs one at a time
    for _ in range(3):
        fast.send()
    wait_for(lambda: RUNNING["fast"] == 3, what="the fast lane to run beside the busy slow lane")
    assert RUNNING["most"] == 1
    RELEASE.set()
    wait_for(lambda: broker.client.llen(f"{broker.namespace}:lane_slow") == 0 and RUNNING["now"] == 0,
             what="the slow lane to finish")
    assert RUNNING["most"] == 1

    # And each lane's pool is announced as one live process with its own threads
    entries = read_workers(broker.client, broker.namespace, timeout_ms=settings.heartbeat_timeout_ms,
                           now_ms=int(time.time() * 1000))
    pools = {entry.info.pool: (entry.info.queues, entry.info.threads) for entry in entries if entry.live}
    assert pools["slow_pool"] == (("lane_slow",), 1) and pools["fast_pool"] == (("lane_fast",), 1)


def test_lanes_are_written_and_read_back_and_bad_ones_are_refused() -> None:
    assert parse_lanes(format_lanes(LANES)) == LANES
    for bad in ("a:b", "a:b:0", "a:q:1,b:q:2", ":q:1"):
        with pytest.raises(ValueError):
            parse_lanes(bad)
    with pytest.raises(ValueError, match="no lane"):
        LaneWorker(broker, queues={"lane_slow", "elsewhere"}, lanes=LANES[:1])


def test_a_worker_group_without_lanes_does_not_start(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["actors", "--queues", "probe"]) == 2
    assert main(["--lanes", "file_info:probe"]) == 2
    assert "--lanes POOL:QUEUE:THREADS" in capsys.readouterr().err


def test_a_stop_waits_for_busy_threads_behind_many_idle_ones_until_the_deadline() -> None:
    # Given 30 threads that end after 0.5 s and 3 still busy for 1.5 s (a group's idle lanes and its running steps)
    release_idle, release_busy = threading.Event(), threading.Event()
    idle = [threading.Thread(target=release_idle.wait, args=(0.5,)) for _ in range(30)]
    busy = [threading.Thread(target=release_busy.wait, args=(1.5,)) for _ in range(3)]
    for thread in idle + busy:
        thread.start()

    # When they are joined with a 10 s grace period (dramatiq's join_all spent its budget on the idle ones)
    join_by_deadline(idle + busy, 10.0)

    # Then the busy ones were waited for
    assert not any(thread.is_alive() for thread in idle + busy)
