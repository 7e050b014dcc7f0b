"""Builders that turn the step graph into dramatiq messages and pipelines."""

from __future__ import annotations

from typing import Any

import dramatiq

from actors import broker
from autolog.statuses import ROUTE_ACTOR, Status
from pipelines.decisions import BRANCH_POINTS, segment_from


def build_footage_pipeline(item_id: str, status: Status) -> dramatiq.pipeline | None:
    """Build the pipeline that runs an item at ``status`` up to its next branch point.

    Returns None when nothing runs from ``status`` (awaiting a prompt, or done).
    """
    messages: list[dramatiq.Message[Any]] = []
    for step in segment_from(status):
        options: dict[str, Any] = {"on_success": ROUTE_ACTOR} if step in BRANCH_POINTS else {}
        messages.append(broker.get_actor(step.actor_name).message_with_options(args=(item_id,), **options))
    return dramatiq.pipeline(messages) if messages else None


def enqueue_from(item_id: str, status: Status) -> str | None:
    """Enqueue the pipeline for an item at ``status``; return the first message's id, if any."""
    built = build_footage_pipeline(item_id, status)
    if built is None:
        return None
    built.run()
    first: str = built.messages[0].message_id
    return first
