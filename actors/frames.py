"""Step 5: frame records."""

from __future__ import annotations

import dramatiq

from actors._declare import step_context, step_options, stoppable
from autolog.statuses import FRAMES
from autolog.steps import StepResult, make_item_frames


@dramatiq.actor(**step_options(FRAMES))
@stoppable
def make_frames(item_id: str) -> StepResult:
    """Store one frame record per sampled frame, replacing any earlier ones."""
    return make_item_frames(step_context(FRAMES, item_id), item_id)
