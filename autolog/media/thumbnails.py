"""Make a poster frame and a contact sheet for a clip."""

from __future__ import annotations

import subprocess
from pathlib import Path

from autolog.media._render import render_image
from autolog.media._run import Runner

#: Posters are scaled down to this width at most (never up), keeping the aspect ratio.
POSTER_MAX_WIDTH = 640

#: Width of one tile in a contact sheet.
TILE_WIDTH = 160

#: ffmpeg's JPEG quality scale runs 2 (best) to 31; 3 is visually clean at small sizes.
_JPEG_QUALITY = "3"

_FFMPEG = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]


def make_poster(
    path: Path,
    out: Path,
    *,
    at_s: float,
    run: Runner = subprocess.run,
    timeout_s: float = 120.0,
) -> Path:
    """Write one JPEG frame of the clip at ``at_s`` seconds to ``out``.

    Raises:
        CorruptMedia: No frame decodes at ``at_s`` (e.g. past the end of a truncated file).
        ToolFailed: ffmpeg is missing or timed out.
    """
    command = [
        *_FFMPEG,
        # Input seeking (-ss before -i) jumps to the nearest keyframe and decodes on,
        # so a poster deep into a long clip costs the same as one near the start.
        "-ss", f"{at_s:.3f}",
        "-i", str(path),
        "-map", "0:v:0",
        "-frames:v", "1",
        "-vf", f"scale='min({POSTER_MAX_WIDTH},iw)':-2",
        "-q:v", _JPEG_QUALITY,
        "-f", "image2", "-update", "1", "-c:v", "mjpeg",
    ]  # fmt: skip
    return render_image(command, out, source=path, what=f"poster at {at_s:.2f} s", run=run, timeout_s=timeout_s)


def make_contact_sheet(
    path: Path,
    out: Path,
    *,
    duration_s: float,
    columns: int = 4,
    rows: int = 3,
    run: Runner = subprocess.run,
    timeout_s: float = 600.0,
) -> Path:
    """Write a JPEG grid of ``columns * rows`` evenly spaced frames to ``out``.

    One ffmpeg pass: ``select`` keeps one frame in the middle of each of the
    ``columns * rows`` equal intervals and ``tile`` lays them out row by row, each
    ``TILE_WIDTH`` pixels wide.
    A clip that ends early yields a sheet with blank tiles, not an error.

    Raises:
        ValueError: ``columns``, ``rows`` or ``duration_s`` is not positive.
        CorruptMedia: No frame decodes at all.
        ToolFailed: ffmpeg is missing or timed out.
    """
    if columns < 1 or rows < 1:
        raise ValueError(f"a contact sheet needs at least one column and row, not {columns}x{rows}")
    if duration_s <= 0:
        raise ValueError(f"duration_s must be positive, not {duration_s}")
    interval_s = duration_s / (columns * rows)
    offset_s = interval_s / 2
    # Keep the first frame at or after each sample time offset + k * interval: the
    # frame whose interval number differs from the previous frame's. Sampling the
    # middle of each interval avoids the black or fade frames that sit at a start.
    slot = f"floor((t-{offset_s:.6f})/{interval_s:.6f})"
    previous_slot = f"floor((prev_t-{offset_s:.6f})/{interval_s:.6f})"
    filters = ",".join(
        [
            f"select='gte({slot},0)*gt({slot},{previous_slot})'",
            f"scale={TILE_WIDTH}:-2",
            f"tile=layout={columns}x{rows}",
        ]
    )
    command = [
        *_FFMPEG,
        "-i", str(path),
        "-map", "0:v:0",
        "-vf", filters,
        "-frames:v", "1",
        "-q:v", _JPEG_QUALITY,
        "-f", "image2", "-update", "1", "-c:v", "mjpeg",
    ]  # fmt: skip
    return render_image(command, out, source=path, what=f"{columns}x{rows} contact sheet", run=run, timeout_s=timeout_s)
