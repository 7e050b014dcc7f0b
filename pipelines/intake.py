"""Intake: seed 000's ``lf_queue`` by footage id, MinIO notifications and signed ingest deliveries.

Each stores first and queues through ``pipelines.actions.queue_items``, so all of them answer
alike when Redis is down and never queue an item a second time while a message carries it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autolog.context import Context
from autolog.errors import InvalidSource, ItemCancelled, ItemNotFound, TransitionRefused
from autolog.item_ids import choose_id, stored_items
from autolog.statuses import step_for_status
from autolog.store import ItemView, NewEvent, NewItem, validate_item_id
from autolog.store.deliveries import Deliveries, DeliveryView
from pipelines import actions
from pipelines.actions import Queued

#: The most items one request may submit.
MAX_BATCH = 1000

#: Characters an item id may not hold are replaced by this when an id is made from an object key.
ID_FILL = "-"


def find_sources(roots: Sequence[Path], item_ids: Sequence[str]) -> dict[str, str]:
    """Return, for each id that has one, the file under the media roots named after it (``LF1409.*``).

    The roots are walked once whatever the number of ids.

    Raises:
        InvalidSource: several files have an id's name (two camera cards' ``C0001.MP4``); the
            caller must say which, as ``source``.
    """
    wanted = {validate_item_id(item_id) for item_id in item_ids}
    found: dict[str, set[str]] = {}
    for root in roots:
        for folder, _, files in os.walk(root):
            for name in files:
                # ``LF1409.*``: every name up to one of its dots may be an id (ids may hold dots).
                for stem in (name[:index] for index, char in enumerate(name) if char == "." and index):
                    if stem in wanted and Path(folder, name).is_file():
                        found.setdefault(stem, set()).add(str(Path(folder, name)))
    chosen: dict[str, str] = {}
    for item_id, paths in found.items():
        if len(paths) > 1:
            listed = ", ".join(sorted(paths)[:3]) + (", ..." if len(paths) > 3 else "")
            raise InvalidSource(item_id, f"{len(paths)} files have this name ({listed}); give the one to log as "
                                         "source")
        chosen[item_id] = paths.pop()
    return chosen


def queue_footage(context: Context, ids: Sequence[str], *, source: str | None = None) -> list[Queued]:
    """Seed 000's ``lf_queue``: queue each id from where it stands, creating the new ones.

    An id with no item is created from ``source`` (one id only), else from a file under the
    media roots named after it; new items are stored together in one transaction. An id
    whose item already has a message in flight is answered with that message's id.

    Raises:
        InvalidItemId: an id is malformed.
        ItemNotFound: an id has no item and no file; nothing is done.
        InvalidSource: a source is unusable, or several files are named after an id; nothing is done.
    """
    for item_id in ids:
        validate_item_id(item_id)
    existing = context.store.items.get_many(ids)
    missing = [item_id for item_id in ids if item_id not in existing]
    if source is not None:
        found = dict.fromkeys(missing, source)
    else:
        found = find_sources(context.settings.resolved_media_roots, missing) if missing else {}
    new: list[NewItem] = []
    for item_id in missing:
        if item_id not in found:
            raise ItemNotFound(item_id)
        new.append(NewItem(id=item_id, source=found[item_id]))
    answers: dict[str, Queued] = {}
    if new:
        answers.update((answer.item.id, answer) for answer in actions.submit(context, new))
    refused = {item_id: item for item_id, item in existing.items() if item.cancelled}
    answers.update((item_id, Queued(item=item, job_id=None, queued=False, reason=str(ItemCancelled(item_id))))
                   for item_id, item in refused.items())
    again = [item for item_id, item in existing.items() if item_id not in refused]
    answers.update((answer.item.id, answer) for answer in actions.queue_items(context, _cleared(context, again)))
    return [answers[item_id] for item_id in ids]


def _cleared(context: Context, items: Sequence[ItemView]) -> list[ItemView]:
    """Clear the dead-letter and purge marks of items queued again by hand; return them as they are now."""
    marked = [item for item in items if item.dead_lettered or item.purged]
    for item in marked:
        context.store.items.update(item.id, dead_lettered=False, purged=False, event=NewEvent(
            item_id=item.id, event="retry_requested", from_status=item.status.value))
    if not marked:
        return list(items)
    fresh = context.store.items.get_many([item.id for item in items])
    return [fresh[item.id] for item in items]


def refuse_unqueued(answer: Queued) -> Queued:
    """Return ``answer``, or raise why its item was not queued (one id's ``lf_queue``).

    Raises:
        ItemCancelled: the item is cancelled.
        TransitionRefused: nothing runs from its status, or another request kept it locked.
    """
    if answer.reason and answer.item.cancelled:
        raise ItemCancelled(answer.item.id)
    if answer.reason and step_for_status(answer.item.status) is None:
        raise actions.nothing_runs_from(answer.item)
    if answer.reason:
        raise TransitionRefused(answer.item.id, "no other request queueing it", "locked", reason=answer.reason)
    return answer


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
            actions.cancel(context, item_id, refuse_finished=False)
            context.store.timeline.record(NewEvent(item_id=item_id, event="source_removed",
                                                   detail={"source": event.source}))
            outcome.removed.append(item_id)
        else:
            outcome.ignored += 1
    if new:
        answers = actions.submit(context, list(new.values()))
        outcome.created = [answer.item.id for answer in answers]
        outcome.queued = all(answer.queued for answer in answers)
    return outcome


def accept_delivery(context: Context, deliveries: Deliveries, delivery_id: str, body: bytes,
                    items: Sequence[NewItem]) -> tuple[DeliveryView, list[Queued]]:
    """Store a delivery's items with the delivery in one transaction, then queue them.

    Returns the delivery and one answer per item queued (none for a replayed delivery).

    Raises:
        InvalidSource: a source is unusable; nothing is stored.
        ItemExists: an id is taken by another delivery's item; nothing is stored.
    """
    checked = actions.check_items(context, items)
    delivery = deliveries.accept(delivery_id, webhook="ingest", body_sha256=hashlib.sha256(body).hexdigest(),
                                 items=checked)
    if delivery.duplicate:
        return delivery, []
    stored = context.store.items.get_many([item.id for item in checked])
    return delivery, actions.queue_items(context, [stored[item.id] for item in checked], created=True)
