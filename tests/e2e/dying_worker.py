"""A worker process that SIGKILLs itself the moment it sends the message following a status write.

Run as ``python -m tests.e2e.dying_worker ACTOR QUEUE...``: it consumes ``QUEUE...`` with
autolog's broker and middleware, and dies (kill -9, as the OOM killer would) in the broker's
``before_enqueue`` of the first message for ``ACTOR``, which ``StatusWrites`` sends only
after the status write has committed: the window a crash used to lose a step in.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

import dramatiq


class KillBeforeEnqueue(dramatiq.Middleware):
    """Kills this process before the first enqueue of a message for ``actor_name``."""

    def __init__(self, actor_name: str) -> None:
        self.actor_name = actor_name

    def before_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None) -> None:
        if message.actor_name == self.actor_name:
            os.kill(os.getpid(), signal.SIGKILL)


def main(actor_name: str, queues: list[str]) -> None:
    """Consume ``queues`` until killed."""
    import pipelines  # noqa: F401  (declares the callback actors, as ``dramatiq actors pipelines`` does)
    from actors import broker

    broker.add_middleware(KillBeforeEnqueue(actor_name))
    worker = dramatiq.Worker(broker, queues=set(queues), worker_threads=1, worker_timeout=100)
    worker.start()
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
