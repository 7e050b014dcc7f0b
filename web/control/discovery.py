"""The discovery process: started and stopped by the API, one per machine, found by its pid file.

Discovery runs as its own process (``pipelines.discovery.main``), not as a thread of the
API, because gunicorn runs several API processes and recycles them: a pid file lets any of
them start, stop or report the one loop, and the loop outlives the request that started it.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autolog.processes import pid_alive, runs_command_with, stop_processes
from autolog.settings import Settings, child_environment

#: How the discovery process is launched; its arguments are added after.
ENTRY = "import sys; from pipelines.discovery import main; sys.exit(main())"


@dataclass(frozen=True)
class DiscoveryStatus:
    """Whether the discovery loop runs, and how it is configured."""

    running: bool
    pid: int | None
    interval_s: float
    stuck_after_s: float

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"running": self.running, "pid": self.pid, "interval_s": self.interval_s,
                "stuck_after_s": self.stuck_after_s}


class DiscoveryProcess:
    """Starts, stops and reports the discovery process of this machine.

    Args:
        env: variables the process gets on top of this one's, so it uses the API's database.
    """

    def __init__(self, settings: Settings, *, env: dict[str, str] | None = None, run_dir: Path | None = None) -> None:
        self.logger = logging.getLogger(__name__)
        self.settings = settings
        self.run_dir = (run_dir or Path(settings.var_dir) / "run").resolve()
        self.pid_file = self.run_dir / "discovery.pid"
        self.log_file = Path(settings.var_dir).resolve() / "log" / "discovery.log"
        self._env = env or {}
        #: The process this instance started, kept so it can be waited for (no zombie, no warning).
        self._child: subprocess.Popen[bytes] | None = None

    def _pid(self) -> int | None:
        try:
            text = self.pid_file.read_text().strip()
        except FileNotFoundError:
            return None
        if not text.isdigit():
            return None
        pid = int(text)
        return pid if pid_alive(pid) and runs_command_with(pid, str(self.pid_file)) else None

    def status(self) -> DiscoveryStatus:
        """Report the process."""
        pid = self._pid()
        return DiscoveryStatus(running=pid is not None, pid=pid, interval_s=self.settings.discovery_interval_s,
                               stuck_after_s=self.settings.discovery_stuck_after_s)

    def start(self) -> DiscoveryStatus:
        """Start the process unless it runs already."""
        if self._pid() is not None:
            return self.status()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            child = subprocess.Popen(
                [sys.executable, "-c", ENTRY, "--pid-file", str(self.pid_file)],
                env=child_environment(self._env), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        partial = self.pid_file.with_suffix(".tmp")
        partial.write_text(f"{child.pid}\n")
        partial.replace(self.pid_file)
        self._child = child
        self.logger.info("Started discovery (pid %d).", child.pid)
        return self.status()

    def stop(self, *, timeout_s: float = 10.0) -> DiscoveryStatus:
        """SIGTERM the process, SIGKILL it if it is still up at the deadline."""
        pid = self._pid()
        if pid is not None:
            if stop_processes([pid], group=False, timeout_s=timeout_s):
                self.logger.warning("Discovery (pid %d) did not stop in time; killed it.", pid)
            self._reap(pid)
        self.pid_file.unlink(missing_ok=True)
        return self.status()

    def _reap(self, pid: int) -> None:
        """Collect the exit status of the process if this instance started it."""
        if self._child is not None and self._child.pid == pid:
            self._child.wait(timeout=5)
            self._child = None
