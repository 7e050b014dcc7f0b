"""Items and their status: creation, reads and compare-and-set transitions."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Result, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from autolog.errors import InvalidItemId, ItemExists, ItemNotFound
from autolog.statuses import Status
from autolog.store.fencing import RunFence, hold_fence
from autolog.store.models import Item, TimelineEvent, utcnow
from autolog.store.outbox import PendingMessage, add_messages
from autolog.store.views import ItemView, NewEvent, aware

#: What an item id may look like: seed 000 uses ids such as LF1409.
ITEM_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class NewItem:
    """An item to create."""

    id: str
    source: str
    force_resume: bool = False
    prompt: str | None = None


def validate_item_id(item_id: str) -> str:
    """Return ``item_id`` if it is a valid id.

    Raises:
        InvalidItemId: it is empty, too long or has other characters.
    """
    if not ITEM_ID.match(item_id):
        raise InvalidItemId(item_id)
    return item_id


def event_row(event: NewEvent) -> TimelineEvent:
    """Build the timeline row for ``event``."""
    fields = {name: getattr(event, name) for name in NewEvent.__dataclass_fields__}
    fields["at"] = event.at or utcnow()
    return TimelineEvent(**fields)


def _rowcount(result: Result[Any]) -> int:
    """Return how many rows an UPDATE matched."""
    return cast("CursorResult[Any]", result).rowcount


def to_view(item: Item) -> ItemView:
    """Freeze a row into an ``ItemView``."""
    return ItemView(
        id=item.id, source=item.source, status=Status(item.status), force_resume=item.force_resume,
        prompt=item.prompt, probe=item.probe, has_audio=item.has_audio, error=item.error,
        dead_lettered=item.dead_lettered, cancelled=item.cancelled, version=item.version,
        created_at=aware(item.created_at), updated_at=aware(item.updated_at),
        media_kind=item.media_kind, start_timecode=item.start_timecode, drop_frame=item.drop_frame,
        nominal_fps=item.nominal_fps, reel=item.reel, source_fingerprint=item.source_fingerprint,
    )


def add_items(session: Session, items: Sequence[NewItem]) -> list[Item]:
    """Add items at ``0 - Pending File Info`` and their created events to ``session``'s transaction.

    Other repositories call this to create items atomically with rows of their own.

    Raises:
        InvalidItemId: an id is malformed.
        ItemExists: an id is taken, or appears twice.
    """
    seen: set[str] = set()
    for new in items:
        validate_item_id(new.id)
        if new.id in seen:
            raise ItemExists(new.id)
        seen.add(new.id)
    taken = session.scalars(select(Item.id).where(Item.id.in_(seen))).first()
    if taken is not None:
        raise ItemExists(taken)
    rows = [
        Item(id=new.id, source=new.source, status=Status.PENDING_FILE_INFO.value,
             force_resume=new.force_resume, prompt=new.prompt, dead_lettered=False,
             cancelled=False, version=0)
        for new in items
    ]
    session.add_all(rows)
    session.add_all(
        event_row(NewEvent(item_id=new.id, event="created", to_status=Status.PENDING_FILE_INFO.value,
                           detail={"source": new.source}))
        for new in items
    )
    try:
        session.flush()
    except IntegrityError as ex:
        raise ItemExists(items[0].id if len(items) == 1 else "one of the batch") from ex
    return rows


class Items:
    """Reads and writes of items; every status change is a compare-and-set.

    Args:
        sessions: the store's session factory.
        fence: the step run these writes belong to; writes to its item are refused with
            ``StaleRun`` once the run is no longer current (``Store.fenced``).
    """

    def __init__(self, sessions: sessionmaker[Session], *, fence: RunFence | None = None) -> None:
        self._sessions = sessions
        self.fence = fence

    def start_run(self, item_id: str, status: Status, token: str, *, event: NewEvent) -> bool:
        """Give the item to a new run of the step that runs from ``status``, with its started event.

        One transaction: the guard (the item is at ``status`` and not cancelled) is the
        update's condition. A run already holding the item is superseded: its fenced writes
        fail from now on.

        Returns:
            True when the run holds the item; False when it is elsewhere, cancelled or gone.
        """
        with self._sessions.begin() as session:
            moved = _rowcount(session.execute(
                update(Item).where(Item.id == item_id, Item.status == status.value, Item.cancelled.is_(False))
                .values(run_token=token)
            ))
            if moved:
                session.add(event_row(event))
            return bool(moved)

    def create(self, items: Sequence[NewItem], *, messages: Sequence[PendingMessage] = ()) -> list[ItemView]:
        """Create items at ``0 - Pending File Info`` in one transaction, with a queued-by-user event.

        ``messages`` (typically each item's first step) go to the outbox in the same
        transaction: the items and their messages are stored together or not at all. The
        caller sends them after this returns (``middleware.send_committed``); a relay sends
        them if it cannot.

        Raises:
            InvalidItemId: an id is malformed.
            ItemExists: an id is taken, or appears twice; nothing is created.
        """
        with self._sessions.begin() as session:
            views = [to_view(row) for row in add_items(session, items)]
            add_messages(session, messages)
            return views

    def get(self, item_id: str) -> ItemView:
        """Return one item.

        Raises:
            ItemNotFound: no item has that id.
        """
        with self._sessions() as session:
            row = session.get(Item, item_id)
            if row is None:
                raise ItemNotFound(item_id)
            return to_view(row)

    def list(
        self,
        *,
        status: Status | None = None,
        updated_before: datetime | None = None,
        updated_after: datetime | None = None,
        after_id: str | None = None,
        limit: int = 100,
    ) -> list[ItemView]:
        """List items ordered by id, filtered by status and update time, paged by ``after_id``."""
        query = select(Item).order_by(Item.id).limit(limit)
        if status is not None:
            query = query.where(Item.status == status.value)
        if updated_before is not None:
            query = query.where(Item.updated_at < updated_before)
        if updated_after is not None:
            query = query.where(Item.updated_at > updated_after)
        if after_id is not None:
            query = query.where(Item.id > after_id)
        with self._sessions() as session:
            return [to_view(row) for row in session.scalars(query)]

    def count_by_status(self) -> dict[str, int]:
        """Count items per status."""
        with self._sessions() as session:
            rows = session.execute(select(Item.status, func.count()).group_by(Item.status))
            return {status: count for status, count in rows}

    def transition(
        self, item_id: str, expected: Status, target: Status, *, event: NewEvent | None = None,
        changes: dict[str, Any] | None = None, messages: Sequence[PendingMessage] = (),
    ) -> bool:
        """Move an item from ``expected`` to ``target`` if, and only if, it is still at ``expected``.

        Through a fenced store, only while the fence's run still holds the item.

        The status write, any ``changes``, the transition's timeline entry and ``messages``
        (what runs next, into the outbox) commit together; a refused transition stores none
        of them. A successful transition clears the item's error and dead-letter mark.

        Returns:
            True when this call moved the item; False when it was elsewhere or cancelled.

        Raises:
            ItemNotFound: no item has that id.
        """
        values: dict[str, Any] = {
            "status": target.value, "version": Item.version + 1, "updated_at": utcnow(),
            "error": None, "dead_lettered": False, **(changes or {}),
        }
        conditions = [Item.id == item_id, Item.status == expected.value, Item.cancelled.is_(False)]
        if self.fence is not None and self.fence.item_id == item_id:
            conditions.append(Item.run_token == self.fence.token)
        with self._sessions.begin() as session:
            moved = _rowcount(session.execute(update(Item).where(*conditions).values(**values)))
            if not moved:
                if session.get(Item, item_id) is None:
                    raise ItemNotFound(item_id)
                return False
            session.add(event_row(event or NewEvent(item_id=item_id, event="transition")))
            add_messages(session, messages)
            return True

    def update(self, item_id: str, *, event: NewEvent | None = None, **changes: Any) -> None:
        """Change fields other than the status, with an optional timeline entry.

        Raises:
            ItemNotFound: no item has that id.
            StaleRun: through a fenced store, the fence's run no longer holds the item.
        """
        with self._sessions.begin() as session:
            hold_fence(session, self.fence, item_id)
            moved = _rowcount(session.execute(
                update(Item).where(Item.id == item_id).values(updated_at=utcnow(), **changes)
            ))
            if not moved:
                raise ItemNotFound(item_id)
            if event is not None:
                session.add(event_row(event))
