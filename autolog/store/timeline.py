"""The timeline: every event of every item, append-only."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from autolog.store.items import INSERT_EVENTS, event_row, event_values
from autolog.store.models import Item, TimelineEvent
from autolog.store.views import EventView, NewEvent, aware


class Timeline:
    """Appends and reads timeline events."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._local = threading.local()

    def record(self, event: NewEvent) -> None:
        """Append one event (inside ``batched``, on this thread: when the batch ends)."""
        buffer: list[NewEvent] | None = getattr(self._local, "buffer", None)
        if buffer is not None:
            buffer.append(event)
            return
        with self._sessions.begin() as session:
            session.add(event_row(event))

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Collect this thread's ``record`` calls and append them in one transaction at the end.

        Used where one request records an event per message of a batch (a thousand ``queued``
        events in one commit instead of a thousand). Nested batches join the outer one.
        """
        if getattr(self._local, "buffer", None) is not None:
            yield
            return
        self._local.buffer = []
        try:
            yield
        finally:
            events, self._local.buffer = self._local.buffer, None
            self.record_many(events)

    def record_many(self, events: Sequence[NewEvent]) -> None:
        """Append events in one transaction."""
        if not events:
            return
        with self._sessions.begin() as session:
            INSERT_EVENTS.run_many(session.connection(), [event_values(event) for event in events])

    def record_where_items_exist(self, events: Sequence[NewEvent]) -> list[str]:
        """Append the events whose item still exists, in one transaction; return those items' ids, sorted.

        For events about messages whose items may have been deleted since (a dead letter outlives
        its item): the timeline's rows need their item.
        """
        ids = sorted({event.item_id for event in events})
        if not ids:
            return []
        with self._sessions.begin() as session:
            existing = {item_id for start in range(0, len(ids), 500)
                        for item_id in session.scalars(select(Item.id).where(Item.id.in_(ids[start:start + 500])))}
            kept = [event_values(event) for event in events if event.item_id in existing]
            if kept:
                INSERT_EVENTS.run_many(session.connection(), kept)
        return sorted(existing)

    def for_item(self, item_id: str, *, limit: int = 1000) -> list[EventView]:
        """Return the item's events, oldest first."""
        query = select(TimelineEvent).where(TimelineEvent.item_id == item_id).order_by(
            TimelineEvent.at, TimelineEvent.id)
        with self._sessions() as session:
            return [_view(row) for row in session.scalars(query.limit(limit))]

    def for_items_since(self, item_ids: Collection[str], after: datetime, *, event: str) -> list[EventView]:
        """Return the ``event`` events of ``item_ids`` recorded at or after ``after`` (aware), oldest first."""
        if not item_ids:
            return []
        query = select(TimelineEvent).where(
            TimelineEvent.item_id.in_(sorted(item_ids)), TimelineEvent.event == event,
            TimelineEvent.at >= after).order_by(TimelineEvent.at, TimelineEvent.id)
        with self._sessions() as session:
            return [_view(row) for row in session.scalars(query)]


def _view(row: TimelineEvent) -> EventView:
    return EventView(
        id=row.id, item_id=row.item_id, at=aware(row.at), event=row.event, step=row.step,
        message_id=row.message_id, attempt=row.attempt, worker=row.worker, wait_ms=row.wait_ms,
        run_ms=row.run_ms, from_status=row.from_status, to_status=row.to_status, error_type=row.error_type,
        error_message=row.error_message, detail=row.detail,
    )
