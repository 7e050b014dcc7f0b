"""The whole stack as ``autolog up`` starts it, on its private Redis, recovering from faults with nobody acting.

One stack per module (pools, gunicorn, the sweep and a private Redis on its socket under the
test's var folder); each test injects one fault, lets it clear, and checks that every item
finishes by itself within the recovery target after the fault cleared.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from autolog.broker_state import decode_message, worker_heartbeats
from autolog.local_redis import private_redis
from autolog.settings import Settings
from autolog.statuses import STEPS, Status
from autolog.store import Store
from autolog.worker_presence import read_workers
from ops.stack import Stack
from tests.conftest import SampleClips, free_port_block, redis_servers, wait_for
from tests.web.conftest import KEY, http

pytestmark = pytest.mark.slow

#: How long after a fault clears every item must be moving again (the recovery target), plus
#: the time the remaining steps of a short clip take on a loaded two-core machine.
RECOVERY_S = 30.0
FINISH_S = 90.0


@dataclass(frozen=True)
class RunningStack:
    """A stack started by ``Stack.up`` and what a test needs to reach it."""

    stack: Stack
    settings: Settings
    store: Store
    api_url: str
    redis: redis.Redis
    watch_folder: Path

    def submit(self, item_id: str, source: Path) -> None:
        status, body = http("POST", f"{self.api_url}/items", headers={"X-API-Key": KEY},
                            body={"id": item_id, "source": str(source), "force_resume": True})
        assert status == 202, body

    def status(self, item_id: str) -> Status:
        return self.store.items.get(item_id).status

    def events(self, item_id: str, event: str) -> list[str | None]:
        return [entry.step for entry in self.store.timeline.for_item(item_id) if entry.event == event]

    def where(self, item_ids: list[str]) -> str:
        """Where each of ``item_ids`` stands (for a failure's message): its status, last five timeline
        events and where Redis holds its messages (``in_redis``)."""
        lines = []
        for item_id in item_ids:
            last = [f"{entry.event} {entry.step or ''}".strip() for entry in self.store.timeline.for_item(item_id)][-5:]
            lines.append(f"{item_id}: {self.status(item_id).value}; last events: {', '.join(last)}; "
                         f"in Redis: {self.in_redis(item_id) or 'nothing'}")
        return "\n".join(lines)

    def in_redis(self, item_id: str) -> str:
        """Where Redis holds ``item_id``'s messages: each one's queue, and its place there (the queue's list,
        a worker's ack set with the age of that worker's last heartbeat, or neither)."""
        namespace = self.settings.namespace
        beats = {worker: beat_ms for worker, beat_ms, _ in worker_heartbeats(self.redis, namespace)}
        places = []
        for key in self.redis.scan_iter(match=f"{namespace}:*.msgs"):
            queue = key.decode()[len(namespace) + 1:-len(".msgs")]
            for redis_id, data in self.redis.hscan_iter(key):
                message = decode_message(data)
                if message is None or message.item_id != item_id:
                    continue
                where = []
                if self.redis.lpos(f"{namespace}:{queue}", redis_id) is not None:
                    where.append("its list")
                for acks in self.redis.scan_iter(match=f"{namespace}:__acks__.*.{queue}"):
                    if self.redis.sismember(acks, redis_id):
                        worker = acks.decode()[len(f"{namespace}:__acks__."):-len(f".{queue}")]
                        age_s = time.time() - beats[worker] / 1000 if worker in beats else None
                        where.append(f"the ack set of worker {worker} (last beat "
                                     f"{'none' if age_s is None else f'{age_s:.0f} s ago'})")
                places.append(f"{message.actor} {message.message_id} on {queue}: {', '.join(where) or 'neither'}")
        return "; ".join(places)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, test_media: SampleClips) -> Iterator[RunningStack]:
    """``autolog up`` with no REDIS_URL: a private Redis, one-thread pools, gunicorn and the sweep."""
    tmp = tmp_path_factory.mktemp("stack")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("REDIS_URL")
        patch.setenv("AUTOLOG_VAR_DIR", str(tmp / "var"))
        patch.setenv("DATABASE_URL", f"sqlite:///{tmp / 'autolog.db'}")
        patch.setenv("AUTOLOG_NAMESPACE", "autolog-stack")
        patch.setenv("AUTOLOG_API_KEYS", KEY)
        patch.setenv("AUTOLOG_API_WORKERS", "1")
        watch_folder = test_media.root.parent / f"watch-{tmp.name}"
        watch_folder.mkdir()
        patch.setenv("AUTOLOG_WATCH_FOLDERS", str(watch_folder))
        base = free_port_block(len(STEPS) + 2)
        patch.setenv("AUTOLOG_API_PORT", str(base))
        patch.setenv("AUTOLOG_METRICS_PORT_BASE", str(base + 1))
        for step in STEPS:
            patch.setenv(f"AUTOLOG_POOL_{step.name.upper()}_THREADS", "1")
        settings = Settings.from_env()
        stack = Stack(settings)
        status = stack.up()
        store = Store.open(settings.sqlalchemy_url)
        client = redis.Redis.from_url(settings.broker_url)
        try:
            assert status.running, status
            yield RunningStack(stack=stack, settings=settings, store=store, api_url=status.api.url, redis=client,
                               watch_folder=watch_folder)
        finally:
            stack.down(timeout_s=30)
            stack.pools.close()
            client.close()
            store.close()


@pytest.fixture
def clip(test_media: SampleClips) -> Callable[[str], Path]:
    """A short clip with audio under a new name, so each item has its own source."""
    def make(name: str) -> Path:
        path = test_media.root / "recovery" / f"{name}.mp4"
        path.parent.mkdir(exist_ok=True)
        if not path.exists():
            os.link(test_media.path("cuts_audio.mp4"), path)
        return path

    return make


def test_redis_killed_mid_run_then_up_gives_one_redis_at_the_same_address_and_every_item_finishes(
    running: RunningStack, clip: Callable[[str], Path], unique_id: Callable[[str], str],
) -> None:
    server = private_redis(running.settings)
    ids = [unique_id(f"redis-kill-{index}") for index in range(3)]
    for item_id in ids:
        running.submit(item_id, clip(item_id))
    wait_for(lambda: any(running.events(item_id, "succeeded") for item_id in ids), timeout_s=60,
             what="a first step to succeed")

    # When the private Redis is killed mid-run (kill -9: no shutdown, no final AOF write)
    first = server.pid()
    assert first is not None
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: http("GET", f"{running.api_url}/health")[0] == 503, what="the API to see Redis down")

    # and `up` is run again
    status = running.stack.up()

    # Then there is one Redis, at the same socket, and the API, the pools and the sweep are on it
    assert status.running and status.redis_url == running.settings.broker_url
    assert redis_servers(server.socket) == [server.pid()]
    wait_for(lambda: http("GET", f"{running.api_url}/health")[0] == 200, timeout_s=RECOVERY_S,
             what="the API to see Redis back")
    # and every item finishes by itself, each step once
    wait_for(lambda: all(running.status(item_id) is Status.AVID_DESCRIPTION for item_id in ids),
             timeout_s=FINISH_S, what="every item to finish after Redis came back",
             explain=lambda: running.where(ids))
    for item_id in ids:
        succeeded = running.events(item_id, "succeeded")
        assert len(succeeded) == len(set(succeeded)), (item_id, succeeded)


def test_one_worker_process_killed_brings_its_pool_back_and_health_says_degraded_meanwhile(
    running: RunningStack, clip: Callable[[str], Path], unique_id: Callable[[str], str],
) -> None:
    wait_for(lambda: http("GET", f"{running.api_url}/health")[1].get("status") == "healthy", timeout_s=60,
             what="every pool to be live")
    settings = running.settings
    workers = read_workers(running.redis, settings.namespace, timeout_ms=settings.heartbeat_timeout_ms,
                           now_ms=int(time.time() * 1000))
    victim = next(entry.info.pid for entry in workers if entry.live and entry.info.pool == "thumbnails")
    group = running.stack.pools.group_processes[running.stack.pools.select(["thumbnails"])[0].group]
    master = group.pid()

    # When one worker process of a pool is killed, as the OOM killer would
    os.kill(victim, signal.SIGKILL)

    # Then /health says the pool is down while it is, and the supervisor brings the pool back
    _, degraded = wait_for(lambda: (answer := http("GET", f"{running.api_url}/health"))[1].get("status") == "degraded"
                           and answer, timeout_s=RECOVERY_S, what="/health to report the pool")
    assert degraded["pools"]["thumbnails"]["state"] in ("down", "short")
    wait_for(lambda: http("GET", f"{running.api_url}/health")[1].get("status") == "healthy", timeout_s=60,
             what="the pool to be back")
    assert group.pid() not in (None, master)

    # and items go through it again
    item_id = unique_id("after-oom")
    running.submit(item_id, clip(item_id))
    wait_for(lambda: running.status(item_id) is Status.AVID_DESCRIPTION, timeout_s=FINISH_S, what="the item to finish")


def test_a_file_copied_into_the_watch_folder_becomes_one_item_that_runs_to_the_end(
    running: RunningStack, test_media: SampleClips,
) -> None:
    target = running.watch_folder / "W001.mp4"
    shutil.copyfile(test_media.path("cuts_noaudio.mp4"), target)

    (item,) = wait_for(lambda: running.store.items.with_source(str(target)), timeout_s=RECOVERY_S,
                       what="the sweep process to ingest the file")
    wait_for(lambda: running.status(item.id) in (Status.AWAITING_USER_INPUT, Status.AVID_DESCRIPTION),
             timeout_s=FINISH_S, what="the item to run")
    assert len(running.store.items.with_source(str(target))) == 1


def test_one_exporter_on_the_host_sums_every_pool_and_no_pool_runs_its_own(
    running: RunningStack, clip: Callable[[str], Path], unique_id: Callable[[str], str],
) -> None:
    # Given an item run through the pools (its own: pytest-xdist may run this test first on its stack)
    item_id = unique_id("exporter")
    running.submit(item_id, clip(item_id))
    wait_for(lambda: running.status(item_id) is Status.AVID_DESCRIPTION, timeout_s=FINISH_S, what="the item to finish")
    settings = running.settings
    url = f"http://{settings.metrics_host}:{settings.metrics_port_base}/metrics"

    def succeeded() -> set[str]:
        try:
            status, text = http("GET", url)
        except urllib.error.URLError:  # the exporter is not listening yet
            return set()
        assert status == 200
        return {sample.labels["queue_name"] for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.name == "autolog_messages_total" and sample.labels.get("outcome") == "succeeded"
                and sample.value > 0}

    # Then the counts written by the worker processes of several pools are summed by the one exporter
    wait_for(lambda: {"probe", "thumbnails", "assess"} <= succeeded(), what="the exporter to sum the pools' counts")
    status, text = http("GET", url)
    assert status == 200
    assert 'autolog_pool_degraded{pool="frames"} 0.0' in text
    for port in range(settings.metrics_port_base + 1, settings.metrics_port_base + len(STEPS) + 1):
        assert http_refused(f"http://{settings.metrics_host}:{port}/metrics"), port


def http_refused(url: str) -> bool:
    """True when nothing listens at ``url``."""
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except urllib.error.URLError as ex:
        return isinstance(ex.reason, ConnectionRefusedError)
    return False
