"""The last check before a call leaves for an upstream service.

A rate limiter admits a call when its message starts, but the request itself leaves later:
after the frames are read and encoded, or the speech is cut from the audio, which takes
seconds on a busy host. When another worker meets a 429 in between, the pause it shares
must hold this request back too, or it reaches a server that asked everyone to wait.

The middleware that admitted the call installs a check for the length of the work
(:func:`gated`); the client calls :func:`check_before_call` right before each request. The
check raises to stop the request; outside a gated block nothing is checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_check: ContextVar[Callable[[], None] | None] = ContextVar("upstream_gate", default=None)


@contextmanager
def gated(check: Callable[[], None]) -> Iterator[None]:
    """Run ``check`` before every upstream request made inside the block (this thread only)."""
    token = _check.set(check)
    try:
        yield
    finally:
        _check.reset(token)


def check_before_call() -> None:
    """Run the check installed by the enclosing :func:`gated`, if any; it raises to stop the call."""
    check = _check.get()
    if check is not None:
        check()
