"""The processes of one machine: the private Redis (when no ``REDIS_URL``), the pools, the API and the sweep.

``up`` is safe to run again at any time: it starts what is missing (a dead private Redis is
started again at the same socket on its append-only file, so the API and the pools, which
never changed address, reconnect) and reports the stack as it then stands, never "running"
while Redis does not answer.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

from autolog.local_redis import is_alive, private_redis
from autolog.settings import Settings
from ops.api_server import ApiServer, ApiStatus
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

    @property
    def running(self) -> bool:
        """True when Redis answers and every pool, the API and the sweep run."""
        return self.redis_alive and all(pool.alive for pool in self.pools) and self.api.running and self.sweep.running


@dataclass(frozen=True)
class Teardown:
    """What ``Stack.down`` stopped."""

    pools: tuple[PoolStop, ...]
    stopped_private_redis: bool


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
        """Ensure Redis, then start what is not running: the pools (which migrate first), the API, the sweep.

        Raises:
            RedisServerError: the private redis-server did not start.
            ApiServerError: gunicorn did not start.
        """
        ensure_redis(self.settings)
        pools = self.pools.start()
        self.api.start()
        self.sweep.start()
        return StackStatus(redis_url=self.settings.broker_url, redis_alive=is_alive(self.settings.broker_url),
                           pools=tuple(pools), api=self.api.status(), sweep=self.sweep.status())

    def down(self, *, timeout_s: float | None = None) -> Teardown:
        """Stop the sweep, the API and every worker pool, then the private Redis if it is ours."""
        self.sweep.stop()
        self.api.stop()
        stops = self.pools.drain(timeout_s=timeout_s)
        stopped = private_redis(self.settings).stop() if self.owns_redis else False
        return Teardown(pools=tuple(stops), stopped_private_redis=stopped)


def _print_pools(statuses: list[PoolStatus], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps([pool.to_dict() for pool in statuses], indent=2))
    else:
        print(format_pools(statuses))


def workers(args: argparse.Namespace, settings: Settings) -> int:
    """Start, stop or report the worker pools; a stop says which running steps finished or were put back."""
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
    return 0


def up(args: argparse.Namespace, settings: Settings) -> int:
    """Start Redis (if private), migrate, start the pools, the API and the sweep; report what runs.

    On first run, with no API key configured, make one, keep it owner-only and print it once.
    """
    new_key = ensure_api_key(settings)
    if new_key is not None:
        settings = settings.replace(api_keys=(new_key,))
    stack = Stack(settings)
    try:
        status = stack.up()
    finally:
        stack.pools.close()
    _print_pools(list(status.pools), as_json=False)
    print(f"\nRedis: {status.redis_url} ({'answering' if status.redis_alive else 'NOT ANSWERING'})")
    print(f"API: {status.api.url} ({'running' if status.api.running else 'NOT RUNNING'})")
    print(f"sweep: {'running' if status.sweep.running else 'NOT RUNNING'} (every {status.sweep.interval_s:g} s)")
    if new_key is not None:
        print(f"API key (made because AUTOLOG_API_KEYS is unset; kept in {settings.api_key_file}, "
              f"readable only by you; shown this once): {new_key}")
    if status.running:
        print("The stack is running; stop it with `autolog down`.")
        return 0
    print("The stack is NOT fully running; see the lines above and the logs under var/log.")
    return 1


def down(args: argparse.Namespace, settings: Settings) -> int:
    """Stop the sweep, the API and the pools, then the private Redis."""
    stack = Stack(settings)
    teardown = stack.down(timeout_s=args.timeout)
    stack.pools.close()
    for stop in teardown.pools:
        print(f"{stop.pool.name}: {'still running' if stop.pool.alive else 'stopped'}{_drain_note(stop)}")
    if teardown.stopped_private_redis:
        print("private Redis: stopped")
    return 0 if not any(stop.pool.alive for stop in teardown.pools) else 1


def _drain_note(stop: PoolStop) -> str:
    """Say which running steps finished and which were put back, if any ran."""
    notes = [f"{label} {len(items)} ({', '.join(items)})"
             for label, items in (("drained", stop.drained), ("requeued", stop.requeued)) if items]
    return f"; {'; '.join(notes)}" if notes else ""
