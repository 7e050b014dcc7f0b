"""The store: items, their timeline and step outputs in SQLite or PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from autolog.errors import StoreUnavailable
from autolog.store.engine import create_store_engine, migrate, session_factory
from autolog.store.fencing import RunFence
from autolog.store.items import ItemGuard, Items, NewItem, validate_item_id
from autolog.store.outages import is_store_outage, outage_text
from autolog.store.outbox import ABANDON_MARGIN_S, SEND_WITHIN_S, Outbox, PendingMessage, send_deadline
from autolog.store.results import Results
from autolog.store.search import Search, SearchField, SearchHit, SearchPage, SnippetPart
from autolog.store.timeline import Timeline
from autolog.store.views import (
    AnalysisView,
    ArtifactView,
    EventView,
    FrameView,
    ItemView,
    NewEvent,
    SceneView,
    SegmentView,
)

__all__ = [
    # The store
    "Store",
    "Items",
    "Results",
    "Timeline",
    "Outbox",
    "RunFence",
    "Search",
    # Search results
    "SearchField",
    "SearchHit",
    "SearchPage",
    "SnippetPart",
    # Inputs
    "NewItem",
    "NewEvent",
    "PendingMessage",
    "SEND_WITHIN_S",
    "ABANDON_MARGIN_S",
    "send_deadline",
    "validate_item_id",
    # Faults
    "is_store_outage",
    "outage_text",
    # Views
    "AnalysisView",
    "ArtifactView",
    "EventView",
    "FrameView",
    "ItemGuard",
    "ItemView",
    "SceneView",
    "SegmentView",
]


@dataclass(frozen=True)
class Store:
    """The database behind autolog, as repositories over one engine."""

    engine: Engine
    items: Items
    results: Results
    timeline: Timeline
    outbox: Outbox
    search: Search
    sessions: sessionmaker[Session]

    @classmethod
    def open(cls, url: str, *, upgrade: bool = True) -> Store:
        """Connect to ``url`` and, unless told not to, migrate the schema to the newest version."""
        engine = create_store_engine(url)
        if upgrade:
            migrate(engine)
        sessions = session_factory(engine)
        items = Items(sessions)
        return cls(engine=engine, items=items, results=Results(sessions, items.group),
                   timeline=Timeline(sessions), outbox=Outbox(sessions, items.group, items.statements),
                   search=Search(sessions, dialect=engine.dialect.name),
                   sessions=sessions)

    def fenced(self, fence: RunFence) -> Store:
        """Return this store with writes to ``fence``'s item refused once its run is superseded."""
        # Built field by field, not with dataclasses.replace, which looks the fields up each time (once per message).
        return Store(engine=self.engine, items=self.items.fenced(fence),
                     results=Results(self.sessions, self.items.group, fence=fence), timeline=self.timeline,
                     outbox=self.outbox, search=self.search, sessions=self.sessions)

    def ping(self) -> None:
        """Check the database answers.

        Raises:
            StoreUnavailable: it does not.
        """
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except OperationalError as ex:
            raise StoreUnavailable(str(ex.orig)) from ex

    def close(self) -> None:
        """Release the engine's connections."""
        self.items.close()
        self.engine.dispose()
