"""Step 2: thumbnails."""

from __future__ import annotations

import dramatiq

from actors._declare import step_context, step_options, stoppable
from autolog.statuses import THUMBNAILS
from autolog.steps import StepResult, make_item_thumbnails


@dramatiq.actor(**step_options(THUMBNAILS))
@stoppable
def make_thumbnails(item_id: str) -> StepResult:
    """Store a poster frame and a contact sheet, both checked to exist."""
    return make_item_thumbnails(step_context(THUMBNAILS, item_id), item_id)
