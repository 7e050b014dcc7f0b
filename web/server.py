"""The API server of one machine: gunicorn started, stopped and reported by ``autolog up``/``down``."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autolog.errors import AutologError
from autolog.processes import pid_alive, runs_command_with, stop_processes
from autolog.settings import Settings, child_environment
from web.control.discovery import DiscoveryProcess

#: The folder holding the top-level packages; gunicorn runs from it.
PROJECT_DIR = Path(__file__).resolve().parent.parent

#: gunicorn's configuration file.
CONFIG = Path(__file__).resolve().parent / "gunicorn_conf.py"

#: How long start waits for gunicorn to accept connections, and how often it looks, in seconds.
START_TIMEOUT_S, POLL_S = 30.0, 0.05


class ApiServerError(AutologError):
    """Raised when gunicorn exits or does not listen in time."""


@dataclass(frozen=True)
class ApiStatus:
    """Whether the API server runs, and where."""

    running: bool
    pid: int | None
    url: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"running": self.running, "pid": self.pid, "url": self.url}


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class ApiServer:
    """Starts and stops gunicorn with a pid file under ``var/run``; its log goes to ``var/log/api.log``."""

    def __init__(self, settings: Settings, *, env: dict[str, str] | None = None) -> None:
        self.logger = logging.getLogger(__name__)
        self.settings = settings
        var = Path(settings.var_dir).resolve()
        self.pid_file = var / "run" / "api.pid"
        self.log_file = var / "log" / "api.log"
        self._env = env or {}
        self._child: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The API's base URL."""
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    def command(self) -> list[str]:
        """Return the gunicorn command line."""
        return [str(Path(sys.executable).parent / "gunicorn"), "-c", str(CONFIG), "--chdir", str(PROJECT_DIR),
                "--pid", str(self.pid_file)]

    def _pid(self) -> int | None:
        try:
            text = self.pid_file.read_text().strip()
        except FileNotFoundError:
            return None
        pid = int(text) if text.isdigit() else None
        return pid if pid is not None and pid_alive(pid) and runs_command_with(pid, str(self.pid_file)) else None

    def status(self) -> ApiStatus:
        """Report the server."""
        pid = self._pid()
        return ApiStatus(running=pid is not None, pid=pid, url=self.url)

    def start(self, *, timeout_s: float = START_TIMEOUT_S) -> ApiStatus:
        """Start gunicorn unless it runs, and wait until it accepts connections.

        Raises:
            ApiServerError: gunicorn exited, or did not listen within ``timeout_s``.
        """
        if self._pid() is not None:
            return self.status()
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            self._child = subprocess.Popen(self.command(), env=child_environment(self._env), cwd=PROJECT_DIR,
                                           stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True)
        partial = self.pid_file.with_suffix(".tmp")
        partial.write_text(f"{self._child.pid}\n")
        partial.replace(self.pid_file)
        deadline = time.monotonic() + timeout_s
        while not _listening(self.settings.api_host, self.settings.api_port):
            if self._child.poll() is not None:
                raise ApiServerError(f"gunicorn exited with {self._child.returncode}; see {self.log_file}")
            if time.monotonic() > deadline:
                raise ApiServerError(f"gunicorn did not listen on {self.url} in {timeout_s:g} s; see {self.log_file}")
            time.sleep(POLL_S)
        self.logger.info("API listening on %s (pid %d).", self.url, self._child.pid)
        return self.status()

    def stop(self, *, timeout_s: float = 30.0) -> ApiStatus:
        """Stop discovery, then gunicorn: SIGTERM, then SIGKILL for its group at the deadline."""
        DiscoveryProcess(self.settings).stop()
        pid = self._pid()
        if pid is not None:
            if stop_processes([pid], group=True, timeout_s=timeout_s):
                self.logger.warning("gunicorn (pid %d) did not stop in time; killed its group.", pid)
            if self._child is not None and self._child.pid == pid:
                self._child.wait(timeout=5)
                self._child = None
        self.pid_file.unlink(missing_ok=True)
        return self.status()
