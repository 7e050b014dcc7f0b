"""Step 6: transcription."""

from __future__ import annotations

import dramatiq

from actors._broker import rate_limits, settings
from actors._declare import step_context, step_options, stoppable
from actors.analysis import gemini_rate_limit
from autolog.settings import Settings
from autolog.statuses import TRANSCRIPTION
from autolog.steps import StepResult, transcribe_item
from middleware import RateLimit


def transcription_rate_limit(config: Settings) -> RateLimit | None:
    """Return the Gemini quota step 4 uses when Gemini transcribes; None for pocketsphinx.

    The same key (``gemini:<model>``) makes both steps' calls count against one quota.
    """
    return gemini_rate_limit(config) if config.transcriber == "gemini" else None


@dramatiq.actor(**step_options(TRANSCRIPTION), rate_limit=transcription_rate_limit(settings))
@stoppable
def transcribe(item_id: str) -> StepResult:
    """Store the transcript, in clip time, and each frame's share of it.

    A hosted transcriber's calls are held to the shared Gemini rate limit; an upstream 429
    pauses every worker and brings this message back without spending one of its retries.
    """
    return rate_limits().run(transcribe_item, step_context(TRANSCRIPTION, item_id), item_id)
