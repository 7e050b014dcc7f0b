"""Run ffmpeg-family tools with a time limit, turning tool trouble into ``ToolFailed``."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Sequence
from typing import Protocol

from autolog.errors import ToolFailed
from autolog.stops import StepCancelled, stop_requested

#: How often a running tool's step is asked whether it should stop, in seconds.
STOP_POLL_S = 0.25

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

    Raises:
        StepCancelled: the running step's item was cancelled; the process was killed.
        subprocess.TimeoutExpired: it ran longer than ``timeout`` seconds; it was killed.
    """
    pipe = subprocess.PIPE if capture_output else None
    deadline = time.monotonic() + timeout if timeout is not None else None
    with subprocess.Popen(args, stdout=pipe, stderr=pipe) as process:
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


def run_tool(args: Sequence[str], *, run: Runner, timeout_s: float) -> subprocess.CompletedProcess[bytes]:
    """Run a command, capturing its output, within ``timeout_s`` seconds.

    A non-zero exit status is returned, not raised: only the caller knows whether it
    means bad input or a broken tool.

    Raises:
        ToolFailed: The command timed out or its executable is not installed.
    """
    tool = args[0]
    try:
        return run(args, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as ex:
        raise ToolFailed(tool, f"timed out after {timeout_s:g} s") from ex
    except FileNotFoundError as ex:
        raise ToolFailed(tool, "not installed (executable not found)") from ex


def first_error_line(stderr: bytes, *, default: str = "no error message") -> str:
    """Return the first non-blank line of a tool's stderr, without ffmpeg's context prefix."""
    for raw_line in stderr.decode("utf-8", errors="replace").splitlines():
        line = _CONTEXT_PREFIX.sub("", raw_line.strip())
        if line:
            return line
    return default
