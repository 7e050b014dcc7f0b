"""Stopping a running step at its next safe point when its item is cancelled.

A worker installs a check for the message it runs (``stop_when``); the media work asks
``stop_requested`` at its safe points: between polls of a tool's subprocess (ffmpeg, ffprobe,
the speech recogniser), which is then killed. Nothing is stored after a stop: the step raises
``StepCancelled`` before its results are saved.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

from autolog.errors import AutologError

#: The stop check of the step running in this thread, if any.
_CHECK: ContextVar[Callable[[], bool] | None] = ContextVar("autolog_stop_check", default=None)


class StepCancelled(AutologError):
    """Raised at a safe point when the item of the running step was cancelled or deleted."""

    def __init__(self, reason: str = "the item was cancelled while its step ran") -> None:
        super().__init__(reason)
        self.reason = reason


def install_check(check: Callable[[], bool]) -> Token[Callable[[], bool] | None]:
    """Make ``stop_requested`` in this thread consult ``check``; ``remove_check`` with the token undoes it."""
    return _CHECK.set(check)


def remove_check(token: Token[Callable[[], bool] | None]) -> None:
    """Undo ``install_check``."""
    _CHECK.reset(token)


@contextmanager
def stop_when(check: Callable[[], bool]) -> Iterator[None]:
    """Make ``stop_requested`` in this thread consult ``check`` until the block ends."""
    token = install_check(check)
    try:
        yield
    finally:
        remove_check(token)


def stop_requested() -> bool:
    """Tell whether the running step should stop; False when no check is installed."""
    check = _CHECK.get()
    return check is not None and check()


def throttled(check: Callable[[], bool], *, every_s: float) -> Callable[[], bool]:
    """Return ``check`` asked at most once per ``every_s`` seconds; once True it stays True."""
    lock = threading.Lock()
    state = {"at": float("-inf"), "stop": False}

    def ask() -> bool:
        with lock:
            if not state["stop"] and time.monotonic() - state["at"] >= every_s:
                state["stop"] = bool(check())
                state["at"] = time.monotonic()
            return bool(state["stop"])

    return ask
