"""Health: whether Redis and the database answer, and whether every pool has its worker processes.

``unhealthy`` when Redis or the database does not answer; ``degraded`` when they do but a pool
is down (no live worker process anywhere, or its master here died and is not back yet), short
(fewer live processes than configured) or crash-looping (its supervisor gave up restarting it);
else ``healthy``. A pool stopped on purpose on this machine (``autolog workers stop``) is expected
to have no process here: ``stopped``, not ``down``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy.exc import SQLAlchemyError

from autolog.broker_state import read_queue_stats
from autolog.errors import StoreUnavailable
from autolog.settings import Settings
from autolog.store import Store
from autolog.worker_presence import live_by_pool, read_heartbeats, read_workers
from ops.pools import PoolStatus, pool_specs

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolHealth:
    """One pool's live worker processes (cluster-wide) against its configured number."""

    name: str
    expected: int
    live: int
    #: Why the supervisor gave up restarting the pool on this machine, if it did.
    crash_loop: str | None = None
    #: Its master on this machine died and the supervisor has not started it again yet.
    died_here: bool = False

    @property
    def state(self) -> str:
        """``ok``, ``short``, ``down``, ``crash_loop`` or ``stopped`` (none expected, none live)."""
        if self.crash_loop:
            return "crash_loop"
        if self.expected == 0 and self.live == 0:
            return "stopped"
        if self.live == 0 or self.died_here:
            return "down"
        return "short" if self.live < self.expected else "ok"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"expected_processes": self.expected, "live_processes": self.live, "state": self.state,
                "crash_loop": self.crash_loop}


@dataclass(frozen=True)
class Health:
    """The outcome of one health check; ``healthy`` needs both Redis and the database."""

    redis_connected: bool
    database_connected: bool
    queue_length: int | None
    workers_count: int | None
    errors: tuple[str, ...]
    #: Empty when Redis did not answer (nothing is known about the pools then).
    pools: tuple[PoolHealth, ...] = ()

    @property
    def healthy(self) -> bool:
        """True when Redis and the database both answer."""
        return self.redis_connected and self.database_connected

    @property
    def status(self) -> str:
        """``healthy``, ``degraded`` (a pool is down, short or crash-looping) or ``unhealthy``."""
        if not self.healthy:
            return "unhealthy"
        return "degraded" if any(pool.state not in ("ok", "stopped") for pool in self.pools) else "healthy"

    def to_dict(self) -> dict[str, Any]:
        """Return seed 003's health document, plus the database, the pools and any errors."""
        return {"status": self.status, "redis_connected": self.redis_connected,
                "database_connected": self.database_connected, "queue_available": self.redis_connected,
                "queue_length": self.queue_length, "workers_count": self.workers_count,
                "pools": {pool.name: pool.to_dict() for pool in self.pools}, "errors": list(self.errors)}


def pool_health(client: redis.Redis, settings: Settings, local: Sequence[PoolStatus] = ()) -> tuple[PoolHealth, ...]:
    """Each configured pool's live worker processes (from their heartbeats in Redis) and crash-loop mark.

    Raises:
        redis.RedisError: Redis could not be reached.
    """
    specs = pool_specs(settings)
    entries = read_workers(client, settings.namespace, timeout_ms=settings.heartbeat_timeout_ms,
                           now_ms=int(time.time() * 1000))
    live = live_by_pool(entries, [spec.name for spec in specs])
    crash_loops = {pool.name: pool.crash_loop for pool in local}
    died = {pool.name for pool in local if pool.wanted and not pool.alive}
    stopped = {pool.name for pool in local if pool.stopped}
    return tuple(PoolHealth(name=spec.name, expected=0 if spec.name in stopped else spec.processes,
                            live=live[spec.name].processes, crash_loop=crash_loops.get(spec.name),
                            died_here=spec.name in died) for spec in specs)


def check_health(client: redis.Redis, store: Store, *, settings: Settings, queues: Sequence[str],
                 local_pools: Sequence[PoolStatus] = ()) -> Health:
    """Ping Redis and the database; count queued messages, live workers and each pool's processes if Redis answers.

    Args:
        queues: the queues whose ready, delayed and held (paused) messages make ``queue_length``.
        local_pools: this machine's pools, for their crash-loop marks.
    """
    errors: list[str] = []
    queue_length = workers = None
    pools: tuple[PoolHealth, ...] = ()
    try:
        client.ping()
        stats = read_queue_stats(client, settings.namespace, queues)
        queue_length = sum(stat.ready + stat.delayed + stat.held for stat in stats.values())
        workers = sum(beat.alive for beat in read_heartbeats(client, settings.namespace,
                                                             timeout_ms=settings.heartbeat_timeout_ms))
        pools = pool_health(client, settings, local_pools)
        redis_ok = True
    except redis.RedisError as ex:
        logger.warning("Health: Redis is unavailable: %s", ex)
        errors.append(f"redis: {ex}")
        redis_ok = False
    try:
        store.ping()
        database_ok = True
    except (StoreUnavailable, SQLAlchemyError) as ex:
        logger.warning("Health: the database is unavailable: %s", ex)
        errors.append(f"database: {ex}")
        database_ok = False
    return Health(redis_connected=redis_ok, database_connected=database_ok, queue_length=queue_length,
                  workers_count=workers, errors=tuple(errors), pools=pools)
