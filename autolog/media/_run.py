"""Run ffmpeg-family tools with a time limit, turning the machine's trouble into transient errors.

Only the footage's own faults are permanent (the callers decide those from a tool's exit
status and message). A tool killed by a signal (the OOM killer, an operator) is
``ToolFailed``, and a full disk under the tool's output is ``DiskFull``, naming the disk and
its free space: both transient, never blamed on the footage.
"""

from __future__ import annotations

import errno
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from autolog.errors import DiskFull, ToolFailed
from autolog.stops import StepCancelled, stop_requested

#: What a tool prints when a write fails for ENOSPC (``strerror(ENOSPC)``).
_NO_SPACE = b"No space left on device"

#: How often a running tool's step is asked whether it should stop, in seconds.
STOP_POLL_S = 0.25

#: util-linux's ``setpriv``, which sets a tool's parent-death signal and then runs it (Linux).
_SETPRIV = shutil.which("setpriv") if sys.platform.startswith("linux") else None


def dying_with_caller(args: Sequence[str]) -> list[str]:
    """Return ``args`` run so that the tool is killed (SIGKILL) if the thread that started it dies.

    A worker killed (kill -9, the OOM killer) or stopped while ffmpeg or the speech recogniser
    runs would otherwise leave the tool running on, an orphan still in the worker group's
    process group, which a stop then waits for until it kills the group. The signal is the
    kernel's ``PR_SET_PDEATHSIG``, set by ``setpriv --pdeathsig`` (see prctl(2)); without
    ``setpriv`` the tool runs as given, and so does a program not found (so starting it fails
    as before, with ``FileNotFoundError``).
    """
    if _SETPRIV is None or not _on_path(args[0]):
        return list(args)
    return [_SETPRIV, "--pdeathsig", "KILL", "--", *args]


#: Programs already found on PATH: every tool call asks, and a PATH walk is a stat per folder.
_FOUND: set[str] = set()


def _on_path(program: str) -> bool:
    """True when ``program`` is found on PATH (remembered once found; a missing one is looked for again)."""
    if program not in _FOUND and shutil.which(program) is not None:
        _FOUND.add(program)
    return program in _FOUND

#: ffmpeg prefixes many log lines with the component that wrote them, e.g.
#: ``[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55c768a721c0] ``; it says nothing to a reader.
_CONTEXT_PREFIX = re.compile(r"^\[[^\]]* @ 0x[0-9a-f]+\]\s*")


class Runner(Protocol):
    """The slice of ``subprocess.run`` the media functions call."""

    def __call__(
        self,
        args: Sequence[str],
        *,
        capture_output: bool,
        timeout: float | None,
        check: bool,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``args`` and return the finished process."""
        ...


def run_process(
    args: Sequence[str], *, capture_output: bool, timeout: float | None, check: bool,
) -> subprocess.CompletedProcess[bytes]:
    """Run a command like ``subprocess.run``, killing it at once if its step is cancelled meanwhile.

    The command dies with the thread that runs it (``dying_with_caller``): no tool outlives its worker.

    Raises:
        StepCancelled: the running step's item was cancelled; the process was killed.
        subprocess.TimeoutExpired: it ran longer than ``timeout`` seconds; it was killed.
    """
    pipe = subprocess.PIPE if capture_output else None
    deadline = time.monotonic() + timeout if timeout is not None else None
    with subprocess.Popen(dying_with_caller(args), stdout=pipe, stderr=pipe) as process:
        while True:
            try:
                stdout, stderr = process.communicate(timeout=STOP_POLL_S)
                break
            except subprocess.TimeoutExpired:
                stopped = stop_requested()
                if stopped or (deadline is not None and time.monotonic() > deadline):
                    process.kill()
                    process.communicate()
                    if stopped:
                        raise StepCancelled(f"{args[0]} killed: the item was cancelled") from None
                    raise subprocess.TimeoutExpired(args, timeout or 0.0) from None
    completed = subprocess.CompletedProcess(args, process.returncode, stdout, stderr)
    if check:
        completed.check_returncode()
    return completed


def run_tool(
    args: Sequence[str], *, run: Runner, timeout_s: float, tool: str | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run a command, capturing its output, within ``timeout_s`` seconds.

    Errors name ``tool``, by default the executable (``args[0]``).

    A non-zero exit status is returned, not raised: only the caller knows whether it
    means bad input or a broken tool.

    Raises:
        ToolFailed: The command timed out, was killed by a signal, or its executable is not installed.
        DiskFull: The command failed because the disk it writes to (its last argument) is full.
    """
    tool = tool or args[0]
    try:
        completed = run(args, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as ex:
        raise ToolFailed(tool, f"timed out after {timeout_s:g} s") from ex
    except FileNotFoundError as ex:
        raise ToolFailed(tool, "not installed (executable not found)") from ex
    if completed.returncode < 0:
        raise ToolFailed(tool, f"killed by {_signal_name(-completed.returncode)} (not a fault of the input)")
    if completed.returncode != 0 and _NO_SPACE in (completed.stderr or b""):
        raise disk_full(Path(args[-1]))
    return completed


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def disk_full(path: Path) -> DiskFull:
    """Describe a full disk under ``path`` (a file being written, or a folder): its free and total bytes."""
    folder = path if path.is_dir() else path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    usage = shutil.disk_usage(folder)
    return DiskFull(str(folder), usage.free, usage.total)


@contextmanager
def disk_faults(folder: Path) -> Iterator[None]:
    """Turn a full disk (ENOSPC, EDQUOT) met while writing under ``folder`` into ``DiskFull``."""
    try:
        yield
    except OSError as ex:
        if ex.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise disk_full(folder) from ex


def first_error_line(stderr: bytes, *, default: str = "no error message") -> str:
    """Return the first non-blank line of a tool's stderr, without ffmpeg's context prefix."""
    for raw_line in stderr.decode("utf-8", errors="replace").splitlines():
        line = _CONTEXT_PREFIX.sub("", raw_line.strip())
        if line:
            return line
    return default
