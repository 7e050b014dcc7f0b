"""Builders that turn the step graph into dramatiq messages and pipelines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dramatiq

from actors import broker
from autolog.statuses import FILE_INFO, ROUTE_ACTOR, Status
from autolog.store import PendingMessage
from middleware import SOURCE_OPTION, pending
from pipelines.decisions import BRANCH_POINTS, segment_from


def build_footage_pipeline(item_id: str, status: Status, *, source: str | None = None) -> dramatiq.pipeline | None:
    """Build the pipeline that runs an item at ``status`` up to its next branch point.

    ``source``, the item's, goes with a step-1 message (``SOURCE_OPTION``): its source check
    then reads nothing from the store while the source has settled.

    Returns None when nothing runs from ``status`` (awaiting a prompt, or done).
    """
    messages: list[dramatiq.Message[Any]] = []
    for step in segment_from(status):
        options: dict[str, Any] = {"on_success": ROUTE_ACTOR} if step in BRANCH_POINTS else {}
        if step is FILE_INFO and source is not None:
            options[SOURCE_OPTION] = source
        messages.append(broker.get_actor(step.actor_name).message_with_options(args=(item_id,), **options))
    return dramatiq.pipeline(messages) if messages else None


def first_message(item_id: str, status: Status, *, source: str | None = None) -> dramatiq.Message[Any] | None:
    """Return the message that starts an item's pipeline from ``status`` (it carries the rest); None if none runs."""
    built = build_footage_pipeline(item_id, status, source=source)
    if built is None:
        return None
    message: dramatiq.Message[Any] = built.messages[0]
    return message


def outbox_messages(item_ids: Sequence[str], status: Status, *,
                    sources: Mapping[str, str] | None = None) -> list[PendingMessage]:
    """Return, encoded for the outbox, the first message of each item's pipeline from ``status``.

    ``sources`` maps item ids to their sources, for step-1 messages (``build_footage_pipeline``).
    Store them in the transaction that puts the items at ``status``
    (``Items.create(..., messages=...)``, ``Items.transition(..., messages=...)``), then
    send them (``pipelines.actions.send``).
    """
    sources = sources or {}
    return [pending(message) for item_id in item_ids
            if (message := first_message(item_id, status, source=sources.get(item_id))) is not None]


def enqueue_from(item_id: str, status: Status, *, source: str | None = None) -> str | None:
    """Enqueue the pipeline for an item at ``status``; return the first message's id, if any."""
    message = first_message(item_id, status, source=source)
    if message is None:
        return None
    broker.enqueue(message)
    return message.message_id
