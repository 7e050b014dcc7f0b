"""Per-process collaborators for the steps: the store, analyzer and transcriber."""

from __future__ import annotations

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

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        if self._context is not None and self._owned:
            self._context.close()
            self._context = None
            self._owned = False
