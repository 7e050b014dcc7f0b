"""Actor options shared by every step, derived from the step and its pool settings."""

from __future__ import annotations

from typing import Any

from actors._broker import settings
from autolog.errors import PermanentError
from autolog.statuses import Step


def step_options(step: Step) -> dict[str, Any]:
    """Return the ``dramatiq.actor`` options for ``step``.

    Permanent errors are thrown, not retried; results are not piped because every step
    reads what it needs from the store by item id.
    """
    return {
        "actor_name": step.actor_name,
        "queue_name": step.queue_name,
        "step": step.name,
        "time_limit": settings.pools[step.name].time_limit_s * 1000,
        "throws": (PermanentError,),
        "pipe_ignore": True,
    }
