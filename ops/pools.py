"""The worker-pool manager: one pool per step queue, plus ``control``, run by worker groups.

A pool is what operators name, start, stop and watch: one queue and its threads. A worker
group is the process that runs pools: a ``dramatiq`` master (``actors.lanes``) started in its
own session (so its process group id is its pid), with a pid file ``pools-<group>.pid`` under
``run_dir`` and a log file under ``log_dir``, whose worker processes serve every pool of the
group that is wanted, each pool's queue on its own threads (a lane). By default every pool is
in one group (``AUTOLOG_POOL_<STEP>_GROUP`` and ``AUTOLOG_POOL_CONTROL_GROUP`` move them), so
an idle machine runs two processes for all seven pools instead of fourteen.

A pool is wanted from a start until a stop (``<pool>.wanted`` under ``run_dir``). Starting or
stopping a pool of a running group restarts the group with the pools then wanted: the group
drains as a stop does (running steps finish within the grace period or are put back), and the
group's other pools go on once it is back. The HTTP API reuses this class, so it returns
frozen dataclasses and never prints.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from sqlalchemy.exc import SQLAlchemyError

from autolog.broker_state import QueueStats, decode_message, held_by_workers, read_queue_stats, stored_messages
from autolog.errors import ConfigError
from autolog.lanes import Lane, format_lanes
from autolog.settings import DEFAULT_GROUP, Settings
from autolog.statuses import STEPS
from autolog.store import Store
from ops.errors import PoolError
from ops.processes import PidFileProcess
from ops.runtime import migrate_store

#: The folder holding the top-level packages, given to ``dramatiq --path`` so workers
#: import this checkout whether or not the distribution is installed.
PROJECT_DIR = Path(__file__).resolve().parent.parent

#: How a worker group is launched: ``actors.lanes`` (dramatiq's master, one lane per pool); arguments follow.
ENTRY = f"import sys; sys.path.insert(0, {str(PROJECT_DIR)!r}); from actors.lanes import main; sys.exit(main())"

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
    """What one pool runs: its queue, its threads, and the worker group whose processes run it.

    ``processes`` is its group's: each of the group's worker processes serves every pool of it.
    """

    name: str
    queue: str
    processes: int
    threads: int
    time_limit_s: int
    group: str = DEFAULT_GROUP


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
    #: The worker group whose processes run the pool (``pid`` is the group's master).
    group: str = DEFAULT_GROUP
    #: Stopped on purpose here (``stop``, ``down``) and not started since: not expected to run.
    stopped: bool = False

    @property
    def down(self) -> bool:
        """True when the pool should run here but does not: started and not stopped since, yet not alive.

        That covers a group that died and waits for its restart and one left crash-looping; a pool
        stopped on purpose (``stop``, ``down``) or never started on this machine is not down.
        """
        return self.wanted and not self.alive

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class PoolStop:
    """A pool after a stop, and the items whose running step finished (drained) or was put back (requeued).

    Each item is named once. ``requeued`` comes from the ``requeued`` events the stopping
    worker recorded (``ShutdownRequeue``), so it names only what was put back; ``drained``
    names the items whose running message was acknowledged during the stop and that still exist.
    """

    pool: PoolStatus
    drained: tuple[str, ...]
    requeued: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {**self.pool.to_dict(), "drained": list(self.drained), "requeued": list(self.requeued)}


@dataclass(frozen=True)
class _GroupState:
    """A worker group as ``status`` reads it, once for all its pools."""

    #: The master's pid while it runs, else None.
    pid: int | None
    #: The pid its pid file holds, alive or not.
    recorded_pid: int | None
    #: The pools its running processes serve.
    serving: tuple[str, ...]
    #: The supervisor's crash-loop reason, if it gave up on the group.
    crash_loop: str | None


def pool_specs(settings: Settings) -> tuple[PoolSpec, ...]:
    """Return the pools settings ask for: one per step, in pipeline order, then ``control``.

    A group runs as many worker processes as the largest of its pools asks for.
    """
    specs = [
        PoolSpec(name=step.name, queue=step.queue_name, processes=settings.pools[step.name].processes,
                 threads=settings.pools[step.name].threads, time_limit_s=settings.pools[step.name].time_limit_s,
                 group=settings.pools[step.name].group)
        for step in STEPS
    ]
    specs.append(PoolSpec(name=CONTROL_QUEUE, queue=CONTROL_QUEUE, processes=CONTROL_PROCESSES,
                          threads=CONTROL_THREADS, time_limit_s=CONTROL_TIME_LIMIT_S, group=settings.control_group))
    sizes: dict[str, int] = {}
    for spec in specs:
        sizes[spec.group] = max(sizes.get(spec.group, 1), spec.processes)
    return tuple(replace(spec, processes=sizes[spec.group]) for spec in specs)


class PoolManager:
    """Starts, stops and reports the worker pools of one machine.

    Args:
        program: what runs a worker group, before its arguments; default ``python -c ENTRY``.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        run_dir: Path | None = None,
        log_dir: Path | None = None,
        program: Sequence[str] | None = None,
        redis_client: redis.Redis | None = None,
    ) -> None:
        self.logger = logging.getLogger(__name__)
        self.settings = settings
        self.run_dir = (run_dir or Path(settings.var_dir) / "run").resolve()
        self.log_dir = (log_dir or Path(settings.var_dir) / "log").resolve()
        self.program = list(program or [sys.executable, "-c", ENTRY])
        self.specs = pool_specs(settings)
        self._redis = redis_client
        self._opened_store: Store | None = None
        #: The worker groups, in the order of their first pool, each with its pools.
        self.groups: dict[str, tuple[PoolSpec, ...]] = {}
        for spec in self.specs:
            self.groups[spec.group] = (*self.groups.get(spec.group, ()), spec)
        #: One pid-file process per group: a dramatiq master and its worker processes.
        self.group_processes = {group: self._process(group) for group in self.groups}

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

    def wanted_file(self, spec: PoolSpec) -> Path:
        """Present from a start of the pool until a stop: its group serves it whenever it runs."""
        return self.run_dir / f"{spec.name}.wanted"

    def stopped_file(self, spec: PoolSpec) -> Path:
        """Present from a stop of the pool until a start: it is not expected to run here (health, gauges)."""
        return self.run_dir / f"{spec.name}.stopped"

    def expected_processes(self) -> Mapping[str, int]:
        """Each pool's configured worker processes, 0 for one stopped on purpose (read at each lookup)."""
        return ExpectedProcesses(self)

    def wanted_pools(self, group: str) -> tuple[PoolSpec, ...]:
        """The pools of ``group`` that are wanted, in pipeline order."""
        return tuple(spec for spec in self.groups[group] if self.wanted_file(spec).is_file())

    def serving_file(self, group: str) -> Path:
        """Names the pools the group's running processes serve (written when it is started)."""
        return self.run_dir / f"pools-{group}.serving"

    def serving(self, group: str) -> tuple[str, ...]:
        """The pools the group serves while it runs; empty when it does not."""
        return self._serving(group, self.group_processes[group].pid())

    def _serving(self, group: str, pid: int | None) -> tuple[str, ...]:
        """The pools the group serves, its master's pid (None: not running) being known."""
        if pid is None:
            return ()
        try:
            return tuple(self.serving_file(group).read_text().split())
        except FileNotFoundError:
            return ()

    def lanes(self, group: str) -> tuple[Lane, ...]:
        """The lanes the group is started with: its wanted pools, each queue with its threads."""
        return tuple(Lane(pool=spec.name, queue=spec.queue, threads=spec.threads) for spec in self.wanted_pools(group))

    def command(self, group: str, pid_file: Path | None = None) -> list[str]:
        """Return the command line that runs ``group`` serving its wanted pools."""
        specs = self.wanted_pools(group)
        return [
            *self.program, "--lanes", format_lanes(self.lanes(group)), "actors", "pipelines",
            "--path", str(PROJECT_DIR), "--queues", *(spec.queue for spec in specs),
            "--processes", str(max((spec.processes for spec in specs), default=1)),
            "--threads", str(sum(spec.threads for spec in specs)),
            "--pid-file", str(pid_file or self.run_dir / f"pools-{group}.pid"),
            "--log-file", str(self.log_dir / f"pools-{group}.log"),
            # When stopped, running steps get the grace period; then ShutdownRequeue puts them back.
            "--worker-shutdown-timeout", str(int(self.settings.stop_grace_s * 1000)),
        ]

    def start(self, names: Iterable[str] | None = None) -> list[PoolStatus]:
        """Start the pools that are not running; a pool whose group serves it is left alone.

        The database is migrated first so workers open it without migrating. A group that runs
        without one of the pools is restarted to serve it (see the module's docstring).

        Raises:
            PoolError: a name is not a pool.
        """
        chosen = self.select(names)
        migrate_store(self.settings)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for group in dict.fromkeys(spec.group for spec in chosen):
            self._start_group(group, [spec for spec in chosen if spec.group == group])
        return self.status(spec.name for spec in chosen)

    def _start_group(self, group: str, specs: Sequence[PoolSpec]) -> None:
        """Mark ``specs`` wanted and make their group run with every wanted pool.

        A start by hand clears a crash-loop mark the supervisor left, so supervision resumes.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.metrics_dir.mkdir(parents=True, exist_ok=True)
        self.group_crash_loop_file(group).unlink(missing_ok=True)
        for spec in specs:
            self.wanted_file(spec).touch()
            self.stopped_file(spec).unlink(missing_ok=True)
        process = self.group_processes[group]
        wanted = tuple(spec.name for spec in self.wanted_pools(group))
        if process.pid() is not None and self.serving(group) != wanted:
            self.logger.info("Restarting worker group %r to serve %s.", group, ", ".join(wanted))
            self._stop_group(group, timeout_s=self.default_stop_timeout_s)
        elif not process.start(prepare=functools.partial(self._prepare, group))[1]:
            self.logger.info("Worker group %r already serves %s.", group, ", ".join(spec.name for spec in specs))

    def stop_other_groups(self, *, timeout_s: float | None = None) -> list[str]:
        """Stop the worker groups running here that these settings do not name; return their names.

        A group started under other settings (``AUTOLOG_POOL_<STEP>_GROUP`` set for ``up``, not
        for ``down``) still has its pid file ``pools-<group>.pid`` in this run folder: ``down``
        stops it as ``drain`` stops a group, instead of leaving it serving its queues.
        """
        deadline = self.default_stop_timeout_s if timeout_s is None else timeout_s
        stopped = []
        for pid_file in sorted(self.run_dir.glob("pools-*.pid")):
            group = pid_file.name.removeprefix("pools-").removesuffix(".pid")
            if group in self.group_processes:
                continue
            process = PidFileProcess(f"pools-{group}", lambda _pid_file: [], run_dir=self.run_dir,
                                     log_file=self.log_dir / f"pools-{group}.out", wanted=lambda: False)
            if process.pid() is None:
                continue
            self.logger.info("Stopping worker group %r, which these settings do not name.", group)
            process.stop(timeout_s=deadline, group=True, term_leader_only=True)
            stopped.append(group)
        return stopped

    def _stop_group(self, group: str, *, timeout_s: float) -> None:
        """Stop the group as ``drain`` says, then start it again serving the pools of it still wanted, if any."""
        process = self.group_processes[group]
        process.stop(timeout_s=timeout_s, group=True, term_leader_only=True)
        if remaining := self.wanted_pools(group):
            self.logger.info("Starting worker group %r again for %s.", group, ", ".join(s.name for s in remaining))
            process.start(prepare=functools.partial(self._prepare, group))

    def _prepare(self, group: str) -> None:
        """Record which pools the group is about to serve (called under its start lock)."""
        self.serving_file(group).write_text("\n".join(spec.name for spec in self.wanted_pools(group)) + "\n")

    def revive_group(self, group: str) -> int | None:
        """Start a group again if its master died while a pool of it is wanted; return the new pid, else None."""
        return self.group_processes[group].revive(prepare=functools.partial(self._prepare, group))

    def group_crash_loop_file(self, group: str) -> Path:
        """Where the supervisor marks a group it gave up restarting (it holds the reason)."""
        return self.run_dir / f"pools-{group}.crash-loop"

    @property
    def metrics_dir(self) -> Path:
        """The prometheus multiprocess folder every pool of this machine writes to; its one exporter reads it.

        Each worker process removes the files of processes that are gone when it boots.
        """
        return (self.settings.metrics_dir or Path(self.settings.var_dir) / "metrics" / "pools").resolve()

    def environment(self) -> dict[str, str]:
        """Return what a group's environment adds to this one: the shared metrics folder and the var folder.

        No ``AUTOLOG_METRICS_PORT``: the groups run no exporter of their own; this machine's sweep
        process serves them all (``ops.agent``).
        """
        folder = str(self.metrics_dir)
        return {"AUTOLOG_METRICS_DIR": folder, "PROMETHEUS_MULTIPROC_DIR": folder, "AUTOLOG_METRICS_PORT": "",
                "AUTOLOG_VAR_DIR": str(Path(self.settings.var_dir).resolve())}

    def _process(self, group: str) -> PidFileProcess:
        return PidFileProcess(f"pools-{group}", lambda pid_file: self.command(group, pid_file), run_dir=self.run_dir,
                              log_file=self.log_dir / f"pools-{group}.out", env=self.environment(),
                              wanted=lambda: bool(self.wanted_pools(group)))

    def stop(self, names: Iterable[str] | None = None, *, timeout_s: float | None = None) -> list[PoolStatus]:
        """Stop each running pool (see ``drain``) and report it.

        Raises:
            PoolError: a name is not a pool.
        """
        return [stopped.pool for stopped in self.drain(names, timeout_s=timeout_s)]

    def drain(self, names: Iterable[str] | None = None, *, timeout_s: float | None = None) -> list[PoolStop]:
        """Stop each running pool and say which of its running messages finished and which were put back.

        Each group master serving one of them gets one SIGTERM, which it passes on to each worker
        process once; the workers let their running steps finish for ``stop_grace_s``, put back
        the rest (``ShutdownRequeue``), and exit. A group still up at ``timeout_s`` is killed. A
        group with other pools still wanted is started again for them.

        Raises:
            PoolError: a name is not a pool.
        """
        chosen = self.select(names)
        deadline = self.default_stop_timeout_s if timeout_s is None else timeout_s
        since = datetime.now(UTC)
        # A group that does not run holds nothing: Redis is not asked (after ``down`` it is stopped too).
        running = {group for group in dict.fromkeys(spec.group for spec in chosen)
                   if self.group_processes[group].pid() is not None}
        held = {spec.name: self._held(spec.queue) if spec.group in running else {} for spec in chosen}
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for spec in chosen:
            self.wanted_file(spec).unlink(missing_ok=True)
            self.stopped_file(spec).touch()
        for group in dict.fromkeys(spec.group for spec in chosen):
            process = self.group_processes[group]
            if (pid := process.pid()) is not None:
                self.logger.info("Stopping worker group %r (pid %s).", group, pid)
            elif self.wanted_pools(group):
                continue
            self._stop_group(group, timeout_s=deadline)
        statuses = self.status((spec.name for spec in chosen), read_depths=bool(running))
        stops = []
        for spec, status in zip(chosen, statuses, strict=True):
            drained, requeued = self._outcomes(spec, held[spec.name], since)
            stops.append(PoolStop(pool=status, drained=drained, requeued=requeued))
        return stops

    def _outcomes(self, spec: PoolSpec, held: dict[str, str],
                  since: datetime) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Which items of ``held`` (the pool's running messages when the stop began) finished, which were put back.

        Empty when Redis or the database cannot be read (the stop itself has happened; only its
        summary is missing).
        """
        items = tuple(dict.fromkeys(item for item in held.values() if item != "?"))
        pending = self._pending(spec.queue, held)
        if not items or pending is None:
            return (), ()
        acknowledged = set(held) - pending
        try:
            store = self._store()
            requeued = tuple(dict.fromkeys(
                event.item_id for event in store.timeline.for_items_since(items, since, event="requeued")
                if event.step == spec.name))
            existing = set(store.items.get_many(items))
        except SQLAlchemyError as ex:
            self.logger.warning("Could not tell which running steps of %r finished or were put back: %s", spec.name, ex)
            return (), ()
        drained = tuple(dict.fromkeys(
            item for key, item in held.items()
            if key in acknowledged and item in existing and item not in requeued))
        return drained, requeued

    def _held(self, queue: str) -> dict[str, str]:
        """The messages workers hold on ``queue`` now (fetched, not acknowledged), by Redis id, with their items."""
        try:
            held: dict[str, str] = {}
            for redis_id, data in held_by_workers(self._client(), self.settings.namespace, queue).items():
                message = decode_message(data)
                held[redis_id] = (message.item_id if message else None) or "?"
            return held
        except redis.RedisError as ex:
            self.logger.warning("Could not read the running messages of %r: %s", queue, ex)
            return {}

    def _pending(self, queue: str, held: dict[str, str]) -> set[str] | None:
        """Which of ``held`` are not acknowledged (put back, or still held); None when Redis cannot be asked."""
        if not held:
            return set()
        try:
            present = stored_messages(self._client(), self.settings.namespace, queue, list(held))
        except redis.RedisError as ex:
            self.logger.warning("Could not tell what %r finished: %s", queue, ex)
            return None
        return {key for key, data in zip(held, present, strict=True) if data is not None}

    def status(self, names: Iterable[str] | None = None, *, read_depths: bool = True) -> list[PoolStatus]:
        """Report each pool: size, master pid, whether it is alive, and its queue depth.

        Each group's pid file, served pools and crash-loop mark are read once, however many of its pools are named.
        With ``read_depths`` False, Redis is not asked and every depth is None (unknown).
        """
        chosen = self.select(names)
        depths = self.queue_depths([spec.queue for spec in chosen]) if read_depths else {}
        groups = {group: self._group_state(group) for group in dict.fromkeys(spec.group for spec in chosen)}
        statuses = []
        for spec in chosen:
            state = groups[spec.group]
            alive = spec.name in state.serving
            wanted = self.wanted_file(spec).is_file()
            statuses.append(PoolStatus(
                name=spec.name, queue=spec.queue, processes=spec.processes, threads=spec.threads,
                pid=state.pid if alive else (state.recorded_pid if wanted else None), alive=alive,
                depth=depths.get(spec.queue), crash_loop=state.crash_loop, wanted=wanted, group=spec.group,
                stopped=self.stopped_file(spec).is_file(),
            ))
        return statuses

    def _group_state(self, group: str) -> _GroupState:
        process = self.group_processes[group]
        pid = process.pid()
        marker = self.group_crash_loop_file(group)
        try:
            crash_loop: str | None = marker.read_text().strip()
        except FileNotFoundError:
            crash_loop = None
        return _GroupState(pid=pid, recorded_pid=pid if pid is not None else process.recorded_pid(),
                           serving=self._serving(group, pid), crash_loop=crash_loop)

    def queue_depths(self, queues: Sequence[str]) -> dict[str, QueueStats]:
        """Read the depth of each queue; empty when Redis cannot be reached."""
        try:
            return read_queue_stats(self._client(), self.settings.namespace, queues)
        except (redis.RedisError, ConfigError) as ex:
            self.logger.warning("Could not read queue depths: %s", ex)
            return {}

    def close(self) -> None:
        """Close the Redis client and the store this manager opened, if any."""
        if self._redis is not None:
            self._redis.close()
            self._redis = None
        if self._opened_store is not None:
            self._opened_store.close()
            self._opened_store = None

    def _store(self) -> Store:
        if self._opened_store is None:
            self._opened_store = Store.open(self.settings.sqlalchemy_url, upgrade=False)
        return self._opened_store

    def _client(self) -> redis.Redis:
        if self._redis is None:
            self._redis = redis.Redis.from_url(self.settings.broker_url, socket_connect_timeout=2, socket_timeout=5)
        return self._redis


class ExpectedProcesses(Mapping[str, int]):
    """Each pool's configured worker processes, by name; 0 for a pool stopped on purpose here.

    Read from the pools' ``.stopped`` marks at each lookup, so a long-lived exporter follows
    ``autolog workers stop`` and ``start`` (a pool stopped on purpose is not degraded).
    """

    def __init__(self, manager: PoolManager) -> None:
        self._manager = manager
        self._specs = {spec.name: spec for spec in manager.specs}

    def __getitem__(self, name: str) -> int:
        spec = self._specs[name]
        return 0 if self._manager.stopped_file(spec).is_file() else spec.processes

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)
