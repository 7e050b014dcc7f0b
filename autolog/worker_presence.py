"""Live workers per pool, announced in Redis by a heartbeat thread in each worker process.

dramatiq's own heartbeats (``__heartbeats__``) name a broker, not the pool it serves, and the
API's enqueuing brokers beat there too. So each worker process refreshes its own entry, on its
own thread, in a sorted set scored by the last beat; an entry fresher than the heartbeat
timeout is a live worker. Entries of dead processes stay visible
(as not live) for ``RETENTION_MS``, so a pool whose workers all died reports zero, not nothing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from autolog.broker_state import worker_heartbeats

#: How long the entry of a process that stopped beating is kept, in ms.
RETENTION_MS = 24 * 3_600_000

#: Returns each member's last beat and info, after dropping entries past retention.
_READ_SCRIPT = """
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
for _, member in ipairs(stale) do redis.call('HDEL', KEYS[2], member) end
if #stale > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1]) end
local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local out = {}
for i = 1, #members, 2 do
  out[#out + 1] = members[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[2], members[i]) or ''
end
return out
"""


@dataclass(frozen=True)
class WorkerInfo:
    """What one worker process serves."""

    pool: str
    queues: tuple[str, ...]
    threads: int
    host: str
    pid: int
    #: Rate limits of the actors it runs, as ``RateLimit`` field dicts.
    rate_limits: tuple[Mapping[str, Any], ...] = field(default=())

    def to_json(self) -> str:
        """Encode for Redis."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> WorkerInfo:
        """Decode what ``to_json`` wrote."""
        data = json.loads(text)
        return cls(pool=data["pool"], queues=tuple(data["queues"]), threads=int(data["threads"]), host=data["host"],
                   pid=int(data["pid"]), rate_limits=tuple(data.get("rate_limits", ())))


@dataclass(frozen=True)
class WorkerEntry:
    """A registered worker process, and whether it beat recently enough to count as live."""

    info: WorkerInfo
    last_beat_ms: int
    live: bool


def presence_keys(namespace: str) -> tuple[str, str]:
    """Return the sorted set of last beats and the hash of infos."""
    base = f"{namespace}:__autolog_workers__"
    return base, f"{base}.info"


class WorkerPresence:
    """Announces one worker process in Redis until stopped.

    Args:
        client: a Redis client that may be shared with other threads.
        namespace: the key prefix.
        member: this process's unique name, such as ``host:pid``.
        info: what the process serves.
        interval_s: seconds between beats; a third of the heartbeat timeout is a good choice.
    """

    def __init__(self, client: redis.Redis, *, namespace: str, member: str, info: WorkerInfo,
                 interval_s: float, clock: Callable[[], float] = time.time) -> None:
        self.logger = logging.getLogger(__name__)
        self._client = client
        self._keys = presence_keys(namespace)
        self.member = member
        self.info = info
        self._interval_s = interval_s
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        """Record that this process is alive now.

        Raises:
            redis.RedisError: Redis could not be reached.
        """
        beats, infos = self._keys
        with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(infos, self.member, self.info.to_json())
            pipe.zadd(beats, {self.member: int(self._clock() * 1000)})
            pipe.execute()

    def start(self) -> None:
        """Beat now, then keep beating on a daemon thread."""
        try:
            self.beat()
        except redis.RedisError:
            self.logger.warning("Could not announce worker %r; retrying in the background.", self.member)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="autolog-presence", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.beat()
            except redis.RedisError as ex:
                self.logger.warning("Worker heartbeat failed: %s", ex)

    def stop(self) -> None:
        """Stop beating and withdraw this process's entry."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._interval_s + 5)
            self._thread = None
        beats, infos = self._keys
        try:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.zrem(beats, self.member)
                pipe.hdel(infos, self.member)
                pipe.execute()
        except redis.RedisError as ex:
            self.logger.warning("Could not withdraw worker %r: %s", self.member, ex)


def read_workers(client: redis.Redis, namespace: str, *, timeout_ms: int, now_ms: int) -> list[WorkerEntry]:
    """Return every registered worker process, live or not, dropping those past retention.

    Raises:
        redis.RedisError: Redis could not be reached.
    """
    raw = client.eval(_READ_SCRIPT, 2, *presence_keys(namespace), now_ms - RETENTION_MS)
    entries = []
    for index in range(0, len(raw), 2):
        score, text = int(float(raw[index])), raw[index + 1]
        if not text:
            continue
        try:
            info = WorkerInfo.from_json(text)
        except (ValueError, KeyError, TypeError):
            continue
        entries.append(WorkerEntry(info=info, last_beat_ms=score, live=score >= now_ms - timeout_ms))
    return entries


@dataclass(frozen=True)
class PoolWorkers:
    """Live worker processes and threads of one pool."""

    processes: int
    threads: int


def live_by_pool(entries: Sequence[WorkerEntry], pools: Sequence[str] = ()) -> dict[str, PoolWorkers]:
    """Count live processes and threads per pool; known pools with none count zero."""
    counts: dict[str, PoolWorkers] = {pool: PoolWorkers(0, 0) for pool in pools}
    for entry in entries:
        current = counts.get(entry.info.pool, PoolWorkers(0, 0))
        if entry.live:
            current = PoolWorkers(current.processes + 1, current.threads + entry.info.threads)
        counts[entry.info.pool] = current
    return counts


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

    The keys are read by ``autolog.broker_state.worker_heartbeats``.

    Raises:
        redis.RedisError: Redis could not be reached.
    """
    now_ms = time.time() * 1000
    beats = []
    for name, score, in_flight in worker_heartbeats(client, namespace):
        beats.append(Heartbeat(worker_id=name, last_seen=datetime.fromtimestamp(score / 1000, UTC),
                               in_flight=in_flight, alive=now_ms - score < timeout_ms))
    return beats
