"""Item use cases behind the resource API: the full item document, and actions that queue."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis

from autolog.context import Context
from autolog.errors import ArtifactNotFound
from autolog.store import ItemView, NewEvent
from pipelines import actions

logger = logging.getLogger(__name__)


def artifact_url(item_id: str, kind: str, position: int) -> str:
    """Return the API path that serves one artifact."""
    return f"/items/{quote(item_id)}/artifacts/{quote(kind)}/{position}"


def item_document(context: Context, item_id: str) -> dict[str, Any]:
    """Return an item with its timeline, scenes, frames, transcript, analysis and artifacts.

    Raises:
        ItemNotFound: no such item.
    """
    store = context.store
    document = store.items.get(item_id).to_dict()
    analysis = store.results.analysis(item_id)
    document.update(
        timeline=[event.to_dict() for event in store.timeline.for_item(item_id)],
        scenes=[scene.to_dict() for scene in store.results.scenes(item_id)],
        frames=[frame.to_dict() for frame in store.results.frames(item_id)],
        transcript=[segment.to_dict() for segment in store.results.transcript(item_id)],
        analysis=analysis.to_dict() if analysis else None,
        artifacts=[{**artifact.to_dict(), "url": artifact_url(item_id, artifact.kind, artifact.position)}
                   for artifact in store.results.artifacts(item_id)],
    )
    return document


def artifact_file(context: Context, item_id: str, kind: str, position: int) -> Path:
    """Return the file of one artifact, confined to the artifacts folder.

    Raises:
        ItemNotFound: no such item.
        ArtifactNotFound: no such artifact, its file is gone, or it lies outside the artifacts folder.
    """
    context.store.items.get(item_id)
    root = context.settings.artifacts_root
    for artifact in context.store.results.artifacts(item_id):
        if artifact.kind == kind and artifact.position == position:
            path = Path(artifact.path).resolve()
            if path.is_relative_to(root) and path.is_file():
                return path
            break
    raise ArtifactNotFound(item_id, kind, position)


def _deferred(context: Context, item_id: str, ex: redis.RedisError) -> ItemView:
    logger.warning("Redis is unavailable; item %r left for discovery: %s", item_id, ex)
    context.store.timeline.record(NewEvent(item_id=item_id, event="queue_deferred",
                                           detail={"reason": f"Redis unavailable: {ex}"}))
    return context.store.items.get(item_id)


def prompt(context: Context, item_id: str, text: str | None) -> tuple[ItemView, bool]:
    """Release a waiting item with a prompt (or none, to resume); return it and whether it was queued.

    Raises:
        ItemNotFound: no such item.
        TransitionRefused: it is not waiting for input.
    """
    try:
        return actions.prompt(context, item_id, text), True
    except redis.RedisError as ex:
        return _deferred(context, item_id, ex), False


def retry(context: Context, item_id: str) -> tuple[ItemView, bool]:
    """Queue again the step an item stopped at; return it and whether it was queued.

    Raises:
        ItemNotFound: no such item.
        TransitionRefused: nothing runs from its status.
    """
    try:
        return actions.retry(context, item_id), True
    except redis.RedisError as ex:
        return _deferred(context, item_id, ex), False
