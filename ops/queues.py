"""Queue depths, read straight from the Redis keys of dramatiq's ``RedisBroker``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import redis


@dataclass(frozen=True)
class QueueDepth:
    """Messages of one queue by state."""

    ready: int
    delayed: int
    in_flight: int
    dead: int

    def to_dict(self) -> dict[str, int]:
        """Return a JSON-ready dict."""
        return asdict(self)


def read_queue_depths(client: redis.Redis, namespace: str, queues: Sequence[str]) -> dict[str, QueueDepth]:
    """Read each queue's depth in one round trip.

    Key names follow ``dramatiq/brokers/redis/dispatch.lua``: the list ``ns:q`` holds ready
    ids, the hash ``ns:q.msgs`` every unacked message (ready or fetched by a worker), the
    hash ``ns:q.DQ.msgs`` the delayed ones and the sorted set ``ns:q.XQ`` the dead letters.

    Raises:
        redis.RedisError: Redis could not be reached.
    """
    with client.pipeline(transaction=False) as pipe:
        for queue in queues:
            key = f"{namespace}:{queue}"
            pipe.llen(key)
            pipe.hlen(f"{key}.msgs")
            pipe.hlen(f"{key}.DQ.msgs")
            pipe.zcard(f"{key}.XQ")
        counts = [int(count) for count in pipe.execute()]
    depths = {}
    for index, queue in enumerate(queues):
        ready, unacked, delayed, dead = counts[index * 4:index * 4 + 4]
        depths[queue] = QueueDepth(ready=ready, delayed=delayed, in_flight=max(0, unacked - ready), dead=dead)
    return depths
