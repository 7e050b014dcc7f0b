"""Write one image with ffmpeg atomically, and check ffmpeg really wrote it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path

from autolog.errors import CorruptMedia
from autolog.media._run import Runner, first_error_line, run_tool


def render_image(
    command: Sequence[str],
    out: Path,
    *,
    source: Path,
    what: str,
    run: Runner,
    timeout_s: float,
) -> Path:
    """Run ``command`` with a temporary output path appended, then move it to ``out``.

    The temporary file sits next to ``out`` so ``os.replace`` is atomic and a rerun
    simply overwrites the previous image.

    Args:
        command: An ffmpeg command line that ends just before its output path.
        what: What is being made, for error messages ("poster at 4.00 s").

    Raises:
        CorruptMedia: ffmpeg failed, or exited 0 without writing any bytes, which it
            does when asked for a frame past the end of a truncated file.
        ToolFailed: ffmpeg is missing or timed out.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    # NOTE(media): ffmpeg creates the temporary file itself, so it gets the usual
    # umask permissions (mkstemp would make it 0600); the random part keeps two
    # concurrent reruns from writing to the same name.
    temp_path = out.parent / f".{out.name}.{uuid.uuid4().hex}.tmp"
    try:
        completed = run_tool([*command, str(temp_path)], run=run, timeout_s=timeout_s)
        if completed.returncode != 0:
            reason = first_error_line(completed.stderr)
            raise CorruptMedia(str(source), f"ffmpeg could not make the {what}: {reason}")
        if not temp_path.is_file() or temp_path.stat().st_size == 0:
            raise CorruptMedia(str(source), f"ffmpeg decoded no frame for the {what} (the file may be truncated)")
        os.replace(temp_path, out)
    finally:
        temp_path.unlink(missing_ok=True)
    return out
