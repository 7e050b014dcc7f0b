"""Queues as the API shows them: per step, queued, delayed, in progress, dead-lettered; pause, purge.

Pausing is a flag in Redis, the set ``<namespace>:__paused__``. Workers honour it through
``middleware.QueuePauses``, which holds back messages of a paused queue; the API only sets,
clears and reports it. Purging drops the messages waiting in Redis (ready
and delayed); messages a worker already holds finish, and dead letters have their own purge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from autolog.errors import QueueNotFound
from autolog.queue_stats import read_queue_stats
from autolog.statuses import STEPS
from middleware import PAUSED_KEY

#: Drops every id waiting in a list and its message; returns how many were dropped.
_PURGE_SCRIPT = """
local ids = redis.call("lrange", KEYS[1], 0, -1)
redis.call("del", KEYS[1])
for i = 1, #ids, 500 do
    redis.call("hdel", KEYS[2], unpack(ids, i, math.min(i + 499, #ids)))
end
return #ids
"""


@dataclass(frozen=True)
class QueueView:
    """One queue's counts and whether it is paused."""

    name: str
    step: str | None
    queued: int
    delayed: int
    in_progress: int
    dead_lettered: int
    paused: bool

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"name": self.name, "step": self.step, "queued": self.queued, "delayed": self.delayed,
                "in_progress": self.in_progress, "dead_lettered": self.dead_lettered, "paused": self.paused}


def queue_names(declared: Sequence[str]) -> list[str]:
    """Return the step queues in pipeline order, then any other declared queue by name."""
    steps = [step.queue_name for step in STEPS]
    return steps + sorted(set(declared) - set(steps))


def _step_of(queue: str) -> str | None:
    return next((step.name for step in STEPS if step.queue_name == queue), None)


class Queues:
    """Reads and controls the broker's queues through its Redis client."""

    def __init__(self, client: redis.Redis, *, namespace: str, declared: Sequence[str]) -> None:
        self._client = client
        self._namespace = namespace
        self.names = queue_names(declared)

    def check(self, name: str) -> str:
        """Return ``name`` if it is a queue.

        Raises:
            QueueNotFound: it is not.
        """
        if name not in self.names:
            raise QueueNotFound(name)
        return name

    def list(self) -> list[QueueView]:
        """Return every queue's counts."""
        depths = read_queue_stats(self._client, self._namespace, self.names)
        paused = {member.decode() for member in self._client.smembers(self._paused_key)}  # type: ignore[union-attr]
        return [
            QueueView(name=name, step=_step_of(name), queued=depths[name].ready, delayed=depths[name].delayed,
                      in_progress=depths[name].in_flight, dead_lettered=depths[name].dead, paused=name in paused)
            for name in self.names
        ]

    def get(self, name: str) -> QueueView:
        """Return one queue's counts.

        Raises:
            QueueNotFound: no such queue.
        """
        self.check(name)
        return next(queue for queue in self.list() if queue.name == name)

    def pause(self, name: str) -> QueueView:
        """Flag a queue paused.

        Raises:
            QueueNotFound: no such queue.
        """
        self._client.sadd(self._paused_key, self.check(name))
        return self.get(name)

    def resume(self, name: str) -> QueueView:
        """Clear a queue's pause flag.

        Raises:
            QueueNotFound: no such queue.
        """
        self._client.srem(self._paused_key, self.check(name))
        return self.get(name)

    def purge(self, name: str) -> int:
        """Drop the queue's waiting and delayed messages; return how many were dropped.

        Raises:
            QueueNotFound: no such queue.
        """
        key = f"{self._namespace}:{self.check(name)}"
        dropped = 0
        for queue_key in (key, f"{key}.DQ"):
            dropped += int(self._client.eval(_PURGE_SCRIPT, 2, queue_key, f"{queue_key}.msgs"))  # type: ignore[arg-type]
        return dropped

    @property
    def _paused_key(self) -> str:
        return f"{self._namespace}:{PAUSED_KEY}"

    def seed_status(self) -> dict[str, Any]:
        """Return seed 000's ``/queue/status`` document: queued and failed per step."""
        queues: dict[str, dict[str, int]] = {}
        for view in self.list():
            if view.step is None:
                continue
            number = next(step.number for step in STEPS if step.name == view.step)
            queues[f"step{number}_{view.step}"] = {"queued": view.queued + view.delayed, "failed": view.dead_lettered}
        return {"queues": queues, "total_queued": sum(queue["queued"] for queue in queues.values()),
                "total_failed": sum(queue["failed"] for queue in queues.values())}
