"""Step 6: transcription."""

from __future__ import annotations

import dramatiq

from actors._broker import services
from actors._declare import step_options
from autolog.statuses import TRANSCRIPTION
from autolog.steps import StepResult, transcribe_item


@dramatiq.actor(**step_options(TRANSCRIPTION))
def transcribe(item_id: str) -> StepResult:
    """Store the transcript and each frame's share of it."""
    return transcribe_item(services().current(), item_id)
