"""The dead-letter queues: list with errors, retry one or all, purge.

A dead letter is a message the broker gave up on (``autolog.broker_state`` reads and drops
them). Retrying a step's dead letter goes through ``pipelines.actions.retry``, so the item's
dead-letter mark is cleared and the step is queued again from the item's status; other
messages (callbacks) are enqueued again as they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dramatiq

from autolog import broker_state
from autolog.context import Context
from autolog.errors import DeadLetterNotFound, ItemNotFound, JobNotFound, TransitionRefused
from autolog.statuses import step_named
from autolog.store import NewEvent
from autolog.store.jobs import Jobs
from pipelines import actions
from pipelines.queues import step_name_on

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


@dataclass(frozen=True)
class PurgedLetters:
    """What a purge of dead letters did: how many letters went, and the items whose timeline records it."""

    purged: int
    items: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"purged": self.purged, "items": list(self.items)}


class DeadLetters:
    """Reads and acts on the dead-letter queues of the broker."""

    def __init__(self, broker: Any, context: Context, jobs: Jobs, *, queues: list[str]) -> None:
        self._broker = broker
        self._client = broker.client
        self._namespace = broker.namespace
        self._context = context
        self._jobs = jobs
        self._queues = queues

    def _error(self, message_id: str) -> dict[str, Any] | None:
        try:
            return self._jobs.get(message_id).error
        except JobNotFound:
            return None

    def fetch(self, *, queue: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """Return up to ``limit`` dead letters, newest first."""
        letters: list[DeadLetter] = []
        for name in [queue] if queue else self._queues:
            for entry in broker_state.dead_letters(self._client, self._namespace, name, limit=limit):
                message = broker_state.decode_message(entry.data)
                if message is None:
                    continue
                letters.append(DeadLetter(
                    message_id=message.message_id, queue=name, actor=message.actor, item_id=message.item_id,
                    dead_lettered_at=datetime.fromtimestamp(entry.dead_at_ms / 1000, UTC),
                    retries=int(message.options.get("retries", 0)), error=self._error(message.message_id)))
        letters.sort(key=lambda letter: letter.dead_lettered_at, reverse=True)
        return letters[:limit]

    def retry(self, message_id: str) -> RetryOutcome:
        """Queue a dead letter's work again and take it off the dead-letter queue.

        A step's dead letter whose item has moved on since is dropped without queuing anything;
        one whose retry is refused for a reason the item still has (its source file is missing)
        stays, with the reason.

        Raises:
            DeadLetterNotFound: no dead letter has that id.
        """
        return self._retry(message_id, drop_item_letters=True)

    def _retry(self, message_id: str, *, drop_item_letters: bool) -> RetryOutcome:
        """``retry``; with ``drop_item_letters`` False, the item's other dead letters are left to the caller."""
        entry = broker_state.find_dead_letter(self._client, self._namespace, self._queues, message_id)
        if entry is None:
            raise DeadLetterNotFound(message_id)
        message = dramatiq.Message.decode(entry.data)
        outcome, done = self._requeue(message, broker_state.decode_message(entry.data),
                                      drop_item_letters=drop_item_letters)
        if done:
            broker_state.drop_dead_letter(self._client, self._namespace, entry.queue, entry.redis_id)
        return outcome

    def _requeue(self, message: dramatiq.Message[Any], stored: broker_state.StoredMessage | None, *,
                 drop_item_letters: bool) -> tuple[RetryOutcome, bool]:
        """Queue a dead letter's work again; return what happened and whether the dead letter is done with.

        It is done with once queued again, or when its item is gone or has moved on; not when the
        retry was refused for a reason the item still has (its source file is missing).
        """
        item_id = stored.item_id if stored else None
        step_name = self._broker.get_actor(message.actor_name).options.get("step")
        if step_name is None or item_id is None:
            options = {key: value for key, value in message.options.items() if key not in _FAILURE_OPTIONS}
            self._broker.enqueue(message.copy(options=options))
            return RetryOutcome(message_id=message.message_id, item_id=item_id, requeued=True), True
        step = step_named(step_name)
        try:
            item = self._context.store.items.get(item_id)
            if item.status is not step.from_status:
                raise TransitionRefused(item_id, step.from_status.value, item.status.value)
        except (ItemNotFound, TransitionRefused) as ex:
            return RetryOutcome(message_id=message.message_id, item_id=item_id, requeued=False, reason=str(ex)), True
        try:
            actions.retry(self._context, item_id, drop_dead_letters=drop_item_letters)
        except TransitionRefused as ex:
            return RetryOutcome(message_id=message.message_id, item_id=item_id, requeued=False, reason=str(ex)), False
        return RetryOutcome(message_id=message.message_id, item_id=item_id, requeued=True), True

    def retry_all(self, *, queue: str | None = None, limit: int = 1000) -> list[RetryOutcome]:
        """Retry up to ``limit`` dead letters, oldest last.

        The dead letters of the items queued again are dropped in one pass over the dead-letter
        queues at the end, not one pass per letter (a thousand letters read a thousand times).
        """
        outcomes = [self._retry(letter.message_id, drop_item_letters=False)
                    for letter in self.fetch(queue=queue, limit=limit)]
        actions.clear_dead_letters({outcome.item_id for outcome in outcomes if outcome.requeued and outcome.item_id})
        return outcomes

    def purge(self, *, queue: str | None = None) -> PurgedLetters:
        """Delete the dead letters (of one queue, or all), each recorded on its item's timeline.

        Each queue's letters are read, a ``dead_letter_purged`` event is recorded for each
        whose item still exists (its step, message and queue), and then exactly those letters
        are dropped: one dead-lettered meanwhile stays, and a store that cannot take the events
        raises before anything is dropped. The items keep their dead-letter mark: they failed,
        and ``retry`` of the item still queues the step again.
        """
        purged, items = 0, set()
        for name in [queue] if queue else self._queues:
            held = broker_state.held_dead_letters(self._client, self._namespace, name)
            if not held:
                continue
            events = [NewEvent(item_id=message.item_id, event="dead_letter_purged", step=step_name_on(name),
                               message_id=message.message_id, detail={"queue": name})
                      for raw in held.values()
                      if (message := broker_state.decode_message(raw)) is not None and message.item_id is not None]
            items.update(self._context.store.timeline.record_where_items_exist(events))
            broker_state.drop_dead_letters(self._client, self._namespace, name, list(held))
            purged += len(held)
        return PurgedLetters(purged=purged, items=tuple(sorted(items)))
