"""One long-running child process found by its pid file: the API server, the sweep, a worker pool.

Every start goes through an exclusive ``flock`` on ``<name>.lock`` beside the pid file, so
concurrent starts (eight API requests at once, ``up`` racing an operator) spawn one process:
the others find it alive under the lock. A pid file is trusted only when its process is alive
and was started with the pid file's path on its command line, so a pid reused by some other
program is never signalled.
"""

from __future__ import annotations

import fcntl
import logging
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from autolog.processes import pid_alive, runs_command_with, stop_processes
from autolog.settings import child_environment

#: How long stop waits for a child it started to be reaped once it is gone, in seconds.
REAP_TIMEOUT_S = 5.0


class PidFileProcess:
    """Starts, finds and stops one process recorded in ``run_dir/<name>.pid``.

    Args:
        name: the process's name; its pid file, lock file and log file are named after it.
        command: builds the command line from the pid file's path, which it must contain.
        run_dir: where the pid and lock files live.
        log_file: where the process's stdout and stderr go (appended).
        env: variables the process gets on top of this one's.
        cwd: the process's working folder; None keeps this one's.
        wanted: tells whether the process is meant to run, for an owner that keeps this itself
            (a worker group is wanted while one of its pools is); None keeps a ``<name>.wanted``
            mark from a start until a stop.
    """

    def __init__(self, name: str, command: Callable[[Path], Sequence[str]], *, run_dir: Path, log_file: Path,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None,
                 wanted: Callable[[], bool] | None = None) -> None:
        self.logger = logging.getLogger(__name__)
        self.name = name
        self.run_dir = run_dir.resolve()
        self.pid_file = self.run_dir / f"{name}.pid"
        #: Present from a start until a stop: the process is meant to run (its own exit may remove the pid
        #: file). None when the owner tells (``wanted``).
        self.wanted_file = None if wanted is not None else self.run_dir / f"{name}.wanted"
        self._wanted = wanted
        self.log_file = log_file.resolve()
        self._command = command
        self._env = dict(env or {})
        self._cwd = cwd
        #: The process this instance started, kept so it can be waited for (no zombie).
        self._child: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> list[str]:
        """The process's command line."""
        return list(self._command(self.pid_file))

    def recorded_pid(self) -> int | None:
        """The pid the pid file holds, alive or not; None when there is no readable pid file."""
        try:
            text = self.pid_file.read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else None

    def pid(self) -> int | None:
        """The process's pid when it is alive (a zombie is not), else None."""
        pid = self.recorded_pid()
        if pid is None:
            return None
        if self._child is not None and self._child.pid == pid:
            return pid if self._child.poll() is None else None
        return pid if pid_alive(pid) and runs_command_with(pid, str(self.pid_file)) else None

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold this process's start lock (an exclusive ``flock``) for the block."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / f"{self.name}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def start(self, *, prepare: Callable[[], None] | None = None) -> tuple[int, bool]:
        """Start the process unless it runs; return its pid and whether this call started it.

        ``prepare`` runs under the start lock just before a spawn (not when the process runs already).
        """
        with self.locked():
            running = self.pid()
            if running is not None:
                self._mark_wanted(True)
                return running, False
            return self._spawn(prepare), True

    @property
    def wanted(self) -> bool:
        """True when the process is meant to be running: from a start until a stop, or as its owner tells."""
        if self._wanted is not None:
            return self._wanted()
        return self.wanted_file is not None and self.wanted_file.is_file()

    def _mark_wanted(self, wanted: bool) -> None:
        """Add or remove the ``<name>.wanted`` mark, when this process keeps one."""
        if self.wanted_file is None:
            return
        if wanted:
            self.wanted_file.touch()
        else:
            self.wanted_file.unlink(missing_ok=True)

    def revive(self, *, prepare: Callable[[], None] | None = None) -> int | None:
        """Start the process again if it died without being stopped; return the new pid, else None.

        A process stopped through ``stop`` is no longer wanted and is left alone; so is one that runs.
        """
        with self.locked():
            if not self.wanted or self.pid() is not None:
                return None
            self.reap()
            return self._spawn(prepare)

    def _spawn(self, prepare: Callable[[], None] | None) -> int:
        """Spawn the process and record its pid; the caller holds the start lock."""
        if prepare is not None:
            prepare()
        self._mark_wanted(True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            child = subprocess.Popen(self.command, env=child_environment(self._env), cwd=self._cwd,
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        # Written before the child writes its own (gunicorn and dramatiq accept a pid file
        # that holds their pid), and renamed into place so nobody reads it half-written.
        partial = self.pid_file.with_suffix(".pid.tmp")
        partial.write_text(f"{child.pid}\n")
        partial.replace(self.pid_file)
        self._child = child
        self.logger.info("Started %s (pid %d).", self.name, child.pid)
        return child.pid

    def exited(self) -> int | None:
        """The exit code of the process this instance started, once it has exited; else None."""
        return None if self._child is None else self._child.poll()

    def stop(self, *, timeout_s: float, group: bool = False, term_leader_only: bool = False) -> bool:
        """SIGTERM the process, SIGKILL it at the deadline.

        ``group`` and ``term_leader_only`` are as in ``autolog.processes.stop_processes``.

        Returns:
            True when it had to be killed.
        """
        with self.locked():
            pid = self.pid()
            killed = False
            if pid is not None:
                killed = bool(stop_processes([pid], group=group, timeout_s=timeout_s,
                                             term_leader_only=term_leader_only))
                if killed:
                    self.logger.warning("%s (pid %d) did not stop in %.0f s; killed it.", self.name, pid, timeout_s)
            self.reap()
            self.pid_file.unlink(missing_ok=True)
            self._mark_wanted(False)
        return killed

    def reap(self) -> None:
        """Collect the exit status of the process this instance started, if it has exited or is exiting."""
        child, self._child = self._child, None
        if child is None:
            return
        try:
            child.wait(timeout=REAP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._child = child
            self.logger.warning("%s (pid %d) has not exited.", self.name, child.pid)
