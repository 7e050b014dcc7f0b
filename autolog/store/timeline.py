"""The timeline: every event of every item, append-only."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from autolog.store.items import event_row
from autolog.store.models import TimelineEvent
from autolog.store.views import EventView, NewEvent, aware


class Timeline:
    """Appends and reads timeline events."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def record(self, event: NewEvent) -> None:
        """Append one event."""
        with self._sessions.begin() as session:
            session.add(event_row(event))

    def record_many(self, events: Sequence[NewEvent]) -> None:
        """Append events in one transaction."""
        if not events:
            return
        with self._sessions.begin() as session:
            session.add_all(event_row(event) for event in events)

    def for_item(self, item_id: str, *, limit: int = 1000) -> list[EventView]:
        """Return the item's events, oldest first."""
        query = select(TimelineEvent).where(TimelineEvent.item_id == item_id).order_by(
            TimelineEvent.at, TimelineEvent.id)
        with self._sessions() as session:
            return [_view(row) for row in session.scalars(query.limit(limit))]


def _view(row: TimelineEvent) -> EventView:
    return EventView(
        id=row.id, item_id=row.item_id, at=aware(row.at), event=row.event, step=row.step,
        message_id=row.message_id, attempt=row.attempt, worker=row.worker, wait_ms=row.wait_ms,
        run_ms=row.run_ms, from_status=row.from_status, to_status=row.to_status, error_type=row.error_type,
        error_message=row.error_message, detail=row.detail,
    )
