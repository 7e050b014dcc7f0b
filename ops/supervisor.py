"""The pool supervisor: a pool whose master died without being stopped is started again, with backoff.

dramatiq's master stops its whole group when one worker process dies (an OOM kill, a crash),
and nothing else would start it again. The supervisor, run by this machine's sweep process
every few seconds, starts such a pool again after a backoff that doubles with each restart
(1 s, 2 s, 4 s … up to a minute). A pool restarted ``max_restarts`` times within ``window_s``
is crash-looping: the supervisor stops trying, writes the reason beside its pid file (pool
status, ``/health`` and ``autolog workers status`` show it), and a start by hand resumes it.
A pool stopped on purpose (``stop`` withdraws its ``.wanted`` mark) is never started again.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ops.pools import PoolManager, PoolSpec


@dataclass
class _History:
    """When a pool was restarted, and when it may next be."""

    restarts: deque[float] = field(default_factory=deque)
    not_before: float = 0.0


class PoolSupervisor:
    """Restarts this machine's pools that died, with backoff and a crash-loop limit.

    Args:
        manager: the pools.
        max_restarts: restarts allowed within ``window_s`` before the pool counts as crash-looping.
        window_s: the crash-loop window, in seconds.
        base_backoff_s, max_backoff_s: the wait after the first restart, doubled for each one after, capped.
        clock: monotonic seconds.
    """

    def __init__(self, manager: PoolManager, *, max_restarts: int = 5, window_s: float = 600.0,
                 base_backoff_s: float = 1.0, max_backoff_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logging.getLogger(__name__)
        self.manager = manager
        self.max_restarts = max_restarts
        self.window_s = window_s
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self._clock = clock
        self._history: dict[str, _History] = {}

    def check(self) -> list[str]:
        """Restart every pool that died and is due; return the names of those restarted."""
        restarted = []
        for spec in self.manager.specs:
            if self._restart_if_dead(spec):
                restarted.append(spec.name)
        return restarted

    def _restart_if_dead(self, spec: PoolSpec) -> bool:
        process = self.manager.processes[spec.name]
        if not process.wanted or process.pid() is not None:
            return False
        marker = self.manager.crash_loop_file(spec)
        if marker.is_file():
            return False
        now = self._clock()
        history = self._history.setdefault(spec.name, _History())
        while history.restarts and history.restarts[0] < now - self.window_s:
            history.restarts.popleft()
        if len(history.restarts) >= self.max_restarts:
            reason = (f"died {len(history.restarts) + 1} times within {self.window_s:g} s; "
                      f"not restarted (start it by hand once fixed; see {process.log_file})")
            marker.write_text(reason + "\n")
            self.logger.error("Pool %r is crash-looping: %s", spec.name, reason)
            return False
        if now < history.not_before:
            return False
        pid = self.manager.revive_pool(spec)
        if pid is None:
            return False
        history.restarts.append(now)
        backoff = min(self.base_backoff_s * 2 ** (len(history.restarts) - 1), self.max_backoff_s)
        history.not_before = now + backoff
        self.logger.warning("Pool %r had died; started it again (pid %d, restart %d within %g s).",
                            spec.name, pid, len(history.restarts), self.window_s)
        return True
