"""The pool manager with real ``dramatiq`` processes on the private Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import dramatiq
import pytest
import redis

from actors import probe
from autolog.processes import group_members, pid_alive, runs_command_with
from autolog.settings import Settings
from ops.pools import PoolManager
from tests.conftest import wait_for

#: Every test here stops its pools well before this.
STOP_TIMEOUT_S = 20.0


@pytest.fixture
def manager(pool_settings: Settings) -> Iterator[PoolManager]:
    """A pool manager whose pools are all stopped after the test."""
    pools = PoolManager(pool_settings)
    yield pools
    pools.stop(timeout_s=STOP_TIMEOUT_S)
    pools.close()


def pool_groups(manager: PoolManager) -> set[int]:
    """Process groups of the dramatiq processes that use this manager's pid files."""
    groups = set()
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().decode().split("\0")
        except (FileNotFoundError, ProcessLookupError, PermissionError, NotADirectoryError):
            continue
        if any(part.startswith(str(manager.run_dir)) for part in command):
            groups.add(os.getpgid(int(entry.name)))
    return groups


@pytest.mark.slow
def test_started_pools_run_dramatiq_processes_and_stop_terminates_them(
    pool_settings: Settings, monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis,
) -> None:
    monkeypatch.setenv("AUTOLOG_POOL_FILE_INFO_PROCESSES", "2")
    manager = PoolManager(Settings.from_env())
    heartbeats = f"{pool_settings.namespace}:__heartbeats__"
    before = set(redis_client.zrange(heartbeats, 0, -1))
    try:
        started = manager.start(["file_info", "control"])

        assert [(pool.name, pool.queue, pool.processes, pool.threads, pool.alive) for pool in started] == [
            ("file_info", "probe", 2, 1, True), ("control", "control", 2, 2, True)]
        pids = {pool.name: pool.pid for pool in started}
        assert all(pid is not None for pid in pids.values())
        # The master forks the group's two worker processes
        wait_for(lambda: all(len(group_members(pid)) >= 3 for pid in pids.values() if pid), what="workers forked")
        assert [pool.alive for pool in manager.status(["thumbnails"])] == [False]
        # each with a broker id of its own (forked from one broker), so a frozen or killed one's
        # heartbeat expires while its sibling beats
        wait_for(lambda: len(set(redis_client.zrange(heartbeats, 0, -1)) - before) >= 2,
                 what="two worker processes beating under two ids")

        stopped = manager.stop(["file_info", "control"], timeout_s=STOP_TIMEOUT_S)
    finally:
        manager.stop(timeout_s=STOP_TIMEOUT_S)
        manager.close()

    assert [pool.alive for pool in stopped] == [False, False]
    assert all(group_members(pid) == [] for pid in pids.values() if pid)
    assert not list(manager.run_dir.glob("*.pid"))


@pytest.mark.slow
def test_starting_twice_does_not_duplicate_a_pool(manager: PoolManager, pool_settings: Settings) -> None:
    first = manager.start(["control"])

    other = PoolManager(pool_settings)
    try:
        again = other.start(["control"])
    finally:
        other.close()

    assert [pool.pid for pool in again] == [pool.pid for pool in first]
    assert pool_groups(manager) == {first[0].pid}


def test_status_reports_queue_depth_from_redis(manager: PoolManager) -> None:
    probe.send("LF1")
    probe.send("LF2")
    probe.send_with_options(args=("LF3",), delay=60_000)

    [pool] = manager.status(["file_info"])

    assert (pool.alive, pool.pid) == (False, None)
    assert pool.depth is not None
    assert (pool.depth.ready, pool.depth.delayed, pool.depth.in_flight, pool.depth.dead) == (2, 1, 0, 0)


@pytest.mark.slow
def test_stopping_or_starting_one_pool_of_a_running_group_restarts_the_group_for_the_pools_then_wanted(
    manager: PoolManager,
) -> None:
    first = manager.start(["file_info", "control"])[0].pid

    stopped, control = manager.stop(["file_info"], timeout_s=STOP_TIMEOUT_S) + manager.status(["control"])

    assert (stopped.alive, stopped.wanted, control.alive, control.wanted) == (False, False, True, True)
    assert control.pid not in (None, first) and group_members(first) == []
    assert manager.serving("workers") == ("control",)

    started = manager.start(["file_info"])[0]
    assert started.alive and started.pid not in (None, control.pid)
    assert manager.serving("workers") == ("file_info", "control")


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_a_worker_process_whose_master_is_killed_stops_instead_of_running_on_as_an_orphan(
    manager: PoolManager, redis_client: redis.Redis,
) -> None:
    master = manager.start(["file_info", "control"])[0].pid
    assert master is not None
    [worker] = wait_for(lambda: children(master), what="the worker process forked")
    log = manager.log_dir / "pools-workers.log"
    # Booted: killed before, a worker can hang in dramatiq's boot handshake (a lock the master held), not here.
    wait_for(lambda: log.is_file() and "is ready for action" in log.read_text(), what="the worker booted")

    os.kill(master, signal.SIGKILL)

    # The kernel sends the worker SIGTERM (PR_SET_PDEATHSIG): it stops as on a normal stop, within the grace
    # period, instead of consuming on with parent 1 where no pid file, `workers stop` or `down` finds it.
    wait_for(lambda: not pid_alive(worker), timeout_s=manager.default_stop_timeout_s, what="the orphan to stop")
    # Once Redis has dropped its connections too: a consumer's wait and the fetch pipelined behind it, left in
    # Redis by a process that exited while blocked, would take the next message for a process that is gone
    # (kept in its ack set until its heartbeat lapses), which is not the orphan consuming on.
    wait_for(lambda: not any("b" in client["flags"] for client in redis_client.client_list()),
             what="Redis to drop the orphan's blocked connections")
    probe.send("LF1")
    [pool] = manager.status(["file_info"])
    assert pool.depth is not None and (pool.depth.ready, pool.depth.in_flight) == (1, 0)


def test_a_stop_whose_summary_cannot_be_read_from_the_database_still_stops_and_names_nothing(
    manager: PoolManager, pool_settings: Settings, redis_client: redis.Redis, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A running group, so the stop reads the messages workers hold (a group that does not run holds none)
    assert manager.start(["file_info"])[0].alive
    unreadable = replace(pool_settings, database_url=f"sqlite:///{tmp_path / 'missing' / 'autolog.db'}")
    stopper = PoolManager(unreadable)
    message = dramatiq.Message(queue_name="probe", actor_name=probe.actor_name, args=("HELD1",), kwargs={}, options={})
    redis_client.hset(f"{unreadable.namespace}:probe.msgs", message.message_id, message.encode())
    redis_client.sadd(f"{unreadable.namespace}:__acks__.some-worker.probe", message.message_id)
    try:
        (stop,) = stopper.drain(["file_info"], timeout_s=STOP_TIMEOUT_S)
    finally:
        stopper.close()

    assert (stop.pool.alive, stop.drained, stop.requeued) == (False, (), ())
    assert "Could not tell which running steps of 'file_info' finished or were put back" in caplog.text


@pytest.mark.slow
def test_a_worker_process_whose_master_is_killed_while_it_boots_exits_too(
    pool_settings: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUTOLOG_STOP_GRACE_S", "1")
    manager = PoolManager(Settings.from_env())
    try:
        master = manager.start(["control"])[0].pid
        assert master is not None
        [worker] = wait_for(lambda: children(master), interval_s=0.001, what="the worker process forked")
        # Killed this early, the master may hold a lock of dramatiq's boot handshake for good: the
        # worker's main thread then never gets to stop, and its orphan watch ends it after its stop time.
        os.kill(master, signal.SIGKILL)

        wait_for(lambda: not pid_alive(worker), timeout_s=manager.default_stop_timeout_s + 10,
                 what="the orphan to exit")
    finally:
        manager.stop(timeout_s=STOP_TIMEOUT_S)
        manager.close()


def test_a_worker_group_started_under_other_settings_is_stopped_by_a_full_stop(pool_settings: Settings) -> None:
    # Given a group running here that these settings do not name (``up`` had AUTOLOG_POOL_*_GROUP set)
    manager = PoolManager(pool_settings)
    manager.run_dir.mkdir(parents=True, exist_ok=True)
    pid_file = manager.run_dir / "pools-elsewhere.pid"
    stray = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "--pid-file", str(pid_file)],
                             start_new_session=True)
    pid_file.write_text(str(stray.pid))
    try:
        # Popen returns once the exec began: the kernel fills the new program's command line a moment later
        wait_for(lambda: runs_command_with(stray.pid, str(pid_file)), timeout_s=10, what="the group's command line")

        # When everything is stopped, Then that group is stopped too, and said so
        assert manager.stop_other_groups(timeout_s=10) == ["elsewhere"]
        assert stray.wait(timeout=10) == -signal.SIGTERM
        assert not pid_file.exists()
        assert manager.stop_other_groups(timeout_s=10) == []
    finally:
        stray.kill()
        stray.wait()
