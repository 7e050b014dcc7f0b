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
from autolog.processes import listens_on
from autolog.settings import Settings
from ops.processes import PidFileProcess

#: The folder holding the top-level packages; gunicorn runs from it.
PROJECT_DIR = Path(__file__).resolve().parent.parent

#: gunicorn's configuration file.
CONFIG = PROJECT_DIR / "web" / "gunicorn_conf.py"

#: How long start waits for gunicorn to accept connections, and how often it looks, in seconds.
START_TIMEOUT_S, POLL_S = 30.0, 0.05


class ApiServerError(AutologError):
    """Raised when gunicorn exits or does not listen on the API's port in time."""


@dataclass(frozen=True)
class ApiStatus:
    """Whether the API server runs and serves its port, and where."""

    #: gunicorn's master is alive and holds the socket listening on the API's port.
    running: bool
    #: gunicorn's master, when it is alive (serving or not).
    pid: int | None
    url: str
    #: Why the API does not serve, when it does not: gunicorn exited, or another process holds the port.
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"running": self.running, "pid": self.pid, "url": self.url, "problem": self.problem}


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
        """Report the server: running only while our gunicorn master holds the API's listening socket."""
        pid = self.process.pid()
        if pid is None:
            return ApiStatus(running=False, pid=None, url=self.url, problem=self._problem("gunicorn is not running"))
        if not listens_on(pid, self.settings.api_port):
            return ApiStatus(running=False, pid=pid, url=self.url,
                             problem=self._problem(f"gunicorn (pid {pid}) does not listen on {self.url}"))
        return ApiStatus(running=True, pid=pid, url=self.url)

    def start(self, *, timeout_s: float = START_TIMEOUT_S) -> ApiStatus:
        """Start gunicorn unless it runs, and wait until its master listens on the API's port.

        A connection some other process accepts on that port does not count: gunicorn then
        retries its bind for a few seconds and exits (``Connection in use`` in its log).

        Raises:
            ApiServerError: gunicorn exited, or did not listen within ``timeout_s``; the message
                says when another process holds the port.
        """
        pid, started = self.process.start()
        deadline = time.monotonic() + timeout_s
        while not listens_on(pid, self.settings.api_port):
            if self.process.pid() != pid:
                code = self.process.exited() if started else None
                raise ApiServerError(self._problem(f"gunicorn exited{'' if code is None else f' with {code}'}"))
            if time.monotonic() > deadline:
                raise ApiServerError(self._problem(f"gunicorn did not listen on {self.url} in {timeout_s:g} s"))
            time.sleep(POLL_S)
        return self.status()

    def _problem(self, what: str) -> str:
        """Say ``what`` went wrong, whether another process holds the API's port, and where the log is."""
        taken = (f"; port {self.settings.api_port} is taken by another process"
                 if _listening(self.settings.api_host, self.settings.api_port) else "")
        return f"{what}{taken}; see {self.process.log_file}"

    def stop(self, *, timeout_s: float = 30.0) -> ApiStatus:
        """Stop gunicorn: SIGTERM to its master (which stops its workers), SIGKILL for its group at the deadline."""
        self.process.stop(timeout_s=timeout_s, group=True, term_leader_only=True)
        return self.status()
