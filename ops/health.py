"""Health: whether Redis and the database answer, every pool has its worker processes, and a sweep acts.

``unhealthy`` when Redis or the database does not answer; ``degraded`` when they do but a pool
is down (no live worker process anywhere, or its master here died and is not back yet), short
(fewer live processes than configured) or crash-looping (its supervisor gave up restarting it),
or the sweep is down (no sweep on any host holds its lease in Redis, or this machine's sweep
died); else ``healthy``. A pool stopped on purpose on this machine (``autolog workers stop``) is
expected to have no process here: ``stopped``, not ``down``.
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
from autolog.lease import lease_holder
from autolog.settings import Settings
from autolog.store import Store
from autolog.worker_presence import live_by_pool, read_heartbeats, read_workers
from ops.discovery import DiscoveryStatus
from ops.pools import PoolStatus, pool_specs
from pipelines.discovery import LEASE_KEY

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
class SweepHealth:
    """Whether a sweep acts: one holds its lease in Redis (this host's or another's), and this host's lives."""

    #: The lease's token (``host:pid:suffix``), or None when no sweep renewed it within its time-to-live.
    lease_holder: str | None
    running_here: bool
    #: This machine's sweep was started and not stopped, and its process is gone (killed, crashed).
    died_here: bool = False

    @property
    def state(self) -> str:
        """``ok``, or ``down`` when no sweep holds the lease or this machine's died."""
        return "down" if self.lease_holder is None or self.died_here else "ok"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"state": self.state, "lease_holder": self.lease_holder, "running_here": self.running_here}


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
    #: None when Redis did not answer.
    sweep: SweepHealth | None = None

    @property
    def healthy(self) -> bool:
        """True when Redis and the database both answer."""
        return self.redis_connected and self.database_connected

    @property
    def status(self) -> str:
        """``healthy``, ``degraded`` (a pool is down, short or crash-looping, or the sweep is down) or ``unhealthy``."""
        if not self.healthy:
            return "unhealthy"
        pools_degraded = any(pool.state not in ("ok", "stopped") for pool in self.pools)
        sweep_down = self.sweep is not None and self.sweep.state == "down"
        return "degraded" if pools_degraded or sweep_down else "healthy"

    def to_dict(self) -> dict[str, Any]:
        """Return seed 003's health document, plus the database, the pools, the sweep and any errors."""
        return {"status": self.status, "redis_connected": self.redis_connected,
                "database_connected": self.database_connected, "queue_available": self.redis_connected,
                "queue_length": self.queue_length, "workers_count": self.workers_count,
                "pools": {pool.name: pool.to_dict() for pool in self.pools},
                "sweep": None if self.sweep is None else self.sweep.to_dict(), "errors": list(self.errors)}


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


def sweep_health(client: redis.Redis, settings: Settings, local: DiscoveryStatus | None = None) -> SweepHealth:
    """Who holds the sweep's lease (any host's sweep renews it every period), and whether this machine's sweep died.

    Raises:
        redis.RedisError: Redis could not be reached.
    """
    holder = lease_holder(client, f"{settings.namespace}:{LEASE_KEY}")
    running = local is not None and local.running
    return SweepHealth(lease_holder=holder, running_here=running,
                       died_here=local is not None and local.died)


def check_health(client: redis.Redis, store: Store, *, settings: Settings, queues: Sequence[str],
                 local_pools: Sequence[PoolStatus] = (), local_sweep: DiscoveryStatus | None = None) -> Health:
    """Ping Redis and the database; count queued messages, live workers, each pool's processes and the sweep's lease.

    Args:
        queues: the queues whose ready, delayed and held (paused) messages make ``queue_length``.
        local_pools: this machine's pools, for their crash-loop marks.
        local_sweep: this machine's sweep process, to tell one that died from one never started here.
    """
    errors: list[str] = []
    queue_length = workers = None
    pools: tuple[PoolHealth, ...] = ()
    sweep: SweepHealth | None = None
    try:
        client.ping()
        stats = read_queue_stats(client, settings.namespace, queues)
        queue_length = sum(stat.ready + stat.delayed + stat.held for stat in stats.values())
        workers = sum(beat.alive for beat in read_heartbeats(client, settings.namespace,
                                                             timeout_ms=settings.heartbeat_timeout_ms))
        pools = pool_health(client, settings, local_pools)
        sweep = sweep_health(client, settings, local_sweep)
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
                  workers_count=workers, errors=tuple(errors), pools=pools, sweep=sweep)
