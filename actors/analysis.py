"""Step 4: analysis."""

from __future__ import annotations

import dramatiq

from actors._broker import rate_limits, settings
from actors._declare import step_context, step_options, stoppable
from autolog.settings import Settings
from autolog.statuses import ANALYSIS
from autolog.steps import StepResult, analyze_item
from middleware import RateLimit


def gemini_rate_limit(config: Settings) -> RateLimit | None:
    """Return the shared Gemini quota from settings; None (unlimited) for the local analyzer."""
    if not config.gemini_api_key:
        return None
    return RateLimit(
        key=f"gemini:{config.gemini_model}", requests=config.gemini_requests_per_window,
        window_ms=config.gemini_window_ms, tokens=config.gemini_tokens_per_window,
        concurrency=config.gemini_concurrency,
        # A clip's frames: about 10 images of 258 tokens each, plus the prompt.
        tokens_per_call=3_000,
        lease_ms=config.gemini_timeout_ms + 30_000,
    )


@dramatiq.actor(**step_options(ANALYSIS), rate_limit=gemini_rate_limit(settings))
@stoppable
def analyze(item_id: str) -> StepResult:
    """Store the analyzer's description of every sampled frame.

    Calls are held to the shared rate limit; an upstream 429 pauses every worker and brings
    this message back after the pause without spending one of its retries.
    """
    return rate_limits().run(analyze_item, step_context(ANALYSIS, item_id), item_id)
