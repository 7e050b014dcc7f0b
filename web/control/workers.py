"""Workers as the API shows them: the pools of this machine and every worker's heartbeat."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import redis

from ops.pools import PoolStatus


@dataclass(frozen=True)
class Heartbeat:
    """One dramatiq consumer's last sign of life and the messages it holds."""

    worker_id: str
    last_seen: datetime
    in_flight: int
    alive: bool

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"worker_id": self.worker_id, "last_seen": self.last_seen.isoformat(), "in_flight": self.in_flight,
                "alive": self.alive}


def read_heartbeats(client: redis.Redis, namespace: str, *, timeout_ms: int) -> list[Heartbeat]:
    """Read the broker's heartbeat set and each worker's unacknowledged messages.

    Key names follow ``dramatiq/brokers/redis/dispatch.lua``: ``__heartbeats__`` scores
    worker ids by their last fetch, and ``__acks__.<worker>.<queue>`` holds what each has fetched.
    """
    now_ms = time.time() * 1000
    beats = []
    entries = cast(list[tuple[bytes, float]], client.zrange(f"{namespace}:__heartbeats__", 0, -1, withscores=True))
    for worker_id, score in entries:
        name = worker_id.decode()
        in_flight = sum(int(client.scard(key)) for key in client.scan_iter(  # type: ignore[arg-type]
            match=f"{namespace}:__acks__.{name}.*", count=500))
        beats.append(Heartbeat(worker_id=name, last_seen=datetime.fromtimestamp(score / 1000, UTC),
                               in_flight=in_flight, alive=now_ms - score < timeout_ms))
    return beats


def pools_document(pools: list[PoolStatus]) -> dict[str, Any]:
    """Return seed 000's ``/workers/status`` document: the pools by step, and the running worker threads."""
    running = [pool for pool in pools if pool.alive]
    return {
        "workers": {
            pool.name: {"queue": pool.queue, "running": pool.alive, "pid": pool.pid, "processes": pool.processes,
                        "threads": pool.threads, "workers": pool.processes * pool.threads if pool.alive else 0}
            for pool in pools
        },
        "total_workers": sum(pool.processes * pool.threads for pool in running),
        "running_pools": len(running),
    }
