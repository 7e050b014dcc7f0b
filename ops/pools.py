"""The worker-pool manager: one ``dramatiq`` process group per step queue, plus ``control``.

Each pool is a ``dramatiq`` CLI master started in its own session (so its process group
id is its pid), with a pid file under ``run_dir`` and a log file under ``log_dir``. The
HTTP API reuses this class, so it returns frozen dataclasses and never prints.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis

from autolog.broker_state import QueueStats, read_queue_stats
from autolog.errors import ConfigError
from autolog.local_redis import resolve_redis_url
from autolog.processes import pid_alive, runs_command_with, stop_processes
from autolog.settings import Settings, child_environment
from autolog.statuses import STEPS
from ops.errors import PoolError
from ops.runtime import connect_redis, migrate_store

#: The folder holding the top-level packages, given to ``dramatiq --path`` so workers
#: import this checkout whether or not the distribution is installed.
PROJECT_DIR = Path(__file__).resolve().parent.parent

#: The queue of the callback actor ``autolog.route`` and its pool's size.
CONTROL_QUEUE = "control"
CONTROL_PROCESSES = 1
CONTROL_THREADS = 2
#: ``autolog.route`` only enqueues messages; dramatiq's default time limit is ample.
CONTROL_TIME_LIMIT_S = 600

#: Stop waits this much longer than the longest time limit, so SIGTERM can drain.
STOP_GRACE_S = 10


#: How long stop waits for a master it started to be reaped once its group is gone.
REAP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class PoolSpec:
    """What one pool runs: its queue and its size."""

    name: str
    queue: str
    processes: int
    threads: int
    time_limit_s: int
    #: Where the pool's metrics exporter listens: ``metrics_port_base`` plus the pool's index.
    metrics_port: int | None = None


@dataclass(frozen=True)
class PoolStatus:
    """One pool as it stands: its size, its master process and its queue."""

    name: str
    queue: str
    processes: int
    threads: int
    pid: int | None
    alive: bool
    #: None when Redis could not be asked.
    depth: QueueStats | None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


def pool_specs(settings: Settings) -> tuple[PoolSpec, ...]:
    """Return the pools settings ask for: one per step, in pipeline order, then ``control``."""
    base = settings.metrics_port_base
    specs = [
        PoolSpec(name=step.name, queue=step.queue_name, processes=settings.pools[step.name].processes,
                 threads=settings.pools[step.name].threads, time_limit_s=settings.pools[step.name].time_limit_s,
                 metrics_port=base + index)
        for index, step in enumerate(STEPS)
    ]
    specs.append(PoolSpec(name=CONTROL_QUEUE, queue=CONTROL_QUEUE, processes=CONTROL_PROCESSES,
                          threads=CONTROL_THREADS, time_limit_s=CONTROL_TIME_LIMIT_S, metrics_port=base + len(STEPS)))
    return tuple(specs)


def default_dramatiq_bin() -> Path:
    """Return the ``dramatiq`` script next to this interpreter (the venv's)."""
    return Path(sys.executable).parent / "dramatiq"


class PoolManager:
    """Starts, stops and reports the worker pools of one machine."""

    def __init__(
        self,
        settings: Settings,
        *,
        run_dir: Path | None = None,
        log_dir: Path | None = None,
        dramatiq_bin: Path | None = None,
        redis_client: redis.Redis | None = None,
    ) -> None:
        self.logger = logging.getLogger(__name__)
        self.settings = settings
        self.run_dir = (run_dir or Path(settings.var_dir) / "run").resolve()
        self.log_dir = (log_dir or Path(settings.var_dir) / "log").resolve()
        self.dramatiq_bin = dramatiq_bin or default_dramatiq_bin()
        self.specs = pool_specs(settings)
        self._redis = redis_client
        #: Masters this instance started; reaped by ``stop`` so none is left a zombie.
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def default_stop_timeout_s(self) -> float:
        """The longest time limit of any pool, plus a grace period."""
        return float(max(spec.time_limit_s for spec in self.specs) + STOP_GRACE_S)

    def select(self, names: Iterable[str] | None = None) -> list[PoolSpec]:
        """Return the pools called ``names`` (all when None), in the order of ``specs``.

        Raises:
            PoolError: a name is not a pool.
        """
        if names is None:
            return list(self.specs)
        wanted = set(names)
        unknown = wanted - {spec.name for spec in self.specs}
        if unknown:
            known = ", ".join(spec.name for spec in self.specs)
            raise PoolError(f"unknown pool {sorted(unknown)[0]!r}; pools are {known}")
        return [spec for spec in self.specs if spec.name in wanted]

    def command(self, spec: PoolSpec) -> list[str]:
        """Return the ``dramatiq`` command line that runs ``spec``."""
        return [
            str(self.dramatiq_bin), "actors", "pipelines", "--path", str(PROJECT_DIR),
            "--queues", spec.queue, "--processes", str(spec.processes), "--threads", str(spec.threads),
            "--pid-file", str(self._pid_file(spec)), "--log-file", str(self.log_dir / f"{spec.name}.log"),
            # Let a running message finish within its time limit when stopped.
            "--worker-shutdown-timeout", str(spec.time_limit_s * 1000),
        ]

    def start(self, names: Iterable[str] | None = None) -> list[PoolStatus]:
        """Start the pools that are not running; a pool whose master is alive is left alone.

        The database is migrated first so workers open it without migrating, and the
        resolved ``REDIS_URL`` is published for the workers to inherit.

        Raises:
            PoolError: a name is not a pool.
            ConfigError: no Redis is configured or running.
        """
        chosen = self.select(names)
        connect_redis(self.settings)
        migrate_store(self.settings)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for spec in chosen:
            if self._pid(spec) is not None:
                self.logger.info("Pool %r is already running.", spec.name)
                continue
            self._spawn(spec)
        return self.status(spec.name for spec in chosen)

    def metrics_dir(self, spec: PoolSpec) -> Path:
        """Return the pool's prometheus multiprocess folder."""
        return ((self.settings.metrics_dir or Path(self.settings.var_dir) / "metrics") / spec.name).resolve()

    def environment(self, spec: PoolSpec) -> dict[str, str]:
        """Return the pool's environment: this one, plus its pool name, metrics port and folder."""
        folder = str(self.metrics_dir(spec))
        pool = {"AUTOLOG_WORKER_POOL": spec.name, "AUTOLOG_METRICS_DIR": folder, "PROMETHEUS_MULTIPROC_DIR": folder}
        if spec.metrics_port is not None:
            pool["AUTOLOG_METRICS_PORT"] = str(spec.metrics_port)
        return child_environment(pool)

    def _spawn(self, spec: PoolSpec) -> None:
        # A new group starts with an empty metrics folder: the files of the last run are stale.
        shutil.rmtree(self.metrics_dir(spec), ignore_errors=True)
        self.metrics_dir(spec).mkdir(parents=True)
        with open(self.log_dir / f"{spec.name}.out", "ab") as output:
            child = subprocess.Popen(self.command(spec), stdin=subprocess.DEVNULL, stdout=output,
                                     stderr=subprocess.STDOUT, start_new_session=True, env=self.environment(spec))
        # Written before dramatiq writes its own, so start and status never race the child;
        # dramatiq accepts a pid file that already holds its own pid. Renamed into place so
        # dramatiq never reads it half-written.
        partial = self._pid_file(spec).with_suffix(".pid.tmp")
        partial.write_text(f"{child.pid}\n")
        partial.replace(self._pid_file(spec))
        self._children[spec.name] = child
        self.logger.info("Started pool %r (pid %d).", spec.name, child.pid)

    def stop(self, names: Iterable[str] | None = None, *, timeout_s: float | None = None) -> list[PoolStatus]:
        """Send SIGTERM to each running pool's group, then SIGKILL the groups still up at the deadline.

        Raises:
            PoolError: a name is not a pool.
        """
        chosen = self.select(names)
        running = {spec.name: pid for spec in chosen if (pid := self._pid(spec)) is not None}
        for name, pid in running.items():
            self.logger.info("Stopping pool %r (pid %d).", name, pid)
        killed = stop_processes(list(running.values()), group=True,
                                timeout_s=self.default_stop_timeout_s if timeout_s is None else timeout_s)
        for name, pid in running.items():
            if pid in killed:
                self.logger.warning("Pool %r did not stop in time; killed its group.", name)
        for spec in chosen:
            if spec.name in running:
                self._pid_file(spec).unlink(missing_ok=True)
                self._reap(spec.name)
        return self.status(spec.name for spec in chosen)

    def status(self, names: Iterable[str] | None = None) -> list[PoolStatus]:
        """Report each pool: size, master pid, whether it is alive, and its queue depth."""
        chosen = self.select(names)
        depths = self.queue_depths([spec.queue for spec in chosen])
        statuses = []
        for spec in chosen:
            pid = self._recorded_pid(spec)
            statuses.append(PoolStatus(
                name=spec.name, queue=spec.queue, processes=spec.processes, threads=spec.threads, pid=pid,
                alive=pid is not None and self._alive(spec, pid), depth=depths.get(spec.queue),
            ))
        return statuses

    def queue_depths(self, queues: Sequence[str]) -> dict[str, QueueStats]:
        """Read the depth of each queue; empty when no Redis is configured or it cannot be reached."""
        try:
            client = self._client()
        except ConfigError as ex:
            self.logger.info("No queue depths: %s", ex)
            return {}
        try:
            return read_queue_stats(client, self.settings.namespace, queues)
        except redis.RedisError as ex:
            self.logger.warning("Could not read queue depths: %s", ex)
            return {}

    def close(self) -> None:
        """Close the Redis client this manager opened, if any."""
        if self._redis is not None:
            self._redis.close()
            self._redis = None

    def _client(self) -> redis.Redis:
        if self._redis is None:
            url = resolve_redis_url(self.settings)
            self._redis = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        return self._redis

    def _pid_file(self, spec: PoolSpec) -> Path:
        return self.run_dir / f"{spec.name}.pid"

    def _recorded_pid(self, spec: PoolSpec) -> int | None:
        try:
            text = self._pid_file(spec).read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else None

    def _pid(self, spec: PoolSpec) -> int | None:
        """Return the pool's master pid when it is alive, else None."""
        pid = self._recorded_pid(spec)
        return pid if pid is not None and self._alive(spec, pid) else None

    def _alive(self, spec: PoolSpec, pid: int) -> bool:
        child = self._children.get(spec.name)
        if child is not None and child.pid == pid:
            return child.poll() is None
        return pid_alive(pid) and runs_command_with(pid, str(self._pid_file(spec)))

    def _reap(self, name: str) -> None:
        child = self._children.pop(name, None)
        if child is None:
            return
        try:
            child.wait(timeout=REAP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._children[name] = child
            self.logger.warning("Pool %r (pid %d) has not exited.", name, child.pid)
