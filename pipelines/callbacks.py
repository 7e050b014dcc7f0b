"""Callback actors: what runs after a branch point has stored its status."""

from __future__ import annotations

from typing import Any

import dramatiq

from actors import broker
from autolog.statuses import ROUTE_ACTOR
from pipelines.decisions import status_after
from pipelines.footage import first_message


def next_messages(message_data: dict[str, Any], result: dict[str, Any]) -> list[dramatiq.Message[Any]]:
    """Return the pipeline that follows the status a branch point wrote; none if it was refused.

    ``StatusWrites`` calls this (the route actor's ``follow_up``) to commit the next step with
    the branch point's status, so a branch costs no extra hop through the ``control`` queue.
    """
    status = status_after(message_data)
    if status is None:
        return []
    # A restart at step 1 (a changed source's) names the item's source for its message.
    message = first_message(result["item_id"], status, source=result.get("source"))
    return [message] if message is not None else []


@dramatiq.actor(actor_name=ROUTE_ACTOR, queue_name="control", max_retries=5, follow_up=next_messages)
def route(message_data: dict[str, Any], result: dict[str, Any]) -> None:
    """Enqueue the steps that follow the status a branch point wrote; nothing if it was refused.

    Branch points and a changed source's restart commit these with their status (see
    ``next_messages``), so nothing sends this actor a message now; it runs for those an
    earlier version queued (its restarts did), still in Redis after an upgrade.
    """
    for message in next_messages(message_data, result):
        broker.enqueue(message)
