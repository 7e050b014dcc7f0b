"""JSON documents the API answers with: an item in full, an artifact's file, a job with its result."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from autolog.context import Context
from autolog.errors import ArtifactNotFound
from autolog.store.jobs import JobView
from pipelines.actions import Queued


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
            if not path.is_relative_to(root):
                break
            if path.is_file():
                return path
            # Recorded, but the file is gone (removed by hand, a disk restored without it): rerun the step.
            raise ArtifactNotFound(item_id, kind, position,
                                   reason=f"its file {artifact.path} is missing; rerun the step that made it")
    raise ArtifactNotFound(item_id, kind, position)


def job_document(job: JobView) -> dict[str, Any]:
    """Return seed 003's job document, with ``result``: what a finished step returned, else None."""
    return {**job.to_dict(), "result": job.result}


def seed_queued(answer: Queued) -> dict[str, Any]:
    """Return seed 000's per-item answer to ``lf_queue``."""
    data: dict[str, Any] = {"footage_id": answer.item.id, "status": answer.item.status.value,
                            "queued": answer.queued, "already_queued": answer.already_queued,
                            "created": answer.created, "job_id": answer.job_id}
    if answer.reason:
        data["reason"] = answer.reason
    return data


def accepted_document(answers: Sequence[Queued]) -> dict[str, Any]:
    """Return the answer to a batch of new items: the items, their job ids and whether all were queued."""
    return {"items": [answer.item.to_dict() for answer in answers], "count": len(answers),
            "job_ids": [answer.job_id for answer in answers], "queued": all(answer.queued for answer in answers)}
