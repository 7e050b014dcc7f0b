"""Step 1: file info."""

from __future__ import annotations

import dramatiq

from actors._declare import step_context, step_options, stoppable
from autolog.statuses import FILE_INFO
from autolog.steps import StepResult, probe_item


@dramatiq.actor(**step_options(FILE_INFO))
@stoppable
def probe(item_id: str) -> StepResult:
    """Store the source's container, streams, duration, fps, resolution and codecs."""
    return probe_item(step_context(FILE_INFO, item_id), item_id)
