"""Helpers for tests that run ``dramatiq`` worker processes and fault them: start, stop, read timelines."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from autolog.store import EventView
from tests.conftest import REPO, SampleClips
from tests.ffmpeg_runs import make_long_clip

DRAMATIQ = str(Path(sys.executable).parent / "dramatiq")

#: Start a worker group on every queue: ``[*WORKERS, "--queues", ...]`` narrows it.
WORKERS = [DRAMATIQ, "actors", "pipelines", "--processes", "1", "--threads", "2", "--path", str(REPO)]

Start = Callable[[list[str], dict[str, str]], "subprocess.Popen[bytes]"]


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM a process group and wait for it; SIGKILL it if it does not stop within 60 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGCONT)
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def first_event(timeline: list[EventView], event: str, step: str) -> EventView | None:
    """Return the first ``event`` of ``step`` in ``timeline``, if any."""
    return next((entry for entry in timeline if entry.event == event and entry.step == step), None)


def long_clip(test_media: SampleClips, duration_s: int) -> Path:
    """Make (once) a clip of ``duration_s`` whose scene detection takes a few seconds."""
    path = test_media.root / f"long{duration_s}_noaudio.mp4"
    return path if path.exists() else make_long_clip(path, duration_s)
