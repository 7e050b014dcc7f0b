"""Step 3: assess and sample."""

from __future__ import annotations

import dramatiq

from actors._declare import step_context, step_options, stoppable
from autolog.statuses import ASSESS
from autolog.steps import StepResult, assess_item


@dramatiq.actor(**step_options(ASSESS))
@stoppable
def assess(item_id: str) -> StepResult:
    """Store the shots found in one full decode pass and one frame per shot."""
    return assess_item(step_context(ASSESS, item_id), item_id)
