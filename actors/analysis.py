"""Step 4: analysis."""

from __future__ import annotations

import dramatiq

from actors._broker import services
from actors._declare import step_options
from autolog.statuses import ANALYSIS
from autolog.steps import StepResult, analyze_item


@dramatiq.actor(**step_options(ANALYSIS))
def analyze(item_id: str) -> StepResult:
    """Store the analyzer's description of every sampled frame."""
    return analyze_item(services().current(), item_id)
