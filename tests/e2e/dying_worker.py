"""A worker process that SIGKILLs itself the moment it sends the message following a status write.

Run as ``python -m tests.e2e.dying_worker [--after-enqueue] ACTOR QUEUE...``: it consumes
``QUEUE...`` with autolog's broker and middleware, and dies (kill -9, as the OOM killer would)
in the broker's ``before_enqueue`` of the first message for ``ACTOR``, which ``StatusWrites``
sends only after the status write has committed: the window a crash used to lose a step in.
With ``--after-enqueue`` it dies in ``after_enqueue`` instead: Redis has the message, and the
message's outbox row is not yet cleared. With ``--stop-before-send`` it does not die: it stops
itself (SIGSTOP, as a frozen machine would) after the status write has committed that message,
right before ``OutboxRelay`` would send it, and goes on when sent SIGCONT.
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


class StopBeforeSend(dramatiq.Middleware):
    """Stops this process once a status write committed a message for ``actor_name``, before it is sent.

    Added right after ``OutboxRelay``, so its ``after_process_message`` runs right before that one's
    (``after_*`` hooks run in reverse), once ``StatusWrites`` has committed the status and its messages.
    """

    def __init__(self, actor_name: str) -> None:
        self.actor_name = actor_name

    def after_process_message(self, broker: dramatiq.Broker, message: Any, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        from middleware.outbox_relay import COMMITTED_OPTION

        committed = message.options.get(COMMITTED_OPTION) or ()
        if any(pending["message"]["actor_name"] == self.actor_name for pending in committed):
            # A process stops some time after its SIGSTOP: this thread goes on only once it takes the
            # SIGCONT, which every thread blocks (``main``), so it stays pending until this takes it.
            os.kill(os.getpid(), signal.SIGSTOP)
            signal.sigwait({signal.SIGCONT})


def main(actor_name: str, queues: list[str], *, mode: str = "") -> None:
    """Consume ``queues`` until killed."""
    import pipelines  # noqa: F401  (declares the callback actors, as ``dramatiq actors pipelines`` does)
    from actors import broker
    from middleware import OutboxRelay

    if mode == "--stop-before-send":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCONT})  # The worker's threads, started below, too.
        broker.add_middleware(StopBeforeSend(actor_name), after=OutboxRelay)
    else:
        broker.add_middleware(KillAtEnqueue(actor_name, after=mode == "--after-enqueue"))
    worker = dramatiq.Worker(broker, queues=set(queues), worker_threads=1, worker_timeout=100)
    worker.start()
    threading.Event().wait()


if __name__ == "__main__":
    arguments = sys.argv[1:]
    chosen = arguments.pop(0) if arguments[0].startswith("--") else ""
    main(arguments[0], arguments[1:], mode=chosen)
