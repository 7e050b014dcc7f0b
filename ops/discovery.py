"""The sweep process (discovery): started with the stack by ``autolog up``, one per machine, found by its pid file.

The sweep runs as its own process (``pipelines.discovery.main``), not as a thread of the API,
because gunicorn runs several API processes and recycles them. Starts go through the pid
file's lock, so concurrent starts (``up``, ``POST /run/lf_discovery`` from any API process)
leave one process; across machines the sweep's Redis lease lets one of them act.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autolog.settings import Settings
from ops.processes import PidFileProcess

#: How the sweep process (``ops.agent``) is launched; its arguments are added after.
ENTRY = "import sys; from ops.agent import main; sys.exit(main())"


@dataclass(frozen=True)
class DiscoveryStatus:
    """Whether the sweep runs, and how it is configured."""

    running: bool
    pid: int | None
    interval_s: float
    stuck_after_s: float
    #: Started here and not stopped since (``autolog down``, ``POST /stop/lf_discovery``): if not running, it died.
    wanted: bool = False

    @property
    def died(self) -> bool:
        """Started here and not stopped since, yet not running: it died (nothing restarts it; ``autolog up`` does)."""
        return self.wanted and not self.running

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"running": self.running, "pid": self.pid, "interval_s": self.interval_s,
                "stuck_after_s": self.stuck_after_s}


class DiscoveryProcess:
    """Starts, stops and reports the sweep process of this machine.

    Args:
        env: variables the process gets on top of this one's, so it uses the API's database.
    """

    def __init__(self, settings: Settings, *, env: dict[str, str] | None = None, run_dir: Path | None = None) -> None:
        self.settings = settings
        var = Path(settings.var_dir).resolve()
        self.process = PidFileProcess(
            "discovery", lambda pid_file: [sys.executable, "-c", ENTRY, "--pid-file", str(pid_file)],
            run_dir=run_dir or var / "run", log_file=var / "log" / "discovery.log",
            env={"AUTOLOG_VAR_DIR": str(var), **(env or {})})

    @property
    def pid_file(self) -> Path:
        """The sweep's pid file."""
        return self.process.pid_file

    @property
    def log_file(self) -> Path:
        """Where the sweep's output goes."""
        return self.process.log_file

    def status(self) -> DiscoveryStatus:
        """Report the process."""
        pid = self.process.pid()
        return DiscoveryStatus(running=pid is not None, pid=pid, interval_s=self.settings.discovery_interval_s,
                               stuck_after_s=self.settings.discovery_stuck_after_s, wanted=self.process.wanted)

    def start(self) -> DiscoveryStatus:
        """Start the process unless it runs already."""
        self.process.start()
        return self.status()

    def stop(self, *, timeout_s: float = 10.0) -> DiscoveryStatus:
        """SIGTERM the process, SIGKILL it if it is still up at the deadline."""
        self.process.stop(timeout_s=timeout_s)
        return self.status()
