"""Webhook deliveries: one row per accepted delivery id, stored with the items it created."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from autolog.errors import ItemExists
from autolog.store.items import NewItem, add_items
from autolog.store.models import Base, utcnow
from autolog.store.views import aware


class WebhookDelivery(Base):
    """A webhook delivery that was accepted; its id is the sender's delivery id."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    webhook: Mapped[str] = mapped_column(String(20))
    body_sha256: Mapped[str] = mapped_column(String(64))
    item_ids: Mapped[list[Any]]
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@dataclass(frozen=True)
class DeliveryView:
    """An accepted delivery; ``duplicate`` is True when it had been accepted before."""

    id: str
    webhook: str
    item_ids: tuple[str, ...]
    received_at: datetime
    duplicate: bool

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"delivery": self.id, "webhook": self.webhook, "item_ids": list(self.item_ids),
                "received_at": self.received_at.isoformat(), "duplicate": self.duplicate}


def _view(row: WebhookDelivery, *, duplicate: bool) -> DeliveryView:
    return DeliveryView(id=row.id, webhook=row.webhook, item_ids=tuple(row.item_ids),
                        received_at=aware(row.received_at), duplicate=duplicate)


class Deliveries:
    """Accepts each delivery id once, storing its items in the same transaction."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def accept(self, delivery_id: str, *, webhook: str, body_sha256: str, items: Sequence[NewItem]) -> DeliveryView:
        """Store ``items`` and the delivery together, or return the earlier acceptance of it.

        Raises:
            InvalidItemId: an id is malformed; nothing is stored.
            ItemExists: an id is taken by an item of another delivery; nothing is stored.
        """
        try:
            with self._sessions.begin() as session:
                earlier = session.get(WebhookDelivery, delivery_id)
                if earlier is not None:
                    return _view(earlier, duplicate=True)
                add_items(session, items)
                row = WebhookDelivery(id=delivery_id, webhook=webhook, body_sha256=body_sha256,
                                      item_ids=[item.id for item in items])
                session.add(row)
                session.flush()
                return _view(row, duplicate=False)
        except (IntegrityError, ItemExists):
            # A concurrent replay of the same delivery won the race: answer as for any replay.
            earlier_view = self.get(delivery_id)
            if earlier_view is None:
                raise
            return earlier_view

    def get(self, delivery_id: str) -> DeliveryView | None:
        """Return an accepted delivery, or None."""
        with self._sessions() as session:
            row = session.scalars(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)).first()
            return None if row is None else _view(row, duplicate=True)
