"""Which pipeline step a message runs: the one rule the middleware read it by."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy

from autolog.statuses import Step, step_named


def step_of(broker: dramatiq.Broker, actor_name: str, options: Mapping[str, Any]) -> Step | None:
    """Return the pipeline step a message of ``actor_name`` with ``options`` runs; None for others.

    Its ``step`` option, else its actor's ``step`` option.

    Raises:
        dramatiq.errors.ActorNotFound: ``broker`` declares no such actor.
    """
    name = options.get("step") or broker.get_actor(actor_name).options.get("step")
    return step_named(name) if name else None


def message_step(broker: dramatiq.Broker, message: dramatiq.Message[Any] | MessageProxy) -> Step | None:
    """Return the pipeline step a message runs (``step_of``); None for others."""
    return step_of(broker, message.actor_name, message.options)
