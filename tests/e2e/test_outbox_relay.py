"""No window between a status and its next step: the outbox's messages reach Redis with nobody acting.

Real ``dramatiq`` worker processes, a real SQLite store and real Redis servers: a worker
killed right after its status write, and a Redis stopped while a step runs, each leave the
next step's message in the outbox, and a worker's relay sends it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from actors import broker
from autolog.context import Context
from autolog.local_redis import find_redis_server, free_port
from autolog.statuses import Status
from autolog.store import NewItem, Store
from autolog.store.outbox import DEFAULT_LEASE_S
from middleware import pending, relay_outbox
from pipelines import actions
from pipelines.footage import first_message
from pipelines.queues import Queues
from tests.conftest import SampleClips, wait_for
from tests.e2e.workers import WORKERS, Start, first_event, long_clip

pytestmark = pytest.mark.slow

#: Every queue but step 1's.
LATER_QUEUES = ["thumbnails", "assess", "analysis", "frames", "transcription", "control"]


def test_worker_killed_between_status_write_and_enqueue_next_step_starts_within_30_s(
    processes_context: Context, processes: Start, database_url: str,
    test_media: SampleClips, unique_id: Callable[[str], str],
) -> None:
    # Given a worker for step 1 that dies right after its status write, and workers for the
    # other steps with the shipped heartbeat settings
    env = {**os.environ, "DATABASE_URL": database_url}
    for name in ("AUTOLOG_HEARTBEAT_TIMEOUT_MS", "AUTOLOG_MAINTENANCE_CHANCE"):
        env.pop(name, None)
    processes([*WORKERS, "--queues", *LATER_QUEUES], env)
    dying = processes([sys.executable, "-m", "tests.e2e.dying_worker", "autolog.make_thumbnails", "probe"], env)
    item_id = unique_id("killed")

    # When it runs step 1 of an item and is killed between the write and the enqueue
    actions.submit(processes_context, [NewItem(item_id, str(test_media.path("cuts_noaudio.mp4")), force_resume=True)])
    dying.wait(timeout=60)
    killed_at = time.time()
    store = processes_context.store
    assert dying.returncode == -signal.SIGKILL
    assert store.items.get(item_id).status is Status.FILE_INFO_COMPLETE
    assert store.outbox.count() == 1

    # Then step 2 starts within 30 s with nobody acting, and the item finishes once
    started = wait_for(lambda: first_event(store.timeline.for_item(item_id), "started", "thumbnails"),
                       timeout_s=30, what="step 2 to start")
    assert started.at.timestamp() - killed_at < 30
    wait_for(lambda: store.items.get(item_id).status is Status.AVID_DESCRIPTION, timeout_s=90,
             what="the item to finish")
    succeeded = [event.step for event in store.timeline.for_item(item_id) if event.event == "succeeded"]
    assert succeeded == ["file_info", "thumbnails", "assess", "analysis", "frames"]
    assert store.outbox.count() == 0


def test_worker_killed_after_sending_the_next_step_before_clearing_its_row_runs_that_step_once(
    processes_context: Context, processes: Start, database_url: str,
    test_media: SampleClips, unique_id: Callable[[str], str],
) -> None:
    # Given a worker for step 1 that dies the moment Redis has taken the message of step 2,
    # before it clears that message's outbox row, and workers for the other steps
    # When it runs step 1 of an item and is killed there
    item_id = unique_id("sent")
    sent_step_2_and_died(processes_context, processes, database_url, test_media, item_id)
    store = processes_context.store
    written_at = next(event.at for event in store.timeline.for_item(item_id) if event.event == "succeeded")

    # Then step 2's start clears the row, long before the writer's lease would let a relay send
    # that message again (a copy that would start step 2 a second time), and the item finishes
    started = wait_for(lambda: first_event(store.timeline.for_item(item_id), "started", "thumbnails"),
                       timeout_s=30, what="step 2 to start")
    assert store.outbox.count() == 0
    assert (started.at - written_at).total_seconds() < DEFAULT_LEASE_S
    finishes_running_each_later_step_once(store, item_id)


def test_worker_killed_after_sending_a_step_that_waits_past_the_lease_runs_that_step_once(
    processes_context: Context, processes: Start, database_url: str,
    test_media: SampleClips, unique_id: Callable[[str], str],
) -> None:
    # Given step 2's queue paused, and a worker for step 1 that dies the moment Redis has taken
    # the message of step 2, before it clears that message's outbox row
    queues = Queues.of_broker(broker)
    queues.pause("thumbnails")
    item_id = unique_id("waits")
    sent_step_2_and_died(processes_context, processes, database_url, test_media, item_id)
    store = processes_context.store

    # When step 2's message waits in the pause past the writer's lease, so the workers' relays find its row
    wait_for(lambda: store.outbox.count() == 0, timeout_s=DEFAULT_LEASE_S + 20, what="a relay to settle the row")

    # Then the relay cleared the row without a second copy, and once resumed step 2 runs once
    assert queues.get("thumbnails").held == 1
    queues.resume("thumbnails")
    finishes_running_each_later_step_once(store, item_id)


def test_worker_stalled_past_the_lease_between_its_status_write_and_its_send_leaves_the_step_to_the_relay(
    processes_context: Context, processes: Start, database_url: str, test_media: SampleClips,
    unique_id: Callable[[str], str],
) -> None:
    # Given a worker for step 1 that stops (SIGSTOP) once its status write has committed step 2's
    # message, before it sends it; nobody runs step 2, so every copy of its message stays in Redis
    env = {**os.environ, "DATABASE_URL": database_url}
    stalled = processes([sys.executable, "-m", "tests.e2e.dying_worker", "--stop-before-send",
                         "autolog.make_thumbnails", "probe"], env)
    item_id = unique_id("stalled")
    actions.submit(processes_context, [NewItem(item_id, str(test_media.path("cuts_noaudio.mp4")), force_resume=True)])
    wait_for(lambda: _state(stalled.pid) == "T", timeout_s=60, what="the worker to stop before its send")
    store = processes_context.store
    assert (store.items.get(item_id).status, store.outbox.count()) == (Status.FILE_INFO_COMPLETE, 1)

    # When the row's lease runs out, a relay sends step 2, and then the worker goes on
    wait_for(lambda: relay_outbox(broker, store.outbox) == 1, timeout_s=DEFAULT_LEASE_S + 20,
             what="the lease to run out and a relay to send the message")
    os.kill(stalled.pid, signal.SIGCONT)
    wait_for(lambda: not broker.client.hlen(f"{broker.namespace}:probe.msgs"), timeout_s=30,
             what="the worker to finish step 1's message")

    # Then Redis holds one copy of step 2's message: the worker, past its send deadline, left it to the relay
    assert Queues.of_broker(broker).get("thumbnails").queued == 1
    assert store.outbox.count() == 0


def _state(pid: int) -> str:
    """Return a process's state letter (``/proc/PID/stat``): ``T`` when stopped."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


def finishes_running_each_later_step_once(store: Store, item_id: str) -> None:
    """Wait for ``item_id`` to finish; check that steps 2 to 5 each started once and none was skipped."""
    wait_for(lambda: store.items.get(item_id).status is Status.AVID_DESCRIPTION, timeout_s=90,
             what="the item to finish")
    runs = [(event.event, event.step) for event in store.timeline.for_item(item_id)
            if event.event in ("started", "skipped") and event.step != "file_info"]
    assert runs == [("started", step) for step in ("thumbnails", "assess", "analysis", "frames")]


def sent_step_2_and_died(processes_context: Context, processes: Start, database_url: str,
                         test_media: SampleClips, item_id: str) -> None:
    """Run step 1 of ``item_id`` in a worker killed once Redis has step 2's message, before it clears its row.

    Workers for the later steps run too.
    """
    env = {**os.environ, "DATABASE_URL": database_url}
    processes([*WORKERS, "--queues", *LATER_QUEUES], env)
    dying = processes([sys.executable, "-m", "tests.e2e.dying_worker", "--after-enqueue", "autolog.make_thumbnails",
                       "probe"], env)
    actions.submit(processes_context, [NewItem(item_id, str(test_media.path("cuts_noaudio.mp4")), force_resume=True)])
    dying.wait(timeout=60)
    assert dying.returncode == -signal.SIGKILL


class RestartableRedis:
    """A private redis-server on a fixed port that the test stops and starts again."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
             "--save", "", "--appendonly", "no"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        wait_for(lambda: self._answers(client), timeout_s=10, what="redis-server to answer")
        client.close()

    @staticmethod
    def _answers(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def restartable_redis(tmp_path: Path) -> Iterator[RestartableRedis]:
    root = tmp_path / "redis"
    root.mkdir()
    server = RestartableRedis(root)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def clip40(test_media: SampleClips) -> Path:
    """A 40 s clip whose scene detection takes long enough to stop Redis meanwhile."""
    return long_clip(test_media, 40)


def test_next_step_sent_while_redis_is_down_is_relayed_once_it_is_back(
    processes: Start, database_url: str, restartable_redis: RestartableRedis,
    clip40: Path, unique_id: Callable[[str], str],
) -> None:
    # Given workers on a Redis of their own, running step 3 of an item
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": restartable_redis.url}
    processes(WORKERS, env)
    store = Store.open(database_url)
    item_id = unique_id("blip")
    first = first_message(item_id, Status.PENDING_FILE_INFO)
    assert first is not None
    try:
        # Stored with its first message, which nobody sends: the workers' relay does, once its lease runs out.
        store.items.create([NewItem(item_id, str(clip40), force_resume=True)], messages=[pending(first)])
        wait_for(lambda: first_event(store.timeline.for_item(item_id), "started", "assess"), timeout_s=60,
                 what="step 3 to start")

        # When Redis stops while the step runs, so its next step cannot be sent
        restartable_redis.stop()
        wait_for(lambda: first_event(store.timeline.for_item(item_id), "succeeded", "assess"), timeout_s=120,
                 what="step 3 to store its status")
        assert store.outbox.count() == 1
        restartable_redis.start()
        back_at = time.time()

        # Then the message is relayed once Redis is back, and the item finishes
        started = wait_for(lambda: first_event(store.timeline.for_item(item_id), "started", "analysis"),
                           timeout_s=30, what="step 4 to start")
        assert started.at.timestamp() - back_at < 30
        wait_for(lambda: store.items.get(item_id).status is Status.AVID_DESCRIPTION, timeout_s=60,
                 what="the item to finish")
        assert store.outbox.count() == 0
    finally:
        store.close()
