"""Per-process collaborators for the steps: the store, analyzer and transcriber."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import dramatiq

from autolog.context import Context
from autolog.settings import Settings


class ServicesNotReady(RuntimeError):
    """Raised when a step runs in a process whose services were never started."""


class Services(dramatiq.Middleware):
    """Builds the process's ``Context`` when a worker boots and closes it at shutdown.

    Processes that only send messages (the API, the CLI) call ``install`` themselves.

    Once the worker has booted (this hook runs after every other middleware's: ``after_*``
    hooks run in reverse), what the process holds then (its modules, the store's engine, the
    middleware and their threads: some 110,000 objects) lives as long as the worker, so it is
    moved out of the cyclic garbage collector's generations (``gc.freeze``), and the full
    collections that the messages' allocations trigger no longer walk it. Measured (issue #13,
    2026-12-02 evening): a full collection took 115 ms of the worker's CPU, all threads stopped,
    once in 3,000 no-op deliveries (38 µs a delivery, 4 % of its CPU); frozen, the same run made
    none. Reference counting still frees frozen objects; a cycle among them is collected only once
    the worker stops (``gc.unfreeze`` at shutdown, for a process that goes on: tests, benchmarks).
    """

    def __init__(self, *, settings: Settings, build: Callable[[Settings], Context] = Context.build) -> None:
        self.settings = settings
        self._build = build
        self._context: Context | None = None
        #: True when this middleware built the context and so must close it.
        self._owned = False

    def install(self, context: Context) -> None:
        """Use ``context`` for this process."""
        self._context = context

    def uninstall(self) -> None:
        """Forget the installed context; the caller closes it."""
        self._context = None
        self._owned = False

    def current(self) -> Context:
        """Return this process's context.

        Raises:
            ServicesNotReady: no worker booted here and nothing was installed.
        """
        if self._context is None:
            raise ServicesNotReady("autolog services are not started in this process")
        return self._context

    @property
    def is_ready(self) -> bool:
        """True once a context is installed."""
        return self._context is not None

    def before_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        if self._context is None:
            self._context = self._build(self.settings)
            self._owned = True

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        gc.freeze()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        gc.unfreeze()
        if self._context is not None and self._owned:
            self._context.close()
            self._context = None
            self._owned = False
