"""ffmpeg in the tests: making clips from lavfi sources, and recording the commands the code runs."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

#: ffmpeg, quiet but for errors (which the test's captured stderr shows), overwriting its output.
FFMPEG = ["ffmpeg", "-nostdin", "-v", "error", "-y"]

#: The H.264 the tests' clips use: fast to encode, and decodable by every player.
H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]


def make_clip(path: Path, *args: str) -> Path:
    """Run ffmpeg with ``args`` to write ``path``, and return ``path``."""
    subprocess.run([*FFMPEG, *args, str(path)], check=True)
    return path


def make_long_clip(path: Path, duration_s: int) -> Path:
    """Write a silent ``duration_s``-second 640x360 test pattern to ``path``, and return ``path``.

    Small on disk, but its scene detection (step 3) takes a few seconds: long enough to
    kill, freeze or stop a worker in the middle of it.
    """
    return make_clip(path, "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25,trim=duration={duration_s}",
                     "-c:v", "libx264", "-preset", "ultrafast", "-crf", "35", "-g", "50")


def recording_runner(commands: list[list[str]]) -> Callable[..., subprocess.CompletedProcess[bytes]]:
    """Return a runner that runs each command for real and appends its arguments to ``commands``."""
    def run(args: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        commands.append(list(args))
        return subprocess.run(args, **kwargs)

    return run
