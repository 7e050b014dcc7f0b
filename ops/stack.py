"""The processes of one machine: the private Redis (when no ``REDIS_URL``) and the pools."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from autolog.local_redis import private_redis
from autolog.settings import Settings
from ops.first_run import ensure_api_key
from ops.pools import PoolManager, PoolStatus
from ops.render import format_pools
from ops.runtime import connect_redis

if TYPE_CHECKING:
    from web.server import ApiServer


def api_server(settings: Settings) -> ApiServer:
    """Return the manager of this machine's API server (gunicorn)."""
    # Imported here: ``web.server`` imports ``ops.processes``, and so this package, first.
    from web.server import ApiServer

    return ApiServer(settings)


@dataclass(frozen=True)
class Teardown:
    """What ``Stack.down`` stopped."""

    pools: tuple[PoolStatus, ...]
    stopped_private_redis: bool


class Stack:
    """Brings the whole stack up and down, in dependency order."""

    def __init__(self, settings: Settings, *, pools: PoolManager | None = None) -> None:
        self.settings = settings
        self.pools = pools or PoolManager(settings)

    @property
    def owns_redis(self) -> bool:
        """True when no Redis is configured, so the private one is ours to start and stop."""
        return not self.settings.redis_url

    def up(self) -> list[PoolStatus]:
        """Ensure Redis, then start every worker pool (which migrates the database first)."""
        connect_redis(self.settings, start=True)
        statuses = self.pools.start()
        api_server(self.settings).start()
        return statuses

    def down(self, *, timeout_s: float | None = None) -> Teardown:
        """Stop every worker pool, then the private Redis if it is ours."""
        api_server(self.settings).stop()
        statuses = self.pools.stop(timeout_s=timeout_s)
        stopped = private_redis(self.settings).stop() if self.owns_redis else False
        return Teardown(pools=tuple(statuses), stopped_private_redis=stopped)


def _print_pools(statuses: list[PoolStatus], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps([pool.to_dict() for pool in statuses], indent=2))
    else:
        print(format_pools(statuses))


def workers(args: argparse.Namespace, settings: Settings) -> int:
    """Start, stop or report the worker pools."""
    manager = PoolManager(settings)
    names = args.pools or None
    try:
        if args.action == "start":
            statuses = manager.start(names)
        elif args.action == "stop":
            statuses = manager.stop(names, timeout_s=args.timeout)
        else:
            statuses = manager.status(names)
    finally:
        manager.close()
    _print_pools(statuses, as_json=args.json)
    if args.action == "start":
        return 0 if all(pool.alive for pool in statuses) else 1
    if args.action == "stop":
        return 0 if not any(pool.alive for pool in statuses) else 1
    return 0


def up(args: argparse.Namespace, settings: Settings) -> int:
    """Start Redis (if private), migrate, start the pools; on first run make an API key and print it once."""
    new_key = ensure_api_key(settings)
    if new_key is not None:
        settings = settings.replace(api_keys=(new_key,))
    stack = Stack(settings)
    try:
        statuses = stack.up()
    finally:
        stack.pools.close()
    _print_pools(statuses, as_json=False)
    print(f"\nAPI: {api_server(settings).url}")
    if new_key is not None:
        print(f"API key (made because AUTOLOG_API_KEYS is unset; kept in {settings.api_key_file}, "
              f"readable only by you; shown this once): {new_key}")
    print("The stack is running; stop it with `autolog down`.")
    return 0 if all(pool.alive for pool in statuses) else 1


def down(args: argparse.Namespace, settings: Settings) -> int:
    """Stop the pools, then the private Redis."""
    stack = Stack(settings)
    teardown = stack.down(timeout_s=args.timeout)
    stack.pools.close()
    for pool in teardown.pools:
        print(f"{pool.name}: {'still running' if pool.alive else 'stopped'}")
    if teardown.stopped_private_redis:
        print("private Redis: stopped")
    return 0 if not any(pool.alive for pool in teardown.pools) else 1
