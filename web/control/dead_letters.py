"""The dead-letter queues: list with errors, retry one or all, purge.

A dead letter is a message the broker gave up on, kept in ``<ns>:<queue>.XQ`` (ids by time)
and ``<ns>:<queue>.XQ.msgs`` (the messages). Retrying a step's dead letter goes through
``pipelines.actions.retry``, so the item's dead-letter mark is cleared and the step is
queued again from the item's status; other messages (callbacks) are enqueued again as they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dramatiq

from autolog.context import Context
from autolog.errors import DeadLetterNotFound, ItemNotFound, JobNotFound, TransitionRefused
from autolog.statuses import step_named
from autolog.store.jobs import Jobs
from pipelines import actions
from pipelines.discovery import item_of

#: Options dramatiq adds while a message fails; dropped when a callback is enqueued again.
_FAILURE_OPTIONS = ("retries", "traceback", "requeue_timestamp", "eta", "redis_message_id")


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message and the error that put it there."""

    message_id: str
    queue: str
    actor: str
    item_id: str | None
    dead_lettered_at: datetime
    retries: int
    error: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"message_id": self.message_id, "queue": self.queue, "actor": self.actor, "item_id": self.item_id,
                "dead_lettered_at": self.dead_lettered_at.isoformat(), "retries": self.retries, "error": self.error}


@dataclass(frozen=True)
class RetryOutcome:
    """What retrying one dead letter did."""

    message_id: str
    item_id: str | None
    requeued: bool
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"message_id": self.message_id, "item_id": self.item_id, "requeued": self.requeued,
                "reason": self.reason}


class DeadLetters:
    """Reads and acts on the dead-letter queues of the broker."""

    def __init__(self, broker: Any, context: Context, jobs: Jobs, *, queues: list[str]) -> None:
        self._broker = broker
        self._client = broker.client
        self._namespace = broker.namespace
        self._context = context
        self._jobs = jobs
        self._queues = queues

    def _key(self, queue: str) -> str:
        return f"{self._namespace}:{queue}.XQ"

    def _error(self, message_id: str) -> dict[str, Any] | None:
        try:
            return self._jobs.get(message_id).error
        except JobNotFound:
            return None

    def fetch(self, *, queue: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """Return up to ``limit`` dead letters, newest first."""
        letters: list[DeadLetter] = []
        for name in [queue] if queue else self._queues:
            entries = self._client.zrevrange(self._key(name), 0, limit - 1, withscores=True)
            if not entries:
                continue
            datas = self._client.hmget(f"{self._key(name)}.msgs", [message_id for message_id, _ in entries])
            for (_, score), data in zip(entries, datas, strict=True):
                if data is None:
                    continue
                message = dramatiq.Message.decode(data)
                letters.append(DeadLetter(
                    message_id=message.message_id, queue=name, actor=message.actor_name, item_id=item_of(message),
                    dead_lettered_at=datetime.fromtimestamp(score / 1000, UTC),
                    retries=int(message.options.get("retries", 0)), error=self._error(message.message_id)))
        letters.sort(key=lambda letter: letter.dead_lettered_at, reverse=True)
        return letters[:limit]

    def _find(self, message_id: str) -> tuple[str, str, dramatiq.Message[Any]]:
        """Return the queue, the Redis id and the message of a dead letter, by either of its ids.

        The Redis broker keys dead letters by a ``redis_message_id`` of their own; the API
        names them by the dramatiq message id, which is also the job id.
        """
        for name in self._queues:
            key = f"{self._key(name)}.msgs"
            data = self._client.hget(key, message_id)
            if data is not None:
                return name, message_id, dramatiq.Message.decode(data)
            for redis_id, raw in self._client.hscan_iter(key, count=500):
                message = dramatiq.Message.decode(raw)
                if message.message_id == message_id:
                    return name, redis_id.decode(), message
        raise DeadLetterNotFound(message_id)

    def _drop(self, queue: str, message_id: str) -> None:
        with self._client.pipeline(transaction=True) as pipe:
            pipe.zrem(self._key(queue), message_id)
            pipe.hdel(f"{self._key(queue)}.msgs", message_id)
            pipe.execute()

    def retry(self, message_id: str) -> RetryOutcome:
        """Queue a dead letter's work again and take it off the dead-letter queue.

        A step's dead letter whose item has moved on since is dropped without queuing anything.

        Raises:
            DeadLetterNotFound: no dead letter has that id.
        """
        queue, redis_id, message = self._find(message_id)
        item_id = item_of(message)
        outcome = self._requeue(message, item_id)
        self._drop(queue, redis_id)
        return outcome

    def _requeue(self, message: dramatiq.Message[Any], item_id: str | None) -> RetryOutcome:
        step_name = self._broker.get_actor(message.actor_name).options.get("step")
        if step_name is None or item_id is None:
            options = {key: value for key, value in message.options.items() if key not in _FAILURE_OPTIONS}
            self._broker.enqueue(message.copy(options=options))
            return RetryOutcome(message_id=message.message_id, item_id=item_id, requeued=True)
        step = step_named(step_name)
        try:
            item = self._context.store.items.get(item_id)
            if item.status is not step.from_status:
                raise TransitionRefused(item_id, step.from_status.value, item.status.value)
            actions.retry(self._context, item_id)
        except (ItemNotFound, TransitionRefused) as ex:
            return RetryOutcome(message_id=message.message_id, item_id=item_id, requeued=False, reason=str(ex))
        return RetryOutcome(message_id=message.message_id, item_id=item_id, requeued=True)

    def retry_all(self, *, queue: str | None = None, limit: int = 1000) -> list[RetryOutcome]:
        """Retry up to ``limit`` dead letters, oldest last."""
        return [self.retry(letter.message_id) for letter in self.fetch(queue=queue, limit=limit)]

    def purge(self, *, queue: str | None = None) -> int:
        """Delete dead letters (of one queue, or all); return how many."""
        dropped = 0
        for name in [queue] if queue else self._queues:
            dropped += int(self._client.zcard(self._key(name)))
            self._client.delete(self._key(name), f"{self._key(name)}.msgs")
        return dropped
