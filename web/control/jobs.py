"""Jobs with their results: the timeline's view of a message plus what its actor returned."""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.results import ResultFailure, ResultMissing, Results

from autolog.statuses import step_named
from autolog.store.jobs import JobView


def result_backend(broker: Any) -> Any | None:
    """Return the broker's results backend, if it has the ``Results`` middleware."""
    for middleware in broker.middleware:
        if isinstance(middleware, Results):
            return middleware.backend
    return None


def job_document(job: JobView, backend: Any | None) -> dict[str, Any]:
    """Return seed 003's job document, with ``result`` read from the results backend."""
    document = job.to_dict()
    document["result"] = None
    if backend is None or job.step is None or job.status != "finished":
        return document
    step = step_named(job.step)
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=step.queue_name, actor_name=step.actor_name, args=(), kwargs={}, options={},
        message_id=job.job_id, message_timestamp=0)
    try:
        document["result"] = backend.get_result(message, block=False)
    except (ResultMissing, ResultFailure):
        pass
    return document
