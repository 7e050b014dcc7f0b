"""Items and their status: creation, reads and compare-and-set transitions."""

from __future__ import annotations

import builtins
import functools
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import (
    Connection,
    CursorResult,
    Result,
    Row,
    Table,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from autolog.errors import InvalidItemId, ItemExists, ItemNotFound
from autolog.statuses import Status, step_named
from autolog.store.driver_sql import CompiledFor
from autolog.store.fencing import RunFence, hold_fence
from autolog.store.group_commit import GroupCommit
from autolog.store.models import (
    Analysis,
    Artifact,
    Frame,
    Item,
    Scene,
    StatusCountChange,
    TimelineEvent,
    TranscriptSegment,
    utcnow,
)
from autolog.store.outbox import PendingMessage, add_messages
from autolog.store.step_sql import StepSql
from autolog.store.views import ItemView, NewEvent, aware

#: What an item id may look like: seed 000 uses ids such as LF1409. Whole (``fullmatch``: ``$`` would let a
#: final newline through), and not dots alone: an item's artifacts live in a folder named by its id, and
#: ``.`` or ``..`` would name the artifacts root or its parent (deleting item ``.`` removed every item's files).
ITEM_ID = re.compile(r"(?!\.+\Z)[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class NewItem:
    """An item to create."""

    id: str
    source: str
    force_resume: bool = False
    prompt: str | None = None


#: ``transition`` with ``changes`` (rare: not per step message) builds on these; the plain
#: per-message statements are driver SQL (``autolog.store.step_sql``). Bound parameters are
#: ``b_``-prefixed: a column's own name is reserved in a SET clause.
_ITEMS = cast("Table", Item.__table__)
#: Timeline rows (``event_values``), items and their created events go in as driver statements
#: (``autolog.store.driver_sql``): a hundred µs of SQLAlchemy less per insert, a fifth of a
#: small intake request's CPU (issue #13).
INSERT_EVENTS = CompiledFor(insert(cast("Table", TimelineEvent.__table__)))
_INSERT_ITEMS = CompiledFor(insert(_ITEMS))
_GET = select(_ITEMS).where(_ITEMS.c.id == bindparam("b_id"))
#: ``count_by_status`` without a pattern: read several times a second by watchers (``autolog status``, the UI).
_STATUS_COUNTS = (select(StatusCountChange.status, func.sum(StatusCountChange.change))
                  .group_by(StatusCountChange.status))
_EXISTS = select(Item.id).where(Item.id == bindparam("b_id"))


@functools.cache
def _update_statement(columns: tuple[str, ...]) -> Any:
    """Return ``Items.update``'s statement for ``columns``, built once per set of columns.

    Building and compiling an update per call cost several times its run (SQLite: ~480 µs
    against ~60 µs); the callers change a handful of fixed column sets.
    """
    return (update(_ITEMS).where(_ITEMS.c.id == bindparam("b_id"))
            .values(updated_at=bindparam("b_now"), **{name: bindparam(f"c_{name}") for name in columns}))


def _transition_statement(*, fenced: bool) -> Any:
    conditions = [Item.id == bindparam("b_id"), Item.status == bindparam("b_expected"), Item.cancelled.is_(False)]
    if fenced:
        conditions.append(Item.run_token == bindparam("b_token"))
    return update(Item).where(*conditions).values(
        status=bindparam("b_target"), version=Item.version + 1, updated_at=bindparam("b_now"),
        error=None, dead_lettered=False, purged=False)


_TRANSITION = _transition_statement(fenced=False)
_FENCED_TRANSITION = _transition_statement(fenced=True)


@dataclass(frozen=True)
class ItemGuard:
    """What a step message's checks need of its item: a read of four columns, not the row."""

    status: Status
    cancelled: bool
    source: str
    source_fingerprint: dict[str, Any] | None
    #: When the item was created, as a run's start write read it (``Items.start_run``); None from ``Items.guard``.
    created_at: datetime | None = None


@dataclass(slots=True)
class _StartedRun:
    """The run a thread's last ``Items.start_run`` gave an item to, and the item's row as that write left it."""

    token: str
    #: The row as the driver returned it (``StepSql.read_item`` reads it).
    row: tuple[Any, ...]
    #: The row read into a view, once a ``get`` of the run's fenced copy asked for it.
    view: ItemView | None = None


def validate_item_id(item_id: str) -> str:
    """Return ``item_id`` if it is a valid id.

    Raises:
        InvalidItemId: it is empty, too long or has other characters.
    """
    if not ITEM_ID.fullmatch(item_id):
        raise InvalidItemId(item_id)
    return item_id


def event_values(event: NewEvent) -> dict[str, Any]:
    """Return the column values of the timeline row for ``event``."""
    fields = dict(vars(event))  # its fields, and only them (a dataclass without slots); a C copy
    fields["at"] = event.at or utcnow()
    return fields


def event_row(event: NewEvent) -> TimelineEvent:
    """Build the timeline row for ``event``."""
    return TimelineEvent(**event_values(event))


def as_utc(moment: datetime) -> datetime:
    """Return ``moment`` in UTC (a naive one is taken to be UTC already, as stored times are)."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def like_pattern(pattern: str) -> str:
    """Turn a shell-style id pattern (``LF14*``, ``C000?``) into a SQL LIKE pattern escaped with ``\\``."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _rowcount(result: Result[Any]) -> int:
    """Return how many rows an UPDATE matched."""
    return cast("CursorResult[Any]", result).rowcount


def to_view(item: Item | Row[Any] | SimpleNamespace) -> ItemView:
    """Freeze a row (an ``Item``, a Core row of the items table, or its columns as attributes) into an ``ItemView``."""
    return ItemView(
        id=item.id, source=item.source, status=Status(item.status), force_resume=item.force_resume,
        prompt=item.prompt, probe=item.probe, has_audio=item.has_audio, error=item.error,
        dead_lettered=item.dead_lettered, cancelled=item.cancelled, version=item.version,
        created_at=aware(item.created_at), updated_at=aware(item.updated_at),
        media_kind=item.media_kind, start_timecode=item.start_timecode, drop_frame=item.drop_frame,
        nominal_fps=item.nominal_fps, reel=item.reel, source_fingerprint=item.source_fingerprint,
        purged=bool(item.purged),
    )


def add_items(session: Session, items: Sequence[NewItem], *, at: datetime | None = None) -> list[ItemView]:
    """Add items at ``0 - Pending File Info`` and their created events to ``session``'s transaction.

    Other repositories call this to create items atomically with rows of their own. The
    rows go in as two multi-row inserts, so a thousand items cost about what one does.
    ``at`` is their creation time (default: now).

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
    if not items:
        return []
    taken = session.scalars(select(Item.id).where(Item.id.in_(seen))).first()
    if taken is not None:
        raise ItemExists(taken)
    now = at or utcnow()
    pending = Status.PENDING_FILE_INFO
    connection = session.connection()
    try:
        _INSERT_ITEMS.run_many(connection, [
            {"id": new.id, "source": new.source, "status": pending.value, "force_resume": new.force_resume,
             "prompt": new.prompt, "dead_lettered": False, "cancelled": False, "purged": False, "version": 0,
             "created_at": now, "updated_at": now}
            for new in items])
        INSERT_EVENTS.run_many(connection, [
            event_values(NewEvent(item_id=new.id, event="created", to_status=pending.value,
                                  detail={"source": new.source}, at=now))
            for new in items])
    except IntegrityError as ex:
        raise ItemExists(items[0].id if len(items) == 1 else "one of the batch") from ex
    return [ItemView(id=new.id, source=new.source, status=pending, force_resume=new.force_resume, prompt=new.prompt,
                     probe=None, has_audio=None, error=None, dead_lettered=False, cancelled=False, version=0,
                     created_at=now, updated_at=now) for new in items]


class Items:
    """Reads and writes of items; every status change is a compare-and-set.

    Args:
        sessions: the store's session factory.
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        #: The step run these writes belong to: writes to its item are refused with ``StaleRun``
        #: once the run is no longer current (set on the copies ``fenced`` makes).
        self.fence: RunFence | None = None
        self._sql = StepSql(sessions.kw["bind"])
        #: Where the per-message writes (``start_run``, ``transition``) share transactions with
        #: other threads' on SQLite (``autolog.store.group_commit``); shared by ``fenced`` copies.
        self.group = GroupCommit(sessions, shared=not self._sql.postgres)
        #: Per thread, the run this thread's last ``start_run`` gave an item to and the item as that
        #: write left it (``_StartedRun``): what a ``get`` of that run's fenced copy returns, without a
        #: read. Shared by ``fenced`` copies; a write through this thread forgets it.
        self._started = threading.local()

    @property
    def statements(self) -> StepSql:
        """The per-message driver statements, shared with the outbox's clear (``Outbox.sent``)."""
        return self._sql

    def close(self) -> None:
        """Give back the connections the per-message statements keep (``GroupCommit``, ``StepSql``)."""
        self.group.close()
        self._sql.close()

    def fenced(self, fence: RunFence) -> Items:
        """Return these items with writes to ``fence``'s item refused once its run is superseded.

        A copy sharing the engine, statements and group commit: made per step message.
        """
        fenced = object.__new__(Items)  # a shallow copy, without copy.copy's reduce protocol (once per message)
        fenced.__dict__.update(self.__dict__)
        fenced.fence = fence
        return fenced

    def start_run(self, item_id: str, status: Status, token: str, *, event: NewEvent,
                  earlier: Sequence[NewEvent] = ()) -> ItemGuard | None:
        """Give the item to a new run of the step that runs from ``status``, with its started event.

        ``earlier`` events go with it, only if the run holds the item (the ``deferred`` of a
        store wait that this start ends: ``middleware.status_writes.store_wait_event``).

        One transaction: the guard (the item is at ``status`` and not cancelled) is the
        update's condition. A run already holding the item is superseded: its fenced writes
        fail from now on. The outbox row of the event's message, if any, goes in the same
        transaction, moved or not (``StepSql.start_run``): a delivered message is never relayed.

        Returns:
            The item's guard (its source and source fingerprint, read by the same statement)
            when the run holds it; None when it is elsewhere, cancelled or gone. The row the
            statement returned is what ``get`` of the run's fenced copy returns in this thread.
        """
        self._started.run = None
        events = [event_values(event)] if not earlier else [*map(event_values, earlier), event_values(event)]
        if self._sql.postgres:
            held = self._sql.start_run(item_id, status.value, token, events, event.message_id)
        else:
            # On SQLite in a transaction shared with other threads' writes (group commit).
            held = self.group.run(lambda connection: self._sql.start_run(item_id, status.value, token, events,
                                                                         event.message_id, connection))
        if held is None:
            return None
        # The row as the driver returned it: ``get`` reads it into a view if the step asks (most
        # columns are not needed otherwise: reading them all cost a fifth of the start write's Python).
        self._started.run = _StartedRun(token, held)
        read = self._sql.read_column
        return ItemGuard(status=status, cancelled=False, source=read(held, "source"),
                         source_fingerprint=read(held, "source_fingerprint"),
                         created_at=aware(read(held, "created_at")))

    def create(self, items: Sequence[NewItem], *, messages: Sequence[PendingMessage] = ()) -> list[ItemView]:
        """Create items at ``0 - Pending File Info`` in one transaction, with a queued-by-user event.

        ``messages`` (typically each item's first step) go to the outbox in the same
        transaction: the items and their messages are stored together or not at all. The
        caller sends them after this returns (``middleware.send_committed``); a relay sends
        them if it cannot. The items are created no later than the earliest of them was made:
        a message's "queued" event is at its ``message_timestamp`` (ms), made before this call,
        and an item's timeline must read ``created`` before ``queued``.

        Raises:
            InvalidItemId: an id is malformed.
            ItemExists: an id is taken, or appears twice; nothing is created.
        """
        with self._sessions.begin() as session:
            views = add_items(session, items, at=_made_by(messages))
            add_messages(session, messages)
            return views

    def get(self, item_id: str) -> ItemView:
        """Return one item.

        A step run's fenced copy returns its item as the run's start write left it (``start_run``,
        in the same thread, with no write since): the step reads what its run took, with no read
        of its own (one per step message).

        Raises:
            ItemNotFound: no item has that id.
        """
        fence = self.fence
        if fence is not None and fence.item_id == item_id:
            started: _StartedRun | None = getattr(self._started, "run", None)
            if started is not None and started.token == fence.token:
                if started.view is None:
                    started.view = to_view(SimpleNamespace(**self._sql.read_item(started.row)))
                return started.view
        # PERF: a prebuilt Core select on a pooled connection, no session: the ORM's session,
        # identity map and object building cost more than the query (read several times per
        # step message: 208 µs → 91 µs on SQLite).
        with self._sessions.kw["bind"].connect() as connection:
            row = connection.execute(_GET, {"b_id": item_id}).first()
        if row is None:
            raise ItemNotFound(item_id)
        return to_view(row)

    def guard(self, item_id: str) -> ItemGuard:
        """Return the item's status, cancel mark, source and source fingerprint (one cheap read).

        Raises:
            ItemNotFound: no item has that id.
        """
        if self._sql.postgres:
            row = self._sql.guard(item_id)
        else:
            # On SQLite in the group commit's turn, with other threads' writes, on its kept connection.
            row = self.group.run(lambda connection: self._sql.guard(item_id, connection))
        if row is None:
            raise ItemNotFound(item_id)
        status, cancelled, source, fingerprint = row
        return ItemGuard(status=Status(status), cancelled=cancelled, source=source, source_fingerprint=fingerprint)

    def get_many(self, item_ids: Sequence[str]) -> dict[str, ItemView]:
        """Return the items that exist among ``item_ids``, by id, in one query per 500 ids."""
        found: dict[str, ItemView] = {}
        unique = sorted(set(item_ids))
        with self._sessions() as session:
            for start in range(0, len(unique), 500):
                chunk = unique[start:start + 500]
                found.update((row.id, to_view(row)) for row in session.scalars(select(Item).where(Item.id.in_(chunk))))
        return found

    def with_source(self, source: str) -> list[ItemView]:
        """Return the items made from ``source`` (exactly that string), by id."""
        with self._sessions() as session:
            rows = session.scalars(select(Item).where(Item.source == source).order_by(Item.id)).all()
            return [to_view(row) for row in rows]

    def list(
        self,
        *,
        status: Status | None = None,
        updated_before: datetime | None = None,
        updated_after: datetime | None = None,
        after_id: str | None = None,
        id_pattern: str | None = None,
        failed: bool = False,
        dead_lettered: bool = False,
        limit: int = 100,
    ) -> list[ItemView]:
        """List items ordered by id, filtered by status, update time and id pattern, paged by ``after_id``.

        ``id_pattern`` is a shell-style pattern: ``*`` any run of characters, ``?`` one.
        ``failed`` keeps the items whose last error will not be retried (dead-lettered, or a
        permanent error); ``dead_lettered`` keeps the dead-lettered ones.
        """
        query = select(Item).order_by(Item.id).limit(limit)
        if failed:
            query = query.where(or_(Item.dead_lettered.is_(True), Item.error["permanent"].as_boolean().is_(True)))
        if dead_lettered:
            query = query.where(Item.dead_lettered.is_(True))
        if id_pattern is not None:
            query = query.where(Item.id.like(like_pattern(id_pattern), escape="\\"))
        if status is not None:
            query = query.where(Item.status == status.value)
        # In UTC: SQLite keeps times as text without their zone, so 10:10+01:00 must become 09:10.
        if updated_before is not None:
            query = query.where(Item.updated_at < as_utc(updated_before))
        if updated_after is not None:
            query = query.where(Item.updated_at > as_utc(updated_after))
        if after_id is not None:
            query = query.where(Item.id > after_id)
        with self._sessions() as session:
            return [to_view(row) for row in session.scalars(query)]

    def count_by_status(self, *, id_pattern: str | None = None) -> dict[str, int]:
        """Count items per status (of the items whose id matches ``id_pattern``); statuses with none are left out.

        Without a pattern the counts are the sums of ``status_count_changes`` (migration 0008),
        which the sweep keeps to about one row per status (:meth:`fold_status_counts`): the
        same time at 100,000 items as at 1,000. With one, the matching items are counted.
        """
        query = _STATUS_COUNTS if id_pattern is None else (
            select(Item.status, func.count()).group_by(Item.status)
            .where(Item.id.like(like_pattern(id_pattern), escape="\\")))
        # A Core read on a pooled connection, no session (as ``get``): a third of the cost.
        with self._sessions.kw["bind"].connect() as connection:
            return {status: int(count) for status, count in connection.execute(query) if count}

    def fold_status_counts(self) -> int:
        """Fold the status count changes into one row per status; return how many rows it removed.

        One transaction: the rows deleted are exactly the rows summed (``DELETE ... RETURNING``),
        so a change committed meanwhile is either folded or left for the next fold, never lost.
        """
        with self._sessions.begin() as session:
            folded = session.execute(delete(StatusCountChange).returning(
                StatusCountChange.status, StatusCountChange.change)).all()
            sums: dict[str, int] = {}
            for status, change in folded:
                sums[status] = sums.get(status, 0) + change
            rows = [{"status": status, "change": total} for status, total in sums.items() if total]
            if rows:
                session.execute(insert(StatusCountChange), rows)
            return len(folded) - len(rows)

    def transition(
        self, item_id: str, expected: Status, target: Status, *, event: NewEvent | None = None,
        changes: dict[str, Any] | None = None, messages: Sequence[PendingMessage] = (),
        events: Sequence[NewEvent] = (),
    ) -> bool:
        """Move an item from ``expected`` to ``target`` if, and only if, it is still at ``expected``.

        Through a fenced store, only while the fence's run still holds the item. A step message
        among ``messages`` has its "queued" event in ``events``, stamped as ``event`` is, so the
        timeline reads the move before it (``middleware.committed_queued``).

        The status write, any ``changes``, the transition's timeline entry, further ``events``
        and ``messages`` (what runs next, into the outbox) commit together; a refused
        transition stores none of them. A successful transition clears the item's error, dead-letter and purge marks.

        Returns:
            True when this call moved the item; False when it was elsewhere or cancelled.

        Raises:
            ItemNotFound: no item has that id.
        """
        self._started.run = None
        token = self.fence.token if self.fence is not None and self.fence.item_id == item_id else None
        entries = [event_values(entry) for entry in (event or NewEvent(item_id=item_id, event="transition"), *events)]
        if not changes:
            return self._plain_transition(item_id, expected, target, token, entries, messages)
        parameters: dict[str, Any] = {"b_id": item_id, "b_expected": expected.value, "b_target": target.value,
                                      "b_now": utcnow()}
        if token is not None:
            parameters["b_token"] = token
        statement = (_FENCED_TRANSITION if token is not None else _TRANSITION).values(**changes)

        def write(connection: Connection) -> bool:
            moved = _rowcount(connection.execute(statement, parameters))
            if not moved:
                if connection.execute(_EXISTS, {"b_id": item_id}).first() is None:
                    raise ItemNotFound(item_id)
                return False
            INSERT_EVENTS.run_many(connection, entries)
            add_messages(connection, messages)
            return True

        return self.group.run(write)

    def _plain_transition(self, item_id: str, expected: Status, target: Status, token: str | None,
                          entries: Sequence[dict[str, Any]], messages: Sequence[PendingMessage]) -> bool:
        """Run ``transition`` without ``changes``: every step message's status write (``autolog.store.step_sql``)."""
        if self._sql.postgres:
            return self._sql.transition(item_id, expected.value, target.value, token, entries, messages)
        # On SQLite in a transaction shared with other threads' writes (group commit).
        return self.group.run(lambda connection: self._sql.transition(
            item_id, expected.value, target.value, token, entries, messages, connection))

    def update(self, item_id: str, *, event: NewEvent | None = None, **changes: Any) -> None:
        """Change fields other than the status, with an optional timeline entry.

        Raises:
            ItemNotFound: no item has that id.
            StaleRun: through a fenced store, the fence's run no longer holds the item.
        """
        self._started.run = None
        statement = _update_statement(tuple(changes))
        parameters = {"b_id": item_id, "b_now": utcnow(), **{f"c_{name}": value for name, value in changes.items()}}
        entries = [event_values(event)] if event is not None else []

        def write(connection: Connection) -> None:
            hold_fence(connection, self.fence, item_id)
            if not _rowcount(connection.execute(statement, parameters)):
                raise ItemNotFound(item_id)
            if entries:
                INSERT_EVENTS.run_many(connection, entries)

        self.group.run(write, idempotent=not entries)  # An event would be recorded twice.

    def cancel(self, item_id: str, *, event: NewEvent, unless_finished: bool) -> ItemView:
        """Mark an item cancelled and record ``event``, in one transaction; return the item as it now is.

        With ``unless_finished``, a finished item (``Status.is_terminal``) is left as it is, with
        no event, and returned as it is: its status tells the caller it was not cancelled.

        Raises:
            ItemNotFound: no item has that id.
            StaleRun: through a fenced store, the fence's run no longer holds the item.
        """
        self._started.run = None
        statement = update(Item).where(Item.id == item_id)
        if unless_finished:
            statement = statement.where(Item.status.not_in([status.value for status in Status if status.is_terminal]))
        with self._sessions.begin() as session:
            hold_fence(session.connection(), self.fence, item_id)
            row = session.scalars(statement.values(cancelled=True, updated_at=utcnow()).returning(Item)).one_or_none()
            if row is not None:
                session.add(event_row(event))
            elif (row := session.get(Item, item_id)) is None:
                raise ItemNotFound(item_id)
            return to_view(row)

    def mark_purged(self, events: Sequence[NewEvent]) -> builtins.list[str]:
        """Mark each event's item purged and record the event, in one transaction; return the ids marked.

        An event naming a step marks its item only while the item is still at that step's
        status: a message dropped for an item that has moved on (a stale duplicate) would
        otherwise mark it, and discovery would then leave it alone. Events whose item no
        longer exists are dropped.
        """
        ids = sorted({event.item_id for event in events})
        if not ids:
            return []
        with self._sessions.begin() as session:
            statuses = dict(session.execute(select(Item.id, Item.status).where(Item.id.in_(ids))).all())
            kept = [event for event in events if event.item_id in statuses
                    and (event.step is None or statuses[event.item_id] == step_named(event.step).from_status.value)]
            marked = sorted({event.item_id for event in kept})
            if marked:
                session.execute(update(Item).where(Item.id.in_(marked)).values(purged=True, updated_at=utcnow()))
                session.add_all(event_row(event) for event in kept)
            return marked

    def delete(self, item_id: str) -> builtins.list[str]:
        """Delete an item with its timeline, results and artifact rows; return the artifact paths it had.

        Raises:
            ItemNotFound: no item has that id.
        """
        with self._sessions.begin() as session:
            if session.get(Item, item_id) is None:
                raise ItemNotFound(item_id)
            paths = builtins.list(session.scalars(select(Artifact.path).where(Artifact.item_id == item_id)))
            for table in (Artifact, Scene, Analysis, Frame, TranscriptSegment, TimelineEvent):
                session.execute(delete(table).where(table.item_id == item_id))
            session.execute(delete(Item).where(Item.id == item_id))
            return paths


def _made_by(messages: Sequence[PendingMessage]) -> datetime | None:
    """Return when the earliest of ``messages`` was made (its ``message_timestamp``, ms), now at the latest.

    None without one. A message's "queued" event is at that time: what stores it must be no later.
    """
    made_ms = [message.message["message_timestamp"] for message in messages
               if isinstance(message.message.get("message_timestamp"), int)]
    return min(utcnow(), datetime.fromtimestamp(min(made_ms) / 1000, UTC)) if made_ms else None
