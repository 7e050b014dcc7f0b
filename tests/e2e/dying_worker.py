"""A worker process that SIGKILLs itself the moment it sends the message following a status write.

Run as ``python -m tests.e2e.dying_worker [--after-enqueue] ACTOR QUEUE...``: it consumes
``QUEUE...`` with autolog's broker and middleware, and dies (kill -9, as the OOM killer would)
in the broker's ``before_enqueue`` of the first message for ``ACTOR``, which ``StatusWrites``
sends only after the status write has committed: the window a crash used to lose a step in.
With ``--after-enqueue`` it dies in ``after_enqueue`` instead: Redis has the message, and the
message's outbox row is not yet cleared.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

import dramatiq


class KillAtEnqueue(dramatiq.Middleware):
    """Kills this process at the first enqueue of a message for ``actor_name``: before it, or ``after`` it."""

    def __init__(self, actor_name: str, *, after: bool) -> None:
        self.actor_name = actor_name
        self.after = after

    def before_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None) -> None:
        if not self.after:
            self._kill_at(message)

    def after_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None) -> None:
        if self.after:
            self._kill_at(message)

    def _kill_at(self, message: dramatiq.Message[Any]) -> None:
        if message.actor_name == self.actor_name:
            os.kill(os.getpid(), signal.SIGKILL)


def main(actor_name: str, queues: list[str], *, after_enqueue: bool = False) -> None:
    """Consume ``queues`` until killed."""
    import pipelines  # noqa: F401  (declares the callback actors, as ``dramatiq actors pipelines`` does)
    from actors import broker

    broker.add_middleware(KillAtEnqueue(actor_name, after=after_enqueue))
    worker = dramatiq.Worker(broker, queues=set(queues), worker_threads=1, worker_timeout=100)
    worker.start()
    threading.Event().wait()


if __name__ == "__main__":
    arguments = sys.argv[1:]
    after = arguments[0] == "--after-enqueue"
    if after:
        arguments.pop(0)
    main(arguments[0], arguments[1:], after_enqueue=after)
