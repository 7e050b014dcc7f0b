"""The processes of one machine: the private Redis (when no ``REDIS_URL``), the pools, the API and the sweep.

``up`` is safe to run again at any time: it starts what is missing (a dead private Redis is
started again at the same socket on its append-only file, so the API and the pools, which
never changed address, reconnect) and reports the stack as it then stands, never "running"
while Redis does not answer.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from autolog.local_redis import is_alive, private_redis
from autolog.settings import Settings
from ops.api_server import ApiServer, ApiServerError, ApiStatus
from ops.discovery import DiscoveryProcess, DiscoveryStatus
from ops.first_run import ensure_api_key
from ops.pools import PoolManager, PoolStatus, PoolStop
from ops.render import format_pools
from ops.runtime import ensure_redis


@dataclass(frozen=True)
class StackStatus:
    """The stack as ``up`` left it."""

    redis_url: str
    redis_alive: bool
    pools: tuple[PoolStatus, ...]
    api: ApiStatus
    sweep: DiscoveryStatus
    #: The API key ``up`` made because none was configured (shown once), else None.
    new_api_key: str | None = None
    #: True when the API was running without that key and was restarted to serve it.
    api_restarted: bool = False

    @property
    def running(self) -> bool:
        """True when Redis answers and every pool, the API and the sweep run."""
        return self.redis_alive and all(pool.alive for pool in self.pools) and self.api.running and self.sweep.running


@dataclass(frozen=True)
class Teardown:
    """What ``Stack.down`` stopped."""

    pools: tuple[PoolStop, ...]
    stopped_private_redis: bool
    #: Whether the API (gunicorn) and the sweep were running when ``down`` stopped them.
    stopped_api: bool = False
    stopped_sweep: bool = False
    #: Whether the sweep had died before ``down`` began (``DiscoveryStatus.died``).
    sweep_had_died: bool = False
    #: Worker groups found running that the settings do not name (started under other settings).
    stopped_other_groups: tuple[str, ...] = ()
    #: Whether a worker group the settings name was running when ``down`` began.
    stopped_groups: bool = False

    @property
    def stopped_nothing(self) -> bool:
        """True when nothing was running: the stack was already down."""
        return not (self.stopped_groups or self.stopped_api or self.stopped_sweep or self.stopped_other_groups
                    or self.stopped_private_redis)


class Stack:
    """Brings the whole stack up and down, in dependency order."""

    def __init__(self, settings: Settings, *, pools: PoolManager | None = None) -> None:
        self.settings = settings
        self.pools = pools or PoolManager(settings)
        self.api = ApiServer(settings)
        self.sweep = DiscoveryProcess(settings)

    @property
    def owns_redis(self) -> bool:
        """True when no Redis is configured, so the private one is ours to start and stop."""
        return not self.settings.redis_url

    def up(self) -> StackStatus:
        """Make the first-run API key if none is configured, ensure Redis, then start what is not running.

        The key is made before gunicorn starts, so the API reads it from ``var/api_key`` at start.
        An API already running when the key is made (a stack started before any key existed)
        has no key, so it is restarted to serve the new one. Then the pools (which migrate
        first), the API and the sweep are started unless they run.

        gunicorn that exits or does not listen (another process holds the port) does not stop
        the sweep's start; the returned status names the problem and is not ``running``.

        Raises:
            RedisServerError: the private redis-server did not start.
        """
        new_key = ensure_api_key(self.settings)
        restarted = False
        if new_key is not None:
            self.settings = self.settings.replace(api_keys=(new_key,))
            if self.api.status().pid is not None:
                self.api.stop()
                restarted = True
        ensure_redis(self.settings)
        pools = self.pools.start()
        try:
            api = self.api.start()
        except ApiServerError as ex:
            api = replace(self.api.status(), running=False, problem=str(ex))
        self.sweep.start()
        return StackStatus(redis_url=self.settings.broker_url, redis_alive=is_alive(self.settings.broker_url),
                           pools=tuple(pools), api=api, sweep=self.sweep.status(),
                           new_api_key=new_key, api_restarted=restarted)

    def down(self, *, timeout_s: float | None = None) -> Teardown:
        """Stop the sweep, the API and every worker pool, then the private Redis if it is ours."""
        sweep, api_ran = self.sweep.status(), self.api.status().pid is not None
        groups_ran = any(process.pid() is not None for process in self.pools.group_processes.values())
        self.sweep.stop()
        self.api.stop()
        stops = self.pools.drain(timeout_s=timeout_s)
        others = self.pools.stop_other_groups(timeout_s=timeout_s)
        stopped = private_redis(self.settings).stop() if self.owns_redis else False
        return Teardown(pools=tuple(stops), stopped_private_redis=stopped, stopped_api=api_ran,
                        stopped_sweep=sweep.running, sweep_had_died=sweep.died,
                        stopped_other_groups=tuple(others), stopped_groups=groups_ran)


def _print_pools(statuses: list[PoolStatus], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps([pool.to_dict() for pool in statuses], indent=2))
    else:
        print(format_pools(statuses))


def workers(args: argparse.Namespace, settings: Settings) -> int:
    """Start, stop or report the worker pools; a stop says which running steps finished or were put back.

    Returns 1 when a start leaves a pool not alive, a stop leaves one alive, or the report finds
    a pool down (started here and not stopped since, yet not alive, or crash-looping); a pool
    stopped on purpose or never started here is not down.
    """
    manager = PoolManager(settings)
    names = args.pools or None
    stops: list[PoolStop] = []
    try:
        if args.action == "start":
            statuses = manager.start(names)
        elif args.action == "stop":
            stops = manager.drain(names, timeout_s=args.timeout)
            statuses = [stop.pool for stop in stops]
        else:
            statuses = manager.status(names)
    finally:
        manager.close()
    if args.json and stops:
        print(json.dumps([stop.to_dict() for stop in stops], indent=2))
    else:
        _print_pools(statuses, as_json=args.json)
        for stop in stops:
            if note := _drain_note(stop):
                print(f"{stop.pool.name}{note}")
    if args.action == "start":
        return 0 if all(pool.alive for pool in statuses) else 1
    if args.action == "stop":
        return 0 if not any(pool.alive for pool in statuses) else 1
    if down := [pool.name for pool in statuses if pool.down]:
        print(f"autolog: pools down: {', '.join(down)} (started and not stopped, but not running; "
              f"see {manager.log_dir})", file=sys.stderr)
        return 1
    return 0


def autolog_command() -> str:
    """How to tell the user to run autolog: ``autolog`` if that on PATH is this program, else the path run."""
    run_as = sys.argv[0]
    if Path(run_as).name != "autolog":
        return "autolog"
    on_path = shutil.which("autolog")
    return "autolog" if on_path and Path(on_path).resolve() == Path(run_as).resolve() else run_as


def report_up(status: StackStatus, settings: Settings) -> bool:
    """Print what ``up`` left running and, on first run, the API key it made (the only time it is shown).

    Shared by ``autolog up`` and ``autolog demo``. Returns ``status.running``.
    """
    _print_pools(list(status.pools), as_json=False)
    print(f"\nRedis: {status.redis_url} ({'answering' if status.redis_alive else 'NOT ANSWERING'})")
    restarted = "; restarted to serve the new API key" if status.api_restarted else ""
    api = "running" if status.api.running else f"NOT RUNNING: {status.api.problem}"
    print(f"API: {status.api.url} ({api}{restarted})")
    print(f"sweep: {'running' if status.sweep.running else 'NOT RUNNING'} (every {status.sweep.interval_s:g} s)")
    if status.new_api_key is not None:
        print(f"API key (made because AUTOLOG_API_KEYS is unset; kept in {settings.api_key_file}, "
              f"readable only by you; shown this once): {status.new_api_key}")
    if not status.running:
        print("The stack is NOT fully running; see the lines above and the logs under var/log.")
    return status.running


def up(args: argparse.Namespace, settings: Settings) -> int:
    """Start Redis (if private), migrate, start the pools, the API and the sweep; report what runs.

    On first run, with no API key configured, make one, keep it owner-only and print it once.
    """
    stack = Stack(settings)
    try:
        status = stack.up()
    finally:
        stack.pools.close()
    if report_up(status, stack.settings):
        print(f"The stack is running; stop it with `{autolog_command()} down`.")
        return 0
    return 1


def down(args: argparse.Namespace, settings: Settings) -> int:
    """Stop the sweep, the API and the pools, then the private Redis; say what was stopped, or that nothing ran."""
    stack = Stack(settings)
    teardown = stack.down(timeout_s=args.timeout)
    stack.pools.close()
    died = (f"sweep: had stopped on its own before this `down` (started by `up`, not stopped since): see "
            f"{stack.sweep.log_file}") if teardown.sweep_had_died else None
    if teardown.stopped_nothing:
        print("Nothing is running: the stack is already down.")
        if died:
            print(died)
        return 0
    if teardown.stopped_sweep:
        print("sweep: stopped")
    elif died:
        print(died)
    if teardown.stopped_api:
        print(f"API: stopped ({stack.api.url})")
    for stop in teardown.pools:
        print(f"{stop.pool.name}: {'still running' if stop.pool.alive else 'stopped'}{_drain_note(stop)}")
    for group in teardown.stopped_other_groups:
        print(f"worker group {group}: stopped (started under other pool settings)")
    if teardown.stopped_private_redis:
        print("private Redis: stopped")
    return 0 if not any(stop.pool.alive for stop in teardown.pools) else 1


def _drain_note(stop: PoolStop) -> str:
    """Say which running steps finished and which were put back, if any ran."""
    notes = [f"{label} {len(items)} ({', '.join(items)})"
             for label, items in (("drained", stop.drained), ("requeued", stop.requeued)) if items]
    return f"; {'; '.join(notes)}" if notes else ""
