"""Health: whether Redis and the database answer, with queue and worker counts when they do."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy.exc import SQLAlchemyError

from autolog.errors import StoreUnavailable
from autolog.store import Store
from pipelines.queues import Queues
from web.control.workers import read_heartbeats

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Health:
    """The outcome of one health check; ``healthy`` needs both Redis and the database."""

    redis_connected: bool
    database_connected: bool
    queue_length: int | None
    workers_count: int | None
    errors: tuple[str, ...]

    @property
    def healthy(self) -> bool:
        """True when Redis and the database both answer."""
        return self.redis_connected and self.database_connected

    def to_dict(self) -> dict[str, Any]:
        """Return seed 003's health document, plus the database and any errors."""
        return {"status": "healthy" if self.healthy else "unhealthy", "redis_connected": self.redis_connected,
                "database_connected": self.database_connected, "queue_available": self.redis_connected,
                "queue_length": self.queue_length, "workers_count": self.workers_count, "errors": list(self.errors)}


def check_health(client: redis.Redis, store: Store, queues: Queues, *, namespace: str, heartbeat_ms: int) -> Health:
    """Ping Redis and the database; count queued messages and live workers if Redis answers."""
    errors: list[str] = []
    queue_length = workers = None
    try:
        client.ping()
        queue_length = sum(queue.queued + queue.delayed for queue in queues.list())
        workers = sum(beat.alive for beat in read_heartbeats(client, namespace, timeout_ms=heartbeat_ms))
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
                  workers_count=workers, errors=tuple(errors))
