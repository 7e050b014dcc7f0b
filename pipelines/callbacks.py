"""Callback actors: what runs after a branch point has stored its status."""

from __future__ import annotations

from typing import Any

import dramatiq

from autolog.statuses import ROUTE_ACTOR
from pipelines.decisions import status_after
from pipelines.footage import enqueue_from


@dramatiq.actor(actor_name=ROUTE_ACTOR, queue_name="control", max_retries=5)
def route(message_data: dict[str, Any], result: dict[str, Any]) -> None:
    """Enqueue the steps that follow the status a branch point wrote; nothing if it was refused."""
    status = status_after(message_data)
    if status is not None:
        enqueue_from(result["item_id"], status)
