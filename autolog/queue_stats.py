"""Queue depths and ages, read straight from the Redis keys of dramatiq's ``RedisBroker``."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import redis

#: Per queue: ready, unacked, delayed, dead-lettered, and the message at the head of the queue.
#: Key names follow ``dramatiq/brokers/redis/dispatch.lua`` .
_QUEUES_SCRIPT = """
local out = {}
for i = 2, #ARGV do
  local key = ARGV[1] .. ':' .. ARGV[i]
  local head = redis.call('LINDEX', key, 0)
  local data = false
  if head then data = redis.call('HGET', key .. '.msgs', head) end
  out[#out + 1] = redis.call('LLEN', key)
  out[#out + 1] = redis.call('HLEN', key .. '.msgs')
  out[#out + 1] = redis.call('HLEN', key .. '.DQ.msgs')
  out[#out + 1] = redis.call('ZCARD', key .. '.XQ')
  out[#out + 1] = data or ''
end
return out
"""


@dataclass(frozen=True)
class QueueStats:
    """One queue's messages by state, and how long its next message has waited."""

    ready: int
    delayed: int
    in_flight: int
    dead: int
    #: Seconds since the message at the head of the queue became due; 0 when it is empty.
    oldest_age_s: float

    def to_dict(self) -> dict[str, float]:
        """Return a JSON-ready dict."""
        return asdict(self)


def _due_ms(payload: str | bytes) -> int | None:
    try:
        message = json.loads(payload)
        options = message.get("options") or {}
        return int(options.get("eta") or message["message_timestamp"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def read_queue_stats(
    client: redis.Redis, namespace: str, queues: Sequence[str], *, now_ms: int | None = None,
) -> dict[str, QueueStats]:
    """Read each queue's depth and the age of its oldest ready message, in one atomic call.

    Key names follow ``dramatiq/brokers/redis/dispatch.lua``: the list ``ns:q`` holds ready
    ids, the hash ``ns:q.msgs`` every unacked message (ready or fetched by a worker), the
    hash ``ns:q.DQ.msgs`` the delayed ones and the sorted set ``ns:q.XQ`` the dead letters.

    Raises:
        redis.RedisError: Redis could not be reached.
    """
    if not queues:
        return {}
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    raw = client.eval(_QUEUES_SCRIPT, 0, namespace, *queues)
    stats = {}
    for index, queue in enumerate(queues):
        ready, unacked, delayed, dead, head = raw[index * 5:index * 5 + 5]
        due = _due_ms(head) if head else None
        stats[queue] = QueueStats(
            ready=int(ready), delayed=int(delayed), in_flight=max(0, int(unacked) - int(ready)), dead=int(dead),
            oldest_age_s=max(0.0, (now_ms - due) / 1000) if due is not None else 0.0,
        )
    return stats
