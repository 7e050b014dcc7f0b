"""Actor options shared by every step, derived from the step and its pool settings."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from dramatiq.middleware import CurrentMessage, SkipMessage

from actors._broker import services, settings
from autolog.context import Context
from autolog.errors import PermanentError
from autolog.statuses import Step
from autolog.stops import StepCancelled
from autolog.store import RunFence
from middleware import RUN_OPTION

P = ParamSpec("P")
R = TypeVar("R")


def stoppable(function: Callable[P, R]) -> Callable[P, R]:
    """Turn a step stopped for its cancelled item into a skip: nothing stored, retried or dead-lettered."""
    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except StepCancelled as ex:
            raise SkipMessage(str(ex)) from ex

    return run


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


def step_context(step: Step, item_id: str) -> Context:
    """Return the process's context, its writes to ``item_id`` fenced to the run of the current message.

    ``StatusWrites`` starts a run (a fencing token) when a delivery of ``step`` begins; the
    step's writes go through only while that run still holds the item. Called outside a
    worker (the actor run as a plain function), the context is not fenced.
    """
    context = services().current()
    message = CurrentMessage.get_current_message()
    token = message.options.get(RUN_OPTION) if message is not None else None
    return context.fenced(RunFence(item_id, token, step.from_status)) if token else context
