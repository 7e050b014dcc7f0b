"""The pool supervisor: a worker group whose master died without being stopped is started again, with backoff.

dramatiq's master stops its whole group when one worker process dies (an OOM kill, a crash),
and nothing else would start it again. The supervisor, run by this machine's sweep process
every few seconds, starts such a group again, serving its wanted pools, after a backoff that
doubles with each restart (1 s, 2 s, 4 s … up to a minute). A group restarted ``max_restarts``
times within ``window_s`` is crash-looping: the supervisor stops trying, writes the reason
beside its pid file (the status of each of its pools, ``/health`` and ``autolog workers
status`` show it), and a start by hand of one of its pools resumes it. A pool stopped on
purpose (``stop`` withdraws its ``.wanted`` mark) is never started again.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ops.pools import PoolManager


@dataclass
class _History:
    """When a pool was restarted, and when it may next be."""

    restarts: deque[float] = field(default_factory=deque)
    not_before: float = 0.0


class PoolSupervisor:
    """Restarts this machine's worker groups that died, with backoff and a crash-loop limit.

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
        """Restart every group that died and is due; return the names of the pools it serves again."""
        restarted = []
        for group in self.manager.groups:
            restarted.extend(self._restart_if_dead(group))
        return restarted

    def _restart_if_dead(self, group: str) -> list[str]:
        process = self.manager.group_processes[group]
        pools = [spec.name for spec in self.manager.wanted_pools(group)]
        if not pools or process.pid() is not None:
            return []
        marker = self.manager.group_crash_loop_file(group)
        if marker.is_file():
            return []
        now = self._clock()
        history = self._history.setdefault(group, _History())
        while history.restarts and history.restarts[0] < now - self.window_s:
            history.restarts.popleft()
        if len(history.restarts) >= self.max_restarts:
            reason = (f"died {len(history.restarts) + 1} times within {self.window_s:g} s; "
                      f"not restarted (start it by hand once fixed; see {process.log_file})")
            marker.write_text(reason + "\n")
            self.logger.error("Worker group %r (pools %s) is crash-looping: %s", group, ", ".join(pools), reason)
            return []
        if now < history.not_before:
            return []
        pid = self.manager.revive_group(group)
        if pid is None:
            return []
        history.restarts.append(now)
        backoff = min(self.base_backoff_s * 2 ** (len(history.restarts) - 1), self.max_backoff_s)
        history.not_before = now + backoff
        self.logger.warning("Worker group %r (pools %s) had died; started it again (pid %d, restart %d within %g s).",
                            group, ", ".join(pools), pid, len(history.restarts), self.window_s)
        return pools
