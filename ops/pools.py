"""The worker-pool manager: one ``dramatiq`` process group per step queue, plus ``control``.

Each pool is a ``dramatiq`` CLI master started in its own session (so its process group
id is its pid), with a pid file under ``run_dir`` and a log file under ``log_dir``. The
HTTP API reuses this class, so it returns frozen dataclasses and never prints.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis

from autolog.broker_state import QueueStats, decode_message, read_queue_stats
from autolog.errors import ConfigError
from autolog.settings import Settings
from autolog.statuses import STEPS
from ops.errors import PoolError
from ops.processes import PidFileProcess
from ops.runtime import migrate_store

#: The folder holding the top-level packages, given to ``dramatiq --path`` so workers
#: import this checkout whether or not the distribution is installed.
PROJECT_DIR = Path(__file__).resolve().parent.parent

#: The queue of the callback actor ``autolog.route`` and its pool's size.
CONTROL_QUEUE = "control"
CONTROL_PROCESSES = 1
CONTROL_THREADS = 2
#: ``autolog.route`` only enqueues messages; dramatiq's default time limit is ample.
CONTROL_TIME_LIMIT_S = 600

#: Stop waits this much longer than the grace period before killing: time for the processes to exit.
STOP_MARGIN_S = 15


@dataclass(frozen=True)
class PoolSpec:
    """What one pool runs: its queue and its size."""

    name: str
    queue: str
    processes: int
    threads: int
    time_limit_s: int


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
    #: Why the supervisor gave up restarting the pool (it kept dying); None while supervised.
    crash_loop: str | None = None
    #: Started here and not stopped since: a wanted pool that is not alive has died.
    wanted: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class PoolStop:
    """A pool after a stop, and the items whose running step finished (drained) or was put back (requeued)."""

    pool: PoolStatus
    drained: tuple[str, ...]
    requeued: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {**self.pool.to_dict(), "drained": list(self.drained), "requeued": list(self.requeued)}


def pool_specs(settings: Settings) -> tuple[PoolSpec, ...]:
    """Return the pools settings ask for: one per step, in pipeline order, then ``control``."""
    specs = [
        PoolSpec(name=step.name, queue=step.queue_name, processes=settings.pools[step.name].processes,
                 threads=settings.pools[step.name].threads, time_limit_s=settings.pools[step.name].time_limit_s)
        for step in STEPS
    ]
    specs.append(PoolSpec(name=CONTROL_QUEUE, queue=CONTROL_QUEUE, processes=CONTROL_PROCESSES,
                          threads=CONTROL_THREADS, time_limit_s=CONTROL_TIME_LIMIT_S))
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
        #: One pid-file process per pool, each a dramatiq master and its worker processes.
        self.processes = {spec.name: self._process(spec) for spec in self.specs}

    @property
    def default_stop_timeout_s(self) -> float:
        """How long stop waits before killing: the workers' grace period, plus time to exit."""
        return float(self.settings.stop_grace_s + STOP_MARGIN_S)

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

    def command(self, spec: PoolSpec, pid_file: Path | None = None) -> list[str]:
        """Return the ``dramatiq`` command line that runs ``spec``."""
        return [
            str(self.dramatiq_bin), "actors", "pipelines", "--path", str(PROJECT_DIR),
            "--queues", spec.queue, "--processes", str(spec.processes), "--threads", str(spec.threads),
            "--pid-file", str(pid_file or self.run_dir / f"{spec.name}.pid"),
            "--log-file", str(self.log_dir / f"{spec.name}.log"),
            # When stopped, running steps get the grace period; then ShutdownRequeue puts them back.
            "--worker-shutdown-timeout", str(int(self.settings.stop_grace_s * 1000)),
        ]

    def start(self, names: Iterable[str] | None = None) -> list[PoolStatus]:
        """Start the pools that are not running; a pool whose master is alive is left alone.

        The database is migrated first so workers open it without migrating.

        Raises:
            PoolError: a name is not a pool.
        """
        chosen = self.select(names)
        migrate_store(self.settings)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for spec in chosen:
            self.start_pool(spec)
        return self.status(spec.name for spec in chosen)

    def start_pool(self, spec: PoolSpec) -> bool:
        """Start one pool unless it runs; return whether this call started it.

        A start by hand clears a crash-loop mark the supervisor left, so supervision resumes.
        """
        self.crash_loop_file(spec).unlink(missing_ok=True)
        self.metrics_dir.mkdir(parents=True, exist_ok=True)
        started = self.processes[spec.name].start()[1]
        if not started:
            self.logger.info("Pool %r is already running.", spec.name)
        return started

    def revive_pool(self, spec: PoolSpec) -> int | None:
        """Start a pool again if its master died without being stopped; return the new master's pid."""
        return self.processes[spec.name].revive()

    def crash_loop_file(self, spec: PoolSpec) -> Path:
        """Where the supervisor marks a pool it gave up restarting (it holds the reason)."""
        return self.run_dir / f"{spec.name}.crash-loop"

    @property
    def metrics_dir(self) -> Path:
        """The prometheus multiprocess folder every pool of this machine writes to; its one exporter reads it.

        Each worker process removes the files of processes that are gone when it boots.
        """
        return (self.settings.metrics_dir or Path(self.settings.var_dir) / "metrics" / "pools").resolve()

    def environment(self, spec: PoolSpec) -> dict[str, str]:
        """Return what the pool's environment adds to this one: its pool name and the shared metrics folder.

        No ``AUTOLOG_METRICS_PORT``: the pools run no exporter of their own; this machine's sweep
        process serves them all (``ops.agent``).
        """
        folder = str(self.metrics_dir)
        return {"AUTOLOG_WORKER_POOL": spec.name, "AUTOLOG_METRICS_DIR": folder, "PROMETHEUS_MULTIPROC_DIR": folder,
                "AUTOLOG_METRICS_PORT": "", "AUTOLOG_VAR_DIR": str(Path(self.settings.var_dir).resolve())}

    def _process(self, spec: PoolSpec) -> PidFileProcess:
        return PidFileProcess(spec.name, lambda pid_file: self.command(spec, pid_file), run_dir=self.run_dir,
                              log_file=self.log_dir / f"{spec.name}.out", env=self.environment(spec))

    def stop(self, names: Iterable[str] | None = None, *, timeout_s: float | None = None) -> list[PoolStatus]:
        """Stop each running pool (see ``drain``) and report it.

        Raises:
            PoolError: a name is not a pool.
        """
        return [stopped.pool for stopped in self.drain(names, timeout_s=timeout_s)]

    def drain(self, names: Iterable[str] | None = None, *, timeout_s: float | None = None) -> list[PoolStop]:
        """Stop each running pool and say which of its running messages finished and which were put back.

        Each master gets one SIGTERM, which it passes on to each worker process once; the
        workers let their running steps finish for ``stop_grace_s``, put back the rest
        (``ShutdownRequeue``), and exit. A group still up at ``timeout_s`` is killed.

        Raises:
            PoolError: a name is not a pool.
        """
        chosen = self.select(names)
        deadline = self.default_stop_timeout_s if timeout_s is None else timeout_s
        held = {spec.name: self._held(spec.queue) for spec in chosen}
        for spec in chosen:
            process = self.processes[spec.name]
            if process.pid() is not None:
                self.logger.info("Stopping pool %r (pid %s).", spec.name, process.pid())
            process.stop(timeout_s=deadline, group=True, term_leader_only=True)
        statuses = self.status(spec.name for spec in chosen)
        stops = []
        for spec, status in zip(chosen, statuses, strict=True):
            pending = self._pending(spec.queue, held[spec.name])
            stops.append(PoolStop(
                pool=status, drained=tuple(item for key, item in held[spec.name].items() if key not in pending),
                requeued=tuple(item for key, item in held[spec.name].items() if key in pending)))
        return stops

    def _held(self, queue: str) -> dict[str, str]:
        """The messages workers hold on ``queue`` now (fetched, not acknowledged), by Redis id, with their items."""
        # dramatiq's Redis layout (dramatiq/brokers/redis/dispatch.lua): ``__acks__.<worker>.<queue>``
        # holds what each worker fetched; ``<queue>.msgs`` the messages not yet acknowledged.
        namespace = self.settings.namespace
        try:
            client = self._client()
            held: dict[str, str] = {}
            for key in client.scan_iter(match=f"{namespace}:__acks__.*.{queue}", count=500):
                for member in client.smembers(key):  # type: ignore[union-attr]
                    data = client.hget(f"{namespace}:{queue}.msgs", member)
                    if data is not None:
                        message = decode_message(data)  # type: ignore[arg-type]
                        item = message.item_id if message else None
                        held[member.decode() if isinstance(member, bytes) else str(member)] = item or "?"
            return held
        except redis.RedisError as ex:
            self.logger.warning("Could not read the running messages of %r: %s", queue, ex)
            return {}

    def _pending(self, queue: str, held: dict[str, str]) -> set[str]:
        """Which of ``held`` are still waiting to be processed (put back) rather than acknowledged (finished)."""
        if not held:
            return set()
        try:
            present = self._client().hmget(f"{self.settings.namespace}:{queue}.msgs", list(held))
        except redis.RedisError as ex:
            self.logger.warning("Could not tell what %r finished: %s", queue, ex)
            return set()
        return {key for key, data in zip(held, present, strict=True) if data is not None}

    def status(self, names: Iterable[str] | None = None) -> list[PoolStatus]:
        """Report each pool: size, master pid, whether it is alive, and its queue depth."""
        chosen = self.select(names)
        depths = self.queue_depths([spec.queue for spec in chosen])
        statuses = []
        for spec in chosen:
            process = self.processes[spec.name]
            pid = process.pid()
            marker = self.crash_loop_file(spec)
            statuses.append(PoolStatus(
                name=spec.name, queue=spec.queue, processes=spec.processes, threads=spec.threads,
                pid=pid if pid is not None else process.recorded_pid(), alive=pid is not None,
                depth=depths.get(spec.queue), crash_loop=marker.read_text().strip() if marker.is_file() else None,
                wanted=process.wanted,
            ))
        return statuses

    def queue_depths(self, queues: Sequence[str]) -> dict[str, QueueStats]:
        """Read the depth of each queue; empty when Redis cannot be reached."""
        try:
            return read_queue_stats(self._client(), self.settings.namespace, queues)
        except (redis.RedisError, ConfigError) as ex:
            self.logger.warning("Could not read queue depths: %s", ex)
            return {}

    def close(self) -> None:
        """Close the Redis client this manager opened, if any."""
        if self._redis is not None:
            self._redis.close()
            self._redis = None

    def _client(self) -> redis.Redis:
        if self._redis is None:
            self._redis = redis.Redis.from_url(self.settings.broker_url, socket_connect_timeout=2, socket_timeout=5)
        return self._redis
