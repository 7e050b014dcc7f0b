"""The pipeline through real ``dramatiq`` worker processes, including a worker killed mid-step."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from autolog.context import Context
from autolog.lease import Lease
from autolog.local_redis import LocalRedis
from autolog.settings import Settings
from autolog.statuses import Status
from autolog.store import NewItem
from pipelines import actions
from pipelines.discovery import LEASE_KEY, DiscoveryLoop, Sweep
from tests.conftest import REPO, SampleClips, wait_for
from tests.e2e import workers
from tests.redis_fault_proxy import ReplyCuttingProxy
from web.ui import views

pytestmark = pytest.mark.slow

DRAMATIQ = str(Path(sys.executable).parent / "dramatiq")


class WorkerGroup:
    """One ``dramatiq`` CLI process group: a master and its worker processes."""

    def __init__(self, database_url: str, log: Path, *, production_timing: bool = False,
                 redis_url: str | None = None) -> None:
        env = {**os.environ, "DATABASE_URL": database_url, **({"REDIS_URL": redis_url} if redis_url else {})}
        if production_timing:
            # The shipped heartbeat timeout and maintenance chance, not the tests' faster ones.
            for name in ("AUTOLOG_HEARTBEAT_TIMEOUT_MS", "AUTOLOG_MAINTENANCE_CHANCE"):
                env.pop(name, None)
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [DRAMATIQ, "actors", "pipelines", "--processes", "1", "--threads", "4", "--path", str(REPO)],
            env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL the whole group, as a crash or an OOM kill would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM the group and wait for it to drain, as an operator's stop does."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=60)
        self.log.close()


@pytest.fixture
def start_workers(database_url: str, tmp_path: Path) -> Iterator[Callable[..., WorkerGroup]]:
    groups: list[WorkerGroup] = []

    def start(*, production_timing: bool = False, redis_url: str | None = None) -> WorkerGroup:
        groups.append(WorkerGroup(database_url, tmp_path / "workers.log", production_timing=production_timing,
                                  redis_url=redis_url))
        return groups[-1]

    yield start
    for group in groups:
        group.stop()


def succeeded(context: Context, item_id: str) -> list[str | None]:
    return [event.step for event in context.store.timeline.for_item(item_id) if event.event == "succeeded"]


def test_worker_processes_run_both_branches_to_the_end(
    processes_context: Context, start_workers: Callable[..., WorkerGroup], test_media: SampleClips,
    unique_id: Callable[[str], str],
) -> None:
    start_workers()
    silent, speech = unique_id("silent"), unique_id("speech")

    actions.submit(processes_context, [
        NewItem(silent, str(test_media.path("cuts_noaudio.mp4")), force_resume=True),
        NewItem(speech, str(test_media.path("speech.mp4")), force_resume=True),
    ])
    items = processes_context.store.items
    wait_for(lambda: all(items.get(i).status is Status.AVID_DESCRIPTION for i in (silent, speech)),
             timeout_s=120, what="both items to finish")

    assert "transcription" not in succeeded(processes_context, silent)
    assert succeeded(processes_context, speech)[-1] == "transcription"
    assert {event.worker.split(":")[1] for event in processes_context.store.timeline.for_item(silent)
            if event.worker} - {str(os.getpid())}


@pytest.fixture(scope="module")
def long_clip(test_media: SampleClips) -> Path:
    """A 90 s clip whose scene detection takes long enough to be killed in the middle."""
    return workers.long_clip(test_media, 90)


@pytest.fixture
def shipped_sweep(processes_context: Context, monkeypatch: pytest.MonkeyPatch) -> Iterator[DiscoveryLoop]:
    """The sweep that runs with every stack (``autolog up``), every second, with the shipped heartbeat timeout."""
    from actors import broker

    monkeypatch.setattr(broker, "heartbeat_timeout", Settings().heartbeat_timeout_ms)
    lease = Lease(broker.client, f"{broker.namespace}:{LEASE_KEY}", ttl_ms=3_000, owner="test-sweep")
    loop = DiscoveryLoop(scan=Sweep(context=processes_context, broker=broker, lease=lease).run_once, interval_s=1.0)
    loop.start()
    yield loop
    loop.stop()
    lease.release()


def test_killed_workers_message_is_redelivered_within_30_s_and_the_item_finishes_once(
    processes_context: Context, start_workers: Callable[..., WorkerGroup], long_clip: Path,
    unique_id: Callable[[str], str], shipped_sweep: DiscoveryLoop,
) -> None:
    # Given two worker hosts' worth of workers with the shipped heartbeat settings, and the sweep
    groups = [start_workers(production_timing=True), start_workers(production_timing=True)]
    item_id = unique_id("killed")
    timeline = processes_context.store.timeline
    actions.submit(processes_context, [NewItem(item_id, str(long_clip), force_resume=True)])
    wait_for(lambda: any(event.event == "started" and event.step == "assess" for event in timeline.for_item(item_id)),
             timeout_s=60, what="step 3 to start")
    first_start = next(event for event in timeline.for_item(item_id)
                       if event.event == "started" and event.step == "assess")
    assert first_start.worker is not None
    running = os.getpgid(int(first_start.worker.split(":")[1]))

    # When the group running step 3 is killed mid-step
    next(group for group in groups if group.process.pid == running).kill()
    killed_at = time.time()
    assert "assess" not in succeeded(processes_context, item_id), "step 3 finished before the kill"

    # Then the other group gets the message back within 30 s and the item finishes once
    wait_for(lambda: processes_context.store.items.get(item_id).status is Status.AVID_DESCRIPTION,
             timeout_s=90, what="the item to finish after redelivery")
    assert succeeded(processes_context, item_id) == ["file_info", "thumbnails", "assess", "analysis", "frames"]
    starts = [event for event in timeline.for_item(item_id) if event.event == "started" and event.step == "assess"]
    assert len(starts) == 2 and starts[0].message_id == starts[1].message_id
    # The timeline says why step 3 started again: the sweep's "redelivered" event (with its reason,
    # naming how long the killed worker had been silent, at least the heartbeat timeout) just before
    # the second start, or, when dramatiq's own maintenance came first, the page's note
    events = timeline.for_item(item_id)
    silent_s = next((event.detail["silent_s"] for event in events if event.event == "redelivered" and event.detail),
                    Settings().heartbeat_timeout_ms / 1000)
    assert silent_s >= Settings().heartbeat_timeout_ms / 1000
    rows = [row for row in views.attempt_rows(processes_context.store.items.get(item_id), events)
            if row.step == "assess" and row.event in {"started", "redelivered"}]
    assert [(row.event, row.note) for row in rows] in (
        [("started", None), ("started", views.REDELIVERED_NOTE)],
        [("started", None),
         ("redelivered", f"put back on its queue: its worker stopped beating {silent_s:g} s ago (lost or frozen)"),
         ("started", None)]), "the review page explains the restart"
    assert starts[1].at.timestamp() - killed_at < 30
    assert processes_context.store.results.counts(item_id)["frames"] == 1


def test_a_step_whose_fetch_reply_is_lost_in_a_worker_process_runs_and_its_item_finishes_once(
    processes_context: Context, start_workers: Callable[..., WorkerGroup], session_redis: LocalRedis,
    test_media: SampleClips, unique_id: Callable[[str], str],
) -> None:
    # Given a worker group whose Redis connections go through a proxy (the API side talks to Redis directly)
    proxy = ReplyCuttingProxy(session_redis.socket)
    workers = start_workers(redis_url=proxy.url)
    try:
        item_id = unique_id("lost-reply")

        # When the first reply to a worker that carries the item (the fetch of its step 1 message) is lost
        proxy.cut_reply_with(item_id.encode())
        actions.submit(processes_context, [NewItem(item_id, str(test_media.path("cuts_noaudio.mp4")),
                                                   force_resume=True)])
        assert proxy.cut.wait(timeout=60), "no reply to a worker carried the item"

        # Then the worker's consumer, started again, puts the message back, and the item finishes, each step once
        wait_for(lambda: processes_context.store.items.get(item_id).status is Status.AVID_DESCRIPTION,
                 timeout_s=120, what="the item to finish after the lost reply",
                 explain=lambda: "\n".join(f"{event.event} {event.step}"
                                           for event in processes_context.store.timeline.for_item(item_id)))
        assert succeeded(processes_context, item_id) == ["file_info", "thumbnails", "assess", "analysis", "frames"]
    finally:
        # Stopped while their Redis is reachable: behind a closed proxy a stopping worker retries its acks
        # until killed, past the fixture's 60 s wait.
        workers.stop()
        proxy.close()
