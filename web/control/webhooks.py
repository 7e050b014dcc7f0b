"""Ingress webhooks: MinIO bucket notifications and the signed ingest webhook.

Both verify before anything else. MinIO sends its target's ``auth_token`` as a bearer
token; the ingest webhook signs its body with GitHub's scheme (``X-Hub-Signature-256:
sha256=<hex HMAC-SHA256 of the raw body>``) and names each delivery in ``X-GitHub-Delivery``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import redis

from autolog.context import Context
from autolog.errors import AuthenticationFailed
from autolog.item_ids import choose_id, stored_items
from autolog.sources import validate_source
from autolog.store import NewEvent, NewItem
from autolog.store.deliveries import Deliveries, DeliveryView
from pipelines import actions
from pipelines.footage import enqueue_from
from web.control.intake import accept

#: Characters an item id may not hold are replaced by this when an id is made from a key.
ID_FILL = "-"


def verify_bearer(expected: str | None, authorization: str | None) -> None:
    """Check MinIO's ``Authorization: Bearer <token>`` in constant time.

    Raises:
        AuthenticationFailed: no token is configured, or the header is missing or wrong.
    """
    if not expected:
        raise AuthenticationFailed("the MinIO webhook is disabled: set AUTOLOG_MINIO_WEBHOOK_TOKEN")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise AuthenticationFailed("missing or wrong bearer token")


def verify_signature(secret: str | None, body: bytes, header: str | None) -> None:
    """Check a GitHub-style ``X-Hub-Signature-256`` over the raw body, in constant time.

    Raises:
        AuthenticationFailed: no secret is configured, or the signature is missing or wrong.
    """
    if not secret:
        raise AuthenticationFailed("the ingest webhook is disabled: set AUTOLOG_INGEST_WEBHOOK_SECRET")
    if not header or not header.startswith("sha256="):
        raise AuthenticationFailed("missing X-Hub-Signature-256 header (sha256=<hex>)")
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(header.strip().encode(), expected.encode()):
        raise AuthenticationFailed("X-Hub-Signature-256 does not match the body")


@dataclass(frozen=True)
class ObjectEvent:
    """One object created or removed in a bucket."""

    kind: str
    bucket: str
    key: str

    @property
    def source(self) -> str:
        """The object as an item source."""
        return f"s3://{self.bucket}/{self.key}"


def parse_minio(document: Any) -> tuple[list[ObjectEvent], int]:
    """Return the created and removed objects of a bucket notification, and how many records were ignored.

    Event names are normalised (``s3:ObjectCreated:Put`` and ``ObjectCreated:Put`` alike);
    keys arrive URL-encoded (``+`` for a space) and are decoded.

    Raises:
        ValueError: the document is not a notification; the message names the field.
    """
    if not isinstance(document, dict) or not isinstance(document.get("Records"), list):
        raise ValueError("Records: expected a list of event records")
    events: list[ObjectEvent] = []
    ignored = 0
    for index, record in enumerate(document["Records"]):
        try:
            name = str(record["eventName"]).removeprefix("s3:")
            bucket = str(record["s3"]["bucket"]["name"])
            key = unquote_plus(str(record["s3"]["object"]["key"]))
        except (KeyError, TypeError) as ex:
            raise ValueError(f"Records[{index}]: expected eventName and s3.bucket.name, s3.object.key") from ex
        kind = "created" if name.startswith("ObjectCreated:") else "removed" if name.startswith(
            "ObjectRemoved:") else None
        if kind is None or not bucket or not key or key.endswith("/"):
            ignored += 1
            continue
        events.append(ObjectEvent(kind=kind, bucket=bucket, key=key))
    return events, ignored


@dataclass
class MinioOutcome:
    """What one notification did, by item id."""

    created: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    ignored: int = 0
    queued: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"created": self.created, "duplicates": self.duplicates, "removed": self.removed,
                "ignored": self.ignored, "queued": self.queued}


def apply_minio(context: Context, events: Sequence[ObjectEvent], *, ignored: int = 0) -> MinioOutcome:
    """Create and queue items for created objects, in one transaction; cancel the items of removed ones.

    Ids are made as ``autolog.item_ids`` says, with ``-`` for other characters: the key's
    stem, or the stem and a hash of the source when another object has it. A replayed
    event finds its item and changes nothing.
    """
    outcome = MinioOutcome(ignored=ignored)
    new: dict[str, NewItem] = {}
    lookup = stored_items(context.store.items)
    for event in events:
        item_id, item = choose_id(event.source, lookup, planned={key: value.source for key, value in new.items()},
                                  fill=ID_FILL)
        if event.kind == "created":
            if item is not None or item_id in new:
                outcome.duplicates.append(item_id)
            else:
                new[item_id] = NewItem(id=item_id, source=event.source)
        elif item is not None and not item.cancelled:
            actions.cancel(context, item_id)
            context.store.timeline.record(NewEvent(item_id=item_id, event="source_removed",
                                                   detail={"source": event.source}))
            outcome.removed.append(item_id)
        else:
            outcome.ignored += 1
    if new:
        accepted = accept(context, list(new.values()))
        outcome.created = [item.id for item in accepted.items]
        outcome.queued = accepted.queued
    return outcome


def ingest(context: Context, deliveries: Deliveries, delivery_id: str, body: bytes,
           items: Sequence[NewItem]) -> tuple[DeliveryView, bool]:
    """Store a delivery's items with the delivery in one transaction, then queue them.

    Returns the delivery and whether its messages reached Redis (True for a replay).

    Raises:
        InvalidSource: a source is outside the media roots; nothing is stored.
        ItemExists: an id is taken by another delivery's item; nothing is stored.
    """
    roots = context.settings.resolved_media_roots
    checked = [NewItem(id=item.id, source=validate_source(item.source, roots), force_resume=item.force_resume,
                       prompt=item.prompt) for item in items]
    delivery = deliveries.accept(delivery_id, webhook="ingest", body_sha256=hashlib.sha256(body).hexdigest(),
                                 items=checked)
    if delivery.duplicate:
        return delivery, True
    try:
        for item in checked:
            enqueue_from(item.id, context.store.items.get(item.id).status)
    except redis.RedisError as ex:
        for item in checked:
            context.store.timeline.record(NewEvent(item_id=item.id, event="queue_deferred",
                                                   detail={"reason": f"Redis unavailable: {ex}"}))
        return delivery, False
    return delivery, True
