"""Step 1: file info."""

from __future__ import annotations

import dramatiq

from actors._broker import services
from actors._declare import step_options, stoppable
from autolog.statuses import FILE_INFO
from autolog.steps import StepResult, probe_item


@dramatiq.actor(**step_options(FILE_INFO))
@stoppable
def probe(item_id: str) -> StepResult:
    """Store the source's container, streams, duration, fps, resolution and codecs."""
    return probe_item(services().current(), item_id)
