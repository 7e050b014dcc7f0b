"""Accepting items: stored first, queued second; with Redis down they stay stored for discovery.

This is the API's answer to "nothing accepted is lost": an accepted item is in the
database before the response, and when Redis cannot take its message the response says
``"queued": false`` and discovery queues it once Redis is back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from autolog.context import Context
from autolog.errors import InvalidSource, ItemNotFound, TransitionRefused
from autolog.statuses import step_for_status
from autolog.store import ItemView, NewEvent, NewItem, validate_item_id
from pipelines import actions
from web.control.items import retry

logger = logging.getLogger(__name__)

#: The most items one request may submit.
MAX_BATCH = 1000


@dataclass(frozen=True)
class Accepted:
    """Items stored by one request, and whether their messages reached Redis."""

    items: tuple[ItemView, ...]
    queued: bool

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"items": [item.to_dict() for item in self.items], "count": len(self.items), "queued": self.queued}


@dataclass(frozen=True)
class Queued:
    """One footage id after ``lf_queue``: where it stands and whether a message was sent."""

    item: ItemView
    queued: bool
    created: bool
    job_id: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return seed 000's per-item answer."""
        data: dict[str, Any] = {"footage_id": self.item.id, "status": self.item.status.value,
                                "queued": self.queued, "created": self.created, "job_id": self.job_id}
        if self.reason:
            data["reason"] = self.reason
        return data


def _defer(context: Context, item_ids: Sequence[str], ex: redis.RedisError) -> list[ItemView]:
    logger.warning("Redis is unavailable; %d item(s) stored and left for discovery: %s", len(item_ids), ex)
    for item_id in item_ids:
        context.store.timeline.record(NewEvent(item_id=item_id, event="queue_deferred",
                                               detail={"reason": f"Redis unavailable: {ex}"}))
    return [context.store.items.get(item_id) for item_id in item_ids]


def accept(context: Context, items: Sequence[NewItem]) -> Accepted:
    """Store ``items`` in one transaction and queue them; keep them stored if Redis is down.

    Raises:
        InvalidSource: a source is outside the media roots; nothing is stored.
        InvalidItemId: an id is malformed; nothing is stored.
        ItemExists: an id is taken; nothing is stored.
    """
    try:
        return Accepted(items=tuple(actions.submit(context, items)), queued=True)
    except redis.RedisError as ex:
        return Accepted(items=tuple(_defer(context, [item.id for item in items], ex)), queued=False)


def find_source(roots: Sequence[Path], item_id: str) -> str | None:
    """Return the file under the media roots named after ``item_id`` (``LF1409.*``), if there is one.

    Raises:
        InvalidSource: several files have that name (two camera cards' ``C0001.MP4``); the
            caller must say which, as ``source``.
    """
    validate_item_id(item_id)
    found = sorted({str(path) for root in roots for path in root.rglob(f"{item_id}.*") if path.is_file()})
    if len(found) > 1:
        listed = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
        raise InvalidSource(item_id, f"{len(found)} files have this name ({listed}); give the one to log as source")
    return found[0] if found else None


def last_job_id(context: Context, item_id: str) -> str | None:
    """Return the id of the newest message queued for an item."""
    for event in reversed(context.store.timeline.for_item(item_id)):
        if event.event == "queued" and event.message_id:
            return event.message_id
    return None


def queue_footage(context: Context, ids: Sequence[str], *, source: str | None = None) -> list[Queued]:
    """Seed 000's ``lf_queue``: queue each id from where it stands, creating the new ones.

    An id with no item is created from ``source`` (one id only), else from a file under the
    media roots named after it. New items are stored together in one transaction.

    Raises:
        InvalidItemId: an id is malformed.
        ItemNotFound: an id has no item and no file; nothing is done.
        InvalidSource: a source is outside the media roots, or several files are named after
            an id; nothing is done.
    """
    existing: dict[str, ItemView] = {}
    new: list[NewItem] = []
    for item_id in ids:
        validate_item_id(item_id)
        try:
            existing[item_id] = context.store.items.get(item_id)
            continue
        except ItemNotFound:
            pass
        found = source if source is not None else find_source(context.settings.resolved_media_roots, item_id)
        if found is None:
            raise ItemNotFound(item_id)
        new.append(NewItem(id=item_id, source=found))
    results: dict[str, Queued] = {}
    if new:
        accepted = accept(context, new)
        for item in accepted.items:
            results[item.id] = Queued(item=item, queued=accepted.queued, created=True)
    for item_id, item in existing.items():
        if item.cancelled or step_for_status(item.status) is None:
            reason = "cancelled" if item.cancelled else f"nothing runs from {item.status.value!r}"
            results[item_id] = Queued(item=item, queued=False, created=False, reason=reason)
            continue
        try:
            view, sent = retry(context, item_id)
        except TransitionRefused as ex:
            results[item_id] = Queued(item=item, queued=False, created=False, reason=str(ex))
            continue
        results[item_id] = Queued(item=view, queued=sent, created=False)
    return [results[item_id] for item_id in ids]


def with_job_id(context: Context, queued: Queued) -> Queued:
    """Return ``queued`` with the id of its item's newest message filled in."""
    if not queued.queued:
        return queued
    return Queued(item=queued.item, queued=True, created=queued.created, job_id=last_job_id(context, queued.item.id))
