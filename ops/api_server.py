"""The API server of one machine: gunicorn started, stopped and reported by ``autolog up``/``down``.

gunicorn is started by path (``web/gunicorn_conf.py`` serves ``web.app:create_app()``); this
module imports nothing from ``web``, so ops stays below web.
"""

from __future__ import annotations

import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autolog.errors import AutologError
from autolog.settings import Settings
from ops.processes import PidFileProcess

#: The folder holding the top-level packages; gunicorn runs from it.
PROJECT_DIR = Path(__file__).resolve().parent.parent

#: gunicorn's configuration file.
CONFIG = PROJECT_DIR / "web" / "gunicorn_conf.py"

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
    """Starts and stops gunicorn with a pid file under ``var/run``; its log goes to ``var/log/api.log``.

    Args:
        env: variables gunicorn gets on top of this process's, with ``AUTOLOG_VAR_DIR`` made absolute.
    """

    def __init__(self, settings: Settings, *, env: dict[str, str] | None = None) -> None:
        self.settings = settings
        var = Path(settings.var_dir).resolve()
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        self.process = PidFileProcess(
            "api", lambda pid_file: [gunicorn, "-c", str(CONFIG), "--chdir", str(PROJECT_DIR), "--pid", str(pid_file)],
            run_dir=var / "run", log_file=var / "log" / "api.log", env={"AUTOLOG_VAR_DIR": str(var), **(env or {})},
            cwd=PROJECT_DIR)

    @property
    def url(self) -> str:
        """The API's base URL."""
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    @property
    def pid_file(self) -> Path:
        """gunicorn's pid file."""
        return self.process.pid_file

    def command(self) -> list[str]:
        """Return the gunicorn command line."""
        return self.process.command

    def status(self) -> ApiStatus:
        """Report the server."""
        pid = self.process.pid()
        return ApiStatus(running=pid is not None, pid=pid, url=self.url)

    def start(self, *, timeout_s: float = START_TIMEOUT_S) -> ApiStatus:
        """Start gunicorn unless it runs, and wait until it accepts connections.

        Raises:
            ApiServerError: gunicorn exited, or did not listen within ``timeout_s``.
        """
        pid, started = self.process.start()
        deadline = time.monotonic() + timeout_s
        while not _listening(self.settings.api_host, self.settings.api_port):
            if started and (code := self.process.exited()) is not None:
                raise ApiServerError(f"gunicorn exited with {code}; see {self.process.log_file}")
            if time.monotonic() > deadline:
                raise ApiServerError(f"gunicorn did not listen on {self.url} in {timeout_s:g} s; "
                                     f"see {self.process.log_file}")
            time.sleep(POLL_S)
        return self.status()

    def stop(self, *, timeout_s: float = 30.0) -> ApiStatus:
        """Stop gunicorn: SIGTERM to its master (which stops its workers), SIGKILL for its group at the deadline."""
        self.process.stop(timeout_s=timeout_s, group=True, term_leader_only=True)
        return self.status()
